"""What a training worker does with a job: train it with the engine, reporting as it goes.

Every step of the way lands in the store as an event (``started``, ``progress``, ``epoch``,
``snapshot``, then ``done``, ``failed`` or ``cancelled``); the web processes stream them to clients.
A job never stays ``running`` after its worker is gone: the worker beats a heartbeat every few
seconds, and whoever finds it stale (any web process, or the next worker) ends the job as failed.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from typing import Any

import numpy as np

from app.config import Settings
from app.jobs.store import JobStore, now
from engine.datasets import load_dataset
from engine.errors import EngineError
from engine.network import Network, build_network
from engine.train import predict_classes, train_network

log = logging.getLogger("convscope.jobs")

HEARTBEAT_SECONDS = 2.0
CANCEL_POLL_SECONDS = 0.5
SNAPSHOTS = 20  # snapshots kept per job, spread evenly over its steps


def network_bytes(network: Network) -> bytes:
    buffer = io.BytesIO()
    network.save(buffer)
    return buffer.getvalue()


def first_filters(network: Network, params: dict[str, np.ndarray]) -> list | None:
    """The first conv layer's weights (F, C, KH, KW), rounded for the wire; None without a conv layer."""
    first = next((p.owner for p in network.plans if p.type == "conv"), None)
    return None if first is None else np.round(params[f"{first}.weight"], 4).tolist()


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


def housekeeping(settings: Settings, store: JobStore) -> None:
    """Ends jobs whose worker died, and deletes models past their time to live (shipped ones are files)."""
    reap_stale(store, settings.job_stale_seconds)
    for job_id in store.finished_before(now() - settings.model_ttl_days * 86_400):
        store.delete(job_id)
        log.info("deleted model %s: older than %g days", job_id, settings.model_ttl_days)


def announce_positions(store: JobStore) -> None:
    """Tells every queued job its new place in the queue (after one has started or left it)."""
    queued = [j for j in store.active() if j["status"] == "queued"]
    for position, job in enumerate(queued, start=1):
        store.append_event(job["id"], "queued", {"position": position})


class Heartbeat:
    """Beats the job's heartbeat from a thread of its own, however long a training step takes."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self.store.update(self.job_id, heartbeat=now())

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_job(settings: Settings, store: JobStore, job_id: str) -> None:
    """Trains one job, if it is still queued (it may have been cancelled while it waited)."""
    started = now()
    if not store.transition(job_id, ["queued"], "running", started=started, heartbeat=started):
        return
    job = store.get(job_id)
    assert job is not None
    store.append_event(job_id, "started", {})
    announce_positions(store)
    try:
        with Heartbeat(store, job_id):
            _train(settings, store, job)
    except EngineError as error:  # the engine said why, in words (the loss diverged, ...)
        fail(store, job_id, str(error))
    except Exception:  # a bug: the job fails in words, the worker goes on with the next
        log.exception("job %s failed", job_id)
        fail(store, job_id, "training stopped on an internal error; the server's log has the details")


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
        snapshot = Network(network.spec, params, network.meta)
        store.put_blob(f"{job_id}/snapshot/{step}", network_bytes(snapshot))
        store.append_event(job_id, "snapshot", {"step": step, "filters": first_filters(network, params)})

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
        snapshot_every=max(1, -(-steps // SNAPSHOTS)),
        on_snapshot=on_snapshot,
    )
    if stop["reason"] == "cancel":
        if store.transition(job_id, ["running"], "cancelled", finished=now(), message="cancelled"):
            store.append_event(job_id, "cancelled", {"step": result.steps})
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
    store.put_blob(f"{job_id}/model", network_bytes(network))
    metrics = {
        "test_accuracy": accuracy,
        "test_size": int(len(test)),
        "confusion": confusion.tolist(),
        "per_class_accuracy": [round(float(v), 5) for v in per_class],
        "predictions": guesses.tolist(),  # each test picture's guess: which fill each confusion cell
        "training_seconds": round(result.seconds, 2),
    }
    if store.transition(job_id, ["running"], "done", finished=now(), metrics=metrics):
        store.append_event(job_id, "done", {"test_accuracy": accuracy, "confusion": metrics["confusion"]})
