"""The training service end to end over HTTP, as a classroom would use it: a real `convscope serve`
with 2 uvicorn workers and its embedded training worker on the SQLite store, then the same flow on
Redis with a separate `convscope worker`."""

from __future__ import annotations

import sys
import time

import httpx
import pytest

from engine.architectures import ARCHITECTURES
from tests.conftest import free_port
from tests.jobs.conftest import (
    TINY_DIGITS,
    Process,
    base_env,
    read_events,
    serve,
    wait_for_status,
    workspace_client,
)

ONE_DIGIT = [[0] * 28 for _ in range(4)] + [[0] * 12 + [255] * 4 + [0] * 12 for _ in range(20)] + [[0] * 28] * 4


def train_follow_and_use(client: httpx.Client) -> str:
    """Submits LeNet for one epoch, follows it to the end, reconnects, predicts with it; returns its id."""
    # seed 0: one epoch of LeNet from a fixed start (a drawn seed reaches 93.5-95.5%)
    lenet = {"name": "lenet <b>1</b>", "architecture": ARCHITECTURES["lenet"], "seed": 0}
    response = client.post("/api/models", json=lenet)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued" and job["events"] == f"/api/models/{job['id']}/events"

    events = read_events(client, job["id"])
    kinds = [kind for _, kind, _, _ in events]
    assert kinds[0] == "queued" and "started" in kinds and kinds[-1] == "done", kinds
    assert [i for i, *_ in events] == list(range(1, len(events) + 1))  # every event has the next id
    progress = [(data, at) for _, kind, data, at in events if kind == "progress"]
    assert {"epoch", "step", "steps", "loss", "accuracy", "examples_per_second", "eta_seconds"} <= set(progress[0][0])
    # progress is streamed while the job trains, not sent at its end: its events come in several reads, at
    # rising steps (how often is bench/bench_training.py's to measure, not a test's)
    assert [p["step"] for p, _ in progress] == sorted(p["step"] for p, _ in progress)
    assert len({round(at, 2) for _, at in progress}) >= 3, "every progress event came at once"
    snapshots = [data for _, kind, data, _ in events if kind == "snapshot"]
    assert snapshots[0]["step"] == 0 and len(snapshots[0]["filters"]) == 6  # conv1: 6 filters of 1x5x5
    done = events[-1][2]
    assert done["test_accuracy"] >= 0.93, done
    assert sum(map(sum, done["confusion"])) == 800

    # a client reconnecting after event 3 gets the rest, and the stream still ends with done
    resumed = read_events(client, job["id"], last_event_id=3)
    assert [e[:3] for e in resumed] == [e[:3] for e in events[3:]]

    record = client.get(f"/api/models/{job['id']}").json()
    assert record["status"] == "done" and record["name"] == "lenet <b>1</b>"  # plain text, kept as typed
    assert record["metrics"]["test_accuracy"] == done["test_accuracy"]
    assert [row["name"] for row in record["layers"]] == [
        "input",
        "conv1",
        "pool1",
        "conv2",
        "pool2",
        "fc1",
        "fc2",
        "fc3",
    ]
    assert record["snapshots"][0] == 0 and record["epochs"][0]["epoch"] == 1 and record["history"]

    guess = client.post(f"/api/predict?model={job['id']}&activations=true", json={"pixels": ONE_DIGIT})
    assert guess.status_code == 200 and guess.json()["model"] == job["id"]
    assert guess.json()["digit"] == 1 and [layer["name"] for layer in guess.json()["layers"]][0] == "conv1"
    early = client.post(f"/api/predict?model={job['id']}&snapshot=0", json={"pixels": ONE_DIGIT})
    assert early.status_code == 200 and early.json()["probabilities"] != guess.json()["probabilities"]
    return job["id"]


def wait_for_progress(client: httpx.Client, job_id: str, seconds: float = 60) -> None:
    """Returns once the job has reported a training step (it is running, not merely claimed)."""
    deadline = time.monotonic() + seconds
    while not client.get(f"/api/models/{job_id}").json()["history"]:
        assert time.monotonic() < deadline, f"{job_id} reported no progress in {seconds} s"
        time.sleep(0.2)


def cancel_a_running_job(client: httpx.Client) -> None:
    body = {"architecture": ARCHITECTURES["lenet"], "epochs": 20}
    job = client.post("/api/models", json=body).json()
    wait_for_progress(client, job["id"])
    response = client.post(f"/api/models/{job['id']}/cancel")
    assert response.status_code == 202 and response.json()["cancel_requested"]
    record = wait_for_status(client, job["id"], ("cancelled",), seconds=60)
    events = read_events(client, job["id"])
    steps = max(data["steps"] for _, kind, data, _ in events if kind == "progress")
    assert events[-1][1] == "cancelled" and events[-1][2]["step"] < steps / 2  # stopped, long before its end
    assert client.post(f"/api/predict?model={job['id']}", json={"pixels": ONE_DIGIT}).status_code == 409
    assert record["snapshots"] and record["snapshots"][0] == 0
    snapshot = client.post(f"/api/predict?model={job['id']}&snapshot=0", json={"pixels": ONE_DIGIT})
    assert snapshot.status_code == 200
    assert client.post(f"/api/models/{job['id']}/cancel").status_code == 409


def test_the_whole_flow_on_one_machine_with_two_web_workers_and_the_sqlite_store(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = base_env(tmp_path, CONVSCOPE_MAX_QUEUED_JOBS="1", CONVSCOPE_MAX_JOBS_PER_CLIENT="5")
    server = serve(env, port, workers=2)
    client = workspace_client(url)
    try:
        model_id = train_follow_and_use(client)
        cancel_a_running_job(client)

        # the queue holds one waiting job here: a second one waiting is refused with Retry-After
        long = {"architecture": TINY_DIGITS, "epochs": 30}
        running = client.post("/api/models", json=long).json()
        wait_for_status(client, running["id"], ("running",))
        waiting = client.post("/api/models", json=long)
        assert waiting.status_code == 202 and waiting.json()["position"] == 1
        refused = client.post("/api/models", json=long)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "queue is full" in refused.json()["detail"]
        assert client.post(f"/api/models/{waiting.json()['id']}/cancel").json()["status"] == "cancelled"
        client.post(f"/api/models/{running['id']}/cancel")
        wait_for_status(client, running["id"], ("cancelled",), seconds=5)
    finally:
        server.stop()

    # a restart keeps every finished model and its history
    server = serve(base_env(tmp_path), port, workers=2)
    try:
        record = client.get(f"/api/models/{model_id}").json()
        assert record["status"] == "done" and record["history"]
        guess = client.post(f"/api/predict?model={model_id}", json={"pixels": ONE_DIGIT})
        assert guess.status_code == 200 and guess.json()["digit"] == 1
        listed = [m["id"] for m in client.get("/api/models").json()]
        assert listed[:2] == ["lenet", "fashion"] and model_id in listed
        download = client.get(f"/api/models/{model_id}/weights")
        assert download.status_code == 200 and download.content[:2] == b"PK"  # a zip: the .npz
    finally:
        server.stop()


def test_the_same_flow_on_redis_with_a_separate_worker_and_a_worker_that_dies(tmp_path, redis_url):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = base_env(
        tmp_path,
        CONVSCOPE_STORE_URL=redis_url,
        CONVSCOPE_EMBEDDED_WORKER="false",
        CONVSCOPE_JOB_STALE_SECONDS="4",
        CONVSCOPE_MAX_JOBS_PER_CLIENT="5",
    )
    server = serve(env, port, workers=2)
    worker = Process([*WORKER, "worker"], env).start()
    client = workspace_client(url)
    try:
        train_follow_and_use(client)
        cancel_a_running_job(client)

        # a worker killed mid-job leaves the job failed, in words, not running forever
        job = client.post("/api/models", json={"architecture": ARCHITECTURES["lenet"], "epochs": 20}).json()
        wait_for_status(client, job["id"], ("running",))
        worker.stop(sig=9)
        failed = wait_for_status(client, job["id"], ("failed",), seconds=30)
        assert "training worker stopped" in failed["message"]
        assert read_events(client, job["id"])[-1][1] == "failed"

        # a new worker takes the next job
        worker = Process([*WORKER, "worker"], env).start()
        again = client.post("/api/models", json={"architecture": TINY_DIGITS, "seed": 0}).json()
        assert wait_for_status(client, again["id"], ("done",), seconds=60)["metrics"]["test_accuracy"] > 0.8
    finally:
        worker.stop()
        server.stop()


WORKER = [sys.executable, "-m", "app.cli"]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
