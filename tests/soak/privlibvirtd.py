"""privlibvirtd.py: a private libvirtd for the soak, so that it can be restarted safely.

The machine's libvirtd is shared by everything that runs on it (other tests, other
people), so the soak's "libvirtd restart" fault must not touch it. This starts a second
libvirtd (and its virtlogd) in a mount namespace of its own:

  - a holder process (`unshare --mount`, private propagation) keeps the namespace alive;
  - tmpfs over /run, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt hide the
    machine's domains, pid files and sockets, so the private daemon neither sees nor
    reconnects to guests it did not start;
  - a copy of /etc/libvirt is bound over /etc/libvirt, without defined domains, networks
    or storage pools (nothing to autostart), VNC ports from 20000-39999 (the machine's
    libvirtd allocates from 5900 without knowing this one's), and with `unix_sock_dir` outside the tmpfs,
    in this helper's scratch directory, so the engine and virsh outside reach it at
    `qemu+unix:///system?socket=DIR/sock/libvirt-sock`.

Everything the guests use (the engine's state directory under /tmp) stays visible at the
same path. `restart()` stops libvirtd with SIGTERM (guests keep running, as after a
`systemctl restart libvirtd`) and starts it again in the same namespace. `close()` stops
every process left in the namespace (they were all started here) and removes the scratch
directory. Needs root, `unshare` and `nsenter` (util-linux)."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

HIDDEN = ("/run", "/var/lib/libvirt", "/var/cache/libvirt", "/var/log/libvirt")
PORT_BASE = 20000  # VNC and VNC websocket ports: 1,000 of 20000-39999, picked per instance


class Failure(Exception):
    pass


def _pids_in_namespace(ns):
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.readlink("/proc/%s/ns/mnt" % pid) == ns:
                    out.append(int(pid))
            except OSError:
                pass
    return out


class PrivateLibvirtd:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="snapback-soak-libvirt-")
        self.sock_dir = os.path.join(self.dir, "sock")
        self.uri = "qemu+unix:///system?socket=%s/libvirt-sock" % self.sock_dir
        self.holder = None
        self.ns = None
        self.restarts = 0
        # two soaks at once (by hand and in make check) should not race for ports either
        base = PORT_BASE + (os.getpid() % 20) * 1000
        self.ports = (base, base + 499, base + 500, base + 999)

    @property
    def root(self):
        """the namespace's view of the file system, e.g. root + /run/libvirt/qemu/NAME.pid"""
        return "/proc/%d/root" % self.holder.pid

    def _etc(self):
        etc = os.path.join(self.dir, "etc")
        shutil.copytree("/etc/libvirt", etc, symlinks=True)
        for sub in ("qemu", "storage", "secrets"):
            shutil.rmtree(os.path.join(etc, sub), ignore_errors=True)
            os.makedirs(os.path.join(etc, sub))
        os.makedirs(self.sock_dir)
        with open(os.path.join(etc, "libvirtd.conf"), "a") as f:
            f.write('\n# snapback soak: a private libvirtd\nunix_sock_dir = "%s"\n' % self.sock_dir)
        # the machine's libvirtd hands out VNC ports from 5900 too, unaware of this one's: two
        # guests would race for one port ("Failed to find an available port")
        with open(os.path.join(etc, "qemu.conf"), "a") as f:
            f.write('\n# snapback soak: ports apart from the machine libvirtd\'s\n'
                    'remote_display_port_min = %d\nremote_display_port_max = %d\n'
                    'websocket_port_min = %d\nwebsocket_port_max = %d\n' % self.ports)
        return etc

    def _nsenter(self, *argv):
        return subprocess.run(["nsenter", "-t", str(self.holder.pid), "-m", "--"] + list(argv),
                              capture_output=True, text=True, timeout=60)

    def _pid(self, name):
        try:
            with open(os.path.join(self.root, "run", name)) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def start(self, timeout=120):
        etc = self._etc()
        mounts = " && ".join(["mount -t tmpfs tmpfs %s" % d for d in HIDDEN] +
                             ["mount --bind %s /etc/libvirt" % etc, "touch %s/ready" % self.dir])
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                                        mounts + " && exec sleep 86400"],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(self.dir, "ready")):
            if self.holder.poll() is not None or time.monotonic() > deadline:
                raise Failure("cannot make the private libvirtd's namespace: %s"
                              % (self.holder.stderr.read().decode(errors="replace") if self.holder.poll() is not None
                                 else "timed out"))
            time.sleep(0.05)
        self.ns = os.readlink("/proc/%d/ns/mnt" % self.holder.pid)
        p = self._nsenter("virtlogd", "-d")
        if p.returncode != 0:
            raise Failure("cannot start the private virtlogd: %s" % p.stderr.strip())
        self._start_libvirtd(timeout)

    def _start_libvirtd(self, timeout):
        p = self._nsenter("libvirtd", "-d")
        if p.returncode != 0:
            raise Failure("cannot start the private libvirtd: %s" % p.stderr.strip())
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            v = subprocess.run(["virsh", "-c", self.uri, "version"], capture_output=True, text=True, timeout=60)
            if v.returncode == 0:
                return
            last = v.stderr.strip()
            time.sleep(0.2)
        raise Failure("the private libvirtd did not answer within %d s: %s" % (timeout, last))

    def restart(self, timeout=120, between=None):
        """SIGTERM to libvirtd (its guests go on running), between() if given while it is
        down, then a new libvirtd in the namespace"""
        pid = self._pid("libvirtd.pid")
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if os.path.exists("/proc/%d" % pid):
                os.kill(pid, signal.SIGKILL)
                time.sleep(0.2)
        self.restarts += 1
        if between:
            between()
        self._start_libvirtd(timeout)

    def close(self):
        """stops libvirtd, virtlogd and anything else left in the namespace; removes the scratch dir"""
        if self.holder:
            for name in ("libvirtd.pid", "virtlogd.pid"):
                pid = self._pid(name)
                if pid and self.ns and os.path.exists("/proc/%d" % pid):
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except OSError:
                        pass
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and len(_pids_in_namespace(self.ns)) > 1:
                time.sleep(0.1)
            # left over: guests the soak did not get to destroy; all started in this namespace
            for pid in _pids_in_namespace(self.ns) if self.ns else []:
                if pid != self.holder.pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            self.holder.kill()
            self.holder.wait()
            self.holder = None
        shutil.rmtree(self.dir, ignore_errors=True)
