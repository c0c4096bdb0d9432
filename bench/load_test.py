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
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

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


class Connection:
    """A bare HTTP/1.1 keep-alive connection: a few microseconds of client CPU per request, so that
    on a 2-core machine the client takes as little as possible from the server it measures."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            if name.strip().lower() == b"connection" and value.strip().lower() == b"close":
                await self.reader.readexactly(length)
                self.close()
                return status
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def http_request(method: str, path: str, host: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "convscope-load-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


async def run(url: str, raw: bytes, total: int, concurrency: int, time_limit: float):
    parsed = urlparse(url)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    queue = iter(range(total))
    deadline = time.perf_counter() + time_limit

    async def worker():
        connection = Connection(parsed.hostname, parsed.port)
        for _ in queue:
            if time.perf_counter() > deadline:
                break
            start = time.perf_counter()
            try:
                status = await asyncio.wait_for(connection.request(raw), 30)
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as error:
                errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                connection.close()
                continue
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1
            latencies.append(time.perf_counter() - start)
        connection.close()

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


def big_photo_jpeg(width: int = 4000, height: int = 3000) -> bytes:
    """A phone-sized 12 MP photo: the heaviest thing the playground is sent."""
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    picture = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def worker_rss_mb(pid: int) -> dict[int, float]:
    """Resident memory of each uvicorn worker (the server's children that are not the training worker)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return {}
    sizes = {}
    for child in map(int, children):
        try:
            command = Path(f"/proc/{child}/cmdline").read_text()
            if "worker" in command.split("\0")[-2:]:
                continue
            status = Path(f"/proc/{child}/status").read_text()
            sizes[child] = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024
        except (FileNotFoundError, StopIteration):
            continue
    return sizes


async def health_under_load(url: str, pid: int | None, seconds: float = 10.0, heavy_clients: int = 8) -> None:
    """/healthz every 50 ms while `heavy_clients` keep 12 MP photos going through a 15x15 kernel, more than
    the compute slots take: health latency, how the heavy requests were answered, each worker's peak memory."""
    parsed = urlparse(url)
    host = parsed.netloc
    kernel = json.dumps([[1] * 15] * 15)
    body, content_type = multipart({"kernel": kernel}, "file", "photo.jpg", big_photo_jpeg())
    heavy = http_request("POST", "/api/filters/apply", host, body, content_type)
    health = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    deadline = time.perf_counter() + seconds
    statuses: dict[int, int] = {}
    health_latencies: list[float] = []
    health_errors: dict[str, int] = {}
    peak: dict[int, float] = {}

    async def heavy_client():
        connection = Connection(parsed.hostname, parsed.port)
        while time.perf_counter() < deadline:
            try:
                status = await asyncio.wait_for(connection.request(heavy), 60)
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                status = 0
                connection.close()
            statuses[status] = statuses.get(status, 0) + 1
        connection.close()

    async def prober():
        connection = Connection(parsed.hostname, parsed.port)
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                status = await asyncio.wait_for(connection.request(health), 10)
                if status != 200:
                    health_errors[str(status)] = health_errors.get(str(status), 0) + 1
                health_latencies.append(time.perf_counter() - start)
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as error:
                health_errors[type(error).__name__] = health_errors.get(type(error).__name__, 0) + 1
                connection.close()
            await asyncio.sleep(0.05)
        connection.close()

    async def sampler():
        while pid and time.perf_counter() < deadline:
            for worker, size in worker_rss_mb(pid).items():
                peak[worker] = max(peak.get(worker, 0.0), size)
            await asyncio.sleep(0.1)

    await asyncio.gather(*(heavy_client() for _ in range(heavy_clients)), prober(), sampler())
    print(report("healthz under heavy load", health_latencies, health_errors, seconds))
    print(f"  heavy 12 MP, 15x15 filter requests from {heavy_clients} clients, answered: {statuses}")
    if peak:
        print("  peak memory per web worker: " + ", ".join(f"{size:.0f} MB" for size in peak.values()))


def start_server(workers: int | None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers:
        command += ["--workers", str(workers)]
    env = {
        **os.environ,
        "CONVSCOPE_LOG_LEVEL": "warning",
        "CONVSCOPE_DATA_DIR": tempfile.mkdtemp(prefix="convscope-load-"),
    }
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:  # the standard library only
                if response.status == 200:
                    return process, url
        except OSError:
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

    host = urlparse(url).netloc
    predict = http_request(
        "POST",
        "/api/predict?activations=true",
        host,
        json.dumps({"image": drawing_data_url()}).encode(),
        "application/json",
    )
    body, content_type = multipart({"preset": "gaussian_blur"}, "file", "photo.png", photo_png())
    blur = http_request("POST", "/api/filters/apply", host, body, content_type)

    await run(url, predict, 100, 4, 30)  # warm-up
    print(f"server {url}, concurrency {args.concurrency}, {args.requests} requests per scenario")
    for name, raw in (("predict + activations", predict), ("filter 256x256 gaussian", blur)):
        print(report(name, *await run(url, raw, args.requests, args.concurrency, args.time_limit)))
    await health_under_load(url, process.pid if process else None)
    if process and args.memory_requests:
        before = server_rss_mb(process.pid)
        latencies, errors, elapsed = await run(
            url, predict, args.memory_requests, args.concurrency, args.time_limit * 4
        )
        after = server_rss_mb(process.pid)
        print(report(f"predict x{len(latencies)}", latencies, errors, elapsed))
        print(f"server memory (all workers): {before:.0f} MB before, {after:.0f} MB after {len(latencies)} predictions")
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
