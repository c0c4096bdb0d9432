"""Shared helpers: the in-repo MNIST sample, a free loopback port, waiting for a started server."""

import asyncio
import contextlib
import io
import socket
import subprocess
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
from PIL import Image, ImageDraw

SAMPLE_PATH = Path(__file__).parent / "data" / "mnist-sample.npz"

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    """Returns once ``url``/healthz answers 200; a server that exits or stays silent for ``seconds``
    fails the caller (and is killed, so nothing is left running)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited with {process.returncode}"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"{url} did not come up in {seconds} s")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a thread of its own: the browser tests' Playwright may hold this thread's event loop
    (``asyncio.run`` refuses to start inside a running one)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def status_bytes(pid: int, field: str) -> int:
    """A /proc/<pid>/status figure (VmRSS, VmHWM) in bytes, 0 if the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    return 0


def a_few_lines(side: int = 5600) -> bytes:
    """A 5600x5600 PNG of five thick strokes: about 50 KB as a file, 31 MB once decoded."""
    image = Image.new("L", (side, side), "white")
    pen = ImageDraw.Draw(image)
    for k in range(5):
        pen.line((500 + 900 * k, 400, 900 * k + 900, 5200), fill="black", width=120)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
