#!/usr/bin/env bash
# Prepare a Debian 12 machine to build, run and test snapback. Idempotent.
#  1. install the Debian packages that are missing (nothing is fetched when all are present);
#  2. make libvirt run QEMU as root (see README.md, "QEMU runs as root");
#  3. make sure virtlogd and libvirtd run, and wait until qemu:///system answers.
# Must run as root. Prints one line per step.
set -euo pipefail

PACKAGES=(
  build-essential meson ninja-build pkg-config
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt-dev
  qemu-system-x86 qemu-utils
  libmicrohttpd-dev libxml2-dev libxml2-utils libjansson-dev libssl-dev openssl
  libzstd-dev libsqlite3-dev libpq-dev libnbd-dev libnbd-bin libargon2-dev
  postgresql  # the store tests and e2e-pg run a private server (tests/pg/with-pg.sh); not started
  python3 curl wrk nginx-light valgrind
  debhelper lintian dpkg-dev fakeroot systemd man-db
  prometheus  # promtool checks /metrics in tests/e2e/case_ops.py; its server is not used
  chromium nodejs
  clang libclang-rt-14-dev
  vncsnapshot tigervnc-tools
  iproute2 util-linux  # scripts/test-host.sh (ip, unshare, nsenter): the second host of tests/e2e/case_hosts.py
  xorriso isolinux syslinux-common  # the appliance ISO of tests/e2e/case_cdrom.py
  dnsmasq-base  # libvirt's DHCP on the test network of tests/e2e/case_guestnet.py
)
QEMU_CONF=/etc/libvirt/qemu.conf
LIBVIRT_URI=qemu:///system
WAIT_SECONDS=30

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and configures libvirt)"

# --- 1. packages -------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  say "packages: all ${#PACKAGES[@]} present"
else
  say "packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  say "packages: installed ${#missing[@]}"
fi

# --- 1b. the web console's browser tests: npm (Debian's nodejs lacks it; NodeSource's has
# it), then playwright-core and axe-core as pinned in tests/web/package-lock.json
if ! command -v npm >/dev/null; then
  say "packages: installing npm"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
web_tests="$(dirname "$(readlink -f "$0")")/../tests/web"
if [ -d "$web_tests/node_modules/playwright-core" ] && [ -d "$web_tests/node_modules/axe-core" ]; then
  say "web tests: node modules present"
else
  (cd "$web_tests" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  say "web tests: installed node modules from tests/web/package-lock.json"
fi

# --- 2. qemu.conf: QEMU as root -----------------------------------------------------------
conf_changed=0
[ -f "$QEMU_CONF" ] || die "$QEMU_CONF not found (is libvirt-daemon-driver-qemu installed?)"
if grep -Eq '^[[:space:]]*user[[:space:]]*=[[:space:]]*"root"' "$QEMU_CONF" &&
   grep -Eq '^[[:space:]]*group[[:space:]]*=[[:space:]]*"root"' "$QEMU_CONF"; then
  say "qemu.conf: user/group already root"
else
  backup="$QEMU_CONF.snapback-orig"
  [ -e "$backup" ] || cp -p "$QEMU_CONF" "$backup"   # keep the first original, never overwrite it
  tmp=$(mktemp "$QEMU_CONF.XXXXXX")
  # drop any active user=/group= lines, then append ours
  grep -Ev '^[[:space:]]*(user|group)[[:space:]]*=' "$QEMU_CONF" > "$tmp" || true
  printf '\n# Added by snapback scripts/setup.sh: run QEMU as root (see snapback README.md)\nuser = "root"\ngroup = "root"\n' >> "$tmp"
  chmod --reference="$QEMU_CONF" "$tmp"
  mv "$tmp" "$QEMU_CONF"
  conf_changed=1
  say "qemu.conf: set user/group to root (backup: $backup)"
fi

# --- 3. virtlogd + libvirtd ---------------------------------------------------------------
if [ -d /run/systemd/system ]; then
  # systemd is PID 1
  for unit in virtlogd libvirtd; do
    if systemctl is-active --quiet "$unit"; then
      if [ "$unit" = libvirtd ] && [ "$conf_changed" -eq 1 ]; then
        systemctl restart libvirtd; say "libvirtd: restarted (qemu.conf changed)"
      else
        say "$unit: running"
      fi
    else
      systemctl start "$unit"; say "$unit: started (systemctl)"
    fi
  done
else
  # no init system: start the daemons ourselves
  if pgrep -x virtlogd >/dev/null; then
    say "virtlogd: running"
  else
    virtlogd -d; say "virtlogd: started (virtlogd -d)"
  fi
  if pid=$(pgrep -xo libvirtd); then
    if [ "$conf_changed" -eq 1 ]; then
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && die "libvirtd (pid $pid) did not stop within 10 s"
      libvirtd -d; say "libvirtd: restarted (qemu.conf changed)"
    else
      say "libvirtd: running"
    fi
  else
    libvirtd -d; say "libvirtd: started (libvirtd -d)"
  fi
fi

for _ in $(seq 1 "$WAIT_SECONDS"); do
  if ver=$(virsh -c "$LIBVIRT_URI" version 2>/dev/null); then
    say "libvirt: $LIBVIRT_URI answers ($(printf '%s\n' "$ver" | sed -n 's/^Running hypervisor: //p'))"
    exit 0
  fi
  sleep 1
done
die "$LIBVIRT_URI did not answer within ${WAIT_SECONDS}s (try: virsh -c $LIBVIRT_URI version)"
