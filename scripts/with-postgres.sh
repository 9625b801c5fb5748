#!/usr/bin/env bash
# Runs a command with a private PostgreSQL server on loopback, exported as NBDEPLOY_TEST_POSTGRES_URL,
# and stops that server (pg_ctl, by its postmaster pid) when the command ends.
# If NBDEPLOY_TEST_POSTGRES_URL is already set, or no PostgreSQL is installed, it just runs the command.
set -uo pipefail

if [ -n "${NBDEPLOY_TEST_POSTGRES_URL:-}" ]; then exec "$@"; fi
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "with-postgres: PostgreSQL is not installed; PostgreSQL tests will skip (and fail under CI=true)" >&2
  exec "$@"
fi

dir=$(mktemp -d /tmp/nbdeploy-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; as_pg=(runuser -u postgres --); fi

stop() {
  "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
  rm -rf "$dir"
}
trap stop EXIT

"${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null || exit 1
"${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o \
  "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
  start >/dev/null || { cat "$dir/log" >&2; exit 1; }
export NBDEPLOY_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
echo "with-postgres: PostgreSQL $(basename "$(dirname "$bindir")") on 127.0.0.1:$port" >&2
"$@"
