#!/usr/bin/env python3
"""soak.py: cycles of real operations on real VMs with injected faults (issue 13).

    python3 tests/soak/soak.py --daemon build/src/daemon/snapbackd [--cycles 1000] [--seed N]
                               [--small-fs] [--shared-libvirtd] [--max-seconds S]

One data VM runs with one disk; an agent VM runs to take disk snapshots. Each cycle does one
operation: snapshot create (live; the guest's disk gets a new pattern first) or remove (live
merge), attach + detach of a disk snapshot to the agent (API v4 or v3), restore (the data VM
is stopped, restored to a snapshot, started again), an image transfer opened and closed.
With probability --fault-rate a fault is injected while the operation runs:
  kill -9 of snapbackd (then restarted), kill -9 of qemu-nbd (with a transfer), kill -9 of
  the data VM's QEMU, ENOSPC (with --small-fs: storage and transient dirs live on a small
  ext4 file system the harness mounts and then fills), a libvirtd restart (SIGTERM, then a
  new libvirtd: guests go on running, events sent meanwhile are lost).
The guests run under a private libvirtd (privlibvirtd.py: its own mount namespace and
socket), which the engine and virsh reach by URI, so the restart fault disturbs nobody else.
--shared-libvirtd uses the machine's libvirtd instead, without the restart fault.
After every fault, and every 10 cycles, it waits for the engine to settle and checks:
  the store and libvirt agree on every VM (within RECONCILE_S: an event in flight, the
  reconcile after a libvirtd restart); no file in storage that no volume names, no
  transient overlay no attachment owns, no qemu-nbd without an open transfer, no locked
  snapshot; every volume's file exists; every snapshot still has the content it had when
  it was taken (sha256 of the chain); every snapshot create/remove that got 2xx finished
  (exists ok / gone) or failed visibly (an event says so).
Bounded in cycles and in time. Last line: "N passed, N failed"; violations are listed."""
import argparse
import glob
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))

import harness  # noqa: E402
import privlibvirtd  # noqa: E402
from harness import text, ids, domstate, MiB, fail  # noqa: E402
from case_backup import qemu_io, raw_hash, snap_attach_xml, snapshot_volume  # noqa: E402

DISK_SIZE = 8 * MiB       # small: every check hashes each snapshot's chain
SETTLE_S = 90
RECONCILE_S = 10


class Soak:
    def __init__(self, env, rnd, args):
        self.env, self.rnd, self.args = env, rnd, args
        self.violations = []
        self.snap_hash = {}       # snapshot id -> sha256 of its content when taken
        self.promised = []        # (kind, snapshot id, cycle): answered 2xx, must finish or fail visibly
        self.faults = {}
        self.ops = {}
        self.seconds = {}         # operation (with its fault) or "check" -> seconds spent
        self.cycle = 0
        self.filler = None
        self.libvirtd = None      # the private libvirtd (None: the machine's)

    # -- set-up
    def setup(self):
        env = self.env
        self.data_id, self.data_name = env.create_vm(harness.random_name("soak"))
        self.disk = env.create_disk(harness.random_name("soak-disk"), size=DISK_SIZE)
        env.attach(self.data_id, self.disk, interface="virtio_scsi")
        self.agent_id, self.agent_name = env.create_vm(harness.random_name("soak-agent"))
        env.start_vm(self.data_id, self.data_name)
        env.start_vm(self.agent_id, self.agent_name)

    # -- helpers
    def violation(self, msg):
        self.violations.append("cycle %d: %s" % (self.cycle, msg))
        print("  VIOLATION " + msg, flush=True)

    def api(self, method, path, body=None, headers=None):
        try:
            return self.env.api(method, path, body, headers=headers, timeout=120)
        except OSError as e:
            return harness.Response(method, path, 0, {}, str(e).encode(), None)

    def snapshots(self):
        r = self.api("GET", "/vms/%s/snapshots" % self.data_id)
        if r.status != 200:
            return []
        return [(s.get("id"), text(s, "snapshot_status"), text(s, "snapshot_type"))
                for s in r.body.findall("snapshot")]

    def regular_ok(self):
        return [sid for sid, st, ty in self.snapshots() if ty == "regular" and st == "ok"]

    def vm_up(self, vm_id, name):
        r = self.api("GET", "/vms/" + vm_id)
        if r.status == 200 and text(r.body, "status") == "down":
            self.api("POST", "/vms/%s/start" % vm_id, "<action/>")

    # -- operations
    def op_snapshot_create(self):
        pattern = self.rnd.randrange(1, 255)
        if domstate(self.data_name) == "running":
            try:
                qemu_io(self.data_name, self.disk, "write -P 0x%02x 0 1M" % pattern)
            except harness.Failure:
                pass  # the guest may just have been killed
        r = self.api("POST", "/vms/%s/snapshots" % self.data_id,
                     "<snapshot><description>soak %d</description><persist_memorystate>false"
                     "</persist_memorystate></snapshot>" % self.cycle)
        if r.status in (200, 201, 202):
            sid = r.body.get("id")
            self.promised.append(("create", sid, self.cycle))
            return sid
        return None

    def record_hash(self, sid):
        try:
            self.snap_hash[sid] = raw_hash(snapshot_volume(self.env, self.disk, sid))
        except harness.Failure:
            pass

    def op_snapshot_remove(self):
        snaps = self.regular_ok()
        if not snaps:
            return self.op_snapshot_create()
        sid = self.rnd.choice(snaps)
        r = self.api("DELETE", "/vms/%s/snapshots/%s" % (self.data_id, sid))
        if r.status in (200, 202):
            self.forget(sid)
            self.promised.append(("remove", sid, self.cycle))
        return None

    def forget(self, sid):
        """the harness itself removes sid (removal, restore): its creation promise is kept"""
        self.snap_hash.pop(sid, None)
        self.promised = [p for p in self.promised if p[1] != sid]

    def op_attach(self):
        snaps = self.regular_ok()
        if not snaps:
            return self.op_snapshot_create()
        sid = self.rnd.choice(snaps)
        if self.rnd.random() < 0.5:
            r = self.api("POST", "/vms/%s/diskattachments" % self.agent_id,
                         snap_attach_xml(self.disk, sid, interface="virtio_scsi"))
            if r.status == 201:
                time.sleep(self.rnd.random() * 0.3)
                self.api("DELETE", "/vms/%s/diskattachments/%s" % (self.agent_id, self.disk))
        else:
            h = {"Version": "3"}
            r = self.api("POST", "/vms/%s/disks" % self.agent_id,
                         "<disk id=\"%s\"><snapshot id=\"%s\"/><interface>virtio_scsi</interface>"
                         "<active>true</active></disk>" % (self.disk, sid), headers=h)
            if r.status in (200, 201):
                time.sleep(self.rnd.random() * 0.3)
                self.api("DELETE", "/vms/%s/disks/%s" % (self.agent_id, self.disk),
                         "<action><detach>true</detach></action>", headers=h)
        return None

    def op_restore(self):
        snaps = self.regular_ok()
        if not snaps:
            return self.op_snapshot_create()
        sid = self.rnd.choice(snaps)
        self.api("POST", "/vms/%s/stop" % self.data_id, "<action/>")
        r = self.api("POST", "/vms/%s/snapshots/%s/restore" % (self.data_id, sid), "<action/>")
        if r.status in (200, 201, 202):
            # newer snapshots are gone with the restore (as oVirt's)
            present = [x for x, _, _ in self.snapshots()]
            for sid2 in {p[1] for p in self.promised} | set(self.snap_hash):
                if sid2 not in present:
                    self.forget(sid2)
        self.vm_up(self.data_id, self.data_name)
        return None

    def op_transfer(self):
        snaps = self.regular_ok()
        body = "<image_transfer><direction>download</direction><format>raw</format>"
        body += ('<snapshot id="%s"/>' % self.volume_of(snaps[0])) if snaps and self.rnd.random() < 0.5 else ""
        body += '<disk id="%s"/></image_transfer>' % self.disk if "snapshot" not in body else "</image_transfer>"
        r = self.api("POST", "/imagetransfers", body)
        if r.status == 201:
            self.open_transfer = r.body.get("id")
        return None

    def volume_of(self, sid):
        try:
            return os.path.basename(snapshot_volume(self.env, self.disk, sid))
        except harness.Failure:
            return "none"

    def close_transfer(self):
        tid = getattr(self, "open_transfer", None)
        if tid:
            self.api("POST", "/imagetransfers/%s/%s" % (tid, self.rnd.choice(("finalize", "cancel"))), "<action/>")
            self.open_transfer = None

    # -- faults
    def fault_kill_engine(self):
        self.env.daemon.stop(signal.SIGKILL)
        self.env.daemon.start(timeout=120)
        self.env._token = None

    def fault_kill_nbd(self):
        pids = harness.qemu_nbd_pids(self.env.state_dir)
        for p in pids:
            os.kill(p, signal.SIGKILL)
        return bool(pids)

    def fault_kill_guest(self):
        root = self.libvirtd.root if self.libvirtd else "/"
        try:
            with open(os.path.join(root, "run/libvirt/qemu/%s.pid" % self.data_name)) as f:
                os.kill(int(f.read().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            return False
        return True

    def fault_enospc_begin(self):
        if not self.args.small_fs:
            return False
        st = os.statvfs(self.mnt)
        free = st.f_bavail * st.f_frsize
        self.filler = os.path.join(self.mnt, "filler")
        subprocess.run(["fallocate", "-l", str(max(free - 64 * 1024, 0)), self.filler], check=False)
        return True

    def fault_enospc_end(self):
        if self.filler:
            try:
                os.unlink(self.filler)
            except OSError:
                pass
            self.filler = None

    def fault_libvirtd_restart(self):
        # half the time the data guest dies while libvirtd is down: its stop event is never
        # sent, and only the engine's reconcile after the reconnect can notice
        kill = self.rnd.random() < 0.5
        self.libvirtd.restart(between=self.fault_kill_guest if kill else None)
        if kill:
            self.faults["guest_killed_while_libvirtd_down"] = self.faults.get("guest_killed_while_libvirtd_down", 0) + 1

    # -- invariants
    def settle(self):
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            snaps = self.snapshots()
            if snaps and not any(st == "locked" for _, st, _ in snaps):
                return True
            time.sleep(0.3)
        self.violation("snapshots still locked %d s after the fault: %r" % (SETTLE_S, self.snapshots()))
        return False

    def check(self):
        env = self.env
        self.settle()
        time.sleep(0.5)  # lifecycle events of a killed guest
        for vm_id, name in ((self.data_id, self.data_name), (self.agent_id, self.agent_name)):
            r = self.api("GET", "/vms/" + vm_id)
            api_st, virt = text(r.body, "status") if r.status == 200 else r.short(), domstate(name)
            # an event may be in flight, or the reconcile after a libvirtd restart (about a
            # second after libvirtd is back): they must agree within RECONCILE_S
            deadline = time.monotonic() + RECONCILE_S
            while ((api_st == "up") != (virt == "running") or api_st not in ("up", "down")) \
                    and time.monotonic() < deadline:
                time.sleep(0.5)
                r = self.api("GET", "/vms/" + vm_id)
                api_st, virt = text(r.body, "status") if r.status == 200 else r.short(), domstate(name)
            if (api_st == "up") != (virt == "running"):
                self.violation("VM %s is %r in the API but %r in libvirt" % (name, api_st, virt))
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(env.state_dir, "snapback.db"), uri=True, timeout=10)
        try:
            vols = dict(db.execute("SELECT path, id FROM volumes").fetchall())
            overlays = {p for (p,) in db.execute("SELECT overlay_path FROM attachments WHERE overlay_path IS NOT NULL")}
            open_transfers = db.execute("SELECT COUNT(*) FROM image_transfers WHERE phase IN "
                                        "('initializing','transferring','resuming','paused_user',"
                                        "'paused_system','finalizing_success')").fetchone()[0]
        finally:
            db.close()
        for p in vols:
            if not os.path.exists(p):
                self.violation("volume %s lost: %s is gone" % (vols[p], p))
        store = os.path.realpath(os.path.join(env.state_dir, "storage"))
        for f in glob.glob(os.path.join(store, "*", "images", "*", "*")):
            if f not in vols and os.path.join(env.state_dir, "storage", os.path.relpath(f, store)) not in vols:
                self.violation("file %s is named by no volume" % f)
        for f in glob.glob(os.path.join(env.state_dir, "transient", "*", "*")):
            if f not in overlays and os.path.realpath(f) not in {os.path.realpath(o) for o in overlays}:
                self.violation("transient overlay %s is owned by no attachment" % f)
        nbd = harness.qemu_nbd_pids(env.state_dir)
        if nbd and not open_transfers:
            self.violation("qemu-nbd %r runs without an open transfer" % nbd)
        present = {sid: st for sid, st, _ in self.snapshots()}
        for sid, h in list(self.snap_hash.items()):
            if present.get(sid) != "ok":
                continue
            try:
                now = raw_hash(snapshot_volume(env, self.disk, sid))
            except harness.Failure as e:
                self.violation("snapshot %s cannot be read: %s" % (sid, e))
                continue
            if now != h:
                self.violation("snapshot %s changed content" % sid)
        r = self.api("GET", "/events?max=500")
        events = " | ".join(text(e, "description", "") for e in r.body.findall("event")) if r.status == 200 else ""
        for kind, sid, cyc in self.promised:
            if kind == "create" and present.get(sid) != "ok" and sid in present:
                self.violation("snapshot %s created (2xx at cycle %d) is %r" % (sid, cyc, present.get(sid)))
            if kind == "create" and sid not in present and "fail" not in events and "interrupted" not in events \
                    and ("removed" not in events):
                self.violation("snapshot %s created (2xx at cycle %d) vanished without an event" % (sid, cyc))
            if kind == "remove" and sid in present and "fail" not in events:
                self.violation("snapshot %s removed (2xx at cycle %d) still exists, no failure event" % (sid, cyc))
        self.promised = [p for p in self.promised if p[0] == "create" and present.get(p[1]) == "ok"]
        self.promised = []  # checked: each promise is judged once, after its first settle
        if not env.daemon.alive():
            self.violation("snapbackd died")

    # -- the loop
    def run(self, cycles, max_seconds):
        ops = [self.op_snapshot_create, self.op_snapshot_remove, self.op_attach, self.op_restore, self.op_transfer]
        weights = [4, 3, 3, 1, 2]
        faults = ["kill_engine", "kill_nbd", "kill_guest"] + (["enospc"] if self.args.small_fs else []) \
            + (["libvirtd_restart"] if self.libvirtd else [])
        t_end = time.monotonic() + max_seconds
        for self.cycle in range(1, cycles + 1):
            if time.monotonic() > t_end:
                print("time is up after %d cycles" % (self.cycle - 1))
                self.cycle -= 1
                break
            op = self.rnd.choices(ops, weights)[0]
            fault = self.rnd.choice(faults) if self.rnd.random() < self.args.fault_rate else None
            t_cycle = time.monotonic()
            name = op.__name__[3:]
            self.ops[name] = self.ops.get(name, 0) + 1
            if fault == "enospc":
                self.fault_enospc_begin()
            sid = op()
            if fault and fault != "enospc":
                time.sleep(self.rnd.random() * 0.5)
                if fault == "kill_nbd" and not getattr(self, "open_transfer", None):
                    self.op_transfer()
                getattr(self, "fault_" + fault)()
            if fault == "kill_engine":
                self.open_transfer = None
            self.close_transfer()
            if sid:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    st = dict((s, x) for s, x, _ in self.snapshots()).get(sid)
                    if st != "locked":
                        break
                    time.sleep(0.2)
                if st == "ok":
                    self.record_hash(sid)
            if fault:
                self.faults[fault] = self.faults.get(fault, 0) + 1
                self.fault_enospc_end()
                self.vm_up(self.data_id, self.data_name)
                self.vm_up(self.agent_id, self.agent_name)
            t_check = time.monotonic()
            if fault or self.cycle % 10 == 0:
                self.check()
            t_done = time.monotonic()
            self.seconds[name] = self.seconds.get(name, 0) + t_check - t_cycle
            self.seconds["check"] = self.seconds.get("check", 0) + t_done - t_check
            if self.args.verbose:
                print("cycle %d: %s%s %.1f s, check %.1f s" % (self.cycle, name, " + " + fault if fault else "",
                                                             t_check - t_cycle, t_done - t_check), flush=True)
            # keep the chain short: at most 4 snapshots
            if len(self.regular_ok()) > 4:
                self.op_snapshot_remove()
            if self.cycle % 25 == 0:
                print("cycle %d: ops %r faults %r violations %d" % (self.cycle, self.ops, self.faults,
                                                                  len(self.violations)), flush=True)
        self.fault_enospc_end()
        self.check()


def mount_small_fs(env, size_mb=256):
    img = tempfile.mktemp(prefix="snapback-soak-fs-", suffix=".img")
    mnt = tempfile.mkdtemp(prefix="snapback-soak-mnt-")
    subprocess.run(["truncate", "-s", "%dM" % size_mb, img], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
    subprocess.run(["mount", "-o", "loop", img, mnt], check=True)
    for d in ("storage", "transient"):
        os.makedirs(os.path.join(mnt, d))
        os.symlink(os.path.join(mnt, d), os.path.join(env.state_dir, d))
    return img, mnt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--max-seconds", type=int, default=24 * 3600)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--fault-rate", type=float, default=0.3)
    ap.add_argument("--small-fs", action="store_true", help="storage+transient on a small ext4 (ENOSPC faults)")
    ap.add_argument("--shared-libvirtd", action="store_true",
                    help="run the guests under the machine's libvirtd (no libvirtd restart fault)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per cycle")
    args = ap.parse_args()
    def stop(signum, frame):
        raise SystemExit("soak: stopped by signal %d" % signum)  # cleans up in the finally below

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print("soak: seed %d, up to %d cycles / %d s" % (seed, args.cycles, args.max_seconds), flush=True)
    env = harness.Env(os.path.abspath(args.daemon), keep=args.keep)
    img = mnt = None
    s = Soak(env, random.Random(seed), args)
    t0 = time.monotonic()
    try:
        if args.small_fs:  # first: the private libvirtd's namespace copies the mounts it sees
            img, mnt = mount_small_fs(env)
            s.mnt = mnt
        if not args.shared_libvirtd:
            s.libvirtd = privlibvirtd.PrivateLibvirtd()
            s.libvirtd.start()
            harness.VIRSH_URI = s.libvirtd.uri
            env.daemon.extra_args += ["--libvirt-uri", s.libvirtd.uri]
        env.start()
        s.setup()
        s.run(args.cycles, args.max_seconds)
    except (harness.Failure, privlibvirtd.Failure) as e:
        s.violations.append("cycle %d: harness stopped: %s" % (s.cycle, e))
    finally:
        env.close()
        if s.libvirtd:
            s.libvirtd.close()
        if mnt:
            subprocess.run(["umount", "-l", mnt], check=False)
            os.rmdir(mnt)
            os.unlink(img)
    print("soak: %d cycles in %.0f s, ops %r, faults %r, %d violation(s)"
          % (s.cycle, time.monotonic() - t0, s.ops, s.faults, len(s.violations)))
    print("soak: seconds spent %s" % ", ".join("%s %.0f" % kv for kv in sorted(s.seconds.items())))
    for v in s.violations:
        print("FAIL " + v)
    print("%d passed, %d failed" % (0 if s.violations else 1, 1 if s.violations else 0))
    return 1 if s.violations else 0


if __name__ == "__main__":
    sys.exit(main())
