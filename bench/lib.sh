# bench/lib.sh: what the benchmarks share. Source it after setting OUT (log
# directory), HOST, PASS and BUILD. Sets DAEMON, DAEMON_PID, SPORT and SURL.

say() { printf 'bench: %s\n' "$*"; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# bench_build_daemon: DAEMON = $BENCH_DAEMON, or a release build of snapbackd in $BUILD
bench_build_daemon() {
  if [ -n "${BENCH_DAEMON:-}" ]; then
    DAEMON=$BENCH_DAEMON
    say "using $DAEMON (BENCH_DAEMON)"
  else
    say "building $BUILD (release)"
    if [ ! -f "$BUILD/meson-private/coredata.dat" ]; then
      meson setup "$BUILD" --buildtype=release >"$OUT/meson-setup.log" 2>&1 ||
        { tail -20 "$OUT/meson-setup.log" >&2; die "meson setup failed (log: $OUT/meson-setup.log)"; }
    fi
    ninja -C "$BUILD" src/daemon/snapbackd >"$OUT/build.log" 2>&1 ||
      { tail -20 "$OUT/build.log" >&2; die "build failed (log: $OUT/build.log)"; }
    DAEMON=$BUILD/src/daemon/snapbackd
  fi
  [ -x "$DAEMON" ] || die "$DAEMON is not an executable"
}

# bench_start_daemon STATE_DIR [snapbackd options...]: starts snapbackd --http on a
# free port and waits (30 s at most) until it answers
bench_start_daemon() {
  local state=$1 i code rc
  shift
  SPORT=$(free_port)
  SURL=http://$HOST:$SPORT
  say "starting snapbackd --http on $HOST:$SPORT (state: $state${*:+, $*})"
  SNAPBACK_ADMIN_PASSWORD=$PASS "$DAEMON" --state-dir "$state" --listen "$HOST:$SPORT" --http "$@" \
    >"$OUT/snapbackd.log" 2>&1 &
  DAEMON_PID=$!
  for i in $(seq 1 300); do
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
      wait "$DAEMON_PID" && rc=0 || rc=$?
      DAEMON_PID=
      tail -20 "$OUT/snapbackd.log" >&2
      die "snapbackd exited with status $rc during startup (log: $OUT/snapbackd.log)"
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' "$SURL/ovirt-engine/api" || true)
    [ "$code" != 000 ] && return 0
    sleep 0.1
  done
  tail -20 "$OUT/snapbackd.log" >&2
  die "snapbackd did not answer on $SURL within 30 s"
}
