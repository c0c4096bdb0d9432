"""Real servers for the training service: `convscope serve` (2 uvicorn workers, its embedded
training worker, the SQLite store), and a real `redis-server` with a separate `convscope worker`."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from engine.architectures import ARCHITECTURES
from tests.conftest import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[2]
TINY_DIGITS = ARCHITECTURES["tiny"]  # one conv layer: seconds to train


@dataclass
class Process:
    args: list[str]
    env: dict[str, str]
    popen: subprocess.Popen | None = None
    log: Path | None = None  # where its stderr (the JSON log lines) goes; inherited when None

    def start(self) -> Process:
        # a process group of its own, so that stopping it stops its children (the embedded worker)
        stderr = self.log.open("ab") if self.log else None
        self.popen = subprocess.Popen(self.args, cwd=ROOT, env=self.env, start_new_session=True, stderr=stderr)
        if stderr:
            stderr.close()  # the child holds its own copy
        return self

    def log_lines(self) -> list[dict]:
        """The JSON lines logged so far (the others, a stray print, are left out)."""
        lines = []
        for line in self.log.read_text().splitlines() if self.log else []:
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
        return lines

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


def serve(env: dict[str, str], port: int, workers: int = 2, log: Path | None = None) -> Process:
    args = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = Process([*args, "--workers", str(workers)], env, log=log).start()
    wait_until_up(f"http://127.0.0.1:{port}", process.popen)
    return process


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "CONVSCOPE_DATA_DIR": str(data_dir), "CONVSCOPE_LOG_LEVEL": "warning", **extra}


def workspace_client(url: str) -> httpx.Client:
    """A client of its own workspace, as a script uses one: POST /api/workspace, then the bearer token."""
    token = httpx.post(f"{url}/api/workspace", timeout=10).json()["token"]
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def read_events(
    client: httpx.Client, job_id: str, last_event_id: int | None = None, timeout: float = 120
) -> list[tuple]:
    """(id, event, data, seconds since the stream opened) for each event until the stream closes."""
    headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    events, current = [], {}
    started = time.monotonic()
    with client.stream("GET", f"/api/models/{job_id}/events", headers=headers, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and current:
                events.append((current["id"], current["event"], current["data"], time.monotonic() - started))
                current = {}
            assert time.monotonic() - started < timeout, "the stream did not close in time"
    return events


def wait_for_status(client: httpx.Client, job_id: str, statuses: tuple[str, ...], seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.get(f"/api/models/{job_id}", timeout=10).json()
        if job["status"] in statuses:
            return job
        time.sleep(0.2)
    raise AssertionError(f"{job_id} did not reach {statuses} in {seconds} s (it is {job['status']})")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A real redis-server on a free loopback port, with nothing saved to disk; stopped afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing: scripts/test.sh installs Debian's redis-server")
        pytest.skip("redis-server is not installed (scripts/test.sh installs it)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*args, "--dir", str(folder)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    import redis

    client = redis.Redis(port=port)
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)
