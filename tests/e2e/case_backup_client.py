"""15. Backups as oVirt's own clients take them: the SDK's requests over HTTPS with the
engine's CA, ovirt-imageio's client reads on transfer_url (OPTIONS, extents of context zero
and dirty, Range GETs), and a client that dies in the middle of a transfer.

python-ovirt-engine-sdk4's examples/backup_vm.py with ovirt-imageio's client, unmodified,
ran against snapbackd by hand (docs/incremental-backup.md, "Tried with oVirt's client");
Debian packages neither, so the test below sends the same HTTP sequence with the standard
library: SSO token, POST /vms/VM/backups, GET until ready, GET .../disks, per disk POST
/imagetransfers with <backup id>, GET until transferring, the imageio reads,
POST .../finalize and GET until finished_success, then the backup's finalize and GET until
succeeded."""
import glob
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET

import harness
from harness import case, text, MiB, fail, API, ADMIN_USER, ADMIN_PASSWORD
from case_snapshots import Layout, offline_write, last_events, regular_snaps, DISK
from case_incremental import (inc_vm, one_backup, start_backup, wait_phase, modes, finalize, model_write,
                              backed_up_vm, checkpoints, get_backup, read_disk, nothing_left)
from case_imageio import ImageioClient


# ---------------------------------------------------------------------------- the SDK's side

class SdkConnection:
    """what ovirtsdk4.Connection sends: a token from the SSO endpoint, then every request
    with Bearer, Version: 4, Accept and Content-Type application/xml, over TLS verified
    with the engine's CA"""

    def __init__(self, env, port, ca):
        self.env, self.port = env, port
        self.ctx = ssl.create_default_context(cafile=ca)
        form = urllib.parse.urlencode({"grant_type": "password", "scope": "ovirt-app-api",
                                       "username": ADMIN_USER, "password": ADMIN_PASSWORD})
        status, body = self._send("POST", "/ovirt-engine/sso/oauth/token", form, {
            "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"})
        js = json.loads(body) if status == 200 else {}
        env.require("access_token" in js, "SSO token over HTTPS: %s %r" % (status, body[:300]))
        self.token = js["access_token"]

    def _send(self, method, path, body=None, headers=None):
        c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=60, context=self.ctx)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def api(self, method, path, body=None):
        status, raw = self._send(method, API + path, body, {
            "Authorization": "Bearer " + self.token, "Version": "4", "Accept": "application/xml",
            "Content-Type": "application/xml"})
        el = ET.fromstring(raw) if raw.strip().startswith(b"<") else None
        return status, el, raw

    def expect(self, method, path, body, statuses, what):
        status, el, raw = self.api(method, path, body)
        self.env.require(status in statuses and el is not None and el.tag != "fault",
                         "%s: %s %s -> %s %r" % (what, method, path, status, raw[:400]))
        return el


def sdk_disk_xml(d):
    """the disk as backup_vm.py passes it on: the whole entity GET /disks/D gave"""
    return ET.tostring(d, encoding="unicode")


def sdk_backup(env, sdk, vm_id, disk_ids, from_cp=None):
    """start_backup() of backup_vm.py: POST, then GET every second (here 0.2) until ready"""
    disks = "".join(sdk_disk_xml(sdk.expect("GET", "/disks/" + d, None, (200,), "GET disk")) for d in disk_ids)
    body = "<backup><disks>%s</disks>%s</backup>" % (
        disks, "<from_checkpoint_id>%s</from_checkpoint_id>" % from_cp if from_cp else "")
    b = sdk.expect("POST", "/vms/%s/backups" % vm_id, body, (200, 201, 202), "POST backup")
    return sdk_wait_backup(env, sdk, vm_id, b, "ready")


def sdk_wait_backup(env, sdk, vm_id, b, phase):
    """GET backup b until it is in phase; get_backup() of backup_vm.py stops at failed"""
    deadline = time.monotonic() + 120
    while text(b, "phase") != phase:
        env.require(text(b, "phase") != "failed" and time.monotonic() < deadline,
                    "backup %s is %r; events %r" % (b.get("id"), text(b, "phase"), sdk_events(sdk, 6)))
        time.sleep(0.2)
        b = sdk.expect("GET", "/vms/%s/backups/%s" % (vm_id, b.get("id")), None, (200,), "GET backup")
    return b


def sdk_transfer(env, sdk, bid, disk_id):
    """imagetransfer.create_transfer(): POST, then GET until transferring"""
    body = ('<image_transfer><backup id="%s"/><disk id="%s"/><direction>download</direction>'
            '<format>raw</format><inactivity_timeout>60</inactivity_timeout>'
            '<timeout_policy>legacy</timeout_policy></image_transfer>' % (bid, disk_id))
    t = sdk.expect("POST", "/imagetransfers", body, (200, 201, 202), "POST imagetransfer")
    deadline = time.monotonic() + 60
    while text(t, "phase") == "initializing" and time.monotonic() < deadline:
        time.sleep(0.2)
        t = sdk.expect("GET", "/imagetransfers/" + t.get("id"), None, (200,), "GET imagetransfer")
    env.require(text(t, "phase") == "transferring", "transfer %s is %r" % (t.get("id"), text(t, "phase")))
    return t


def sdk_finalize_transfer(env, sdk, t):
    """imagetransfer.finalize_transfer(): POST finalize, GET until finished_success (or gone)"""
    sdk.expect("POST", "/imagetransfers/%s/finalize" % t.get("id"), "<action/>", (200,), "finalize transfer")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, cur, _ = sdk.api("GET", "/imagetransfers/" + t.get("id"))
        if status == 404 or text(cur, "phase") == "finished_success":
            return
        env.require(text(cur, "phase") != "finished_failure", "transfer %s failed" % t.get("id"))
        time.sleep(0.2)
    fail("transfer %s did not finish" % t.get("id"))


def imageio_download(env, url, ca, base=None):
    """ovirt_imageio.client.download() from another host: OPTIONS over TLS, extents (dirty
    ones onto base for an incremental disk), Range GETs of what has data"""
    c = ImageioClient(env, url, use_unix=False, cafile=ca)
    env.check(c.options.get("extents"), "OPTIONS over TLS: no extents feature: %r" % c.options)
    if base is None:
        img, _ = c.download("zero")
    else:
        status, ext = c.extents("dirty")
        env.require(status == 200, "extents?context=dirty over TLS: %s %r" % (status, ext))
        img = bytearray(base)
        for e in ext:
            if e["dirty"]:
                s, n = e["start"], e["length"]
                img[s:s + n] = bytes(n) if e["zero"] else c.read(s, n)
        img = bytes(img)
    c.close()
    return img


def sdk_events(sdk, n=30):
    status, el, raw = sdk.api("GET", "/events")
    return [text(e, "description") for e in el.findall("event")[:n]] if status == 200 and el is not None else []


@case("oVirt client flow over HTTPS: the SDK's requests and imageio's reads, full then incremental, events name VM and backup")
def sdk_flow(env):
    from case_docs import start_engine
    vm_id, name, d = inc_vm(env)
    lay = Layout()
    model_write(env, name, d, lay, 0x31, 0)
    proc, port, ca = start_engine(env)
    try:
        sdk = SdkConnection(env, port, ca)
        img, cp = None, None
        for step, (pattern, off, n) in enumerate(((None, 0, 0), (0x32, 5 * MiB, 128 * 1024))):
            if pattern:
                model_write(env, name, d, lay, pattern, off, n)
            b = sdk_backup(env, sdk, vm_id, [d], cp)
            bid = b.get("id")
            ds = sdk.expect("GET", "/vms/%s/backups/%s/disks" % (vm_id, bid), None, (200,), "GET backup disks")
            want = "incremental" if cp else "full"
            got = {x.get("id"): text(x, "backup_mode") for x in ds.findall("disk")}
            env.check(got == {d: want}, "step %d: backup disks %r, not %s" % (step, got, want))
            t = sdk_transfer(env, sdk, bid, d)
            url = text(t, "transfer_url")
            env.check(url.startswith("https://127.0.0.1:%d/images/" % port), "transfer_url %r over TLS" % url)
            img = imageio_download(env, url, ca, img if cp else None)
            env.check(img == bytes(lay.buf), "step %d (%s): the download differs from the disk" % (step, want))
            sdk_finalize_transfer(env, sdk, t)
            sdk.expect("POST", "/vms/%s/backups/%s/finalize" % (vm_id, bid), "<action/>", (200,), "finalize backup")
            b = sdk_wait_backup(env, sdk, vm_id, b, "succeeded")
            cp = text(b, "to_checkpoint_id")
            evs = sdk_events(sdk)
            for phase in ("ready", "finalizing", "succeeded"):
                env.check([e for e in evs if e and bid in e and name in e and phase in e],
                          "step %d: no event names VM %s, backup %s and '%s': %r" % (step, name, bid, phase, evs[:8]))
        snaps = sdk.expect("GET", "/vms/%s/snapshots" % vm_id, None, (200,), "GET snapshots")
        left = [x.get("id") for x in snaps.findall("snapshot") if text(x, "snapshot_type") != "active"]
        env.check(not left, "the backups left snapshots: %r" % left)
        env.check(not harness.qemu_nbd_pids(env.state_dir), "the backups left an NBD export (qemu-nbd)")
    finally:
        proc.terminate()
        proc.wait(20)


@case("incremental backup: extents?context=dirty of a real incremental backup's transfer, exact ranges, zero writes")
def dirty_extents(env):
    vm_id, name, d = inc_vm(env, run=False)
    path = env.disk_file(d)
    lay = Layout()
    offline_write(env, path, 0x11, 1 * MiB, 2 * MiB)  # before the checkpoint: clean
    lay.write(0x11, 1 * MiB, 2 * MiB)
    full, cp1, _ = one_backup(env, vm_id, d, lay, what="full backup")
    path = env.disk_file(d)
    offline_write(env, path, 0x22, 5 * MiB, 1 * MiB)  # after it: dirty
    lay.write(0x22, 5 * MiB, 1 * MiB)
    offline_write(env, path, 0x33, 9 * MiB, 64 * 1024)
    lay.write(0x33, 9 * MiB, 64 * 1024)
    offline_write(env, path, 0x11, 12 * MiB, MiB)
    p = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -z %d %d" % (12 * MiB, MiB), path],
                       capture_output=True, text=True, timeout=60)
    env.require(p.returncode == 0, "qemu-io write -z: " + p.stdout + p.stderr)
    bid = start_backup(env, vm_id, [d], cp1)
    b = wait_phase(env, vm_id, bid, ("ready", "failed"))
    env.require(text(b, "phase") == "ready", "incremental backup: %r; %r" % (text(b, "phase"), last_events(env, 5)))
    env.check(modes(env, vm_id, bid).get(d, (None,))[0] == "incremental", "backup_mode: %r" % modes(env, vm_id, bid))
    r = env.api("POST", "/imagetransfers", '<image_transfer><disk id="%s"/><backup id="%s"/><direction>download'
                '</direction><format>raw</format></image_transfer>' % (d, bid))
    t = env.expect(r, 201, "POST /imagetransfers of the incremental backup")
    c = ImageioClient(env, text(t, "transfer_url"))
    status, ext = c.extents("dirty")
    env.require(status == 200, "dirty extents: %s %r" % (status, ext))
    env.check(all(set(e) == {"start", "length", "dirty", "zero"} for e in ext), "dirty extent keys: %r" % ext[:2])
    env.check(ext[0]["start"] == 0 and sum(e["length"] for e in ext) == DISK, "dirty extents do not cover the disk: %r" % ext)
    dirty = [(e["start"], e["length"], e["zero"]) for e in ext if e["dirty"]]
    env.check(dirty == [(5 * MiB, MiB, False), (9 * MiB, 64 * 1024, False), (12 * MiB, MiB, True)],
              "dirty extents %r, expected 5M+1M, 9M+64K and a zero 12M+1M" % dirty)
    restored = bytearray(full)
    for s, n, zero in dirty:
        restored[s:s + n] = bytes(n) if zero else c.read(s, n)
    env.check(bytes(restored) == bytes(lay.buf), "incremental download by dirty extents differs from the disk")
    got, _ = c.download("zero")
    env.check(got == bytes(lay.buf), "full download of the incremental transfer differs from the disk")
    c.close()
    env.expect(env.api("POST", "/imagetransfers/%s/finalize" % t.get("id"), "<action/>"), 200, "finalize transfer")
    finalize(env, vm_id, bid)
    # a full backup's transfer has no dirty extents
    bid = start_backup(env, vm_id, [d])
    wait_phase(env, vm_id, bid, ("ready",))
    t = env.expect(env.api("POST", "/imagetransfers", '<image_transfer><disk id="%s"/><backup id="%s"/>'
                           '<direction>download</direction><format>raw</format></image_transfer>' % (d, bid)),
                   201, "POST /imagetransfers of a full backup")
    c = ImageioClient(env, text(t, "transfer_url"))
    status, _ = c.extents("dirty")
    env.check(status == 404, "dirty extents of a full backup's transfer: %s, not 404" % status)
    c.close()
    finalize(env, vm_id, bid)


CLIENT = r"""
import http.client, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.netloc, timeout=60)
c.request("OPTIONS", u.path); c.getresponse().read()
off = 0
while True:
    c.request("GET", u.path, headers={"range": "bytes=%d-%d" % (off, off + 65535)})
    r = c.getresponse(); r.read()
    print("read", off, r.status, flush=True)
    off = (off + 65536) % (16 << 20)
    time.sleep(0.05)
"""


def killed_client(env, url):
    """a downloading client, killed with SIGKILL after a few reads"""
    p = subprocess.Popen([sys.executable, "-c", CLIENT, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reads = 0
    deadline = time.monotonic() + 30
    while reads < 5 and time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        env.require(line.split()[-1] == b"206", "the client's read failed: %r" % line)
        reads += 1
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    p.stdout.close()
    p.stderr.close()
    env.require(reads == 5, "the client read %d times before it was killed" % reads)


@case("incremental backup: a client killed with -9 mid-transfer: the transfer times out, the backup finalizes, nothing left")
def killed_client_case(env):
    vm_id, name, d, lay, img, cp1 = backed_up_vm(env, 0x41)
    model_write(env, name, d, lay, 0x42, 3 * MiB, 64 * 1024)
    bid = start_backup(env, vm_id, [d], cp1)
    wait_phase(env, vm_id, bid, ("ready",))
    # 1. the client dies; its transfer ends after its inactivity_timeout, the backup stays ready
    t = backup_transfer(env, bid, d, "a transfer with inactivity_timeout 2", "<inactivity_timeout>2</inactivity_timeout>")
    killed_client(env, text(t, "transfer_url"))
    cur = transfer_ended(env, t, 30)
    env.check(text(cur, "phase") in ("cancelled", "finished_failure"),
              "the killed client's transfer is %r 30 s after its 2 s inactivity_timeout" % text(cur, "phase"))
    env.check(text(get_backup(env, vm_id, bid), "phase") == "ready", "the transfer's timeout ended the backup")
    env.check([e for e in last_events(env, 6) if e and all(x in e for x in (t.get("id"), "inactivity", bid, name))],
              "no event names the transfer, backup %s, VM %s and its inactivity timeout: %r"
              % (bid, name, last_events(env, 6)))
    env.check(not harness.qemu_nbd_pids(t.get("id")), "the timed out transfer's qemu-nbd still runs")
    # a new client reads the backup
    got, _ = read_disk(env, bid, d, img, cp1)
    env.check(got == bytes(lay.buf), "the backup read after the killed client's timeout differs from the disk")
    # 2. the client dies again; the backup is finalized with its transfer still open
    t = backup_transfer(env, bid, d, "a second transfer")
    killed_client(env, text(t, "transfer_url"))
    b = finalize(env, vm_id, bid)
    cur = env.api("GET", "/imagetransfers/" + t.get("id")).body
    env.check(text(cur, "phase", "").startswith("finished") or text(cur, "phase") == "cancelled",
              "the killed client's transfer is %r after the backup's finalize" % text(cur, "phase"))
    nothing_left(env, vm_id, "client killed, backup finalized")
    evs = [e for e in last_events(env, 10) if e and bid in e and name in e and "succeeded" in e]
    env.check(evs, "no event names backup %s of VM %s as succeeded: %r" % (bid, name, last_events(env, 6)))
    cps = checkpoints(env, vm_id)
    env.check(len(cps) == 2 and all(c[2] == "created" for c in cps) and cps[-1][0] == text(b, "to_checkpoint_id"),
              "the checkpoint chain after the killed clients: %r" % cps)


def backup_transfer(env, bid, d, what, extra=""):
    r = env.api("POST", "/imagetransfers", '<image_transfer><disk id="%s"/><backup id="%s"/><direction>download'
                '</direction><format>raw</format>%s</image_transfer>' % (d, bid, extra))
    return env.expect(r, 201, what)


def transfer_ended(env, t, timeout):
    """the transfer t once it is no longer transferring (or after timeout seconds)"""
    deadline = time.monotonic() + timeout
    while True:
        cur = env.api("GET", "/imagetransfers/" + t.get("id")).body
        if text(cur, "phase") != "transferring" or time.monotonic() > deadline:
            return cur
        time.sleep(0.3)
