"""case_hardening.py: the engine under misuse (issue 13): one engine per store, requests
whose announced body never comes."""
import base64
import os
import socket
import subprocess
import time

from harness import case, API, ADMIN_USER, ADMIN_PASSWORD


def raw_exchange(port, request, timeout=10):
    """sends REQUEST (bytes) and returns (status line, seconds) of the answer; the body the
    request announces is never sent"""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0].decode("latin-1"), time.monotonic() - t0
    except socket.timeout:
        return "no answer in %d s" % timeout, time.monotonic() - t0
    finally:
        s.close()


@case("hardening: GET and DELETE whose announced body never arrives are still answered")
def body_never_arrives(env):
    basic = base64.b64encode(("%s:%s" % (ADMIN_USER, ADMIN_PASSWORD)).encode()).decode()
    tries = [
        ("GET", API + "/vms", "Basic " + basic, "200"),
        ("GET", API + "/vms", "Basic " + base64.b64encode(b"admin@internal:wrong").decode(), "401"),
        ("DELETE", API + "/vms/00000000-0000-0000-0000-00000000abcd", "Basic " + basic, "404"),
    ]
    for method, path, auth, want in tries:
        req = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\nVersion: 4\r\n"
               "Content-Type: application/xml\r\nContent-Length: 100\r\n\r\n" % (method, path, auth))
        line, secs = raw_exchange(env.port, req.encode())
        env.check(want in line.split(" ")[1:2] and secs < 5,
                  "%s %s with a body that never comes: %r after %.1f s (want %s)" % (method, path, line, secs, want))
    # the server still serves normally afterwards
    env.expect(env.api("GET", "/vms"), 200, "list VMs after the truncated requests")


@case("hardening: a second snapbackd on the same state dir is refused with a clear message")
def second_engine(env):
    vm = env.create_vm()
    argv = [env.binary, "--http", "--listen", "127.0.0.1:1", "--state-dir", env.state_dir,
            "--domain-type", "qemu"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, SNAPBACK_ADMIN_PASSWORD=ADMIN_PASSWORD))
    out = p.stdout + p.stderr
    env.check(p.returncode != 0, "the second daemon exited %d" % p.returncode)
    env.check("in use by another snapbackd (pid %d)" % env.daemon.proc.pid in out,
              "the second daemon's message does not name the first: %r" % out)
    env.check(env.daemon.alive(), "the first daemon died")
    env.expect(env.api("GET", "/vms/" + vm[0]), 200,
               "the first daemon still answers")
    # a kill -9 leaves no stale lock: the next engine starts
    env.daemon.stop(9)
    env.daemon.start()
    env._token = None
    env.expect(env.api("GET", "/vms"), 200, "the engine after a kill -9")


@case("hardening: events older than --event-retention-days are pruned at start, the newest one stays")
def event_retention(env):
    for i in range(5):
        env.expect(env.api("POST", "/events", "<event><description>old %d</description><severity>normal</severity>"
                           "<origin>e2e</origin><custom_id>%d</custom_id></event>" % (i, 1000 + i)), 201, "post event")
    env.daemon.stop()
    n_before = env.db_query("SELECT COUNT(*) FROM events")[0][0]
    newest = env.db_query("SELECT MAX(id) FROM events")[0][0]
    # age every event by 40 days: with 2 days' retention only the newest may stay
    env.db_query("UPDATE events SET time_ms = time_ms - 3456000000")  # 40 days
    env.daemon.extra_args = ["--event-retention-days", "2"]
    env.daemon.start()
    env._token = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ids = [r[0] for r in env.db_query("SELECT id FROM events WHERE time_ms < ? ORDER BY id",
                                          (int(time.time() * 1000) - 86400000,))]
        if ids == [newest]:
            break
        time.sleep(0.1)
    env.check(ids == [newest], "after pruning, the old events are %r of %d (want only the newest, %d)"
              % (ids, n_before, newest))
    r = env.api("POST", "/events", "<event><description>new</description><severity>normal</severity>"
                "<origin>e2e</origin><custom_id>2000</custom_id></event>")
    e = env.expect(r, 201, "post an event after the pruning")
    env.check(int(e.get("id")) > newest, "a new event got id %s, not after %d" % (e.get("id"), newest))


@case("hardening: a hot-unplug waiting for the guest holds no HTTP thread (--threads 1)")
def unplug_wait_releases_thread(env):
    import threading
    env.daemon.stop()
    env.daemon.extra_args = ["--threads", "1", "--detach-timeout", "6"]
    env.daemon.start()
    env._token = None
    # a q35 guest with no OS never releases a virtio-blk disk: the unplug waits its timeout
    vm_id, name = env.create_vm()
    disk = env.create_disk(size=64 * 1024 * 1024)
    env.attach(vm_id, disk, interface="virtio")
    env.start_vm(vm_id, name)
    token = env.bearer_token()
    done = {}

    def unplug():
        t0 = time.monotonic()
        done["r"] = env.api("DELETE", "/vms/%s/diskattachments/%s" % (vm_id, disk), token=token, timeout=60)
        done["secs"] = time.monotonic() - t0

    t = threading.Thread(target=unplug)
    t.start()
    time.sleep(1.0)
    slow = []
    for _ in range(5):
        t0 = time.monotonic()
        r = env.api("GET", "/vms/" + vm_id, token=token, timeout=30)
        secs = time.monotonic() - t0
        env.check(r.status == 200, "GET during the unplug wait: %s" % r.short())
        if secs > 1.0:
            slow.append(round(secs, 1))
        time.sleep(0.2)
    t.join(60)
    env.check(not slow, "GETs waited for the unplug: %r s" % slow)
    env.check("r" in done and done["r"].status in (200, 409, 500, 503) and done["secs"] >= 3,
              "the unplug itself: %s after %.1f s" % (done["r"].short() if "r" in done else "no answer",
                                                      done.get("secs", 0)))
