"""systemd's readiness protocol: snapbackd started as a Type=notify service.

No systemd runs on the test machines, so the test plays systemd's part: it binds a unix
datagram socket, starts snapbackd with NOTIFY_SOCKET naming it, and expects READY=1 only
once the API answers, then STOPPING=1 on SIGTERM."""
import os
import signal
import socket
import subprocess
import tempfile
import time

from harness import case, fail, free_port, http_request, API, ADMIN_PASSWORD


def _start(env, notify_socket):
    port = free_port()
    environ = dict(os.environ, SNAPBACK_ADMIN_PASSWORD=ADMIN_PASSWORD, NOTIFY_SOCKET=notify_socket)
    log = open(os.path.join(env.log_dir, "snapbackd.notify.log"), "wb")
    proc = subprocess.Popen([env.binary, "--http", "--listen", "127.0.0.1:%d" % port,
                             "--state-dir", env.state_dir, "--domain-type", "qemu", *env.daemon.db_args()],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environ)
    log.close()
    return proc, port


def _recv(sock, proc, timeout):
    """the next datagram as text, or None when the daemon exited or the time ran out"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(0.2)
        try:
            return sock.recv(4096).decode("utf-8", "replace")
        except socket.timeout:
            if proc.poll() is not None:
                return None
    return None


def _run(env, sock, name):
    proc, port = _start(env, name)
    try:
        msg = _recv(sock, proc, 60)
        if msg is None:
            fail("%s: no READY=1 (daemon exit status %r)" % (name, proc.poll()))
        env.check("READY=1" in msg.split("\n"), "%s: first notification is %r, not READY=1" % (name, msg))
        # READY=1 promises an answering API: ask at once, no retry
        r = http_request(port, "GET", API, headers={"Version": "4"}, timeout=10)
        env.check(r.status == 401, "%s: right after READY=1, GET %s without credentials answers %s, "
                  "expected 401 from a serving API" % (name, API, r.status))
        proc.send_signal(signal.SIGTERM)
        msg = _recv(sock, proc, 20) or ""
        env.check("STOPPING=1" in msg.split("\n"), "%s: on SIGTERM the notification is %r, not STOPPING=1"
                  % (name, msg))
        env.check(proc.wait(20) == 0, "%s: exit status %r after SIGTERM" % (name, proc.returncode))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@case("notify: READY=1 on $NOTIFY_SOCKET once the API answers, STOPPING=1 on SIGTERM (path and abstract)")
def notify(env):
    env.daemon.stop()   # this test starts the daemon itself, on the same state directory
    d = tempfile.mkdtemp(prefix="snapback-e2e-notify-", dir=env.log_dir)
    path = os.path.join(d, "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        _run(env, s, path)
    abstract = "snapback-e2e-notify-%d" % os.getpid()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + abstract)
        _run(env, s, "@" + abstract)
    # a socket nobody listens on must not keep the daemon from serving
    proc, port = _start(env, os.path.join(d, "nobody.sock"))
    try:
        deadline, ok = time.monotonic() + 60, False
        while time.monotonic() < deadline and proc.poll() is None and not ok:
            try:
                ok = http_request(port, "GET", API, headers={"Version": "4"}, timeout=5).status == 401
            except OSError:
                time.sleep(0.1)
        env.check(ok, "with NOTIFY_SOCKET naming no socket the daemon does not serve (exit %r)" % proc.poll())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
