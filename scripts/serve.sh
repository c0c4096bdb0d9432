#!/usr/bin/env bash
# Installs convscope into .venv (once) and starts it on http://127.0.0.1:8000.
# Extra arguments go to `convscope serve` (e.g. --port 9000 --workers 1).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
if ! .venv/bin/python -c 'import app, fastapi, numpy' 2>/dev/null; then
  echo "installing convscope and its dependencies into .venv (once; a minute or two)" >&2
  "$PYTHON" -m pip install --progress-bar on -e . >&2
else
  "$PYTHON" -m pip install --quiet -e .
fi
echo "starting convscope: http://127.0.0.1:8000 unless --port or CONVSCOPE_PORT says otherwise" >&2
exec .venv/bin/convscope serve "$@"
