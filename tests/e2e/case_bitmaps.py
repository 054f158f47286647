"""16. Bitmaps that go wrong, and bitmaps across things that happen to a VM: a bitmap left
in-use by a process killed while it had the volume open (qemu-io, or the guest's QEMU), OVA
export and import, a restart of libvirtd, and the engine killed while a backup starts.

Whatever happens, a backup never fails for a bitmap and never reads short: the disk falls
back to a full backup (backup_mode=full) with an event naming the VM, the backup and the
reason, and the next incremental backup works again from the checkpoint that one made."""
import glob
import json
import os
import signal
import subprocess
import time

import harness
from harness import case, text, MiB, fail, domstate
from case_snapshots import Layout, offline_write, last_events
from case_backup_client import backup_transfer, transfer_ended
from case_incremental import (one_backup, start_backup, wait_phase, checkpoints, finalize, model_write,
                              backed_up_vm, post_backup, modes, read_disk, nothing_left, jobinfo)


def bitmaps_of(path):
    p = subprocess.run(["qemu-img", "info", "-U", "--output=json", path], capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        fail("qemu-img info %s: %s" % (path, p.stderr.strip()))
    data = json.loads(p.stdout).get("format-specific", {}).get("data", {})
    return {b["name"]: b.get("flags", []) for b in data.get("bitmaps", [])}


def fallback_event(env, name, reason, n=15):
    """the event of a disk that fell back to full naming VM name and the reason"""
    return [e for e in last_events(env, n)
            if e and "in full instead of incrementally" in e and name in e and reason in e]


def check_fallback(env, vm_id, name, d, lay, img, cp, what):
    """a backup from cp falls back to full, says why in an event, reads right; returns
    (image, new checkpoint)"""
    img, cp2, _ = one_backup(env, vm_id, d, lay, img, cp, "full", what)
    evs = fallback_event(env, name, "not saved cleanly")
    env.check(evs, "%s: no event names VM %s and says the bitmap was not saved cleanly: %r"
              % (what, name, last_events(env, 8)))
    env.check(any(cp in e for e in evs), "%s: the fall back event does not name checkpoint %s: %r" % (what, cp, evs))
    cps = dict((c[0], c[2]) for c in checkpoints(env, vm_id))
    env.check(cps.get(cp2) == "created", "%s: the fall back made no new checkpoint: %r" % (what, cps))
    env.check(cps.get(cp) == "invalid", "%s: checkpoint %s of the lost bitmap is %r, not invalid"
              % (what, cp, cps.get(cp)))
    return img, cp2


@case("bitmaps: an inconsistent bitmap (qemu-io killed with the volume open) makes the disk fall back to full, with an event")
def inconsistent(env):
    vm_id, name, d, lay, img, cp1 = backed_up_vm(env, 0x51, run=False)
    path = env.disk_file(d)
    # a writer that dies with the volume open leaves the bitmap in-use on disk
    p = subprocess.Popen(["qemu-io", "-f", "qcow2", path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    p.stdin.write(b"write -P 0x52 %d %d\n" % (3 * MiB, 64 * 1024))
    p.stdin.flush()
    line = p.stdout.readline()
    env.require(b"wrote" in line, "qemu-io: %r" % line)
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    p.stdin.close()
    p.stdout.close()
    lay.write(0x52, 3 * MiB, 64 * 1024)
    flags = bitmaps_of(path).get(cp1)
    env.require(flags is not None and "in-use" in flags, "bitmap %s after the kill: flags %r" % (cp1, flags))
    img, cp2 = check_fallback(env, vm_id, name, d, lay, img, cp1, "backup from the inconsistent bitmap")
    offline_write(env, env.disk_file(d), 0x53, 8 * MiB, 64 * 1024)
    lay.write(0x53, 8 * MiB, 64 * 1024)
    one_backup(env, vm_id, d, lay, img, cp2, "incremental", "incremental after the fall back")


def qemu_pid(name):
    with open("/run/libvirt/qemu/%s.pid" % name) as f:
        return int(f.read().strip())


@case("bitmaps: the guest's QEMU killed with -9: bitmaps left in-use or never saved fall back to full with events, their checkpoints invalid; the chain goes on; libvirt's job aborted in ready: finalize says failed")
def in_use(env):
    vm_id, name, d, lay, img, cp1 = backed_up_vm(env, 0x61, run=False)  # bitmap cp1 on disk
    env.start_vm(vm_id, name)  # QEMU opens it: in-use on disk until QEMU saves it
    model_write(env, name, d, lay, 0x62, 4 * MiB, 64 * 1024)
    img, cp2, _ = one_backup(env, vm_id, d, lay, img, cp1, "incremental", "incremental (running)")
    model_write(env, name, d, lay, 0x63, 6 * MiB, 64 * 1024)  # cp2 lives in QEMU only
    os.kill(qemu_pid(name), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while env.vm_status(vm_id) != "down" and time.monotonic() < deadline:
        time.sleep(0.2)
    env.require(env.vm_status(vm_id) == "down", "the VM is %r after its QEMU was killed" % env.vm_status(vm_id))
    on_disk = bitmaps_of(env.disk_file(d))
    env.require("in-use" in on_disk.get(cp1, []) and cp2 not in on_disk,
                "bitmaps after the kill: %r (%s in-use, %s never saved)" % (on_disk, cp1, cp2))
    # down: each falls back to full, saying why
    img, _, _ = one_backup(env, vm_id, d, lay, img, cp2, "full", "backup from the never saved bitmap")
    env.check(fallback_event(env, name, "is missing"), "no event names VM %s and the missing bitmap %s: %r"
              % (name, cp2, last_events(env, 8)))
    img, cp4 = check_fallback(env, vm_id, name, d, lay, img, cp1, "backup from the bitmap left in-use")
    # each lost bitmap broke the chain from its checkpoint: cp1 and every later one are invalid
    states = checkpoints(env, vm_id)
    env.check([c[2] for c in states] == ["invalid"] * (len(states) - 1) + ["created"] and states[-1][0] == cp4,
              "after the lost bitmaps: checkpoints %r (all invalid but %s)" % (states, cp4))
    env.check([e for e in last_events(env, 15) if e and all(x in e for x in (cp1, name, "invalid", "not saved"))],
              "no event says checkpoint %s of VM %s is invalid, its bitmap not saved: %r" % (cp1, name, last_events(env, 8)))
    # running again: the chain goes on from the checkpoint the fall back made
    env.start_vm(vm_id, name)
    model_write(env, name, d, lay, 0x64, 9 * MiB, 64 * 1024)
    img, cp5, _ = one_backup(env, vm_id, d, lay, img, cp4, "incremental", "incremental after the restart")
    # the crashed checkpoint again, running, through libvirt (use_active): still full, never failed
    bid = start_backup(env, vm_id, [d], cp1, "?use_active=true")
    wait_phase(env, vm_id, bid, ("ready",))
    m = modes(env, vm_id, bid).get(d, (None, None))
    env.check(m[0] == "full" and m[1], "use_active from the crashed checkpoint: backup_mode %r" % (m,))
    got, _ = read_disk(env, bid, d)
    env.check(got == bytes(lay.buf), "use_active from the crashed checkpoint: the backup differs from the disk")
    # libvirt's job ends under an open transfer (its NBD server goes): the transfer fails, saying so
    t = backup_transfer(env, bid, d, "a transfer of the use_active backup")
    p = harness.virsh("domjobabort", name)
    env.require(p.returncode == 0, "virsh domjobabort: %s" % p.stderr)
    cur = transfer_ended(env, t, 15)
    env.check(text(cur, "phase") == "finished_failure",
              "libvirt's NBD server went away: the transfer is %r, not finished_failure" % text(cur, "phase"))
    env.check([e for e in last_events(env, 6) if e and all(x in e for x in (t.get("id"), "went away", bid, name))],
              "no event names the transfer, backup %s, VM %s and says its NBD server went away: %r"
              % (bid, name, last_events(env, 6)))
    # what the client read is not the whole point in time: finalize says failed, nothing is left,
    # its checkpoint is dropped, and the next incremental starts from the previous one (cp5)
    b = finalize(env, vm_id, bid, "failed")
    env.check(text(b, "to_checkpoint_id") not in [c[0] for c in checkpoints(env, vm_id)],
              "the aborted backup's checkpoint is listed: %r" % checkpoints(env, vm_id))
    env.check([e for e in last_events(env, 6) if e and all(x in e for x in (bid, name, "failed", "libvirt's backup job"))],
              "no event names backup %s of VM %s, failed because its libvirt job ended: %r"
              % (bid, name, last_events(env, 6)))
    nothing_left(env, vm_id, "libvirt's job aborted")
    env.check("None" in jobinfo(name), "a libvirt job is left after the failed finalize: %s" % jobinfo(name))
    model_write(env, name, d, lay, 0x65, 10 * MiB, 64 * 1024)
    one_backup(env, vm_id, d, lay, img, cp5, "incremental", "use_active incremental after the aborted one",
               "?use_active=true")


@case("bitmaps: OVA export keeps the VM's chain (incremental after it); the import starts without checkpoints or bitmaps, and says so")
def ova(env):
    import shutil
    import tempfile
    from case_ova import export, do_import
    vm_id, name, d, lay, img, cp1 = backed_up_vm(env, 0x71)
    model_write(env, name, d, lay, 0x72, 5 * MiB, 64 * 1024)
    out = tempfile.mkdtemp(prefix="snapback-e2e-ova-")
    try:
        os.chmod(out, 0o755)
        at_export = Layout()
        at_export.buf[:] = lay.buf
        export(env, vm_id, out, "vm.ova")  # running: read from a temporary snapshot, merged after
        model_write(env, name, d, lay, 0x73, 7 * MiB, 64 * 1024)
        img, _, dirty = one_backup(env, vm_id, d, lay, img, cp1, "incremental", "incremental after the export")
        env.check(dirty is not None and dirty <= MiB, "incremental after the export: %r dirty bytes" % dirty)
        new = harness.random_name("ova")
        new_id = do_import(env, os.path.join(out, "vm.ova"), new)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    env.check(not checkpoints(env, new_id), "the imported VM lists checkpoints: %r" % checkpoints(env, new_id))
    evs = [e for e in last_events(env, 10) if e and new in e and "imported" in e]
    env.check(evs and "no checkpoints" in evs[0] and "full" in evs[0],
              "the import event does not say the VM starts without checkpoints: %r" % evs)
    r = env.api("GET", "/vms/%s/diskattachments" % new_id)
    nd = [a.find("disk").get("id") for a in env.expect(r, 200, "imported VM's disks").findall("disk_attachment")]
    env.require(len(nd) == 1, "the imported VM has disks %r" % nd)
    nd = nd[0]
    path = env.disk_file(nd)
    env.check(not bitmaps_of(path), "the imported volume holds bitmaps: %r" % bitmaps_of(path))
    env.check_fault(post_backup(env, new_id, [nd], cp1), 404, "a backup of the imported VM from the source's checkpoint")
    one_backup(env, new_id, nd, at_export, what="first backup of the imported VM")


class PrivateLibvirtd:
    """a libvirtd of this test's own, so that restarting it disturbs nobody: its own mount and
    network namespaces (tmpfs over /run and libvirt's state, a copy of /etc/libvirt without
    domains or autostarted networks) and its socket in a directory of the test; reached as
    qemu:///system?socket=DIR/sock/libvirt-sock"""

    def __init__(self, env):
        import shutil
        import tempfile
        self.dir = tempfile.mkdtemp(prefix="snapback-e2e-libvirtd-")
        etc = os.path.join(self.dir, "etc")
        shutil.copytree("/etc/libvirt", etc, symlinks=True)
        for pattern in ("qemu/*.xml", "qemu/autostart/*", "qemu/networks/autostart/*"):
            for p in glob.glob(os.path.join(etc, pattern)):
                os.unlink(p)
        os.makedirs(os.path.join(self.dir, "sock"))
        with open(os.path.join(etc, "libvirtd.conf"), "a") as f:
            f.write('\nunix_sock_dir = "%s/sock"\n' % self.dir)
        self.sock = os.path.join(self.dir, "sock", "libvirt-sock")
        self.uri = "qemu:///system?socket=" + self.sock
        script = ("set -e; mount --make-rprivate /; for d in /run /var/lib/libvirt /var/cache/libvirt "
                  "/var/log/libvirt; do mount -t tmpfs tmpfs $d; done; mount --bind {d}/etc /etc/libvirt; "
                  "mkdir -p /run/libvirt; virtlogd -d -p {d}/virtlogd.pid; echo $$ > {d}/holder.pid; "
                  "exec sleep 86400").format(d=self.dir)
        self.holder = subprocess.Popen(["unshare", "--mount", "--net", "--fork", "--kill-child", "sh", "-c", script],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       start_new_session=True)
        self.env = env
        self._wait(lambda: os.path.exists(self.path("holder.pid")), "the namespace")
        self.start()

    def path(self, name):
        return os.path.join(self.dir, name)

    def _wait(self, cond, what, timeout=30):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline or self.holder.poll() is not None:
                fail("private libvirtd: %s did not come up: %s" % (what, self.holder.stderr.read1(4096)
                                                                   if self.holder.poll() is not None else "timeout"))
            time.sleep(0.1)

    def _pid(self, name):
        try:
            with open(self.path(name)) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def start(self):
        with open(self.path("holder.pid")) as f:
            holder = f.read().strip()
        subprocess.run(["nsenter", "-t", holder, "-m", "-n", "libvirtd", "-d", "-p", self.path("libvirtd.pid")],
                       check=True, timeout=30)
        self._wait(lambda: subprocess.run(["virsh", "-c", self.uri, "version"], capture_output=True,
                                          timeout=30).returncode == 0, "libvirtd")

    def stop_libvirtd(self):
        pid = self._pid("libvirtd.pid")
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
                time.sleep(0.1)

    def close(self, names):
        import shutil
        for name in names:
            subprocess.run(["virsh", "-c", self.uri, "destroy", name], capture_output=True, timeout=60)
        self.stop_libvirtd()
        pid = self._pid("virtlogd.pid")
        if pid:
            os.kill(pid, signal.SIGTERM)
        self.holder.kill()  # sleep, then the namespace goes with its tmpfs
        self.holder.wait(10)
        self.holder.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@case("bitmaps: a restart of libvirtd (a private one) keeps the chain: hybrid and use_active incrementals after it")
def libvirtd_restart(env):
    import shutil
    lv = PrivateLibvirtd(env)
    shared = harness.VIRSH_URI
    try:
        env.daemon.stop()
        shutil.rmtree(env.state_dir)
        os.makedirs(env.state_dir)
        env.daemon.extra_args += ["--libvirt-uri", lv.uri]
        env.daemon.start()
        env._token = None
        harness.VIRSH_URI = lv.uri  # virsh of the helpers (qemu-io writes, domstate)
        vm_id, name, d, lay, img, cp1 = backed_up_vm(env, 0x91)
        model_write(env, name, d, lay, 0x92, 3 * MiB, 64 * 1024)
        lv.stop_libvirtd()
        lv.start()
        env.check(domstate(name) == "running", "the domain is %r after libvirtd's restart" % domstate(name))
        # while the engine has not reconnected, the VM is unknown and a backup is refused (409):
        # wait for the reconcile to show it up again, as a client would
        deadline = time.monotonic() + 60
        while env.vm_status(vm_id) != "up" and time.monotonic() < deadline:
            time.sleep(0.2)
        env.check(env.vm_status(vm_id) == "up", "the VM is %r 60 s after libvirtd's restart" % env.vm_status(vm_id))
        img, cp2, dirty = one_backup(env, vm_id, d, lay, img, cp1, "incremental", "hybrid after libvirtd's restart")
        env.check(dirty is not None and dirty <= MiB, "after libvirtd's restart: %r dirty bytes" % dirty)
        model_write(env, name, d, lay, 0x93, 6 * MiB, 64 * 1024)
        one_backup(env, vm_id, d, lay, img, cp2, "incremental", "use_active after libvirtd's restart",
                   "?use_active=true")
    finally:
        env.daemon.stop()
        harness.VIRSH_URI = shared
        lv.close(sorted(env.vm_names))
