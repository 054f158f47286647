#!/usr/bin/env bash
# units.sh UNIT_DIR SNAPBACKD SNAPBACK: systemd-analyze verify on the shipped units.
# No systemd runs on the test machines, so the units are checked inside a scratch root
# that holds the system's own units plus ours and the two binaries at their installed
# paths. verify exits 0 on many problems it only prints, so any output is a failure.
set -euo pipefail
units=$1 snapbackd=$2 snapback=$3
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing (package systemd; scripts/setup.sh installs it)"; exit 1; }
root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/sbin" "$root/usr/bin" "$root/lib/systemd"
cp -a /lib/systemd/system "$root/lib/systemd/"
cp "$units"/* "$root/lib/systemd/system/"
cp "$snapbackd" "$root/usr/sbin/snapbackd"
cp "$snapback" "$root/usr/bin/snapback"
mkdir -p "$root/bin" && cp /bin/kill "$root/bin/kill"   # ExecReload=/bin/kill -HUP $MAINPID
out=$(cd "$root/lib/systemd/system" &&
      systemd-analyze verify --man=no --root="$root" snapbackd.service \
        snapback-backup@web.service snapback-backup@web.timer 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then echo "systemd-analyze verify complained:"; echo "$out"; exit 1; fi
# what verify does not judge: the contract with the daemon and the CLI
grep -qx 'Type=notify' "$units/snapbackd.service" || { echo "snapbackd.service: not Type=notify"; exit 1; }
for o in NoNewPrivileges ProtectHome PrivateTmp ProtectKernelTunables; do
  grep -q "^$o=yes" "$units/snapbackd.service" || { echo "snapbackd.service: $o=yes missing"; exit 1; }
done
grep -qx 'ReadWritePaths=/var/lib/snapback' "$units/snapbackd.service" || { echo "snapbackd.service: ReadWritePaths"; exit 1; }
echo "ok: systemd-analyze verify on snapbackd.service, snapback-backup@web.service, snapback-backup@web.timer"
