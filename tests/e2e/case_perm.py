"""10. users, roles and permissions with real VMs (the route-table walk is tests/unit/test_perm.c).

Users are made on the host with `snapbackd user add` while the daemon runs, registered
with POST /users as oVirt does, and given roles through the object permission APIs."""
import os
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

from harness import case, fail, text, ids, random_name, domstate, domblklist, MiB

PASSWORD = "user-secret-pw"


def snapbackd(env, *args):
    """runs `snapbackd --state-dir STATE ARGS` next to the running daemon"""
    with tempfile.NamedTemporaryFile("w", prefix="snapback-e2e-pw-", delete=False) as f:
        f.write(PASSWORD + "\n")
    try:
        # --config /dev/null: an installed /etc/snapback/snapbackd.conf (its db) must not apply
        base = [env.binary, "--config", "/dev/null", "--state-dir", env.state_dir, *env.daemon.db_args(), *args]
        p = subprocess.run(base + ["--password-file", f.name] if args[:2] in (("user", "add"), ("user", "password"))
                           else base,
                           capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(f.name)
    if p.returncode != 0:
        fail("snapbackd %s: rc=%d %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    return p.stdout


def add_user(env, name):
    """a new internal user, registered through the API; returns its id"""
    snapbackd(env, "user", "add", name)
    r = env.api("POST", "/users", "<user><user_name>%s@internal</user_name><domain><name>internal-authz"
                "</name></domain></user>" % name)
    u = env.expect(r, 201, "register user %s" % name)
    env.check(text(u, "user_name") == name + "@internal", "POST /users: user_name is %r" % text(u, "user_name"))
    return u.get("id")


def grant(env, coll, obj_id, role, user_id):
    path = "/%s/%s/permissions" % (coll, obj_id) if coll else "/permissions"
    r = env.api("POST", path, "<permission><role><name>%s</name></role><user id=\"%s\"/></permission>"
                % (role, user_id))
    p = env.expect(r, 201, "grant %s on %s %s" % (role, coll or "system", obj_id))
    return p.get("id")


def login(env, name, expect_ok=True):
    r, js = env.token(name + "@internal", PASSWORD)
    if expect_ok:
        env.require(js and js.get("access_token"), "login as %s: %s" % (name, r.short()))
        return js["access_token"]
    env.check(not (js and js.get("access_token")), "login as %s should be refused: %s" % (name, r.short()))
    return None


def visible_vms(env, tok):
    r = env.api("GET", "/vms", token=tok)
    b = env.expect(r, 200, "GET /vms")
    return set(ids(b, "vm"))


def refused(env, r, what, leak=None):
    """404 (or 403) and nothing of the object in the body"""
    env.check(r.status in (403, 404), "%s: expected 404/403, got %s" % (what, r.short()))
    if leak:
        env.check(leak not in r.raw.decode(errors="replace"), "%s: the answer names %r" % (what, leak))


def denial_events(env, user):
    r = env.api("GET", "/events?max=500")
    b = env.expect(r, 200, "GET /events")
    return [text(e, "description") or "" for e in b.findall("event")
            if "permission denied: user '%s@internal'" % user in (text(e, "description") or "")]


@case("permissions: own VM only, cluster to VM inheritance, a locked user, no LOGIN")
def own_vm(env):
    mine, mine_name = env.create_vm(memory=64 * MiB)
    other, other_name = env.create_vm(memory=64 * MiB)
    bob = add_user(env, "bob")

    # no role anywhere: oVirt's refusal of the login itself
    login(env, "bob", expect_ok=False)
    r = env.api("GET", "/vms", headers={"Authorization": "Basic " + __import__("base64").b64encode(
        ("bob@internal:" + PASSWORD).encode()).decode()}, auth=None)
    env.check(r.status == 401 and "not authorized to perform login" in r.raw.decode(errors="replace"),
              "Basic as a user without LOGIN: " + r.short())

    grant(env, "vms", mine, "UserVmManager", bob)
    tok = login(env, "bob")
    r = env.api("GET", "/", token=tok)
    au = env.expect(r, 200, "GET / as bob").find("authenticated_user")
    env.check(au is not None and au.get("id") == bob, "GET / as bob: authenticated_user is not bob")
    env.check(visible_vms(env, tok) == {mine}, "bob's /vms is not just his VM")
    r = env.api("GET", "/vms/" + other, token=tok)
    refused(env, r, "bob GET other VM", other_name)
    env.check(r.status == 404, "bob GET other VM: not 404 as if absent: " + r.short())
    r = env.api("POST", "/vms/%s/start" % other, "<action/>", token=tok)
    refused(env, r, "bob starts other VM", other_name)
    env.check(domstate(other_name) != "running", "bob's refused start ran %s" % other_name)
    r = env.api("POST", "/vms/%s/start" % mine, "<action/>", token=tok)
    env.expect(r, 200, "bob starts his VM")
    env.vm_names.add(mine_name)
    env.check(domstate(mine_name) == "running", "bob's VM %s is %r after start" % (mine_name, domstate(mine_name)))
    r = env.api("POST", "/vms/%s/stop" % mine, "<action/>", token=tok)
    env.expect(r, 200, "bob stops his VM")
    r = env.api("POST", "/storagedomains", "<storage_domain><name>x</name><storage><path>/tmp</path></storage>"
                "</storage_domain>", token=tok)
    env.check(r.status == 403, "bob adds a storage domain: " + r.short())
    r = env.api("GET", "/vms/%s/permissions" % mine, token=tok)
    env.expect(r, 200, "bob lists his VM's permissions")
    env.check(denial_events(env, "bob"), "no audit event names bob's refusals")
    # a 404 hint must not tell bob that an id he cannot see names some object
    r = env.api("GET", "/vms/%s/snapshots/%s" % (mine, other), token=tok)
    env.check(r.status == 404 and "is the id of" not in r.raw.decode(errors="replace"),
              "bob's snapshot lookup with the other VM's id names its kind: " + r.short())
    r = env.api("GET", "/vms/%s/snapshots/%s" % (mine, other))
    env.check(r.status == 404 and "is the id of a VM" in r.raw.decode(errors="replace"),
              "the admin's snapshot lookup with a VM id lacks the hint: " + r.short())

    # inheritance: UserRole on the cluster reaches every VM in it
    carol = add_user(env, "carol")
    r = env.api("GET", "/clusters?max=1")
    cluster = ids(env.expect(r, 200, "clusters"), "cluster")[0]
    grant(env, "clusters", cluster, "UserRole", carol)
    ctok = login(env, "carol")
    env.check({mine, other} <= visible_vms(env, ctok), "carol's cluster role does not show the cluster's VMs")
    r = env.api("POST", "/vms/%s/start" % other, "<action/>", token=ctok)
    env.expect(r, 200, "carol starts a VM of her cluster")
    env.vm_names.add(other_name)
    r = env.api("POST", "/vms/%s/stop" % other, "<action/>", token=ctok)
    env.expect(r, 200, "carol stops it")
    r = env.api("DELETE", "/vms/" + other, token=ctok)
    env.check(r.status == 403, "carol deletes a VM she may only use: " + r.short())

    # a locked user's token stops at once, and it cannot log in; unlocking restores it
    snapbackd(env, "user", "lock", "bob")
    r = env.api("GET", "/vms/" + mine, token=tok)
    env.check(r.status == 401, "bob's token after lock: " + r.short())
    login(env, "bob", expect_ok=False)
    snapbackd(env, "user", "unlock", "bob")
    r = env.api("GET", "/vms/" + mine, token=tok)
    env.check(r.status == 200, "bob's token after unlock: " + r.short())


def take_snapshot(env, tok, vm_id):
    r = env.api("POST", "/vms/%s/snapshots" % vm_id, "<snapshot><description>backup</description>"
                "<persist_memorystate>false</persist_memorystate></snapshot>", token=tok)
    s = env.expect(r, (201, 202), "appliance snapshots VM %s" % vm_id)
    sid = s.get("id")
    deadline = time.monotonic() + 60
    while True:
        r = env.api("GET", "/vms/%s/snapshots/%s" % (vm_id, sid), token=tok)
        if r.status == 200 and text(r.body, "snapshot_status") == "ok":
            return sid
        if time.monotonic() > deadline:
            fail("snapshot %s not ok: %s" % (sid, r.short()))
        time.sleep(0.1)


def snap_attach(disk_id, snap_id):
    return ("<disk_attachment><active>true</active><bootable>false</bootable><interface>virtio_scsi</interface>"
            "<disk id=\"%s\"><snapshot id=\"%s\"/></disk></disk_attachment>" % (disk_id, snap_id))


@case("permissions: the backup appliance account backs up its 3 VMs and nothing else")
def appliance_account(env):
    appliance, appliance_name = env.create_vm(memory=64 * MiB)
    vms = []
    for i in range(4):
        vm_id, name = env.create_vm(memory=64 * MiB)
        disk = env.create_disk(size=8 * MiB)
        env.attach(vm_id, disk)
        vms.append((vm_id, name, disk))
    acct = add_user(env, "backup")
    # a custom role for the sources: snapshots and BACKUP_DISK (LOGIN comes with every role)
    r = env.api("POST", "/roles", "<role><name>BackupSource</name><administrative>false</administrative>"
                "<permits><permit><name>manipulate_vm_snapshots</name></permit><permit id=\"1110\"/></permits></role>")
    role = env.expect(r, 201, "add role BackupSource")
    r = env.api("GET", "/roles/%s/permits" % role.get("id"))
    names = {text(p, "name") for p in env.expect(r, 200, "permits").findall("permit")}
    env.check({"manipulate_vm_snapshots", "backup_disk", "login"} <= names, "BackupSource permits: %r" % names)
    grant(env, "vms", appliance, "UserVmManager", acct)
    for vm_id, _, _ in vms[:3]:
        grant(env, "vms", vm_id, "BackupSource", acct)
    tok = login(env, "backup")
    env.check(visible_vms(env, tok) == {appliance} | {v[0] for v in vms[:3]},
              "the appliance account sees other VMs than its 4")
    # the appliance runs: the disk snapshots are hot-plugged (virtio-scsi unplugs without a guest)
    env.start_vm(appliance, appliance_name)

    # its three VMs: snapshot, attach the disk snapshot to the appliance, download, detach, remove
    for vm_id, name, disk in vms[:3]:
        sid = take_snapshot(env, tok, vm_id)
        r = env.api("POST", "/vms/%s/diskattachments" % appliance, snap_attach(disk, sid), token=tok)
        env.expect(r, 201, "appliance attaches the snapshot of %s" % name)
        env.check(len(domblklist(appliance_name)) == 1, "the running appliance does not have the disk "
                  "snapshot of %s plugged: %r" % (name, domblklist(appliance_name)))
        r = env.api("DELETE", "/vms/%s/diskattachments/%s" % (appliance, disk), token=tok)
        env.expect(r, 200, "appliance detaches the snapshot of %s" % name)
        env.check(domblklist(appliance_name) == [], "the appliance still has a disk after the detach: %r"
                  % domblklist(appliance_name))
    vm_id, name, disk = vms[0]
    r = env.api("GET", "/disks/%s/disksnapshots" % disk, token=tok)
    dsnap = [d.get("id") for d in env.expect(r, 200, "disk snapshots").findall("disk_snapshot")]
    env.require(dsnap, "no disk snapshot of %s" % disk)
    r = env.api("POST", "/imagetransfers", "<image_transfer><direction>download</direction><format>raw</format>"
                "<snapshot id=\"%s\"/></image_transfer>" % dsnap[0], token=tok)
    t = env.expect(r, (200, 201), "appliance downloads its VM's disk snapshot")
    # the transfer and its ticket are the appliance's: another user does not see them
    bob = add_user(env, "bob")
    grant(env, "vms", vm_id, "UserVmManager", bob)
    btok = login(env, "bob")
    r = env.api("GET", "/imagetransfers/" + t.get("id"), token=btok)
    refused(env, r, "bob reads the appliance's transfer")
    r = env.api("POST", "/imagetransfers/%s/cancel" % t.get("id"), "<action/>", token=btok)
    refused(env, r, "bob cancels the appliance's transfer")
    r = env.api("POST", "/imagetransfers/%s/finalize" % t.get("id"), "<action/>", token=tok)
    env.expect(r, 200, "appliance finalizes its transfer")

    # the fourth VM: every step refused as if it did not exist, and nothing changed
    vm4, name4, disk4 = vms[3]
    before = env.snapshot()
    r = env.api("POST", "/vms/%s/snapshots" % vm4, "<snapshot><description>x</description></snapshot>", token=tok)
    refused(env, r, "snapshot of VM 4", name4)
    r = env.api("GET", "/vms/%s/snapshots" % vm4, token=tok)
    refused(env, r, "list snapshots of VM 4", name4)
    r = env.api("GET", "/vms?max=1")
    r = env.api("GET", "/vms/%s/snapshots" % vm4)
    s4 = ids(env.expect(r, 200, "admin lists VM 4's snapshots"), "snapshot")
    r = env.api("POST", "/vms/%s/diskattachments" % appliance, snap_attach(disk4, s4[0]), token=tok)
    refused(env, r, "attach VM 4's disk to the appliance")
    r = env.api("POST", "/imagetransfers", "<image_transfer><direction>download</direction><format>raw</format>"
                "<disk id=\"%s\"/></image_transfer>" % disk4, token=tok)
    refused(env, r, "download VM 4's disk")
    # its own VMs' disks, attached to another VM it does not hold: ATTACH_DISK on the appliance only
    r = env.api("POST", "/vms/%s/diskattachments" % vms[1][0], snap_attach(disk, dsnap[0]), token=tok)
    env.check(r.status == 403, "attach into a source VM (no ATTACH_DISK there): " + r.short())
    env.check_unchanged(before, "the appliance account's refused requests")
    ev = denial_events(env, "backup")
    env.check(any(vm4 in e for e in ev), "no audit event names the refusal on VM 4: %r" % ev[:5])
    env.check(any("AttachDiskToVm" in e or "ATTACH_DISK" in e for e in ev), "no audit event of the refused attach")

    # predefined roles never change
    r = env.api("POST", "/roles/00000000-0000-0000-0000-000000000001/permits", "<permit id=\"1101\"/>")
    env.check_fault(r, 409, "add a permit to SuperUser")
    r = env.api("DELETE", "/roles/def00006-0000-0000-0000-def000000006")
    env.check_fault(r, 409, "remove UserVmManager")
