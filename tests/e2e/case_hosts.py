"""14. several hosts: a second libvirtd on this machine (scripts/test-host.sh, its own mount,
network and PID namespaces, qemu+tcp on a veth pair) added with POST /hosts; VMs placed on
each host, live migration both ways with the disk's data checked, the seed's refusals while a
disk snapshot is plugged, and a host whose libvirtd dies and comes back.

The test host is made once for this module and removed at exit. When it cannot be made (not
root, no unshare) the cases skip with the reason; SNAPBACK_SKIP_HOSTS=1 skips them too (the
sanitizer pass: the daemon's code is the same, the QEMU work is not worth doing twice)."""
import atexit
import glob
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from xml.sax.saxutils import escape

import appliance
from harness import (Skip, case, fail, text, ids, random_name, MiB, domstate, virsh, disk_xml, http_request)
from case_backup import appliance_files, console, snap_attach_xml, take_snapshot, wait_line, transient_files
from case_incremental import start_backup, wait_phase, modes, finalize, read_disk, kill_restart
from case_snapshots import Layout, DISK, last_events

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "test-host.sh")
HOST_NAME = "e2e%d" % os.getpid()
DATA_SIZE = 16 * MiB

_host = {}   # "uri" once up, "why" when it cannot be


def test_host():
    """the URI of this run's second host, made on first use; Skip when it cannot be made"""
    if os.environ.get("SNAPBACK_SKIP_HOSTS") == "1":
        raise Skip("SNAPBACK_SKIP_HOSTS=1")
    if "why" in _host:
        raise Skip(_host["why"])
    if "uri" not in _host:
        if os.geteuid() != 0:
            _host["why"] = "scripts/test-host.sh needs root"
            raise Skip(_host["why"])
        p = subprocess.run([SCRIPT, "up", HOST_NAME], capture_output=True, text=True, timeout=120)
        lines = p.stdout.strip().splitlines()
        if p.returncode != 0 or not lines:
            _host["why"] = "scripts/test-host.sh up failed: %s" % (p.stderr.strip() or p.stdout.strip())
            raise Skip(_host["why"])
        _host["uri"] = lines[-1]
        atexit.register(lambda: subprocess.run([SCRIPT, "down", HOST_NAME], capture_output=True, timeout=60))
    return _host["uri"]


def rvirsh(uri, *args):
    return subprocess.run(["virsh", "-c", uri] + list(args), capture_output=True, text=True, timeout=60)


def rdomstate(uri, name):
    p = rvirsh(uri, "domstate", name)
    return p.stdout.strip() if p.returncode == 0 else None


def add_host(env, uri):
    r = env.api("POST", "/hosts", "<host><name>h2</name><address>%s</address><libvirt_uri>%s</libvirt_uri></host>"
                % (uri.split("/")[2], uri))
    h = env.expect(r, 201, "POST /hosts %s" % uri)
    env.check(text(h, "status") == "up", "the added host is %r, not up: %s" % (text(h, "status"), r.short()))
    env.check(text(h, "libvirt_uri") == uri, "the added host shows libvirt_uri %r" % text(h, "libvirt_uri"))
    return h.get("id")


def local_host(env):
    r = env.api("GET", "/hosts")
    for h in r.body.findall("host"):
        if text(h, "name") == "localhost":
            return h.get("id")
    fail("GET /hosts has no localhost: " + r.short())


# A running writer in the guest: the appliance's kernel runs this shell as init (rdinit, the
# script after "--"), which starts the appliance's own /init and then writes 64 KiB block k of
# /dev/sda with byte k % 250 + 1, fsynced, and prints "WRITER k" once it is on disk; every block
# it printed must read back after the migrations. No double quote may appear in it.
WRITER = ("busybox mount -t devtmpfs devtmpfs /dev; /init & while [ ! -b /dev/sda ]; do busybox usleep 200000; "
          "done; i=0; while [ $i -lt 256 ]; do b=$((i % 250 + 1)); busybox dd if=/dev/zero bs=65536 count=1 "
          "2>/dev/null | busybox tr '\\000' $(printf '\\\\%03o' $b) | busybox dd of=/dev/sda bs=65536 seek=$i "
          "conv=fsync 2>/dev/null && echo WRITER $i; i=$((i + 1)); busybox usleep 150000; done; "
          "echo WRITER DONE; while :; do busybox sleep 1; done")
WRITER_RE = re.compile(r"^WRITER (\d+)\r?$", re.M)


def pinned_vm(env, host_id, with_os=False, writer=False):
    name = random_name("mh")
    env.vm_names.add(name)
    os_el = "<os><type>other</type></os>"
    if with_os:
        kernel, initrd = appliance_files(env)
        cmdline = appliance.CMDLINE + (' rdinit=/bin/sh -- -c "%s"' % WRITER if writer else "")
        os_el = ("<os><type>other</type><kernel>%s</kernel><initrd>%s</initrd><cmdline>%s</cmdline></os>"
                 % (kernel, initrd, escape(cmdline)))
    r = env.api("POST", "/vms", "<vm><name>%s</name><cluster><name>Default</name></cluster><template><name>Blank"
                "</name></template><memory>%d</memory>%s<placement_policy><hosts><host id=\"%s\"/></hosts>"
                "</placement_policy></vm>" % (name, 256 * MiB, os_el, host_id))
    vm = env.expect(r, 201, "create VM %s pinned to host %s" % (name, host_id))
    return vm.get("id"), name


def vm_host(env, vm_id):
    r = env.api("GET", "/vms/" + vm_id)
    h = r.body.find("host") if r.status == 200 else None
    return h.get("id") if h is not None else None


def wait_until(env, what, fn, timeout):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            fail("%s: not within %d s" % (what, timeout))
        time.sleep(0.5)


def host_status(env, host_id):
    return text(env.api("GET", "/hosts/" + host_id).body, "status")


@case("hosts: a second host is added, VMs start where they are pinned, migrate both ways while the guest writes, and keep its data")
def hosts_migrate(env):
    uri = test_host()
    local = local_host(env)
    # bad input: nothing is added
    for body, what in (("<host><name>x</name></host>", "no address"),
                       ("<host><name>x</name><address>a b</address></host>", "an address with a space"),
                       ("<host><name>x</name><address>h</address><libvirt_uri>qemu:///system</libvirt_uri></host>",
                        "a local libvirt URI")):
        env.check_fault(env.api("POST", "/hosts", body), 400, what)
    h2 = add_host(env, uri)
    env.check(len(ids(env.api("GET", "/hosts").body, "host")) == 2, "GET /hosts does not list two hosts")

    # a diskless VM pinned to h2 runs there
    b_id, b_name = pinned_vm(env, h2)
    env.action(b_id, "start")
    env.check(rdomstate(uri, b_name) == "running" and domstate(b_name) is None,
              "VM pinned to h2 runs there: h2 %r, local %r" % (rdomstate(uri, b_name), domstate(b_name)))
    env.check(vm_host(env, b_id) == h2, "VM %s shows host %r, not h2" % (b_name, vm_host(env, b_id)))
    env.check_fault(env.api("DELETE", "/hosts/" + h2), 409, "removing a host a VM runs on", ["run on it"])

    # the appliance on the local host, its guest writing its data disk while the VM moves
    a_id, a_name = pinned_vm(env, local, with_os=True, writer=True)
    d = env.create_disk(random_name("mh-disk"), size=DATA_SIZE)
    env.attach(a_id, d, "virtio_scsi", bootable=False)
    log = console(env, a_id)
    env.start_vm(a_id, a_name)
    env.check(vm_host(env, a_id) == local, "VM %s is not on localhost" % a_name)
    wait_line(env, log, WRITER_RE, 120, a_name, "the guest's writer did not start")

    t0 = time.monotonic()
    r = env.api("POST", "/vms/%s/migrate" % a_id, "<action><host id=\"%s\"/></action>" % h2)
    env.expect(r, 200, "migrate %s to h2" % a_name)
    took = time.monotonic() - t0
    env.check(rdomstate(uri, a_name) == "running", "after migration, h2 says %r" % rdomstate(uri, a_name))
    env.check(domstate(a_name) is None, "after migration the local host still has %s" % a_name)
    env.check(vm_host(env, a_id) == h2, "after migration VM shows host %r" % vm_host(env, a_id))
    env.check(env.vm_status(a_id) == "up", "after migration the VM is %r" % env.vm_status(a_id))
    alive = lambda: rdomstate(uri, a_name) == "running"  # noqa: E731
    try:
        log.wait_for(WRITER_RE, 60, alive=alive)
    except TimeoutError as e:
        fail("the guest stopped writing on h2: %s" % e)

    # back without naming a host: the only other one is localhost
    t0 = time.monotonic()
    r = env.api("POST", "/vms/%s/migrate" % a_id, "<action/>")
    env.expect(r, 200, "migrate %s back" % a_name)
    sys.stderr.write("hosts: live migration of a %d MiB appliance VM with a writer: to h2 %.2f s, back %.2f s\n"
                     % (256, took, time.monotonic() - t0))
    env.check(domstate(a_name) == "running" and rdomstate(uri, a_name) is None,
              "after migrating back: local %r, h2 %r" % (domstate(a_name), rdomstate(uri, a_name)))
    env.check(vm_host(env, a_id) == local, "after migrating back VM shows host %r" % vm_host(env, a_id))
    wait_line(env, log, WRITER_RE, 60, a_name, "the guest stopped writing after migrating back")
    env.check_fault(env.api("POST", "/vms/%s/migrate" % a_id, "<action><host id=\"%s\"/></action>" % local),
                    409, "migrating to the host it runs on")
    env.action(a_id, "stop")
    # every block the guest reported written (fsynced) holds its pattern
    written = [int(m.group(1)) for m in WRITER_RE.finditer(log.buf)]
    env.require(written, "no WRITER line in the console")
    fd, raw = tempfile.mkstemp(prefix="snapback-e2e-raw-")
    os.close(fd)
    try:
        p = subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", env.disk_files(d)[-1], raw],
                           capture_output=True, text=True, timeout=120)
        env.require(p.returncode == 0, "qemu-img convert: %s" % p.stderr.strip())
        with open(raw, "rb") as f:
            data = f.read()
    finally:
        os.unlink(raw)
    bad = [k for k in range(max(written) + 1)
           if data[k * 65536:(k + 1) * 65536] != bytes([k % 250 + 1]) * 65536]
    env.check(not bad, "after two live migrations, %d of %d blocks the guest wrote do not hold their data "
              "(first: %r)" % (len(bad), max(written) + 1, bad[:5]))
    env.action(b_id, "stop")
    env.check(rdomstate(uri, b_name) is None, "stopped VM still on h2")
    r = env.api("GET", "/events")
    env.check("migrated from host localhost to host h2" in r.raw.decode(), "no migration event (took %.1f s)" % took)


@case("hosts: a plugged disk snapshot refuses migration and maintenance; its overlay is on h2's local storage")
def hosts_snapshot_rules(env):
    uri = test_host()
    h2 = add_host(env, uri)
    local = local_host(env)
    data_id, data_name = pinned_vm(env, local)
    d = env.create_disk(random_name("mh-data"), size=DATA_SIZE)
    env.attach(data_id, d, "virtio_scsi", bootable=True)
    env.start_vm(data_id, data_name)
    s = take_snapshot(env, data_id)
    agent_id, agent_name = pinned_vm(env, h2)
    env.action(agent_id, "start")
    r = env.api("POST", "/vms/%s/diskattachments" % agent_id, snap_attach_xml(d, s, "virtio_scsi"))
    env.expect(r, 201, "attach the snapshot to the agent on h2")
    # the overlay is on h2's own local storage (its private /var/lib/libvirt), made by its libvirt
    env.check(transient_files(env, agent_id) == [], "an overlay of the agent on h2 is in the engine's state dir")
    pre = "/var/lib/libvirt/snapback/%s/transient/%s-%s-" % (h2, agent_id, d)
    live = rvirsh(uri, "domblklist", agent_name).stdout
    overlay = ([w for w in live.split() if w.startswith(pre)] or [None])[0]
    env.require(overlay, "the agent on h2 uses no overlay under %s: %s" % (pre, live))
    env.check(not os.path.exists(overlay), "the overlay %s is visible outside h2" % overlay)
    env.check(rvirsh(uri, "vol-info", overlay).returncode == 0, "h2's libvirt does not know %s" % overlay)
    before = env.snapshot()
    env.check_fault(env.api("POST", "/vms/%s/migrate" % agent_id, "<action/>"), 409,
                    "migrating a VM with a plugged snapshot", [s])
    env.check_fault(env.api("POST", "/hosts/%s/deactivate" % h2, "<action/>"), 409,
                    "maintenance of its host", [s])
    env.check_unchanged(before, "the refused migration and maintenance")
    env.check(rdomstate(uri, agent_name) == "running", "the agent left h2")
    env.check(host_status(env, h2) == "up", "h2 is %r after the refused maintenance" % host_status(env, h2))
    # detached, the host can be emptied: maintenance migrates the agent away first
    r = env.api("GET", "/vms/%s/diskattachments" % agent_id)
    for a in r.body.findall("disk_attachment"):
        env.expect(env.api("DELETE", "/vms/%s/diskattachments/%s" % (agent_id, a.get("id"))), 200, "detach")
    env.check(rvirsh(uri, "vol-info", overlay).returncode != 0, "the overlay stayed on h2 after the detach")
    env.expect(env.api("POST", "/hosts/%s/deactivate" % h2, "<action/>"), 200, "maintenance of h2")
    env.check(host_status(env, h2) == "maintenance", "h2 is %r" % host_status(env, h2))
    env.check(domstate(agent_name) == "running" and vm_host(env, agent_id) == local,
              "maintenance did not move the agent to localhost (%r)" % domstate(agent_name))
    env.expect(env.api("POST", "/hosts/%s/activate" % h2, "<action/>"), 200, "activate h2")
    for v in (agent_id, data_id):
        env.action(v, "stop")


@case("hosts: a host whose libvirtd dies is non_responsive, its VMs unknown, and reconciled when it returns; an engine restart finds its VM")
def hosts_dead_host(env):
    uri = test_host()
    h2 = add_host(env, uri)
    vm_id, name = pinned_vm(env, h2)
    env.action(vm_id, "start")
    env.require(rdomstate(uri, name) == "running", "VM did not start on h2")
    try:
        subprocess.run([SCRIPT, "kill-libvirtd", HOST_NAME], check=True, capture_output=True, timeout=30)
        wait_until(env, "h2 becomes non_responsive", lambda: host_status(env, h2) == "non_responsive", 40)
        env.check(env.vm_status(vm_id) == "unknown", "VM on the dead host is %r, not unknown" % env.vm_status(vm_id))
        r = env.api("GET", "/events")
        env.check("host h2 is non responsive" in r.raw.decode(), "no event says h2 is non responsive")
    finally:
        subprocess.run([SCRIPT, "start-libvirtd", HOST_NAME], capture_output=True, timeout=60)
    wait_until(env, "h2 answers again", lambda: host_status(env, h2) == "up", 40)
    wait_until(env, "the VM is up again", lambda: env.vm_status(vm_id) == "up", 30)
    env.check(rdomstate(uri, name) == "running", "the VM did not keep running on h2")
    # an engine restart finds it there too
    env.restart()
    env.check(env.vm_status(vm_id) == "up" and vm_host(env, vm_id) == h2,
              "after an engine restart the VM is %r on %r" % (env.vm_status(vm_id), vm_host(env, vm_id)))
    env.action(vm_id, "stop")
    env.check(rdomstate(uri, name) is None, "the stopped VM still runs on h2")


def in_host(*argv):
    """runs argv in the test host's mount namespace (its private /var/lib/libvirt)"""
    with open("/run/snapback-test-hosts/%s/pid" % HOST_NAME) as f:
        holder = f.read().strip()
    return subprocess.run(["nsenter", "-t", holder, "-m"] + list(argv), capture_output=True, text=True,
                          timeout=30)


def host_files(d):
    """the files in directory d of the test host's own file system ([] when d is missing)"""
    p = in_host("ls", "-1", d)
    return sorted(p.stdout.split()) if p.returncode == 0 else []


def rlive_write(uri, name, disk_id, pattern, off, length):
    """a write through the QEMU of VM name on the host at uri (its bitmaps see it)"""
    for cmd in ('qemu-io -d ua-%s "write -P 0x%02x %d %d"' % (disk_id, pattern, off, length),
                'qemu-io -d ua-%s "flush"' % disk_id):
        p = rvirsh(uri, "qemu-monitor-command", name, "--hmp", cmd)
        if p.returncode != 0 or (p.stdout + p.stderr).strip():
            fail("HMP %r on %s at %s: %r" % (cmd, name, uri, (p.stdout + p.stderr).strip()))


@case("hosts: a use_active backup of a VM on h2 has its scratch on h2's local storage and its NBD server on h2's address; full and incremental read back byte-identical; kill -9 in ready leaves nothing on h2")
def hosts_backup(env):
    uri = test_host()
    h2 = add_host(env, uri)
    addr = uri.split("/")[2]
    vm_id, name = pinned_vm(env, h2)
    r = env.api("POST", "/disks", disk_xml(random_name("mh-inc"), DISK, "cow", extra="<backup>incremental</backup>"))
    d = env.expect(r, (200, 201, 202), "create a disk with backup=incremental").get("id")
    env.wait_disk_ok(d)
    env.attach(vm_id, d, "virtio_scsi", bootable=True)
    env.action(vm_id, "start")
    env.require(rdomstate(uri, name) == "running", "VM did not start on h2")
    scratch_dir = "/var/lib/libvirt/snapback/%s/scratch" % h2
    lay = Layout()
    rlive_write(uri, name, d, 0x5a, 0, MiB)
    lay.write(0x5a, 0, MiB)
    q = "?use_active=true"

    def ready_backup(cp, what):
        t0 = time.monotonic()
        bid = start_backup(env, vm_id, [d], cp, q)
        b = wait_phase(env, vm_id, bid, ("ready", "failed"))
        env.require(text(b, "phase") == "ready", "%s: backup %s is %r; events %r"
                    % (what, bid, text(b, "phase"), last_events(env, 5)))
        sys.stderr.write("hosts: %s use_active backup on h2 ready in %.2f s\n" % (what, time.monotonic() - t0))
        env.check(b.find("host") is not None and b.find("host").get("id") == h2,
                  "%s: the backup does not name h2 as its host" % what)
        files = host_files(scratch_dir)
        env.check(files == ["%s-%s.qcow2" % (bid, d)], "%s: scratch files on h2 in %s: %r"
                  % (what, scratch_dir, files))
        env.check(not os.path.exists(scratch_dir), "%s: %s is visible outside h2" % (what, scratch_dir))
        env.check(not glob.glob(os.path.join(env.state_dir, "transient", "*", "*")) and
                  not glob.glob(os.path.join(env.state_dir, "backups", "*")),
                  "%s: backup files in the engine's state directory" % what)
        return bid

    # full: read through the engine's HTTP data path and through libvirt's NBD server on h2
    bid = ready_backup(None, "full")
    r = env.api("POST", "/imagetransfers", '<image_transfer><disk id="%s"/><backup id="%s"/><direction>'
                'download</direction><format>raw</format></image_transfer>' % (d, bid))
    t = env.expect(r, 201, "a transfer of the backup on h2")
    url = text(t, "nbd_url")
    port = int(url.split(":")[2].split("/")[0]) if url.startswith("nbd://%s:" % addr) else 0
    env.check(10809 <= port <= 10909 and url.endswith("/" + d),
              "the transfer's nbd_url %r is not libvirt's server on h2's address %s" % (url, addr))
    r = http_request(env.port, "OPTIONS", urllib.parse.urlparse(text(t, "transfer_url")).path)
    env.check(r.status == 200 and r.body.get("nbd_url") == url and "unix" not in r.body.get("nbd_url", ""),
              "OPTIONS offers %r, not the TCP export" % (r.body,))
    r = http_request(env.port, "GET", urllib.parse.urlparse(text(t, "transfer_url")).path, timeout=120)
    env.check(r.status == 200 and r.raw == bytes(lay.buf),
              "the full backup read through the engine's data URL differs from the disk (status %d, %d bytes)"
              % (r.status, len(r.raw)))
    env.expect(env.api("POST", "/imagetransfers/%s/finalize" % t.get("id"), "<action/>"), 200, "finalize")
    rlive_write(uri, name, d, 0x5b, 0, 64 * 1024)   # after the backup began: not in it
    img, _ = read_disk(env, bid, d)
    env.check(img == bytes(lay.buf), "the full backup read over NBD from h2 differs from the disk at its start")
    lay.write(0x5b, 0, 64 * 1024)
    cp1 = text(finalize(env, vm_id, bid), "to_checkpoint_id")
    env.check(host_files(scratch_dir) == [], "scratch left on h2 after finalize: %r" % host_files(scratch_dir))
    env.check("None" in rvirsh(uri, "domjobinfo", name).stdout, "a libvirt job is left on h2 after finalize")

    # incremental: only what changed since cp1
    rlive_write(uri, name, d, 0x5c, 5 * MiB, 64 * 1024)
    lay.write(0x5c, 5 * MiB, 64 * 1024)
    bid = ready_backup(cp1, "incremental")
    env.check(modes(env, vm_id, bid).get(d, (None,))[0] == "incremental", "the backup from cp1 is not incremental")
    img, dirty = read_disk(env, bid, d, img, cp1)
    env.check(img == bytes(lay.buf), "the incremental backup from h2 does not rebuild the disk")
    env.check(dirty is not None and 0 < dirty <= MiB, "incremental from h2: %r dirty bytes" % dirty)
    cp2 = text(finalize(env, vm_id, bid), "to_checkpoint_id")
    env.check(host_files(scratch_dir) == [], "scratch left on h2 after the incremental's finalize")

    # kill -9 in ready: at restart the job ends on h2 and its scratch goes, and so does a
    # file an ended backup left there
    bid = ready_backup(cp2, "before the crash")
    stray = "%s/00000000-0000-4000-8000-000000000000-%s.qcow2" % (scratch_dir, d)
    p = in_host("qemu-img", "create", "-q", "-f", "qcow2", stray, "1M")
    env.require(p.returncode == 0, "cannot make a stray file on h2: %s" % p.stderr.strip())
    kill_restart(env)
    b = wait_phase(env, vm_id, bid, ("failed", "succeeded"), timeout=60)
    env.check(text(b, "phase") == "failed", "kill -9 in ready: the backup is %r" % text(b, "phase"))
    env.check(host_files(scratch_dir) == [], "kill -9 in ready: scratch left on h2: %r" % host_files(scratch_dir))
    env.check("None" in rvirsh(uri, "domjobinfo", name).stdout, "kill -9 in ready: libvirt's job runs on on h2")
    env.check("removed file '%s' on host h2" % stray in env.api("GET", "/events").raw.decode(),
              "no event says the stray scratch file on h2 was removed")

    # a port in use on h2 is skipped; with none free the backup fails and leaves nothing there
    port = 10990
    listener = subprocess.Popen(
        ["nsenter", "-t", open("/run/snapback-test-hosts/%s/pid" % HOST_NAME).read().strip(), "-n",
         "python3", "-c", "import socket, time; s = socket.socket(); s.bind((%r, %d)); s.listen(); "
         "print('listening', flush=True); time.sleep(120)" % (addr, port)],
        stdout=subprocess.PIPE, text=True)
    try:
        env.require(listener.stdout.readline().strip() == "listening", "cannot hold port %d on h2" % port)
        env.daemon.extra_args = ["--backup-nbd-ports", "%d-%d" % (port, port + 1)]
        env.restart()
        wait_until(env, "the VM is up after the restart", lambda: env.vm_status(vm_id) == "up", 30)
        bid = ready_backup(cp2, "a port in use")
        r = env.api("POST", "/imagetransfers", '<image_transfer><disk id="%s"/><backup id="%s"/><direction>'
                    'download</direction><format>raw</format></image_transfer>' % (d, bid))
        t = env.expect(r, 201, "a transfer of the backup on the second port")
        env.check(text(t, "nbd_url") == "nbd://%s:%d/%s" % (addr, port + 1, d),
                  "with port %d taken on h2 the export is %r" % (port, text(t, "nbd_url")))
        env.expect(env.api("POST", "/imagetransfers/%s/finalize" % t.get("id"), "<action/>"), 200, "finalize")
        img, _ = read_disk(env, bid, d, img, cp2)
        env.check(img == bytes(lay.buf), "the backup on the range's second port does not read as the disk")
        finalize(env, vm_id, bid)
        env.daemon.extra_args = ["--backup-nbd-ports", "%d-%d" % (port, port)]
        env.restart()
        wait_until(env, "the VM is up after the restart", lambda: env.vm_status(vm_id) == "up", 30)
        bid = start_backup(env, vm_id, [d], None, q)
        b = wait_phase(env, vm_id, bid, ("ready", "failed"))
        env.check(text(b, "phase") == "failed" and "no free TCP port" in (text(b, "description") or "") + str(
                  last_events(env, 5)), "with its only port taken the backup is %r: %r"
                  % (text(b, "phase"), last_events(env, 5)))
        env.check(host_files(scratch_dir) == [], "the failed backup left scratch on h2: %r" % host_files(scratch_dir))
        env.check("None" in rvirsh(uri, "domjobinfo", name).stdout, "the failed backup left a job on h2")
    finally:
        listener.kill()
        listener.wait()
        env.daemon.extra_args = []
    env.action(vm_id, "stop")
