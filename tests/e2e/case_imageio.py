"""11. The imageio data API of image transfers, as ovirt-imageio's client uses it.

transfer_url is an HTTP(S) imageio URL (/images/TICKET) that ovirt-imageio's own client
(ovirt_imageio.client, used by the SDK's download_disk.py and backup_vm.py) can use without
its proxy_url fallback. ImageioClient below re-implements, with the standard library only,
what that client does with it: OPTIONS (features, max_readers, and unix_socket, to which a
client on the same host switches: the same HTTP API on a unix socket), extents of context
zero (and dirty for an incremental backup's transfer: case_backup_client), then Range GETs of the data extents.
The checksum is ovirt-imageio's block checksum: blake2b (digest size 32) over the blake2b
digests of 4 MiB blocks, compared with hashlib here.
"""
import hashlib
import http.client
import json
import socket
import ssl
import urllib.parse

from harness import case, text, MiB, http_request
from case_snapshots import offline_write, DISK
from case_transfers import create_transfer, action, check_closed
from case_backup_app import raw_image


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class ImageioClient:
    """ovirt-imageio's HTTP backend, as far as a download goes"""

    def __init__(self, env, url, use_unix=True, cafile=None):
        self.env, self.url = env, urllib.parse.urlparse(url)
        env.require(self.url.scheme in ("http", "https"), "transfer_url %r is not HTTP(S)" % url)
        if self.url.scheme == "https":  # verified with the engine's CA, as the client's cafile
            self.con = http.client.HTTPSConnection(self.url.netloc, timeout=60,
                                                   context=ssl.create_default_context(cafile=cafile))
        else:
            self.con = http.client.HTTPConnection(self.url.netloc, timeout=60)
        self.con.connect()
        self.options = self._options()
        self.unix = False
        local = self.con.sock.getsockname()[0] == self.con.sock.getpeername()[0]
        if use_unix and local and self.options.get("unix_socket"):
            self.con.close()
            self.con = UnixHTTPConnection(self.options["unix_socket"])
            self.con.connect()
            self.unix = True

    def request(self, method, path, headers=None):
        self.con.request(method, path, headers=headers or {})
        r = self.con.getresponse()
        return r, r.read()

    def _options(self):
        r, body = self.request("OPTIONS", self.url.path)
        self.env.require(r.status == 200, "OPTIONS %s: %s %r" % (self.url.path, r.status, body[:300]))
        opts = json.loads(body)
        for f in opts.pop("features", []):
            opts[f] = True
        return opts

    def extents(self, context="zero"):
        r, body = self.request("GET", self.url.path + "/extents?context=" + context)
        return r.status, (json.loads(body) if r.status == 200 else body)

    def read(self, start, length):
        r, body = self.request("GET", self.url.path, {"range": "bytes=%d-%d" % (start, start + length - 1)})
        self.env.require(r.status == 206 and int(r.getheader("content-length")) == length == len(body),
                         "GET Range %d+%d: %s, %d bytes" % (start, length, r.status, len(body)))
        return body

    def download(self, context="zero"):
        """the image as the client writes it: data extents read, the rest left zero"""
        status, ext = self.extents(context)
        self.env.require(status == 200, "extents?context=%s: %s %r" % (context, status, ext))
        size = ext[-1]["start"] + ext[-1]["length"]
        img = bytearray(size)
        for e in ext:
            if not e["zero"] and e.get("dirty", True):
                img[e["start"]:e["start"] + e["length"]] = self.read(e["start"], e["length"])
        return bytes(img), ext

    def close(self):
        self.con.close()


def blkhash(data, block_size=4 * MiB, algorithm="blake2b"):
    """ovirt-imageio's checksum (ovirt_imageio._internal.blkhash), from its documentation"""
    def h(b=b""):
        if algorithm in ("blake2b", "blake2s"):
            return getattr(hashlib, algorithm)(b, digest_size=32)
        return hashlib.new(algorithm, b)
    outer = h()
    for i in range(0, len(data), block_size):
        outer.update(h(data[i:i + block_size]).digest())
    return outer.hexdigest()


def get_json(env, path, what):
    r = http_request(env.port, "GET", path)
    env.require(r.status == 200 and isinstance(r.body, (dict, list)), "%s: %s" % (what, r.short()))
    return r.body


@case("imageio: ovirt-imageio's client flow on transfer_url (OPTIONS, unix_socket, extents, Range), checksum")
def client_flow(env):
    disk = env.create_disk(size=DISK)
    path = env.disk_file(disk)
    offline_write(env, path, 0x5a, 1 * MiB, 2 * MiB)
    offline_write(env, path, 0x33, 9 * MiB, 1 * MiB)
    image = raw_image(path)
    t = create_transfer(env, "download", disk_id=disk)
    url = text(t, "transfer_url")
    # over TCP first, as a remote client would
    c = ImageioClient(env, url, use_unix=False)
    env.check(c.options.get("extents") and c.options.get("checksum") and not c.options.get("zero"),
              "OPTIONS of a download: features %r" % c.options)
    env.check(c.options.get("max_readers", 0) >= 1, "OPTIONS: max_readers %r" % c.options.get("max_readers"))
    env.check(c.options.get("nbd_url", "").startswith("nbd+unix:///?socket="),
              "OPTIONS to a local client: nbd_url %r" % c.options.get("nbd_url"))
    got, ext = c.download()
    env.check(got == image, "download over TCP differs from the disk")
    env.check([(e["start"], e["length"]) for e in ext if not e["zero"]] == [(1 * MiB, 2 * MiB), (9 * MiB, 1 * MiB)],
              "zero extents: %r" % ext)
    env.check(all(set(e) == {"start", "length", "zero", "hole"} for e in ext), "extent keys: %r" % ext[:2])
    status, body = c.extents("dirty")
    env.check(status == 404, "dirty extents of a transfer without a bitmap: %s, not 404" % status)
    status, body = c.extents("bogus")
    env.check(status == 400, "extents of context 'bogus': %s, not 400" % status)
    c.close()
    # on the same host the client switches to unix_socket
    c = ImageioClient(env, url)
    env.require(c.unix, "OPTIONS offers no unix_socket to a local client: %r" % c.options)
    opts = c._options()
    env.check(opts.get("nbd_url") and opts.get("extents"), "OPTIONS over the unix socket: %r" % opts)
    got, _ = c.download()
    env.check(got == image, "download over unix_socket differs from the disk")
    r, body = c.request("GET", "/ovirt-engine/api")
    env.check(r.status == 404, "the unix socket serves the API: %s" % r.status)
    c.close()
    # checksum
    p = urllib.parse.urlparse(url).path
    want = blkhash(image)
    s = get_json(env, p + "/checksum", "GET checksum")
    env.check(s == {"algorithm": "blake2b", "block_size": 4 * MiB, "checksum": want},
              "checksum %r, expected blake2b %s" % (s, want))
    s = get_json(env, p + "/checksum?algorithm=sha256&block_size=%d" % MiB, "GET checksum sha256")
    env.check(s.get("checksum") == blkhash(image, MiB, "sha256") and s.get("block_size") == MiB,
              "sha256 checksum in 1 MiB blocks: %r" % s)
    algs = get_json(env, p + "/checksum/algorithms", "GET checksum/algorithms").get("algorithms", [])
    env.check("blake2b" in algs and "sha256" in algs and algs == sorted(algs), "algorithms %r" % algs)
    for q, what in (("algorithm=crc99", "unknown algorithm"), ("block_size=4096", "block size below 1 MiB"),
                    ("block_size=1048577", "unaligned block size"), ("block_size=x", "block size not a number")):
        r = http_request(env.port, "GET", p + "/checksum?" + q)
        env.check(r.status == 400 and r.raw.strip(), "checksum with %s: %s, not 400 with a message" % (what, r.short()))
    r = http_request(env.port, "OPTIONS", "/images/*")
    env.check(r.status == 200 and set(r.body.get("features", [])) == {"checksum", "extents", "flush", "zero"},
              "OPTIONS /images/*: " + r.short())
    action(env, t.get("id"), "finalize")
    check_closed(env, t, "finished_success", "after finalize")
    r = http_request(env.port, "GET", p + "/checksum")
    env.check(r.status == 404, "checksum after finalize: %s, not 404" % r.status)
