"""7. the audit log: every command leaves an event (with the user, the VM, the outcome);
external events from backup applications are recorded."""
import xml.etree.ElementTree as ET

from harness import case, text, ADMIN_USER


def events(env, extra=""):
    r = env.api("GET", "/events" + extra)
    env.require(r.status == 200 and isinstance(r.body, ET.Element) and r.body.tag == "events",
                "GET /events: " + r.short())
    return r.body.findall("event")


def eid(e):
    try:
        return int(e.get("id"))
    except (TypeError, ValueError):
        return None


def newer(env, since):
    return [e for e in events(env) if eid(e) is not None and eid(e) > since]


def describe(e):
    return " ".join(ET.tostring(e, encoding="unicode").split())[:700]


def for_vm(env, new, vm_id, name, what):
    """the new events that carry <vm id=vm_id>; a clear failure when there are none"""
    mine = [e for e in new if e.find("vm") is not None and e.find("vm").get("id") == vm_id]
    if not mine:
        named = [e for e in new if name in (text(e, "description") or "")]
        if named:
            env.check(False, "the event for %s lacks <vm id=\"%s\">: %s" % (what, vm_id, describe(named[0])))
        else:
            env.check(False, "no event for %s; new events: %r" % (what, [describe(e) for e in new]))
    return mine


@case("events: start/stop recorded with user and VM, a refused command recorded, POST /events")
def audit(env):
    evs = events(env)
    for e in evs:
        env.check(e.get("id") and text(e, "description") and text(e, "severity") and text(e, "time"),
                  "event without id/description/severity/time: " + describe(e))
    got_ids = [eid(e) for e in evs]
    env.check(None not in got_ids and got_ids == sorted(got_ids, reverse=True) and len(set(got_ids)) == len(got_ids),
              "GET /events is not newest first with distinct integer ids: %r" % got_ids[:20])
    last = max([i for i in got_ids if i is not None] or [0])

    vm_id, name = env.create_vm()
    d = env.create_disk(size=16 * 1024 * 1024)
    env.attach(vm_id, d, "virtio", bootable=True)
    mark = max([eid(e) or 0 for e in events(env)] + [last])
    env.start_vm(vm_id, name)
    new = newer(env, mark)
    mine = for_vm(env, new, vm_id, name, "the start of the VM")
    if mine:
        e = mine[0]
        s = ET.tostring(e, encoding="unicode")
        env.check(ADMIN_USER in s, "the start event does not name the user %s: %s" % (ADMIN_USER, describe(e)))
        env.check(text(e, "severity") == "normal", "the start event has severity %r" % text(e, "severity"))
        env.check(text(e, "time"), "the start event has no time")
    mark = max([eid(e) or 0 for e in new] + [mark])

    # a refused command is recorded too
    r = env.api("DELETE", "/vms/" + vm_id)
    env.check(r.status == 409, "DELETE a running VM: " + r.short())
    new = newer(env, mark)
    mine = for_vm(env, new, vm_id, name, "the refused DELETE of the running VM")
    if mine:
        env.check(text(mine[0], "severity") in ("warning", "error", "alert"),
                  "the refused DELETE is recorded with severity %r: %s"
                  % (text(mine[0], "severity"), describe(mine[0])))
        env.check(ADMIN_USER in ET.tostring(mine[0], encoding="unicode"),
                  "the refused DELETE's event does not name the user: " + describe(mine[0]))
    mark = max([eid(e) or 0 for e in new] + [mark])

    env.action(vm_id, "stop")
    new = newer(env, mark)
    mine = for_vm(env, new, vm_id, name, "the stop of the VM")
    if mine:
        # libvirt's "down" event races the command's own record: either may be the newest
        env.check(any(ADMIN_USER in ET.tostring(e, encoding="unicode") for e in mine),
                  "no stop event names the user: %r" % [describe(e) for e in mine])
    mark = max([eid(e) or 0 for e in new] + [mark])

    # an external event, as a backup application adds it
    r = env.api("POST", "/events", "<event><custom_id>42</custom_id><description>backup started</description>"
                "<origin>mybackup</origin><severity>normal</severity></event>")
    e = env.expect(r, 201, "POST /events")
    env.check(isinstance(e, ET.Element) and e.tag == "event" and e.get("id"), "POST /events answer: " + r.short())
    env.check(text(e, "description") == "backup started" and text(e, "origin") == "mybackup"
              and text(e, "custom_id") == "42" and text(e, "severity") == "normal",
              "POST /events answer does not carry what was sent: " + r.short())
    top = events(env)[0]
    env.check(top.get("id") == e.get("id") and text(top, "description") == "backup started",
              "GET /events: the newest is not the external event: " + describe(top))
    r = env.api("POST", "/events", "<event><custom_id>43</custom_id><description>backup of vm</description>"
                "<origin>mybackup</origin><severity>warning</severity><vm id=\"%s\"/></event>" % vm_id)
    e = env.expect(r, 201, "POST /events with <vm id>")
    env.check(e.find("vm") is not None and e.find("vm").get("id") == vm_id,
              "POST /events with <vm id>: the answer lacks it: " + r.short())
    env.check(text(e, "severity") == "warning", "POST /events severity warning came back %r" % text(e, "severity"))
    r = env.api("GET", "/events?max=2")
    env.check(r.status == 200 and len(r.body.findall("event")) == 2, "GET /events?max=2: " + r.short())

    r = env.api("POST", "/events", "<event><custom_id>44</custom_id><description>x</description>"
                "<origin>mybackup</origin><severity>catastrophic</severity></event>")
    env.check_fault(r, 400, "POST /events with severity catastrophic")


@case("events: a VM start that fails is recorded as an error, leaves no domain, VM stays down")
def failed_start(env):
    import os
    from harness import domstate, domains
    vm_id, name = env.create_vm()
    d = env.create_disk(size=16 * 1024 * 1024)
    env.attach(vm_id, d, "virtio", bootable=True)
    os.unlink(env.disk_file(d))  # the volume vanishes behind the engine's back
    mark = max([eid(e) or 0 for e in events(env)] + [0])
    r = env.api("POST", "/vms/%s/start" % vm_id, "<action/>")
    env.check_fault(r, (400, 404, 409, 500, 503), "start a VM whose volume file is gone")
    env.check(domstate(name) is None and name not in domains(),
              "the failed start left domain %s (%r)" % (name, domstate(name)))
    env.check(env.vm_status(vm_id) == "down", "after the failed start the API shows %r" % env.vm_status(vm_id))
    mine = for_vm(env, newer(env, mark), vm_id, name, "the failed start")
    if mine:
        env.check(text(mine[0], "severity") in ("warning", "error", "alert"),
                  "the failed start is recorded with severity %r: %s" % (text(mine[0], "severity"), describe(mine[0])))
        env.check(ADMIN_USER in ET.tostring(mine[0], encoding="unicode"),
                  "the failed start's event does not name the user: " + describe(mine[0]))
