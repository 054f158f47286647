"""The shell examples of docs/*.md run against a live engine, so an example that stops
working fails the build.

Every ```sh block of docs/*.md runs, in order, one bash per file (`set -euo pipefail`),
so later blocks see the variables of earlier ones. The line just above a block may mark it:

  <!-- doc-test: skip (WHY) -->        not run: it changes the host (apt, systemctl, ...)
                                       or has placeholders; WHY is required
  <!-- doc-test: env VAR... -->        not run: it only sets these variables, which the test
                                       sets for its own engine (API CACERT PASSWORD DATA
                                       APPLIANCE); the block must set exactly those

The engine is a real snapbackd over HTTPS on a free port with its own state directory
and CA, started as the guide's systemd unit would be (NOTIFY_SOCKET aside). VM names are
e2e-..., so a failed run's domains are cleaned up like any other test's."""
import glob
import os
import re
import signal
import ssl
import subprocess
import http.client
import time

from harness import case, fail, free_port, random_name, API, ADMIN_USER, ADMIN_PASSWORD

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs")
MARK = re.compile(r"^<!--\s*doc-test:\s*(skip|env)\b(.*?)-->\s*$")
PROVIDED = {"API", "CACERT", "PASSWORD", "DATA", "APPLIANCE"}


def blocks(path):
    """[(line, marker, argument, text)] for each ```sh block of the file"""
    out, lines = [], open(path, encoding="utf-8").read().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() in ("```sh", "```bash", "```shell"):
            start, body = i + 1, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            j = start - 2
            while j >= 0 and not lines[j].strip():
                j -= 1
            m = MARK.match(lines[j].strip()) if j >= 0 else None
            out.append((start, m.group(1) if m else None, m.group(2).strip() if m else "", "\n".join(body)))
        i += 1
    return out


def start_engine(env):
    """an HTTPS snapbackd on the Env's state directory; returns (proc, port, ca)"""
    env.daemon.stop()
    port = free_port()
    log = open(os.path.join(env.log_dir, "snapbackd.docs.log"), "wb")
    proc = subprocess.Popen([env.binary, "--listen", "127.0.0.1:%d" % port, "--state-dir", env.state_dir,
                             "--domain-type", "qemu", *env.daemon.db_args()], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=dict(os.environ, SNAPBACK_ADMIN_PASSWORD=ADMIN_PASSWORD))
    log.close()
    ca = os.path.join(env.state_dir, "pki", "ca.pem")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail("snapbackd (HTTPS) exited with %s" % proc.returncode)
        try:
            c = http.client.HTTPSConnection("127.0.0.1", port, timeout=5,
                                            context=ssl.create_default_context(cafile=ca))
            c.request("GET", API)
            if c.getresponse().status == 401:
                return proc, port, ca
        except (OSError, ssl.SSLError):
            pass
        time.sleep(0.2)
    proc.kill()
    fail("snapbackd (HTTPS) did not answer within 60 s")


@case("docs: every shell example of docs/*.md runs against a live engine (getting-started.md's whole flow)")
def docs(env):
    files = sorted(glob.glob(os.path.join(DOCS, "*.md")))
    env.require(files, "no docs/*.md found in %s" % DOCS)
    plan, ran = [], 0
    for path in files:
        name = os.path.relpath(path, os.path.join(DOCS, ".."))
        runnable = []
        for line, mark, arg, text in blocks(path):
            where = "%s:%d" % (name, line)
            if mark == "skip":
                env.check(arg.startswith("(") and len(arg) > 2,
                          "%s: a doc-test skip must say why, in parentheses" % where)
            elif mark == "env":
                want = set(arg.split())
                sets = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", text, re.M))
                env.check(want <= PROVIDED, "%s: the test cannot provide %s" % (where, sorted(want - PROVIDED)))
                env.check(sets == want, "%s: the env block sets %s, its marker names %s"
                          % (where, sorted(sets), sorted(want)))
            else:
                runnable.append((where, text))
        if runnable:
            plan.append((name, runnable))
    env.require(any(n.endswith("getting-started.md") for n, _ in plan),
                "docs/getting-started.md has no runnable shell example")

    proc, port, ca = start_engine(env)
    names = {"DATA": random_name("docs-data"), "APPLIANCE": random_name("docs-app")}
    env.vm_names.update(names.values())
    environ = dict(os.environ, API="https://127.0.0.1:%d/ovirt-engine/api" % port, CACERT=ca,
                   PASSWORD=ADMIN_PASSWORD, **names)
    try:
        for name, runnable in plan:
            script = ["set -euo pipefail"]
            for where, text in runnable:
                script += ["echo 'doc-test: running %s' >&2" % where, text]
                ran += 1
            work = os.path.join(env.log_dir, "docs-" + os.path.basename(name))
            os.makedirs(work, exist_ok=True)
            try:
                r = subprocess.run(["bash", "-c", "\n".join(script)], cwd=work, env=environ,
                                   capture_output=True, text=True, timeout=300)
                rc, out, err = r.returncode, r.stdout, r.stderr
            except subprocess.TimeoutExpired as e:
                rc, out, err = "timeout (300 s)", e.stdout or "", e.stderr or ""
                out = out.decode() if isinstance(out, bytes) else out
                err = err.decode() if isinstance(err, bytes) else err
            if rc != 0:
                last = [l for l in err.splitlines() if l.startswith("doc-test: running ")]
                block = last[-1][len("doc-test: running "):] if last else name
                env.check(False, "the example at %s failed (exit %s); stderr:\n%s\nstdout:\n%s"
                          % (block, rc, err[-2000:], out[-1000:]))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    env.check(ran > 0, "no shell example ran")


def unit_commands(path, instance):
    """(environment, [argv]) of a oneshot unit's Environment= and ExecStart= lines, with %I
    and unbraced $VAR expanded as systemd does (a $VAR standing alone splits on spaces)"""
    import shlex
    environ, cmds = {}, []
    for ln in open(path, encoding="utf-8").read().splitlines():
        if ln.startswith("Environment="):
            for assignment in shlex.split(ln[len("Environment="):]):
                k, _, v = assignment.partition("=")
                environ[k] = v
        elif ln.startswith("ExecStart="):
            argv = []
            for w in ln[len("ExecStart="):].replace("%I", instance).split():
                if w.startswith("$") and w[1:] in environ:
                    argv += environ[w[1:]].split()
                else:
                    argv.append(w)
            cmds.append(argv)
    return environ, cmds


@case("units: snapback-backup@VM.service's commands (backup, prune, gc) with its snapback.conf, against a live engine")
def backup_unit(env):
    from case_backup_app import cli_path
    import tempfile
    unit = os.path.join(DOCS, "..", "dist", "systemd", "snapback-backup@.service")
    vm_id, name = env.create_vm()
    disk = env.create_disk(size=16 * 1024 * 1024)
    env.attach(vm_id, disk, "virtio_scsi", bootable=True)
    environ, cmds = unit_commands(unit, name)
    env.require(len(cmds) == 3 and [c[1] for c in cmds] == ["backup", "prune", "gc"],
                "snapback-backup@.service runs %r, expected backup, prune, gc" % cmds)
    env.require(environ.get("XDG_CONFIG_HOME") == "/etc/snapback", "the unit's XDG_CONFIG_HOME is %r"
                % environ.get("XDG_CONFIG_HOME"))
    # the shipped snapback.conf, pointed at this test's engine and a scratch repository
    conf_dir = tempfile.mkdtemp(prefix="snapback-e2e-conf-", dir=env.log_dir)
    shipped = open(os.path.join(DOCS, "..", "dist", "snapback.conf"), encoding="utf-8").read()
    keys = dict(l.split(" = ", 1) for l in shipped.splitlines() if l and not l.startswith("#"))
    env.check(set(keys) == {"url", "user", "password_file", "cacert", "repo"},
              "dist/snapback.conf sets %s" % sorted(keys))
    with open(os.path.join(conf_dir, "password"), "w") as f:
        f.write(ADMIN_PASSWORD + "\n")
    with open(os.path.join(conf_dir, "snapback.conf"), "w") as f:
        f.write("url = http://127.0.0.1:%d/ovirt-engine/api\nuser = %s\npassword_file = %s\nrepo = %s\n"
                % (env.port, ADMIN_USER, os.path.join(conf_dir, "password"), os.path.join(conf_dir, "repo")))
    run_env = dict(os.environ, XDG_CONFIG_HOME=conf_dir)
    for k in ("SNAPBACK_URL", "SNAPBACK_USER", "SNAPBACK_PASSWORD", "SNAPBACK_REPO", "SNAPBACK_CACERT"):
        run_env.pop(k, None)
    cli = cli_path(env)
    for argv in cmds:
        env.require(argv[0] == "/usr/bin/snapback", "the unit runs %s, not /usr/bin/snapback" % argv[0])
        r = subprocess.run([cli] + argv[1:], env=run_env, capture_output=True, text=True, timeout=300)
        env.require(r.returncode == 0, "snapback %s exited %d: %s %s"
                    % (" ".join(argv[1:]), r.returncode, r.stdout[-500:], r.stderr[-500:]))
    r = subprocess.run([cli, "backups"], env=run_env, capture_output=True, text=True, timeout=60)
    env.check(r.returncode == 0 and name in r.stdout, "after the unit's commands, backups lists: %s %s"
              % (r.stdout[-500:], r.stderr[-300:]))
