"""The training queue: Huey, on SQLite or Redis like the store.

Huey was chosen because one API runs on both back ends the app needs (``SqliteHuey`` for one
machine with nothing else to start, ``RedisHuey`` for many), its consumer runs in a process of its
own (``convscope worker``) with a set number of slots, and its scheduler runs the periodic clean-up.
The queue only carries job ids; everything about a job lives in the store (:mod:`app.jobs.store`).
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey, crontab

from app.config import Settings
from app.jobs.store import JobStore, open_store

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

    def submit(self, job_id: str) -> None:
        """Puts the job's id in the queue; a worker picks it up."""
        self._train(job_id)

    def _run(self, job_id: str) -> None:
        from app.jobs.worker import run_job

        run_job(self.settings, self.store, job_id)

    def _housekeeping(self) -> None:
        from app.jobs.worker import housekeeping

        housekeeping(self.settings, self.store)

    def run_worker(self) -> None:
        """Runs Huey's consumer in this process until it is stopped (SIGINT or SIGTERM)."""
        from app.jobs.worker import housekeeping

        housekeeping(self.settings, self.store)  # a worker that died left its jobs running: end them
        consumer = self.huey.create_consumer(
            workers=self.settings.training_slots,
            worker_type="thread",
            periodic=True,
            check_worker_health=True,
            initial_delay=0.05,  # a queued job starts within a fraction of a second
            max_delay=0.5,
        )
        log.info("training worker started: %d slot(s), queue %s", self.settings.training_slots, self.settings.queue_url)
        consumer.run()
