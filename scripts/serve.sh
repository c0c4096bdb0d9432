#!/usr/bin/env bash
# Installs convscope into .venv (once, from requirements.lock) and starts it on http://127.0.0.1:8000.
# Extra arguments go to `convscope serve` (e.g. --port 9000 --workers 1, or --host 0.0.0.0 for a room).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
echo "starting convscope: http://127.0.0.1:8000 unless --port or CONVSCOPE_PORT says otherwise" >&2
exec .venv/bin/convscope serve "$@"
