"""The store the processes share, on both back ends: the same behaviour from SQLite and Redis."""

from __future__ import annotations

import threading

import pytest

from app.jobs.store import RedisStore, SqliteStore, open_store


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        assert isinstance(store, SqliteStore)
    else:
        url = request.getfixturevalue("redis_url")
        store = open_store(url)
        assert isinstance(store, RedisStore)
        store.redis.flushdb()
    yield store
    store.close()


def job(job_id: str, created: float, client: str = "1.2.3.4") -> dict:
    return {"id": job_id, "created": created, "client": client, "status": "queued", "name": job_id, "settings": {}}


def test_a_job_is_read_back_with_its_fixed_and_changing_fields(store):
    store.create(job("a", 10.0))
    got = store.get("a")
    assert (got["id"], got["name"], got["status"], got["client"], got["cancel"]) == (
        "a",
        "a",
        "queued",
        "1.2.3.4",
        False,
    )
    store.update("a", heartbeat=12.5, cancel=True, metrics={"test_accuracy": 0.9})
    got = store.get("a")
    assert got["heartbeat"] == 12.5 and got["cancel"] is True and got["metrics"] == {"test_accuracy": 0.9}
    assert store.get("missing") is None
    with pytest.raises(KeyError):
        store.update("a", name="renamed")


def test_status_changes_are_compare_and_set(store):
    store.create(job("a", 1.0))
    assert store.transition("a", ["queued"], "running", started=2.0)
    assert not store.transition("a", ["queued"], "running")  # a second worker cannot start it again
    assert not store.transition("a", ["queued"], "cancelled")
    assert store.transition("a", ["running"], "done", finished=3.0)
    assert store.get("a")["status"] == "done" and store.get("a")["finished"] == 3.0
    assert store.active() == []


def test_queue_positions_follow_creation_order(store):
    for i, name in enumerate("abc"):
        store.create(job(name, float(i)))
    assert [store.position(n) for n in "abc"] == [1, 2, 3]
    store.transition("a", ["queued"], "running")
    assert [store.position(n) for n in "abc"] == [None, 1, 2]
    assert [j["id"] for j in store.active()] == ["a", "b", "c"]
    assert [j["id"] for j in store.recent(2)] == ["c", "b"]


def test_events_get_increasing_ids_even_from_many_writers(store):
    store.create(job("a", 1.0))
    threads = [
        threading.Thread(target=lambda k=k: [store.append_event("a", "progress", {"k": k, "i": i}) for i in range(20)])
        for k in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = store.events("a")
    assert [seq for seq, *_ in events] == list(range(1, 81))
    assert sorted((d["k"], d["i"]) for _, _, d in events) == [(k, i) for k in range(4) for i in range(20)]
    assert [seq for seq, *_ in store.events("a", after=75)] == [76, 77, 78, 79, 80]


def test_blobs_and_deleting_a_job_with_everything_it_owns(store):
    store.create(job("a", 1.0))
    store.create(job("b", 2.0))
    store.put_blob("a/model", b"\x00weights")
    store.put_blob("a/snapshot/0", b"early")
    store.put_blob("b/model", b"other")
    store.append_event("a", "done", {})
    assert store.get_blob("a/model") == b"\x00weights"
    store.transition("a", ["queued"], "done", finished=5.0)
    assert store.finished_before(1e12) == ["a"]
    store.delete("a")
    assert store.get("a") is None and store.events("a") == []
    assert store.get_blob("a/model") is None and store.get_blob("a/snapshot/0") is None
    assert store.get_blob("b/model") == b"other"


def test_an_unknown_store_url_is_refused_in_words():
    with pytest.raises(ValueError, match="must start with sqlite:/// or redis://"):
        open_store("postgres://somewhere/db")
