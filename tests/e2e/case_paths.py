"""Closing the paths to the host (issue 10): control characters in names, descriptions and
paths are refused; host paths must lie under the roots given with --allow-path; XML with a
DOCTYPE is refused; an export cut off by a kill never deletes a file it did not create;
failed logins are slowed without slowing anyone else."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse

from harness import case, text, ids, MiB, fail, http_request, sha256, API, ADMIN_USER


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
    root = tempfile.mkdtemp(prefix="snapback-e2e-paths-")
    try:
        _newline_export_killed(env, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


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
