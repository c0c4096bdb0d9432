"""A class on one server: 30 students behind one address, each in a workspace of their own, submit,
wait, follow and cancel at once while predictions keep answering. Every job ends, the queue takes
every student's first job before anyone's second, and every prediction meanwhile is answered. (How fast
predictions are while the class trains is bench/bench_classroom.py's to measure.)"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import free_port
from tests.jobs.conftest import TINY_DIGITS, base_env, read_events, serve, workspace_client

STUDENTS = 30
QUICK = {"architecture": TINY_DIGITS, "train_size": 2000, "epochs": 1}
PIXELS = {"pixels": [[0] * 8] * 2 + [[0, 0, 0, 255, 255, 0, 0, 0]] * 4 + [[0] * 8] * 2}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def predictions_while(url: str, stop: threading.Event) -> list[int]:
    """Asks for a prediction over and over until ``stop``: their statuses."""
    statuses = []
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.is_set():
            statuses.append(client.post("/api/predict", json=PIXELS).status_code)
            stop.wait(0.05)  # a pace, not a wait for a state
    return statuses


def lesson(url: str, number: int) -> dict:
    """One student: a first job followed to its end; every third student queues a second one too,
    and every sixth cancels that second job while it waits."""
    student = workspace_client(url)
    first = student.post("/api/models", json={**QUICK, "name": f"student {number}"})
    assert first.status_code == 202, first.text
    second = None
    if number % 3 == 0:
        again = student.post("/api/models", json={**QUICK, "name": f"student {number}, again"})
        assert again.status_code == 202, again.text
        second = again.json()
        if number % 6 == 0:
            assert student.post(f"/api/models/{second['id']}/cancel").status_code == 202
    jobs = [first.json()] + ([second] if second else [])
    for job in jobs:  # every stream runs to the job's end: done, or cancelled while it waited
        events = read_events(student, job["id"], timeout=300)
        assert events[-1][1] in ("done", "cancelled"), events[-1]
    return {"jobs": [student.get(f"/api/models/{j['id']}").json() for j in jobs], "queued": first.json()}


def test_thirty_students_share_one_server_fairly(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = serve(base_env(tmp_path, CONVSCOPE_MAX_STREAMS_PER_ADDRESS="100"), port, workers=2)
    stop = threading.Event()
    try:
        with ThreadPoolExecutor(STUDENTS + 1) as pool:
            watcher = pool.submit(predictions_while, url, stop)
            try:
                results = list(pool.map(lesson, [url] * STUDENTS, range(STUDENTS)))
            finally:
                stop.set()  # a student's failure must not leave the watcher predicting forever
            predictions = watcher.result()
    finally:
        stop.set()
        server.stop()

    firsts = [r["jobs"][0] for r in results]
    seconds = [r["jobs"][1] for r in results if len(r["jobs"]) > 1]
    assert all(job["status"] == "done" for job in firsts)
    assert {job["status"] for job in seconds} <= {"done", "cancelled"} and "cancelled" in {j["status"] for j in seconds}
    # round-robin: no second job starts while some student's first job is waiting
    ran_second = [job for job in seconds if job["status"] == "done"]
    assert ran_second
    for second in ran_second:
        waiting = [f for f in firsts if f["created"] < second["started"] and f["started"] > second["started"]]
        assert not waiting, f"{second['name']} started while {[f['name'] for f in waiting]} waited"
    positions = [r["queued"]["position"] for r in results]
    assert max(positions) >= 2  # the class really did queue
    assert predictions and set(predictions) == {200}, sorted(set(predictions))
