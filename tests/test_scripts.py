"""The README's two commands as a newcomer meets them: once installed, `scripts/serve.sh` starts the app on a
machine with no route to a package index (a school network), and its install step does nothing when
nothing changed."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.conftest import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[1]
NO_INDEX = {
    "PIP_CONFIG_FILE": os.devnull,  # no site-wide index, mirror or find-links either
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple",  # nothing listens there: any download fails at once
    "PIP_NO_CACHE_DIR": "1",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
}


def test_serve_sh_starts_with_no_package_index_once_installed(tmp_path):
    subprocess.run(["scripts/install.sh", "test"], cwd=ROOT, check=True)  # the first install (done already)
    port = free_port()
    env = {**os.environ, **NO_INDEX, "CONVSCOPE_DATA_DIR": str(tmp_path), "CONVSCOPE_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        ["scripts/serve.sh", "--port", str(port), "--workers", "1"], cwd=ROOT, env=env, start_new_session=True
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process, seconds=60)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def test_the_install_step_touches_nothing_when_nothing_changed():
    stamp = ROOT / ".venv" / ".installed-requirements-test.lock"
    subprocess.run(["scripts/install.sh", "test"], cwd=ROOT, check=True)
    before = stamp.stat().st_mtime_ns
    again = subprocess.run(
        ["scripts/install.sh"], cwd=ROOT, env={**os.environ, **NO_INDEX}, capture_output=True, text=True
    )
    assert again.returncode == 0 and again.stderr == "", again.stderr  # the app's lock: the test lock covers it
    assert stamp.stat().st_mtime_ns == before
