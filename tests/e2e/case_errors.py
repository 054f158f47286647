"""6. every refused request answers an oVirt fault with the right status and changes nothing:
not the API's lists, not libvirt's domains and their disks, not a byte of any volume file."""
import uuid

from harness import (case, random_name, vm_xml, disk_xml, attachment_xml, text, MiB,
                     domstate, domblklist, domains)


def refused(env, what, statuses, method, path, body=None, names=None, **kw):
    """sends the request, checks the fault and that nothing changed"""
    before = env.snapshot()
    r = env.api(method, path, body, **kw)
    env.check_fault(r, statuses, what, names)
    env.check_unchanged(before, what)
    return r


@case("errors: malformed, missing and wrong-typed input -> 400, nothing changed")
def bad_input(env):
    vm_id, vm_name = env.create_vm()
    d = env.create_disk(size=16 * MiB)
    def fresh():
        # a new name per request, so that one wrongly accepted request cannot turn the
        # next one into a duplicate-name conflict
        n = random_name()
        env.vm_names.add(n)
        return n

    n = fresh()
    refused(env, "POST /vms with unclosed XML", 400, "POST", "/vms", "<vm><name>%s</name>" % n)
    refused(env, "POST /vms with a body that is not XML", 400, "POST", "/vms", "this is not xml")
    refused(env, "POST /vms with an empty body", 400, "POST", "/vms", "")
    n = fresh()
    refused(env, "POST /vms without name", 400, "POST", "/vms",
            vm_xml(n).replace("<name>%s</name>" % n, ""), names=["name"])
    refused(env, "POST /vms with <memory>lots</memory>", 400, "POST", "/vms",
            vm_xml(fresh()).replace("<memory>%d</memory>" % (128 * MiB), "<memory>lots</memory>"),
            names=["memory"])
    refused(env, "POST /vms with <sockets>-1</sockets>", 400, "POST", "/vms",
            vm_xml(fresh()).replace("<sockets>1</sockets>", "<sockets>-1</sockets>"))
    refused(env, "POST /vms with a cluster that does not exist", (400, 404), "POST", "/vms",
            vm_xml(fresh(), cluster="NoSuchCluster"), names=["NoSuchCluster"])
    refused(env, "POST /vms with a malformed JSON body", 400, "POST", "/vms", '{"name": "%s",' % fresh(),
            json=True)
    alias = random_name("d")
    refused(env, "POST /disks without provisioned_size", 400, "POST", "/disks",
            disk_xml(alias).replace("<provisioned_size>%d</provisioned_size>" % (1 << 30), ""),
            names=["provisioned_size"])
    refused(env, "POST /disks with <provisioned_size>big</provisioned_size>", 400, "POST", "/disks",
            disk_xml(alias).replace("<provisioned_size>%d</provisioned_size>" % (1 << 30),
                                    "<provisioned_size>big</provisioned_size>"))
    refused(env, "POST /disks with <format>vmdk</format>", 400, "POST", "/disks", disk_xml(alias, fmt="vmdk"))
    refused(env, "POST /disks with unclosed XML", 400, "POST", "/disks", disk_xml(alias)[:-8])
    refused(env, "PUT /vms/{id} with <memory>lots</memory>", 400, "PUT", "/vms/" + vm_id,
            "<vm><memory>lots</memory></vm>", names=["memory"])
    refused(env, "POST diskattachments with interface floppy", 400, "POST",
            "/vms/%s/diskattachments" % vm_id, attachment_xml(d, "floppy"))
    refused(env, "POST diskattachments with <bootable>maybe</bootable>", 400, "POST",
            "/vms/%s/diskattachments" % vm_id, attachment_xml(d).replace(
                "<bootable>false</bootable>", "<bootable>maybe</bootable>"))
    refused(env, "POST diskattachments with neither disk id nor disk", 400, "POST",
            "/vms/%s/diskattachments" % vm_id,
            "<disk_attachment><interface>virtio</interface></disk_attachment>")
    refused(env, "POST diskattachments with unclosed XML", 400, "POST",
            "/vms/%s/diskattachments" % vm_id, attachment_xml(d)[:-5])
    started = [n for n in sorted(env.vm_names) if n in domains()]
    env.check(not started, "refused requests started domains %r" % started)


@case("errors: unknown ids -> 404 naming the id, unknown paths -> 404, wrong methods -> 405")
def not_found_and_method(env):
    vm_id, _ = env.create_vm()
    d = env.create_disk(size=16 * MiB)
    env.attach(vm_id, d, "virtio", bootable=True)
    x = str(uuid.uuid4())
    for method, path, body in (("GET", "/vms/" + x, None),
                               ("PUT", "/vms/" + x, "<vm><description>x</description></vm>"),
                               ("DELETE", "/vms/" + x, None),
                               ("POST", "/vms/%s/start" % x, "<action/>"),
                               ("POST", "/vms/%s/stop" % x, "<action/>"),
                               ("GET", "/vms/%s/diskattachments" % x, None),
                               ("POST", "/vms/%s/diskattachments" % x, attachment_xml(d)),
                               ("GET", "/vms/%s/diskattachments/%s" % (vm_id, x), None),
                               ("PUT", "/vms/%s/diskattachments/%s" % (vm_id, x),
                                "<disk_attachment><active>false</active></disk_attachment>"),
                               ("DELETE", "/vms/%s/diskattachments/%s" % (vm_id, x), None),
                               ("GET", "/disks/" + x, None),
                               ("DELETE", "/disks/" + x, None),
                               ("GET", "/clusters/" + x, None),
                               ("GET", "/hosts/" + x, None),
                               ("GET", "/storagedomains/" + x, None),
                               ("GET", "/templates/" + x, None)):
        refused(env, "%s %s (unknown id)" % (method, path), 404, method, path, body, names=[x])
    refused(env, "GET /vms/{id} as JSON (unknown id)", 404, "GET", "/vms/" + x, json=True, names=[x])
    refused(env, "attach a disk id that does not exist", (404, 400), "POST",
            "/vms/%s/diskattachments" % vm_id, attachment_xml(x), names=[x])
    refused(env, "attach: the disk is not attached to this VM (diskattachment of another disk)", 404,
            "GET", "/vms/%s/diskattachments/%s" % (vm_id, env.create_disk(size=16 * MiB)))
    refused(env, "GET /vms/not-a-uuid", (404, 400), "GET", "/vms/not-a-uuid", names=["not-a-uuid"])
    for path in ("/nonsense", "/vms/%s/nonsense" % vm_id, "/vms/%s/diskattachments/%s/x/y" % (vm_id, d)):
        refused(env, "GET %s (unknown path)" % path, 404, "GET", path)
    # outside the API root only the status is required (oVirt itself answers HTML there)
    for path in ("/ovirt-engine/api-nonsense/vms", "/nonsense"):
        r = env.api("GET", "/ovirt-engine" + path if path == "/nonsense" else path)
        env.check(r.status == 404, "GET %s (outside the API): %s" % (r.path, r.short()))
    for method, path, body in (("PUT", "/events", "<event/>"),
                               ("DELETE", "/clusters", None),
                               ("DELETE", "/vms", None),
                               ("PUT", "/vms", vm_xml(random_name())),
                               ("GET", "/vms/%s/start" % vm_id, None),
                               ("POST", "/vms/" + vm_id, vm_xml(random_name())),
                               ("POST", "/datacenters", "<data_center><name>x</name></data_center>")):
        refused(env, "%s %s (wrong method)" % (method, path), 405, method, path, body)


@case("errors: conflicts (running VM, duplicate name, bootable, attached elsewhere, twice, sata) -> 409")
def conflicts(env):
    vm_a, name_a = env.create_vm()
    vm_b, name_b = env.create_vm()
    d_a = env.create_disk(size=16 * MiB)
    d_b = env.create_disk(size=16 * MiB)
    d_c = env.create_disk(size=16 * MiB)
    env.attach(vm_a, d_a, "virtio", bootable=True)
    env.attach(vm_b, d_b, "virtio", bootable=True)
    env.start_vm(vm_a, name_a)
    blk = domblklist(name_a)

    refused(env, "DELETE a running VM", 409, "DELETE", "/vms/" + vm_a)
    env.check(domstate(name_a) == "running", "after the refused DELETE, domain %s is %r" % (name_a, domstate(name_a)))
    refused(env, "start a VM that is running", 409, "POST", "/vms/%s/start" % vm_a, "<action/>")
    refused(env, "a second VM named like an existing one", 409, "POST", "/vms", vm_xml(name_b))
    refused(env, "rename a VM to another VM's name", 409, "PUT", "/vms/" + vm_b,
            "<vm><name>%s</name></vm>" % name_a)
    refused(env, "a second bootable disk on a down VM", (409, 400), "POST", "/vms/%s/diskattachments" % vm_b,
            attachment_xml(d_c, "virtio", bootable=True))
    refused(env, "a second bootable disk on a running VM", (409, 400), "POST", "/vms/%s/diskattachments" % vm_a,
            attachment_xml(d_c, "virtio_scsi", bootable=True))
    refused(env, "attach a non-shareable disk attached to another (running) VM", 409, "POST",
            "/vms/%s/diskattachments" % vm_b, attachment_xml(d_a, "virtio_scsi"))
    refused(env, "attach a non-shareable disk attached to another (down) VM", 409, "POST",
            "/vms/%s/diskattachments" % vm_a, attachment_xml(d_b, "virtio_scsi"))
    refused(env, "attach the same disk twice to a down VM", 409, "POST",
            "/vms/%s/diskattachments" % vm_b, attachment_xml(d_b, "virtio_scsi"))
    refused(env, "attach the same disk twice to a running VM", 409, "POST",
            "/vms/%s/diskattachments" % vm_a, attachment_xml(d_a, "virtio_scsi"))
    refused(env, "hot-plug with interface sata on a running VM", (409, 400), "POST",
            "/vms/%s/diskattachments" % vm_a, attachment_xml(d_c, "sata"))
    refused(env, "DELETE a disk attached to a running VM", 409, "DELETE", "/disks/" + d_a)
    env.check(domblklist(name_a) == blk, "the running VM's disks changed: %r -> %r" % (blk, domblklist(name_a)))
    env.check(domstate(name_b) is None, "the down VM %s got a domain" % name_b)

    # the engine is still usable for the same objects afterwards
    a = env.attach(vm_a, d_c, "virtio_scsi")
    env.check(text(a, "active") == "true", "hot-plug after the refusals: active %r" % text(a, "active"))
    env.check(len(domblklist(name_a) or []) == 2, "hot-plug after the refusals: domblklist %r" % domblklist(name_a))
    env.action(vm_a, "stop")
    env.check(domstate(name_a) is None, "after stop, domain %s is %r" % (name_a, domstate(name_a)))


@case("errors: a body over 1 MiB -> 413, nothing changed, the daemon still serves")
def too_large(env):
    vm_id, _ = env.create_vm()
    name = random_name()
    env.vm_names.add(name)
    big = "x" * (MiB + 64 * 1024)
    refused(env, "POST /vms with a 1.06 MiB body", 413, "POST", "/vms",
            vm_xml(name, extra="<description>%s</description>" % big))
    refused(env, "PUT /vms/{id} with a 1.06 MiB body", 413, "PUT", "/vms/" + vm_id,
            "<vm><description>%s</description></vm>" % big)
    refused(env, "POST /vms with a 1.06 MiB JSON body", 413, "POST", "/vms",
            {"name": name, "description": big, "cluster": {"name": "Default"},
             "template": {"name": "Blank"}, "memory": str(128 * MiB)}, json=True)
    # just under the limit is not 413 (a description that long may still be refused as input)
    r = env.api("PUT", "/vms/" + vm_id, "<vm><description>%s</description></vm>" % ("y" * (MiB - 4096)))
    env.check(r.status in (200, 400), "PUT with a body just under 1 MiB: " + r.short(200))
    r = env.api("GET", "/vms/" + vm_id)
    env.check(r.status == 200, "the daemon does not serve after the 413s: " + r.short())
    env.check(env.daemon.alive(), "the daemon died")
