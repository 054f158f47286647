"""14. Incremental backup, the engine side of oVirt's Backup API: /vms/{vm}/backups and
/checkpoints, persistent qcow2 bitmaps, each disk's backup_mode, the fall back to full, the
rules while a backup runs, and a daemon killed in the ready and finalizing phases.

Every backup is read through its image transfer (transfer_url, NBD) and compared with a
model of the disk (the known writes on zeroes). An incremental backup is rebuilt as a
client does: the previous image, with the ranges of the transfer's dirty bitmap
(qemu:dirty-bitmap:CHECKPOINT) read from the new export."""
import glob
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET

import harness
from harness import case, text, MiB, fail, disk_xml, domstate
from case_snapshots import Layout, live_write, offline_write, last_events, DISK, regular_snaps


# ---------------------------------------------------------------------------- helpers

def inc_vm(env, run=True):
    """a VM with one qcow2 disk with backup=incremental"""
    vm_id, name = env.create_vm()
    r = env.api("POST", "/disks", disk_xml(harness.random_name("disk"), DISK, "cow",
                                           extra="<backup>incremental</backup>"))
    d = env.expect(r, (200, 201, 202), "create a disk with backup=incremental")
    env.require(isinstance(d, ET.Element) and d.get("id"), "create disk: no id: " + r.short())
    env.check(text(d, "backup") == "incremental", "new disk: <backup> is %r" % text(d, "backup"))
    env.wait_disk_ok(d.get("id"))
    env.attach(vm_id, d.get("id"), "virtio_scsi", bootable=True)
    if run:
        env.start_vm(vm_id, name)
    return vm_id, name, d.get("id")


def post_backup(env, vm_id, disks, from_cp=None, query=""):
    body = "<backup><disks>%s</disks>%s</backup>" % (
        "".join('<disk id="%s"/>' % d for d in disks),
        "<from_checkpoint_id>%s</from_checkpoint_id>" % from_cp if from_cp else "")
    return env.api("POST", "/vms/%s/backups%s" % (vm_id, query), body)


def start_backup(env, vm_id, disks, from_cp=None, query=""):
    r = post_backup(env, vm_id, disks, from_cp, query)
    b = env.expect(r, 202, "POST backup of VM %s" % vm_id)
    env.require(isinstance(b, ET.Element) and b.get("id"), "POST backup: no <backup id>: " + r.short())
    env.check(text(b, "phase") in ("initializing", "starting", "ready"),
              "new backup: phase %r" % text(b, "phase"))
    env.check(bool(text(b, "to_checkpoint_id")), "new backup: no to_checkpoint_id")
    env.check(text(b, "from_checkpoint_id") == from_cp,
              "new backup: from_checkpoint_id %r, not %r" % (text(b, "from_checkpoint_id"), from_cp))
    return b.get("id")


def get_backup(env, vm_id, bid):
    r = env.api("GET", "/vms/%s/backups/%s" % (vm_id, bid))
    return env.expect(r, 200, "GET backup %s" % bid)


def wait_phase(env, vm_id, bid, want, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        b = get_backup(env, vm_id, bid)
        if text(b, "phase") in want:
            return b
        if time.monotonic() > deadline:
            fail("backup %s is %r after %d s, not %r; events: %r"
                 % (bid, text(b, "phase"), timeout, want, last_events(env, 6)))
        time.sleep(0.2)


def modes(env, vm_id, bid):
    r = env.api("GET", "/vms/%s/backups/%s/disks" % (vm_id, bid))
    b = env.expect(r, 200, "GET backup disks")
    return {d.get("id"): (text(d, "backup_mode"), text(d, "backup_mode_reason")) for d in b.findall("disk")}


def finalize(env, vm_id, bid, want="succeeded"):
    r = env.api("POST", "/vms/%s/backups/%s/finalize" % (vm_id, bid), "<action/>")
    env.expect(r, 200, "finalize backup %s" % bid)
    b = wait_phase(env, vm_id, bid, ("succeeded", "failed"))
    env.check(text(b, "phase") == want, "backup %s ended %r, not %r; events %r"
              % (bid, text(b, "phase"), want, last_events(env, 6)))
    return b


def nothing_left(env, vm_id, what):
    """no backup snapshot (its removal may still run: up to 60 s), qemu-nbd, scratch file or
    libvirt backup socket of VM vm_id is left"""
    deadline = time.monotonic() + 60
    while (regular_snaps(env, vm_id) or harness.qemu_nbd_pids(env.state_dir)) and time.monotonic() < deadline:
        time.sleep(0.3)
    env.check(not regular_snaps(env, vm_id), "%s: the backup's snapshot is left: %r" % (what, regular_snaps(env, vm_id)))
    env.check(not harness.qemu_nbd_pids(env.state_dir), "%s: an NBD export (qemu-nbd) is left" % what)
    left = glob.glob(os.path.join(env.state_dir, "backups", "*")) + \
        glob.glob(os.path.join(env.state_dir, "transient", vm_id, "backup-*"))
    env.check(not left, "%s: scratch files left: %r" % (what, left))


def run(argv, what):
    p = subprocess.run(argv, capture_output=True, timeout=120)
    if p.returncode != 0:
        fail("%s: %s: %s" % (what, " ".join(argv), (p.stdout + p.stderr).decode(errors="replace")))
    return p.stdout


def read_disk(env, bid, disk_id, base=None, cp=None):
    """reads disk_id of backup bid through an image transfer; with base (the previous
    image) only the ranges of the dirty bitmap cp are taken from the export. Returns
    (image bytes, dirty byte count or None)"""
    body = ('<image_transfer><disk id="%s"/><backup id="%s"/><direction>download</direction>'
            '<format>raw</format></image_transfer>' % (disk_id, bid))
    r = env.api("POST", "/imagetransfers", body)
    t = env.expect(r, 201, "transfer of disk %s of backup %s" % (disk_id, bid))
    env.require(isinstance(t, ET.Element) and text(t, "phase") == "transferring",
                "backup transfer: %s" % r.short())
    url = text(t, "nbd_url")
    data_path = urllib.parse.urlparse(text(t, "transfer_url")).path
    fd, tmp = tempfile.mkstemp(prefix="snapback-e2e-", suffix=".raw")
    os.close(fd)
    try:
        run(["nbdcopy", url, tmp], "read the backup")
        with open(tmp, "rb") as f:
            data = f.read()
        dirty = None
        if base is not None:
            out = run(["nbdinfo", "--json", "--map=qemu:dirty-bitmap:" + cp, url], "dirty map")
            img = bytearray(base)
            dirty = 0
            for e in json.loads(out):
                if e["type"] & 1:
                    o, n = e["offset"], e["length"]
                    img[o:o + n] = data[o:o + n]
                    dirty += n
            data = bytes(img)
            # the imageio data API reports the same changed ranges
            r = harness.http_request(env.port, "GET", data_path + "/extents?context=dirty")
            env.check(r.status == 200 and isinstance(r.body, list), "GET extents?context=dirty: %s" % r.short())
            if r.status == 200 and isinstance(r.body, list):
                got = sum(e["length"] for e in r.body if e.get("dirty"))
                env.check(got == dirty, "extents?context=dirty lists %d dirty bytes, NBD %d" % (got, dirty))
    finally:
        os.unlink(tmp)
        env.expect(env.api("POST", "/imagetransfers/%s/finalize" % t.get("id"), "<action/>"), 200,
                   "finalize the backup transfer")
    return data, dirty


def one_backup(env, vm_id, d, lay, base=None, cp=None, want="full", what="", query=""):
    """a backup from cp (or full), read and checked against lay; returns (image, new cp)"""
    snaps_before = set(regular_snaps(env, vm_id))
    bid = start_backup(env, vm_id, [d], cp, query)
    b = wait_phase(env, vm_id, bid, ("ready", "failed"))
    env.require(text(b, "phase") == "ready", "%s: backup %s is %r; events %r"
                % (what, bid, text(b, "phase"), last_events(env, 6)))
    m = modes(env, vm_id, bid)
    env.check(m.get(d, (None,))[0] == want, "%s: disk backup_mode %r, not %r" % (what, m.get(d), want))
    inc = m.get(d, (None,))[0] == "incremental"
    img, dirty = read_disk(env, bid, d, base if inc else None, cp)
    env.check(img == bytes(lay.buf), "%s: the backup does not read as the disk at its instant" % what)
    b = finalize(env, vm_id, bid)
    left = set(regular_snaps(env, vm_id)) - snaps_before
    env.check(not left, "%s: the backup's snapshot is still listed: %r; events %r"
              % (what, left, last_events(env, 5)))
    return img, text(b, "to_checkpoint_id"), dirty


def model_write(env, name, d, lay, pattern, off, length=MiB):
    """a write through the running guest's QEMU (its bitmaps see it), and into the model"""
    live_write(env, name, d, pattern, off, length)
    lay.write(pattern, off, length)


def backed_up_vm(env, pattern, run=True):
    """a VM (running, or down: its bitmap then saved in the volume) whose incremental disk
    holds PATTERN in its first MiB, backed up in full; returns (vm_id, name, disk_id, layout,
    image, checkpoint)"""
    vm_id, name, d = inc_vm(env, run)
    lay = Layout()
    if run:
        model_write(env, name, d, lay, pattern, 0)
    else:
        offline_write(env, env.disk_file(d), pattern, 0)
        lay.write(pattern, 0)
    img, cp, _ = one_backup(env, vm_id, d, lay, what="full backup")
    return vm_id, name, d, lay, img, cp


def checkpoints(env, vm_id):
    r = env.api("GET", "/vms/%s/checkpoints" % vm_id)
    b = env.expect(r, 200, "GET checkpoints")
    return [(c.get("id"), text(c, "parent_id"), text(c, "state")) for c in b.findall("checkpoint")]


# ---------------------------------------------------------------------------- cases

@case("incremental backup: full, incremental, incremental again of a running then down VM, each byte-identical; the VM stopped in a use_active backup's ready: failed")
def chain(env):
    vm_id, name, d = inc_vm(env)
    lay = Layout()
    live_write(env, name, d, 0x11, 0)
    lay.write(0x11, 0)
    img, cp1, _ = one_backup(env, vm_id, d, lay, what="full backup (running)")
    live_write(env, name, d, 0x22, 4 * MiB, 128 * 1024)
    lay.write(0x22, 4 * MiB, 128 * 1024)
    img, cp2, dirty = one_backup(env, vm_id, d, lay, img, cp1, "incremental", "first incremental (running)")
    env.check(dirty is not None and 0 < dirty <= 1 * MiB,
              "first incremental: %r dirty bytes for a 128 KiB write" % dirty)
    live_write(env, name, d, 0x33, 9 * MiB, 64 * 1024)
    lay.write(0x33, 9 * MiB, 64 * 1024)
    img, cp3, dirty = one_backup(env, vm_id, d, lay, img, cp2, "incremental", "second incremental (running)")
    env.check(dirty is not None and 0 < dirty <= 1 * MiB,
              "second incremental: %r dirty bytes for a 64 KiB write" % dirty)
    cps = checkpoints(env, vm_id)
    env.check([c[0] for c in cps] == [cp1, cp2, cp3] and cps[1][1] == cp1 and cps[2][1] == cp2
              and all(c[2] == "created" for c in cps), "checkpoints: %r" % cps)
    # the VM stops (bitmaps saved by QEMU) during a use_active backup: finalize says failed, and
    # the disk changes offline
    bid = start_backup(env, vm_id, [d], cp3, "?use_active=true")
    env.require(text(wait_phase(env, vm_id, bid, ("ready", "failed")), "phase") == "ready",
                "backup %s failed: %r" % (bid, last_events(env, 4)))
    env.action(vm_id, "stop")
    finalize(env, vm_id, bid, "failed")
    env.check([e for e in last_events(env, 4) if e and all(x in e for x in (bid, name, "failed", "VM stopped"))],
              "no event names backup %s of VM %s, failed because the VM stopped: %r" % (bid, name, last_events(env, 4)))
    nothing_left(env, vm_id, "VM stopped during a use_active backup")
    top = [p for p in env.disk_files(d)]
    env.require(len(top) == 1, "after the backups the disk has %d volumes: %r" % (len(top), top))
    offline_write(env, top[0], 0x44, 12 * MiB, 64 * 1024)
    lay.write(0x44, 12 * MiB, 64 * 1024)
    img, cp4, dirty = one_backup(env, vm_id, d, lay, img, cp3, "incremental", "incremental (VM down)")
    env.check(dirty is not None and 0 < dirty <= 1 * MiB, "down incremental: %r dirty bytes" % dirty)
    # from an older checkpoint: everything since cp2
    img2, _, dirty = one_backup(env, vm_id, d, lay, None, None, "full", "full again (VM down)")
    env.start_vm(vm_id, name)
    live_write(env, name, d, 0x55, 2 * MiB, 64 * 1024)
    lay.write(0x55, 2 * MiB, 64 * 1024)
    one_backup(env, vm_id, d, lay, img, cp4, "incremental", "incremental after a restart of the VM")
    env.check(len(env.disk_files(d)) == 1, "the backups left volumes: %r" % env.disk_files(d))
    env.check(not glob.glob(os.path.join(env.state_dir, "backups", "*")),
              "scratch files left: %r" % glob.glob(os.path.join(env.state_dir, "backups", "*")))


@case("incremental backup: a bitmap removed by hand makes that disk fall back to full, with an event; its checkpoint is invalid from the engine's start; qemu-nbd killed in ready: finalize says failed")
def fallback(env):
    vm_id, name, d = inc_vm(env, run=False)
    lay = Layout()
    offline_write(env, env.disk_file(d), 0x61, MiB)
    lay.write(0x61, MiB)
    img, cp1, _ = one_backup(env, vm_id, d, lay, what="full backup (down)")
    top = env.disk_file(d)
    run(["qemu-img", "bitmap", "--remove", top, cp1], "remove the bitmap by hand")
    # the engine's start finds it (the VM is down): the chain from cp1 is invalid, said once
    env.check(env.restart() == 0, "the engine did not stop cleanly")
    cps = dict((c[0], c[2]) for c in checkpoints(env, vm_id))
    env.check(cps.get(cp1) == "invalid", "after a restart with a lost bitmap: checkpoints %r (%s must be invalid)"
              % (cps, cp1))
    evs = last_events(env, 12)
    inv = [e for e in evs if e and all(x in e for x in (cp1, name, "invalid", "missing"))]
    env.check(len(inv) == 1, "not one event names VM %s and checkpoint %s, invalid for its missing bitmap: %r"
              % (name, cp1, evs))
    offline_write(env, top, 0x62, 3 * MiB)
    lay.write(0x62, 3 * MiB)
    img, cp2, _ = one_backup(env, vm_id, d, lay, img, cp1, "full", "backup after the bitmap was removed")
    evs = last_events(env, 12)
    env.check(any("in full instead of incrementally" in (e or "") and "missing" in (e or "") for e in evs),
              "no event says why the disk fell back to full: %r" % evs)
    cps = dict((c[0], c[2]) for c in checkpoints(env, vm_id))
    env.check(cps.get(cp1) == "invalid" and cps.get(cp2) == "created",
              "after the fall back: checkpoints %r (%s must be invalid, %s created)" % (cps, cp1, cp2))
    # the hybrid backup's qemu-nbd killed while ready: the transfer fails, finalize says failed,
    # nothing is left, no checkpoint is made, and the chain goes on from cp2
    from case_backup_client import backup_transfer, transfer_ended  # it imports this module
    bid = start_backup(env, vm_id, [d], cp2)
    env.require(text(wait_phase(env, vm_id, bid, ("ready", "failed")), "phase") == "ready",
                "backup %s failed: %r" % (bid, last_events(env, 4)))
    t = backup_transfer(env, bid, d, "a transfer of the hybrid backup")
    pids = harness.qemu_nbd_pids(t.get("id"))
    env.require(len(pids) == 1, "the transfer's qemu-nbd: pids %r" % pids)
    os.kill(pids[0], signal.SIGKILL)
    cur = transfer_ended(env, t, 15)
    env.check(text(cur, "phase") == "finished_failure", "qemu-nbd killed: the transfer is %r" % text(cur, "phase"))
    b = finalize(env, vm_id, bid, "failed")
    env.check(not text(b, "to_checkpoint_id") or text(b, "to_checkpoint_id") not in
              [c[0] for c in checkpoints(env, vm_id)], "the failed backup's checkpoint is listed")
    env.check([e for e in last_events(env, 6) if e and all(x in e for x in (bid, name, "failed", "qemu-nbd"))],
              "no event names backup %s of VM %s, failed because its qemu-nbd died: %r" % (bid, name, last_events(env, 6)))
    nothing_left(env, vm_id, "qemu-nbd killed in ready")
    # the chain goes on from the new checkpoint
    offline_write(env, top, 0x63, 5 * MiB)
    lay.write(0x63, 5 * MiB)
    one_backup(env, vm_id, d, lay, img, cp2, "incremental", "incremental after the fall back")


@case("incremental backup: rules while a backup runs; bad input answers a fault and changes nothing")
def rules(env):
    vm_id, name, d = inc_vm(env)
    before = env.snapshot()
    raw = env.api("POST", "/disks", disk_xml(harness.random_name("raw"), DISK, "raw",
                                             extra="<backup>incremental</backup>"))
    env.check_fault(raw, 400, "a raw disk with backup=incremental")
    env.check_fault(post_backup(env, vm_id, [d], from_cp="00000000-0000-0000-0000-000000000000"), 404,
                    "an unknown from_checkpoint_id")
    env.check_fault(post_backup(env, vm_id, []), 400, "a backup without disks")
    env.check_unchanged(before, "refused backups and a refused raw incremental disk")
    # no guest agent answers in this VM: a consistent backup cannot be had
    r = post_backup(env, vm_id, [d], query="?require_consistency=true")
    b = env.expect(r, 202, "a backup with require_consistency=true")
    b = wait_phase(env, vm_id, b.get("id"), ("failed", "ready"))
    env.check(text(b, "phase") == "failed", "require_consistency without a guest agent: the backup is %r"
              % text(b, "phase"))
    evs = last_events(env, 6)
    env.check(any("failed" in (e or "") and "consistent" in (e or "") for e in evs),
              "require_consistency: no event says why the backup failed: %r" % evs)
    env.check(not regular_snaps(env, vm_id) and not checkpoints(env, vm_id),
              "the failed backup left a snapshot or a checkpoint")
    bid = start_backup(env, vm_id, [d])
    env.require(text(wait_phase(env, vm_id, bid, ("ready", "failed")), "phase") == "ready",
                "backup %s failed: %r" % (bid, last_events(env, 4)))
    snap = regular_snaps(env, vm_id)
    env.require(len(snap) == 1, "a ready hybrid backup lists %d snapshots, not its own" % len(snap))
    env.check_fault(post_backup(env, vm_id, [d]), 409, "a second backup of the VM")
    env.check_fault(env.api("DELETE", "/vms/%s/snapshots/%s" % (vm_id, snap[0])), 409,
                    "removing the backup's snapshot")
    env.check_fault(env.api("POST", "/vms/%s/migrate" % vm_id, "<action/>"), 409, "migration")
    env.check_fault(env.api("PUT", "/disks/%s" % d, "<disk><provisioned_size>%d</provisioned_size></disk>"
                            % (2 * DISK)), 409, "resizing a disk of the VM")
    env.check_fault(env.api("POST", "/disks/%s/move" % d,
                            "<action><storage_domain><name>data</name></storage_domain></action>"), 409,
                    "moving a disk of the VM")
    finalize(env, vm_id, bid)
    env.check(not regular_snaps(env, vm_id), "the backup's snapshot stays after finalize; events %r"
              % last_events(env, 5))


def kill_restart(env):
    env.daemon.proc.send_signal(signal.SIGKILL)
    env.daemon.proc.wait(20)
    env.daemon.proc = None
    env._token = None
    env.daemon.start()


def after_crash(env, vm_id, name, d, bid, cp_before, what):
    b = wait_phase(env, vm_id, bid, ("failed", "succeeded"), timeout=30)
    deadline = time.monotonic() + 120
    while regular_snaps(env, vm_id) and time.monotonic() < deadline:
        time.sleep(0.3)
    env.check(not regular_snaps(env, vm_id), "%s: the backup's snapshot is left: %r"
              % (what, regular_snaps(env, vm_id)))
    env.check(not glob.glob(os.path.join(env.state_dir, "backups", "*")), "%s: scratch files left" % what)
    env.check(not harness.qemu_nbd_pids(env.state_dir), "%s: a qemu-nbd still runs" % what)
    cps = checkpoints(env, vm_id)
    env.check(all(c[2] == "created" for c in cps) and cp_before in [c[0] for c in cps],
              "%s: the checkpoint chain is %r" % (what, cps))
    env.check(domstate(name) == "running", "%s: the domain is %r" % (what, domstate(name)))
    return text(b, "phase")


@case("incremental backup: kill -9 in starting, ready and finalizing: backup failed, no snapshot, export or scratch left")
def crash(env):
    vm_id, name, d = inc_vm(env)
    lay = Layout()
    live_write(env, name, d, 0x71, 0)
    lay.write(0x71, 0)
    img, cp1, _ = one_backup(env, vm_id, d, lay, what="full backup")
    live_write(env, name, d, 0x72, 6 * MiB, 64 * 1024)
    lay.write(0x72, 6 * MiB, 64 * 1024)
    # starting (the snapshot is being taken: about a second under TCG)
    seen = None
    for attempt in range(3):
        bid = start_backup(env, vm_id, [d], cp1)
        seen = "initializing"
        while seen == "initializing":
            seen = text(get_backup(env, vm_id, bid), "phase")
        if seen == "starting":
            kill_restart(env)
            break
        wait_phase(env, vm_id, bid, ("ready",))
        finalize(env, vm_id, bid)
        img, cp1 = bytes(lay.buf), checkpoints(env, vm_id)[-1][0]  # later attempts start from it
    env.require(seen == "starting", "the backup was never seen starting in 3 attempts (last %r)" % seen)
    phase = after_crash(env, vm_id, name, d, bid, cp1, "kill -9 in starting")
    env.check(phase == "failed", "kill -9 in starting: the backup is %r, not failed" % phase)
    evs = [e for e in last_events(env, 15) if e and bid in e and name in e and "failed" in e and "starting" in e]
    env.check(evs, "no event names backup %s of VM %s, failed while starting: %r" % (bid, name, last_events(env, 8)))
    # ready, with a transfer open
    bid = start_backup(env, vm_id, [d], cp1)
    env.require(text(wait_phase(env, vm_id, bid, ("ready", "failed")), "phase") == "ready",
                "backup %s failed: %r" % (bid, last_events(env, 4)))
    r = env.api("POST", "/imagetransfers", '<image_transfer><disk id="%s"/><backup id="%s"/>'
                '<direction>download</direction><format>raw</format></image_transfer>' % (d, bid))
    env.expect(r, 201, "transfer before the kill")
    kill_restart(env)
    phase = after_crash(env, vm_id, name, d, bid, cp1, "kill -9 in ready")
    env.check(phase == "failed", "kill -9 in ready: the backup is %r, not failed" % phase)
    # finalizing
    bid = start_backup(env, vm_id, [d], cp1)
    env.require(text(wait_phase(env, vm_id, bid, ("ready", "failed")), "phase") == "ready",
                "backup %s failed: %r" % (bid, last_events(env, 4)))
    env.expect(env.api("POST", "/vms/%s/backups/%s/finalize" % (vm_id, bid), "<action/>"), 200, "finalize")
    kill_restart(env)
    after_crash(env, vm_id, name, d, bid, cp1, "kill -9 in finalizing")
    # the chain still works: an incremental backup from the first checkpoint
    live_write(env, name, d, 0x73, 10 * MiB, 64 * 1024)
    lay.write(0x73, 10 * MiB, 64 * 1024)
    one_backup(env, vm_id, d, lay, img, cp1, "incremental", "incremental after the crashes")


@case("incremental backup: bitmaps survive snapshot create, live and cold merge; a restore invalidates newer checkpoints")
def survive(env):
    from case_snapshots import take_snap, remove_snap
    vm_id, name, d = inc_vm(env)
    lay = Layout()
    live_write(env, name, d, 0x81, 0)
    lay.write(0x81, 0)
    img, cp1, _ = one_backup(env, vm_id, d, lay, what="full backup")
    # live: a snapshot (libvirt carries the bitmaps over), writes, removal (block commit)
    live_write(env, name, d, 0x82, 2 * MiB, 64 * 1024)
    lay.write(0x82, 2 * MiB, 64 * 1024)
    s1 = take_snap(env, vm_id, "live-1")
    live_write(env, name, d, 0x83, 3 * MiB, 64 * 1024)
    lay.write(0x83, 3 * MiB, 64 * 1024)
    remove_snap(env, vm_id, s1)
    img, cp2, dirty = one_backup(env, vm_id, d, lay, img, cp1, "incremental", "after a live snapshot and merge")
    env.check(dirty is not None and dirty <= 2 * MiB, "after live merge: %r dirty bytes" % dirty)
    # offline: a snapshot (qemu-img), writes, removal (qemu-img commit + bitmap merge)
    env.action(vm_id, "stop")
    s2 = take_snap(env, vm_id, "cold-1")
    from case_snapshots import active_path
    offline_write(env, active_path(env, vm_id, d), 0x84, 5 * MiB, 64 * 1024)
    lay.write(0x84, 5 * MiB, 64 * 1024)
    remove_snap(env, vm_id, s2)
    offline_write(env, env.disk_file(d), 0x85, 6 * MiB, 64 * 1024)
    lay.write(0x85, 6 * MiB, 64 * 1024)
    img, cp3, dirty = one_backup(env, vm_id, d, lay, img, cp2, "incremental", "after a cold snapshot and merge")
    env.check(dirty is not None and dirty <= 2 * MiB, "after cold merge: %r dirty bytes" % dirty)
    # restore to a snapshot older than cp4: cp4 is invalid, a backup from it is full
    s3 = take_snap(env, vm_id, "before-cp4")
    img_s3 = bytes(lay.buf)
    offline_write(env, active_path(env, vm_id, d), 0x86, 8 * MiB, 64 * 1024)
    lay.write(0x86, 8 * MiB, 64 * 1024)
    img, cp4, _ = one_backup(env, vm_id, d, lay, img, cp3, "incremental", "incremental on top of a snapshot")
    r = env.api("POST", "/vms/%s/snapshots/%s/restore" % (vm_id, s3), "<action/>")
    env.expect(r, 200, "restore the snapshot older than cp4")
    lay.buf[:] = img_s3
    states = dict((c[0], c[2]) for c in checkpoints(env, vm_id))
    env.check(states.get(cp4) == "invalid" and states.get(cp3) == "created",
              "after the restore: checkpoints %r (cp4 must be invalid, cp3 created)" % states)
    one_backup(env, vm_id, d, lay, img, cp4, "full", "backup from the invalidated checkpoint")


def transient_files(env, vm_id):
    return glob.glob(os.path.join(env.state_dir, "transient", vm_id, "*"))


def jobinfo(name):
    p = harness.virsh("domjobinfo", name)
    return p.stdout.strip()


@case("incremental backup: use_active (libvirt pull backup of the active layer): full, incremental, incremental; kill -9 in ready")
def use_active(env):
    vm_id, name, d = inc_vm(env)
    lay = Layout()
    q = "?use_active=true"
    live_write(env, name, d, 0x91, 0)
    lay.write(0x91, 0)
    bid = start_backup(env, vm_id, [d], None, q)
    env.require(text(wait_phase(env, vm_id, bid, ("ready", "failed")), "phase") == "ready",
                "backup %s failed: %r" % (bid, last_events(env, 4)))
    env.check(not regular_snaps(env, vm_id), "use_active took a snapshot")
    scratch = transient_files(env, vm_id)
    env.check(len(scratch) == 1 and "backup-%s" % bid in scratch[0],
              "use_active: scratch files beside the transient overlays: %r" % scratch)
    # the VM keeps writing; the backup still reads the moment it began
    live_write(env, name, d, 0x92, 0, 64 * 1024)
    img, _ = read_disk(env, bid, d)
    env.check(img == bytes(lay.buf), "use_active full backup does not read as the disk at its start")
    lay.write(0x92, 0, 64 * 1024)
    b = finalize(env, vm_id, bid)
    cp1 = text(b, "to_checkpoint_id")
    env.check(not transient_files(env, vm_id), "scratch left after finalize: %r" % transient_files(env, vm_id))
    env.check("None" in jobinfo(name), "a libvirt job is left after finalize: %s" % jobinfo(name))
    live_write(env, name, d, 0x93, 7 * MiB, 64 * 1024)
    lay.write(0x93, 7 * MiB, 64 * 1024)
    img, cp2, dirty = one_backup(env, vm_id, d, lay, img, cp1, "incremental", "use_active incremental", q)
    env.check(dirty is not None and 0 < dirty <= 1 * MiB, "use_active incremental: %r dirty bytes" % dirty)
    live_write(env, name, d, 0x94, 11 * MiB, 64 * 1024)
    lay.write(0x94, 11 * MiB, 64 * 1024)
    img, cp3, dirty = one_backup(env, vm_id, d, lay, img, cp2, "incremental", "use_active incremental again", q)
    # hybrid and use_active share the chain
    live_write(env, name, d, 0x95, 13 * MiB, 64 * 1024)
    lay.write(0x95, 13 * MiB, 64 * 1024)
    img, cp4, _ = one_backup(env, vm_id, d, lay, img, cp3, "incremental", "hybrid after use_active")
    # kill -9 in ready: the libvirt job, its socket and scratch go at restart
    bid = start_backup(env, vm_id, [d], cp4, q)
    env.require(text(wait_phase(env, vm_id, bid, ("ready", "failed")), "phase") == "ready",
                "backup %s failed: %r" % (bid, last_events(env, 4)))
    # transfers on libvirt's NBD server neither start nor stop it: it serves after a finalize and a cancel
    sock = os.path.join(env.state_dir, "backups", bid, "nbd.sock")
    for verb in ("finalize", "cancel"):
        r = env.api("POST", "/imagetransfers", '<image_transfer><disk id="%s"/><backup id="%s"/><direction>'
                    'download</direction><format>raw</format></image_transfer>' % (d, bid))
        t = env.expect(r, 201, "a transfer of the use_active backup to %s" % verb)
        env.check(text(t, "nbd_url") == "nbd+unix:///%s?socket=%s" % (d, sock), "nbd_url %r" % text(t, "nbd_url"))
        env.expect(env.api("POST", "/imagetransfers/%s/%s" % (t.get("id"), verb), "<action/>"), 200, verb)
        env.check(os.path.exists(sock), "a transfer's %s removed the socket of libvirt's NBD server" % verb)
    read_disk(env, bid, d)
    kill_restart(env)
    b = wait_phase(env, vm_id, bid, ("failed",), timeout=30)
    env.check("None" in jobinfo(name), "kill -9 in ready: libvirt's backup job runs on: %s" % jobinfo(name))
    env.check(not transient_files(env, vm_id), "kill -9 in ready: scratch left: %r" % transient_files(env, vm_id))
    env.check(not glob.glob(os.path.join(env.state_dir, "backups", "*")), "kill -9 in ready: socket dir left")
    live_write(env, name, d, 0x96, 14 * MiB, 64 * 1024)
    lay.write(0x96, 14 * MiB, 64 * 1024)
    one_backup(env, vm_id, d, lay, img, cp4, "incremental", "use_active after the crash", q)
