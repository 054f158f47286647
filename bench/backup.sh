#!/usr/bin/env bash
# bench/backup.sh: how fast is `snapback backup`, next to the copy floor and other tools.
#
# Builds a 4 GiB qcow2 disk holding 2 GiB of incompressible data (1 GiB in 4 MiB runs,
# 1 GiB in 64 KiB pieces at random offsets), attaches it to a VM of a private snapbackd,
# and times, with the image in the page cache each time:
#   snapback backup (full)   through the API, a snapshot and an NBD image transfer
#   qemu-img convert -O raw  the copy floor: read the image, write raw
#   nbdcopy from qemu-nbd    the same over NBD
#   restic backup            of the raw image (restic's own chunking, compression auto)
#   borg create              of the raw image, --compression zstd,3
#   snapback backup again    after 1% of the data changed (qemu-io writes)
# then prints each time, the ratios and snapback's peak memory (/usr/bin/time -v).
# Targets: full backup within 1.5x of the copy floor, >= 5x faster than restic and borg,
# peak memory < 256 MiB.
#
#   bench/backup.sh [BUILD_DIR]      (default: build; needs root, libvirt running)
#   KEEP=1 keeps the work directory; WORK=DIR picks where it goes (default /var/tmp).
#   BENCH_SKIP_OTHERS=1 skips restic and borg (snapback, the floor and nbdcopy only).
#   BENCH_NO_DROP=1 does not drop the page cache before each timed step (see warm below).
# Never runs in CI.
set -euo pipefail

if [ -n "${CI:-}" ]; then
  echo "bench/backup.sh: CI is set; the benchmark never runs in CI" >&2
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "bench/backup.sh: must run as root (the daemon runs VMs through libvirt)" >&2; exit 1; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
SNAPBACKD=$BUILD/src/daemon/snapbackd
SNAPBACK=$BUILD/src/cli/snapback
for b in "$SNAPBACKD" "$SNAPBACK"; do
  [ -x "$b" ] || { echo "bench/backup.sh: $b is missing: build first (ninja -C $BUILD)" >&2; exit 1; }
done

SKIP_OTHERS=${BENCH_SKIP_OTHERS:-}
need=()
if [ -z "$SKIP_OTHERS" ]; then
  command -v restic >/dev/null || need+=(restic)
  command -v borg >/dev/null || need+=(borgbackup)
fi
command -v nbdcopy >/dev/null || need+=(libnbd-bin)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

W=$(mktemp -d "${WORK:-/var/tmp}/snapback-bench.XXXXXX")
DAEMON_PID=
cleanup() {
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$W"; else echo "kept $W"; fi
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
API=http://127.0.0.1:$PORT/ovirt-engine/api
PW=bench-pw
SNAPBACK_ADMIN_PASSWORD=$PW "$SNAPBACKD" --http --listen 127.0.0.1:$PORT --state-dir "$W/state" \
  --domain-type qemu >"$W/snapbackd.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do curl -sf -u admin@internal:$PW "$API" >/dev/null && break; sleep 0.1; done
api() { curl -sf -u admin@internal:$PW -H Content-Type:application/xml -H Version:4 "$@"; }
idof() { python3 -c 'import sys,xml.etree.ElementTree as E; print(E.fromstring(sys.stdin.read()).get("id"))'; }

VM=$(api -X POST "$API/vms" -d '<vm><name>bench-vm</name><cluster><name>Default</name></cluster><template><name>Blank</name></template><memory>268435456</memory><os><type>other</type></os></vm>' | idof)
DISK=$(api -X POST "$API/disks" -d '<disk><alias>bench-disk</alias><provisioned_size>4294967296</provisioned_size><format>cow</format><sparse>true</sparse><storage_domains><storage_domain><name>data</name></storage_domain></storage_domains></disk>' | idof)
for _ in $(seq 100); do api "$API/disks/$DISK" | grep -q '<status>ok</status>' && break; sleep 0.1; done
api -X POST "$API/vms/$VM/diskattachments" -d "<disk_attachment><disk id=\"$DISK\"/><interface>virtio_scsi</interface><bootable>true</bootable><active>true</active></disk_attachment>" >/dev/null
vol() { ls "$W"/state/storage/*/images/"$DISK"/* | grep -v -e '\.meta$' -e '\.lease$'; }

echo "building the disk: 4 GiB virtual, 1 GiB in 4 MiB runs + 1 GiB in 64 KiB pieces, incompressible"
python3 - "$W/data.raw" <<'EOF'
import os, random, sys
GiB, MiB, KiB = 1 << 30, 1 << 20, 1 << 10
random.seed(7)
with open(sys.argv[1], "wb") as f:
    f.truncate(4 * GiB)
    for slot in random.sample(range(512), 256):            # first 2 GiB: 256 runs of 4 MiB
        f.seek(slot * 4 * MiB); f.write(os.urandom(4 * MiB))
    for slot in random.sample(range(32768), 16384):        # last 2 GiB: 16384 pieces of 64 KiB
        f.seek(2 * GiB + slot * 64 * KiB); f.write(os.urandom(64 * KiB))
EOF
qemu-img convert -f raw -O qcow2 "$W/data.raw" "$(vol)"
rm -f "$W/data.raw"
qemu-img info "$(vol)" | grep -E 'virtual size|disk size'

# Every timed step starts from the same memory state: the page cache dropped (what the step before
# left in it, dirty or clean, would otherwise count against the next one: a copy into the page
# cache is much slower into pages the guest handed back to the host), a pause for free page
# reporting to settle, then the image read into the cache. BENCH_NO_DROP=1 skips the drop.
warm() {
  sync
  if [ -z "${BENCH_NO_DROP:-}" ]; then echo 3 >/proc/sys/vm/drop_caches; sleep 3; fi
  cat "$(vol)" >/dev/null; sync
}
secs() { python3 -c "print('%.2f' % ($2 - $1))"; }
now() { date +%s.%N; }
declare -A T

export SNAPBACK_URL=$API SNAPBACK_USER=admin@internal SNAPBACK_PASSWORD=$PW

warm
t0=$(now)
/usr/bin/time -v -o "$W/time1" "$SNAPBACK" backup bench-vm --repo "$W/repo" >"$W/backup1.out"
t1=$(now); T[snapback]=$(secs "$t0" "$t1")
RSS1=$(awk -F: '/Maximum resident/ {print $2+0}' "$W/time1")
cat "$W/backup1.out"

warm
t0=$(now); qemu-img convert -O raw "$(vol)" "$W/floor.raw"; t1=$(now); T[floor]=$(secs "$t0" "$t1")

warm
t0=$(now); nbdcopy -- [ qemu-nbd -r -f qcow2 "$(vol)" ] "$W/nbdcopy.raw"; t1=$(now); T[nbdcopy]=$(secs "$t0" "$t1")
rm -f "$W/nbdcopy.raw"

if [ -z "$SKIP_OTHERS" ]; then
  cat "$W/floor.raw" >/dev/null
  export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$W/restic-cache
  restic init -q --repo "$W/restic" >/dev/null
  t0=$(now); restic backup -q --repo "$W/restic" "$W/floor.raw" >/dev/null; t1=$(now); T[restic]=$(secs "$t0" "$t1")

  cat "$W/floor.raw" >/dev/null
  export BORG_BASE_DIR=$W/borg-base BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
  borg init -e none "$W/borg" >/dev/null
  t0=$(now); borg create --compression zstd,3 "$W/borg::full" "$W/floor.raw"; t1=$(now); T[borg]=$(secs "$t0" "$t1")
fi
rm -f "$W/floor.raw"

echo "changing 1% of the data (328 writes of 64 KiB at random offsets)"
python3 - >"$W/change.cmds" <<'EOF'
import random
random.seed(11)
for i in random.sample(range(65536), 328):
    print("write -P 0x%02x %d 65536" % (1 + i % 254, i * 65536))
EOF
args=(); while read -r c; do args+=(-c "$c"); done <"$W/change.cmds"
qemu-io -f qcow2 "${args[@]}" "$(vol)" >/dev/null

warm
t0=$(now)
/usr/bin/time -v -o "$W/time2" "$SNAPBACK" backup bench-vm --repo "$W/repo" >"$W/backup2.out"
t1=$(now); T[incr]=$(secs "$t0" "$t1")
RSS2=$(awk -F: '/Maximum resident/ {print $2+0}' "$W/time2")
cat "$W/backup2.out"

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo
printf '%-34s %8s %s\n' "what" "seconds" "ratio"
printf '%-34s %8s %sx the copy floor\n' "snapback backup (full)" "${T[snapback]}" "$(ratio "${T[snapback]}" "${T[floor]}")"
printf '%-34s %8s\n' "qemu-img convert -O raw (floor)" "${T[floor]}"
printf '%-34s %8s %sx the copy floor\n' "nbdcopy from qemu-nbd" "${T[nbdcopy]}" "$(ratio "${T[nbdcopy]}" "${T[floor]}")"
if [ -z "$SKIP_OTHERS" ]; then
  printf '%-34s %8s snapback is %sx faster\n' "restic backup" "${T[restic]}" "$(ratio "${T[restic]}" "${T[snapback]}")"
  printf '%-34s %8s snapback is %sx faster\n' "borg create --compression zstd,3" "${T[borg]}" "$(ratio "${T[borg]}" "${T[snapback]}")"
fi
printf '%-34s %8s %sx the full backup\n' "snapback backup after 1% changed" "${T[incr]}" "$(ratio "${T[incr]}" "${T[snapback]}")"
echo "snapback peak memory: full $((RSS1 / 1024)) MiB, second $((RSS2 / 1024)) MiB (target < 256 MiB)"
if [ -z "$SKIP_OTHERS" ]; then
  echo "repository: $(du -sh "$W/repo" | cut -f1), restic: $(du -sh "$W/restic" | cut -f1), borg: $(du -sh "$W/borg" | cut -f1)"
else
  echo "repository: $(du -sh "$W/repo" | cut -f1)"
fi
