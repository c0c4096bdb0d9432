#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite:
#   Debian's Chromium for the browser tests (never a downloaded browser) and redis-server
#   (the tests start and stop their own on a free loopback port),
#   convscope and what its tests need in .venv, from requirements-test.lock (only when that or pyproject.toml
#   changed), axe-core from npm (package-lock.json), then ruff, mypy and pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k lecture).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's chromium for the browser tests, redis-server for the many-machines store
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v npm >/dev/null || missing+=(npm)
command -v curl >/dev/null || missing+=(curl)  # the README's examples are run as written
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian's ${missing[*]} for the tests" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

scripts/install.sh test

# axe-core, for the accessibility tests, from the npm registry at the version package-lock.json pins
if [ ! -f node_modules/axe-core/axe.min.js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

.venv/bin/ruff check app engine tests bench
.venv/bin/ruff format --check app engine tests bench
.venv/bin/mypy
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit "$status"
