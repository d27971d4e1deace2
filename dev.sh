#!/usr/bin/env bash
# parkmon set-up for a fresh Debian/Ubuntu machine. Two commands:
#   ./dev.sh demo   installs what the platform needs and runs `parkmon demo` (simulated park -> live share)
#   ./dev.sh test   installs what the tests need (TimescaleDB built from ../shared/vendor: tests/build_timescaledb.sh)
#                   and runs lint, type checks, the benchmarks' short runs and the test suite
# It uses apt-get (through sudo when not root) and a virtualenv in .venv.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> apt-get install ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# parkmon needs Python 3.11 or newer (Debian 12 has 3.11; Ubuntu 22.04's python3 is 3.10: install python3.11
# and say PYTHON=python3.11, or use Ubuntu 24.04)
PYTHON=${PYTHON:-python3}

venv() {
  local extra=$1
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "parkmon needs Python >= 3.11; $PYTHON is $("$PYTHON" --version 2>&1 || echo missing)." >&2
    echo "On Ubuntu 22.04: sudo apt-get install python3.11 python3.11-venv, then PYTHON=python3.11 ./dev.sh ..." >&2
    exit 2
  fi
  if ! "$PYTHON" -m venv --help >/dev/null 2>&1; then apt_install python3-venv; fi
  if [ ! -x .venv/bin/python ]; then
    echo "==> $PYTHON -m venv .venv"
    "$PYTHON" -m venv .venv || { apt_install python3-venv; rm -rf .venv; "$PYTHON" -m venv .venv; }
  fi
  echo "==> pip install -e .[$extra]"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[$extra]"
}

case "${1:-}" in
  demo)
    shift
    apt_install mosquitto
    venv server
    exec .venv/bin/parkmon demo "$@"
    ;;
  test)
    shift
    # chromium: the live-board test drives it headless; a CJK font so its screenshot shows the Chinese
    # poppler-data: Adobe's CMaps, the oracle of the PDF glyph test (tests/test_report_glyphs.py)
    # nodejs: the npm peers of the interop tests (node-opcua, modbus-serial: docs/interop.md)
    apt_install mosquitto postgresql socat chromium fonts-wqy-microhei poppler-data nodejs
    # NodeSource's nodejs carries its own npm and conflicts with Debian's npm package: that one only if absent
    command -v npm >/dev/null || apt_install npm
    venv dev
    echo "==> npm peers for the driver interop tests (tests/js-peers, docs/interop.md)"
    npm ci --omit=optional --no-audit --no-fund --prefix tests/js-peers >/dev/null
    echo "==> npm peer for the Sparkplug B tests (tests/js: Eclipse Tahu's sparkplug-client)"
    npm ci --no-audit --no-fund --prefix tests/js >/dev/null
    # mosquitto and PostgreSQL are started by the tests themselves on free loopback ports; the PostgreSQL
    # servers preload TimescaleDB, built here from ../shared/vendor (PARKMON_VENDOR_DIR) when not installed
    echo "==> TimescaleDB for the [timescaledb] test variants (tests/build_timescaledb.sh)"
    ts_log=$(mktemp)
    if ! tests/build_timescaledb.sh 2>&1 | tee "$ts_log"; then
      # the tests name this reason in their skip message; the rest of the run goes on without it
      PARKMON_TIMESCALEDB_BUILD_FAILED=$(sed -n 's/^!!! TimescaleDB not built: //p' "$ts_log" | tail -1)
      export PARKMON_TIMESCALEDB_BUILD_FAILED=${PARKMON_TIMESCALEDB_BUILD_FAILED:-"tests/build_timescaledb.sh failed"}
      echo "!!! the [timescaledb] test variants will skip: $PARKMON_TIMESCALEDB_BUILD_FAILED"
    fi
    rm -f "$ts_log"
    echo "==> ruff check"
    .venv/bin/ruff check .
    echo "==> mypy (strict)"
    .venv/bin/mypy
    echo "==> import-linter: layers only point down (pyproject.toml [tool.importlinter], docs/architecture.md)"
    .venv/bin/lint-imports --no-cache
    echo "==> a gateway installs parkmon[edge] alone: no server library, and parkmon edge works"
    rm -rf .venv-edge && "$PYTHON" -m venv .venv-edge
    .venv-edge/bin/python -m pip install -q ".[edge]"
    .venv-edge/bin/python -c "import importlib.util as u, sys; bad = [m for m in ('sqlalchemy', 'fastapi', 'psycopg', 'uvicorn') if u.find_spec(m)]; sys.exit(f'server libraries installed with [edge]: {bad}' if bad else 0)"
    .venv-edge/bin/parkmon edge check -c deploy/gateway/gateway.example.yaml >/dev/null
    echo "    ok"
    # figures, not pass/fail: speed and memory targets are read from these, never asserted in tests
    echo "==> bench (short runs; full runs: see README)"
    # a benchmark that crashes fails the run (after pytest, so one broken bench hides no test result);
    # a slow figure does not
    failed_benches=()
    .venv/bin/python bench/edge.py --seconds 10 --warmup 3 --outage-seconds 20 \
      || { echo "!!! bench/edge.py failed (exit $?): see above"; failed_benches+=("bench/edge.py"); }
    .venv/bin/python bench/pipeline.py --copies 1 5 --poll 0.5 --seconds 8 --warmup 3 \
      || { echo "!!! bench/pipeline.py failed (exit $?): see above"; failed_benches+=("bench/pipeline.py"); }
    .venv/bin/python bench/ingest_pg.py --preload 300000 --seconds 4 --warmup 2 --limit-seconds 3 --ramp 0.35 \
      --ingest shipped --compress-days 1 \
      || { echo "!!! bench/ingest_pg.py failed (exit $?): see above"; failed_benches+=("bench/ingest_pg.py"); }
    .venv/bin/python bench/scale.py --seconds 2 --expect 100000 --gateways 50 --limit-seconds 2 --bridge-seconds 2 --preload 0 \
      || { echo "!!! bench/scale.py failed (exit $?): see above"; failed_benches+=("bench/scale.py"); }
    .venv/bin/python bench/rollup_chain.py --gateways 1 --points 100 --rounds 1 \
      || { echo "!!! bench/rollup_chain.py failed (exit $?): see above"; failed_benches+=("bench/rollup_chain.py"); }
    .venv/bin/python bench/indicators.py --enterprises 20 --days 31 --raw-enterprises 2 \
      || { echo "!!! bench/indicators.py failed (exit $?): see above"; failed_benches+=("bench/indicators.py"); }
    timeout 600 .venv/bin/python bench/alerts.py --rate 5000 --gateways 20 --trials 6 \
      || { echo "!!! bench/alerts.py failed (exit $?): see above"; failed_benches+=("bench/alerts.py"); }
    timeout 300 .venv/bin/python bench/hj212.py --frames 10000 --loggers 10 --seconds 4 \
      || { echo "!!! bench/hj212.py failed (exit $?): see above"; failed_benches+=("bench/hj212.py"); }
    timeout 300 .venv/bin/python bench/iec104.py --seconds 5 --warmup 2 \
      || { echo "!!! bench/iec104.py failed (exit $?): see above"; failed_benches+=("bench/iec104.py"); }
    timeout 300 .venv/bin/python bench/sparkplug.py --messages 2000 --metrics 100 \
      || { echo "!!! bench/sparkplug.py failed (exit $?): see above"; failed_benches+=("bench/sparkplug.py"); }
    echo "==> pytest (last, so its summary closes the run)"
    status=0
    .venv/bin/python -m pytest -ra "$@" || status=$?
    if [ ${#failed_benches[@]} -gt 0 ]; then
      echo "!!! benchmarks that crashed: ${failed_benches[*]} (their output is above)" >&2
      [ "$status" = 0 ] && status=1
    fi
    exit "$status"
    ;;
  *)
    echo "usage: ./dev.sh demo [parkmon demo options] | ./dev.sh test [pytest options]" >&2
    exit 2
    ;;
esac
