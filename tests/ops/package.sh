#!/usr/bin/env bash
# package.sh SRCDIR: the Debian package, end to end, as one test.
#  1. dpkg-buildpackage -us -uc -b on a copy of the tracked sources (never in SRCDIR:
#     it writes next to the source tree);
#  2. lintian, failing on errors and warnings (its default level);
#  3. the contents: binaries, man pages, units, conffiles, docs, dependencies;
#  4. dpkg --root into a throwaway root with chrootless maintainer scripts (DPKG_ROOT):
#     install, state directory 0700, unit enabled, a changed conffile survives a
#     reinstall and a remove, purge removes the conffiles but never the state directory.
# The sanitizer pass of `make check` sets SNAPBACK_SKIP_PACKAGE=1: the package is built
# with Debian's flags, not the sanitizers', so one build per `make check` is enough.
set -euo pipefail
src=$(cd "$1" && pwd)

if [ -n "${SNAPBACK_SKIP_PACKAGE:-}" ]; then
  echo "skipped: SNAPBACK_SKIP_PACKAGE is set (the plain pass builds the package)"; exit 77
fi
for t in dpkg-buildpackage dh lintian fakeroot; do
  command -v "$t" >/dev/null || { echo "FAIL $t missing: scripts/setup.sh installs it"; exit 1; }
done

work=$(mktemp -d /tmp/snapback-pkg.XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
t0=$(date +%s)

# 1. build from the files git knows (tracked, and new files not ignored)
mkdir "$work/src"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z -co --exclude-standard) |
    (cd "$src" && tar --null -cf - -T -) | tar -xf - -C "$work/src"
else
  (cd "$src" && tar -cf - --exclude='./build' --exclude='./build-*' --exclude='./var' --exclude='./.git' .) |
    tar -xf - -C "$work/src"
fi
if ! (cd "$work/src" && DEB_BUILD_OPTIONS="nocheck noddebs parallel=$(nproc)" \
        dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1); then
  tail -40 "$work/build.log"; echo "FAIL dpkg-buildpackage -us -uc -b (log above)"; exit 1
fi
deb=$(ls "$work"/snapback_*_*.deb)
echo "built $(basename "$deb") in $(( $(date +%s) - t0 )) s"

# 2. lintian at its default level
if ! out=$(lintian --fail-on error,warning "$work"/snapback_*.changes 2>&1); then
  echo "$out"; fail "lintian"
else
  echo "lintian: clean$(echo "$out" | grep -c '^[IP]:' | sed 's/^0$//;s/..*/ (& info hints)/')"
fi

# 3. contents
contents=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
for f in /usr/sbin/snapbackd /usr/bin/snapback /usr/share/man/man8/snapbackd.8.gz \
         /usr/share/man/man1/snapback.1.gz /lib/systemd/system/snapbackd.service \
         /lib/systemd/system/snapback-backup@.service /lib/systemd/system/snapback-backup@.timer \
         /etc/snapback/snapbackd.conf /etc/snapback/snapback.conf \
         /usr/share/bash-completion/completions/snapback /usr/share/doc/snapback/copyright; do
  grep -qxF "$f" <<<"$contents" || fail "the package lacks $f"
done
grep -q '^/usr/share/doc/snapback/getting-started.md' <<<"$contents" || fail "the package lacks getting-started.md"
grep -q '^/usr/share/snapback/web/console.html' <<<"$contents" || fail "the package lacks the web console (/usr/share/snapback/web)"
conffiles=$(dpkg-deb -f "$deb" Conffiles 2>/dev/null || true)
[ -z "$conffiles" ] && conffiles=$(cd "$work" && dpkg-deb -e "$deb" ctl && cat ctl/conffiles)
for c in /etc/snapback/snapbackd.conf /etc/snapback/snapback.conf; do
  grep -qxF "$c" <<<"$conffiles" || fail "$c is not a conffile"
done
depends=$(dpkg-deb -f "$deb" Depends)
for d in libvirt-daemon-system libvirt-daemon-driver-qemu qemu-utils qemu-system-x86 libvirt0 libnbd0; do
  grep -q "\\b$d\\b" <<<"$depends" || fail "Depends lacks $d: $depends"
done

# 4. a throwaway root: dpkg's own database, maintainer scripts run chrootless with DPKG_ROOT
root="$work/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/etc" "$root/run"
: > "$root/var/lib/dpkg/status"
dpkg_root() { dpkg --root="$root" --force-script-chrootless --force-depends --force-confold \
                   --log=/dev/null "$@" >>"$work/dpkg.log" 2>&1; }
if ! dpkg_root -i "$deb"; then cat "$work/dpkg.log"; fail "dpkg --root -i"; fi
[ -x "$root/usr/sbin/snapbackd" ] || fail "/usr/sbin/snapbackd not installed"
st=$(stat -c '%a %U:%G' "$root/var/lib/snapback" 2>/dev/null || echo missing)
[ "$st" = "700 root:root" ] || fail "/var/lib/snapback is '$st', expected '700 root:root'"
[ -L "$root/etc/systemd/system/multi-user.target.wants/snapbackd.service" ] ||
  fail "snapbackd.service is not enabled in the new root"
[ "$("$root/usr/sbin/snapbackd" --version)" = "snapbackd $(dpkg-deb -f "$deb" Version)" ] ||
  fail "installed snapbackd --version does not say the package version"
echo "state-dir = /srv/changed-by-admin" >> "$root/etc/snapback/snapbackd.conf"
chmod 0711 "$root/var/lib/snapback"          # an administrator's choice, kept too
dpkg_root -i "$deb" || fail "reinstall (dpkg --root -i again)"
grep -q changed-by-admin "$root/etc/snapback/snapbackd.conf" || fail "a reinstall overwrote the changed conffile"
[ "$(stat -c %a "$root/var/lib/snapback")" = 711 ] || fail "a reinstall changed the state directory's mode"
dpkg_root -r snapback || fail "dpkg --root -r"
[ -e "$root/usr/sbin/snapbackd" ] && fail "remove left /usr/sbin/snapbackd"
grep -q changed-by-admin "$root/etc/snapback/snapbackd.conf" 2>/dev/null || fail "remove dropped the conffile"
touch "$root/var/lib/snapback/snapback.db"
dpkg_root -P snapback || fail "dpkg --root -P"
[ -e "$root/etc/snapback/snapbackd.conf" ] && fail "purge left the conffile"
[ -e "$root/var/lib/snapback/snapback.db" ] || fail "purge removed the state directory (VM disk images live there)"
[ -e "$root/etc/systemd/system/multi-user.target.wants/snapbackd.service" ] && fail "purge left the unit enabled"

echo "package: $(( $(date +%s) - t0 )) s, $fails problems"
[ "$fails" -eq 0 ]
