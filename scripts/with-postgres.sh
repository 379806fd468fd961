#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL cluster: initdb in a temporary directory (as the `postgres` user when
# run as root: initdb refuses root), a free port on loopback, a socket directory of its own, fsync and
# synchronous_commit on (the durability the server is measured with). Exports
#   LOYALTY_TEST_DATABASE_URL   postgres://loyalty@127.0.0.1:PORT/loyalty (a superuser; tests make their own databases)
#   LOYALTY_PG_BIN              the directory of initdb, pg_ctl and pgbench
# and stops the cluster and removes the directory when the command ends, whatever its exit status.
#
#   scripts/with-postgres.sh swift test --no-parallel
#   scripts/with-postgres.sh bash        # a shell with a cluster, for working on the PostgreSQL backend
set -euo pipefail

bin="${LOYALTY_PG_BIN:-}"
if [ -z "$bin" ]; then
    for candidate in /usr/lib/postgresql/*/bin; do
        [ -x "$candidate/initdb" ] && bin="$candidate"
    done
fi
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "with-postgres: no PostgreSQL server binaries (initdb) found; install the postgresql package" >&2
    exit 1
fi

root=$(mktemp -d /tmp/loyalty-pg.XXXXXX)
chmod 755 "$root"
as_owner=()
if [ "$(id -u)" = 0 ]; then
    chown postgres "$root"
    as_owner=(runuser -u postgres --)
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')

stop() {
    "${as_owner[@]}" "$bin/pg_ctl" -D "$root/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$root"
}
trap stop EXIT

mkdir -p "$root/socket"
[ "$(id -u)" = 0 ] && chown postgres "$root/socket"
"${as_owner[@]}" "$bin/initdb" -D "$root/data" -U loyalty --auth=trust -E UTF8 --locale=C.UTF-8 >"$root/initdb.log" 2>&1 \
    || { cat "$root/initdb.log" >&2; exit 1; }
"${as_owner[@]}" "$bin/pg_ctl" -D "$root/data" -l "$root/server.log" -w \
    -o "-p $port -k $root/socket -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on -c synchronous_commit=on -c shared_buffers=256MB" \
    start >/dev/null || { cat "$root/server.log" >&2; exit 1; }
"${as_owner[@]}" "$bin/psql" -h "$root/socket" -p "$port" -U loyalty -d postgres -q -c "CREATE DATABASE loyalty" >/dev/null

export LOYALTY_TEST_DATABASE_URL="postgres://loyalty@127.0.0.1:$port/loyalty?sslmode=disable"
export LOYALTY_PG_BIN="$bin"
echo "with-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $root)"
status=0
"$@" || status=$?
exit $status
