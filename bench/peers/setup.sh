#!/usr/bin/env bash
# Install the peers the benchmarks run beside runner, each in a venv of its own under
# bench/peers/ (ignored by git): APScheduler 3.11 with SQLAlchemy (its SQLAlchemyJobStore
# on SQLite) and APScheduler 4 (pre-release) with SQLAlchemy and aiosqlite.
set -euo pipefail
cd "$(dirname "$0")"
make_venv() {
  local dir=$1; shift
  if [ ! -x "$dir/bin/python" ]; then
    python3 -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --upgrade pip
  fi
  "$dir/bin/python" -m pip install --quiet "$@"
}
make_venv .venv-aps3 'apscheduler==3.11.*' 'sqlalchemy>=2' asyncpg
make_venv .venv-aps4 --pre 'apscheduler>=4.0.0a1' 'sqlalchemy[asyncio]>=2' aiosqlite asyncpg sniffio
.venv-aps3/bin/python -c 'import apscheduler; print("APScheduler", apscheduler.__version__)'
.venv-aps4/bin/python -c 'import importlib.metadata as m; print("APScheduler", m.version("apscheduler"))'
