"""The store the processes share, on both back ends: the same behaviour from SQLite and Redis (the contract
test every part of app/jobs/store meets: jobs and events, blobs, documents, the fair queue)."""

from __future__ import annotations

import threading
import time

import pytest

from app.jobs.store import QueueCaps, QueueFull, RedisStore, SqliteStore, open_store


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


def test_the_latest_event_of_a_kind_is_found_however_far_back_it_is(store):
    store.create(job("a", 1.0))
    assert store.last_event("a", "progress") is None
    store.append_event("a", "progress", {"step": 1})
    for i in range(40):  # more than a page of other events after it
        store.append_event("a", "snapshot", {"i": i})
    assert store.last_event("a", "progress") == {"step": 1}
    store.append_event("a", "progress", {"step": 2})
    assert store.last_event("a", "progress") == {"step": 2} and store.last_event("a", "snapshot") == {"i": 39}
    assert store.last_event("a", "done") is None and store.last_event("nobody", "progress") is None


def test_a_blob_is_deleted_by_its_key_alone(store):
    store.put_blob("dataset/d1/images", b"pictures")
    store.put_blob("dataset/d2/images", b"others")
    store.delete_blob("dataset/d1/images")
    store.delete_blob("dataset/d9/images")  # nothing there: nothing happens
    assert store.get_blob("dataset/d1/images") is None and store.get_blob("dataset/d2/images") == b"others"


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


def owned(job_id: str, created: float, workspace: str, client: str = "10.0.0.1") -> dict:
    return {**job(job_id, created, client), "workspace": workspace}


def test_workers_take_jobs_round_robin_across_workspaces(store):
    """One workspace with ten queued jobs cannot hold back the next student's first job."""
    for i in range(10):
        store.create(owned(f"a{i}", float(i), "alice"))
    store.create(owned("b0", 20.0, "bob"))
    store.create(owned("c0", 21.0, "carol"))
    store.create(owned("b1", 22.0, "bob"))
    order = [j["id"] for j in store.fair_queue()]
    assert order[:6] == ["a0", "b0", "c0", "a1", "b1", "a2"]
    assert store.position("c0") == 3 and store.position("a9") == 13
    started = [store.claim_next(max_running=1, started=100.0)["id"]]
    # alice runs one job, so her others wait while bob and carol start theirs
    started += [store.claim_next(max_running=1, started=100.0)["id"] for _ in range(2)]
    assert started == ["a0", "b0", "c0"]
    assert store.claim_next(max_running=1, started=100.0) is None  # each workspace runs one at a time
    assert store.transition("a0", ["running"], "done")
    # alice's finished job still counts as her turn: a student who comes now goes before her second
    store.create(owned("d0", 30.0, "dave"))
    assert [j["id"] for j in store.fair_queue()][:3] == ["d0", "a1", "b1"]
    assert store.claim_next(max_running=1, started=101.0)["id"] == "d0"
    assert store.claim_next(max_running=1, started=101.0)["id"] == "a1"


def test_parallel_submissions_from_one_workspace_accept_exactly_its_cap(store):
    caps = QueueCaps(per_workspace=5, per_address=1000, queued=1000)
    accepted, refused = [], []

    def submit(k: int) -> None:
        try:
            store.submit(owned(f"j{k}", float(k), "alice"), caps)
            accepted.append(k)
        except QueueFull as full:
            refused.append(str(full))

    threads = [threading.Thread(target=submit, args=(k,)) for k in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == 5 and len(refused) == 35
    assert "your workspace has 5 jobs queued or running, and 5 is the most" in refused[0]
    assert len([j for j in store.active() if j["workspace"] == "alice"]) == 5


def test_the_address_and_queue_caps_name_their_count(store):
    store.submit(owned("a", 1.0, "alice"), QueueCaps(5, 1, 10))
    with pytest.raises(QueueFull, match="1 jobs from your address"):
        store.submit(owned("b", 2.0, "bob"), QueueCaps(5, 1, 10))
    with pytest.raises(QueueFull, match=r"the training queue is full \(1 jobs waiting, at most 1\)"):
        store.submit(owned("c", 3.0, "carol", client="10.0.0.2"), QueueCaps(5, 5, 1))


def test_a_cancel_that_landed_always_wins_over_done(store):
    store.create(owned("a", 1.0, "alice"))
    assert store.transition("a", ["queued"], "running")
    assert store.request_cancel("a")
    assert not store.transition("a", ["running"], "done", unless_cancelled=True)
    assert store.transition("a", ["running"], "cancelled")
    assert not store.request_cancel("a")  # an ended job takes no cancel


def test_workspaces_share_links_and_byte_counts(store):
    store.create_workspace({"id": "w1", "token": "hash1", "name": None, "created": 1.0, "address": "10.0.0.1"})
    assert store.workspace_by_token("hash1")["id"] == "w1" and store.workspace_by_token("nope") is None
    assert store.get_workspace("w1")["address"] == "10.0.0.1"
    store.create(owned("m", 1.0, "w1"))
    store.add_bytes("m", 1000)
    store.add_bytes("m", 24)
    assert store.get("m")["bytes"] == 1024 and [j["id"] for j in store.workspace_jobs("w1")] == ["m"]
    store.create_share("s1", "m", "w1")
    store.remember_share("w2", "s1")
    store.remember_share("w2", "s1")
    assert store.share("s1") == {"id": "s1", "model": "m", "workspace": "w1"}
    assert store.shares_of("m") == ["s1"] and store.shared_with("w2") == ["s1"]
    store.delete("m")
    assert store.share("s1") is None and store.workspace_jobs("w1") == []


def test_a_model_stored_finished_ages_towards_its_time_to_live(store):
    """An edit or a copy is written done from the start (no worker may claim it), and still expires."""
    store.create({**owned("e1", 5.0, "alice"), "status": "done"})
    assert store.active() == [] and store.claim_next(max_running=1, started=6.0) is None
    assert store.finished_before(1e12) == ["e1"]


def test_documents_are_kept_by_kind_listed_by_owner_oldest_first_and_replaced_in_place(store):
    store.put_doc("member", "c1:w1", "c1", {"name": "Ada"})
    store.put_doc("member", "c1:w2", "c1", {"name": "Grace"})
    store.put_doc("member", "c2:w1", "c2", {"name": "Ada"})
    store.put_doc("entry", "c1:w1", "c1", {"score": 0.9})  # another kind, the same id: a document of its own
    assert [d["name"] for d in store.docs("member", "c1")] == ["Ada", "Grace"]
    store.put_doc("member", "c1:w1", "c1", {"name": "Ada L."})  # replaced, keeping its place
    assert [d["name"] for d in store.docs("member", "c1")] == ["Ada L.", "Grace"]
    assert store.get_doc("entry", "c1:w1") == {"score": 0.9}
    store.delete_doc("member", "c1:w1")
    assert store.get_doc("member", "c1:w1") is None
    assert [d["name"] for d in store.docs("member", "c1")] == ["Grace"]
    assert store.docs("member", "nobody") == []
    with store.doc_lock("c1"):
        store.put_doc("member", "c1:w3", "c1", {"name": "Katherine"})
    assert len(store.docs("member", "c1")) == 2


def test_a_tally_counts_live_entries_for_every_process_and_stops_at_its_cap(store):
    """Wrong class codes and open streams are counted here, so every web process and replica agrees."""
    assert store.tally_add("e1", [("wrong:w1", 3), ("wrong:10.0.0.1", 100)], ttl=60) is None
    assert store.tally_add("e2", [("wrong:w1", 3), ("wrong:10.0.0.1", 100)], ttl=60) is None
    assert store.tally_add("e2", [("wrong:w1", 3)], ttl=60) is None  # the same entry again: still two
    assert store.tally_count("wrong:w1") == 2 and store.tally_count("wrong:10.0.0.1") == 2
    assert store.tally_add("e3", [("wrong:w1", 3)], ttl=60) is None
    # full: nothing is added under any key, and the full key says its count
    assert store.tally_add("e4", [("wrong:10.0.0.1", 100), ("wrong:w1", 3)], ttl=60) == ("wrong:w1", 3)
    assert store.tally_count("wrong:10.0.0.1") == 2
    store.tally_remove(["wrong:w1"], "e1")
    assert store.tally_count("wrong:w1") == 2
    store.tally_remove(["wrong:w1"])
    assert store.tally_count("wrong:w1") == 0 and store.tally_count("nothing") == 0


def test_a_tally_entry_lapses_unless_renewed(store):
    store.tally_add("kept", [("streams:w1", 10)], ttl=0.3)
    store.tally_add("lapsed", [("streams:w1", 10)], ttl=0.3)
    deadline = time.monotonic() + 5
    while store.tally_count("streams:w1") == 2 and time.monotonic() < deadline:
        store.tally_renew("kept", ["streams:w1"], ttl=30)
        time.sleep(0.05)  # a lease lapses on the store's clock; nothing else can be polled for it
    assert store.tally_count("streams:w1") == 1
    store.tally_renew("gone", ["streams:w1"], ttl=30)  # an entry no longer there is not brought back
    assert store.tally_count("streams:w1") == 1


def test_parallel_adds_to_a_tally_stop_exactly_at_its_cap(store):
    added = []

    def add(k: int) -> None:
        if store.tally_add(f"s{k}", [("streams:w1", 8)], ttl=60) is None:
            added.append(k)

    threads = [threading.Thread(target=add, args=(k,)) for k in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(added) == 8 and store.tally_count("streams:w1") == 8


def long_job(job_id: str, created: float, workspace: str, client: str, seconds: float = 590.0) -> dict:
    return {**owned(job_id, created, workspace, client=client), "estimate_seconds": seconds}


def test_sixty_free_workspaces_from_one_address_hold_back_another_addresss_first_job_by_one(store):
    """The probe's flood: 60 workspaces x 5 jobs of ~590 s from one address (as many as the caps below let
    in), then a student's first job from another address."""
    caps = QueueCaps(per_workspace=5, per_address=300, queued=500, seconds_per_address=float("inf"))
    for w in range(60):
        for k in range(5):
            store.submit(long_job(f"f{w}-{k}", w * 5 + k, f"flood{w}", "10.6.6.6"), caps)
    store.submit(long_job("student", 1000.0, "ada", "10.0.0.7", seconds=30.0), caps)
    assert store.position("student") <= 2  # it was 61


def test_an_addresss_queued_training_time_is_bounded_and_the_refusal_names_the_figures(store):
    caps = QueueCaps(
        per_workspace=5, per_address=300, queued=500, seconds_per_workspace=3600, seconds_per_address=14_400
    )
    accepted = 0
    with pytest.raises(QueueFull) as refused:
        for w in range(60):
            for k in range(5):
                store.submit(long_job(f"f{w}-{k}", w * 5 + k, f"flood{w}", "10.6.6.6"), caps)
                accepted += 1
    assert accepted == 24  # 24 x 590 s = 14,160 s; a 25th would pass 14,400
    assert "your address has 14,160 s of training queued or running and this job would add 590 s" in str(refused.value)
    assert "14,400 s is the most" in str(refused.value)
    store.submit(long_job("student", 1000.0, "ada", "10.0.0.7", seconds=30.0), caps)  # another address: fine


def test_a_class_behind_one_address_is_not_held_by_the_address_caps(store):
    """Sixty students behind a school's one address, each with the page's default job (8.5 s estimated)."""
    caps = QueueCaps(
        per_workspace=5, per_address=300, queued=500, seconds_per_workspace=3600, seconds_per_address=14_400
    )
    for s in range(60):
        store.submit(long_job(f"s{s}", float(s), f"student{s}", "192.0.2.1", seconds=8.5), caps)
    assert len(store.active()) == 60


def test_one_workspaces_queued_training_time_is_bounded(store):
    caps = QueueCaps(per_workspace=50, per_address=300, queued=500, seconds_per_workspace=3600)
    for k in range(6):
        store.submit(long_job(f"a{k}", float(k), "alice", "10.0.0.1"), caps)
    with pytest.raises(QueueFull, match=r"your workspace has 3,540 s of training"):
        store.submit(long_job("a6", 6.0, "alice", "10.0.0.1"), caps)


def test_bytes_are_counted_per_address_and_in_all_as_they_are_written_and_deleted(store):
    store.create(owned("m", 1.0, "alice", client="10.0.0.1"))
    store.create(owned("n", 2.0, "bob", client="10.0.0.2"))
    store.add_bytes("m", 1000)
    store.add_bytes("m", 24)
    store.add_bytes("n", 500)
    store.charge("10.0.0.2", 300)  # a data set's pictures
    assert store.stored_bytes("10.0.0.1") == (1024, 1824)
    assert store.stored_bytes("10.0.0.2") == (800, 1824)
    store.delete("m")
    store.delete("m")  # deleting twice refunds once
    store.add_bytes("m", 10)  # a write for a job that is gone counts nowhere
    assert store.stored_bytes("10.0.0.1") == (0, 800) and store.stored_bytes("10.0.0.9") == (0, 800)
