#!/usr/bin/env python3
"""run.py: the web console's browser tests (console.mjs) against a real snapbackd.

Starts the daemon as the end-to-end harness does (tests/e2e/harness.py: fresh state dir,
free port, plain HTTP), prepares a running appliance VM as the attach target, then runs
console.mjs in Node: playwright-core drives Debian's /usr/bin/chromium, axe-core checks
each page. Screenshots go to --out (CI keeps build/screenshots/).

Exit 77 (skip) only when SNAPBACK_SKIP_WEB is set (the sanitizer pass of `make check`:
the daemon under test would be the plain build's anyway) or Chromium/Node are absent.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import harness  # noqa: E402
from harness import Env, fail, random_name  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def node_modules():
    """tests/web/node_modules from the committed package-lock.json (npm ci when absent)"""
    if not os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")) or \
       not os.path.isdir(os.path.join(HERE, "node_modules", "axe-core")):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            fail("npm ci in %s failed:\n%s" % (HERE, r.stdout))


def appliance_target(env):
    """a running VM booting the appliance, with a virtio-scsi controller: the attach target"""
    import appliance
    kernel, initrd = appliance.ensure_appliance(harness.appliance_dir(env.binary))
    name = random_name("webtarget")
    env.vm_names.add(name)
    body = ("<vm><name>%s</name><cluster><name>Default</name></cluster><template><name>Blank</name>"
            "</template><memory>%d</memory><os><type>other</type><kernel>%s</kernel><initrd>%s</initrd>"
            "<cmdline>console=ttyS0 panic=-1</cmdline></os></vm>" % (name, 256 * harness.MiB, kernel, initrd))
    vm = env.expect(env.api("POST", "/vms", body), 201, "create the attach target %s" % name)
    env.start_vm(vm.get("id"), name)
    return name


LIMITED_PASSWORD = "web-user-pw"


def limited_user(env):
    """(user name, VM name): a user whose only role is UserRole on one new VM, when this
    snapbackd has users (`snapbackd user add`, the permissions issue); else (None, None)"""
    helptext = subprocess.run([env.binary, "--help"], capture_output=True, text=True).stdout
    if "user add" not in helptext:
        return None, None
    name = random_name("webuser").replace("-", "")
    with tempfile.NamedTemporaryFile("w", prefix="snapback-web-pw-", delete=False) as f:
        f.write(LIMITED_PASSWORD + "\n")
    try:
        p = subprocess.run([env.binary, "--state-dir", env.state_dir, "user", "add", name,
                            "--password-file", f.name], capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(f.name)
    env.require(p.returncode == 0, "snapbackd user add %s: %s" % (name, p.stderr.strip()))
    u = env.expect(env.api("POST", "/users", "<user><user_name>%s@internal</user_name><domain><name>"
                           "internal-authz</name></domain></user>" % name), 201, "register " + name)
    vm_name = random_name("webown")
    vm = env.expect(env.api("POST", "/vms", harness.vm_xml(vm_name)), 201, "create " + vm_name)
    env.expect(env.api("POST", "/vms/%s/permissions" % vm.get("id"),
                       "<permission><role><name>UserRole</name></role><user id=\"%s\"/></permission>"
                       % u.get("id")), 201, "grant UserRole on %s" % vm_name)
    return name + "@internal", vm_name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--out", required=True, help="folder for screenshots and timings")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if os.environ.get("SNAPBACK_SKIP_WEB"):
        print("SNAPBACK_SKIP_WEB is set: browser tests run in the plain pass only")
        return 77
    for need in (CHROMIUM, shutil.which("node"), shutil.which("npm")):
        if not need or not os.path.exists(need):
            print("missing %s: run scripts/setup.sh" % (need or "node/npm"))
            return 77
    node_modules()
    os.makedirs(a.out, exist_ok=True)
    env = Env(a.daemon, keep=a.keep)
    rc = 1
    try:
        env.start()
        target = appliance_target(env)
        lim_user, lim_vm = limited_user(env)
        envp = dict(os.environ, SNAPBACK_LIMITED_USER=lim_user or "", SNAPBACK_LIMITED_VM=lim_vm or "",
                    SNAPBACK_LIMITED_PASSWORD=LIMITED_PASSWORD, SNAPBACK_URL="http://127.0.0.1:%d" % env.port,
                    SNAPBACK_USER=harness.ADMIN_USER, SNAPBACK_PASSWORD=harness.ADMIN_PASSWORD,
                    SNAPBACK_TARGET_VM=target, SNAPBACK_OUT=os.path.abspath(a.out),
                    SNAPBACK_VM_PREFIX=random_name("web"))
        rc = subprocess.run(["node", os.path.join(HERE, "console.mjs")], env=envp, cwd=HERE).returncode
        # every VM the browser made is named e2e-...: let close() destroy its domain
        r = env.api("GET", "/vms")
        for vm in (r.body.findall("vm") if r.status == 200 else []):
            n = harness.text(vm, "name", "")
            if n.startswith("e2e-"):
                env.vm_names.add(n)
        if rc != 0:
            print("snapbackd log tail:\n" + env.daemon.log_tail(30))
    except harness.Failure as e:
        print("FAIL: %s" % e)
        rc = 1
    finally:
        env.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
