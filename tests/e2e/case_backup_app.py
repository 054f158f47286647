"""11. snapback, the backup application: backup, restore, verify, an interrupted backup.

The `snapback` CLI (BUILD/src/cli/snapback next to BUILD/src/daemon/snapbackd, or SNAPBACK_CLI) runs against the test's
daemon through the public API and the transfer URLs only, into a repository in a
temporary directory. Every backup is checked against what the engine itself holds:
the bytes of the snapshot's volumes (qemu-img convert -U of the volume and its backing
chain, taken while snapback is paused with SIGSTOP), and after each run the engine must
hold no snapshot, no open transfer and no qemu-nbd of the test's state directory.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import harness
from harness import case, fail, text, ids, MiB, ADMIN_USER, ADMIN_PASSWORD, API
from case_snapshots import vol_path, state_hash, hmp, offline_write, active_path, regular_snaps


# ---------------------------------------------------------------------------- helpers

def cli_path(env):
    p = os.environ.get("SNAPBACK_CLI") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(env.binary))), "cli", "snapback")
    if not os.access(p, os.X_OK):
        fail("no snapback executable at %s (build it, or set SNAPBACK_CLI)" % p)
    return p


class Repo:
    """a repository in a temporary directory and the environment snapback needs"""

    def __init__(self, env):
        self.env = env
        self.dir = tempfile.mkdtemp(prefix="snapback-e2e-repo-")
        self.path = os.path.join(self.dir, "repo")
        self.cli = cli_path(env)
        self.environ = dict(os.environ, SNAPBACK_URL="http://127.0.0.1:%d%s" % (env.port, API),
                            SNAPBACK_USER=ADMIN_USER, SNAPBACK_PASSWORD=ADMIN_PASSWORD,
                            XDG_CONFIG_HOME=self.dir, HOME=self.dir)

    def argv(self, *args):
        return [self.cli] + list(args) + ["--repo", self.path]

    def run(self, *args, timeout=300):
        """runs snapback; returns (exit code, stdout, stderr)"""
        p = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout, env=self.environ)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args, timeout=300):
        """runs snapback --json, which must succeed; returns the parsed JSON"""
        rc, out, err = self.run(*(list(args) + ["--json"]), timeout=timeout)
        if rc != 0:
            fail("snapback %s exited %d: %s %s" % (" ".join(args), rc, out.strip(), err.strip()))
        try:
            return json.loads(out)
        except ValueError:
            fail("snapback %s --json printed no JSON: %r" % (" ".join(args), out[:300]))

    def spawn(self, *args):
        return subprocess.Popen(self.argv(*args) + ["--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=self.environ)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def qemu_nbd_pids(env):
    """qemu-nbd processes serving something of this test's state directory"""
    return harness.qemu_nbd_pids(env.state_dir)


def open_transfers(env):
    r = env.api("GET", "/imagetransfers")
    env.require(r.status == 200, "GET /imagetransfers: " + r.short())
    return [t.get("id") for t in r.body.findall("image_transfer")
            if text(t, "phase") in ("initializing", "transferring", "resuming", "paused_system", "paused_user")]


def check_engine_clean(env, vm_ids, what):
    """no snapshot, no open transfer, no qemu-nbd left behind"""
    deadline = time.monotonic() + 30
    while True:
        snaps = {v: regular_snaps(env, v) for v in vm_ids}
        transfers, nbd = open_transfers(env), qemu_nbd_pids(env)
        if not any(snaps.values()) and not transfers and not nbd:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    env.check(not any(snaps.values()), "%s: snapshots left behind: %r" % (what, snaps))
    env.check(not transfers, "%s: transfers left open: %r" % (what, transfers))
    env.check(not nbd, "%s: qemu-nbd processes left: %r" % (what, nbd))


def two_disk_vm(env, size, run):
    vm_id, name = env.create_vm()
    disks = []
    for i in range(2):
        d = env.create_disk(size=size)
        env.attach(vm_id, d, "virtio_scsi" if i == 0 else "virtio", bootable=(i == 0))
        disks.append(d)
    if run:
        env.start_vm(vm_id, name)
    return vm_id, name, disks


def snapback_snapshot(env, vm_id):
    """(id, status) of the snapshot snapback's backup reads, or (None, None)"""
    r = env.api("GET", "/vms/%s/snapshots" % vm_id)
    if r.status != 200:
        return None, None
    for s in r.body.findall("snapshot"):
        # snapback's own (an engine without the backup API) or the engine's backup snapshot
        if (text(s, "description") or "").startswith(("snapback backup", "Auto-generated for Backup VM")):
            return s.get("id"), text(s, "snapshot_status")
    return None, None


def snapshot_volume(env, vm_id, sid, disk_id):
    r = env.api("GET", "/vms/%s/snapshots/%s/disks" % (vm_id, sid))
    env.require(r.status == 200, "GET snapshot disks: " + r.short())
    for d in r.body.findall("disk"):
        if d.get("id") == disk_id:
            return text(d, "image_id")
    fail("snapshot %s lists no disk %s: %s" % (sid, disk_id, r.short()))


def disk_of_vm(env, vm_id):
    r = env.api("GET", "/vms/%s/diskattachments" % vm_id)
    env.require(r.status == 200, "GET attachments: " + r.short())
    return [(a.get("id"), text(a, "interface"), text(a, "bootable")) for a in r.body.findall("disk_attachment")]


class Writer(threading.Thread):
    """writes 1 MiB blocks into the running VM's disk, one after the other (block k
    gets pattern 0x40+k), until stopped: a point-in-time copy holds a prefix of them"""

    def __init__(self, env, name, disk_id, first_block, blocks):
        super().__init__(daemon=True)
        self.env, self.name, self.disk_id = env, name, disk_id
        self.first, self.blocks, self.done, self.error = first_block, blocks, 0, None
        self.stop = threading.Event()

    def run(self):
        try:
            for k in range(self.blocks):
                if self.stop.is_set():
                    break
                off = (self.first + k) * MiB
                hmp(self.env, self.name, 'qemu-io -d ua-%s "write -P 0x%02x %d %d"'
                    % (self.disk_id, 0x40 + k, off, MiB))
                hmp(self.env, self.name, 'qemu-io -d ua-%s "flush"' % self.disk_id)
                self.done = k + 1
        except Exception as e:  # noqa: BLE001 (reported by the test)
            self.error = str(e)


def raw_image(path):
    """the guest-visible bytes of a volume chain"""
    fd, tmp = tempfile.mkstemp(prefix="snapback-e2e-", suffix=".raw")
    os.close(fd)
    try:
        p = subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", path, tmp], capture_output=True, text=True,
                           timeout=120)
        if p.returncode != 0:
            fail("qemu-img convert -U %s: %s" % (path, p.stderr.strip()))
        with open(tmp, "rb") as f:
            return f.read()
    finally:
        os.unlink(tmp)


# ---------------------------------------------------------------------------- the cases

SIZE = 48 * MiB


@case("snapback: back up a running 2-disk VM while it writes; restore is byte-identical to the snapshot; "
      "an unchanged VM stores no new chunk")
def backup_restore(env):
    repo = Repo(env)
    try:
        # disk 1 (virtio_scsi, bootable) is written live; disk 2 (virtio-blk, which qemu-io -d
        # cannot address) offline before the start
        vm_id, name, disks = two_disk_vm(env, SIZE, run=False)
        offline_write(env, active_path(env, vm_id, disks[1]), 0x22, 0, MiB)
        offline_write(env, active_path(env, vm_id, disks[1]), 0x44, 30 * MiB, 3 * MiB)
        env.start_vm(vm_id, name)
        hmp(env, name, 'qemu-io -d ua-%s "write -P 0x22 0 1M"' % disks[0])
        hmp(env, name, 'qemu-io -d ua-%s "write -P 0x33 9M 6M"' % disks[0])
        hmp(env, name, 'qemu-io -d ua-%s "flush"' % disks[0])

        writer = Writer(env, name, disks[0], 36, 10)     # blocks 36..45 MiB of disk 1
        writer.start()
        time.sleep(0.3)
        proc = repo.spawn("backup", name)
        # pause snapback as soon as its snapshot exists, read the snapshot's volumes
        snap_bytes, sid = {}, None
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            sid, st = snapback_snapshot(env, vm_id)
            if sid:
                break
            time.sleep(0.02)
        env.require(sid, "never saw snapback's snapshot (snapback exited %r: %s)"
                    % (proc.poll(), proc.stderr.read() if proc.poll() is not None else ""))
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 120
            while snapback_snapshot(env, vm_id)[1] != "ok" and time.monotonic() < deadline:
                time.sleep(0.1)
            env.require(snapback_snapshot(env, vm_id)[1] == "ok", "snapback's snapshot never became ok")
            for d in disks:
                snap_bytes[d] = raw_image(vol_path(env, d, snapshot_volume(env, vm_id, sid, d)))
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=300)
        writer.stop.set()
        writer.join(60)
        env.require(writer.error is None, "the writer failed: %s" % writer.error)
        env.require(proc.returncode == 0, "snapback backup exited %d: %s %s" % (proc.returncode, out, err))
        res = json.loads(out)
        env.check(len(res["disks"]) == 2, "backup lists %d disks" % len(res["disks"]))
        env.check(res["snapshot_removed"], "the backup did not remove its snapshot")

        # point in time: disk 1 holds a prefix of the writer's blocks
        img = snap_bytes[disks[0]]
        got = [img[(36 + k) * MiB:(37 + k) * MiB] == bytes([0x40 + k]) * MiB for k in range(10)]
        zero = [img[(36 + k) * MiB:(37 + k) * MiB] == bytes(MiB) for k in range(10)]
        n = sum(got)
        env.check(got[:n] == [True] * n and all(zero[n:]),
                  "the snapshot is not a point-in-time copy: writer blocks present %r, zero %r" % (got, zero))
        for d in disks:
            env.check(snap_bytes[d][:MiB] == b"\x22" * MiB, "the snapshot of %s lacks the data written before" % d)

        # each disk carries a digest over its chunk ids and says how it was read
        import hashlib
        by_id = {d["id"]: d for d in res["disks"]}
        for d in disks:
            env.check(len(by_id.get(d, {}).get("digest") or "") == 64, "disk %s: no digest in %r" % (d, by_id.get(d)))
            env.check(by_id.get(d, {}).get("mode") == "full", "disk %s: mode %r" % (d, by_id.get(d, {}).get("mode")))
        check_engine_clean(env, [vm_id], "after the backup")

        # listed
        lst = repo.ok("backups")
        env.require(len(lst) == 1 and lst[0]["backup"] == res["backup"], "backups lists %r" % lst)

        # restore under a new name
        new = name + "-restored"
        env.vm_names.add(new)
        rr = repo.ok("restore", res["backup"], "--name", new)
        new_id = rr["vm_id"]
        r = env.api("GET", "/vms/" + new_id)
        env.require(r.status == 200, "the restored VM: " + r.short())
        env.check(text(r.body, "name") == new, "restored VM is named %r" % text(r.body, "name"))
        env.check(text(r.body, "memory") == "134217728", "restored VM memory %r" % text(r.body, "memory"))
        atts = disk_of_vm(env, new_id)
        env.require(len(atts) == 2, "the restored VM has %d disks" % len(atts))
        src = {d: (i, b) for d, i, b in disk_of_vm(env, vm_id)}
        for k, d in enumerate(rr["disks"]):
            orig = d["backup_disk_id"]
            att = [a for a in atts if a[0] == d["id"]]
            env.require(att, "restored disk %s is not attached" % d["id"])
            env.check((att[0][1], att[0][2]) == src[orig], "restored disk %s: interface/bootable %r, original %r"
                      % (d["id"], att[0][1:], src[orig]))
            got = raw_image(active_path(env, new_id, d["id"]))
            env.check(hashlib.sha256(got).hexdigest() == hashlib.sha256(snap_bytes[orig]).hexdigest(),
                      "restored disk %s differs from the snapshot of %s" % (d["id"], orig))

        # an unchanged VM: the writer has stopped; the second backup catches up, the third stores nothing
        repo.ok("backup", name)
        third = repo.ok("backup", name)
        env.check(third["chunks_new"] == 0 and third["chunks_reused"] > 0,
                  "a backup of an unchanged VM stored %d new chunks (%d reused)"
                  % (third["chunks_new"], third["chunks_reused"]))
        v = repo.ok("verify")
        env.check(v["ok"] and not v["damaged"], "verify after three backups: %r" % v)
        check_engine_clean(env, [vm_id, new_id], "at the end")
    finally:
        repo.close()


@case("snapback: verify finds a chunk corrupted on purpose, names the backup and exits 3")
def verify_damage(env):
    repo = Repo(env)
    try:
        vm_id, name, disks = two_disk_vm(env, 16 * MiB, run=False)
        offline_write(env, active_path(env, vm_id, disks[0]), 0x5a, 0, 4 * MiB)
        offline_write(env, active_path(env, vm_id, disks[1]), 0x6b, 4 * MiB, 2 * MiB)
        first = repo.ok("backup", name)
        offline_write(env, active_path(env, vm_id, disks[1]), 0x7c, 12 * MiB, 1 * MiB)
        second = repo.ok("backup", name)
        env.check(first["chunks_new"] == 2, "first backup: %d new chunks, expected 2" % first["chunks_new"])
        env.check(second["chunks_new"] == 1 and second["chunks_reused"] == 2,
                  "second backup: %d new, %d reused; expected 1 and 2"
                  % (second["chunks_new"], second["chunks_reused"]))
        env.check(repo.ok("verify")["ok"], "verify of an intact repository fails")

        # corrupt the chunk only the second backup has (0x7c at 12 MiB of disk 2)
        chunks = set()
        for root, _, files in os.walk(os.path.join(repo.path, "chunks")):
            chunks.update(os.path.join(root, f) for f in files)
        newest = max(chunks, key=os.path.getmtime)
        with open(newest, "r+b") as f:
            f.seek(100)
            b = f.read(1)
            f.seek(100)
            f.write(bytes([b[0] ^ 0xff]))
        rc, out, err = repo.run("verify")
        env.check(rc == 3, "verify of a damaged repository exits %d, not 3: %s %s" % (rc, out, err))
        env.check(os.path.basename(newest) in out, "verify does not name the damaged chunk: %s" % out)
        env.check(second["backup"] in out, "verify does not name the affected backup: %s" % out)
        env.check(first["backup"] not in out, "verify names the intact first backup: %s" % out)
        rc, out, err = repo.run("verify", "--json")
        js = json.loads(out) if out.strip().startswith("{") else {}
        env.check(rc == 3 and js.get("damaged") and js["damaged"][0]["backups"] == [second["backup"]],
                  "verify --json: rc %d, %r" % (rc, js))

        # restoring the damaged backup fails cleanly and leaves no VM behind
        before = ids(env.api("GET", "/vms").body, "vm")
        rc, out, err = repo.run("restore", second["backup"], "--name", name + "-bad")
        env.vm_names.add(name + "-bad")
        env.check(rc == 1, "restore of a damaged backup exits %d: %s %s" % (rc, out, err))
        env.check("damaged" in err, "restore does not say the chunk is damaged: %s" % err)
        env.check(ids(env.api("GET", "/vms").body, "vm") == before, "a failed restore left a VM behind")
        # the intact backup still restores
        env.vm_names.add(name + "-good")
        repo.ok("restore", first["backup"], "--name", name + "-good")
        check_engine_clean(env, [vm_id], "after verify and restores")
    finally:
        repo.close()


@case("snapback: a backup killed (-9) during its transfer leaves no complete backup; the next run "
      "cleans up and succeeds")
def killed(env):
    repo = Repo(env)
    try:
        vm_id, name, disks = two_disk_vm(env, 512 * MiB, run=False)
        for d in disks:
            offline_write(env, active_path(env, vm_id, d), 0x11, 0, 384 * MiB)
        env.start_vm(vm_id, name)
        proc = repo.spawn("backup", name, "--workers", "1")
        seen, deadline = None, time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            tr = open_transfers(env)
            if tr:
                seen = tr
                break
            time.sleep(0.01)
        env.require(seen, "never saw snapback's transfer (snapback exited %r)" % proc.poll())
        time.sleep(0.2)
        proc.kill()
        proc.wait(30)
        env.require(proc.returncode == -signal.SIGKILL, "snapback ended with %r before the kill"
                    % proc.returncode)

        lst = repo.ok("backups")
        env.check(lst == [], "a killed backup is listed: %r" % lst)
        env.check(repo.ok("verify")["ok"], "verify after a killed backup fails")

        # the next run removes the leftovers (transfer, snapshot) and succeeds
        rc, out, err = repo.run("backup", name, "--json")
        env.require(rc == 0, "the backup after the kill exited %d: %s %s" % (rc, out, err))
        env.check("left by an interrupted backup" in err, "the next run does not say it cleaned up: %s" % err)
        lst = repo.ok("backups")
        env.check(len(lst) == 1, "after the retry, backups lists %r" % lst)
        check_engine_clean(env, [vm_id], "after the kill and the retry")
        gc = repo.ok("gc")
        env.check(gc["chunks_removed"] == 0, "gc removed %d chunks the complete backup needs?"
                  % gc["chunks_removed"])
        env.check(repo.ok("verify")["ok"], "verify after gc fails")
    finally:
        repo.close()


@case("snapback: options that do not apply, bad values and unknown configuration keys are refused with exit 2")
def cli_refusals(env):
    repo = Repo(env)
    try:
        repo.ok("init")

        def refused(args, words, environ=None):
            p = subprocess.run(repo.argv(*args), capture_output=True, text=True, timeout=60,
                               env=environ or repo.environ)
            env.check(p.returncode == 2, "snapback %s: exit %d, expected 2 (%s)" % (" ".join(args), p.returncode,
                                                                               p.stderr.strip()))
            env.check(words in p.stderr, "snapback %s: the message %r does not say %r"
                      % (" ".join(args), p.stderr.strip(), words))
            return p

        before = env.api("GET", "/vms").body.findall("vm")
        refused(["restore", "x", "--dry-run", "--name", "never-made"], "'--dry-run' does not apply to 'restore'")
        after = env.api("GET", "/vms").body.findall("vm")
        env.check(len(after) == len(before), "restore --dry-run created something")
        refused(["gc", "--keep-last", "2"], "'--keep-last' does not apply to 'gc'")
        refused(["verify", "--workers", "0"], "--workers")
        refused(["backups", "--full"], "'--full' does not apply")
        refused(["backups", "--key-file", os.path.join(repo.dir, "key")], "not encrypted")
        refused(["backups", "a", "b"], "unexpected argument 'b'")
        refused(["frobnicate"], "unknown command")
        # under --json, the documented {"error", "code"}
        p = refused(["prune", "--workers", "2", "--json"], "does not apply")
        try:
            js = json.loads(p.stdout)
            env.check(set(js) == {"error", "code"} and js["code"] == "usage", "usage error JSON %r" % js)
        except ValueError:
            env.check(False, "a usage error under --json printed %r" % p.stdout)
        # an unknown key in the configuration file
        with open(os.path.join(repo.dir, "snapback.conf"), "w") as f:
            f.write("repo = %s\nkeyfile = /nowhere\n" % repo.path)
        refused(["backups"], "unknown key 'keyfile'")
        os.unlink(os.path.join(repo.dir, "snapback.conf"))
        # backups of one VM: none yet, and no error
        env.check(repo.ok("backups", "--vm", "nobody") == [], "backups --vm nobody is not empty")
    finally:
        repo.close()


def set_backup_incremental(env, disk_id):
    """disk.backup=incremental where the engine knows it (the backup API's engines)"""
    r = env.api("PUT", "/disks/" + disk_id, "<disk><backup>incremental</backup></disk>")
    return r.status == 200


@case("snapback: full, incremental, incremental again, each restored byte-identical; prune and gc keep the latest "
      "restorable; backups VM, ambiguous prefixes, restore onto an existing name")
def incremental(env):
    repo = Repo(env)
    try:
        vm_id, name = env.create_vm()
        disk = env.create_disk(size=64 * MiB)
        env.attach(vm_id, disk, "virtio_scsi", bootable=True)
        set_backup_incremental(env, disk)
        has_api = env.api("GET", "/vms/%s/backups" % vm_id).status == 200
        path = active_path(env, vm_id, disk)
        offline_write(env, path, 0x11, 0, 8 * MiB)
        offline_write(env, path, 0x12, 40 * MiB, 4 * MiB)
        states, runs = [], []
        for step in range(3):
            if step:
                # scattered 64 KiB writes, one of them zeroing data, one across a 4 MiB boundary
                for k, off in enumerate((1 * MiB, 5 * MiB + 64 * 1024, 41 * MiB, 60 * MiB)):
                    offline_write(env, path, 0x20 + step * 4 + k, off, 64 * 1024)
                offline_write(env, path, 0x00, 2 * MiB, 64 * 1024)
                offline_write(env, path, 0x30 + step, 4 * MiB - 32 * 1024, 64 * 1024)
            states.append(raw_image(path))
            runs.append(repo.ok("backup", name))
        modes = [[d["mode"] for d in r["disks"]] for r in runs]
        if has_api:
            env.check(modes == [["full"], ["incremental"], ["incremental"]], "backup modes %r (why: %r)"
                      % (modes, [[d.get("why") for d in r["disks"]] for r in runs]))
            env.check(runs[1]["bytes_read"] < 2 * MiB, "the incremental backup read %d bytes" % runs[1]["bytes_read"])
            env.check(runs[1]["bytes_stored"] < 2 * MiB, "the incremental backup stored %d bytes"
                      % runs[1]["bytes_stored"])
        else:
            env.check(modes == [["full"]] * 3, "backup modes without the engine's backup API %r" % modes)
            print("    note: the engine has no VM backup API: every run was full (through a snapshot)")

        # --full forces a full backup, and says so
        forced = repo.ok("backup", name, "--full")
        env.check([(d["mode"], d.get("why")) for d in forced["disks"]] == [("full", "--full was given")]
                  or not has_api, "backup --full: %r" % forced["disks"])
        runs_all = runs + [forced]
        lst = repo.ok("backups", name)
        env.require([b["backup"] for b in lst] == [r["backup"] for r in runs_all], "backups %s lists %r"
                    % (name, lst))
        # an ambiguous prefix names its matches
        rc, out, err = repo.run("restore", runs[0]["backup"][:8], "--name", "never")
        env.check(rc == 1 and "ambiguous" in err and runs[2]["backup"] in err, "ambiguous prefix: %d %s" % (rc, err))
        # onto the existing name: refused, --name suggested, nothing created
        nvms = len(env.api("GET", "/vms").body.findall("vm"))
        rc, out, err = repo.run("restore", runs[0]["id"])
        env.check(rc == 1 and "--name" in err, "restore onto the existing name: %d %s" % (rc, err))
        env.check(len(env.api("GET", "/vms").body.findall("vm")) == nvms, "restore onto an existing name created a VM")

        def restored_equals(run, want, label):
            new = "%s-r%s" % (name, label)
            env.vm_names.add(new)
            rr = repo.ok("restore", run["backup"], "--name", new)
            rpath = active_path(env, rr["vm_id"], rr["disks"][0]["id"])
            got = raw_image(rpath)
            env.check(got == want, "restore of backup %s (%s) is not byte-identical" % (label, run["backup"]))
            # sparse: zero ranges inside a 4 MiB block are not written (block 15 holds one 64 KiB write)
            m = subprocess.run(["qemu-img", "map", "-U", "--output=json", rpath], capture_output=True, text=True)
            allocated = sum(e["length"] for e in json.loads(m.stdout) if e.get("data")) if m.returncode == 0 else -1
            nonzero = sum(1 for k in range(0, len(want), 65536) if want[k:k + 65536].strip(b"\0"))
            env.check(0 <= allocated <= nonzero * 65536 + MiB, "restore of backup %s allocates %d bytes for %d "
                      "non-zero 64 KiB pieces" % (label, allocated, nonzero))
            r = env.api("DELETE", "/vms/%s?detach_only=false" % rr["vm_id"])
            env.check(r.status in (200, 202), "removing the restored VM: " + r.short())

        for k in range(3):
            restored_equals(runs[k], states[k], str(k))
        # prune the backups the last incremental one was based on, gc: it still restores
        repo.ok("prune", "--keep-last", "2")  # keeps the last incremental and the forced full
        repo.ok("gc")
        env.check(repo.ok("verify")["ok"], "verify after prune and gc fails")
        restored_equals(runs[2], states[2], "2b")
        check_engine_clean(env, [vm_id], "at the end")
    finally:
        repo.close()


@case("snapback: an incremental backup of a running VM reads it live (use_active: no snapshot), only what changed, "
      "and restores byte-identical")
def live_incremental(env):
    repo = Repo(env)
    try:
        vm_id, name = env.create_vm()
        disk = env.create_disk(size=16 * MiB)
        env.attach(vm_id, disk, "virtio_scsi", bootable=True)
        if not set_backup_incremental(env, disk) or env.api("GET", "/vms/%s/backups" % vm_id).status != 200:
            raise harness.Skip("the engine has no VM backup API")
        env.start_vm(vm_id, name)
        dev = "ua-" + disk
        hmp(env, name, 'qemu-io -d %s "write -P 0x51 0 3M"' % dev)
        full = repo.ok("backup", name)
        # random bytes at scattered offsets, one piece across a 4 MiB boundary
        src = tempfile.mkdtemp(prefix="snapback-e2e-live-")
        os.chmod(src, 0o755)
        try:
            for k, off in enumerate((1 * MiB, 4 * MiB - 32 * 1024, 9 * MiB, 15 * MiB)):
                piece = os.path.join(src, "p%d" % k)
                with open(piece, "wb") as f:
                    f.write(os.urandom(64 * 1024))
                os.chmod(piece, 0o644)
                hmp(env, name, 'qemu-io -d %s "write -s %s %d 64k"' % (dev, piece, off))
            hmp(env, name, 'qemu-io -d %s "flush"' % dev)
        finally:
            shutil.rmtree(src, ignore_errors=True)
        want = raw_image(active_path(env, vm_id, disk))
        inc = repo.ok("backup", name)
        env.check([d["mode"] for d in inc["disks"]] == ["incremental"], "live incremental: modes %r (why %r)"
                  % ([d["mode"] for d in inc["disks"]], [d.get("why") for d in inc["disks"]]))
        # 64 KiB granules: the piece across the 4 MiB boundary dirties two
        env.check(inc["bytes_read"] <= 5 * 64 * 1024, "live incremental read %d bytes for 256 KiB changed"
                  % inc["bytes_read"])
        # the engine's backups: the full one through a snapshot, the incremental one live
        import re
        evs = env.api("GET", "/events").body.findall("event")
        snapped = {m for e in evs for m in re.findall(r"Auto-generated for Backup VM \(backup ([0-9a-f-]+)\)",
                                                     text(e, "description") or "")}
        env.check(len(snapped) == 1, "backups that took a snapshot: %r (want the full one only)" % snapped)
        env.check(full["checkpoint_id"] and inc["checkpoint_id"], "checkpoints %r %r"
                  % (full["checkpoint_id"], inc["checkpoint_id"]))
        new = name + "-live"
        env.vm_names.add(new)
        rr = repo.ok("restore", inc["backup"], "--name", new)
        got = raw_image(active_path(env, rr["vm_id"], rr["disks"][0]["id"]))
        env.check(got == want, "restore of the live incremental backup is not byte-identical")
        check_engine_clean(env, [vm_id], "after the live incremental backup")
    finally:
        repo.close()


@case("snapback: a client that cannot reach the NBD export (another user, as for a remote engine) backs up and "
      "restores over the HTTP data URL, byte-identical")
def http_fallback(env):
    import pwd
    nobody = pwd.getpwnam("nobody")
    repo = Repo(env)
    try:
        # the repository and the configuration belong to nobody, who cannot open the
        # transfers' NBD sockets in the engine's state directory
        os.chown(repo.dir, nobody.pw_uid, nobody.pw_gid)
        vm_id, name = env.create_vm()
        disk = env.create_disk(size=24 * MiB)
        env.attach(vm_id, disk, "virtio_scsi", bootable=True)
        path = active_path(env, vm_id, disk)
        offline_write(env, path, 0x5a, 0, 3 * MiB)
        offline_write(env, path, 0x5b, 17 * MiB, 64 * 1024)
        set_backup_incremental(env, disk)
        has_api = env.api("GET", "/vms/%s/backups" % vm_id).status == 200

        def as_nobody(*args):
            p = subprocess.run(["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid,
                                "--clear-groups"] + repo.argv(*args, "--json"),
                               capture_output=True, text=True, timeout=300, env=repo.environ)
            env.require(p.returncode == 0, "%s as nobody exited %d: %s %s" % (args[0], p.returncode, p.stdout,
                                                                            p.stderr))
            return json.loads(p.stdout), p.stderr

        def backup_as_nobody():
            res, err = as_nobody("backup", name)
            env.check("reading over HTTP" in err, "the backup does not say it read over HTTP: %s" % err)
            return res

        res = backup_as_nobody()
        env.check(res["bytes_read"] <= 4 * MiB, "read %d bytes of 3 MiB + 64 KiB written" % res["bytes_read"])
        # an incremental backup over HTTP (where the engine has the backup API)
        offline_write(env, path, 0x5c, 9 * MiB, 64 * 1024)
        want = raw_image(path)
        res = backup_as_nobody()
        if has_api:
            env.check(res["disks"][0]["mode"] == "incremental" and res["bytes_read"] <= 128 * 1024,
                      "the second backup over HTTP: %r" % res["disks"])
        # the restore cannot reach the upload's NBD export either: it writes over HTTP
        new = name + "-http"
        env.vm_names.add(new)
        rr, err = as_nobody("restore", res["backup"], "--name", new)
        env.check("writing over HTTP" in err, "the restore does not say it wrote over HTTP: %s" % err)
        got = raw_image(active_path(env, rr["vm_id"], rr["disks"][0]["id"]))
        env.check(got == want, "the backup read over HTTP does not restore byte-identical over HTTP")
        check_engine_clean(env, [vm_id, rr["vm_id"]], "at the end")
    finally:
        subprocess.run(["chown", "-R", "root:root", repo.dir])
        repo.close()
