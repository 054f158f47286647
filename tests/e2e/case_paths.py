"""Closing the paths to the host (issue 10): control characters in names, descriptions and
paths are refused; host paths must lie under the roots given with --allow-path; XML with a
DOCTYPE is refused; an export cut off by a kill never deletes a file it did not create;
failed logins are slowed without slowing anyone else."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from harness import case, text, ids, MiB, fail, http_request, random_name, sha256, API, ADMIN_USER


def tree(root, skip=None):
    """{relative path: sha256} of every file below root, except below skip"""
    out = {}
    for dirpath, dirs, names in os.walk(root):
        if skip and os.path.abspath(dirpath).startswith(os.path.abspath(skip)):
            continue
        for n in names:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = sha256(p)
    return out


def export_body(directory, filename):
    return ("<action><host><name>localhost</name></host><directory>%s</directory>"
            "<filename>%s</filename></action>" % (directory, filename))


def vm_with_data(env, mib):
    """a VM that is down, with one disk holding MIB MiB of non-zero data"""
    vm_id, _ = env.create_vm()
    d = env.create_disk(size=2 * mib * MiB)
    env.attach(vm_id, d, "virtio_scsi", bootable=True)
    p = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 %dM" % mib, env.disk_file(d)],
                       capture_output=True, text=True)
    env.require(p.returncode == 0, "qemu-io failed: %s" % p.stderr)
    return vm_id


def in_temp_dir(env, fn):
    """fn(env, root) with a fresh temporary directory root, removed afterwards"""
    root = tempfile.mkdtemp(prefix="snapback-e2e-paths-")
    try:
        fn(env, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def wait_job(env, job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = env.api("GET", "/jobs/" + job_id)
        if r.status == 200 and text(r.body, "status") in ("finished", "failed"):
            return text(r.body, "status")
        time.sleep(0.1)
    fail("job %s did not end in %d s" % (job_id, timeout))


@case("paths: an export named 'precious\\nx.ova' is refused, and an export killed mid-way changes no file outside its directory")
def newline_export_killed(env):
    in_temp_dir(env, _newline_export_killed)


def _newline_export_killed(env, root):
    d = os.path.join(root, "D")
    os.mkdir(d)
    for p, data in ((os.path.join(d, "precious"), b"keep me\n"),
                    (os.path.join(root, "outside.txt"), b"outside\n"),
                    (os.path.join(root, "x.ova.part"), b"not the engine's\n")):
        with open(p, "wb") as f:
            f.write(data)
    vm_id = vm_with_data(env, 384)
    before = tree(root)
    vm_before = env.snapshot()

    # every spelling of a newline in the file name is a 400 that names the field
    for what, r in (
            ("XML, character reference", env.api("POST", "/vms/%s/exporttopathonhost" % vm_id,
                                                 export_body(d, "precious&#10;x.ova"))),
            ("XML, literal newline", env.api("POST", "/vms/%s/exporttopathonhost" % vm_id,
                                             export_body(d, "precious\nx.ova"))),
            ("JSON", env.api("POST", "/vms/%s/exporttopathonhost" % vm_id,
                             {"host": {"name": "localhost"}, "directory": d,
                              "filename": "precious\nx.ova"}, json=True))):
        if r.status == 200:
            # the old engine: kill it mid-way as the report did, and see what restart deletes
            env.daemon.stop(signal.SIGKILL)
            env.daemon.start()
            env._token = None
            time.sleep(1)
            after = tree(root)
            fail("export with a newline in the file name (%s) was accepted; after a kill and a "
                 "restart, files under %s changed: before %r, after %r" % (what, root, before, after))
        env.check_fault(r, 400, "export named 'precious\\nx.ova' (%s)" % what, ["filename", "control"])
    env.check(tree(root) == before, "a refused export changed files: %r" % tree(root))
    env.check_unchanged(vm_before, "a refused export")

    # a real export cut off by a kill: recovery removes only its own .part
    r = env.api("POST", "/vms/%s/exporttopathonhost" % vm_id, export_body(d, "x.ova"))
    b = env.expect(r, 200, "export to %s" % d)
    job = b.find("job").get("id")
    env.daemon.stop(signal.SIGKILL)
    if os.path.exists(os.path.join(d, "x.ova")):
        fail("the export finished before the kill; give the disk more data")
    env.check(os.path.exists(os.path.join(d, "x.ova.part")), "no .part at the kill: %r" % os.listdir(d))
    env.daemon.start()
    env._token = None
    env.check(wait_job(env, job) == "failed", "the interrupted export job did not fail")
    after = tree(root)
    env.check(after == before, "after the restart, files under %s changed:\n      before: %r\n      after:  %r"
              % (root, before, after))


# ---------------------------------------------------------------------------- control characters

@case("paths: control characters in names, descriptions, paths and parameters are refused with a 400 naming the field")
def control_characters(env):
    vm_id, name = env.create_vm()
    disk = env.create_disk(size=16 * MiB)
    before = env.snapshot()
    cluster = "<cluster><name>Default</name></cluster>"
    tries = [
        ("POST", "/vms", "<vm><name>evil&#10;name</name>%s</vm>" % cluster, False, "vm.name"),
        ("POST", "/vms", "<vm><name>ok-name</name><description>a&#13;b</description>%s</vm>" % cluster,
         False, "vm.description"),
        ("POST", "/vms", {"name": "ok-name", "description": "tab\there", "cluster": {"name": "Default"}},
         True, "description"),
        ("POST", "/vms", {"name": "ok-name", "description": "c1\u0085here", "cluster": {"name": "Default"}},
         True, "description"),
        # XML 1.0 cannot carry most C0 characters at all (the parser refuses them): JSON can
        ("PUT", "/vms/" + vm_id, {"description": "x\u0001y"}, True, "description"),
        ("PUT", "/vms/" + vm_id, "<vm><os><kernel>/tmp/k&#10;x</kernel></os></vm>", False, "vm.os.kernel"),
        ("POST", "/disks", "<disk><alias>d&#10;x</alias><provisioned_size>1048576</provisioned_size>"
         "<storage_domains><storage_domain><name>data</name></storage_domain></storage_domains></disk>",
         False, "disk.alias"),
        ("PUT", "/disks/" + disk, {"alias": "a\u001b[31m"}, True, "alias"),
        ("POST", "/storagedomains", "<storage_domain><name>sd&#10;x</name><type>data</type><storage>"
         "<type>localfs</type><path>/tmp</path></storage></storage_domain>", False, "storage_domain.name"),
        ("POST", "/storagedomains", "<storage_domain><name>sdx</name><type>data</type><storage>"
         "<type>localfs</type><path>/tmp/a&#10;b</path></storage></storage_domain>", False,
         "storage_domain.storage.path"),
        ("POST", "/events", "<event><description>forged&#10;line</description><severity>normal</severity>"
         "<origin>test</origin><custom_id>1</custom_id></event>", False, "event.description"),
        ("POST", "/externalvmimports", "<external_vm_import><provider>ova</provider><url>/tmp/x&#10;y.ova</url>"
         "<name>imp</name>%s<storage_domain><name>data</name></storage_domain></external_vm_import>" % cluster,
         False, "external_vm_import.url"),
        ("POST", "/vms/%s/snapshots" % vm_id, "<snapshot><description>s&#10;x</description></snapshot>",
         False, "snapshot.description"),
        ("POST", "/vms", '<vm id="a&#10;b"><name>ok-name</name>%s</vm>' % cluster, False, "attribute 'id'"),
        ("GET", "/vms?search=" + urllib.parse.quote("name=a\nb"), None, False, "parameter 'search'"),
        ("GET", "/vms/" + urllib.parse.quote("x\ny"), None, False, "the path"),
    ]
    for method, path, body, as_json, field in tries:
        r = env.api(method, path, body, json=as_json)
        env.check_fault(r, 400, "%s %s with a control character in %s" % (method, path, field),
                        [field, "control character"])
    env.check_unchanged(before, "requests with control characters")
    r = env.api("GET", "/events?max=50")
    env.check("forged" not in str(r.raw), "a refused event was recorded")


# ---------------------------------------------------------------------------- host path roots

@case("paths: every kind of host path outside the --allow-path roots is refused with a fault naming --allow-path")
def path_roots(env):
    in_temp_dir(env, _path_roots)


def _path_roots(env, root):
    allowed = os.path.join(root, "allowed")
    outside = os.path.join(root, "outside")
    for d in (allowed, outside):
        os.mkdir(d)
    os.symlink(outside, os.path.join(allowed, "link-out"))
    secret = os.path.join(outside, "secret.ova")
    with open(secret, "w") as f:
        f.write("not yours\n")
    kernel_in = os.path.join(allowed, "vmlinux")
    with open(kernel_in, "w") as f:
        f.write("kernel\n")
    env.daemon.allow_paths = [allowed]
    env.restart()
    vm_id, _ = env.create_vm()
    cluster = "<cluster><name>Default</name></cluster>"
    sd = "<storage_domain><name>data</name></storage_domain>"
    before = env.snapshot()
    before_files = tree(root)

    def imp(url):
        return ("<external_vm_import><provider>ova</provider><url>%s</url><name>imp</name>%s%s"
                "</external_vm_import>" % (url, cluster, sd))

    def sd_body(path):
        return ("<storage_domain><name>sd2</name><type>data</type><storage><type>localfs</type>"
                "<path>%s</path></storage></storage_domain>" % path)

    refused = [
        ("OVA directory", "POST", "/vms/%s/exporttopathonhost" % vm_id, export_body(outside, "x.ova")),
        ("OVA directory via a symlink", "POST", "/vms/%s/exporttopathonhost" % vm_id,
         export_body(os.path.join(allowed, "link-out"), "x.ova")),
        ("OVA directory via '..'", "POST", "/vms/%s/exporttopathonhost" % vm_id,
         export_body(allowed + "/../outside", "x.ova")),
        ("OVA file", "POST", "/externalvmimports", imp(secret)),
        ("OVA file via a symlink", "POST", "/externalvmimports", imp(os.path.join(allowed, "link-out", "secret.ova"))),
        ("OVA file that does not exist", "POST", "/externalvmimports", imp("/nonexistent/x.ova")),
        ("OVA file /etc/passwd", "POST", "/externalvmimports", imp("/etc/passwd")),
        ("storage domain path", "POST", "/storagedomains", sd_body(outside)),
        ("storage domain path /", "POST", "/storagedomains", sd_body("/")),
        ("kernel", "POST", "/vms", "<vm><name>%s-k</name>%s<os><kernel>/etc/hostname</kernel></os></vm>"
         % (random_name(), cluster)),
        ("initrd", "PUT", "/vms/" + vm_id, "<vm><os><initrd>%s</initrd></os></vm>" % secret),
    ]
    for what, method, path, body in refused:
        r = env.api(method, path, body)
        env.check_fault(r, 403, what + " outside the roots", ["--allow-path"])
        env.check("not yours" not in str(r.raw), "%s: the answer shows the file's content" % what)
    env.check_unchanged(before, "host paths outside the roots")
    env.check(tree(root) == before_files, "refused host paths changed files under %s" % root)

    # inside the roots: the same requests work, or fail for their own reasons (400, not 403)
    r = env.api("POST", "/externalvmimports", imp(os.path.join(allowed, "missing.ova")))
    env.check_fault(r, 400, "an OVA file under a root that does not exist", ["missing.ova"])
    r = env.api("PUT", "/vms/" + vm_id, "<vm><os><kernel>%s</kernel></os></vm>" % kernel_in)
    env.expect(r, 200, "a kernel under a root")
    r = env.api("POST", "/storagedomains", sd_body(allowed))
    env.expect(r, (200, 201), "a storage domain under a root")
    # a VM configured under a root that is later withdrawn does not start
    env.daemon.allow_paths = []
    env.restart()
    r = env.api("POST", "/vms/%s/start" % vm_id, "<action/>")
    env.check_fault(r, 403, "starting a VM whose kernel is outside the roots now", ["--allow-path", "kernel"])
    env.check(env.vm_status(vm_id) == "down", "the VM is %s" % env.vm_status(vm_id))


# ---------------------------------------------------------------------------- DOCTYPE

@case("paths: XML with a DOCTYPE is refused (external entity to a local file, billion laughs)")
def doctype(env):
    fd, secret = tempfile.mkstemp(prefix="snapback-e2e-secret-")
    marker = "xxe-marker-%d" % os.getpid()
    os.write(fd, marker.encode())
    os.close(fd)
    try:
        before = env.snapshot()
        name = random_name()
        xxe = ('<?xml version="1.0"?><!DOCTYPE vm [<!ENTITY x SYSTEM "file://%s">]>'
               "<vm><name>%s</name><description>&x;</description><cluster><name>Default</name></cluster></vm>"
               % (secret, name))
        lol = '<?xml version="1.0"?><!DOCTYPE vm [<!ENTITY l0 "lol">'
        for i in range(1, 10):
            lol += '<!ENTITY l%d "%s">' % (i, ("&l%d;" % (i - 1)) * 10)
        lol += "]><vm><name>%s</name><description>&l9;</description><cluster><name>Default</name></cluster></vm>" % name
        for what, body in (("external entity", xxe), ("billion laughs", lol)):
            t0 = time.monotonic()
            r = env.api("POST", "/vms", body)
            dt = time.monotonic() - t0
            env.check_fault(r, 400, "a body with a DOCTYPE (%s)" % what, ["DOCTYPE"])
            env.check(marker not in str(r.raw), "%s: the answer holds the local file's content" % what)
            env.check(dt < 2, "%s: the refusal took %.1f s" % (what, dt))
        env.check_unchanged(before, "bodies with a DOCTYPE")
        r = env.api("GET", "/vms?search=name%3D" + name)
        env.check(not ids(r.body, "vm"), "a VM was created from a body with a DOCTYPE")
    finally:
        os.unlink(secret)


# ---------------------------------------------------------------------------- secrets at rest

def db_bytes(env):
    out = b""
    for suffix in ("", "-wal"):
        p = os.path.join(env.state_dir, "snapback.db" + suffix)
        if os.path.exists(p):
            with open(p, "rb") as f:
                out += f.read()
    return out


@case("paths: tokens and transfer tickets are stored only as hashes; state directory 0700, database 0600, also after an upgrade",
      store="sqlite")
def secrets_at_rest(env):
    r, body = env.token()
    env.require(r.status == 200 and body, "login: %s" % r.short())
    token = body["access_token"]
    disk = env.create_disk(size=16 * MiB)
    r = env.api("POST", "/imagetransfers",
                '<image_transfer><direction>download</direction><format>raw</format><disk id="%s"/>'
                "</image_transfer>" % disk)
    t = env.expect(r, 201, "start a transfer")
    proxy = text(t, "proxy_url", "")
    ticket = proxy.rsplit("/", 1)[-1]
    env.require(len(ticket) >= 32, "no ticket in proxy_url %r" % proxy)
    r = env.api("GET", "/imagetransfers/" + t.get("id"))
    env.check(text(r.body, "proxy_url") == proxy, "GET shows proxy_url %r, not %r" % (text(r.body, "proxy_url"), proxy))
    r = http_request(env.port, "GET", "/images/" + ticket, headers={"Range": "bytes=0-511"})
    env.check(r.status in (200, 206), "the ticket does not read the disk: %s" % r.short())
    raw = db_bytes(env)
    env.check(token.encode() not in raw, "the bearer token is in the database in the clear")
    env.check(ticket.encode() not in raw, "the transfer ticket is in the database in the clear")
    env.expect(env.api("POST", "/imagetransfers/%s/cancel" % t.get("id"), "<action/>"), 200, "cancel")

    def modes():
        return (oct(os.stat(env.state_dir).st_mode & 0o777),
                oct(os.stat(os.path.join(env.state_dir, "snapback.db")).st_mode & 0o777))
    env.check(modes() == ("0o700", "0o600"), "state directory and database modes are %r" % (modes(),))
    # an older install: readable by all; the next start makes it private again, and the token still works
    env.daemon.stop()
    os.chmod(env.state_dir, 0o755)
    os.chmod(os.path.join(env.state_dir, "snapback.db"), 0o644)
    env.daemon.start()
    env.check(modes() == ("0o700", "0o600"), "after a restart the modes are %r" % (modes(),))
    r = env.api("GET", "/", token=token)
    env.check(r.status == 200, "the token does not work after a restart: %s" % r.short())


# ---------------------------------------------------------------------------- throttling

@case("paths: a password-guessing loop is slowed (429, Retry-After) and does not slow a legitimate client")
def login_throttling(env):
    token = env.bearer_token()

    def timed_gets(n):
        out = []
        for _ in range(n):
            t0 = time.monotonic()
            r = env.api("GET", "/vms", token=token)
            out.append(time.monotonic() - t0)
            env.require(r.status == 200, "legitimate GET /vms: %s" % r.short())
        return sorted(out)[len(out) // 2]

    base = timed_gets(20)
    stop = threading.Event()
    counts = {}
    retry_after = []
    lock = threading.Lock()

    def guess(i):
        import base64
        auth = "Basic " + base64.b64encode(("%s:guess-%d" % (ADMIN_USER, i)).encode()).decode()
        form = urllib.parse.urlencode({"grant_type": "password", "scope": "ovirt-app-api",
                                       "username": ADMIN_USER, "password": "guess-%d" % i})
        n = 0
        while not stop.is_set():
            n += 1
            if n % 2:
                r = http_request(env.port, "GET", API, headers={"Authorization": auth, "Version": "4"})
            else:
                r = http_request(env.port, "POST", "/ovirt-engine/sso/oauth/token", form, {
                    "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"})
            with lock:
                counts[r.status] = counts.get(r.status, 0) + 1
                if r.status == 429:
                    retry_after.append(r.headers.get("retry-after"))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    try:
        time.sleep(2)   # past the free failures and the first waits
        during = timed_gets(20)
    finally:
        stop.set()
        for th in threads:
            th.join()
    total = sum(counts.values())
    env.check(counts.get(429, 0) > 0, "no guess was answered 429: %r" % counts)
    # 3 free failures (parallel guesses cannot race past them), then one per wait (1 s, 2 s)
    env.check(counts.get(401, 0) <= 6, "%d guesses were checked against the password (401): %r"
              % (counts.get(401, 0), counts))
    env.check(retry_after and all(v and v.isdigit() and int(v) >= 1 for v in retry_after),
              "429 answers without a Retry-After in seconds: %r" % retry_after[:5])
    env.check(during <= max(3 * base, base + 0.05),
              "the legitimate client's median GET went from %.1f ms to %.1f ms during %d guesses"
              % (base * 1000, during * 1000, total))
    note = "median GET %.1f ms before, %.1f ms during %d guesses (%r)" % (
        base * 1000, during * 1000, total, counts)
    sys.stderr.write("      %s\n" % note)
