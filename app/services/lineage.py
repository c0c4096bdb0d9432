"""Where a model came from and who else may use it: its origin (trained, copied, edited, imported,
shipped), the line of models it was made from, and share links. Below the training service and the
classes, which both read it."""

from __future__ import annotations

import secrets
from typing import Any

from app.errors import Conflict, NotFound
from app.jobs.store import JobStore
from app.services.registry import ModelRef
from engine.datasets import DATASETS

LINE_DEPTH = 16  # how many ancestors a model's line keeps (a fine-tune of a fine-tune of ...)


def origin_of(job: dict[str, Any] | None) -> str:
    """How a model was made: ``trained`` by a training job (from scratch or fine-tuned), a ``copy``, an
    ``edit`` (network surgery), an ``import`` (an ONNX file), or ``shipped``. Records written before the
    origin was kept are read by their kind and id."""
    if job is None:
        return "shipped"
    if job.get("origin"):
        return str(job["origin"])
    kind = job.get("kind", "trained")
    if kind in ("edited", "imported"):
        return "edit" if kind == "edited" else "import"
    return "copy" if str(job["id"]).startswith("c") else "trained"


def base_of(job: dict[str, Any]) -> str | None:
    """The model a copy, an edit or a fine-tune was made from (its stored id, or a shipped model's name)."""
    if "base" in job:
        return job["base"]
    options = job.get("settings") or {}
    return options.get("base") or options.get("copied_from") or options.get("start_from")


def line_from(ref: ModelRef) -> list[dict[str, Any]]:
    """The line a model made from ``ref`` keeps: ``ref`` itself, then its own line, nearest first; each
    step is ``{id, origin, workspace}``. It is written once, so it holds when the ancestors are deleted."""
    if ref.shipped:
        return [{"id": ref.id, "origin": "shipped", "workspace": None}]
    assert ref.job is not None
    step = {"id": ref.id, "origin": origin_of(ref.job), "workspace": ref.job.get("workspace")}
    return [step, *ref.job.get("line", [])][:LINE_DEPTH]


def share_model(store: JobStore, ref: ModelRef) -> dict[str, str]:
    """A share link to the viewer's own finished model (the same link each time it is asked for)."""
    if not ref.owned or ref.job is None:
        raise NotFound(f"no model {ref.id!r} in your workspace to share (shipped models need no link)")
    if ref.job["status"] != "done":
        raise Conflict(f"{ref.id} is {ref.job['status']}; a model can be shared once it is done")
    existing = store.shares_of(ref.id)
    share_id = existing[0] if existing else "s" + secrets.token_urlsafe(16)
    if not existing:
        store.create_share(share_id, ref.id, ref.job["workspace"])
    return {
        "share_id": share_id,
        "model": ref.id,
        "url": f"/?model={share_id}",
        "train_url": f"/train?model={share_id}",
        "travels": what_travels(ref.job.get("dataset")),
    }


def what_travels(dataset: str | None) -> str:
    """What a share link gives its holder, in words the share dialog shows."""
    given = "Anyone with this link can use the model read-only: its weights, its design and its scores, and copy it"
    if dataset is None or dataset in DATASETS:
        return f"{given}."
    return (
        f"{given}. The pictures of your data set it was trained on stay yours: the views of what it learned show "
        "them to you only, and leave them out for everyone else."
    )
