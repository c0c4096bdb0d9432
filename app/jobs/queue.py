"""The training queue: Huey, on SQLite or Redis like the store.

Huey was chosen because one API runs on both back ends the app needs (``SqliteHuey`` for one
machine with nothing else to start, ``RedisHuey`` for many), its consumer runs in a process of its
own (``convscope worker``) with a set number of slots, and its scheduler runs the periodic clean-up.
The queue only carries wake-up calls: a ``train`` task tells a worker that jobs may be waiting, and the
worker takes them from the store in the fair order (:meth:`app.jobs.store.JobStore.claim_next`) until
none may start. Everything about a job lives in the store (:mod:`app.jobs.store`); the order is the
store's, not Huey's, so one workspace's ten jobs never hold back another's first.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey, crontab

from app.config import Settings
from app.jobs import worker
from app.jobs.store import JobStore, open_store
from app.logs import store_outage
from engine.allocator import keep_freed_memory

log = logging.getLogger("convscope.jobs")


def make_huey(queue_url: str) -> Huey:
    """A Huey instance on ``sqlite:///path`` or ``redis://...``; results are not kept (the store has them)."""
    if queue_url.startswith("sqlite:///"):
        path = Path(queue_url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey("convscope", filename=str(path), results=False, timeout=10)
    return RedisHuey("convscope", url=queue_url, results=False)


class TrainingQueue:
    """Submits jobs (web side) and runs them (worker side): the same task names on both sides."""

    def __init__(self, settings: Settings, store: JobStore | None = None) -> None:
        self.settings = settings
        if store is not None:
            self.__dict__["store"] = store  # share the caller's store instead of opening another
        self.huey = make_huey(settings.queue_url)
        self._train = self.huey.task(name="train")(self._run)
        self.huey.periodic_task(crontab(minute="*"), name="housekeeping")(self._housekeeping)

    @cached_property
    def store(self) -> JobStore:
        return open_store(self.settings.store)

    def submit(self, job_id: str | None = None) -> None:
        """Wakes a worker: it trains the queued jobs (``job_id``, the one just submitted, among them)."""
        self._train(job_id)

    def _run(self, job_id: str | None = None) -> None:
        worker.run_jobs(self.settings, self.store)

    def _housekeeping(self) -> None:
        if worker.housekeeping(self.settings, self.store):
            self.submit()  # queued jobs that no wake-up reached (a worker restarted) are picked up now

    def run_worker(self) -> None:
        """Runs Huey's consumer in this process until it is stopped (SIGINT or SIGTERM)."""
        store_outage.probe = self.store.ping  # an outage's end is found by pinging, not waited for
        worker.housekeeping(self.settings, self.store)  # a worker that died left its jobs running: end them
        keep_freed_memory()  # this process trains: freed arrays stay for the next step

        consumer = self.huey.create_consumer(
            workers=self.settings.training_slots,
            worker_type="thread",
            periodic=True,
            check_worker_health=True,
            initial_delay=0.05,  # a queued job starts within a fraction of a second
            max_delay=0.5,
            graceful_signal="TERM",  # SIGTERM: running jobs end between two steps, then the workers are joined
            shutdown_timeout=8,
        )
        handle = consumer._handle_signal

        def on_signal(signum: int, frame: object) -> None:
            worker.stopping.set()  # a training job sees this between two steps and ends as failed ("stopped")
            handle(signum, frame)

        consumer._handle_signal = on_signal
        self.submit()  # jobs queued while no worker ran start now
        log.info("training worker started: %d slot(s), queue %s", self.settings.training_slots, self.settings.queue_url)
        consumer.run()
