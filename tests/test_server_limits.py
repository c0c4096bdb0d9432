"""A real `convscope serve` under hostile traffic: oversized request heads are cut off while they are
read, and health checks answer at once while heavy requests fill every compute slot."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    env = {
        **os.environ,
        "CONVSCOPE_DATA_DIR": str(tmp_path_factory.mktemp("limits")),
        "CONVSCOPE_EMBEDDED_WORKER": "false",
        "CONVSCOPE_LOG_LEVEL": "warning",
    }
    args = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, process, seconds=30)
    yield port, url
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


def raw_exchange(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        try:
            conn.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while we were still sending: what we want
        try:
            return conn.recv(4096)
        except ConnectionResetError:
            return b""


def test_a_huge_header_is_refused_while_it_is_read(server):
    port, url = server
    answer = raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (2 << 20) + b"\r\n\r\n")
    assert answer == b"" or answer.split(b" ", 2)[1] in (b"400", b"431")
    many = b"".join(b"X-%d: 1\r\n" % k for k in range(10_000))
    answer = raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert answer == b"" or answer.split(b" ", 2)[1] in (b"400", b"431")
    assert httpx.get(f"{url}/healthz").status_code == 200  # the worker is fine


def heavy_filter_request(url: str, results: list) -> None:
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (768, 1024, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    files = {"file": ("p.png", buffer.getvalue(), "image/png")}
    response = httpx.post(
        f"{url}/api/filters/apply", files=files, data={"kernel": json.dumps([[1] * 15] * 15)}, timeout=60
    )
    results.append(response.status_code)


def test_health_checks_and_static_files_never_wait_behind_the_compute_slots(server):
    _, url = server
    results: list[int] = []
    heavy = [threading.Thread(target=heavy_filter_request, args=(url, results)) for _ in range(8)]
    for thread in heavy:
        thread.start()
    time.sleep(0.3)
    slowest = 0.0
    for _ in range(20):
        started = time.monotonic()
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        assert httpx.get(f"{url}/static/css/main.css", timeout=10).status_code == 200
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.05)
    for thread in heavy:
        thread.join()
    # a heavy request takes seconds here; a health check waiting behind one would show it
    assert slowest < 1.0, f"slowest health + static pair took {slowest:.2f} s"
    assert set(results) <= {200, 503} and 200 in results  # the overflow is refused in words, not queued
