#!/usr/bin/env bash
# Start (or stop) a throwaway PostgreSQL cluster on 127.0.0.1 for the tests.
#   pg-scratch.sh start [DIR]  -> makes DIR (default: a new temporary folder), picks a free port,
#                                 starts the server, prints "DIR URL"
#   pg-scratch.sh stop DIR     -> stops that server and removes DIR
# Its settings are arguments, never DUTYGW_* variables (those are the gateway's own overrides).
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "pg-scratch: PostgreSQL is not installed" >&2; exit 1; }

as_postgres() {
  # from /, which the postgres user can always enter (not root's checkout)
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "${1:-start}" in
  start)
    root=${2:-$(mktemp -d /tmp/dutygw-pg.XXXXXX)}
    mkdir -p "$root"
    [ "$(id -u)" = 0 ] && chown postgres: "$root"
    as_postgres "$bin/initdb" -D "$root/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
    for _ in 1 2 3 4 5; do
      port=$(free_port)
      if as_postgres "$bin/pg_ctl" -D "$root/data" -l "$root/log" -w -t 120 \
          -o "-p $port -k $root -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null; then
        echo "$root postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
        exit 0
      fi
    done
    echo "pg-scratch: the server would not start; see $root/log" >&2
    exit 1
    ;;
  stop)
    root=${2:?usage: pg-scratch.sh stop DIR}
    as_postgres "$bin/pg_ctl" -D "$root/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$root"
    ;;
esac
