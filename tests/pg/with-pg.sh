#!/usr/bin/env bash
# with-pg.sh CMD [ARG...]: runs CMD against a private PostgreSQL server.
#
# Starts a throwaway server from Debian's packages (postgresql-15:
# /usr/lib/postgresql/15/bin/initdb and pg_ctl) in a temporary directory,
# listening on a Unix socket only (no TCP port, so parallel runs never
# collide), runs CMD with
#   SNAPBACK_PG_HOST  the socket directory
#   SNAPBACK_PG_USER  a superuser that may create databases (trust auth)
#   SNAPBACK_E2E_DB   postgresql://USER@/?host=DIR (tests/e2e/harness.py makes
#                     one database per Env from it)
# and stops the server and removes the directory however CMD ends. Its exit
# status is CMD's. PostgreSQL refuses to run as root: as root the server runs
# as user postgres (made by the postgresql package) through runuser.
# SNAPBACK_PG_BIN overrides the server's bin directory. Tests trade durability for speed
# (fsync off); SNAPBACK_PG_DURABLE=1 keeps the server's defaults (bench/api.sh).
set -euo pipefail

[ "$#" -ge 1 ] || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }

bin=${SNAPBACK_PG_BIN:-}
if [ -z "$bin" ]; then
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bin=$d; done
fi
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "with-pg: no PostgreSQL server found (install the postgresql package: scripts/setup.sh)" >&2
  exit 77
fi

as_server=()
user=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
  user=postgres
  as_server=(runuser -u postgres --)
fi

dir=$(mktemp -d /tmp/snapback-pg-XXXXXX)
chmod 0755 "$dir"
mkdir "$dir/data" "$dir/run"
[ "$(id -u)" -eq 0 ] && chown postgres: "$dir/data" "$dir/run"

stop() {
  cd "$dir" 2>/dev/null || cd /
  "${as_server[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

# the server's user may not enter the caller's directory (a checkout under /root)
cd "$dir"
# C.UTF-8 collation: text sorts by code point, as in SQLite
"${as_server[@]}" "$bin/initdb" -D "$dir/data" -U "$user" --auth=trust --no-sync --locale=C.UTF-8 \
  --encoding=UTF8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
# fsync off: a test server's data need not survive a power cut, and it is faster
fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
[ "${SNAPBACK_PG_DURABLE:-0}" = 1 ] && fast=""
"${as_server[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/run/server.log" -w -t 60 \
  -o "-k $dir/run -c listen_addresses= $fast -c max_connections=200" \
  start >/dev/null || { cat "$dir/run/server.log" >&2; exit 1; }

cd "$OLDPWD"
export SNAPBACK_PG_HOST="$dir/run" SNAPBACK_PG_USER="$user"
export SNAPBACK_E2E_DB="postgresql://$user@/?host=$dir/run"
set +e
"$@"
rc=$?
set -e
exit "$rc"
