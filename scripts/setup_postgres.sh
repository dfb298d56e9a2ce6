#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the shared-state tests ([shared] postgres):
# Debian's postgresql package (installed if missing), a new cluster in /var/tmp/tanya-pg-PORT,
# listening on 127.0.0.1 only, with password authentication for the role `tanya`.
#   scripts/setup_postgres.sh start   # idempotent; prints the admin URL as its last line
#   scripts/setup_postgres.sh stop
# Tests create a database of their own under that role and drop it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

PORT="${TANYA_PG_PORT:-16432}"
# Not under $HOME: the server runs as `postgres` when we are root, and root's home is closed.
DIR="${TANYA_PG_DIR:-/var/tmp/tanya-pg-$PORT}"
PASSWORD="tanya-test-only"
URL="postgres://tanya:$PASSWORD@127.0.0.1:$PORT/postgres"

bin=""
for v in 17 16 15; do
  if [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ]; then bin="/usr/lib/postgresql/$v/bin"; break; fi
done
if [ -z "$bin" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "postgres: installing Debian's postgresql" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  for v in 17 16 15; do
    if [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ]; then bin="/usr/lib/postgresql/$v/bin"; break; fi
  done
fi
[ -n "$bin" ] || { echo "postgres: no pg_ctl after installing postgresql" >&2; exit 1; }

# The server refuses to run as root: run it as the package's `postgres` user then.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-start}" in
  start)
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
      rm -rf "$DIR"
      mkdir -p "$DIR"
      [ "$(id -u)" -ne 0 ] || chown postgres "$DIR"
      pwfile="$(mktemp)"
      echo "$PASSWORD" >"$pwfile"
      chmod 644 "$pwfile"
      as_owner "$bin/initdb" -D "$DIR/data" -U tanya --pwfile="$pwfile" -A scram-sha-256 \
        --no-sync >/dev/null
      rm -f "$pwfile"
    fi
    if ! as_owner "$bin/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
      as_owner "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$DIR -c max_connections=200 -c fsync=on" \
        start >/dev/null
    fi
    echo "postgres: running on 127.0.0.1:$PORT ($DIR)" >&2
    echo "$URL"
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
