"""A class trains while the projector predicts: `convscope serve` (2 web workers and its training worker) on
loopback, predictions timed idle, then while 30 students (each a workspace of their own) submit a tiny
network and follow it to its end.

    .venv/bin/python bench/bench_classroom.py
    .venv/bin/python bench/bench_classroom.py --students 60

It prints predict's p50, p90 and p99 idle and while the class trains, their ratios, and how long the
students' first jobs waited. (tests/jobs/test_classroom.py checks the behaviour: fairness, every job
ending, every prediction answered; the figures are this script's.)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from servers import client_for, percentile, predict_latencies, serving

TINY = {
    "input": [1, 28, 28],
    "classes": 10,
    "layers": [
        {"type": "conv", "filters": 4, "kernel_size": 5},
        {"type": "relu"},
        {"type": "maxpool", "kernel_size": 4},
        {"type": "flatten"},
        {"type": "linear", "units": 10},
    ],
}


def student(url: str, number: int) -> float:
    """One student's job, followed to its end: how long it waited in the queue."""
    client = client_for(url)
    job = client.post("/api/models", json={"architecture": TINY, "train_size": 2000, "epochs": 1, "name": f"s{number}"})
    job.raise_for_status()
    while (record := client.get(f"/api/models/{job.json()['id']}").json())["status"] in ("queued", "running"):
        time.sleep(0.5)
    return float(record["started"] - record["created"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir, serving(data_dir, 2) as (url, _):
        idle = predict_latencies(url, args.requests)
        busy: list[float] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                busy.extend(predict_latencies(url, 10, pause=0.05))

        with ThreadPoolExecutor(args.students + 1) as pool:
            watcher = pool.submit(watch)
            waits = list(pool.map(student, [url] * args.students, range(args.students)))
            stop.set()
            watcher.result()
    busy.sort()
    for name, times in (("idle", idle), ("class training", busy)):
        print(
            f"predict {name:15s} p50 {percentile(times, 0.5):6.1f} ms  p90 {percentile(times, 0.9):6.1f} ms  "
            f"p99 {percentile(times, 0.99):6.1f} ms  ({len(times)} requests)"
        )
    print(
        f"p99 ratio {percentile(busy, 0.99) / percentile(idle, 0.99):.2f}x; first jobs waited median "
        f"{statistics.median(waits):.1f} s, longest {max(waits):.1f} s"
    )


if __name__ == "__main__":
    main()
