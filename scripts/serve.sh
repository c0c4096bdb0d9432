#!/usr/bin/env bash
# Installs convscope into .venv (once) and starts it on http://127.0.0.1:8000.
# Extra arguments go to `convscope serve` (e.g. --port 9000 --workers 1).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
"$PYTHON" -m pip install --quiet -e .
exec .venv/bin/convscope serve "$@"
