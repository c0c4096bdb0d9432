# Sourced by serve.sh and test.sh: makes .venv with Python >= 3.11, installing Debian's venv module if missing.
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "convscope needs Python 3.11 or newer; python3 is $(python3 --version 2>&1)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    rm -rf .venv
    echo "python3 -m venv failed: installing Debian's python3-venv" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv
    python3 -m venv .venv
  fi
fi
PYTHON=.venv/bin/python
