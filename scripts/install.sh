#!/usr/bin/env bash
# Installs convscope into .venv from a lock of exact, hashed versions: requirements.lock (the app) or, with
# "test", requirements-test.lock (the app and what its tests need). Only when .venv is new, or pyproject.toml
# or the lock changed since the last install (a stamp in .venv); otherwise it touches nothing, the network
# least of all, so the app starts on a machine with no route out. Called by serve.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

lock=requirements.lock
[ "${1:-}" = "test" ] && lock=requirements-test.lock

fingerprint() { cat pyproject.toml "$1" | sha256sum | cut -d' ' -f1; }
installed() { [ -f ".venv/.installed-$1" ] && [ "$(cat ".venv/.installed-$1")" = "$(fingerprint "$1")" ]; }

# the test lock holds every package of the app's: either stamp will do for the app
if installed "$lock" || { [ "$lock" = requirements.lock ] && installed requirements-test.lock; }; then
  exit 0
fi
echo "installing convscope and its dependencies into .venv from $lock (once; a minute or two)" >&2
"$PYTHON" -m pip install --progress-bar on --require-hashes --no-deps -r "$lock" >&2
# the project itself, in place: its build backend (setuptools) is in the lock, so no index is asked for it
"$PYTHON" -m pip install --quiet --no-deps --no-build-isolation -e . >&2
fingerprint "$lock" > ".venv/.installed-$lock"
