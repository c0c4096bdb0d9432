"""Load test: `convscope serve` on loopback, hit by an asyncio client at fixed concurrency.

    .venv/bin/python bench/load_test.py                      # starts its own server, default workers
    .venv/bin/python bench/load_test.py --workers 1 --requests 500
    .venv/bin/python bench/load_test.py --url http://127.0.0.1:8000   # an already running server

For each scenario (a drawing's prediction with all activations, as the drawing page sends it, and a
Gaussian blur of a 256x256 photo, as the playground sends it) it prints throughput, latency
percentiles and errors, then the server's memory before and after --memory-requests predictions.
Only loopback addresses are accepted; every loop is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]


def drawing_data_url() -> str:
    canvas = Image.new("RGB", (280, 280), "white")
    ImageDraw.Draw(canvas).line([(140, 40), (140, 240)], fill="black", width=20)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def photo_png() -> bytes:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:256, 0:256]
    rgb = np.stack([x, y, (x + y) // 2], axis=-1) + rng.integers(0, 30, (256, 256, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def server_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its children (uvicorn's workers), from /proc."""
    pids, total = [pid], 0
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            pids.extend(int(c) for c in children)
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            continue
    return total / 1024


async def run(client: httpx.AsyncClient, make_request, total: int, concurrency: int, time_limit: float):
    latencies: list[float] = []
    errors: dict[str, int] = {}
    queue = iter(range(total))
    deadline = time.perf_counter() + time_limit

    async def worker():
        for _ in queue:
            if time.perf_counter() > deadline:
                return
            start = time.perf_counter()
            try:
                response = await make_request(client)
                if response.status_code != 200:
                    errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1
            except httpx.HTTPError as error:
                errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                continue
            latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - started


def report(name: str, latencies: list[float], errors: dict, elapsed: float) -> str:
    if not latencies:
        return f"{name:<28} no successful requests; errors {errors}"
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return (
        f"{name:<28} {len(latencies) / elapsed:8.1f} req/s   p50 {q[49] * 1e3:7.1f} ms   "
        f"p95 {q[94] * 1e3:7.1f} ms   p99 {q[98] * 1e3:7.1f} ms   errors {sum(errors.values())} {errors or ''}"
    )


def start_server(workers: int | None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers:
        command += ["--workers", str(workers)]
    env = {**os.environ, "CONVSCOPE_LOG_LEVEL": "warning"}
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


async def main_async(args) -> None:
    process = None
    if args.url:
        host = urlparse(args.url).hostname
        if host not in ("127.0.0.1", "localhost", "::1") and not (host or "").startswith("127."):
            raise SystemExit("load tests only target loopback addresses")
        url = args.url
    else:
        process, url = start_server(args.workers)

    predict_body = {"image": drawing_data_url()}
    photo = photo_png()

    def predict(client):
        return client.post("/api/predict?activations=true", json=predict_body)

    def blur(client):
        return client.post(
            "/api/filters/apply", files={"file": ("p.png", photo, "image/png")}, data={"preset": "gaussian_blur"}
        )

    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        await run(client, predict, 50, 4, 30)  # warm-up
        print(f"server {url}, concurrency {args.concurrency}, {args.requests} requests per scenario")
        for name, make in (("predict + activations", predict), ("filter 256x256 gaussian", blur)):
            print(report(name, *await run(client, make, args.requests, args.concurrency, args.time_limit)))
        if process and args.memory_requests:
            before = server_rss_mb(process.pid)
            latencies, errors, elapsed = await run(
                client, predict, args.memory_requests, args.concurrency, args.time_limit * 4
            )
            after = server_rss_mb(process.pid)
            print(report(f"predict x{len(latencies)}", latencies, errors, elapsed))
            print(
                f"server memory (all workers): {before:.0f} MB before, {after:.0f} MB after "
                f"{len(latencies)} predictions"
            )
    if process:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an already running server on loopback (default: start one)")
    parser.add_argument("--workers", type=int, help="workers for the server this script starts")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--memory-requests", type=int, default=10_000)
    parser.add_argument("--time-limit", type=float, default=120, help="seconds per scenario at most")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
