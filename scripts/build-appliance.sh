#!/usr/bin/env bash
# Build the snapback test appliance: a Debian kernel plus a busybox initramfs that libvirt
# boots directly (<os><kernel>/<initrd>/<cmdline>). Only Debian packages are used:
# linux-image-6.1.0-*-amd64 and busybox-static.
#
# Usage: scripts/build-appliance.sh OUTDIR
#
# Produces:
#   OUTDIR/vmlinux    uncompressed kernel ELF with a PVH entry note (QEMU boots it through
#                     PVH: about 3 s to userspace under TCG, against 6-7 s for the bzImage)
#   OUTDIR/vmlinuz    the packaged bzImage (fallback; same kernel)
#   OUTDIR/initrd.gz  gzip newc initramfs: busybox, the virtio/SCSI modules, /init, /handler
#   OUTDIR/debs/      the downloaded .deb files (cache)
# Idempotent: does nothing when vmlinux and initrd.gz exist and are newer than this script.
#
# Guest behaviour (kernel cmdline must contain console=ttyS0; all output goes to ttyS0):
#   APPLIANCE READY                          once the modules are loaded and the uevent
#                                            listener runs (disks present at boot are
#                                            reported right after this line)
#   SNAPBACK-DISK serial=<serial> dev=<name> sha256=<hex> bytes=<size>
#                                            for each block disk (vdX, sdX) that appears;
#                                            sha256 of the whole device
#   SNAPBACK-WROTE dev=<name>                only with snapback.write=1 on the cmdline: after
#                                            hashing, 1 MiB of random data was written at
#                                            offset 0 of the disk (fsync'ed)
#   SNAPBACK-ERROR dev=<name> what=<text>    hashing or writing failed (e.g. disk pulled)
#   SNAPBACK-REMOVED dev=<name>              the disk went away (hot-unplug acknowledged)
#   SNAPBACK-NET dev=eth0 ip=<address>      only with snapback.net=1: the first NIC (virtio-net)
#                                            got this address by DHCP (busybox udhcpc)
#   SNAPBACK-SENT dev=<name> to=<host:port>  only with snapback.send=HOST:PORT: after hashing,
#                                            the disk went to HOST:PORT over TCP (busybox nc) as
#                                            one line "SNAPBACK-DATA serial=S dev=D sha256=H
#                                            bytes=N" and then its N bytes
#   SNAPBACK-AGENT port=<vportNpM>          only with snapback.agent=1: the guest agent answers
#                                            on the org.qemu.guest_agent.0 virtio port
# Cmdline options: snapback.write=1 (see above), snapback.net=1 and snapback.send=HOST:PORT
# (see above; send implies net), snapback.ip=ADDR/PREFIX (eth0 gets this static address
# instead of a DHCP lease; implies net), snapback.agent=1 (start /agent, a tiny guest agent
# in busybox sh: guest-sync, guest-sync-delimited, guest-ping, guest-info and
# guest-network-get-interfaces; every other command, guest-fsfreeze-* among them, gets a
# CommandNotFound error, so snapshots of the appliance stay crash-consistent), snapback.debug=1 (keep kernel messages on
# the console after boot; by default they are silenced after boot so that they cannot
# interleave with the SNAPBACK lines).
set -euo pipefail

say() { printf 'build-appliance: %s\n' "$*"; }
die() { printf 'build-appliance: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
OUTDIR=$1
SELF=$(readlink -f "$0")
mkdir -p "$OUTDIR"
OUTDIR=$(readlink -f "$OUTDIR")

sizes() {
  local f
  for f in vmlinux vmlinuz initrd.gz; do
    [ -e "$OUTDIR/$f" ] && printf 'build-appliance: %-10s %10d bytes (%s)\n' "$f" \
      "$(stat -c %s "$OUTDIR/$f")" "$(du -h --apparent-size "$OUTDIR/$f" | cut -f1)"
  done
  return 0
}

if [ -s "$OUTDIR/vmlinux" ] && [ -s "$OUTDIR/initrd.gz" ] &&
   [ "$OUTDIR/vmlinux" -nt "$SELF" ] && [ "$OUTDIR/initrd.gz" -nt "$SELF" ]; then
  say "up to date in $OUTDIR"
  sizes
  exit 0
fi

for t in apt-cache apt-get dpkg-deb gzip od readelf xz; do
  command -v "$t" >/dev/null || die "missing tool: $t"
done

# --- 1. packages -----------------------------------------------------------------------
# A fresh machine may have no package lists yet: fetch them once.
if ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
  say "no apt package lists: running apt-get update" >&2
  apt-get update -qq || die "apt-get update failed"
fi
# KERNEL_PKG may name the kernel package; by default the one linux-image-amd64 depends on.
KERNEL_PKG=${KERNEL_PKG:-$(apt-cache depends linux-image-amd64 2>/dev/null |
  awk '/Depends: linux-image-6\.[0-9.]+-[0-9]+-amd64/ && !n++ {print $2}')}
[ -n "$KERNEL_PKG" ] || KERNEL_PKG=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' |
  awk '{print $1}' | sort -V | tail -n1)
[ -n "$KERNEL_PKG" ] || die "no linux-image-6.1.0-*-amd64 package known to apt (run apt-get update)"
KVER=${KERNEL_PKG#linux-image-}

DEBS=$OUTDIR/debs
mkdir -p "$DEBS"
fetch() {  # fetch PKG: make sure a .deb of PKG is in $DEBS, print its path
  local pkg=$1 f
  f=$(ls -1 "$DEBS/${pkg}"_*.deb 2>/dev/null | sort -V | tail -n1 || true)
  if [ -z "$f" ]; then
    say "downloading $pkg" >&2
    (cd "$DEBS" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null) ||
      die "apt-get download $pkg failed"
    f=$(ls -1 "$DEBS/${pkg}"_*.deb | sort -V | tail -n1)
  fi
  printf '%s\n' "$f"
}
KDEB=$(fetch "$KERNEL_PKG")
BDEB=$(fetch busybox-static)
say "kernel $KVER from $(basename "$KDEB"), busybox from $(basename "$BDEB")"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/snapback-appliance.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
dpkg-deb -x "$KDEB" "$TMP/pkg"
dpkg-deb -x "$BDEB" "$TMP/pkg"
BB=$TMP/pkg/bin/busybox
[ -x "$BB" ] || die "busybox-static has no bin/busybox"
MODDIR=$TMP/pkg/lib/modules/$KVER
BZ=$TMP/pkg/boot/vmlinuz-$KVER
[ -f "$BZ" ] && [ -d "$MODDIR" ] || die "unexpected layout in $(basename "$KDEB")"

# --- 2. kernel: extract the uncompressed vmlinux from the bzImage ---------------------
# The x86 boot header gives the payload position: setup_sects at 0x1f1, payload_offset and
# payload_length at 0x248 (offset relative to the protected-mode code after the setup).
u8()  { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
[ "$(od -An -c -j $((0x202)) -N4 "$BZ" | tr -d ' ')" = HdrS ] || die "$BZ is not a bzImage"
setup_sects=$(u8 "$BZ" $((0x1f1))); [ "$setup_sects" -ne 0 ] || setup_sects=4
pl_off=$(( (setup_sects + 1) * 512 + $(u32 "$BZ" $((0x248))) ))
pl_len=$(u32 "$BZ" $((0x24c)))
magic=$(od -An -tx1 -j "$pl_off" -N6 "$BZ" | tr -d ' \n')
case $magic in
  fd377a585a00) dec=(xz -dc --single-stream) ;;
  1f8b*)        dec=(gzip -dc) ;;
  28b52ffd*)    dec=(zstd -dc) ;;
  *)            dec=() ;;
esac
pvh=0
if [ "${#dec[@]}" -gt 0 ] && command -v "${dec[0]}" >/dev/null; then
  # gzip and zstd would complain about the 4-byte size the kernel build appends
  tail -c +$((pl_off + 1)) "$BZ" | head -c "$pl_len" | "${dec[@]}" > "$TMP/vmlinux" 2>/dev/null || true
  notes=$(readelf -n "$TMP/vmlinux" 2>/dev/null || true)
  if [ "$(head -c4 "$TMP/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ] &&
     grep -Eq 'Xen.*(0x00000012|PHYS32_ENTRY)' <<<"$notes"; then
    pvh=1   # XEN_ELFNOTE_PHYS32_ENTRY = 18
  fi
fi
if [ "$pvh" -eq 1 ]; then
  say "kernel: uncompressed vmlinux with a PVH entry note (payload $magic at $pl_off)"
  cp --sparse=always "$TMP/vmlinux" "$OUTDIR/vmlinux.tmp"
else
  say "kernel: WARNING no PVH vmlinux could be extracted, vmlinux is the bzImage"
  cp "$BZ" "$OUTDIR/vmlinux.tmp"
fi
cp "$BZ" "$OUTDIR/vmlinuz.tmp"

# --- 3. modules ------------------------------------------------------------------------
# depmod over the full tree gives the transitive dependencies of what we want; the
# crypto back-ends of crc-t10dif / crc64-rocksoft are soft dependencies, so listed here.
WANT=(virtio_pci virtio_blk virtio_scsi sd_mod crct10dif_generic crc64_rocksoft_generic virtio_net virtio_console)
"$BB" depmod -b "$TMP/pkg" "$KVER"
R=$TMP/root
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,lib/modules/"$KVER"}
: > "$TMP/mods"
for m in "${WANT[@]}"; do
  line=$(grep -E "(^|/)${m}\.ko(\.[a-z]+)?:" "$MODDIR/modules.dep") || die "module $m not found"
  printf '%s\n' "$line" | tr -d ':' | tr ' ' '\n' | grep . >> "$TMP/mods"
done
while read -r f; do
  mkdir -p "$R/lib/modules/$KVER/$(dirname "$f")"
  cp "$MODDIR/$f" "$R/lib/modules/$KVER/$f"
done < <(sort -u "$TMP/mods")
cp "$MODDIR/modules.builtin" "$MODDIR/modules.order" "$R/lib/modules/$KVER/" 2>/dev/null || true
"$BB" depmod -b "$R" "$KVER"
say "modules: $(sort -u "$TMP/mods" | xargs -n1 basename | tr '\n' ' ')"

# --- 4. userspace ----------------------------------------------------------------------
cp "$BB" "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
mknod -m 600 "$R/dev/console" c 5 1 2>/dev/null || true  # only as root; /init copes anyway

cat > "$R/init" <<'EOF'
#!/bin/sh
# snapback appliance init (generated by scripts/build-appliance.sh)
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
exec </dev/console >/dev/console 2>&1
echo /sbin/modprobe > /proc/sys/kernel/modprobe
# the block drivers last, so that the disks present at boot find sd_mod already there
modprobe -a crct10dif_generic crc64_rocksoft_generic sd_mod virtio_pci virtio_blk virtio_scsi ||
  echo "SNAPBACK-ERROR dev=- what=modprobe"
grep -q 'snapback.debug=1' /proc/cmdline || echo "1 4 1 7" > /proc/sys/kernel/printk
# the network, before any disk is sent over it
static=$(sed -n 's/.*snapback\.ip=\([0-9./]*\).*/\1/p' /proc/cmdline)
if [ -n "$static" ] || grep -Eq 'snapback\.(net=1|send=)' /proc/cmdline; then
  modprobe virtio_net || echo "SNAPBACK-ERROR dev=eth0 what=modprobe"
  ip link set lo up
  i=0
  while [ $i -lt 100 ] && [ ! -e /sys/class/net/eth0 ]; do usleep 50000; i=$((i + 1)); done
  ip link set eth0 up
  if [ -n "$static" ]; then
    if ip addr add "$static" dev eth0; then
      echo "SNAPBACK-NET dev=eth0 ip=${static%/*}"
    else
      echo "SNAPBACK-ERROR dev=eth0 what=address"
    fi
  elif udhcpc -i eth0 -s /udhcpc -n -q -t 20 -T 1 >/dev/null 2>&1; then
    echo "SNAPBACK-NET dev=eth0 ip=$(cat /run/ip)"
  else
    echo "SNAPBACK-ERROR dev=eth0 what=dhcp"
  fi
fi
# the guest agent, after the network so that its first answer already has the address
if grep -q 'snapback.agent=1' /proc/cmdline; then
  if modprobe virtio_console; then
    /agent </dev/null >/dev/console 2>&1 &
  else
    echo "SNAPBACK-ERROR dev=- what=agent"
  fi
fi
mkdir -p /run/seen
uevent /handler &
upid=$!
# READY only once the netlink socket is open, so that no later hot-plug is missed
i=0
while [ $i -lt 100 ] && ! ls -l /proc/$upid/fd 2>/dev/null | grep -q socket; do
  usleep 20000; i=$((i + 1))
done
echo "APPLIANCE READY"
# disks that were there before the listener (the handler ignores duplicates)
for d in /sys/block/vd* /sys/block/sd*; do
  [ -e "$d" ] || continue
  ACTION=add SUBSYSTEM=block DEVTYPE=disk DEVNAME=${d##*/} /handler
done
# PID 1 must never exit; also reaps the orphaned hashing jobs
while :; do wait; sleep 1; done
EOF

cat > "$R/handler" <<'EOF'
#!/bin/sh
# Run by "busybox uevent" once per kernel event, one at a time: slow work goes to background.
[ "$SUBSYSTEM" = block ] && [ "$DEVTYPE" = disk ] || exit 0
name=${DEVNAME##*/}
case $name in vd*|sd*) ;; *) exit 0 ;; esac
case $ACTION in
add)
  mkdir /run/seen/$name 2>/dev/null || exit 0   # already reported (boot-time scan)
  (
    serial=
    if [ -r /sys/block/$name/serial ]; then
      serial=$(cat /sys/block/$name/serial 2>/dev/null)
    elif [ -r /sys/block/$name/device/vpd_pg80 ]; then
      serial=$(tail -c +5 /sys/block/$name/device/vpd_pg80 2>/dev/null | tr -d '\000')
    fi
    serial=$(printf '%s' "$serial" | tr -d ' \t\r\n')
    bytes=$(( $(cat /sys/block/$name/size) * 512 ))
    sum=$(sha256sum < /dev/$name 2>/dev/null) && sum=${sum%% *} || sum=
    if [ ${#sum} -ne 64 ]; then
      echo "SNAPBACK-ERROR dev=$name what=hash"
      exit 0
    fi
    echo "SNAPBACK-DISK serial=$serial dev=$name sha256=$sum bytes=$bytes"
    to=$(sed -n 's/.*snapback\.send=\([^ ]*\).*/\1/p' /proc/cmdline)
    if [ -n "$to" ]; then
      if { echo "SNAPBACK-DATA serial=$serial dev=$name sha256=$sum bytes=$bytes"; cat /dev/$name; } |
           nc "${to%:*}" "${to##*:}" >/dev/null 2>&1; then
        echo "SNAPBACK-SENT dev=$name to=$to"
      else
        echo "SNAPBACK-ERROR dev=$name what=send"
      fi
    fi
    if grep -q 'snapback.write=1' /proc/cmdline; then
      if dd if=/dev/urandom of=/dev/$name bs=1M count=1 conv=fsync 2>/dev/null; then
        echo "SNAPBACK-WROTE dev=$name"
      else
        echo "SNAPBACK-ERROR dev=$name what=write"
      fi
    fi
  ) </dev/null >/dev/console 2>&1 &
  ;;
remove)
  rmdir /run/seen/$name 2>/dev/null
  echo "SNAPBACK-REMOVED dev=$name" >/dev/console
  ;;
esac
exit 0
EOF
cat > "$R/udhcpc" <<'EOF'
#!/bin/sh
# busybox udhcpc's script: configure the lease it got (bound/renew)
case $1 in
bound|renew)
  ip addr flush dev "$interface"
  ip addr add "$ip/${mask:-24}" dev "$interface"
  [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface" 2>/dev/null
  echo "$ip" > /run/ip
  ;;
esac
exit 0
EOF
cat > "$R/agent" <<'EOF'
#!/bin/sh
# A tiny QEMU guest agent: line-delimited JSON on the org.qemu.guest_agent.0 virtio port, as
# libvirt speaks it (each command one line ending in \n; before each, guest-sync with an id
# that the answer must echo). Only what snapback's tests need; all else is CommandNotFound.
dev=
i=0
while [ $i -lt 100 ] && [ -z "$dev" ]; do
  for n in /sys/class/virtio-ports/*/name; do
    [ -r "$n" ] && [ "$(cat "$n")" = org.qemu.guest_agent.0 ] || continue
    p=${n%/name}
    [ -c "/dev/${p##*/}" ] && dev=/dev/${p##*/}
  done
  [ -n "$dev" ] || { usleep 50000; i=$((i + 1)); }
done
if [ -z "$dev" ]; then
  echo "SNAPBACK-ERROR dev=- what=agent-port"
  exit 0
fi
exec 3<>"$dev" || { echo "SNAPBACK-ERROR dev=${dev#/dev/} what=agent-open"; exit 0; }
echo "SNAPBACK-AGENT port=${dev#/dev/}"

# [{"name":..,"hardware-address":..,"ip-addresses":[..]}, ...]: every interface
interfaces() {
  ip -o addr 2>/dev/null | awk -v q='"' '
    $3 == "inet" || $3 == "inet6" {
      split($4, a, "/")
      t = ($3 == "inet") ? "ipv4" : "ipv6"
      ips[$2] = ips[$2] (ips[$2] == "" ? "" : ",") "{" q "ip-address-type" q ":" q t q "," \
                q "ip-address" q ":" q a[1] q "," q "prefix" q ":" (a[2] == "" ? 0 : a[2]) "}"
    }
    END { for (n in ips) print n " " ips[n] }' > /run/agent.ips
  out= sep=
  for d in /sys/class/net/*; do
    name=${d##*/}
    mac=$(cat "$d/address" 2>/dev/null)
    ips=$(awk -v n="$name" '$1 == n { print $2 }' /run/agent.ips)
    out="$out$sep{\"name\":\"$name\",\"hardware-address\":\"$mac\",\"ip-addresses\":[$ips]}"
    sep=,
  done
  printf '[%s]' "$out"
}

while :; do
  # read fails at EOF, which the port gives while the host side is not connected: wait
  line=
  if ! IFS= read -r line <&3 && [ -z "$line" ]; then
    usleep 200000
    continue
  fi
  line=$(printf '%s' "$line" | tr -d '\377\r')
  cmd=$(printf '%s' "$line" | sed -n 's/.*"execute"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
  [ -n "$cmd" ] || continue
  case $cmd in
  guest-sync|guest-sync-delimited)
    id=$(printf '%s' "$line" | sed -n 's/.*"id"[[:space:]]*:[[:space:]]*\(-\{0,1\}[0-9][0-9]*\).*/\1/p')
    [ "$cmd" = guest-sync-delimited ] && printf '\377'
    printf '{"return": %s}\n' "${id:-0}" ;;
  guest-ping)
    printf '{"return": {}}\n' ;;
  guest-info)
    printf '{"return": {"version": "snapback-appliance", "supported_commands": ['
    s=
    for c in guest-sync guest-sync-delimited guest-ping guest-info guest-network-get-interfaces; do
      printf '%s{"name": "%s", "enabled": true, "success-response": true}' "$s" "$c"
      s=", "
    done
    printf ']}}\n' ;;
  guest-network-get-interfaces)
    printf '{"return": %s}\n' "$(interfaces)" ;;
  *)
    printf '{"error": {"class": "CommandNotFound", "desc": "The command %s has not been found"}}\n' "$cmd" ;;
  esac >&3
done
EOF
chmod 755 "$R/init" "$R/handler" "$R/udhcpc" "$R/agent"

(cd "$R" && find . | sort | "$BB" cpio -o -H newc -R 0:0 2>/dev/null) | gzip -9n > "$OUTDIR/initrd.gz.tmp"
mv -f "$OUTDIR/vmlinuz.tmp" "$OUTDIR/vmlinuz"
mv -f "$OUTDIR/vmlinux.tmp" "$OUTDIR/vmlinux"
mv -f "$OUTDIR/initrd.gz.tmp" "$OUTDIR/initrd.gz"
printf '%s\n' "$KVER" > "$OUTDIR/kernel-version"
say "built in $OUTDIR"
sizes
