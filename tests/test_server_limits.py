"""A real `convscope serve` under hostile traffic: oversized request heads are cut off while they are
read, and health checks answer at once while heavy requests fill every compute slot."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import free_port, run_async, wait_until_up

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


def test_a_flood_of_heavy_requests_is_computed_or_refused_in_words_never_queued_past_its_budget(server):
    _, url = server
    results: list[int] = []
    heavy = [threading.Thread(target=heavy_filter_request, args=(url, results)) for _ in range(8)]
    for thread in heavy:
        thread.start()
    for thread in heavy:
        thread.join()
    assert set(results) <= {200, 503} and 200 in results  # the overflow is refused in words, not queued
    assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200


def test_health_checks_and_static_files_never_wait_behind_the_compute_slots(tmp_path, monkeypatch):
    """Every compute slot held by a request that cannot finish until the test lets it: health checks and
    static files are answered all the same, before any of the held ones."""
    from app.config import Settings
    from app.main import create_app
    from app.routes import arithmetic

    release, entered = threading.Event(), threading.Semaphore(0)
    original = arithmetic.trace_pool2d

    def held(*args, **kwargs):
        entered.release()
        release.wait(60)
        return original(*args, **kwargs)

    monkeypatch.setattr(arithmetic, "trace_pool2d", held)
    app = create_app(Settings(data_dir=tmp_path, threads=2, queue_seconds=30, request_timeout_seconds=60))

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as client:
            pool = [asyncio.create_task(client.post("/api/pool", json={"input": [[1, 2], [3, 4]]})) for _ in range(3)]
            for _ in range(2):  # both slots taken (the third request waits for one)
                assert await asyncio.to_thread(entered.acquire, timeout=30), "a held request never started"
            for _ in range(10):
                assert (await client.get("/healthz")).status_code == 200
                assert (await client.get("/static/css/main.css")).status_code == 200
            assert not any(task.done() for task in pool)  # all of them answered while every slot was held
            release.set()
            return [(await task).status_code for task in pool]

    with TestClient(app):  # its lifespan: the store and the models the routes use
        assert run_async(scenario()) == [200, 200, 200]
