#!/usr/bin/env bash
# API benchmark: requests/s and p99 latency of an authenticated
#   GET /ovirt-engine/api/vms/{id}/diskattachments
# with 1,000 VMs in the store, measured with wrk, next to nginx serving the same bytes
# as a static file (the floor). Prints medians and the ratio snapbackd/nginx.
# Target: snapbackd reaches at least 0.5 of nginx's throughput.
#
# Usage: bench/api.sh            (as root, on a machine prepared by scripts/setup.sh)
# Knobs: BENCH_USER (admin; "cluster": the requests come from a user holding UserRole through
#        a permission on cluster Default, so every request walks VM -> cluster in the
#        permission check), BENCH_VMS (1000), BENCH_ROUNDS (3), BENCH_DURATION (10s), BENCH_THREADS (2),
#        BENCH_CONNS (32), BENCH_DAEMON (a snapbackd binary to use instead of building
#        build-bench), BENCH_DB (both: the whole run on SQLite, then again on PostgreSQL
#        (a private server from tests/pg/with-pg.sh, durable settings), one summary each and
#        both at the end; sqlite or postgresql: that store only).
#        Raw wrk output and the summary are kept in bench/out/api-DATE/.
# Never run in CI: numbers from shared CI machines mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${CI:-}" ]; then echo "bench/api.sh: skipped (CI is set; benchmarks never run in CI)"; exit 0; fi

# BENCH_DB=both (the default): this script once per store, then both summaries
if [ "${BENCH_DB:-both}" = both ]; then
  rc=0
  BENCH_DB=sqlite bash "$0" || rc=1
  BENCH_DB=postgresql SNAPBACK_PG_DURABLE=1 tests/pg/with-pg.sh bash "$0" || rc=1
  echo
  echo "== both stores =="
  for d in sqlite postgresql; do
    f=$(ls -td bench/out/api-*-"$d" 2>/dev/null | head -1)
    [ -n "$f" ] && [ -f "$f/summary.txt" ] && { echo "-- $d ($f)"; sed -n '2,$p' "$f/summary.txt"; }
  done
  exit "$rc"
fi
case $BENCH_DB in
  sqlite) DB_ARGS=() ;;
  postgresql)
    [ -n "${SNAPBACK_PG_HOST:-}" ] || { echo "bench: error: BENCH_DB=postgresql needs a server: run it under tests/pg/with-pg.sh" >&2; exit 1; }
    createdb -h "$SNAPBACK_PG_HOST" -U "$SNAPBACK_PG_USER" bench_api
    DB_ARGS=(--db "postgresql://$SNAPBACK_PG_USER@/bench_api?host=$SNAPBACK_PG_HOST") ;;
  *) echo "bench: error: BENCH_DB must be both, sqlite or postgresql" >&2; exit 1 ;;
esac

VMS=${BENCH_VMS:-1000}
ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-10s}
WRK_THREADS=${BENCH_THREADS:-2}
WRK_CONNS=${BENCH_CONNS:-32}
BUILD=build-bench
HOST=127.0.0.1
PASS="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

. bench/lib.sh

for tool in meson wrk nginx curl python3; do
  command -v "$tool" >/dev/null || die "$tool not found (run scripts/setup.sh)"
done

TMP=$(mktemp -d /tmp/snapback-bench.XXXXXX)
OUT=bench/out/api-$(date +%Y%m%d-%H%M%S)-$$-$BENCH_DB
mkdir -p "$OUT"
DAEMON_PID=
NGINX_PID=
cleanup() {
  local rc=$?
  for pid in $DAEMON_PID $NGINX_PID; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $DAEMON_PID $NGINX_PID; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build ----------------------------------------------------------------------------
scripts/setup.sh
bench_build_daemon

# --- snapbackd ------------------------------------------------------------------------
bench_start_daemon "$TMP/state" "${DB_ARGS[@]}"

# --- populate: token, VMs, one disk attached to VM #500 --------------------------------
cat >"$TMP/populate.py" <<'PY'
import http.client, json, sys, time, urllib.parse
import xml.etree.ElementTree as ET

host, port, password, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
conn = http.client.HTTPConnection(host, port, timeout=60)

def call(method, path, body=None, headers=None, ok=(200, 201, 202)):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    if r.status not in ok:
        sys.exit("bench: error: %s %s -> HTTP %d: %s" % (method, path, r.status, data[:500].decode(errors="replace")))
    return data

form = urllib.parse.urlencode({"grant_type": "password", "scope": "ovirt-app-api",
                               "username": "admin@internal", "password": password})
tok = json.loads(call("POST", "/ovirt-engine/sso/oauth/token", form,
                      {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}))
if "access_token" not in tok:
    sys.exit("bench: error: no access_token in SSO answer: %r" % tok)
token = tok["access_token"]
H = {"Authorization": "Bearer " + token, "Accept": "application/xml",
     "Content-Type": "application/xml", "Version": "4"}

def post(path, xml):
    return ET.fromstring(call("POST", "/ovirt-engine/api" + path, xml, H))

t0 = time.monotonic()
target = None
pick = min(500, count)
for i in range(1, count + 1):
    vm = post("/vms", "<vm><name>bench%04d</name><cluster><name>Default</name></cluster>"
                      "<template><name>Blank</name></template></vm>" % i)
    if i == pick:
        target = vm.get("id")
listed = len(ET.fromstring(call("GET", "/ovirt-engine/api/vms", None, H)).findall("vm"))
if listed < count:
    sys.exit("bench: error: created %d VMs but GET /vms lists %d" % (count, listed))
print("bench: created %d VMs in %.1f s (GET /vms lists %d)" % (count, time.monotonic() - t0, listed), file=sys.stderr)
if not target:
    sys.exit("bench: error: VM #%d has no id" % pick)

disk = post("/disks", "<disk><alias>bd</alias><provisioned_size>1048576</provisioned_size><format>cow</format>"
                      "<storage_domains><storage_domain><name>data</name></storage_domain></storage_domains></disk>")
did = disk.get("id")
deadline = time.monotonic() + 60
while (disk.findtext("status") or "ok") != "ok":      # disk creation may be asynchronous (locked -> ok)
    if time.monotonic() > deadline:
        sys.exit("bench: error: disk %s still %s after 60 s" % (did, disk.findtext("status")))
    time.sleep(0.2)
    disk = ET.fromstring(call("GET", "/ovirt-engine/api/disks/" + did, None, H))
post("/vms/%s/diskattachments" % target,
     '<disk_attachment><disk id="%s"/><interface>virtio_scsi</interface>'
     '<bootable>false</bootable><active>true</active></disk_attachment>' % did)
print("TOKEN=%s" % token)
print("VMID=%s" % target)
PY
say "creating $VMS VMs and one attached disk"
POP=$(python3 "$TMP/populate.py" "$HOST" "$SPORT" "$PASS" "$VMS") || die "populating the store failed (log: $OUT/snapbackd.log)"
TOKEN=$(sed -n 's/^TOKEN=//p' <<<"$POP")
VMID=$(sed -n 's/^VMID=//p' <<<"$POP")
[ -n "$TOKEN" ] && [ -n "$VMID" ] || die "populate script gave no token/VM id"

# --- BENCH_USER=cluster: a user whose only grant is UserRole on cluster Default ----------
if [ "${BENCH_USER:-admin}" = cluster ]; then
  printf '%s\n' "$PASS" >"$TMP/user-pw"
  "$DAEMON" --config /dev/null --state-dir "$TMP/state" "${DB_ARGS[@]}" user add bench --password-file "$TMP/user-pw" >>"$OUT/snapbackd.log" 2>&1 ||
    die "snapbackd user add failed (log: $OUT/snapbackd.log)"
  TOKEN=$(python3 - "$HOST" "$SPORT" "$PASS" "$TOKEN" <<'PY'
import http.client, json, sys, urllib.parse
import xml.etree.ElementTree as ET
host, port, password, admin_token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
conn = http.client.HTTPConnection(host, port, timeout=60)
H = {"Authorization": "Bearer " + admin_token, "Accept": "application/xml", "Content-Type": "application/xml",
     "Version": "4"}
def call(method, path, body=None, headers=H, ok=(200, 201)):
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status not in ok:
        sys.exit("bench: error: %s %s -> HTTP %d: %s" % (method, path, r.status, data[:300]))
    return data
user = ET.fromstring(call("POST", "/ovirt-engine/api/users", "<user><user_name>bench@internal</user_name>"
                          "<domain><name>internal-authz</name></domain></user>"))
cluster = ET.fromstring(call("GET", "/ovirt-engine/api/clusters?search=name%3DDefault")).find("cluster")
call("POST", "/ovirt-engine/api/clusters/%s/permissions" % cluster.get("id"),
     '<permission><role><name>UserRole</name></role><user id="%s"/></permission>' % user.get("id"))
form = urllib.parse.urlencode({"grant_type": "password", "scope": "ovirt-app-api",
                               "username": "bench@internal", "password": password})
print(json.loads(call("POST", "/ovirt-engine/sso/oauth/token", form,
                      {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}))["access_token"])
PY
) || die "setting up the cluster user failed"
  say "requests as bench@internal, UserRole on cluster Default"
fi

PATH_UNDER_TEST=/ovirt-engine/api/vms/$VMID/diskattachments
HDRS=(-H "Authorization: Bearer $TOKEN" -H "Accept: application/xml" -H "Version: 4")

# --- nginx serving the same bytes -----------------------------------------------------
WWW=$TMP/www
mkdir -p "$WWW/ovirt-engine/api/vms/$VMID" "$TMP/nginx/tmp"
code=$(curl -sS -o "$WWW$PATH_UNDER_TEST" -w '%{http_code}' "${HDRS[@]}" "$SURL$PATH_UNDER_TEST")
[ "$code" = 200 ] || die "GET $PATH_UNDER_TEST -> HTTP $code"
BYTES=$(stat -c %s "$WWW$PATH_UNDER_TEST")
[ "$BYTES" -gt 0 ] || die "GET $PATH_UNDER_TEST returned an empty body"
grep -q '<disk_attachment' "$WWW$PATH_UNDER_TEST" || die "GET $PATH_UNDER_TEST has no <disk_attachment> (see $OUT/body.xml)"
cp "$WWW$PATH_UNDER_TEST" "$OUT/body.xml"

NPORT=$(free_port)
NURL=http://$HOST:$NPORT
cat >"$TMP/nginx/nginx.conf" <<EOF
user root;
worker_processes auto;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/tmp/body;
  proxy_temp_path $TMP/nginx/tmp/proxy;
  fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
  uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
  scgi_temp_path $TMP/nginx/tmp/scgi;
  default_type application/xml;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  sendfile on;
  server {
    listen $HOST:$NPORT;
    root $WWW;
  }
}
EOF
say "starting nginx on $HOST:$NPORT serving the same $BYTES bytes"
nginx -e "$TMP/nginx/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" &
NGINX_PID=$!
for i in $(seq 1 100); do
  kill -0 "$NGINX_PID" 2>/dev/null || { cat "$TMP/nginx/error.log" >&2 || true; NGINX_PID=; die "nginx failed to start"; }
  code=$(curl -s -o /dev/null -w '%{http_code}' "$NURL$PATH_UNDER_TEST" || true)
  [ "$code" = 200 ] && break
  [ "$i" -eq 100 ] && die "nginx did not serve $PATH_UNDER_TEST within 10 s (HTTP $code)"
  sleep 0.1
done
cmp -s "$WWW$PATH_UNDER_TEST" <(curl -s "$NURL$PATH_UNDER_TEST") || die "nginx serves different bytes"

# --- wrk -------------------------------------------------------------------------------
# run_wrk NAME URL ROUND: prints "<req/s> <p99 ms>"
run_wrk() {
  local name=$1 url=$2 round=$3 log
  log=$OUT/wrk-$name-$round.txt
  wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$DURATION" --latency "${HDRS[@]}" "$url" >"$log" 2>&1 ||
    die "wrk against $name failed (log: $log)"
  if grep -q 'Non-2xx or 3xx responses' "$log"; then
    die "$name answered non-2xx during the run: $(grep 'Non-2xx' "$log" | tr -s ' ') (log: $log)"
  fi
  awk '
    /^Requests\/sec:/ { rps = $2 }
    $1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                  p99 = (u == "us") ? v / 1000 : (u == "ms") ? v : (u == "s") ? v * 1000 : (u == "m") ? v * 60000 : -1 }
    END { if (rps == "" || p99 == "") exit 1; printf "%s %.3f\n", rps, p99 }' "$log" ||
    die "could not parse wrk output (log: $log)"
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

say "wrk -t$WRK_THREADS -c$WRK_CONNS -d$DURATION --latency, $ROUNDS rounds each, alternating"
S_RPS=() S_P99=() N_RPS=() N_P99=()
for r in $(seq 1 "$ROUNDS"); do
  read -r rps p99 < <(run_wrk snapbackd "$SURL$PATH_UNDER_TEST" "$r")
  [ -n "${rps:-}" ] || exit 1
  S_RPS+=("$rps"); S_P99+=("$p99")
  say "round $r snapbackd: $rps req/s, p99 $p99 ms"
  read -r rps p99 < <(run_wrk nginx "$NURL$PATH_UNDER_TEST" "$r")
  [ -n "${rps:-}" ] || exit 1
  N_RPS+=("$rps"); N_P99+=("$p99")
  say "round $r nginx:     $rps req/s, p99 $p99 ms"
done

s_rps=$(printf '%s\n' "${S_RPS[@]}" | median); s_p99=$(printf '%s\n' "${S_P99[@]}" | median)
n_rps=$(printf '%s\n' "${N_RPS[@]}" | median); n_p99=$(printf '%s\n' "${N_P99[@]}" | median)
ratio=$(awk -v s="$s_rps" -v n="$n_rps" 'BEGIN { printf "%.2f", (n > 0) ? s / n : 0 }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.5) ? "PASS" : "FAIL" }')

{
  echo
  echo "GET $PATH_UNDER_TEST ($BYTES bytes) as ${BENCH_USER:-admin}, $VMS VMs, store $BENCH_DB, wrk -t$WRK_THREADS -c$WRK_CONNS -d$DURATION, median of $ROUNDS"
  printf '%-16s %14s %12s\n' "server" "req/s" "p99 ms"
  printf '%-16s %14.0f %12.2f\n' "snapbackd" "$s_rps" "$s_p99"
  printf '%-16s %14.0f %12.2f\n' "nginx (floor)" "$n_rps" "$n_p99"
  echo "ratio snapbackd/nginx: $ratio"
  echo "target >= 0.5: $verdict"
} | tee "$OUT/summary.txt"
[ "$verdict" = PASS ]
