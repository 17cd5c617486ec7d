#!/usr/bin/env bash
# Run the whole test suite with the project's virtual environment (made by scripts/setup.sh):
# on SQLite always, and on a real PostgreSQL server that this script starts (a scratch cluster
# in a new temporary folder, on a free port) when PostgreSQL is installed. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || { echo "test.sh: no .venv/ here; run scripts/setup.sh first" >&2; exit 1; }
# the venv's own tools (asterisklint, dutygw) first, as an activated venv would have them
export PATH="$PWD/.venv/bin:$PATH"

if [ -z "${TEST_DUTYGW_POSTGRES_URL:-}" ]; then
  if started=$(scripts/pg-scratch.sh start); then
    pg_dir=${started%% *}
    export TEST_DUTYGW_POSTGRES_URL=${started#* }
    trap 'scripts/pg-scratch.sh stop "$pg_dir"' EXIT
  else
    echo "test.sh: no PostgreSQL server could be started; its tests are reported as skipped" >&2
  fi
fi
"$python" -m pytest "$@"
