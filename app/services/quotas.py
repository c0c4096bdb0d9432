"""A workspace's room, in one table: every resource a workspace holds with a cap (models, bytes, jobs,
edits, data sets, classes, open streams, ...), the setting that caps it and how many it uses; and what its
address's workspaces and the whole store keep against theirs. ``GET /api/workspace`` reports the table
whole; every service checks a count against it here, so a new per-workspace resource with a quota is one
row (and the code that makes the resource).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.config import Settings
from app.errors import OverQuota, StoreFull
from app.jobs.store import JobStore, now
from app.services.workspaces import Workspace
from engine.memory import megabytes


def usage(store: JobStore, workspace: Workspace) -> dict[str, int]:
    """A workspace's counts: stored models, bytes (its models' and its data sets'), running and queued jobs
    (and both), edits in the last hour."""
    jobs = store.workspace_jobs(workspace.id)
    hour_ago = now() - 3600
    pictures = sum(int(d.get("bytes") or 0) for d in store.docs("dataset", workspace.id))
    return {
        "models": sum(j["status"] not in ("failed", "cancelled") for j in jobs),
        "bytes": sum(int(j.get("bytes") or 0) for j in jobs) + pictures,
        "running": sum(j["status"] == "running" for j in jobs),
        "queued": sum(j["status"] == "queued" for j in jobs),
        "jobs": sum(j["status"] in ("running", "queued") for j in jobs),
        "edits": sum(j.get("kind") == "edited" and j["created"] > hour_ago for j in jobs),
    }


@dataclass(frozen=True)
class Quota:
    """One per-workspace resource: its name (the API's), what it counts in words, and its cap from the
    settings; its use is one of :func:`usage`'s counts (``counted``), the number of the workspace's store
    documents of a kind (``documents``), or neither: counted elsewhere (open streams, per process) or per
    something else (a job's bytes)."""

    name: str
    words: str
    limit: Callable[[Settings], int]
    counted: str | None = None
    documents: str | None = None


QUOTAS = (
    Quota("models", "stored models", lambda s: s.max_models_per_workspace, counted="models"),
    Quota("bytes", "bytes its models and data sets keep", lambda s: s.max_workspace_bytes, counted="bytes"),
    Quota("running_jobs", "jobs training at once", lambda s: s.max_running_per_workspace, counted="running"),
    Quota("jobs", "jobs queued or training", lambda s: s.max_jobs_per_workspace, counted="jobs"),
    Quota("edits_per_hour", "edited models made in the last hour", lambda s: s.max_edits_per_hour, counted="edits"),
    Quota("datasets", "own data sets", lambda s: s.max_datasets_per_workspace, documents="dataset"),
    Quota("classes", "classes it is in", lambda s: s.max_classes_per_workspace, documents="enrolment"),
    Quota("entries_per_challenge", "challenge entries in each class", lambda s: s.max_entries_per_student),
    Quota("job_bytes", "bytes one job may keep", lambda s: s.max_job_bytes),
    Quota("streams", "open event streams (per server process)", lambda s: s.max_streams_per_workspace),
)
BY_NAME = {quota.name: quota for quota in QUOTAS}


def _used(quota: Quota, store: JobStore, workspace: Workspace, counts: dict[str, int]) -> int | None:
    if quota.counted is not None:
        return counts[quota.counted]
    return None if quota.documents is None else len(store.docs(quota.documents, workspace.id))


def report(
    store: JobStore, settings: Settings, workspace: Workspace, counts: dict[str, int] | None = None
) -> list[dict[str, Any]]:
    """The whole table: each resource's name, words, limit and use (null where it is not counted here);
    ``counts``: the workspace's :func:`usage`, when the caller has it already."""
    counts = counts or usage(store, workspace)
    return [
        {"name": q.name, "words": q.words, "limit": q.limit(settings), "used": _used(q, store, workspace, counts)}
        for q in QUOTAS
    ]


def limits(settings: Settings) -> dict[str, int]:
    """Every resource's cap by name (``GET /api/workspace``'s ``limits``)."""
    return {q.name: q.limit(settings) for q in QUOTAS}


def check(
    store: JobStore,
    settings: Settings,
    workspace: Workspace,
    name: str,
    advice: str,
    counts: dict[str, int] | None = None,
) -> None:
    """Refuses (429) one more of resource ``name`` past its cap; the message names the count, the cap and
    what to do (``advice``). ``counts``: the workspace's :func:`usage`, when the caller has it already."""
    quota = BY_NAME[name]
    if quota.counted is not None and counts is None:
        counts = usage(store, workspace)
    used, limit = _used(quota, store, workspace, counts or {}), quota.limit(settings)
    assert used is not None, f"{name} is not counted in the store"
    if used >= limit:
        raise OverQuota(f"{quota.words}: your workspace has {used}, the most one may have is {limit}; {advice}")


def check_room(
    store: JobStore, settings: Settings, workspace: Workspace, address: str | None, new_bytes: int
) -> dict[str, int]:
    """Refuses a new model the workspace has no room for, by count or by bytes (429), or that its address's
    workspaces or the whole store have no room for (507)."""
    counts = usage(store, workspace)
    check(store, settings, workspace, "models", "delete some or let old ones expire", counts)
    check_bytes(store, settings, counts["bytes"], address, new_bytes)
    return counts


def check_bytes(store: JobStore, settings: Settings, held: int, address: str | None, new_bytes: int) -> None:
    """Refuses ``new_bytes`` more for a workspace that keeps ``held`` (429 past its cap), for its address's
    workspaces together (507), or for the store in all (507); each refusal names the figures."""
    if held + new_bytes > settings.max_workspace_bytes:
        raise OverQuota(
            f"your workspace stores {megabytes(held)}; this needs {megabytes(new_bytes)} more and the "
            f"most one may keep is {megabytes(settings.max_workspace_bytes)}"
        )
    by_address, everything = store.stored_bytes(address)
    if by_address + new_bytes > settings.max_bytes_per_address:
        raise StoreFull(
            f"the workspaces made from your address store {megabytes(by_address)}; this needs {megabytes(new_bytes)} "
            f"more and one address may keep {megabytes(settings.max_bytes_per_address)}; delete some models or "
            "data sets"
        )
    if everything + new_bytes > settings.max_store_bytes:
        raise StoreFull(
            f"the server's store holds {megabytes(everything)}, its cap is {megabytes(settings.max_store_bytes)}: "
            f"there is no room for {megabytes(new_bytes)} more; ask whoever runs it, or try when old models expire"
        )


def check_edits(counts: dict[str, int], settings: Settings) -> None:
    """Refuses (429) an edited model past the workspace's edits this hour."""
    if counts["edits"] >= settings.max_edits_per_hour:
        raise OverQuota(
            f"your workspace made {counts['edits']} edited models in the last hour, the most one may make "
            f"({settings.max_edits_per_hour}); try again later",
            retry_after=300,
        )
