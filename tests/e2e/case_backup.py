"""9. the Backup API flow: a data VM's disk snapshot attached to a backup appliance (agent) VM.

The agent is a real Linux guest (tests/e2e/appliance.py) that hashes every disk it sees
and prints the hash on its serial console (STATE/console/VM_ID.log); with
snapback.write=1 it then writes 1 MiB into the disk, i.e. into the transient overlay,
which must never reach the snapshot's volume.

The appliance is built (cached) in SNAPBACK_APPLIANCE_DIR, else next to the daemon's build
directory (BUILD/appliance)."""
import glob
import hashlib
import os
import signal
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

import appliance
from harness import (appliance_dir, case, fail, text, ids, random_name, MiB, domstate, domblklist, normalize,
                     sha256, virsh, _short)

DATA_SIZE = 64 * MiB          # the appliance hashes the whole device under TCG: keep it small
AGENT_MEMORY = 268435456
CMDLINE = "console=ttyS0 panic=-1 snapback.write=1"

_appliance = None


def appliance_files(env):
    global _appliance
    if _appliance is None:
        out = appliance_dir(env.binary)
        try:
            _appliance = appliance.ensure_appliance(out)
        except RuntimeError as e:
            fail("cannot build the appliance: %s" % e)
    return _appliance


# ---------------------------------------------------------------------------- helpers

def hash_of_pattern(size, writes):
    """sha256 of a SIZE-byte disk, zero except for writes [(offset, length, byte)]"""
    buf = bytearray(size)
    for off, n, byte in writes:
        buf[off:off + n] = bytes([byte]) * n
    return hashlib.sha256(bytes(buf)).hexdigest()


def raw_hash(path):
    """sha256 of what the image (with its backing chain) holds"""
    fd, tmp = tempfile.mkstemp(prefix="snapback-e2e-raw-")
    os.close(fd)
    try:
        p = subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", path, tmp],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            fail("qemu-img convert %s failed: %s" % (path, p.stderr.strip()))
        return sha256(tmp)
    finally:
        os.unlink(tmp)


def qemu_io(name, disk_id, cmd):
    """runs a qemu-io command on the running disk of domain NAME, then flushes"""
    for c in (cmd, "flush"):
        p = virsh("qemu-monitor-command", name, "--hmp", 'qemu-io -d ua-%s "%s"' % (disk_id, c))
        if p.returncode != 0 or p.stdout.strip() or p.stderr.strip():
            fail("qemu-io %r on %s disk %s failed: rc=%d %s %s"
                 % (c, name, disk_id, p.returncode, p.stdout.strip(), p.stderr.strip()))


def v3(env, method, path, body=None):
    return env.api(method, path, body, headers={"Version": "3"})


def snap_attach_xml(disk_id, snap_id, interface="virtio", bootable=False, active=True):
    return ("<disk_attachment><active>%s</active><bootable>%s</bootable><interface>%s</interface>"
            "<disk id=\"%s\"><snapshot id=\"%s\"/></disk></disk_attachment>"
            % ("true" if active else "false", "true" if bootable else "false", interface,
               disk_id, snap_id))


def create_agent(env, with_os=True):
    """the agent VM (down); with_os: boots the appliance"""
    name = random_name("agent")
    env.vm_names.add(name)
    if with_os:
        kernel, initrd = appliance_files(env)
        os_el = ("<os><type>other</type><kernel>%s</kernel><initrd>%s</initrd><cmdline>%s</cmdline></os>"
                 % (kernel, initrd, CMDLINE))
    else:
        os_el = "<os><type>other</type></os>"
    body = ("<vm><name>%s</name><cluster><name>Default</name></cluster><template><name>Blank</name>"
            "</template><memory>%d</memory><cpu><topology><sockets>1</sockets><cores>1</cores>"
            "<threads>1</threads></topology></cpu>%s</vm>" % (name, AGENT_MEMORY, os_el))
    r = env.api("POST", "/vms", body)
    vm = env.expect(r, 201, "create agent VM %s" % name)
    return vm.get("id"), name


def console(env, vm_id):
    return appliance.ConsoleLog(os.path.join(env.state_dir, "console", vm_id + ".log"))


def wait_line(env, log, regex, timeout, name, what):
    try:
        return log.wait_for(regex, timeout, alive=lambda: domstate(name) == "running")
    except TimeoutError as e:
        fail("%s: %s" % (what, e))


def boot_agent(env, vm_id, name):
    log = console(env, vm_id)
    env.start_vm(vm_id, name)
    wait_line(env, log, appliance.READY_RE, 120, name, "agent %s did not boot" % name)
    return log


def make_data_vm(env, pattern=0x22, size=DATA_SIZE):
    """a running data VM with one virtio_scsi disk holding PATTERN in its first MiB; returns
    (vm_id, name, disk_id, expected sha256 of the disk)"""
    vm_id, name = env.create_vm(random_name("data"))
    d = env.create_disk(random_name("data-disk"), size=size)
    env.attach(vm_id, d, "virtio_scsi", bootable=True)
    env.start_vm(vm_id, name)
    qemu_io(name, d, "write -P 0x%02x 0 1M" % pattern)
    return vm_id, name, d, hash_of_pattern(size, [(0, MiB, pattern)])


def take_snapshot(env, vm_id, desc="e2e backup", wait=True):
    r = env.api("POST", "/vms/%s/snapshots" % vm_id,
                "<snapshot><description>%s</description><persist_memorystate>false"
                "</persist_memorystate></snapshot>" % desc)
    s = env.expect(r, (200, 201, 202), "snapshot of VM %s" % vm_id)
    sid = s.get("id") if isinstance(s, ET.Element) else None
    env.require(sid, "snapshot of VM %s: no id: %s" % (vm_id, r.short()))
    if wait:
        wait_snapshot_ok(env, vm_id, sid)
    return sid


def wait_snapshot_ok(env, vm_id, sid, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        r = env.api("GET", "/vms/%s/snapshots/%s" % (vm_id, sid))
        st = text(r.body, "snapshot_status")
        if r.status == 200 and st == "ok":
            return
        if time.monotonic() > deadline:
            fail("snapshot %s of VM %s not ok after %d s: %s" % (sid, vm_id, timeout, r.short()))
        time.sleep(0.1)


def remove_snapshot(env, vm_id, sid, timeout=60):
    r = env.api("DELETE", "/vms/%s/snapshots/%s" % (vm_id, sid))
    env.expect(r, 200, "remove snapshot %s" % sid)
    deadline = time.monotonic() + timeout
    while True:
        r = env.api("GET", "/vms/%s/snapshots/%s" % (vm_id, sid))
        if r.status == 404:
            return
        if time.monotonic() > deadline:
            fail("snapshot %s still there %d s after DELETE: %s" % (sid, timeout, r.short()))
        time.sleep(0.2)


def snapshot_volume(env, disk_id, snap_id):
    """the file of the disk_snapshot of DISK_ID whose <snapshot id> is SNAP_ID"""
    r = env.api("GET", "/disks/%s/disksnapshots" % disk_id)
    b = env.expect(r, 200, "GET disksnapshots of %s" % disk_id)
    for ds in b.findall("disk_snapshot"):
        s = ds.find("snapshot")
        if s is not None and s.get("id") == snap_id:
            files = glob.glob(os.path.join(env.state_dir, "storage", "*", "images", disk_id, ds.get("id")))
            env.require(len(files) == 1, "no volume file for disk_snapshot %s: %r" % (ds.get("id"), files))
            return files[0]
    fail("GET /disks/%s/disksnapshots has no disk_snapshot of snapshot %s: %s" % (disk_id, snap_id, r.short()))


def transient_files(env, vm_id=None):
    root = os.path.join(env.state_dir, "transient", vm_id or "")
    out = []
    for dirpath, _, names in os.walk(root):
        out += [os.path.join(dirpath, n) for n in names]
    return sorted(out)


def overlay_of(env, name, agent_id, disk_id):
    """the agent's live disk source that is disk_id's transient overlay (None if none)"""
    pre = os.path.join(env.state_dir, "transient", agent_id, disk_id + "-")
    for d in domblklist(name) or []:
        if d["source"].startswith(pre) and d["source"].endswith(".qcow2"):
            return d["source"]
    return None


def check_snap_attachment(env, a, disk_id, snap_id, what):
    if not env.check(isinstance(a, ET.Element) and a.tag == "disk_attachment",
                     "%s: not a <disk_attachment>: %r" % (what, a)):
        return
    env.check(a.get("id") == disk_id, "%s: attachment id %r != disk %s" % (what, a.get("id"), disk_id))
    d = a.find("disk")
    s = d.find("snapshot") if d is not None else None
    env.check(d is not None and d.get("id") == disk_id and s is not None and s.get("id") == snap_id,
              "%s: no <disk id=%s><snapshot id=%s/></disk>: %s"
              % (what, disk_id, snap_id, normalize(a)))


def appliance_sees(env, log, name, disk_id, want, what):
    """waits for the DISK line of disk_id; checks the hash, then WROTE; returns the guest dev"""
    m = wait_line(env, log, appliance.disk_re(serial=disk_id[:20]), 120, name,
                  "%s: the appliance did not report disk %s" % (what, disk_id[:20]))
    env.check(m["sha256"] == want, "%s: the appliance read sha256 %s, the snapshot holds %s"
              % (what, m["sha256"], want))
    env.check(int(m["bytes"]) == DATA_SIZE, "%s: the appliance saw %s bytes, not %d"
              % (what, m["bytes"], DATA_SIZE))
    wait_line(env, log, appliance.wrote_re(m["dev"]), 60, name,
              "%s: the appliance did not write into %s" % (what, m["dev"]))
    env.check(appliance.ERROR_RE.search(log.text()) is None,
              "%s: the appliance reported an error: %s" % (what, appliance.ERROR_RE.search(log.text())))
    return m["dev"]


# ---------------------------------------------------------------------------- 1 + 2: the flow

def backup_flow(env, api_version):
    what = "v%d" % api_version
    data_id, data_name, d, want = make_data_vm(env, 0x22)
    s = take_snapshot(env, data_id, "before backup")
    vol = snapshot_volume(env, d, s)
    env.check(raw_hash(vol) == want, "%s: the snapshot volume %s does not hold pattern A" % (what, vol))
    # the VM goes on writing: pattern B must not reach the backup
    qemu_io(data_name, d, "write -P 0x33 0 1M")
    qemu_io(data_name, d, "write -P 0x44 4M 1M")
    vol_bytes = sha256(vol)

    agent_id, agent_name = create_agent(env)
    log = boot_agent(env, agent_id, agent_name)

    if api_version == 4:
        iface = "virtio"
        r = env.api("POST", "/vms/%s/diskattachments" % agent_id, snap_attach_xml(d, s, iface))
        a = env.expect(r, 201, "v4 attach %s@%s" % (d, s))
        check_snap_attachment(env, a, d, s, "v4 attach")
        r = env.api("GET", "/vms/%s/diskattachments/%s" % (agent_id, d))
        check_snap_attachment(env, r.body, d, s, "GET attachment after v4 attach")
    else:
        iface = "virtio_scsi"
        r = v3(env, "GET", "/vms/%s/snapshots/%s/disks" % (data_id, s))
        env.check(r.status == 200 and d in ids(r.body, "disk"),
                  "v3 GET snapshot disks does not list %s: %s" % (d, r.short()))
        r = v3(env, "POST", "/vms/%s/disks" % agent_id,
               "<disk id=\"%s\"><snapshot id=\"%s\"/><interface>%s</interface><active>true</active></disk>"
               % (d, s, iface))
        b = env.expect(r, (200, 201), "v3 attach %s@%s" % (d, s))
        env.check(isinstance(b, ET.Element) and b.tag == "disk" and b.get("id") == d,
                  "v3 attach: answer is not <disk id=%s>: %s" % (d, r.short()))
        sn = b.find("snapshot") if isinstance(b, ET.Element) else None
        env.check(sn is not None and sn.get("id") == s, "v3 attach: no <snapshot id=%s>: %s" % (s, r.short()))
        r = v3(env, "GET", "/vms/%s/disks" % agent_id)
        env.check(r.status == 200 and d in ids(r.body, "disk"),
                  "v3 GET /vms/{agent}/disks does not list %s: %s" % (d, r.short()))

    ovl = overlay_of(env, agent_name, agent_id, d)
    env.require(ovl, "%s: the agent's live disks hold no overlay of %s under STATE/transient/%s: %r"
                % (what, d, agent_id, domblklist(agent_name)))
    env.check(os.path.isfile(ovl), "%s: overlay %s is not a file" % (what, ovl))
    back = appliance_info_backing(ovl)
    env.check(back == vol, "%s: overlay backing file %r, not the snapshot volume %s" % (what, back, vol))

    dev = appliance_sees(env, log, agent_name, d, want, what)
    env.check(sha256(vol) == vol_bytes, "%s: the snapshot volume's file changed while attached" % what)

    # detach
    if api_version == 4:
        r = env.api("DELETE", "/vms/%s/diskattachments/%s" % (agent_id, d))
    else:
        r = v3(env, "DELETE", "/vms/%s/disks/%s" % (agent_id, d), "<action><detach>true</detach></action>")
    env.expect(r, 200, "%s detach" % what)
    wait_line(env, log, appliance.removed_re(dev), 30, agent_name, "%s: no SNAPBACK-REMOVED for %s" % (what, dev))
    env.check(not os.path.exists(ovl), "%s: overlay %s still exists after detach" % (what, ovl))
    env.check(transient_files(env) == [], "%s: STATE/transient not empty after detach: %r"
              % (what, transient_files(env)))
    env.check(overlay_of(env, agent_name, agent_id, d) is None, "%s: libvirt still runs the overlay: %r"
              % (what, domblklist(agent_name)))
    r = env.api("GET", "/vms/%s/diskattachments" % agent_id)
    env.check(r.status == 200 and d not in ids(r.body, "disk_attachment"),
              "%s: the agent still lists %s after detach: %s" % (what, d, r.short()))
    r = env.api("GET", "/disks/" + d)
    env.check(r.status == 200, "%s: disk %s is gone after detach: %s" % (what, d, r.short()))
    r = env.api("GET", "/vms/%s/diskattachments" % data_id)
    env.check(d in ids(r.body, "disk_attachment"), "%s: the data VM lost disk %s: %s" % (what, d, r.short()))
    env.check(sha256(vol) == vol_bytes, "%s: the snapshot volume's file changed" % what)

    remove_snapshot(env, data_id, s)
    # the data VM's disk now holds B everywhere the merge went
    env.check(domstate(data_name) == "running", "%s: data VM not running after snapshot removal" % what)


def appliance_info_backing(path):
    p = subprocess.run(["qemu-img", "info", "-U", "--output=json", path], capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        return "qemu-img info failed: " + p.stderr.strip()
    import json
    return json.loads(p.stdout).get("backing-filename")


@case("backup: v4 attach a disk snapshot to a running appliance, it reads the snapshot, detach")
def backup_v4(env):
    backup_flow(env, 4)


@case("backup: v3 attach/detach of a disk snapshot (Version: 3)")
def backup_v3(env):
    backup_flow(env, 3)


# ---------------------------------------------------------------------------- 3: agent down

@case("backup: attach while the agent is down, the appliance reads it at boot")
def backup_cold(env):
    data_id, data_name, d, want = make_data_vm(env, 0x5a)
    s = take_snapshot(env, data_id)
    qemu_io(data_name, d, "write -P 0x33 0 1M")
    vol = snapshot_volume(env, d, s)
    vol_bytes = sha256(vol)
    agent_id, agent_name = create_agent(env)
    r = env.api("POST", "/vms/%s/diskattachments" % agent_id, snap_attach_xml(d, s, "virtio"))
    check_snap_attachment(env, env.expect(r, 201, "attach to a down agent"), d, s, "attach to a down agent")
    env.check(transient_files(env) == [], "overlay made for a down VM: %r" % transient_files(env))
    log = console(env, agent_id)
    env.start_vm(agent_id, agent_name)
    ovl = overlay_of(env, agent_name, agent_id, d)
    env.require(ovl and os.path.isfile(ovl), "after start, no overlay of %s in the agent: %r"
                % (d, domblklist(agent_name)))
    wait_line(env, log, appliance.READY_RE, 120, agent_name, "agent did not boot")
    appliance_sees(env, log, agent_name, d, want, "cold attach")
    env.check(sha256(vol) == vol_bytes, "cold attach: the snapshot volume's file changed")
    env.action(agent_id, "stop")
    env.check(domstate(agent_name) in (None, "shut off"), "agent still %r after stop" % domstate(agent_name))
    env.check(transient_files(env) == [], "STATE/transient not empty after stop: %r" % transient_files(env))
    r = env.api("GET", "/vms/%s/diskattachments/%s" % (agent_id, d))
    check_snap_attachment(env, r.body, d, s, "attachment after the agent stopped")
    r = env.api("DELETE", "/vms/%s/diskattachments/%s" % (agent_id, d))
    env.expect(r, 200, "detach from the stopped agent")
    remove_snapshot(env, data_id, s)


# ---------------------------------------------------------------------------- 4: rules

def world(env, vms):
    """env.snapshot() plus snapshots of VMS, the transient dir and the hosts"""
    s = env.snapshot()
    for v in vms:
        r = env.api("GET", "/vms/%s/snapshots" % v)
        s["snapshots " + v] = normalize(r.body) if r.status == 200 else r.short()
    r = env.api("GET", "/hosts")
    s["hosts"] = normalize(r.body) if r.status == 200 else r.short()
    s["transient"] = transient_files(env)
    return s


def refused(env, vms, method, path, body, statuses, what, names=(), headers=None):
    before = world(env, vms)
    r = env.api(method, path, body, headers=headers)
    env.check_fault(r, statuses, what, names)
    after = world(env, vms)
    for k in sorted(set(before) | set(after)):
        if before.get(k) != after.get(k):
            env.check(False, "%s changed %s:\n      before: %s\n      after:  %s"
                      % (what, k, _short(before.get(k)), _short(after.get(k))))
    return r


@case("backup: every refused snapshot attachment names the culprit and changes nothing")
def backup_rules(env):
    data_id, data_name, d, _ = make_data_vm(env)
    s = take_snapshot(env, data_id)
    d_alias = text(env.api("GET", "/disks/" + d).body, "alias")
    other_id, other_name, d2, _ = make_data_vm(env, size=512 * MiB)
    s2 = take_snapshot(env, other_id)
    agent_id, agent_name = create_agent(env, with_os=False)
    own = env.create_disk(random_name("agent-boot"), size=DATA_SIZE)
    env.attach(agent_id, own, "virtio_scsi", bootable=True)
    env.start_vm(agent_id, agent_name)
    vms = [data_id, other_id, agent_id]
    att = "/vms/%s/diskattachments" % agent_id

    nodisk = "0badd15c-0000-4000-8000-00000000dead"
    nosnap = "0bad5a9e-0000-4000-8000-00000000beef"
    refused(env, vms, "POST", att, snap_attach_xml(nodisk, s, "virtio_scsi"), 404, "unknown disk", [nodisk])
    refused(env, vms, "POST", att, snap_attach_xml(d, nosnap, "virtio_scsi"), 404, "unknown snapshot", [nosnap])
    r = env.api("GET", "/vms/%s/snapshots" % data_id)
    active = [x.get("id") for x in r.body.findall("snapshot") if text(x, "snapshot_type") == "active"]
    env.check(len(active) == 1, "data VM has %d active snapshots: %s" % (len(active), r.short()))
    if active:
        refused(env, vms, "POST", att, snap_attach_xml(d, active[0], "virtio_scsi"), 409, "active snapshot",
                [active[0]])
    refused(env, vms, "POST", att, snap_attach_xml(d, s2, "virtio_scsi"), 400,
            "snapshot of a VM that does not own the disk", [s2])
    refused(env, vms, "POST", att, snap_attach_xml(d, s, "virtio_scsi", bootable=True), 409,
            "a second bootable disk", [])

    # a locked snapshot: one being removed (the merge of 2 x 192 MiB takes a while)
    qemu_io(other_name, d2, "write -P 0x11 0 192M")
    s3 = take_snapshot(env, other_id, "to be removed")
    qemu_io(other_name, d2, "write -P 0x12 192M 192M")
    before = {"transient": transient_files(env), "agent": domblklist(agent_name),
              "attachments": normalize(env.api("GET", att).body)}
    env.expect(env.api("DELETE", "/vms/%s/snapshots/%s" % (other_id, s3)), 200, "remove snapshot s3")
    r = env.api("POST", att, snap_attach_xml(d2, s3, "virtio_scsi"))
    st = text(env.api("GET", "/vms/%s/snapshots/%s" % (other_id, s3)).body, "snapshot_status")
    if st == "locked":
        env.check_fault(r, 409, "locked snapshot (being removed)")
        env.check(s3 in r.raw.decode() or "'to be removed'" in r.raw.decode(),
                  "locked snapshot: the fault names neither the snapshot id %s nor its description: %s"
                  % (s3, r.short()))
    else:
        env.check(False, "locked snapshot: the removal of %s ended before the attach was answered (%s); "
                  "not tested" % (s3, r.short()))
    if r.status == 201:
        env.api("DELETE", "%s/%s" % (att, d2))
    r2 = env.api("GET", "%s/%s" % (att, d2))
    env.check(r2.status == 404, "locked snapshot: an attachment appeared: %s" % r2.short())
    env.check(transient_files(env) == before["transient"], "locked snapshot: an overlay appeared")
    env.check(domblklist(agent_name) == before["agent"], "locked snapshot: the agent's disks changed")
    env.check(normalize(env.api("GET", att).body) == before["attachments"],
              "locked snapshot: the agent's attachments changed")
    deadline = time.monotonic() + 60
    while env.api("GET", "/vms/%s/snapshots/%s" % (other_id, s3)).status != 404:
        env.require(time.monotonic() < deadline, "snapshot %s not removed after 60 s" % s3)
        time.sleep(0.2)

    # plugged: D@S on the running agent
    r = env.api("POST", att, snap_attach_xml(d, s, "virtio_scsi"))
    check_snap_attachment(env, env.expect(r, 201, "attach D@S"), d, s, "attach D@S")
    env.require(overlay_of(env, agent_name, agent_id, d), "attach D@S: no overlay in the agent")
    for what, sn, sts in (("the same disk twice", s, 409), ("the same disk twice (other snapshot)", s2, (400, 409))):
        r = refused(env, vms, "POST", att, snap_attach_xml(d, sn, "virtio_scsi"), sts, what)
        env.check(d in r.raw.decode() or d_alias in r.raw.decode(),
                  "%s: the fault names neither disk %s nor its alias %s: %s" % (what, d, d_alias, r.short()))
    refused(env, vms, "POST", "/vms/%s/migrate" % agent_id, "<action/>", 409, "migrate the agent", [s])
    r = env.api("GET", "/hosts")
    hosts = ids(r.body, "host")
    env.check(len(hosts) >= 1, "GET /hosts: " + r.short())
    for h in hosts:
        refused(env, vms, "POST", "/hosts/%s/deactivate" % h, "<action/>", 409, "host maintenance", [s])
    refused(env, vms, "DELETE", "/vms/%s/snapshots/%s" % (data_id, s), None, 409,
            "remove the attached snapshot", ["attached to other VMs"])
    refused(env, vms, "POST", "/vms/%s/snapshots/%s/restore" % (data_id, s), "<action/>", 409,
            "restore a snapshot of the data VM")
    env.action(data_id, "stop")
    refused(env, vms, "POST", "/vms/%s/snapshots/%s/restore" % (data_id, s), "<action/>", 409,
            "restore (data VM down)", ["attached to other VMs"])
    refused(env, vms, "DELETE", "/vms/%s" % data_id, None, 409, "remove the data VM", ["attached to other VMs"])

    # the agent's own snapshot leaves the attachment out
    sa = take_snapshot(env, agent_id, "agent's own")
    r = env.api("GET", "/vms/%s/snapshots/%s/disks" % (agent_id, sa))
    env.check(r.status == 200 and own in ids(r.body, "disk") and d not in ids(r.body, "disk"),
              "the agent's snapshot must list its own disk %s and not %s: %s" % (own, d, r.short()))
    r = env.api("GET", "/disks/%s/disksnapshots" % d)
    env.check(r.status == 200 and sa not in r.raw.decode(),
              "disk %s got a volume in the agent's snapshot %s: %s" % (d, sa, r.short()))

    # after detach everything is allowed again
    env.expect(env.api("DELETE", "%s/%s" % (att, d)), 200, "detach D")
    env.check(transient_files(env) == [], "overlay left after detach: %r" % transient_files(env))
    remove_snapshot(env, data_id, s)


# ---------------------------------------------------------------------------- 5: crash

@case("backup: kill -9 with an overlay plugged; restart keeps it; agent stop removes it")
def backup_crash(env):
    data_id, data_name, d, _ = make_data_vm(env)
    s = take_snapshot(env, data_id)
    agent_id, agent_name = create_agent(env, with_os=False)
    env.start_vm(agent_id, agent_name)
    r = env.api("POST", "/vms/%s/diskattachments" % agent_id, snap_attach_xml(d, s, "virtio_scsi"))
    env.expect(r, 201, "attach D@S")
    ovl = overlay_of(env, agent_name, agent_id, d)
    env.require(ovl and os.path.isfile(ovl), "no overlay plugged: %r" % domblklist(agent_name))

    # unplug / re-plug through PUT: a new overlay each time
    path = "/vms/%s/diskattachments/%s" % (agent_id, d)
    r = env.api("PUT", path, "<disk_attachment><active>false</active></disk_attachment>")
    env.check(r.status == 200 and text(r.body, "active") == "false", "PUT active=false: " + r.short())
    env.check(overlay_of(env, agent_name, agent_id, d) is None and not os.path.exists(ovl),
              "PUT active=false: overlay %s still there / plugged: %r" % (ovl, domblklist(agent_name)))
    env.check(transient_files(env) == [], "PUT active=false: STATE/transient holds %r" % transient_files(env))
    r = env.api("PUT", path, "<disk_attachment><active>true</active></disk_attachment>")
    env.check(r.status == 200 and text(r.body, "active") == "true", "PUT active=true: " + r.short())
    new = overlay_of(env, agent_name, agent_id, d)
    env.require(new and os.path.isfile(new), "PUT active=true: no overlay plugged: %r" % domblklist(agent_name))
    env.check(new != ovl, "PUT active=true re-used the old overlay path %s" % ovl)
    ovl = new

    env.daemon.stop(sig=signal.SIGKILL)
    env._token = None
    env.daemon.start()
    r = env.api("GET", "/vms/%s/diskattachments/%s" % (agent_id, d))
    check_snap_attachment(env, r.body, d, s, "attachment after kill -9 + restart")
    env.check(text(r.body, "active") == "true", "after restart the attachment is not active: %s" % r.short())
    env.check(os.path.isfile(ovl), "after restart the overlay %s is gone" % ovl)
    env.check(overlay_of(env, agent_name, agent_id, d) == ovl,
              "after restart libvirt runs %r, not %s" % (domblklist(agent_name), ovl))
    env.check(transient_files(env) == [ovl], "after restart STATE/transient holds %r" % transient_files(env))
    env.check(env.vm_status(agent_id) == "up", "agent status %r after restart" % env.vm_status(agent_id))

    env.action(agent_id, "stop")
    env.check(domstate(agent_name) in (None, "shut off"), "agent still %r after stop" % domstate(agent_name))
    env.check(transient_files(env) == [], "STATE/transient not empty after the agent stopped: %r"
              % transient_files(env))
