#!/usr/bin/env bash
# Self-test of the test appliance with plain virsh (no snapback daemon).
#
# Usage: scripts/appliance-selftest.sh OUTDIR
#
# Builds the appliance into OUTDIR if needed (scripts/build-appliance.sh), boots it as a
# transient libvirt domain (type qemu = TCG, q35, 256 MiB, 1 vCPU, serial console to
# OUTDIR/console-<uuid>.log, cmdline "console=ttyS0 panic=-1 snapback.write=1"), then for a
# virtio-blk disk and for a virtio-scsi disk:
#   - makes a 64 MiB qcow2 base filled with 0xab and a qcow2 overlay on top of it;
#   - hot-plugs the overlay (virsh attach-device --live) and checks the guest's
#     SNAPBACK-DISK line (serial, sha256 of the base's raw content, size);
#   - waits for SNAPBACK-WROTE (the guest wrote 1 MiB into the overlay);
#   - hot-unplugs (virsh detach-device --live), waits until the disk has left the live XML
#     and the guest printed SNAPBACK-REMOVED;
#   - checks that the base still has its original content and the overlay does not.
# Prints the timings. The domain is destroyed on exit. Needs root and a running libvirtd.
# LIBVIRT_URI overrides qemu:///system; SELFTEST_KEEP=1 keeps the images.
set -euo pipefail

say()  { printf 'selftest: %s\n' "$*"; }
fail() { printf 'selftest: FAIL: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
HERE=$(dirname "$(readlink -f "$0")")
mkdir -p "$1"
OUTDIR=$(readlink -f "$1")
URI=${LIBVIRT_URI:-qemu:///system}
V() { virsh -q -c "$URI" "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

"$HERE/build-appliance.sh" "$OUTDIR"
KERNEL=$OUTDIR/vmlinux
INITRD=$OUTDIR/initrd.gz
V version >/dev/null || fail "libvirt at $URI does not answer (virtlogd -d; libvirtd -d)"

UUID=$(cat /proc/sys/kernel/random/uuid)
NAME=appliance-test-${UUID%%-*}
LOG=$OUTDIR/console-$UUID.log
WORK=$OUTDIR/selftest-$UUID
mkdir -p "$WORK"
: > "$LOG"

cleanup() {
  V destroy "$NAME" >/dev/null 2>&1 || true
  [ "${SELFTEST_KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

ports=
for i in 1 2 3 4 5 6 7 8; do
  ports+="    <controller type='pci' index='$i' model='pcie-root-port'/>"$'\n'
done
cat > "$WORK/domain.xml" <<EOF
<domain type='qemu'>
  <name>$NAME</name>
  <uuid>$UUID</uuid>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$KERNEL</kernel>
    <initrd>$INITRD</initrd>
    <cmdline>console=ttyS0 panic=-1 snapback.write=1</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <controller type='pci' index='0' model='pcie-root'/>
$ports    <controller type='scsi' index='0' model='virtio-scsi'/>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='$LOG'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
EOF

# wait_line OFFSET REGEX TIMEOUT: first line of $LOG after byte OFFSET matching REGEX
wait_line() {
  local off=$1 re=$2 deadline line
  deadline=$(awk -v n="$(now)" -v t="$3" 'BEGIN { printf "%.0f", n + t }')
  while :; do
    line=$(tail -c +$((off + 1)) "$LOG" | tr -d '\r' | grep -E -m1 -- "$re" || true)
    [ -n "$line" ] && { printf '%s\n' "$line"; return 0; }
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    V domstate "$NAME" >/dev/null 2>&1 || { say "domain is gone" >&2; return 1; }
    sleep 0.05
  done
}
logsize() { stat -c %s "$LOG"; }
raw_sha() { qemu-img convert -U -O raw "$1" "$WORK/raw.tmp" && sha256sum "$WORK/raw.tmp" | cut -d' ' -f1 && rm -f "$WORK/raw.tmp"; }

t0=$(now)
V create "$WORK/domain.xml" >/dev/null || fail "virsh create"
wait_line 0 '^APPLIANCE READY' 120 >/dev/null || { tail -n 30 "$LOG" >&2; fail "no APPLIANCE READY within 120 s"; }
t_boot=$(elapsed "$t0" "$(now)")
say "domain $NAME booted: APPLIANCE READY after ${t_boot} s (console $LOG)"

results=()
run_case() {  # run_case LABEL BUS TARGET SERIAL
  local label=$1 bus=$2 target=$3 serial=$4
  local base=$WORK/$label-base.qcow2 ovl=$WORK/$label-overlay.qcow2 xml=$WORK/$label-disk.xml
  local want line dev off t1 t_hash t_wrote t_rm
  qemu-img create -q -f qcow2 "$base" 64M
  qemu-io -f qcow2 -c 'write -P 0xab 0 64M' "$base" >/dev/null
  want=$(raw_sha "$base")
  qemu-img create -q -f qcow2 -b "$base" -F qcow2 "$ovl"
  cat > "$xml" <<EOF
<disk type='file' device='disk'>
  <driver name='qemu' type='qcow2'/>
  <source file='$ovl'/>
  <target dev='$target' bus='$bus'/>
  <serial>$serial</serial>
</disk>
EOF
  off=$(logsize)
  t1=$(now)
  V attach-device "$NAME" "$xml" --live >/dev/null || fail "$label: attach-device"
  line=$(wait_line "$off" "^SNAPBACK-(DISK|ERROR) .*serial=$serial " 120) ||
    fail "$label: no SNAPBACK-DISK line for serial $serial"
  t_hash=$(elapsed "$t1" "$(now)")
  say "$label: $line"
  [[ $line =~ ^SNAPBACK-DISK\ serial=([^ ]*)\ dev=([^ ]+)\ sha256=([0-9a-f]{64})\ bytes=([0-9]+)$ ]] ||
    fail "$label: malformed line"
  dev=${BASH_REMATCH[2]}
  [ "${BASH_REMATCH[1]}" = "$serial" ] || fail "$label: serial ${BASH_REMATCH[1]} != $serial"
  [ "${BASH_REMATCH[3]}" = "$want" ] || fail "$label: sha256 ${BASH_REMATCH[3]} != expected $want"
  [ "${BASH_REMATCH[4]}" = $((64 * 1024 * 1024)) ] || fail "$label: bytes ${BASH_REMATCH[4]}"
  wait_line "$off" "^SNAPBACK-WROTE dev=$dev\$" 60 >/dev/null || fail "$label: no SNAPBACK-WROTE"
  t_wrote=$(elapsed "$t1" "$(now)")

  off=$(logsize)
  t1=$(now)
  V detach-device "$NAME" "$xml" --live >/dev/null || fail "$label: detach-device"
  local gone=0 i live
  for i in $(seq 1 400); do
    live=$(V dumpxml "$NAME") || fail "$label: virsh dumpxml"
    if ! grep -q "<serial>$serial</serial>" <<<"$live"; then gone=1; break; fi
    sleep 0.05
  done
  [ $gone = 1 ] || fail "$label: disk still in the live XML 20 s after detach-device"
  local t_xml; t_xml=$(elapsed "$t1" "$(now)")
  wait_line "$off" "^SNAPBACK-REMOVED dev=$dev\$" 30 >/dev/null || fail "$label: no SNAPBACK-REMOVED dev=$dev"
  t_rm=$(elapsed "$t1" "$(now)")

  [ "$(raw_sha "$base")" = "$want" ] || fail "$label: the base image changed"
  [ "$(raw_sha "$ovl")" != "$want" ] || fail "$label: the guest's write did not reach the overlay"
  say "$label: OK (dev=$dev; attach->hash ${t_hash} s, attach->wrote ${t_wrote} s, detach->gone from live XML ${t_xml} s, detach->REMOVED ${t_rm} s)"
  results+=("$label: attach->hash ${t_hash}s, detach->removed ${t_rm}s")
}

run_case virtio-blk virtio vdb "ABC123VIRTIO"
run_case virtio-scsi scsi sdb "ABC123SCSI"

say "PASS: boot ${t_boot}s; ${results[*]}"
