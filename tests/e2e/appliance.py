"""appliance.py: the tiny Linux guest used as a backup appliance in the e2e tests.

Python 3 standard library only.

  kernel, initrd = ensure_appliance(outdir)   # builds with scripts/build-appliance.sh, cached
  log = ConsoleLog(path)                      # the guest's serial console, written by QEMU
  log.wait_for(READY_RE, 120)
  m = log.wait_for(disk_re(serial="ABC123"), 120); m["sha256"], m["dev"], m["bytes"]

The guest (see scripts/build-appliance.sh) prints on ttyS0:
  APPLIANCE READY
  SNAPBACK-DISK serial=<serial> dev=<name> sha256=<hex> bytes=<size>
  SNAPBACK-WROTE dev=<name>          (only with snapback.write=1 on the kernel cmdline)
  SNAPBACK-ERROR dev=<name> what=<hash|write|modprobe>
  SNAPBACK-REMOVED dev=<name>
"""
import fcntl
import os
import re
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_SCRIPT = os.path.join(REPO, "scripts", "build-appliance.sh")

# the kernel cmdline the appliance needs; add "snapback.write=1" to make it write 1 MiB of
# random data into every disk it sees, after hashing it
CMDLINE = "console=ttyS0 panic=-1"

READY_RE = re.compile(r"^APPLIANCE READY\r?$", re.M)
DISK_RE = re.compile(r"^SNAPBACK-DISK serial=(?P<serial>\S*) dev=(?P<dev>\S+) "
                     r"sha256=(?P<sha256>[0-9a-f]{64}) bytes=(?P<bytes>\d+)\r?$", re.M)
WROTE_RE = re.compile(r"^SNAPBACK-WROTE dev=(?P<dev>\S+)\r?$", re.M)
REMOVED_RE = re.compile(r"^SNAPBACK-REMOVED dev=(?P<dev>\S+)\r?$", re.M)
ERROR_RE = re.compile(r"^SNAPBACK-ERROR dev=(?P<dev>\S+) what=(?P<what>\S+)\r?$", re.M)


def disk_re(serial=None, dev=None):
    """regex for the SNAPBACK-DISK line of one disk (by serial and/or guest device name)"""
    s = re.escape(serial) if serial is not None else r"\S*"
    d = re.escape(dev) if dev is not None else r"\S+"
    return re.compile(r"^SNAPBACK-DISK serial=(?P<serial>%s) dev=(?P<dev>%s) "
                      r"sha256=(?P<sha256>[0-9a-f]{64}) bytes=(?P<bytes>\d+)\r?$" % (s, d), re.M)


def wrote_re(dev):
    return re.compile(r"^SNAPBACK-WROTE dev=(?P<dev>%s)\r?$" % re.escape(dev), re.M)


def removed_re(dev):
    return re.compile(r"^SNAPBACK-REMOVED dev=(?P<dev>%s)\r?$" % re.escape(dev), re.M)


def ensure_appliance(outdir):
    """build the appliance into outdir unless it is up to date; return (kernel, initrd).

    The kernel is an uncompressed vmlinux that QEMU boots through PVH (outdir/vmlinuz is the
    same kernel as a bzImage). Safe to call from several processes at once."""
    os.makedirs(outdir, exist_ok=True)
    outdir = os.path.abspath(outdir)
    kernel = os.path.join(outdir, "vmlinux")
    initrd = os.path.join(outdir, "initrd.gz")
    with open(os.path.join(outdir, ".build.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = subprocess.run([BUILD_SCRIPT, outdir], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError("build-appliance.sh failed (%d):\n%s" % (r.returncode, r.stdout))
    return kernel, initrd


def os_xml(kernel, initrd, write=False, cmdline_extra=""):
    """the <os> element of an appliance domain (q35)"""
    cmdline = CMDLINE + (" snapback.write=1" if write else "") + \
        (" " + cmdline_extra if cmdline_extra else "")
    return ("<os><type arch='x86_64' machine='q35'>hvm</type>"
            "<kernel>%s</kernel><initrd>%s</initrd><cmdline>%s</cmdline></os>"
            % (kernel, initrd, cmdline))


def serial_xml(log_path):
    """the <serial> device that writes the guest console to log_path (appending, so that a
    restart of the domain does not truncate what the test already read)"""
    return ("<serial type='file'><source path='%s' append='on'/><target port='0'/></serial>"
            % log_path)


class ConsoleLog:
    """reads a serial console log file incrementally.

    wait_for() searches only text after the end of the previous match (or after mark()),
    so successive waits see successive events. The file may not exist yet."""

    def __init__(self, path):
        self.path = path
        self.buf = ""      # everything read so far (decoded)
        self.pos = 0       # search position in buf
        self._off = 0      # bytes of the file consumed
        self._partial = b""

    def _read(self):
        try:
            with open(self.path, "rb") as f:
                if os.fstat(f.fileno()).st_size < self._off:
                    # truncated (QEMU reopens a file chardev without append='on' when the
                    # domain restarts): read it again from the start; buf only grows
                    self._off, self._partial = 0, b""
                f.seek(self._off)
                data = f.read()
        except FileNotFoundError:
            return
        if not data:
            return
        self._off += len(data)
        data = self._partial + data
        # keep an incomplete UTF-8 tail for next time; never split a line we might match
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        self.buf += data[:cut].decode("utf-8", "replace").replace("\r\n", "\n")

    def mark(self):
        """ignore everything written so far"""
        self._read()
        self.pos = len(self.buf)

    def text(self):
        """the whole log read so far (complete lines)"""
        self._read()
        return self.buf

    def wait_for(self, regex, timeout=60.0, alive=None):
        """wait until a complete line matching regex appears; return the re.Match.

        alive: optional callable; when it returns False the wait stops early (e.g. the
        domain died). Raises TimeoutError with the log's last lines."""
        if isinstance(regex, str):
            regex = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        while True:
            self._read()
            m = regex.search(self.buf, self.pos)
            if m:
                self.pos = m.end()
                return m
            if time.monotonic() >= deadline or (alive is not None and not alive()):
                tail = "\n".join(self.buf.splitlines()[-15:])
                raise TimeoutError("no line matching %r in %s after %.0f s; last lines:\n%s"
                                   % (regex.pattern, self.path, timeout, tail))
            time.sleep(0.05)


# isolinux, talking on the serial port, prints its banner and then loads the ISO's kernel
ISO_RE = re.compile(r"ISOLINUX [0-9.]+ .*\n(?:.*\n)*?Loading /vmlinuz\.\.\. ?ok", re.M)


def build_iso(appliance_dir, iso_path, cmdline=CMDLINE):
    """a bootable El Torito ISO of the appliance (its bzImage and initrd behind isolinux,
    both from Debian packages: xorriso, isolinux, syslinux-common), at iso_path.

    isolinux talks on the serial port (ISO_RE matches its banner and its loading of the
    kernel), so the console log shows that the guest booted from this CD. Returns the ISO's
    size."""
    import shutil
    import tempfile
    tree = tempfile.mkdtemp(prefix="snapback-iso-")
    try:
        os.mkdir(os.path.join(tree, "isolinux"))
        for src in ("/usr/lib/ISOLINUX/isolinux.bin", "/usr/lib/syslinux/modules/bios/ldlinux.c32"):
            shutil.copy(src, os.path.join(tree, "isolinux"))
        shutil.copy(os.path.join(appliance_dir, "vmlinuz"), tree)
        shutil.copy(os.path.join(appliance_dir, "initrd.gz"), tree)
        with open(os.path.join(tree, "isolinux", "isolinux.cfg"), "w") as f:
            f.write("SERIAL 0 115200\nDEFAULT appliance\nPROMPT 0\nTIMEOUT 0\n"
                    "LABEL appliance\n  KERNEL /vmlinuz\n  APPEND initrd=/initrd.gz %s\n" % cmdline)
        r = subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", iso_path, "-V", "SNAPBACK",
                            "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot",
                            "-boot-load-size", "4", "-boot-info-table", tree],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise RuntimeError("xorriso failed (%d):\n%s" % (r.returncode, r.stdout))
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    return os.path.getsize(iso_path)
