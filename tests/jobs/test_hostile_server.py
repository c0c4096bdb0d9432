"""Faults that lose nothing, on real servers: two web servers on one Redis, a Redis outage during
training, SIGKILL and SIGTERM of `convscope serve`, a thousand open event streams, floods of learned
views and attacks past their budget; and through all of it the training worker stays under 1 GB."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.jobs.store import SqliteStore
from engine.architectures import ARCHITECTURES
from engine.cpus import usable_cpus
from tests.conftest import a_few_lines, free_port, status_bytes
from tests.jobs.conftest import TINY_DIGITS, Process, base_env, serve, wait_for_status, workspace_client

PIXELS = {"pixels": [[0] * 8] * 2 + [[0, 0, 0, 255, 255, 0, 0, 0]] * 4 + [[0] * 8] * 2}
QUICK = {"architecture": TINY_DIGITS, "train_size": 600}
WORKER_RSS_LIMIT = 1 << 30
peak_worker_rss: dict[str, int] = {}


def children(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), deepest last."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            kids = (task / "children").read_text().split() if (task / "children").exists() else []
            found += [int(k) for k in kids]
            frontier += [int(k) for k in kids]
    return found


def peak_rss(pid: int) -> int:
    """The process's peak resident memory in bytes (VmHWM), 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def record_worker_rss(server: Process, label: str) -> None:
    """Notes the training worker's peak memory (the `worker` child of serve) for the module's check."""
    for pid in children(server.popen.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in command:
            peak_worker_rss[label] = max(peak_worker_rss.get(label, 0), peak_rss(pid))


def port_is_free(port: int) -> bool:
    """Could a new server listen here? (SO_REUSEADDR, as uvicorn's: closed connections may linger in TIME_WAIT)"""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Redis:
    """A redis-server that keeps its data on disk across a restart (an outage, not a wipe)."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("redis-server is missing: scripts/test.sh installs Debian's redis-server")
            pytest.skip("redis-server is not installed (scripts/test.sh installs it)")
        self.binary, self.folder, self.port = binary, folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        import redis

        client, deadline = redis.Redis(port=self.port), time.monotonic() + 20
        while True:
            try:
                client.ping()
                return
            except (redis.ConnectionError, redis.exceptions.BusyLoadingError):
                assert self.process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture()
def redis_server(tmp_path):
    (tmp_path / "redis").mkdir()
    server = Redis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_two_web_servers_on_one_redis_share_a_workspace_and_its_model(tmp_path, redis_url):
    env = base_env(tmp_path, CONVSCOPE_STORE_URL=redis_url)
    first_port, second_port = free_port(), free_port()
    first = serve(env, first_port, workers=1)
    second = serve({**env, "CONVSCOPE_EMBEDDED_WORKER": "false"}, second_port, workers=1)
    try:
        one = workspace_client(f"http://127.0.0.1:{first_port}")
        job = one.post("/api/models", json=QUICK).json()
        wait_for_status(one, job["id"], ("done",), seconds=90)
        other = httpx.Client(base_url=f"http://127.0.0.1:{second_port}", headers=one.headers, timeout=30)
        assert other.get(f"/api/models/{job['id']}").json()["status"] == "done"
        assert other.post(f"/api/predict?model={job['id']}", json=PIXELS).status_code == 200
        assert job["id"] in [m["id"] for m in other.get("/api/models").json()]
        stranger = workspace_client(f"http://127.0.0.1:{second_port}")
        assert stranger.post(f"/api/predict?model={job['id']}", json=PIXELS).status_code == 404
        record_worker_rss(first, "two servers")
    finally:
        second.stop()
        first.stop()


def test_a_redis_outage_is_503_meanwhile_and_a_running_job_survives_it(tmp_path, redis_server):
    env = base_env(tmp_path, CONVSCOPE_STORE_URL=redis_server.url, CONVSCOPE_JOB_STALE_SECONDS="30")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = serve(env, port, workers=1, log=tmp_path / "serve.log")
    try:
        client = workspace_client(url)
        job = client.post("/api/models", json={"architecture": ARCHITECTURES["lenet"], "epochs": 2}).json()
        wait_for_status(client, job["id"], ("running",))
        redis_server.stop()
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/healthz", timeout=10).json()["status"] != "degraded":
            assert time.monotonic() < deadline, "the server never noticed its store was gone"
            time.sleep(0.1)
        during = client.get("/api/models")
        assert during.status_code == 503 and int(during.headers["retry-after"]) > 0
        assert "store did not answer" in during.json()["detail"]
        health = httpx.get(f"{url}/healthz", timeout=10).json()
        assert health["status"] == "degraded" and health["store"]["error"]
        assert client.post("/api/predict", json=PIXELS).status_code == 200  # the shipped model needs no store
        time.sleep(3)  # the outage itself: three seconds of a store that does not answer, not a wait
        redis_server.start()
        assert httpx.get(f"{url}/healthz", timeout=10).json()["status"] == "ok"
        done = wait_for_status(client, job["id"], ("done", "failed"), seconds=120)
        assert done["status"] == "done", done["message"]
        record_worker_rss(server, "outage")
        # the outage in the log: said once by each process (the web one, the worker), each with its traceback
        # once, and its end found; not a traceback per failed call
        lines = server.log_lines()
        starts = [line for line in lines if line["message"].startswith("the store does not answer (")]
        assert 1 <= len(starts) <= 2 and all("Traceback" in line["exc_info"] for line in starts), starts
        assert [line for line in lines if "exc_info" in line] == starts
        assert any(line["message"].startswith("the store answers again") for line in lines), lines
    finally:
        server.stop()


def test_sigkill_of_serve_takes_its_workers_along_and_the_port_is_free_again(tmp_path):
    port = free_port()
    server = serve(base_env(tmp_path), port, workers=2)
    family = children(server.popen.pid)
    assert len(family) >= 3  # two web workers and the training worker
    os.kill(server.popen.pid, signal.SIGKILL)  # the parent alone, as the OOM killer would
    server.popen.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() and peak_rss(pid) for pid in family) or not port_is_free(port):
        assert time.monotonic() < deadline, "the children of a killed serve kept running or kept the port"
        time.sleep(0.2)
    again = serve(base_env(tmp_path), port, workers=1)
    again.stop()


def test_sigterm_stops_serve_while_a_job_trains_and_a_stream_is_open(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = serve(base_env(tmp_path), port, workers=2)
    client = workspace_client(url)
    # minutes of training: it cannot end inside the drain SIGTERM allows open streams (CONVSCOPE_SHUTDOWN_SECONDS)
    job = client.post("/api/models", json={"architecture": ARCHITECTURES["tinyvgg"], "epochs": 30}).json()
    wait_for_status(client, job["id"], ("running",))
    events = httpx.Client(base_url=url, headers=client.headers, timeout=30)
    with events.stream("GET", f"/api/models/{job['id']}/events"):  # an open stream must not hold the stop
        os.kill(server.popen.pid, signal.SIGTERM)
        server.popen.wait(timeout=60)  # a deadline, not a measure: it stops after CONVSCOPE_SHUTDOWN_SECONDS
    assert port_is_free(port)
    server = serve(base_env(tmp_path), port, workers=1)
    try:
        record = workspace_reuse(client, url).get(f"/api/models/{job['id']}").json()
        assert record["status"] == "failed" and "the server stopped" in record["message"]
    finally:
        server.stop()


def helper_processes(root: int) -> list[int]:
    """The engine's helper processes (engine.processes) below ``root``."""
    found = []
    for pid in children(root):
        with contextlib.suppress(OSError):
            if b"run_helper" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return found


def process_state(pid: int) -> tuple[str, int]:
    """A process's state letter (Z for a zombie) and parent, or ("gone", 0)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return "gone", 0
    return fields[0], int(fields[1])


def wait_for_helper(root: int, other_than: tuple[int, ...] = (), seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        fresh = [pid for pid in helper_processes(root) if pid not in other_than]
        if fresh:
            return fresh[0]
        time.sleep(0.05)
    raise AssertionError(f"no helper process started below {root} in {seconds} s")


@pytest.mark.skipif(usable_cpus() < 2, reason="a training step is split only on two or more cores")
def test_a_helper_process_killed_mid_job_loses_nothing_and_a_helper_leaves_with_its_worker(tmp_path):
    port = free_port()
    server = serve(base_env(tmp_path), port, workers=1)
    try:
        client = workspace_client(f"http://127.0.0.1:{port}")
        spec = {"architecture": ARCHITECTURES["lenet"], "epochs": 6, "batch_size": 64}
        job = client.post("/api/models", json=spec).json()
        wait_for_status(client, job["id"], ("running",))
        killed = wait_for_helper(server.popen.pid)
        os.kill(killed, signal.SIGKILL)
        replacement = wait_for_helper(server.popen.pid, other_than=(killed,))  # started by a later step
        done = wait_for_status(client, job["id"], ("done", "failed"), seconds=180)
        assert done["status"] == "done", done["message"]
        assert done["metrics"]["test_accuracy"] > 0.9  # the slices computed without the helper were not lost
        _, worker = process_state(replacement)
        os.kill(worker, signal.SIGKILL)  # its socket closes: the helper ends too
        deadline = time.monotonic() + 10
        while process_state(replacement)[0] not in ("gone", "Z"):
            assert time.monotonic() < deadline, "a helper outlived its training worker"
            time.sleep(0.1)
    finally:
        server.stop()


def workspace_reuse(client: httpx.Client, url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers=client.headers, timeout=30)


def hold_streams(url: str, headers: list[dict], until: threading.Event, statuses: list[int]) -> list[int]:
    """Opens one event stream per header set and holds them open until ``until`` is set (at most two minutes),
    noting each one's status in ``statuses`` as it comes; returns them once every stream has ended. (On an
    event loop of its own, in a thread: the browser tests' Playwright may hold this thread's loop.)"""
    asyncio.run(_hold_streams(url, headers, until, statuses))
    return statuses


async def _hold_streams(url: str, headers: list[dict], until: threading.Event, statuses: list[int]) -> None:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def one(h: dict) -> None:
            async with client.stream("GET", h.pop("path"), headers=h) as response:
                statuses.append(response.status_code)
                if response.status_code == 200:
                    for _ in range(1200):  # polled, not slept through: it ends when the test says so
                        if until.is_set():
                            return
                        await asyncio.sleep(0.1)

        await asyncio.gather(*(one(dict(h)) for h in headers))


def open_streams(data_dir: Path, client: httpx.Client) -> int:
    """The event streams the server counts open for the client's workspace (its store, read directly)."""
    workspace = client.get("/api/workspace").json()["id"]
    store = SqliteStore(data_dir / "convscope.db")
    try:
        return store.tally_count(f"streams:w:{workspace}")
    finally:
        store.close()


def holding(url: str, headers: list[dict]) -> tuple[threading.Event, list[int], Future]:
    """Streams held open in the background: the event that lets them go, their statuses as they come, and
    the future of all of them."""
    until, statuses = threading.Event(), []
    pool = ThreadPoolExecutor(1)
    future = pool.submit(hold_streams, url, headers, until, statuses)
    pool.shutdown(wait=False)
    return until, statuses, future


def wait_for_answers(statuses: list[int], count: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while len(statuses) < count:
        assert time.monotonic() < deadline, f"{len(statuses)} of {count} streams were answered"
        time.sleep(0.1)


@contextlib.contextmanager
def following_a_long_job(tmp_path, workers: int = 1, **env: str):
    """A server with a long job of a fresh workspace: (server, url, client, events path). The job is
    cancelled and the server stopped afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = serve(base_env(tmp_path, **env), port, workers=workers)
    try:
        client = workspace_client(url)
        job = client.post("/api/models", json={**QUICK, "epochs": 30, "train_size": 7200}).json()
        yield server, url, client, f"/api/models/{job['id']}/events"
        client.post(f"/api/models/{job['id']}/cancel")
    finally:
        server.stop()


def test_a_thousand_open_streams_leave_health_and_predictions_answering(tmp_path):
    limits = {"CONVSCOPE_MAX_STREAMS_PER_ADDRESS": "5000", "CONVSCOPE_MAX_STREAMS_PER_WORKSPACE": "1000"}
    with following_a_long_job(tmp_path, **limits) as (_, url, client, path):
        until, _, held = holding(url, [{"path": path, **client.headers}] * 1000)
        try:
            deadline = time.monotonic() + 90
            while open_streams(tmp_path, client) < 1000:
                assert time.monotonic() < deadline, f"only {open_streams(tmp_path, client)} of 1000 streams opened"
                time.sleep(0.2)
            # all 1000 open at once: health and a prediction are still answered
            assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
            assert httpx.post(f"{url}/api/predict", json=PIXELS, timeout=30).status_code == 200
        finally:
            until.set()
        assert held.result(timeout=120).count(200) == 1000


def test_streams_per_workspace_are_capped_with_429_across_web_processes(tmp_path):
    """24 streams from one workspace against two web processes: the cap of 8 is the server's, not each one's."""
    env = {"CONVSCOPE_MAX_STREAMS_PER_WORKSPACE": "8"}
    with following_a_long_job(tmp_path, workers=2, **env) as (server, url, client, path):
        until, statuses, held = holding(url, [{"path": path, **client.headers}] * 24)
        wait_for_answers(statuses, 24)
        until.set()
        assert sorted(held.result(timeout=60)) == [200] * 8 + [429] * 16
        assert workspace_client(url).get(path).status_code == 404  # another workspace cannot follow it at all
        record_worker_rss(server, "streams")


def test_floods_of_learned_views_and_attacks_get_answers_or_503_never_500(tmp_path):
    env = base_env(tmp_path, CONVSCOPE_REQUEST_TIMEOUT_SECONDS="2", CONVSCOPE_QUEUE_SECONDS="1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = serve(env, port, workers=1)
    try:
        with httpx.Client(base_url=url, timeout=60) as client, ThreadPoolExecutor(56) as pool:
            units = list(
                pool.map(lambda k: client.get(f"/api/models/lenet/units/conv2/{k % 16}").status_code, range(56))
            )
            attack = {**PIXELS, "method": "pgd", "steps": 100, "epsilon": 0.01}
            attacks = list(pool.map(lambda _: client.post("/api/adversarial", json=attack).status_code, range(12)))
        assert set(units) <= {200, 503} and 200 in units, units
        assert set(attacks) <= {200, 503}, attacks
        # the attacks answered 503 stop at their budget and give their slots back: a prediction is served
        # again (polled for with a deadline; how soon is the load test's to measure)
        deadline = time.monotonic() + 30
        while (status := httpx.post(f"{url}/api/predict", json=PIXELS, timeout=30).status_code) != 200:
            assert status == 503 and time.monotonic() < deadline, f"predict answered {status}"
            time.sleep(0.2)
    finally:
        server.stop()


@pytest.mark.parametrize(("trusted", "statuses"), [("127.0.0.1", [200, 200]), ("10.0.0.1", [200, 429])])
def test_x_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path, trusted, statuses):
    """One stream per address here: two forwarded addresses are two clients only when the proxy is trusted."""
    env = {"CONVSCOPE_MAX_STREAMS_PER_ADDRESS": "1", "CONVSCOPE_FORWARDED_ALLOW_IPS": trusted}
    with following_a_long_job(tmp_path, **env) as (_, url, client, path):
        forwarded = [{"path": path, **client.headers, "X-Forwarded-For": f"203.0.113.{k}"} for k in (1, 2)]
        until, answered, held = holding(url, forwarded)
        wait_for_answers(answered, 2)
        until.set()
        assert sorted(held.result(timeout=60)) == statuses


def test_forty_parallel_submissions_and_cancels_raced_against_the_end_of_training(tmp_path):
    """40 POSTs at once from one workspace accept exactly its cap; and a cancel answered 202 always wins,
    however close to the end of training it lands."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = serve(base_env(tmp_path, CONVSCOPE_MAX_JOBS_PER_WORKSPACE="5"), port, workers=2)
    try:
        client = workspace_client(url)
        # jobs long enough (LeNet, 3 epochs) that none ends, freeing a place, while the 40 arrive
        long = {"architecture": ARCHITECTURES["lenet"], "epochs": 3}
        with ThreadPoolExecutor(40) as pool:
            answers = list(pool.map(lambda _: client.post("/api/models", json=long), range(40)))
        assert sorted(a.status_code for a in answers) == [202] * 5 + [429] * 35
        refusal = next(a for a in answers if a.status_code == 429).json()["detail"]
        assert "your workspace has 5 jobs queued or running, and 5 is the most" in refusal
        acknowledged = []
        for answer in (a for a in answers if a.status_code == 202):
            job = answer.json()
            wait_for_status(client, job["id"], ("running", "done"), seconds=60)
            cancel = client.post(f"/api/models/{job['id']}/cancel")
            if cancel.status_code == 202:
                acknowledged.append(job["id"])
        # LeNet on 3,000 pictures trains for about a second: cancels from right away to its very end
        racing = {"architecture": ARCHITECTURES["lenet"], "train_size": 3000}
        for delay in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 1.4):
            job = client.post("/api/models", json=racing).json()
            wait_for_status(client, job["id"], ("running", "done"), seconds=60)
            time.sleep(delay)
            if client.post(f"/api/models/{job['id']}/cancel").status_code == 202:
                acknowledged.append(job["id"])
        assert acknowledged, "no cancel landed while a job ran: the race was not exercised"
        for job_id in acknowledged:
            assert wait_for_status(client, job_id, ("done", "cancelled", "failed"))["status"] == "cancelled"
        record_worker_rss(server, "races")
    finally:
        server.stop()


def test_the_training_worker_stayed_under_a_gigabyte_through_this_module():
    assert peak_worker_rss, "no worker's memory was recorded"
    print("\npeak training-worker RSS:", {k: f"{v / (1 << 20):.0f} MB" for k, v in peak_worker_rss.items()})
    assert max(peak_worker_rss.values()) < WORKER_RSS_LIMIT, peak_worker_rss


# -- large pictures: shrunk before anything else, and their memory given back -----------------------------


def test_huge_pictures_are_shrunk_before_anything_else_and_eight_at_once_are_all_stored(tmp_path):
    """What a huge picture costs in memory is bench/bench_memory.py's figure; here, what it does: it is read
    at the size the data set keeps, and eight at once are all answered and stored."""
    from app.config import Settings
    from app.imaging import decode_image

    picture = a_few_lines()
    shrunk = decode_image(picture, Settings(data_dir=tmp_path), fit=28)
    assert shrunk.info["decoded_size"] == (5600, 5600) and max(shrunk.size) <= 28
    port = free_port()
    server = serve(base_env(tmp_path), port, workers=1)
    try:
        client = workspace_client(f"http://127.0.0.1:{port}")
        made = client.post("/api/datasets", json={"name": "big", "classes": ["a", "b"], "kind": "digit"}).json()
        url = "data:image/png;base64," + base64.b64encode(picture).decode()
        add = f"/api/datasets/{made['id']}/images"
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda _: client.post(add, json=[{"label": "b", "image": url}], timeout=60), range(8))
            )
        assert [a.status_code for a in answers] == [200] * 8
        assert len(client.get(f"/api/datasets/{made['id']}").json()["examples"]) == 8
    finally:
        server.stop()


def test_after_a_burst_of_large_requests_the_web_worker_gives_its_memory_back(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = serve(base_env(tmp_path), port, workers=1)
    try:
        picture = a_few_lines()

        def large(k: int) -> int:
            if k % 2:
                return httpx.post(f"{url}/api/predict/file", files={"file": ("x.png", picture)}, timeout=60).status_code
            form = {"preset": "sobel_x"}
            return httpx.post(
                f"{url}/api/filters/apply", files={"file": ("x.png", picture)}, data=form, timeout=60
            ).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(large, range(32))) == {200}
        deadline = time.monotonic() + 30
        while (idle := status_bytes(server.popen.pid, "VmRSS")) >= 500 << 20:
            assert time.monotonic() < deadline, f"the web worker stayed at {idle >> 20} MB after the burst"
            time.sleep(0.2)
    finally:
        server.stop()
