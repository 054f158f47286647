"""harness.py: start a real snapbackd against real libvirt and talk to it like an oVirt SDK.

Python 3 standard library only. One Env per test: a fresh state directory, a free port,
its own daemon process; Env.close() stops the daemon, destroys the libvirt domains the
test created (all named e2e-...), and removes the state directory.

Checks come in two strengths:
  env.check(cond, msg)  records a failure and goes on (so one run reports every problem);
  env.require(cond, msg) / fail(msg) stop the test at once (later steps would be noise).
"""
import base64
import glob
import hashlib
import http.client
import json as jsonlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET

API = "/ovirt-engine/api"
ADMIN_USER = "admin@internal"
ADMIN_PASSWORD = "secret-pw"
VIRSH_URI = "qemu:///system"
BLANK_ID = "00000000-0000-0000-0000-000000000000"
MiB = 1024 * 1024
GiB = 1024 * MiB

# elements whose value may legitimately change between two GETs with nothing done
VOLATILE = {"actual_size", "total_size", "start_time", "stop_time", "statistics", "time"}


# the first line of a sanitizer's report in a daemon's output
SANITIZER_REPORT = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|: runtime error: ")

class Failure(Exception):
    """a hard failure: the test stops here"""


class Skip(Exception):
    """a prerequisite that cannot exist on this machine (never to hide a failure)"""


def fail(msg):
    raise Failure(msg)


def random_name(tag=""):
    return "e2e-" + (tag + "-" if tag else "") + secrets.token_hex(4)


# ---------------------------------------------------------------------------- HTTP

class Response:
    """unpacks as (status, headers, body); body is an Element, a JSON value, text or None"""

    def __init__(self, method, path, status, headers, raw, body):
        self.method, self.path = method, path
        self.status, self.headers, self.raw, self.body = status, headers, raw, body

    def __iter__(self):
        return iter((self.status, self.headers, self.body))

    def short(self, limit=400):
        text = self.raw.decode("utf-8", "replace") if isinstance(self.raw, bytes) else str(self.raw)
        text = " ".join(text.split())
        return "%s %s -> %s %s" % (self.method, self.path, self.status,
                                   text[:limit] + ("..." if len(text) > limit else ""))


def parse_body(headers, raw):
    if not raw:
        return None
    ctype = headers.get("content-type", "")
    text = raw.decode("utf-8", "replace")
    if "json" in ctype or (not ctype and text.lstrip()[:1] in "{["):
        try:
            return jsonlib.loads(text)
        except ValueError:
            return text
    try:
        return ET.fromstring(raw)
    except ET.ParseError:
        return text


def http_request(port, method, path, body=None, headers=None, timeout=60):
    """one request on its own connection; returns Response (status 0 when the server
    closed the connection without answering)"""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = body.encode() if isinstance(body, str) else body
    hdrs = dict(headers or {})
    try:
        try:
            conn.request(method, path, body=data, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (413) before reading the whole body
        try:
            r = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            return Response(method, path, 0, {}, ("no answer: %s" % e).encode(), None)
        raw = r.read()
        hdr = {k.lower(): v for k, v in r.getheaders()}
        return Response(method, path, r.status, hdr, raw, parse_body(hdr, raw))
    finally:
        conn.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------- XML helpers

def text(el, path, default=None):
    if el is None or not isinstance(el, ET.Element):
        return default
    v = el.findtext(path)
    return default if v is None else v.strip()


def ids(el, tag):
    """ids of the children TAG of a collection element"""
    if not isinstance(el, ET.Element):
        return []
    return [c.get("id") for c in el.findall(tag)]


def by_name(el, tag, name):
    if not isinstance(el, ET.Element):
        return None
    for c in el.findall(tag):
        if text(c, "name") == name:
            return c
    return None


def normalize(el):
    """a canonical string of el without volatile elements, for 'nothing changed' checks"""
    if el is None:
        return None
    if not isinstance(el, ET.Element):
        return str(el)
    el = ET.fromstring(ET.tostring(el))

    def strip(e):
        for c in list(e):
            if c.tag in VOLATILE:
                e.remove(c)
            else:
                strip(c)
        if e.text is not None and not e.text.strip():
            e.text = None
        e.tail = None
    strip(el)
    return ET.tostring(el, encoding="unicode")


def vm_xml(name, memory=128 * MiB, cluster="Default", template="Blank", extra=""):
    return ("<vm><name>%s</name><cluster><name>%s</name></cluster>"
            "<template><name>%s</name></template><memory>%d</memory>"
            "<cpu><topology><sockets>1</sockets><cores>1</cores><threads>1</threads></topology></cpu>"
            "<os><type>other</type></os>%s</vm>" % (name, cluster, template, memory, extra))


def disk_xml(alias, size=GiB, fmt="cow", sparse=True, sd="data", extra=""):
    return ("<disk><alias>%s</alias><provisioned_size>%d</provisioned_size><format>%s</format>"
            "<sparse>%s</sparse><storage_domains><storage_domain><name>%s</name></storage_domain>"
            "</storage_domains>%s</disk>" % (alias, size, fmt, "true" if sparse else "false", sd, extra))


def attachment_xml(disk_id, interface="virtio", bootable=False, active=True):
    return ("<disk_attachment><disk id=\"%s\"/><interface>%s</interface><bootable>%s</bootable>"
            "<active>%s</active></disk_attachment>"
            % (disk_id, interface, "true" if bootable else "false", "true" if active else "false"))


# ---------------------------------------------------------------------------- libvirt's view

def virsh(*args, check=False):
    p = subprocess.run(["virsh", "-c", VIRSH_URI] + list(args), capture_output=True, text=True,
                       timeout=60)
    if check and p.returncode != 0:
        fail("virsh %s failed: %s" % (" ".join(args), p.stderr.strip()))
    return p


def virsh_version():
    """None when libvirt answers, else the reason"""
    try:
        p = virsh("version")
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if p.returncode != 0:
        return (p.stderr or p.stdout).strip()
    return None


def domstate(name):
    """'running', 'paused', 'shut off'... or None when no such domain exists"""
    p = virsh("domstate", name)
    if p.returncode != 0:
        return None
    return p.stdout.strip().splitlines()[0].strip() if p.stdout.strip() else ""


def domid(name):
    p = virsh("domid", name)
    return p.stdout.strip() if p.returncode == 0 else None


def domuuid(name):
    p = virsh("domuuid", name)
    return p.stdout.strip() if p.returncode == 0 else None


def domains():
    """names of every domain libvirt knows (running and defined)"""
    p = virsh("list", "--all", "--name", check=True)
    return sorted(x.strip() for x in p.stdout.splitlines() if x.strip())


def domblklist(name):
    """[{'type','device','target','source'}] of the domain's disks; None when no domain"""
    p = virsh("domblklist", name, "--details")
    if p.returncode != 0:
        return None
    out, seen_rule = [], False
    for line in p.stdout.splitlines():
        if line.startswith("---"):
            seen_rule = True
            continue
        if not seen_rule or not line.strip():
            continue
        parts = line.split(None, 3)
        while len(parts) < 4:
            parts.append("-")
        out.append(dict(zip(("type", "device", "target", "source"), parts)))
    return [d for d in out if d["device"] == "disk"]


def dumpxml(name):
    p = virsh("dumpxml", name)
    if p.returncode != 0:
        return None
    return ET.fromstring(p.stdout)


def dom_disks(name):
    """[{'target','bus','source','serial','alias'}] from the live domain XML"""
    x = dumpxml(name)
    if x is None:
        return None
    out = []
    for d in x.findall("./devices/disk"):
        if d.get("device", "disk") != "disk":
            continue
        tgt, src, al = d.find("target"), d.find("source"), d.find("alias")
        out.append({
            "target": tgt.get("dev") if tgt is not None else None,
            "bus": tgt.get("bus") if tgt is not None else None,
            "source": (src.get("file") or src.get("dev") or src.get("name")) if src is not None else None,
            "serial": text(d, "serial"),
            "alias": al.get("name") if al is not None else None,
        })
    return out


def qemu_img_info(path):
    p = subprocess.run(["qemu-img", "info", "-U", "--output=json", path], capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        fail("qemu-img info %s failed: %s" % (path, p.stderr.strip()))
    return jsonlib.loads(p.stdout)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------- the daemon

def appliance_dir(binary):
    """where the appliance is (or gets built): $SNAPBACK_APPLIANCE_DIR, else BUILD/../appliance"""
    return os.environ.get("SNAPBACK_APPLIANCE_DIR") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(binary)))), "appliance")


# ---------------------------------------------------------------------------- the store

# SNAPBACK_E2E_DB=postgresql://USER@/?host=SOCKETDIR (tests/pg/with-pg.sh sets it): every Env
# gets a database of its own on that server, made with createdb and dropped at close;
# unset: each daemon keeps SQLite in its state directory.
E2E_DB = os.environ.get("SNAPBACK_E2E_DB", "")


def db_backend():
    """"postgresql" or "sqlite": the store the daemons of this run use"""
    return "postgresql" if E2E_DB.startswith(("postgresql:", "postgres:")) else "sqlite"


def _pg_tool(name):
    found = shutil.which(name)
    if not found:
        for d in sorted(glob.glob("/usr/lib/postgresql/*/bin")):
            if os.access(os.path.join(d, name), os.X_OK):
                found = os.path.join(d, name)
    if not found:
        fail("%s not found: install postgresql-client (scripts/setup.sh)" % name)
    return found


def _pg_server():
    u = urllib.parse.urlsplit(E2E_DB)
    host = urllib.parse.parse_qs(u.query).get("host", [u.hostname or ""])[0]
    return u.username or "postgres", host


class PgDatabase:
    """a new, empty database on the run's PostgreSQL server, for one Env"""
    def __init__(self):
        self.user, self.host = _pg_server()
        self.name = "e2e_" + secrets.token_hex(6)
        subprocess.run([_pg_tool("createdb"), "-h", self.host, "-U", self.user, self.name],
                       check=True, capture_output=True, timeout=60)
        self.url = "postgresql://%s@/%s?host=%s" % (self.user, self.name, urllib.parse.quote(self.host, safe="/"))

    def query(self, sql, params=()):
        """rows of SQL (with ? placeholders) through psql, numbers as ints, as sqlite3 gives them"""
        args = []
        for i, v in enumerate(params):
            sql = sql.replace("?", ":'p%d'" % i, 1)
            args += ["-v", "p%d=%s" % (i, v)]
        p = subprocess.run([_pg_tool("psql"), "-X", "-q", "-At", "-F", "\x1f", "-v", "ON_ERROR_STOP=1",
                            "-h", self.host, "-U", self.user, "-d", self.name, *args, "-f", "-"],
                           input=sql + ";\n", capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("psql: %s" % p.stderr.strip())
        rows = []
        for line in p.stdout.splitlines():
            rows.append(tuple(int(c) if c.lstrip("-").isdigit() else (None if c == "" else c)
                              for c in line.split("\x1f")))
        return rows

    def drop(self):
        """in the background: the next test need not wait for it"""
        _DROPS[:] = [p for p in _DROPS if p.poll() is None]
        _DROPS.append(subprocess.Popen([_pg_tool("dropdb"), "-h", self.host, "-U", self.user, "--force",
                                        "--if-exists", self.name],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


_DROPS = []     # dropdb processes still running


class Daemon:
    def __init__(self, binary, state_dir, log_dir):
        self.binary, self.state_dir, self.log_dir = binary, state_dir, log_dir
        self.db_url = None      # --db for every start (the Env's PostgreSQL database); None: SQLite
        self.proc, self.port, self.log_path, self.starts = None, None, None, 0
        self.last_exit = None
        # host directories the API may name (--allow-path): the tests' temporary files and
        # the appliance's kernel; a test may change the list before a (re)start
        self.allow_paths = [tempfile.gettempdir(), appliance_dir(binary)]
        self.extra_args = []    # more snapbackd options for the next start

    def start(self, timeout=30):
        self.port = free_port()
        self.starts += 1
        self.log_path = os.path.join(self.log_dir, "snapbackd.%d.log" % self.starts)
        env = dict(os.environ, SNAPBACK_ADMIN_PASSWORD=ADMIN_PASSWORD)
        # --config /dev/null: an installed /etc/snapback/snapbackd.conf must not change the test
        argv = [self.binary, "--config", "/dev/null", "--http", "--listen", "127.0.0.1:%d" % self.port,
                "--state-dir", self.state_dir, "--domain-type", "qemu"] + self.db_args() + self.extra_args
        for d in self.allow_paths:
            os.makedirs(d, exist_ok=True)
            argv += ["--allow-path", d]
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        auth = "Basic " + base64.b64encode(("%s:%s" % (ADMIN_USER, ADMIN_PASSWORD)).encode()).decode()
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail("snapbackd exited with %s before answering; its output:\n%s"
                     % (self.proc.returncode, self.log_tail()))
            try:
                r = http_request(self.port, "GET", API, headers={
                    "Authorization": auth, "Version": "4", "Accept": "application/xml"}, timeout=5)
                if r.status == 200:
                    return
                last = r.short()
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        fail("snapbackd did not answer GET %s within %d s (last: %s); its output:\n%s"
             % (API, timeout, last, self.log_tail()))

    def db_args(self):
        """the --db option of this daemon's store, for anything run next to it (snapbackd user ...)"""
        return ["--db", self.db_url] if self.db_url else []

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """signals the daemon and waits; returns its exit code (None if never started)"""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.last_exit = "killed after %d s" % timeout
                self.proc = None
                return self.last_exit
        self.last_exit = self.proc.returncode
        self.proc = None
        return self.last_exit

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines=40):
        out = []
        for i in range(1, self.starts + 1):
            p = os.path.join(self.log_dir, "snapbackd.%d.log" % i)
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "\n".join("\n".join(out).splitlines()[-lines:])

    def sanitizer_reports(self):
        """the ASan/LSan/UBSan reports in this daemon's logs (every start), each cut to its first
        lines: a leak or an error in the daemon fails the case even when every answer was right"""
        found = []
        for i in range(1, self.starts + 1):
            p = os.path.join(self.log_dir, "snapbackd.%d.log" % i)
            try:
                with open(p, "rb") as f:
                    lines = f.read().decode("utf-8", "replace").splitlines()
            except OSError:
                continue
            for n, line in enumerate(lines):
                if SANITIZER_REPORT.search(line):
                    found.append("snapbackd.%d.log: %s" % (i, "\n".join(lines[n:n + 20])))
        return found


# ---------------------------------------------------------------------------- the test environment

class Env:
    def __init__(self, binary, keep=False):
        self.binary, self.keep = binary, keep
        self.state_dir = tempfile.mkdtemp(prefix="snapback-e2e-state-")
        self.log_dir = tempfile.mkdtemp(prefix="snapback-e2e-log-")
        self.daemon = Daemon(binary, self.state_dir, self.log_dir)
        self.db = PgDatabase() if db_backend() == "postgresql" else None
        self.daemon.db_url = self.db.url if self.db else None
        self.failures = []
        self.vm_names = set()   # domains this test may have caused; destroyed at close
        self._token = None

    # -- lifecycle
    def start(self):
        self.daemon.start()

    def restart(self):
        """SIGTERM, then the same binary on the same state dir (new port); returns the exit code"""
        rc = self.daemon.stop()
        self._token = None
        self.daemon.start()
        return rc

    def close(self):
        self.daemon.stop()
        self.sanitizer = self.daemon.sanitizer_reports()
        for name in sorted(self.vm_names):
            if not name.startswith("e2e-"):
                continue
            if domstate(name) is not None:
                virsh("destroy", name)
                virsh("undefine", name, "--nvram")
                virsh("undefine", name)
        if self.db and not self.keep:
            self.db.drop()
        if not self.keep:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            shutil.rmtree(self.log_dir, ignore_errors=True)

    # -- the store, read and changed behind the engine's back (crash and upgrade tests)
    def db_query(self, sql, params=()):
        """rows of SQL (portable, ? placeholders) on this Env's store, SQLite or PostgreSQL"""
        if self.db:
            return self.db.query(sql, params)
        import sqlite3
        con = sqlite3.connect(os.path.join(self.state_dir, "snapback.db"), timeout=10)
        try:
            with con:
                return [tuple(r) for r in con.execute(sql, params)]
        finally:
            con.close()

    # -- checks
    def check(self, cond, msg):
        if not cond:
            self.failures.append(msg)
        return bool(cond)

    def require(self, cond, msg):
        if not cond:
            fail(msg)

    # -- HTTP, as an SDK does it
    @property
    def port(self):
        return self.daemon.port

    def token(self, username=ADMIN_USER, password=ADMIN_PASSWORD):
        """POST the SSO token form; returns (Response, parsed JSON or None)"""
        form = urllib.parse.urlencode({"grant_type": "password", "scope": "ovirt-app-api",
                                       "username": username, "password": password})
        r = http_request(self.port, "POST", "/ovirt-engine/sso/oauth/token", form, {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded"})
        return r, (r.body if isinstance(r.body, dict) else None)

    def bearer_token(self):
        if self._token is None:
            r, js = self.token()
            if not js or "access_token" not in js:
                fail("cannot get a token: " + r.short())
            self._token = js["access_token"]
        return self._token

    def logout(self, token):
        form = urllib.parse.urlencode({"scope": "ovirt-app-api", "token": token})
        return http_request(self.port, "POST", "/ovirt-engine/services/sso-logout", form, {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded"})

    def api(self, method, path, body=None, headers=None, auth="bearer", json=False, token=None,
            password=ADMIN_PASSWORD, timeout=120):
        """a request below the API root (or an absolute path); returns Response, which
        unpacks as (status, headers, parsed body)"""
        if not (path.startswith("/ovirt-engine") or path == "/api" or path.startswith("/api/")
                or path.startswith("/api?")):
            path = API + ("" if path == "/" else path)
        ctype = "application/json" if json else "application/xml"
        h = {"Version": "4", "Accept": ctype, "Content-Type": ctype}
        if auth == "bearer":
            h["Authorization"] = "Bearer " + (token or self.bearer_token())
        elif auth == "basic":
            h["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % (ADMIN_USER, password)).encode()).decode()
        if json and body is not None and not isinstance(body, (str, bytes)):
            body = jsonlib.dumps(body)
        h.update(headers or {})
        return http_request(self.port, method, path, body, h, timeout=timeout)

    # -- expectations on answers
    def expect(self, r, statuses, what=""):
        """hard: the status must be one of statuses"""
        if isinstance(statuses, int):
            statuses = (statuses,)
        if r.status not in statuses:
            fail("%s%sexpected %s, got: %s" % (what, ": " if what else "",
                                                "/".join(map(str, statuses)), r.short()))
        return r.body

    def check_fault(self, r, statuses, what, names=None):
        """soft: status in statuses and a well-formed oVirt fault; names: strings the detail
        (or reason) must mention"""
        if isinstance(statuses, int):
            statuses = (statuses,)
        ok = self.check(r.status in statuses, "%s: expected %s, got: %s"
                        % (what, "/".join(map(str, statuses)), r.short()))
        b = r.body
        if isinstance(b, dict):
            reason, detail = b.get("reason"), b.get("detail")
            shape = "JSON {reason, detail}"
        elif isinstance(b, ET.Element) and b.tag == "fault":
            reason, detail = text(b, "reason"), text(b, "detail")
            shape = "<fault>"
        else:
            self.check(False, "%s: the answer is not a <fault>: %s" % (what, r.short()))
            return False
        ok &= self.check(bool(reason) and bool(detail),
                         "%s: %s without reason or detail: %s" % (what, shape, r.short()))
        if detail and shape == "<fault>":
            ok &= self.check(detail.startswith("[") and detail.endswith("]"),
                             "%s: <detail> is not in oVirt's '[...]' form: %r" % (what, detail))
        for n in names or ():
            ok &= self.check(n in (detail or "") + (reason or ""),
                             "%s: the fault does not name %r: %s" % (what, n, r.short()))
        return ok

    # -- objects
    def create_vm(self, name=None, memory=128 * MiB, extra=""):
        name = name or random_name()
        self.vm_names.add(name)
        r = self.api("POST", "/vms", vm_xml(name, memory, extra=extra))
        vm = self.expect(r, 201, "create VM %s" % name)
        if not isinstance(vm, ET.Element) or not vm.get("id"):
            fail("create VM %s: no <vm id=...> in the answer: %s" % (name, r.short()))
        return vm.get("id"), name

    def create_disk(self, alias=None, size=GiB, fmt="cow"):
        alias = alias or random_name("disk")
        r = self.api("POST", "/disks", disk_xml(alias, size, fmt))
        d = self.expect(r, (200, 201, 202), "create disk %s" % alias)
        if not isinstance(d, ET.Element) or not d.get("id"):
            fail("create disk %s: no <disk id=...> in the answer: %s" % (alias, r.short()))
        self.wait_disk_ok(d.get("id"))
        return d.get("id")

    def wait_disk_ok(self, disk_id, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            r = self.api("GET", "/disks/" + disk_id)
            st = text(r.body, "status")
            if r.status == 200 and st == "ok":
                return
            if time.monotonic() > deadline:
                fail("disk %s did not become ok within %d s: %s" % (disk_id, timeout, r.short()))
            time.sleep(0.2)

    def attach(self, vm_id, disk_id, interface="virtio", bootable=False, active=True):
        r = self.api("POST", "/vms/%s/diskattachments" % vm_id,
                     attachment_xml(disk_id, interface, bootable, active))
        return self.expect(r, 201, "attach disk %s to VM %s (%s)" % (disk_id, vm_id, interface))

    def action(self, vm_id, verb, what=None):
        r = self.api("POST", "/vms/%s/%s" % (vm_id, verb), "<action/>")
        b = self.expect(r, (200, 201, 202), what or "%s VM %s" % (verb, vm_id))
        if not isinstance(b, ET.Element) or b.tag != "action":
            fail("%s VM %s: the answer is not an <action>: %s" % (verb, vm_id, r.short()))
        if b.find("fault") is not None:
            fail("%s VM %s: the <action> holds a fault: %s" % (verb, vm_id, r.short()))
        self.check(text(b, "status") == "complete",
                   "%s VM %s: <action><status> is %r, not 'complete'" % (verb, vm_id, text(b, "status")))
        return b

    def start_vm(self, vm_id, name):
        self.vm_names.add(name)
        self.action(vm_id, "start")
        st = domstate(name)
        self.require(st == "running", "after start of %s, virsh domstate says %r" % (name, st))

    def vm_status(self, vm_id):
        r = self.api("GET", "/vms/" + vm_id)
        self.expect(r, 200, "GET VM " + vm_id)
        return text(r.body, "status")

    def disk_files(self, disk_id):
        """volume files of the disk: STATE/storage/SD_ID/images/DISK_ID/VOLUME_ID"""
        pat = os.path.join(self.state_dir, "storage", "*", "images", disk_id, "*")
        return sorted(p for p in glob.glob(pat)
                      if not p.endswith((".meta", ".lease")) and os.path.isfile(p))

    def disk_file(self, disk_id):
        files = self.disk_files(disk_id)
        self.require(len(files) == 1, "disk %s: expected one volume file under %s/storage/*/images/%s/, found %r"
                     % (disk_id, self.state_dir, disk_id, files))
        return files[0]

    def snapshot(self):
        """everything a refused request must leave unchanged (events excepted)"""
        s = {}
        r = self.api("GET", "/vms")
        s["vms"] = normalize(r.body) if r.status == 200 else r.short()
        for vid in ids(r.body, "vm"):
            a = self.api("GET", "/vms/%s/diskattachments" % vid)
            s["attachments " + vid] = normalize(a.body) if a.status == 200 else a.short()
        r = self.api("GET", "/disks")
        s["disks"] = normalize(r.body) if r.status == 200 else r.short()
        # only this test's domains: other suites may run against the same libvirt at once
        s["libvirt domains"] = [(n, domstate(n)) for n in sorted(self.vm_names) if n in domains()]
        for n, st in s["libvirt domains"]:
            s["domblklist " + n] = domblklist(n)
        files = {}
        root = os.path.join(self.state_dir, "storage")
        for dirpath, _, names in os.walk(root):
            for f in names:
                p = os.path.join(dirpath, f)
                try:
                    files[os.path.relpath(p, root)] = sha256(p)
                except OSError as e:
                    files[os.path.relpath(p, root)] = str(e)
        s["files"] = files
        return s

    def check_unchanged(self, before, what):
        after = self.snapshot()
        for k in sorted(set(before) | set(after)):
            if before.get(k) != after.get(k):
                self.check(False, "%s changed %s:\n      before: %s\n      after:  %s"
                           % (what, k, _short(before.get(k)), _short(after.get(k))))
        return after


def _short(v, limit=600):
    s = " ".join(str(v).split())
    return s[:limit] + ("..." if len(s) > limit else "")


# ---------------------------------------------------------------------------- test registry

CASES = []


def case(title, store=None):
    """registers fn(env) as a test; the runner gives it a started Env and closes it after.
    store="sqlite" or "postgresql": the test is about that backend (its files, its locks) and
    runs only when the run's daemons use it (db_backend())"""
    def reg(fn):
        if store is None or store == db_backend():
            CASES.append((title, fn))
        return fn
    return reg


def qemu_nbd_pids(needle):
    """pids of running qemu-nbd processes with needle (a socket or state path) in their arguments"""
    return program_pids("qemu-nbd", needle)


def program_pids(prog, needle):
    """pids of running PROG processes with needle (a socket or state path) in their arguments"""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == prog.encode() and any(needle.encode() in a for a in argv[1:]):
            out.append(int(pid))
    return out
