"""The training service's figures on this machine, through a real `convscope serve`:

    .venv/bin/python bench/bench_training.py

1. LeNet, 1 epoch on the 7,200 training digits with the default settings: time from the job's start
   to its first progress event, to its end, and the test accuracy (targets: < 1 s, < 15 s, >= 95%).
2. POST /api/predict?activations=true p50/p95 latency with the server idle, then while a job trains
   on the embedded worker (target: p50 < 50 ms).

Loopback only; the server runs with its defaults (one web worker per core, one embedded worker) on a
temporary data directory, and is stopped at the end.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.architectures import ARCHITECTURES  # noqa: E402
from tests.conftest import free_port, wait_until_up  # noqa: E402

DIGIT = {"pixels": [[0] * 28 for _ in range(4)] + [[0] * 12 + [255] * 4 + [0] * 12 for _ in range(20)] + [[0] * 28] * 4}


def follow(url: str, job_id: str) -> list[tuple[str, dict, float]]:
    events = []
    kind = None
    with httpx.stream("GET", f"{url}/api/models/{job_id}/events", timeout=300) as response:
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:]), time.perf_counter()))
    return events


def latencies(url: str, seconds: float) -> list[float]:
    times = []
    with httpx.Client(timeout=30) as client:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            client.post(f"{url}/api/predict?activations=true", json=DIGIT).raise_for_status()
            times.append(time.perf_counter() - start)
            time.sleep(0.05)  # a person drawing: a guess every ~100 ms
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"p50 {statistics.median(ordered) * 1e3:6.1f} ms, p95 {p95 * 1e3:6.1f} ms over {len(times)} requests"


def main() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CONVSCOPE_DATA_DIR": tempfile.mkdtemp(prefix="convscope-bench-"),
        "CONVSCOPE_LOG_LEVEL": "warning",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=ROOT, env=env, start_new_session=True
    )
    try:
        wait_until_up(url, server)
        time.sleep(1.0)  # let the embedded worker start
        print(f"{os.cpu_count()} cores; server on {url} with its defaults")

        job = httpx.post(f"{url}/api/models", json={"architecture": ARCHITECTURES["lenet"]}).json()
        events = follow(url, job["id"])
        start = next(t for kind, _, t in events if kind == "started")
        first = next(t for kind, _, t in events if kind == "progress")
        end = events[-1][2]
        done = events[-1][1]
        print(
            f"LeNet, 1 epoch on 7,200 digits: first progress {first - start:.2f} s after the start, "
            f"done {end - start:.1f} s after it, test accuracy {done['test_accuracy']:.2%}"
        )

        idle = latencies(url, 5)
        print(f"predict + activations, idle:             {summary(idle)}")
        busy_job = httpx.post(f"{url}/api/models", json={"architecture": ARCHITECTURES["lenet"], "epochs": 10}).json()
        measured: list[float] = []
        thread = threading.Thread(target=lambda: measured.extend(latencies(url, 8)))
        time.sleep(1.0)
        thread.start()
        thread.join()
        state = httpx.get(f"{url}/api/models/{busy_job['id']}").json()["status"]
        print(f"predict + activations, while a job trains: {summary(measured)} (the job was {state} at the end)")
        httpx.post(f"{url}/api/models/{busy_job['id']}/cancel")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
