"""What the server benchmarks share: a `convscope serve` of their own on loopback, a workspace client, the
server's CPU time, percentiles."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PIXELS = {"pixels": [[0] * 8] * 2 + [[0, 0, 0, 255, 255, 0, 0, 0]] * 4 + [[0] * 8] * 2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(data_dir: str, workers: int, **env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`convscope serve` on a free loopback port with ``env`` set: (its URL, its process); stopped after."""
    port = free_port()
    environment = {**os.environ, "CONVSCOPE_DATA_DIR": data_dir, "CONVSCOPE_LOG_LEVEL": "warning", **env}
    args = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen([*args, "--workers", str(workers)], cwd=ROOT, env=environment, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        yield url, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def client_for(url: str) -> httpx.Client:
    """A workspace of its own, as a script keeps one: its bearer token."""
    token = httpx.post(f"{url}/api/workspace", timeout=10).json()["token"]
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its children, from /proc."""
    total, pids = 0, [pid]
    while pids:
        current = pids.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            pids.extend(int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def percentile(sorted_times: list[float], share: float) -> float:
    """In milliseconds, of seconds sorted ascending."""
    return sorted_times[int(share * (len(sorted_times) - 1))] * 1000


def predict_latencies(url: str, count: int, pause: float = 0.02) -> list[float]:
    """``count`` predictions one after another: their latencies in seconds, sorted."""
    times = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(count):
            started = time.perf_counter()
            client.post("/api/predict", json=PIXELS).raise_for_status()
            times.append(time.perf_counter() - started)
            time.sleep(pause)
    return sorted(times)
