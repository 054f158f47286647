"""15. running snapbackd as a service: the configuration file and --check-config, option
validation before any state, the bound port, SIGHUP, /metrics (checked by promtool), the
schema version check, and 404s that say which kind of id was expected."""
import os
import re
import shutil
import signal
import subprocess
import time

from harness import case, http_request, ADMIN_USER, ADMIN_PASSWORD, API, MiB
from case_snapshots import take_snap
from case_transfers import create_transfer, data_path, action
from case_backup_app import cli_path

import base64
import http.client
import ssl

BASIC = "Basic " + base64.b64encode(("%s:%s" % (ADMIN_USER, ADMIN_PASSWORD)).encode()).decode()


def run(env, args, extra_env=None, timeout=30):
    """runs snapbackd to completion (--check-config, refusals); returns CompletedProcess"""
    e = dict(os.environ)
    e.pop("SNAPBACK_ADMIN_PASSWORD", None)
    e.update(extra_env or {})
    if "--config" not in args:
        args = ["--config", "/dev/null"] + args  # an installed /etc/snapback/snapbackd.conf must not count
    return subprocess.run([env.binary] + args, capture_output=True, text=True, timeout=timeout,
                          env=e, stdin=subprocess.DEVNULL)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


class Proc:
    """a second snapbackd with its own arguments and log, stopped by the test"""

    def __init__(self, env, args, extra_env=None):
        self.log = os.path.join(env.state_dir, "other-%d.log" % time.monotonic_ns())
        e = dict(os.environ, SNAPBACK_ADMIN_PASSWORD=ADMIN_PASSWORD)
        e.update(extra_env or {})
        with open(self.log, "wb") as out:
            self.p = subprocess.Popen([env.binary] + args, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=e)

    def text(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=30):
        """the first match of pattern in the log; fails when the process exits first"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return m
            if self.p.poll() is not None:
                break
            time.sleep(0.1)
        return None

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


@case("ops: --check-config names the line and key of a bad setting, and the options win over the file")
def check_config(env):
    d = env.state_dir
    good = write(os.path.join(d, "good.conf"),
                 "# snapbackd.conf\n\nlisten = 127.0.0.1:0\nhttp = true\nlog-level = debug\n"
                 "threads = 4\nmetrics-auth = none\n# a repeatable flag repeats\nallow-path = /tmp\n"
                 "allow-path = \"%s\"\n" % d)
    p = run(env, ["--config", good, "--check-config"])
    env.check(p.returncode == 0, "a good file: exit %d, %s" % (p.returncode, p.stderr.strip()))
    cases = [
        ("listen = 127.0.0.1:0\nthreads = 0\n", "good:2: key 'threads'"),
        ("\n# x\nlisten = 127.0.0.1:99999\n", ":3: key 'listen'"),
        ("http = maybe\n", ":1: key 'http'"),
        ("log-level = loud\n", ":1: key 'log-level'"),
        ("listen = 127.0.0.1:0\nno-such-key = 1\n", ":2: key 'no-such-key'"),
        ("listen\n", ":1: key 'listen'"),
        ("--listen = 127.0.0.1:0\n", ":1: key '--listen'"),
        ("check-config = true\n", ":1: key 'check-config'"),
        ("domain-type = xen\n", ":1: key 'domain-type'"),
        ("allow-path = /tmp\nallow-path = /nonexistent-snapback-dir\n", ":2: key 'allow-path'"),
    ]
    for i, (body, want) in enumerate(cases):
        path = write(os.path.join(d, "bad%d.conf" % i), body)
        want = want.replace("good:", "bad%d.conf:" % i)
        p = run(env, ["--config", path, "--check-config"])
        env.check(p.returncode == 2 and want in p.stderr,
                  "--check-config of %r: exit %d, stderr %r; expected 2 naming %r"
                  % (body, p.returncode, p.stderr.strip(), want))
    # the command line wins: a bad listen in the file is overridden
    bad_listen = write(os.path.join(d, "listen.conf"), "listen = nowhere\n")
    p = run(env, ["--config", bad_listen, "--listen", "127.0.0.1:0", "--check-config"])
    env.check(p.returncode == 0, "an option overriding a bad file value: exit %d, %s"
              % (p.returncode, p.stderr.strip()))
    p = run(env, ["--config", os.path.join(d, "missing.conf"), "--check-config"])
    env.check(p.returncode == 2 and "missing.conf" in p.stderr,
              "a missing --config file: exit %d, %r" % (p.returncode, p.stderr.strip()))


@case("ops: a bad --listen exits 2 before it creates the store or prints a password")
def bad_listen(env):
    state = os.path.join(env.state_dir, "fresh")
    for listen in ("nowhere", "127.0.0.1:99999", "[::1]8443", "127.0.0.1:"):
        p = run(env, ["--state-dir", state, "--listen", listen, "--http"])
        env.check(p.returncode == 2, "--listen %s: exit %d, not 2 (%s)" % (listen, p.returncode, p.stderr.strip()))
        env.check("listen" in p.stderr, "--listen %s: the message does not name --listen: %r" % (listen, p.stderr))
        env.check("password" not in p.stdout + p.stderr, "--listen %s printed a password" % listen)
        env.check(not os.path.exists(state), "--listen %s created the state directory %s" % (listen, state))
    p = run(env, ["--state-dir", state, "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"])
    env.check(p.returncode == 2 and not os.path.exists(state),
              "an unreadable --tls-cert: exit %d, state dir %s" % (p.returncode, os.path.exists(state)))


@case("ops: --tls-cert/--tls-key: another certificate's key is refused before any state; a good pair serves HTTPS")
def tls_files(env):
    state = os.path.join(env.state_dir, "fresh")
    pems = {}
    for n in ("a", "b"):
        cert, key = os.path.join(env.state_dir, n + ".pem"), os.path.join(env.state_dir, n + ".key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
        pems[n] = (cert, key)
    p = run(env, ["--state-dir", state, "--listen", "127.0.0.1:0", "--tls-cert", pems["a"][0], "--tls-key", pems["b"][1]])
    env.check(p.returncode == 2 and "does not belong" in p.stderr and not os.path.exists(state),
              "a key of another certificate: exit %d, %r, state dir %s"
              % (p.returncode, p.stderr.strip(), os.path.exists(state)))
    d = Proc(env, ["--config", "/dev/null", "--listen", "127.0.0.1:0", "--state-dir", state, "--domain-type", "qemu",
                   "--tls-cert", pems["a"][0], "--tls-key", pems["a"][1]])
    try:
        m = d.wait_log(r"serving oVirt API on https://127\.0\.0\.1:(\d+)/")
        env.require(m, "no HTTPS serving line: %s" % d.text()[-1500:])
        ctx = ssl.create_default_context(cafile=pems["a"][0])
        conn = http.client.HTTPSConnection("127.0.0.1", int(m.group(1)), context=ctx, timeout=30)
        conn.request("GET", API, headers={"Authorization": BASIC})
        status = conn.getresponse().status
        conn.close()
        env.check(status == 200, "GET over HTTPS with the given certificate: %s" % status)
        env.check(not os.path.exists(os.path.join(state, "pki", "ca.pem")),
                  "snapbackd made its own CA although --tls-cert was given")
        # the snapback CLI over HTTPS: it logs in and asks, trusting --cacert; another CA is refused
        cli = cli_path(env)
        home = os.path.join(env.state_dir, "cli-home")
        os.makedirs(home, exist_ok=True)
        environ = dict(os.environ, SNAPBACK_URL="https://127.0.0.1:%s%s" % (m.group(1), API),
                       SNAPBACK_USER=ADMIN_USER, SNAPBACK_PASSWORD=ADMIN_PASSWORD, HOME=home, XDG_CONFIG_HOME=home)
        repo = os.path.join(home, "repo")
        subprocess.run([cli, "init", "--repo", repo], env=environ, check=True, capture_output=True, timeout=60)
        for ca, words in ((pems["a"][0], "VM 'no-such-vm' does not exist"), (pems["b"][0], "not trusted")):
            p = subprocess.run([cli, "backup", "no-such-vm", "--repo", repo, "--cacert", ca], env=environ,
                               capture_output=True, text=True, timeout=60)
            env.check(p.returncode == 1 and words in p.stderr,
                      "snapback over HTTPS with CA %s: exit %d, %r (expected %r)"
                      % (os.path.basename(ca), p.returncode, p.stderr.strip(), words))
    finally:
        rc = d.stop()
    env.check(rc == 0, "SIGTERM: exit %r" % rc)


@case("ops: /metrics passes promtool check metrics, needs an engine user by default, counts by route")
def metrics(env):
    promtool = shutil.which("promtool")
    env.require(promtool, "promtool is not installed (Debian package prometheus; scripts/setup.sh installs it)")
    vm_id, _ = env.create_vm()
    disk = env.create_disk(size=16 * MiB)
    env.attach(vm_id, disk, "virtio_scsi")
    take_snap(env, vm_id, "metrics")
    env.api("GET", "/vms/%s" % vm_id)
    env.api("GET", "/vms/00000000-0000-0000-0000-00000000dead")

    # an image transfer: in progress, then its bytes counted
    t = create_transfer(env, "download", disk_id=disk)
    r = http_request(env.port, "GET", data_path(t))
    env.check(r.status == 200 and len(r.raw) == 16 * MiB, "download: %s, %d bytes" % (r.status, len(r.raw)))
    r = http_request(env.port, "GET", "/metrics", headers={"Authorization": BASIC})
    env.check("\nsnapback_image_transfers_in_progress 1\n" in r.raw.decode(),
              "/metrics during a transfer does not show it in progress")
    m = re.search(r"^snapback_transfer_bytes_total (\d+)$", r.raw.decode(), re.M)
    env.check(m and int(m.group(1)) >= 16 * MiB, "snapback_transfer_bytes_total after a 16 MiB download: %s"
              % (m.group(1) if m else "missing"))
    action(env, t.get("id"), "finalize")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and env.api("GET", "/disks/%s" % disk).body.findtext("status") != "ok":
        time.sleep(0.2)

    r = http_request(env.port, "GET", "/metrics")
    env.check(r.status == 401, "/metrics without credentials: %s" % r.short())
    r = http_request(env.port, "GET", "/metrics", headers={"Authorization": "Bearer " + env.bearer_token()})
    env.check(r.status == 200, "/metrics with a bearer token: %s" % r.short())
    r = http_request(env.port, "GET", "/metrics", headers={"Authorization": BASIC})
    env.require(r.status == 200, "/metrics with Basic: %s" % r.short())
    env.check(r.headers.get("content-type", "").startswith("text/plain; version=0.0.4"),
              "/metrics content type %r" % r.headers.get("content-type"))
    text = r.raw.decode()
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    env.check(p.returncode == 0, "promtool check metrics: exit %d: %s" % (p.returncode, (p.stdout + p.stderr).strip()))
    for want in (
        'snapback_http_requests_total{route="/vms/{}",method="GET",code="200"} 1',
        'snapback_http_requests_total{route="/vms/{}",method="GET",code="404"} 1',
        'snapback_http_request_duration_seconds_count{route="/vms",method="POST"} 1',
        'snapback_command_duration_seconds_count{command="AddVm",outcome="ok"} 1',
        'snapback_snapshot_duration_seconds_count{operation="create",outcome="ok"} 1',
        "snapback_jobs_in_progress 0",
        "snapback_image_transfers_in_progress 0",
        'snapback_host_connected{host="localhost",uri="qemu:///system"} 1',
        "# TYPE snapback_store_size_bytes gauge",
    ):
        env.check(want in text, "/metrics lacks %r" % want)
    m = re.search(r"^snapback_store_size_bytes (\d+)$", text, re.M)
    env.check(m and int(m.group(1)) > 0, "snapback_store_size_bytes is not a positive number")
    r = http_request(env.port, "POST", "/metrics", headers={"Authorization": BASIC})
    env.check(r.status == 405, "POST /metrics: %s" % r.short())


@case("ops: config file, port 0 logs the bound port, SIGHUP reloads, a later start says the password variable is ignored")
def config_and_sighup(env):
    conf = write(os.path.join(env.state_dir, "snapbackd.conf"),
                 "listen = 127.0.0.1:0\nhttp = yes\ndomain-type = qemu\nlog-level = info\n")
    state = os.path.join(env.state_dir, "second")
    d = Proc(env, ["--config", conf, "--state-dir", state])
    try:
        m = d.wait_log(r"serving oVirt API on http://127\.0\.0\.1:(\d+)/ovirt-engine/api")
        env.require(m, "no 'serving oVirt API on http://127.0.0.1:PORT' line: %s" % d.text()[-2000:])
        port = int(m.group(1))
        env.check(port != 0, "the log shows port 0")
        r = http_request(port, "GET", API, headers={"Authorization": BASIC})
        env.check(r.status == 200, "GET the API on the logged port %d: %s" % (port, r.short()))
        r = http_request(port, "GET", "/metrics")
        env.check(r.status == 401, "/metrics before SIGHUP needs a user: %s" % r.short())

        write(conf, "listen = 127.0.0.1:0\nhttp = yes\ndomain-type = qemu\nlog-level = debug\n"
                    "metrics-auth = none\nthreads = 3\n")
        d.p.send_signal(signal.SIGHUP)
        env.check(d.wait_log(r"SIGHUP: reloaded .*log level debug, metrics auth none"),
                  "no reload line after SIGHUP: %s" % d.text()[-1500:])
        env.check(re.search(r"'threads' changed; restart", d.text()),
                  "SIGHUP does not say that 'threads' needs a restart")
        r = http_request(port, "GET", "/metrics")
        env.check(r.status == 200, "/metrics after SIGHUP with metrics-auth = none: %s" % r.short())
        http_request(port, "GET", API + "/vms", headers={"Authorization": BASIC})
        env.check(d.wait_log(r"debug: GET /ovirt-engine/api/vms: 200", timeout=5),
                  "log-level debug after SIGHUP does not log requests")

        write(conf, "log-level = loud\n")
        d.p.send_signal(signal.SIGHUP)
        env.check(d.wait_log(r"SIGHUP: keeping the running settings: .*snapbackd.conf:1: key 'log-level'"),
                  "a bad file at SIGHUP is not refused with its line: %s" % d.text()[-1500:])
        env.check(d.p.poll() is None, "snapbackd exited after a bad file at SIGHUP")
    finally:
        rc = d.stop()
    env.check(rc == 0, "SIGTERM after SIGHUP: exit %r" % rc)

    write(conf, "listen = 127.0.0.1:0\nhttp = yes\ndomain-type = qemu\n")
    d = Proc(env, ["--config", conf, "--state-dir", state], {"SNAPBACK_ADMIN_PASSWORD": "another"})
    try:
        env.check(d.wait_log(r"SNAPBACK_ADMIN_PASSWORD is ignored: .*snapbackd user password admin@internal"),
                  "a later start does not say SNAPBACK_ADMIN_PASSWORD is ignored: %s" % d.text()[-1500:])
    finally:
        d.stop()


@case("ops: a 404 for a snapshot or disk snapshot id says which kind of id was expected")
def id_kinds(env):
    vm_id, _ = env.create_vm()
    disk = env.create_disk(size=16 * MiB)
    r = env.api("GET", "/vms/%s/snapshots/%s" % (vm_id, disk))
    env.check_fault(r, 404, "a disk id as a VM snapshot id", ["VM snapshot", "/vms/%s/snapshots" % vm_id,
                                                               "is the id of a disk"])
    r = env.api("GET", "/vms/%s/snapshots/%s/disks" % (vm_id, vm_id))
    env.check_fault(r, 404, "a VM id as a VM snapshot id", ["VM snapshot", "is the id of a VM"])
    snaps = env.api("GET", "/vms/%s/snapshots" % vm_id).body
    active = snaps.find("snapshot").get("id") if snaps is not None and snaps.find("snapshot") is not None else None
    r = env.api("GET", "/disks/%s/disksnapshots/%s" % (disk, active))
    env.check_fault(r, 404, "a VM snapshot id as a disk snapshot id", ["disk snapshot", "disksnapshots",
                                                                        "is the id of a VM snapshot"])


@case("ops: an engine refuses a store whose schema is newer than it knows, with a clear message")
def newer_schema(env):
    env.daemon.stop()
    env.db_query("UPDATE settings SET value = '999' WHERE name = 'schema_version'")
    p = run(env, ["--http", "--listen", "127.0.0.1:0", "--state-dir", env.state_dir, "--domain-type", "qemu",
                  *env.daemon.db_args()], {"SNAPBACK_ADMIN_PASSWORD": ADMIN_PASSWORD})
    env.check(p.returncode == 1, "a newer schema: exit %d, not 1" % p.returncode)
    env.check("schema version 999, newer than" in p.stderr, "the refusal does not explain itself: %r" % p.stderr)
    version = env.db_query("SELECT value FROM settings WHERE name = 'schema_version'")[0][0]
    version = str(version)
    env.check(version == "999", "the refused start changed the schema version to %r" % version)
