"""Ending jobs: as failed with a message, and every running job whose worker stopped beating (its process
was killed): the worker's housekeeping, the streams and the model views all call this before they read."""

from __future__ import annotations

from app.jobs.store import JobStore, now


def fail(store: JobStore, job_id: str, message: str, from_status: tuple[str, ...] = ("running",)) -> None:
    """Ends the job as failed with ``message`` (if it is still in one of ``from_status``), and says so."""
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
