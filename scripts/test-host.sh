#!/bin/sh
# test-host.sh: a second libvirt host on this machine, for multi-host tests.
#
#   scripts/test-host.sh up NAME     start host NAME; prints its libvirt URI on the last line
#   scripts/test-host.sh down NAME   stop it and remove everything `up` made
#   scripts/test-host.sh uri NAME    print the URI of a running NAME
#   scripts/test-host.sh kill-libvirtd NAME    SIGKILL its libvirtd (QEMU keeps running): a host that dies
#   scripts/test-host.sh start-libvirtd NAME   start it again (it finds its running domains)
#
# The host is a second libvirtd in its own mount, network, PID and UTS
# namespaces (unshare). A holder process is PID 1 there and keeps the
# namespaces alive; its pid is recorded in /run/snapback-test-hosts/NAME/pid.
# When it dies the kernel kills everything in the PID namespace (libvirtd,
# virtlogd, QEMU), and the veth pair and the mounts go with the namespaces.
#
# Inside, /run (and so /var/run), /var/lib/libvirt, /var/cache/libvirt and
# /var/log/libvirt are private tmpfs, and /etc/libvirt is a private copy that
# makes libvirtd listen on qemu+tcp (auth none: a test host) on the veth
# address only, with its own host UUID. Everything else -- /tmp, /var/tmp,
# /work, the storage domains' directories -- is the same file system at the
# same path, as NFS would give two hosts.
#
# Network: a veth pair, host side 10.254.N.1/30, namespace side 10.254.N.2/30
# (N = 1..200, the first free one). Traffic goes only to these addresses.
#
# Must run as root (Debian 12: util-linux unshare/nsenter, iproute2, libvirt).
# Never touches the machine's own libvirtd.
set -eu

STATE_ROOT=/run/snapback-test-hosts

die() { echo "test-host: $*" >&2; exit 1; }
say() { echo "test-host: $*" >&2; }

usage() { die "usage: $0 up|down|uri|kill-libvirtd|start-libvirtd NAME  (NAME: letters, digits, '-', at most 20)"; }

[ $# -eq 2 ] || { [ $# -eq 3 ] && [ "${1:-}" = __inside ]; } || usage
CMD=$1 NAME=$2
case $NAME in
  ''|*[!A-Za-z0-9-]*) usage ;;
esac
[ ${#NAME} -le 20 ] || usage
DIR=$STATE_ROOT/$NAME

holder_alive() {
  [ -f "$DIR/pid" ] || return 1
  pid=$(cat "$DIR/pid")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

uri_of() { echo "qemu+tcp://10.254.$(cat "$DIR/index").2/system"; }

# the first index 1..200 no other test host holds
free_index() {
  i=1
  while [ $i -le 200 ]; do
    used=0
    for f in "$STATE_ROOT"/*/index; do
      [ -f "$f" ] && [ "$(cat "$f")" = $i ] && used=1
    done
    if [ $used -eq 0 ] && ! ip link show "sbth$i" >/dev/null 2>&1; then
      echo $i
      return 0
    fi
    i=$((i + 1))
  done
  return 1
}

do_down() {
  [ -d "$DIR" ] || { say "host '$NAME' is not up"; return 0; }
  if holder_alive; then
    pid=$(cat "$DIR/pid")
    # PID 1 of the namespace: its death makes the kernel kill every process in it
    kill -KILL "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  fi
  if [ -f "$DIR/index" ]; then
    ip link del "sbth$(cat "$DIR/index")" 2>/dev/null || true
  fi
  rm -rf "$DIR"
  say "host '$NAME' removed"
}

# runs inside the new namespaces (as "$0 __inside NAME INDEX"), then becomes the holder
do_inside() {
  idx=$3
  # $DIR is hidden once /run is private: keep reaching it through a descriptor
  exec 8<"$DIR"
  OUT=/proc/$$/fd/8
  mount --make-rprivate /
  # the private copy of /etc/libvirt first: it lives under /run, which is hidden next
  mount --bind "$DIR/etc-libvirt" /etc/libvirt
  for d in /run /var/lib/libvirt /var/cache/libvirt /var/log/libvirt; do
    mkdir -p "$d"
    mount -t tmpfs -o mode=0755 "tmpfs-$NAME" "$d"
  done
  mount -t proc proc /proc
  mkdir -p /run/libvirt /run/lock /var/lib/libvirt/qemu /var/lib/libvirt/images /var/cache/libvirt/qemu \
    /var/log/libvirt/qemu
  hostname "snapback-$NAME"
  ip link set lo up
  # the ready file says "set up, waiting for the veth"; the outer side then moves it in
  : >"$OUT/ns-ready"
  i=0
  while ! ip link show sbtn >/dev/null 2>&1; do
    sleep 0.1; i=$((i + 1))
    [ $i -lt 100 ] || { echo "veth did not arrive" >"$OUT/ns-error"; exit 1; }
  done
  ip addr add "10.254.$idx.2/30" dev sbtn
  ip link set sbtn up
  virtlogd -d
  libvirtd -d --listen
  : >"$OUT/ns-started"
  exec 8<&-
  # the holder: PID 1 of the namespace reaps whatever init would
  exec sh -c 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done'
}

do_up() {
  [ "$(id -u)" -eq 0 ] || die "must run as root"
  for t in unshare ip libvirtd virtlogd virsh; do
    command -v $t >/dev/null 2>&1 || die "'$t' not found"
  done
  if holder_alive; then
    say "host '$NAME' is already up"
    uri_of
    return 0
  fi
  [ -d "$DIR" ] && do_down
  mkdir -p "$STATE_ROOT"
  mkdir "$DIR"
  idx=$(free_index) || die "no free address range 10.254.1..200 left"
  echo "$idx" >"$DIR/index"
  addr=10.254.$idx.2

  # a private /etc/libvirt: listen on the veth address only, own host UUID,
  # no autostarted networks (the default network's bridge is not needed here)
  cp -a /etc/libvirt "$DIR/etc-libvirt"
  rm -f "$DIR/etc-libvirt/qemu/networks/autostart/"*.xml 2>/dev/null || true
  rm -f "$DIR/etc-libvirt/qemu/autostart/"*.xml 2>/dev/null || true
  uuid=$(cat /proc/sys/kernel/random/uuid)
  cat >>"$DIR/etc-libvirt/libvirtd.conf" <<EOF

# added by snapback scripts/test-host.sh: a test host, reachable only on its veth
listen_tls = 0
listen_tcp = 1
listen_addr = "$addr"
auth_tcp = "none"
host_uuid = "$uuid"
EOF

  setsid unshare --mount --net --pid --uts --fork --kill-child=KILL \
    "$0" __inside "$NAME" "$idx" </dev/null >"$DIR/holder.log" 2>&1 &
  unshare_pid=$!
  i=0
  while [ ! -f "$DIR/ns-ready" ]; do
    sleep 0.1; i=$((i + 1))
    kill -0 $unshare_pid 2>/dev/null || { cat "$DIR/holder.log" >&2; do_down; die "namespace setup failed"; }
    [ $i -lt 100 ] || { do_down; die "namespace setup took over 10 s"; }
  done
  # the holder is unshare's child (PID 1 inside)
  holder=$(cat /proc/$unshare_pid/task/$unshare_pid/children 2>/dev/null | awk '{print $1}')
  [ -n "$holder" ] || { do_down; die "cannot find the namespace's holder process"; }
  echo "$holder" >"$DIR/pid"

  ip link add "sbth$idx" type veth peer name sbtn netns "$holder"
  ip addr add "10.254.$idx.1/30" dev "sbth$idx"
  ip link set "sbth$idx" up

  i=0
  while [ ! -f "$DIR/ns-started" ]; do
    sleep 0.1; i=$((i + 1))
    if [ -f "$DIR/ns-error" ] || ! kill -0 "$holder" 2>/dev/null || [ $i -ge 150 ]; then
      cat "$DIR/holder.log" "$DIR/ns-error" >&2 2>/dev/null || true
      do_down; die "libvirtd did not start in the namespace"
    fi
  done
  uri=$(uri_of)
  i=0
  until virsh -q -c "$uri" version >/dev/null 2>&1; do
    sleep 0.2; i=$((i + 1))
    [ $i -lt 150 ] || { cat "$DIR/holder.log" >&2; do_down; die "$uri does not answer after 30 s"; }
  done
  say "host '$NAME' is up (holder pid $holder, host side 10.254.$idx.1)"
  echo "$uri"
}

libvirtd_pid() {
  holder=$(cat "$DIR/pid")
  # the children file is one line of pids separated by spaces
  # shellcheck disable=SC2013
  for p in $(cat /proc/"$holder"/task/"$holder"/children 2>/dev/null); do
    [ "$(cat /proc/"$p"/comm 2>/dev/null)" = libvirtd ] && echo "$p"
  done
  return 0
}

do_kill_libvirtd() {
  holder_alive || die "host '$NAME' is not up"
  for p in $(libvirtd_pid); do kill -KILL "$p"; done
  i=0
  while [ -n "$(libvirtd_pid)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  say "host '$NAME': libvirtd killed"
}

do_start_libvirtd() {
  holder_alive || die "host '$NAME' is not up"
  [ -z "$(libvirtd_pid)" ] || { say "host '$NAME': libvirtd runs already"; return 0; }
  holder=$(cat "$DIR/pid")
  # a stale pid file of the killed one would make the new one refuse to start
  nsenter -t "$holder" -m -n -p -u sh -c 'rm -f /run/libvirtd.pid; exec libvirtd -d --listen'
  uri=$(uri_of)
  i=0
  until virsh -q -c "$uri" version >/dev/null 2>&1; do
    sleep 0.2; i=$((i + 1))
    [ $i -lt 150 ] || die "$uri does not answer 30 s after starting libvirtd"
  done
  say "host '$NAME': libvirtd started"
}

case $CMD in
  up) do_up ;;
  kill-libvirtd) do_kill_libvirtd ;;
  start-libvirtd) do_start_libvirtd ;;
  down) do_down ;;
  uri) holder_alive || die "host '$NAME' is not up"; uri_of ;;
  __inside) do_inside "$@" ;;
  *) usage ;;
esac
