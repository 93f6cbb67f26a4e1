#!/usr/bin/env bash
# Run the test suite against a throwaway PostgreSQL 15 + PostGIS 3 cluster.
#
#   scripts/pg-test.sh [pytest args...]     e.g. scripts/pg-test.sh -n 2 -x -q
#
# Starts a private cluster (initdb in a temporary folder, loopback only, a free port,
# fsync=off: test data only), runs pytest with WANGGE_TEST_DATABASE_URL pointing at it
# (tests/databases.py gives each test a fresh database there), stops and deletes the
# cluster, and exits with pytest's status. initdb refuses root, so as root the cluster
# runs as the `postgres` user. Needs the Debian packages postgresql and
# postgresql-15-postgis-3 (scripts/system-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  echo "pg-test: PostgreSQL server binaries not found; run: bash scripts/system-deps.sh" >&2
  exit 1
fi
PORT=${WANGGE_PG_TEST_PORT:-$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
DIR=$(mktemp -d /tmp/wangge-pg-test.XXXXXX)
RUN=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres "$DIR"
  RUN=(runuser -u postgres --)
fi
cleanup() {
  "${RUN[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
"${RUN[@]}" "$BIN/initdb" -D "$DIR/data" -A trust -U postgres -E UTF8 >/dev/null
"${RUN[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w start \
  -o "-k $DIR -p $PORT -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" >/dev/null
echo "pg-test: PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT"
export WANGGE_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
set +e
"$PYTHON" -m pytest "$@"
status=$?
set -e
exit $status
