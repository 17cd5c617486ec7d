#!/usr/bin/env bash
# Run the whole test suite: on SQLite always, and on a real PostgreSQL server that this
# script starts (a scratch cluster in a temporary folder) when PostgreSQL is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TEST_DUTYGW_POSTGRES_URL:-}" ]; then
  if url=$(scripts/pg-scratch.sh start); then
    export TEST_DUTYGW_POSTGRES_URL="$url"
    trap 'scripts/pg-scratch.sh stop' EXIT
  else
    echo "test.sh: no PostgreSQL server could be started; its tests are reported as skipped" >&2
  fi
fi
python3 -m pytest "$@"
