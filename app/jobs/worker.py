"""What a training worker does with a job: train it with the engine, reporting as it goes.

Every step of the way lands in the store as an event (``started``, ``progress``, ``epoch``,
``snapshot``, then ``done``, ``failed`` or ``cancelled``); the web processes stream them to clients.
A job never stays ``running`` after its worker is gone: the worker beats a heartbeat every few
seconds, and whoever finds it stale (any web process, or the next worker) ends the job as failed.

A worker takes jobs in the queue's fair order (:meth:`JobStore.claim_next`), one after another until
none may start. A store that stops answering for a few seconds (a Redis restart) does not fail the
job: the worker's writes are retried with backoff (:class:`RetryingStore`). A worker told to stop
(SIGTERM) ends its running job as ``failed`` ("the server stopped") between two steps, and leaves.
"""

from __future__ import annotations

import io
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from app.config import Settings
from app.errors import store_errors
from app.jobs.service import queue_place, snapshot_count
from app.jobs.store import JobStore, now
from app.jsonutil import rounded
from engine.datasets import load_dataset
from engine.errors import EngineError
from engine.network import Network, build_network
from engine.train import predict_classes, train_network

log = logging.getLogger("convscope.jobs")

HEARTBEAT_SECONDS = 2.0
CANCEL_POLL_SECONDS = 0.5
SNAPSHOTS = 20  # snapshots kept per job, spread evenly over its steps (fewer if they would pass the job's bytes)
EVENT_FILTERS = 16  # a snapshot event carries at most this many first-layer filters (the page shows these)
STORE_RETRY_SECONDS = 30.0  # how long the worker keeps retrying a store that does not answer
STOPPED = "the server stopped while training this job; submit it again"

T = TypeVar("T")
stopping = threading.Event()  # set by the worker process's SIGTERM handler: running jobs end between steps


class RetryingStore:
    """The store, with every call retried with backoff (0.1 s doubling to 2 s) for up to ``seconds``
    while the store cannot be reached; after that the error goes up as usual."""

    def __init__(self, store: JobStore, seconds: float = STORE_RETRY_SECONDS) -> None:
        self._store = store
        self._seconds = seconds

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not callable(attribute) or name == "queue_lock":
            return attribute
        return lambda *args, **kwargs: retry(lambda: attribute(*args, **kwargs), self._seconds)


def retry(call: Callable[[], T], seconds: float) -> T:
    deadline = time.monotonic() + seconds
    delay = 0.1
    while True:
        try:
            return call()
        except store_errors() as error:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("the store did not answer (%s); trying again in %.1f s", error, delay)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)


def network_bytes(network: Network) -> bytes:
    buffer = io.BytesIO()
    network.save(buffer)
    return buffer.getvalue()


def first_filters(network: Network, params: dict[str, np.ndarray]) -> list | None:
    """The first conv layer's first ``EVENT_FILTERS`` filters (F, C, KH, KW), rounded to 4 decimals for the
    wire (in float64, so 0.0356 is sent as 0.0356, not as float32's 0.035599999129772186); None without
    a conv layer."""
    first = next((p.owner for p in network.plans if p.type == "conv"), None)
    if first is None:
        return None
    return rounded(params[f"{first}.weight"][:EVENT_FILTERS], 4)


def fail(store: JobStore, job_id: str, message: str, from_status=("running",)) -> None:
    if store.transition(job_id, from_status, "failed", finished=now(), message=message):
        store.append_event(job_id, "failed", {"message": message})


def reap_stale(store: JobStore, stale_seconds: float) -> list[str]:
    """Ends as failed every running job whose worker stopped beating; returns their ids."""
    reaped = []
    limit = now() - stale_seconds
    for job in store.active():
        if job["status"] == "running" and (job["heartbeat"] or job["started"] or 0) < limit:
            fail(
                store,
                job["id"],
                "the training worker stopped while training this job (its process was killed or crashed); "
                "submit it again",
            )
            reaped.append(job["id"])
    return reaped


def housekeeping(settings: Settings, store: JobStore) -> bool:
    """Ends jobs whose worker died, and deletes models past their time to live (shipped ones are files),
    with their blobs and share links; says whether jobs are waiting in the queue."""
    reap_stale(store, settings.job_stale_seconds)
    for job_id in store.finished_before(now() - settings.model_ttl_days * 86_400):
        store.delete(job_id)
        log.info("deleted model %s: older than %g days", job_id, settings.model_ttl_days)
    return any(job["status"] == "queued" for job in store.active())


def announce_positions(store: JobStore, settings: Settings) -> None:
    """Tells every queued job its new place in the queue and predicted wait (after one has started)."""
    for job in store.fair_queue():
        store.append_event(job["id"], "queued", queue_place(store, settings, job["id"]))


class Heartbeat:
    """Beats the job's heartbeat from a thread of its own, however long a training step takes."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    def _beat(self) -> None:
        # a store that does not answer is tried again at the next beat: a short outage costs a few beats,
        # never the job (the job goes stale only after CONVSCOPE_JOB_STALE_SECONDS of silence)
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self.store.update(self.job_id, heartbeat=now())
            except store_errors() as error:
                log.warning("heartbeat of %s not written: %s", self.job_id, error)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_jobs(settings: Settings, store: JobStore) -> int:
    """Trains queued jobs in the fair order, one after another, until none may start (or the worker is
    stopping); returns how many it trained."""
    store = RetryingStore(store)  # type: ignore[assignment]
    count = 0
    while not stopping.is_set():
        job = store.claim_next(settings.max_running_per_workspace, now())
        if job is None:
            return count
        run_job(settings, store, job)
        count += 1
    return count


def run_job(settings: Settings, store: JobStore, job: dict[str, Any]) -> None:
    """Trains one claimed (running) job to its end: done, failed or cancelled."""
    job_id = job["id"]
    store.append_event(job_id, "started", {})
    announce_positions(store, settings)
    try:
        with Heartbeat(store, job_id):
            _train(settings, store, job)
    except EngineError as error:  # the engine said why, in words (the loss diverged, ...)
        fail(store, job_id, str(error))
    except Exception:  # a bug: the job fails in words, the worker goes on with the next
        log.exception("job %s failed", job_id)
        fail(store, job_id, "training stopped on an internal error; the server's log has the details")
    # the job's events count towards what it stores, with its weights and snapshots
    store.add_bytes(job_id, sum(len(json.dumps(data)) + len(kind) for _, kind, data in store.events(job_id)))


def _train(settings: Settings, store: JobStore, job: dict[str, Any]) -> None:
    job_id, options = job["id"], job["settings"]
    train, test = load_dataset(job["dataset"], "train"), load_dataset(job["dataset"], "test")
    network = build_network(job["architecture"], seed=options["seed"])
    network.meta.update(name=job["name"], dataset=job["dataset"], labels=list(train.classes), job=job_id)
    size = options["train_size"]
    steps = options["epochs"] * -(-size // options["batch_size"])
    deadline = time.monotonic() + settings.max_training_seconds
    stop: dict[str, Any] = {"reason": None, "checked": 0.0}

    def should_stop() -> bool:
        # the store is asked at most twice a second; the clock every step
        if stopping.is_set():
            stop["reason"] = "stopping"
            return True
        if time.monotonic() > deadline:
            stop["reason"] = "time"
            return True
        if time.monotonic() - stop["checked"] >= CANCEL_POLL_SECONDS:
            stop["checked"] = time.monotonic()
            current = store.get(job_id)
            if current is None or current["cancel"]:
                stop["reason"] = "cancel"
                return True
        return False

    def on_progress(p: dict) -> None:
        store.append_event(
            job_id,
            "progress",
            {
                "epoch": p["epoch"],
                "step": p["step"],
                "steps": p["steps"],
                "loss": round(p["loss"], 5),
                "accuracy": round(p["accuracy"], 5),
                "examples_per_second": round(p["examples_per_second"], 1),
                "eta_seconds": round(p["eta_seconds"], 1),
            },
        )

    def on_epoch(row: dict) -> None:
        store.append_event(
            job_id,
            "epoch",
            {
                "epoch": row["epoch"],
                "val_accuracy": row["val_accuracy"],
                "loss": round(row["loss"], 5),
                "accuracy": round(row["accuracy"], 5),
                "seconds": row["seconds"],
            },
        )

    def on_snapshot(step: int, params: dict[str, np.ndarray]) -> None:
        data = network_bytes(Network(network.spec, params, network.meta))
        store.put_blob(f"{job_id}/snapshot/{step}", data)
        store.add_bytes(job_id, len(data))
        store.append_event(job_id, "snapshot", {"step": step, "filters": first_filters(network, params)})

    snapshots = snapshot_count(network.parameter_count, settings.max_job_bytes, SNAPSHOTS)

    result = train_network(
        network,
        train.images[:size],
        train.labels[:size],
        epochs=options["epochs"],
        batch_size=options["batch_size"],
        learning_rate=options["learning_rate"],
        optimizer=options["optimizer"],
        augment=job["dataset"] if options["augment"] else None,
        seed=options["seed"],
        val_images=test.images,
        val_labels=test.labels,
        on_progress=on_progress,
        on_epoch=on_epoch,
        should_stop=should_stop,
        # the first and last snapshots are always taken (when any fit): the rest spread between them
        snapshot_every=max(1, -(-steps // (snapshots - 2))) if snapshots > 2 else 0,
        on_snapshot=on_snapshot if snapshots >= 2 else None,
    )
    if stop["reason"] == "cancel":
        end_cancelled(store, job_id, result.steps)
        return
    if stop["reason"] == "stopping":
        fail(store, job_id, STOPPED)
        return
    if stop["reason"] == "time":
        fail(
            store,
            job_id,
            f"training took longer than {settings.max_training_seconds:g} s and was stopped at step "
            f"{result.steps} of {steps}; train fewer epochs, fewer images or a smaller network",
        )
        return
    guesses = predict_classes(network, test.images)
    confusion = np.zeros((network.classes, network.classes), np.int64)
    np.add.at(confusion, (test.labels.astype(np.intp), guesses), 1)
    accuracy = float((guesses == test.labels).mean())
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    network.meta.update(test_accuracy=accuracy, training_seconds=round(result.seconds, 2), train_size=size)
    data = network_bytes(network)
    store.put_blob(f"{job_id}/model", data)
    store.add_bytes(job_id, len(data))
    metrics = {
        "test_accuracy": accuracy,
        "test_size": int(len(test)),
        "confusion": confusion.tolist(),
        "per_class_accuracy": [round(float(v), 5) for v in per_class],
        "predictions": guesses.tolist(),  # each test picture's guess: which fill each confusion cell
        "training_seconds": round(result.seconds, 2),
    }
    # a cancel acknowledged while the last steps ran wins: the job ends cancelled, never done
    if store.transition(job_id, ["running"], "done", unless_cancelled=True, finished=now(), metrics=metrics):
        store.append_event(job_id, "done", {"test_accuracy": accuracy, "confusion": metrics["confusion"]})
    else:
        end_cancelled(store, job_id, result.steps)


def end_cancelled(store: JobStore, job_id: str, steps: int) -> None:
    if store.transition(job_id, ["running"], "cancelled", finished=now(), message="cancelled"):
        store.append_event(job_id, "cancelled", {"step": steps})
