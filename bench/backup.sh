#!/usr/bin/env bash
# bench/backup.sh: how fast is `snapback backup`, full and incremental, next to the copy
# floor and other tools.
#
# Builds a 4 GiB qcow2 disk holding 2 GiB of incompressible data (1 GiB in 4 MiB runs,
# 1 GiB in 64 KiB pieces at random offsets), attaches it to a VM of a private snapbackd
# and starts the VM; gives a copy of the same image to a plain libvirt domain for
# virtnbdbackup. Every timed step starts with the page cache dropped (see warm below):
#   snapback backup (full)        through the engine's backup API (or a snapshot) and NBD
#   qemu-img convert -O raw       the copy floor: read the image, write raw
#   qemu-img convert -O qcow2     the restore floor: the same data into a new qcow2
#   nbdcopy from qemu-nbd         the same over NBD
#   restic backup, borg create    of the raw image (restic's own chunking; borg zstd,3)
#   virtnbdbackup full, inc       libvirt pull backups with checkpoints of the running domain
#   snapback backup (incremental) after the same 1% change (328 writes of 64 KiB of random
#                                 data at random offsets) written through each running
#                                 QEMU (HMP qemu-io), so that its dirty bitmaps see it
#   nbdcopy into qemu-nbd         the restore's write path alone: the raw image into a new
#                                 qcow2 through a qemu-nbd with the engine's upload flags
#   snapback restore              of the full and of the latest incremental backup
#   libvirt's pull backup alone   begin (incremental, with a new checkpoint) and end of
#                                 libvirt's backup job on a domain of its own, no data read:
#                                 the part of any incremental backup through libvirt that
#                                 no client can shorten
# then prints each time and ratio, the repository's growth and snapback's peak memory.
# The full backup with its copy floor, and the restores with their restore floor, run
# BENCH_RUNS times (default 3), each pair back to back so that both see the same load; the
# table gives each run's ratio and the median. Each run after the first backs up into a
# fresh repository (a second full backup into the same one would store nothing). The
# incremental backups run BENCH_RUNS rounds too, each after a new 1% change (other
# offsets, new random bytes), virtnbdbackup's and snapback's back to back.
# Targets (issue 9): full <= 1.25x the copy floor; incremental faster than virtnbdbackup's
# and <= 10% of snapback's full; growth <= 1.25x the changed bytes; each restore <= 1.5x
# the restore floor; peak memory < 256 MiB.
#
#   bench/backup.sh [BUILD_DIR]      (default: build; needs root, libvirt running)
#   KEEP=1 keeps the work directory; WORK=DIR picks where it goes (default /var/tmp).
#   BENCH_SKIP_OTHERS=1 skips restic, borg and virtnbdbackup.
#   BENCH_NO_DROP=1 does not drop the page cache before each timed step.
#   BENCH_RUNS=N repeats the full backup and the restores with their floors N times (default 3).
# Never runs in CI.
set -euo pipefail

if [ -n "${CI:-}" ]; then
  echo "bench/backup.sh: CI is set; the benchmark never runs in CI" >&2
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "bench/backup.sh: must run as root (the daemon runs VMs through libvirt)" >&2; exit 1; }
virsh -q -c qemu:///system version >/dev/null 2>&1 ||
  { echo "bench/backup.sh: libvirt does not answer on qemu:///system: run scripts/setup.sh (or virtlogd -d; libvirtd -d)" >&2; exit 1; }

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
  command -v virtnbdbackup >/dev/null || need+=(virtnbdbackup)
fi
command -v nbdcopy >/dev/null || need+=(libnbd-bin)
[ -x /usr/bin/time ] || need+=(time)
/usr/bin/python3 -c 'import libvirt' 2>/dev/null || need+=(python3-libvirt)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null
fi

W=$(mktemp -d "${WORK:-/var/tmp}/snapback-bench.XXXXXX")
DAEMON_PID=
VM=
VNB_DOM=bench-vnb-$(basename "$W" | tr -dc 'A-Za-z0-9')
LVF_DOM=bench-lvf-$(basename "$W" | tr -dc 'A-Za-z0-9')
cleanup() {
  [ -f "$W/lvfloor.py" ] && /usr/bin/python3 "$W/lvfloor.py" stop "$LVF_DOM" "$W" >/dev/null 2>&1 || true
  if virsh -q dominfo "$VNB_DOM" >/dev/null 2>&1; then
    virsh -q destroy "$VNB_DOM" >/dev/null 2>&1 || true
    for c in $(virsh -q checkpoint-list "$VNB_DOM" --name 2>/dev/null); do
      virsh -q checkpoint-delete "$VNB_DOM" "$c" --metadata >/dev/null 2>&1 || true
    done
    virsh -q undefine "$VNB_DOM" >/dev/null 2>&1 || true
  fi
  [ -n "$DAEMON_PID" ] && [ -n "$VM" ] && api -X POST "$API/vms/$VM/stop" -d '<action/>' >/dev/null 2>&1 || true
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
# the disk's active volume (image_id), which a snapshot and its removal may change
vol() {
  local img
  img=$(api "$API/disks/$DISK" | python3 -c 'import sys,xml.etree.ElementTree as E; print(E.fromstring(sys.stdin.read()).findtext("image_id"))')
  ls "$W"/state/storage/*/images/"$DISK/$img"
}

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
cp --sparse=always "$(vol)" "$W/vnb.qcow2"
# incremental backups need disk.backup=incremental (an engine without the backup API refuses it)
api -X PUT "$API/disks/$DISK" -d '<disk><backup>incremental</backup></disk>' >/dev/null 2>&1 ||
  echo "note: the engine does not take disk.backup=incremental: snapback's second backup is full"
api -X POST "$API/vms/$VM/start" -d '<action/>' >/dev/null
for _ in $(seq 300); do api "$API/vms/$VM" | grep -q '<status>up</status>' && break; sleep 0.1; done

# Every timed step starts from the same memory state: the page cache dropped (what the step before
# left in it, dirty or clean, would otherwise count against the next one: a copy into the page
# cache is much slower into pages the guest handed back to the host), a pause for free page
# reporting to settle, then the step's input read into the cache: the image, plus what warm is
# given (a restore's repository, the restore floor's raw image). BENCH_NO_DROP=1 skips the drop.
warm() {
  sync
  if [ -z "${BENCH_NO_DROP:-}" ]; then echo 3 >/proc/sys/vm/drop_caches; sleep 3; fi
  cat "$(vol)" "$W/vnb.qcow2" >/dev/null
  if [ $# -gt 0 ]; then find "$@" -type f -exec cat {} + >/dev/null; fi
  sync
}
secs() { python3 -c "print('%.2f' % ($2 - $1))"; }
now() { date +%s.%N; }
load() { cut -d' ' -f1 /proc/loadavg; }
declare -A T
RUNS=${BENCH_RUNS:-3}
# median of the arguments
median() { python3 -c 'import statistics,sys; print("%.2f" % statistics.median(map(float, sys.argv[1:])))' "$@"; }
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }

export SNAPBACK_URL=$API SNAPBACK_USER=admin@internal SNAPBACK_PASSWORD=$PW

# the full backup and the copy floor, RUNS times back to back; the first run's repository
# is the one the incremental backup and the restores use
FULL_S=() FLOOR_S=() FULL_R=() FULL_LOAD=()
for run in $(seq "$RUNS"); do
  repo=$W/repo; [ "$run" -gt 1 ] && repo=$W/repo-run$run
  l=$(load)
  warm
  t0=$(now)
  /usr/bin/time -v -o "$W/time1-$run" "$SNAPBACK" backup bench-vm --repo "$repo" $([ "$run" -gt 1 ] && echo --full) \
    >"$W/backup1-$run.out"
  t1=$(now); s=$(secs "$t0" "$t1")
  [ "$run" -eq 1 ] && cp "$W/backup1-$run.out" "$W/backup1.out" && cp "$W/time1-$run" "$W/time1"
  [ "$run" -gt 1 ] && rm -rf "$repo"
  warm
  t0=$(now); qemu-img convert -U -O raw "$(vol)" "$W/floor.raw"; t1=$(now); f=$(secs "$t0" "$t1")
  [ "$run" -lt "$RUNS" ] && rm -f "$W/floor.raw"
  FULL_S+=("$s") FLOOR_S+=("$f") FULL_R+=("$(ratio "$s" "$f")") FULL_LOAD+=("$l")
  echo "run $run: snapback full $s s, copy floor $f s: ${FULL_R[-1]}x (load $l)"
done
T[snapback]=$(median "${FULL_S[@]}")
T[floor]=$(median "${FLOOR_S[@]}")
RSS1=$(awk -F: '/Maximum resident/ {print $2+0}' "$W/time1")
cat "$W/backup1.out"

rfloor() {
  warm "$W/floor.raw"
  t0=$(now); qemu-img convert -f raw -O qcow2 "$W/floor.raw" "$W/floor.qcow2"; sync; t1=$(now)
  rm -f "$W/floor.qcow2"
  secs "$t0" "$t1"
}
# the write path a restore goes through, with no snapback code: nbdcopy writes the raw image
# into a new qcow2 (made as the engine makes a disk) through a qemu-nbd with the engine's
# upload flags and environment (src/hyper/volume.c: O_DIRECT, glibc's malloc tunables), 512 KiB
# requests as the CLI's (nbdcopy keeps the socket's default send buffer, the CLI raises it)
rnbd() {
  warm "$W/floor.raw"
  qemu-img create -q -f qcow2 "$W/nbd.qcow2" 4G
  t0=$(now)
  GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=67108864 \
    nbdcopy --request-size=524288 -- "$W/floor.raw" [ qemu-nbd -f qcow2 --shared=8 --discard=unmap \
    --detect-zeroes=unmap --cache=none "$W/nbd.qcow2" ]
  sync; t1=$(now)
  rm -f "$W/nbd.qcow2"
  secs "$t0" "$t1"
}

warm
# the running VM holds the image's lock: qemu-nbd opens it without locking
t0=$(now)
nbdcopy -- [ qemu-nbd -r --image-opts "driver=qcow2,file.driver=file,file.filename=$(vol),file.locking=off" ] \
  "$W/nbdcopy.raw"
t1=$(now); T[nbdcopy]=$(secs "$t0" "$t1")
rm -f "$W/nbdcopy.raw"

if [ -z "$SKIP_OTHERS" ]; then
  warm "$W/floor.raw"
  export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$W/restic-cache
  restic init -q --repo "$W/restic" >/dev/null
  t0=$(now); restic backup -q --repo "$W/restic" "$W/floor.raw" >/dev/null; t1=$(now); T[restic]=$(secs "$t0" "$t1")

  warm "$W/floor.raw"
  export BORG_BASE_DIR=$W/borg-base BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
  borg init -e none "$W/borg" >/dev/null
  t0=$(now); borg create --compression zstd,3 "$W/borg::full" "$W/floor.raw"; t1=$(now); T[borg]=$(secs "$t0" "$t1")
fi

# the 1% change: 328 pieces of 64 KiB of random data (incompressible, so the repository's
# growth is measured honestly) at random offsets, each from a file of its own that the
# guest's QEMU reads (qemu-io write -s); both domains get the same bytes. Each round has a
# change of its own (seed 10 + round).
mkdir -p "$W/change"
chmod 755 "$W" "$W/change"
# make_change ROUND: new files and $W/change.cmds
make_change() {
  python3 - "$W/change" "$1" >"$W/change.cmds" <<'EOF'
import os, random, sys
random.seed(10 + int(sys.argv[2]))
for n, i in enumerate(random.sample(range(65536), 328)):
    path = "%s/%03d" % (sys.argv[1], n)
    with open(path, "wb") as f:
        f.write(os.urandom(65536))
    os.chmod(path, 0o644)
    print("write -s %s %d 65536" % (path, i * 65536))
EOF
}
CHANGED=$((328 * 65536))
# change DOMAIN DEVICE: the 1% change through the running QEMU (its bitmaps see it)
change() {
  local c
  while read -r c; do
    virsh -q qemu-monitor-command "$1" --hmp "qemu-io -d $2 \"$c\"" >/dev/null
  done <"$W/change.cmds"
  virsh -q qemu-monitor-command "$1" --hmp "qemu-io -d $2 \"flush\"" >/dev/null
}

if [ -z "$SKIP_OTHERS" ]; then
  cat >"$W/vnb.xml" <<EOF
<domain type='qemu'>
  <name>$VNB_DOM</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <controller type='scsi' model='virtio-scsi'/>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$W/vnb.qcow2'/>
      <target dev='sda' bus='scsi'/>
      <alias name='ua-vnb'/>
    </disk>
  </devices>
</domain>
EOF
  virsh -q define "$W/vnb.xml" >/dev/null
  virsh -q start "$VNB_DOM" >/dev/null
  warm
  t0=$(now); virtnbdbackup -d "$VNB_DOM" -l full -o "$W/vnb" >"$W/vnb-full.log" 2>&1; t1=$(now)
  T[vnb_full]=$(secs "$t0" "$t1")
fi

# RUNS rounds: the same kind of change to both domains, then each tool's incremental backup
INCR_S=() VNB_S=() INCR_R=() INCR_VR=() GROWTH_R=() VNB_BYTES_R=() INCR_LOAD=()
for run in $(seq "$RUNS"); do
  make_change "$run"
  l=$(load)
  if [ -z "$SKIP_OTHERS" ]; then
    change "$VNB_DOM" ua-vnb
    before=$(du -sb "$W/vnb" | cut -f1)
    warm
    t0=$(now); virtnbdbackup -d "$VNB_DOM" -l inc -o "$W/vnb" >"$W/vnb-inc$run.log" 2>&1; t1=$(now)
    VNB_S+=("$(secs "$t0" "$t1")")
    VNB_BYTES_R+=("$(ratio "$(( $(du -sb "$W/vnb" | cut -f1) - before ))" "$CHANGED")")
  fi
  change bench-vm "ua-$DISK"
  before=$(du -sb "$W/repo" | cut -f1)
  warm
  t0=$(now)
  /usr/bin/time -v -o "$W/time2" "$SNAPBACK" backup bench-vm --repo "$W/repo" >"$W/backup2.out"
  t1=$(now); s=$(secs "$t0" "$t1")
  INCR_S+=("$s") INCR_R+=("$(ratio "$s" "${T[snapback]}")") INCR_LOAD+=("$l")
  GROWTH_R+=("$(ratio "$(( $(du -sb "$W/repo" | cut -f1) - before ))" "$CHANGED")")
  [ -z "$SKIP_OTHERS" ] && INCR_VR+=("$(ratio "$s" "${VNB_S[-1]}")")
  echo "run $run: snapback incremental $s s (${INCR_R[-1]}x its full), repository +${GROWTH_R[-1]}x the changed" \
    "bytes$([ -z "$SKIP_OTHERS" ] && echo "; virtnbdbackup inc ${VNB_S[-1]} s, +${VNB_BYTES_R[-1]}x") (load $l)"
done
T[incr]=$(median "${INCR_S[@]}")
[ -z "$SKIP_OTHERS" ] && T[vnb_inc]=$(median "${VNB_S[@]}")
RSS2=$(awk -F: '/Maximum resident/ {print $2+0}' "$W/time2")
cat "$W/backup2.out"

# libvirt's own part of an incremental pull backup, measured alone: a transient domain on an
# empty 4 GiB qcow2 (cache=none, as the engine's), RUNS rounds after a first full one, each
# after warm: the job's begin (incremental from the last checkpoint, with a new one, a
# scratch file and a unix NBD socket, as the engine asks for) and its end (abort, then until
# libvirt has torn it down)
cat >"$W/lvfloor.py" <<'EOF'
import libvirt, sys, time, uuid
mode, name, work = sys.argv[1], sys.argv[2], sys.argv[3]
c = libvirt.open("qemu:///system")
if mode == "stop":
    d = c.lookupByName(name)
    for cp in d.listAllCheckpoints():
        cp.delete(libvirt.VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY)
    d.destroy()
    sys.exit(0)
if mode == "start":
    c.createXML("""<domain type='qemu'><name>%s</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='q35'>hvm</type></os><devices><controller type='scsi' model='virtio-scsi'/>
<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/>
<source file='%s/lvfloor.qcow2'/><target dev='sda' bus='scsi'/></disk></devices></domain>""" % (name, work), 0)
d = c.lookupByName(name)
last = open(work + "/lvfloor.last").read().strip() if mode == "round" else None
cp = str(uuid.uuid4())
inc = "<incremental>%s</incremental>" % last if last else ""
t0 = time.time()
d.backupBegin("<domainbackup mode='pull'>%s<server transport='unix' socket='%s/lvfloor.sock'/><disks>"
              "<disk name='sda' backup='yes' type='file'><scratch file='%s/lvfloor-%s.qcow2'/></disk></disks>"
              "</domainbackup>" % (inc, work, work, cp),
              "<domaincheckpoint><name>%s</name><disks><disk name='sda' checkpoint='bitmap'/></disks>"
              "</domaincheckpoint>" % cp, 0)
t1 = time.time()
d.abortJob()
while d.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE:
    time.sleep(0.002)
t2 = time.time()
open(work + "/lvfloor.last", "w").write(cp)
print("%.3f %.3f" % (t1 - t0, t2 - t1))
EOF
qemu-img create -q -f qcow2 "$W/lvfloor.qcow2" 4G
/usr/bin/python3 "$W/lvfloor.py" start "$LVF_DOM" "$W" >/dev/null
LVF_S=() LVF_R=() LVF_B=() LVF_E=()
for run in $(seq "$RUNS"); do
  warm
  read -r b e < <(/usr/bin/python3 "$W/lvfloor.py" round "$LVF_DOM" "$W")
  LVF_B+=("$b") LVF_E+=("$e") LVF_S+=("$(python3 -c "print('%.2f' % ($b + $e))")")
  LVF_R+=("$(ratio "${LVF_S[-1]}" "${T[snapback]}")")
done
/usr/bin/python3 "$W/lvfloor.py" stop "$LVF_DOM" "$W" >/dev/null
rm -f "$W/lvfloor.py" "$W/lvfloor.qcow2"
T[lvfloor]=$(median "${LVF_S[@]}")

# restores: of the full backup, then of the incremental one (the newest); the second is
# compared with the running VM's disk, which has not changed since
# each run: the restore floor, then both restores (their input, the repository, in the cache
# as the floor's raw image is); every restored VM but the last run's goes again
FULL_BACKUP=$(awk '/^backup .* complete/ {print $2; exit}' "$W/backup1.out")
INCR_BACKUP=$(awk '/^backup .* complete/ {print $2; exit}' "$W/backup2.out")
RFLOOR_S=() RFULL_S=() RINCR_S=() RFULL_R=() RINCR_R=() R_LOAD=() RNBD_S=() RNBD_R=()
for run in $(seq "$RUNS"); do
  l=$(load)
  f=$(rfloor)
  n=$(rnbd)
  RNBD_S+=("$n") RNBD_R+=("$(ratio "$n" "$f")")
  for which in full incr; do
    b=$FULL_BACKUP; [ $which = incr ] && b=$INCR_BACKUP
    warm "$W/repo"
    t0=$(now)
    /usr/bin/time -v -o "$W/time-r$which" "$SNAPBACK" restore "$b" --repo "$W/repo" --name "bench-r$which$run" \
      --json >"$W/restore-$which.json"
    t1=$(now); T[restore_$which]=$(secs "$t0" "$t1")
    if [ "$run" -lt "$RUNS" ]; then
      rvm=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vm_id"])' "$W/restore-$which.json")
      api -X DELETE "$API/vms/$rvm?detach_only=false" >/dev/null
    fi
  done
  RFLOOR_S+=("$f") RFULL_S+=("${T[restore_full]}") RINCR_S+=("${T[restore_incr]}") R_LOAD+=("$l")
  RFULL_R+=("$(ratio "${T[restore_full]}" "$f")") RINCR_R+=("$(ratio "${T[restore_incr]}" "$f")")
  echo "run $run: restore floor $f s, nbdcopy into qemu-nbd $n s (${RNBD_R[-1]}x)," \
    "restore full ${T[restore_full]} s (${RFULL_R[-1]}x), incremental ${T[restore_incr]} s (${RINCR_R[-1]}x) (load $l)"
done
rm -f "$W/floor.raw"
T[rfloor]=$(median "${RFLOOR_S[@]}")
T[restore_full]=$(median "${RFULL_S[@]}")
T[restore_incr]=$(median "${RINCR_S[@]}")
RSS3=$(awk -F: '/Maximum resident/ {print $2+0}' "$W/time-rincr")
RDISK=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disks"][0]["id"])' "$W/restore-incr.json")
RIMG=$(api "$API/disks/$RDISK" | python3 -c 'import sys,xml.etree.ElementTree as E; print(E.fromstring(sys.stdin.read()).findtext("image_id"))')
RVOL=$(ls "$W"/state/storage/*/images/"$RDISK/$RIMG")
if qemu-img compare -U -q "$RVOL" "$(vol)"; then SAME="byte-identical to the VM's disk"; else SAME="DIFFERS from the VM's disk"; fi

echo
echo "medians of $RUNS runs; a run's ratio is against the floor measured right beside it"
printf '%-42s %8s %s\n' "what" "seconds" "ratio"
printf '%-42s %8s runs: %s (load %s)\n' "qemu-img convert -O raw (copy floor)" "${T[floor]}" "${FLOOR_S[*]}" \
  "${FULL_LOAD[*]}"
printf '%-42s %8s runs: %s (load %s)\n' "qemu-img convert -O qcow2 (restore floor)" "${T[rfloor]}" "${RFLOOR_S[*]}" \
  "${R_LOAD[*]}"
printf '%-42s %8s %sx the copy floor (target <= 1.25); runs: %s s, %s x\n' "snapback backup (full)" \
  "${T[snapback]}" "$(median "${FULL_R[@]}")" "${FULL_S[*]}" "${FULL_R[*]}"
printf '%-42s %8s %sx the copy floor\n' "nbdcopy from qemu-nbd" "${T[nbdcopy]}" "$(ratio "${T[nbdcopy]}" "${T[floor]}")"
if [ -z "$SKIP_OTHERS" ]; then
  printf '%-42s %8s %sx the copy floor\n' "restic backup" "${T[restic]}" "$(ratio "${T[restic]}" "${T[floor]}")"
  printf '%-42s %8s %sx the copy floor\n' "borg create --compression zstd,3" "${T[borg]}" \
    "$(ratio "${T[borg]}" "${T[floor]}")"
  printf '%-42s %8s %sx the copy floor\n' "virtnbdbackup -l full" "${T[vnb_full]}" \
    "$(ratio "${T[vnb_full]}" "${T[floor]}")"
  printf '%-42s %8s stored %sx the changed bytes; runs: %s s, %s x (load %s)\n' \
    "virtnbdbackup -l inc after 1% changed" "${T[vnb_inc]}" "$(median "${VNB_BYTES_R[@]}")" "${VNB_S[*]}" \
    "${VNB_BYTES_R[*]}" "${INCR_LOAD[*]}"
fi
printf '%-42s %8s %sx snapback full (target <= 0.10); runs: %s s, %s x\n' "snapback backup after 1% changed" \
  "${T[incr]}" "$(median "${INCR_R[@]}")" "${INCR_S[*]}" "${INCR_R[*]}"
if [ -z "$SKIP_OTHERS" ]; then
  printf '%-42s %8s %sx virtnbdbackup inc (target < 1); runs: %s x\n' "" "" "$(median "${INCR_VR[@]}")" \
    "${INCR_VR[*]}"
fi
printf '%-42s %8s %sx snapback full; runs: %s s (begin %s s, end %s s)\n' "libvirt pull backup alone, no data" \
  "${T[lvfloor]}" "$(median "${LVF_R[@]}")" "${LVF_S[*]}" "${LVF_B[*]}" "${LVF_E[*]}"
printf '%-42s %8s %sx the restore floor; runs: %s s, %s x\n' "nbdcopy raw into qemu-nbd (engine's flags)" \
  "$(median "${RNBD_S[@]}")" "$(median "${RNBD_R[@]}")" "${RNBD_S[*]}" "${RNBD_R[*]}"
printf '%-42s %8s %sx the restore floor (target <= 1.5); runs: %s s, %s x\n' "snapback restore (full backup)" \
  "${T[restore_full]}" "$(median "${RFULL_R[@]}")" "${RFULL_S[*]}" "${RFULL_R[*]}"
printf '%-42s %8s %sx the restore floor (target <= 1.5); runs: %s s, %s x; %s\n' \
  "snapback restore (incremental backup)" "${T[restore_incr]}" "$(median "${RINCR_R[@]}")" "${RINCR_S[*]}" \
  "${RINCR_R[*]}" "$SAME"
echo "changed: $CHANGED bytes of random data a run; snapback's repository grew by $(median "${GROWTH_R[@]}")x" \
  "the changed bytes (target <= 1.25); runs: ${GROWTH_R[*]} x"
echo "snapback peak memory: full $((RSS1 / 1024)) MiB, incremental $((RSS2 / 1024)) MiB," \
  "restore $((RSS3 / 1024)) MiB (target < 256 MiB)"
if [ -z "$SKIP_OTHERS" ]; then
  echo "repository: $(du -sh "$W/repo" | cut -f1), restic: $(du -sh "$W/restic" | cut -f1)," \
    "borg: $(du -sh "$W/borg" | cut -f1), virtnbdbackup: $(du -sh "$W/vnb" | cut -f1)"
else
  echo "repository: $(du -sh "$W/repo" | cut -f1)"
fi
