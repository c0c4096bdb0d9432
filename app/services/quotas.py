"""A workspace's room: what it keeps (its models, with their snapshots and events, and its data sets'
pictures) against its caps, and what its address's workspaces and the whole store keep against theirs.
The service (models) and the data sets share these checks."""

from __future__ import annotations

from app.config import Settings
from app.errors import OverQuota, StoreFull
from app.jobs.store import JobStore, now
from app.services.workspaces import Workspace
from engine.memory import megabytes


def usage(store: JobStore, workspace: Workspace) -> dict[str, int]:
    """A workspace's counts: stored models, bytes (its models' and its data sets'), running and queued jobs,
    edits in the last hour."""
    jobs = store.workspace_jobs(workspace.id)
    hour_ago = now() - 3600
    pictures = sum(int(d.get("bytes") or 0) for d in store.docs("dataset", workspace.id))
    return {
        "models": sum(j["status"] not in ("failed", "cancelled") for j in jobs),
        "bytes": sum(int(j.get("bytes") or 0) for j in jobs) + pictures,
        "running": sum(j["status"] == "running" for j in jobs),
        "queued": sum(j["status"] == "queued" for j in jobs),
        "edits_last_hour": sum(j.get("kind") == "edited" and j["created"] > hour_ago for j in jobs),
    }


def check_room(
    store: JobStore, settings: Settings, workspace: Workspace, address: str | None, new_bytes: int
) -> dict[str, int]:
    """Refuses a new model the workspace has no room for, by count or by bytes (429), or that its address's
    workspaces or the whole store have no room for (507)."""
    counts = usage(store, workspace)
    if counts["models"] >= settings.max_models_per_workspace:
        raise OverQuota(
            f"your workspace stores {counts['models']} models, the most one may keep "
            f"({settings.max_models_per_workspace}); delete some or let old ones expire"
        )
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
    if counts["edits_last_hour"] >= settings.max_edits_per_hour:
        raise OverQuota(
            f"your workspace made {counts['edits_last_hour']} edited models in the last hour, the most one may make "
            f"({settings.max_edits_per_hour}); try again later",
            retry_after=300,
        )
