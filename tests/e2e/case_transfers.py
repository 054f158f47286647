"""10. Image transfers: the data path of the Backup API.

A transfer exports one volume over NBD (nbd_url, nbd+unix://) and over the engine's
HTTP data URL (transfer_url and proxy_url, /images/TICKET, as ovirt-imageio serves it). Every download is
compared byte for byte with what a guest reads (qemu-img convert -U of the volume and its
backing chain); every upload with the source file. Zero ranges must be reported as extents
(HTTP ?context=zero and NBD base:allocation) and never transferred as data.
"""
import hashlib
import os
import signal
import subprocess
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET

import harness
from harness import case, text, MiB, http_request, fail, domstate
from case_snapshots import (vm_with_disks, take_snap, remove_snap, snap_vol, vol_path, state_hash,
                            live_write, offline_write, last_events, DISK)


# ---------------------------------------------------------------------------- helpers

def transfer_xml(direction, disk_id=None, volume_id=None, timeout=None, fmt="raw"):
    body = "<image_transfer><direction>%s</direction><format>%s</format>" % (direction, fmt)
    if volume_id:
        body += '<snapshot id="%s"/>' % volume_id
    if disk_id:
        body += '<disk id="%s"/>' % disk_id
    if timeout is not None:
        body += "<inactivity_timeout>%d</inactivity_timeout>" % timeout
    return body + "</image_transfer>"


def create_transfer(env, direction, disk_id=None, volume_id=None, timeout=None):
    r = env.api("POST", "/imagetransfers", transfer_xml(direction, disk_id, volume_id, timeout))
    t = env.expect(r, 201, "POST /imagetransfers (%s of %s)" % (direction, volume_id or disk_id))
    env.require(isinstance(t, ET.Element) and t.tag == "image_transfer" and t.get("id"),
                "POST /imagetransfers: no <image_transfer id>: " + r.short())
    env.check(r.headers.get("location", "").endswith("/imagetransfers/" + t.get("id")),
              "POST /imagetransfers: Location is %r" % r.headers.get("location"))
    env.check(text(t, "phase") == "transferring", "new transfer: phase %r, not transferring"
              % text(t, "phase"))
    env.check(text(t, "direction") == direction, "new transfer: direction %r" % text(t, "direction"))
    env.require(text(t, "nbd_url", "").startswith("nbd+unix:///?socket="),
                "new transfer: nbd_url %r is not nbd+unix:///?socket=..." % text(t, "nbd_url"))
    env.require(text(t, "transfer_url", "").startswith("http://127.0.0.1:%d/images/" % env.port),
                "new transfer: transfer_url %r is not http://127.0.0.1:%d/images/TICKET"
                % (text(t, "nbd_url"), env.port))
    env.require(text(t, "proxy_url", "").startswith("http://127.0.0.1:%d/images/" % env.port),
                "new transfer: proxy_url %r is not http://127.0.0.1:%d/images/TICKET"
                % (text(t, "proxy_url"), env.port))
    return t


def get_transfer(env, tid):
    r = env.api("GET", "/imagetransfers/" + tid)
    return env.expect(r, 200, "GET transfer " + tid)


def socket_of(t):
    return text(t, "nbd_url")[len("nbd+unix:///?socket="):]


def data_path(t):
    return urllib.parse.urlparse(text(t, "proxy_url")).path


def nbd_servers(sock):
    """pids of running qemu-nbd processes serving sock"""
    return harness.qemu_nbd_pids(sock)


def action(env, tid, verb, status=200):
    r = env.api("POST", "/imagetransfers/%s/%s" % (tid, verb), "<action/>")
    b = env.expect(r, status, "%s transfer %s" % (verb, tid))
    if status == 200:
        env.check(isinstance(b, ET.Element) and text(b, "status") == "complete",
                  "%s transfer: not <action><status>complete: %s" % (verb, r.short()))
    return r


def check_closed(env, t, phase, what):
    """the transfer ended in phase: no qemu-nbd, no socket, no data URL"""
    tid, sock = t.get("id"), socket_of(t)
    cur = get_transfer(env, tid)
    env.check(text(cur, "phase") == phase, "%s: phase %r, not %r" % (what, text(cur, "phase"), phase))
    env.check(text(cur, "active") == "false", "%s: <active> is %r" % (what, text(cur, "active")))
    env.check(not os.path.exists(sock), "%s: the NBD socket %s still exists" % (what, sock))
    env.check(not nbd_servers(sock), "%s: qemu-nbd still serves %s: %r" % (what, sock, nbd_servers(sock)))
    r = http_request(env.port, "GET", data_path(t), headers={"Range": "bytes=0-511"})
    env.check(r.status == 404, "%s: GET on the data URL answers %s, not 404" % (what, r.status))


def disk_status(env, disk_id):
    r = env.api("GET", "/disks/" + disk_id)
    env.expect(r, 200, "GET disk " + disk_id)
    return text(r.body, "status")


def sha(data):
    return hashlib.sha256(data).hexdigest()


def run(argv, what, timeout=120):
    p = subprocess.run(argv, capture_output=True, timeout=timeout)
    if p.returncode != 0:
        fail("%s: %s failed: %s" % (what, " ".join(argv), (p.stdout + p.stderr).decode(errors="replace")))
    return p.stdout


def nbd_download_hash(env, t, what):
    fd, tmp = tempfile.mkstemp(prefix="snapback-e2e-", suffix=".raw")
    os.close(fd)
    try:
        run(["nbdcopy", text(t, "nbd_url"), tmp], what)
        with open(tmp, "rb") as f:
            return sha(f.read())
    finally:
        os.unlink(tmp)


def nbd_map(env, t, what):
    """[(start, length, type)] from nbdinfo --map (type: 0 data, 3 hole+zero ...)"""
    import json
    out = run(["nbdinfo", "--map", "--json", text(t, "nbd_url")], what)
    return [(e["offset"], e["length"], e["type"]) for e in json.loads(out)]


def http_extents(env, t, what):
    r = http_request(env.port, "GET", data_path(t) + "/extents?context=zero")
    env.require(r.status == 200 and isinstance(r.body, list), "%s: GET extents: %s" % (what, r.short()))
    return r.body


def http_download(env, t, what, size):
    """what a client like the backup CLI does: the extents, then Range GETs of the data
    extents only, zeroes for the rest; also one whole GET. Returns (sparse, whole) hashes."""
    ext = http_extents(env, t, what)
    env.check(sum(e["length"] for e in ext) == size and ext[0]["start"] == 0,
              "%s: extents do not cover the %d bytes: %r" % (what, size, ext))
    buf = bytearray(size)
    for e in ext:
        if e["zero"]:
            continue
        r = http_request(env.port, "GET", data_path(t), headers={
            "Range": "bytes=%d-%d" % (e["start"], e["start"] + e["length"] - 1)})
        env.require(r.status == 206 and len(r.raw) == e["length"],
                    "%s: GET Range of extent %r: %s (%d bytes)" % (what, e, r.status, len(r.raw)))
        env.check(r.headers.get("content-range") == "bytes %d-%d/%d" % (e["start"], e["start"] + e["length"] - 1, size),
                  "%s: Content-Range %r" % (what, r.headers.get("content-range")))
        buf[e["start"]:e["start"] + e["length"]] = r.raw
    r = http_request(env.port, "GET", data_path(t))
    env.require(r.status == 200 and len(r.raw) == size, "%s: whole GET: %s, %d bytes" % (what, r.status, len(r.raw)))
    env.check(r.headers.get("content-length") == str(size), "%s: Content-Length %r" % (what, r.headers.get("content-length")))
    return sha(bytes(buf)), sha(r.raw)


def events_text(env, n=30):
    r = env.api("GET", "/events?max=%d" % n)
    return " | ".join(text(e, "description", "") for e in r.body.findall("event")) if isinstance(r.body, ET.Element) else ""


# ---------------------------------------------------------------------------- cases

@case("transfers: download the disk of a down VM over NBD and HTTP (extents, Range), finalize")
def download_disk(env):
    vm_id, name, (disk,) = vm_with_disks(env, run=False)
    path = env.disk_file(disk)
    offline_write(env, path, 0x5a, 1 * MiB, 2 * MiB)
    offline_write(env, path, 0x33, 9 * MiB, 1 * MiB)
    expect = state_hash(path)
    t = create_transfer(env, "download", disk_id=disk)
    tid = t.get("id")
    env.check(disk_status(env, disk) == "locked", "disk being downloaded: status %r, not locked"
              % disk_status(env, disk))
    env.check(nbd_servers(socket_of(t)), "no qemu-nbd serves %s" % socket_of(t))
    # NBD
    env.check(nbd_download_hash(env, t, "nbdcopy") == expect, "nbdcopy of nbd_url differs from the disk")
    m = nbd_map(env, t, "nbdinfo --map")
    data = [(s, l) for s, l, ty in m if ty & 2 == 0]
    env.check(data == [(1 * MiB, 2 * MiB), (9 * MiB, 1 * MiB)],
              "NBD map: data extents %r, expected [1M+2M, 9M+1M] (zeroes must be extents): %r" % (data, m))
    # HTTP
    r = http_request(env.port, "OPTIONS", data_path(t))
    env.check(r.status == 200 and isinstance(r.body, dict) and "extents" in r.body.get("features", []),
              "OPTIONS on the data URL: " + r.short())
    ext = http_extents(env, t, "extents")
    data = [(e["start"], e["length"]) for e in ext if not e["zero"]]
    env.check(data == [(1 * MiB, 2 * MiB), (9 * MiB, 1 * MiB)], "HTTP extents: data %r: %r" % (data, ext))
    env.check(all(set(e) == {"start", "length", "zero", "hole"} for e in ext), "extent keys: %r" % ext[:2])
    sparse, whole = http_download(env, t, "HTTP download", DISK)
    env.check(sparse == expect, "HTTP download by extents + Range differs from the disk")
    env.check(whole == expect, "HTTP download in one GET differs from the disk")
    r = http_request(env.port, "GET", data_path(t), headers={"Range": "bytes=1048576-1048591"})
    env.check(r.status == 206 and r.raw == b"\x5a" * 16, "Range of 16 bytes at 1 MiB: %s %r" % (r.status, r.raw[:20]))
    r = http_request(env.port, "GET", data_path(t), headers={"Range": "bytes=%d-" % (DISK + 5)})
    env.check(r.status == 416, "Range beyond the end: %s, not 416" % r.status)
    r = http_request(env.port, "PUT", data_path(t), b"x" * 512, {"Content-Range": "bytes 0-511/*"})
    env.check(r.status == 403, "PUT with a download ticket: %s, not 403" % r.status)
    # while it runs, the disk is locked
    env.check_fault(env.api("POST", "/vms/%s/start" % vm_id, "<action/>"), 409,
                    "start the VM during the download", ["image transfer"])
    env.check_fault(env.api("DELETE", "/disks/" + disk), 409, "remove the disk during the download",
                    ["image transfer"])
    env.check_fault(env.api("POST", "/imagetransfers", transfer_xml("download", disk_id=disk)), 409,
                    "a second transfer of the locked disk")
    cur = get_transfer(env, tid)
    env.check(int(text(cur, "transferred", "0")) > 0, "transferred %r after the HTTP reads"
              % text(cur, "transferred"))
    r = env.api("GET", "/imagetransfers")
    env.check(r.status == 200 and tid in [x.get("id") for x in r.body.findall("image_transfer")],
              "GET /imagetransfers does not list " + tid)
    action(env, tid, "finalize")
    check_closed(env, t, "finished_success", "after finalize")
    env.check(disk_status(env, disk) == "ok", "after finalize the disk is %r" % disk_status(env, disk))
    env.check(state_hash(path) == expect, "the download changed the disk")
    action(env, tid, "finalize", 409)
    ev = events_text(env)
    env.check("image download of disk" in ev and "initiated" in ev and "finalized" in ev,
              "events do not tell the transfer start and finish: " + ev[:600])
    env.start_vm(vm_id, name)  # the disk is free again


@case("transfers: download a disk snapshot of a running VM; its snapshots stay until the transfer ends")
def download_snapshot(env):
    vm_id, name, (disk,) = vm_with_disks(env, run=True)
    live_write(env, name, disk, 0x11, 2 * MiB, 3 * MiB)
    sid = take_snap(env, vm_id, "backup")
    live_write(env, name, disk, 0x22, 2 * MiB, 1 * MiB)  # the VM goes on writing its overlay
    vol = snap_vol(env, disk, sid)
    expect = state_hash(vol_path(env, disk, vol))
    env.check_fault(env.api("POST", "/imagetransfers", transfer_xml("download", disk_id=disk)), 409,
                    "download the disk of a running VM", [name, "snapshot"])
    t = create_transfer(env, "download", volume_id=vol)
    tid = t.get("id")
    env.check((t.find("snapshot").get("id") if t.find("snapshot") is not None else None) == vol,
              "the transfer does not name disk snapshot %s" % vol)
    env.check(disk_status(env, disk) == "ok", "a snapshot download locked the disk itself")
    env.check(nbd_download_hash(env, t, "nbdcopy") == expect, "nbdcopy of the snapshot differs from it")
    sparse, whole = http_download(env, t, "HTTP download", DISK)
    env.check(sparse == expect and whole == expect, "HTTP download of the snapshot differs from it")
    ext = http_extents(env, t, "extents")
    env.check([(e["start"], e["length"]) for e in ext if not e["zero"]] == [(2 * MiB, 3 * MiB)],
              "snapshot extents: %r" % ext)
    env.check_fault(env.api("DELETE", "/vms/%s/snapshots/%s" % (vm_id, sid)), 409,
                    "remove the snapshot during its download", ["an image transfer is in progress"])
    env.check_fault(env.api("POST", "/imagetransfers", transfer_xml("upload", volume_id=vol)), 400,
                    "upload into a disk snapshot")
    action(env, tid, "cancel")
    check_closed(env, t, "cancelled", "after cancel")
    env.check(domstate(name) == "running", "the VM stopped during the download")
    remove_snap(env, vm_id, sid)


@case("transfers: upload into new disks over HTTP (PUT, PATCH zero/flush) and over NBD")
def upload(env):
    size = DISK
    src = bytearray(size)
    src[2 * MiB:3 * MiB] = os.urandom(MiB)
    src[8 * MiB:9 * MiB + 123] = b"\x77" * (MiB + 123)
    src[12 * MiB:13 * MiB] = os.urandom(MiB)
    src = bytes(src)
    # HTTP, into a disk attached to a down VM
    vm_id, name = env.create_vm()
    disk = env.create_disk(size=size)
    env.attach(vm_id, disk)
    offline_write(env, env.disk_file(disk), 0xee, 5 * MiB, MiB)  # to be zeroed by PATCH
    t = create_transfer(env, "upload", disk_id=disk)
    env.check(disk_status(env, disk) == "locked", "disk being uploaded: %r, not locked" % disk_status(env, disk))
    r = http_request(env.port, "OPTIONS", data_path(t))
    env.check(r.status == 200 and set(r.body.get("features", [])) >= {"extents", "zero", "flush"},
              "OPTIONS of an upload: " + r.short())
    for start, end in ((2 * MiB, 3 * MiB), (8 * MiB, 9 * MiB + 123), (12 * MiB, 13 * MiB)):
        r = http_request(env.port, "PUT", data_path(t) + "?flush=n", src[start:end],
                         {"Content-Range": "bytes %d-%d/*" % (start, end - 1),
                          "Content-Type": "application/octet-stream"})
        env.check(r.status == 200, "PUT %d-%d: %s" % (start, end, r.short()))
    r = http_request(env.port, "PATCH", data_path(t), '{"op": "zero", "offset": %d, "size": %d}' % (5 * MiB, MiB),
                     {"Content-Type": "application/json"})
    env.check(r.status == 200, "PATCH zero: " + r.short())
    r = http_request(env.port, "PATCH", data_path(t), '{"op": "flush"}', {"Content-Type": "application/json"})
    env.check(r.status == 200, "PATCH flush: " + r.short())
    r = http_request(env.port, "PUT", data_path(t), b"x" * 1024, {"Content-Range": "bytes %d-%d/*" % (size - 512, size + 511)})
    env.check(r.status in (400, 416), "PUT beyond the end: %s" % r.status)
    action(env, t.get("id"), "finalize")
    check_closed(env, t, "finished_success", "HTTP upload finalized")
    env.check(disk_status(env, disk) == "ok", "after the upload the disk is %r" % disk_status(env, disk))
    env.check(state_hash(env.disk_file(disk)) == sha(src), "the disk differs from the uploaded data")
    # NBD, into a floating raw disk
    disk2 = env.create_disk(size=size, fmt="raw")
    t2 = create_transfer(env, "upload", disk_id=disk2)
    fd, tmp = tempfile.mkstemp(prefix="snapback-e2e-", suffix=".raw")
    try:
        os.write(fd, src)
        os.close(fd)
        run(["nbdcopy", tmp, text(t2, "nbd_url")], "nbdcopy upload")
    finally:
        os.unlink(tmp)
    action(env, t2.get("id"), "finalize")
    check_closed(env, t2, "finished_success", "NBD upload finalized")
    env.check(state_hash(env.disk_file(disk2)) == sha(src), "the raw disk differs from what nbdcopy uploaded")
    # a disk in use by a running VM takes no upload
    env.start_vm(vm_id, name)
    env.check_fault(env.api("POST", "/imagetransfers", transfer_xml("upload", disk_id=disk)), 409,
                    "upload into the disk of a running VM", [name])


@case("transfers: inactivity timeout (not while a client is connected), cancel, bad inputs")
def timeout_and_errors(env):
    disk = env.create_disk(size=DISK)
    t = create_transfer(env, "download", disk_id=disk, timeout=3)
    env.check(text(t, "inactivity_timeout") == "3", "inactivity_timeout %r" % text(t, "inactivity_timeout"))
    # a connected NBD client keeps it open past the timeout
    client = subprocess.Popen(["qemu-io", "-r", "-f", "raw", "-c", "sleep 6000", text(t, "nbd_url")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(5)
    env.check(text(get_transfer(env, t.get("id")), "phase") == "transferring",
              "the transfer was cancelled while an NBD client was connected")
    client.wait(30)
    deadline = time.monotonic() + 15
    while text(get_transfer(env, t.get("id")), "phase") == "transferring" and time.monotonic() < deadline:
        time.sleep(0.5)
    check_closed(env, t, "cancelled", "after the inactivity timeout")
    env.check(disk_status(env, disk) == "ok", "after the timeout the disk is %r" % disk_status(env, disk))
    env.check("inactivity" in events_text(env), "no event tells the inactivity cancel: " + events_text(env)[:400])
    # cancel
    t = create_transfer(env, "upload", disk_id=disk)
    action(env, t.get("id"), "cancel")
    check_closed(env, t, "cancelled", "after cancel")
    action(env, t.get("id"), "cancel", 409)
    env.check(disk_status(env, disk) == "ok", "after cancel the disk is %r" % disk_status(env, disk))
    # bad inputs
    unknown = "0badc0de-0000-4000-8000-000000000000"
    env.check_fault(env.api("POST", "/imagetransfers", transfer_xml("download", volume_id=unknown)), 404,
                    "unknown disk snapshot", [unknown])
    env.check_fault(env.api("POST", "/imagetransfers", transfer_xml("download", disk_id=unknown)), 404,
                    "unknown disk", [unknown])
    env.check_fault(env.api("POST", "/imagetransfers", "<image_transfer><direction>download</direction></image_transfer>"),
                    400, "neither disk nor snapshot")
    env.check_fault(env.api("POST", "/imagetransfers", transfer_xml("sideways", disk_id=disk)), 400, "bad direction")
    env.check_fault(env.api("POST", "/imagetransfers", transfer_xml("download", disk_id=disk, fmt="cow")), 501,
                    "format cow")
    env.check_fault(env.api("GET", "/imagetransfers/" + unknown), 404, "unknown transfer")
    env.check_fault(env.api("POST", "/imagetransfers/%s/finalize" % unknown, "<action/>"), 404, "finalize unknown")
    for method in ("GET", "OPTIONS", "PUT"):
        r = http_request(env.port, method, "/images/" + "ab" * 16, b"" if method != "PUT" else b"x" * 512)
        env.check(r.status == 404, "%s with an unknown ticket: %s, not 404" % (method, r.status))
    r = http_request(env.port, "GET", "/images/" + "ab" * 16 + "/extents")
    env.check(r.status == 404, "extents with an unknown ticket: %s" % r.status)


@case("transfers: snapbackd killed (-9) with a transfer open: at restart it is cancelled, its qemu-nbd gone")
def crash(env):
    disk = env.create_disk(size=DISK)
    t = create_transfer(env, "download", disk_id=disk)
    sock = socket_of(t)
    pids = nbd_servers(sock)
    env.require(pids, "no qemu-nbd serves " + sock)
    env.daemon.proc.send_signal(signal.SIGKILL)
    env.daemon.proc.wait(20)
    env.daemon.proc = None
    env.check(nbd_servers(sock) == pids, "qemu-nbd did not outlive the killed daemon (test premise)")
    env._token = None
    env.daemon.start()
    cur = get_transfer(env, t.get("id"))
    env.check(text(cur, "phase") == "cancelled", "after the restart the transfer is %r" % text(cur, "phase"))
    deadline = time.monotonic() + 10
    while nbd_servers(sock) and time.monotonic() < deadline:
        time.sleep(0.2)
    env.check(not nbd_servers(sock), "qemu-nbd %r still runs after the restart" % nbd_servers(sock))
    env.check(not os.path.exists(sock), "the NBD socket is still there after the restart")
    env.check(disk_status(env, disk) == "ok", "after the restart the disk is %r" % disk_status(env, disk))
    env.check("restarted" in events_text(env), "no event tells the cancel at restart: " + events_text(env)[:400])
    t2 = create_transfer(env, "download", disk_id=disk)  # and the disk transfers again
    action(env, t2.get("id"), "finalize")
