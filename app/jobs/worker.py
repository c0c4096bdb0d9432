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
from app.jobs.stale import fail, reap_stale
from app.jobs.store import JobStore, now
from app.jsonutil import rounded
from app.logs import store_outage
from app.services import datasets as own_data
from app.services.models import test_metrics
from app.services.training import network_file, queue_places, snapshot_count
from engine import processes
from engine.datasets import DATASETS
from engine.errors import EngineError
from engine.network import Network, build_network, load_network
from engine.train import train_network

log = logging.getLogger("convscope.jobs")

EVENT_FILTERS = 16  # a snapshot event carries at most this many first-layer filters (the page shows these)
STOPPED = "the server stopped while training this job; submit it again"

T = TypeVar("T")
stopping = threading.Event()  # set by the worker process's SIGTERM handler: running jobs end between steps


class RetryingStore:
    """The store, with every call retried with backoff (0.1 s doubling to 2 s) for up to ``seconds``
    while the store cannot be reached; after that the error goes up as usual."""

    def __init__(self, store: JobStore, seconds: float) -> None:
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
            answer = call()
        except store_errors() as error:
            store_outage.failed(error, "the training worker")  # said once per outage, not once per retry
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)
        else:
            store_outage.recovered()
            return answer


def first_filters(network: Network, params: dict[str, np.ndarray]) -> list | None:
    """The first conv layer's first ``EVENT_FILTERS`` filters (F, C, KH, KW), rounded to 4 decimals for the
    wire (in float64, so 0.0356 is sent as 0.0356, not as float32's 0.035599999129772186); None without
    a conv layer."""
    first = next((p.name for p in network.plans if p.kind.draw == "conv"), None)
    if first is None:
        return None
    return rounded(params[f"{first}.weight"][:EVENT_FILTERS], 4)


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
    for job_id, place in queue_places(store, settings).items():
        store.append_event(job_id, "queued", place)


class Heartbeat:
    """Beats the job's heartbeat from a thread of its own, however long a training step takes."""

    def __init__(self, store: JobStore, job_id: str, seconds: float) -> None:
        self.store, self.job_id, self.seconds = store, job_id, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    def _beat(self) -> None:
        # a store that does not answer is tried again at the next beat: a short outage costs a few beats,
        # never the job (the job goes stale only after CONVSCOPE_JOB_STALE_SECONDS of silence)
        while not self._stop.wait(self.seconds):
            try:
                self.store.update(self.job_id, heartbeat=now())
            except store_errors() as error:
                store_outage.failed(error, f"the heartbeat of job {self.job_id}")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_jobs(settings: Settings, store: JobStore) -> int:
    """Trains queued jobs in the fair order, one after another, until none may start (or the worker is
    stopping); returns how many it trained."""
    processes.use_helper_processes(settings.helper_processes)
    store = RetryingStore(store, settings.store_retry_seconds)  # type: ignore[assignment]
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
        with Heartbeat(store, job_id, settings.heartbeat_seconds):
            TrainingRun(settings, store, job).run()
    except EngineError as error:  # the engine said why, in words (the loss diverged, ...)
        fail(store, job_id, str(error))
    except Exception:  # a bug: the job fails in words, the worker goes on with the next
        log.exception("job %s failed", job_id)
        fail(store, job_id, "training stopped on an internal error; the server's log has the details")
    # the job's events count towards what it stores, with its weights and snapshots
    store.add_bytes(job_id, sum(len(json.dumps(data)) + len(kind) for _, kind, data in store.events(job_id)))


def augmentation(job: dict[str, Any]) -> str | None:
    """The shipped data sets' own augmentation; digit warps for drawn data sets, none for photos."""
    if job["dataset"] in DATASETS:
        return str(job["dataset"])
    return "digits" if job.get("preprocess") == "digit" else None


class TrainingRun:
    """One job's training: what the engine reports goes to the store as events, and the store's cancel
    mark, the time limit and the worker's own stop end it between two steps."""

    def __init__(self, settings: Settings, store: JobStore, job: dict[str, Any]) -> None:
        self.settings, self.store, self.job, self.job_id = settings, store, job, job["id"]
        self.options = job["settings"]
        self.train, self.test = own_data.resolve_splits(store, job["dataset"])
        # a fine-tune starts from the weights its submission prepared; a design from scratch, from its seed
        initial = store.get_blob(f"{job['id']}/initial")
        self.network = (
            load_network(io.BytesIO(initial))
            if initial
            else build_network(job["architecture"], seed=self.options["seed"])
        )
        self.network.meta = {"name": job["name"], "dataset": job["dataset"], "labels": list(self.train.classes)}
        self.network.meta.update(job=job["id"], preprocess=job.get("preprocess"))
        self.size = self.options["train_size"]
        self.steps = self.options["epochs"] * -(-self.size // self.options["batch_size"])
        self.deadline = time.monotonic() + settings.max_training_seconds
        self.reason: str | None = None
        self.checked = 0.0

    def should_stop(self) -> bool:
        # the store is asked a couple of times a second; the clock and the worker's stop every step
        if stopping.is_set():
            self.reason = "stopping"
        elif time.monotonic() > self.deadline:
            self.reason = "time"
        elif time.monotonic() - self.checked >= self.settings.cancel_poll_seconds:
            self.checked = time.monotonic()
            current = self.store.get(self.job_id)
            if current is None or current["cancel"]:
                self.reason = "cancel"
        return self.reason is not None

    def on_progress(self, p: dict) -> None:
        rounded_keys = {"loss": 5, "accuracy": 5, "examples_per_second": 1, "eta_seconds": 1}
        event = {k: p[k] for k in ("epoch", "step", "steps")} | {k: round(p[k], d) for k, d in rounded_keys.items()}
        self.store.append_event(self.job_id, "progress", event)

    def on_epoch(self, row: dict) -> None:
        event = {k: row[k] for k in ("epoch", "val_accuracy", "seconds")}
        self.store.append_event(self.job_id, "epoch", event | {k: round(row[k], 5) for k in ("loss", "accuracy")})

    def on_snapshot(self, step: int, params: dict[str, np.ndarray]) -> None:
        data = network_file(Network(self.network.spec, params, self.network.meta))
        self.store.put_blob(f"{self.job_id}/snapshot/{step}", data)
        self.store.add_bytes(self.job_id, len(data))
        event = {"step": step, "filters": first_filters(self.network, params)}
        self.store.append_event(self.job_id, "snapshot", event)

    def run(self) -> None:
        options = self.options
        snapshots = snapshot_count(
            self.network.parameter_count, self.settings.max_job_bytes, self.settings.snapshots_per_job
        )
        result = train_network(
            self.network,
            self.train.images[: self.size],
            self.train.labels[: self.size],
            **{k: options[k] for k in ("epochs", "batch_size", "learning_rate", "optimizer", "seed")},
            augment=augmentation(self.job) if options["augment"] else None,
            frozen=options.get("freeze") or (),
            val_images=self.test.images,
            val_labels=self.test.labels,
            on_progress=self.on_progress,
            on_epoch=self.on_epoch,
            should_stop=self.should_stop,
            # the first and last snapshots are always taken (when any fit): the rest spread between them
            snapshot_every=max(1, -(-self.steps // (snapshots - 2))) if snapshots > 2 else 0,
            on_snapshot=self.on_snapshot if snapshots >= 2 else None,
        )
        if self.reason is None:
            self.finish(result.steps, result.seconds)
        elif self.reason == "cancel":
            end_cancelled(self.store, self.job_id, result.steps)
        elif self.reason == "stopping":
            fail(self.store, self.job_id, STOPPED)
        else:
            fail(
                self.store,
                self.job_id,
                f"training took longer than {self.settings.max_training_seconds:g} s and was stopped at step "
                f"{result.steps} of {self.steps}; train fewer epochs, fewer images or a smaller network",
            )

    def finish(self, steps: int, seconds: float) -> None:
        """Stores the trained network with its test metrics, and ends the job done (unless a cancel landed)."""
        metrics = test_metrics(self.network, self.test) | {"training_seconds": round(seconds, 2)}
        self.network.meta.update(
            test_accuracy=metrics["test_accuracy"], training_seconds=metrics["training_seconds"], train_size=self.size
        )
        data = network_file(self.network)
        self.store.put_blob(f"{self.job_id}/model", data)
        self.store.add_bytes(self.job_id, len(data))
        # a cancel acknowledged while the last steps ran wins: the job ends cancelled, never done
        if self.store.transition(
            self.job_id, ["running"], "done", unless_cancelled=True, finished=now(), metrics=metrics
        ):
            done = {"test_accuracy": metrics["test_accuracy"], "confusion": metrics["confusion"]}
            self.store.append_event(self.job_id, "done", done)
        else:
            end_cancelled(self.store, self.job_id, steps)


def end_cancelled(store: JobStore, job_id: str, steps: int) -> None:
    if store.transition(job_id, ["running"], "cancelled", finished=now(), message="cancelled"):
        store.append_event(job_id, "cancelled", {"step": steps})
