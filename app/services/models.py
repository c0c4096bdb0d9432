"""Models once made, shared by the routes, the worker and the import: how they are listed and viewed,
stored (with their byte count and line), copied and edited (network surgery), tested, and what a
workspace holds in all (``GET /api/workspace``)."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from app.config import Settings
from app.jobs.stale import reap_stale
from app.jobs.store import JobStore, now
from app.services import datasets as own_data
from app.services import quotas
from app.services.lineage import base_of, line_from, origin_of
from app.services.membership import publications_for
from app.services.quotas import check_edits, check_room
from app.services.registry import ModelRef, ModelRegistry
from app.services.training import job_bytes, model_card, network_file, queue_place
from app.services.workspaces import Workspace
from engine import budget
from engine.datasets import Dataset
from engine.names import clean_name
from engine.network import Network
from engine.train import predict_classes


def summary(job: dict[str, Any], group: str, model_id: str | None = None) -> dict[str, Any]:
    return {
        "id": model_id or job["id"],
        "name": job["name"],
        "kind": job.get("kind", "trained"),
        "origin": origin_of(job),
        "group": group,
        "dataset": job["dataset"],
        "status": job["status"],
        "test_accuracy": (job["metrics"] or {}).get("test_accuracy"),
        "parameters": job.get("parameters"),
        "created": job["created"],
        "base": base_of(job),
    }


def shipped_summary(model_id: str, network: Network) -> dict[str, Any]:
    meta = network.meta
    return {
        "id": model_id,
        "name": meta.get("name", model_id),
        "kind": "shipped",
        "origin": "shipped",
        "group": "shipped",
        "dataset": network.dataset,
        "status": "done",
        "test_accuracy": meta.get("test_accuracy"),
        "parameters": network.parameter_count,
        "created": None,
        "base": None,
    }


def list_models(
    store: JobStore, registry: ModelRegistry, workspace: Workspace | None, limit: int, stale_seconds: float = 0
) -> list[dict[str, Any]]:
    """The shipped models, then the workspace's own (newest first), then the ones its lecturers published,
    then the ones shared with it; with ``stale_seconds``, running jobs whose worker died are ended first."""
    if stale_seconds:
        reap_stale(store, stale_seconds)
    shipped = [shipped_summary(i, n) for i, n in registry.shipped.items()]
    if workspace is None:
        return shipped
    own = [summary(job, "yours") for job in store.workspace_jobs(workspace.id)[:limit]]
    # a published shipped model is already listed: only share links (s...) are looked up
    links = [(p["model"], "lecturer") for p in publications_for(store, workspace) if p["kind"] == "model"]
    links += [(share_id, "shared") for share_id in store.shared_with(workspace.id)[:limit]]
    others = []
    for share_id, group in links:
        link = store.share(share_id) if share_id.startswith("s") else None
        job = store.get(link["model"]) if link else None
        if job is not None and job.get("workspace") != workspace.id:
            others.append(summary(job, group, model_id=share_id))
    return shipped + own + others


def store_model(
    store: JobStore,
    settings: Settings,
    workspace: Workspace,
    address: str | None,
    network: Network,
    record: dict[str, Any],
) -> dict[str, Any]:
    """Writes a finished model (an edit, a copy, an import) into the workspace: record, weights, and its byte
    count. It is written ``done`` from the start, so no worker can take it for a job to train. The
    workspace's room (and, for an edit, its edits this hour) is checked again under the workspace's lock,
    in the same step as the write: 200 copies at once store exactly as many as the cap allows."""
    data = network_file(network)
    with store.doc_lock(f"room:{workspace.id}"):
        counts = check_room(store, settings, workspace, address, len(data))
        if record.get("kind") == "edited":
            check_edits(counts, settings)
        budget.commit()  # from here the model is stored and the client hears so, never a 503
        return _write_model(store, workspace, address, network, record, data)


def _write_model(
    store: JobStore, workspace: Workspace, address: str | None, network: Network, record: dict[str, Any], data: bytes
) -> dict[str, Any]:
    created = now()
    job = {
        "id": record.pop("id"),
        "created": created,
        "client": address,
        "workspace": workspace.id,
        "status": "done",
        "classes": network.labels,
        "architecture": network.spec,
        "layers": network.describe(),
        "parameters": network.parameter_count,
        **record,
    }
    metrics = job.pop("metrics")
    store.put_blob(f"{job['id']}/model", data)  # the weights first: a listed model always has them
    store.create(job)
    store.update(job["id"], started=created, finished=created, metrics=metrics)
    store.add_bytes(job["id"], len(data))  # counted for the workspace, its address and the store
    return job


def copy_model(
    store: JobStore, registry: ModelRegistry, settings: Settings, workspace: Workspace, address: str, model_id: str
) -> dict[str, Any]:
    """A copy of a model the viewer may see (shared, shipped or its own) in the viewer's workspace."""
    ref = registry.resolve(model_id, workspace)
    network = registry.network(ref).copy()
    check_room(store, settings, workspace, address, job_bytes(network.parameter_count))
    source = ref.job or {"name": network.meta.get("name", model_id), "dataset": network.dataset}
    metrics = (ref.job or {}).get("metrics") or {"test_accuracy": network.meta.get("test_accuracy")}
    record = {
        "id": "c" + uuid.uuid4().hex[:12],
        "kind": ref.job.get("kind", "trained") if ref.job else "trained",
        "origin": "copy",
        "base": ref.id,
        "line": line_from(ref),
        "name": clean_name(f"{source['name']} (copy)"),
        "dataset": source["dataset"],
        "settings": {"copied_from": model_id},
        "metrics": metrics,
    }
    network.meta.update(name=record["name"])
    job = store_model(store, settings, workspace, address, network, record)
    return {"id": job["id"], "name": job["name"], "copied_from": model_id}


def edit_name(base_name: str, edits: list[dict[str, Any]]) -> str:
    """What an edit did, in words: "LeNet, conv1 filter 3 switched off"."""
    words = []
    for edit in edits:
        op, layer = edit["op"], edit["layer"]
        if op == "zero":
            noun = "filter" if layer.startswith("conv") else "unit"
            words.append(f"{layer} {noun} {edit['unit']} switched off")
        elif op == "set_filter":
            words.append(f"{layer} filter {edit['unit']} replaced")
        else:
            words.append(f"{layer} scaled by {edit['factor']:g}")
    what = ", ".join(words[:2]) + (f" and {len(words) - 2} more" if len(words) > 2 else "")
    return clean_name(f"{base_name}, {what}")


def create_edit(
    store: JobStore,
    settings: Settings,
    workspace: Workspace,
    address: str,
    ref: ModelRef,
    base: Network,
    edited: Network,
    edits: list[dict[str, Any]],
    name: str | None,
) -> dict[str, Any]:
    """Stores an edited copy in the workspace, with the test accuracy before and after."""
    check_edits(check_room(store, settings, workspace, address, job_bytes(edited.parameter_count)), settings)  # early
    dataset = base.dataset
    # an import without a data set has nothing to be tested on
    before = after = {"test_accuracy": None, "per_class_accuracy": None}
    if dataset is not None:
        test = own_data.resolve(store, dataset, "test")
        before, after = test_metrics(base, test), test_metrics(edited, test)
    # an edit of an edit is named after the first model and every change since
    base_name = clean_name(base.meta.get("base_name") or base.meta.get("name", ref.id))
    chain = [*base.meta.get("chain", []), *edits]
    title = clean_name(name) if name else edit_name(base_name, chain)
    accuracy = after["test_accuracy"]
    edited.meta.update(name=title, base=ref.id, base_name=base_name, edits=edits, chain=chain, test_accuracy=accuracy)
    record = {
        "id": "e" + uuid.uuid4().hex[:12],
        "kind": "edited",
        "origin": "edit",
        "base": ref.id,
        "line": line_from(ref),
        "name": title,
        "dataset": dataset,
        "settings": {"base": ref.id, "edits": edits},
        "metrics": after,
    }
    job = store_model(store, settings, workspace, address, edited, record)
    return {
        "id": job["id"],
        "name": title,
        "base": ref.id,
        "accuracy_before": before["test_accuracy"],
        "accuracy_after": accuracy,
        "per_class_before": before["per_class_accuracy"],
        "per_class_after": after["per_class_accuracy"],
    }


def per_class(confusion: np.ndarray) -> np.ndarray:
    """Each class's share of its test pictures read right (a confusion matrix's diagonal over its rows)."""
    return (confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)).round(5)


def test_metrics(network: Network, test: Dataset) -> dict[str, Any]:
    """A model's test accuracy, confusion matrix, per-class accuracy and each test picture's guess: what a
    finished job and an edited model both report."""
    guesses = predict_classes(network, test.images)
    confusion = np.zeros((network.classes, network.classes), np.int64)
    np.add.at(confusion, (test.labels.astype(np.intp), guesses), 1)
    return {
        "test_accuracy": float((guesses == test.labels).mean()) if len(test) else 0.0,
        "test_size": int(len(test)),
        "confusion": confusion.tolist(),
        "per_class_accuracy": per_class(confusion).tolist(),
        "predictions": guesses.tolist(),  # which pictures fill each confusion cell
    }


def workspace_view(
    store: JobStore, registry: ModelRegistry, settings: Settings, workspace: Workspace
) -> dict[str, Any]:
    """What ``GET /api/workspace`` answers: the workspace's own models and data sets, its jobs and bytes,
    and its quotas whole."""
    counts = quotas.usage(store, workspace)
    return {
        "id": workspace.id,
        "name": workspace.name,
        "models": [m for m in list_models(store, registry, workspace, 500) if m["group"] == "yours"],
        "datasets": own_data.list_datasets(store, workspace),
        "running": counts["running"],
        "queued": counts["queued"],
        "bytes": counts["bytes"],
        "limits": quotas.limits(settings),
        "quotas": quotas.report(store, settings, workspace, counts),
    }


def job_view(job: dict[str, Any], store: JobStore, settings: Settings, model_id: str) -> dict[str, Any]:
    """A job record with its history, epochs and snapshots read off its events."""
    history, epochs, snapshots = [], [], []
    for _, kind, data in store.events(job["id"]):
        if kind == "progress":
            history.append({k: data[k] for k in ("step", "epoch", "loss", "accuracy")})
        elif kind == "epoch":
            epochs.append({k: data[k] for k in ("epoch", "val_accuracy", "seconds")})
        elif kind == "snapshot":
            snapshots.append(data["step"])
    return {
        **{k: job.get(k) for k in ("name", "status", "dataset", "classes", "architecture", "layers")},
        "id": model_id,
        **{k: job.get(k) for k in ("parameters", "created", "started", "finished", "message", "settings", "metrics")},
        "kind": job.get("kind", "trained"),
        "origin": origin_of(job),
        "base": base_of(job),
        "seed": (job.get("settings") or {}).get("seed"),
        "test_accuracy": (job.get("metrics") or {}).get("test_accuracy"),
        "estimate_seconds": job.get("estimate_seconds"),
        "bytes": job.get("bytes", 0),
        **(queue_place(store, settings, job["id"]) if job["status"] == "queued" else {"position": None}),
        "history": history,
        "epochs": epochs,
        "snapshots": snapshots,
        "card": model_card(job),
    }


def shipped_view(model_id: str, network: Network) -> dict[str, Any]:
    """A shipped model as ``GET /api/models/{id}`` shows it: no job, its recipe and test figures from its file."""
    meta = network.meta
    return {
        **shipped_summary(model_id, network),
        "classes": network.labels,
        "architecture": network.spec,
        "layers": network.describe(),
        "started": None,
        "finished": None,
        "settings": meta.get("recipe", {}),
        "history": [],
        "epochs": [],
        "snapshots": [],
        "metrics": {
            "test_accuracy": meta.get("test_accuracy"),
            "test_size": meta.get("test_size") or meta.get("val_size"),
            "confusion": [],
            "per_class_accuracy": [],
            "training_seconds": meta.get("training_seconds"),
        },
    }


def model_view(
    store: JobStore, registry: ModelRegistry, settings: Settings, workspace: Workspace | None, model_id: str
) -> dict[str, Any]:
    """What ``GET /api/models/{id}`` answers: a shipped model's view, or the job's (a running job whose
    worker died is ended first), with a note when its data set's pictures are withheld from the caller."""
    if model_id in registry.shipped:
        return shipped_view(model_id, registry.shipped[model_id])
    ref = registry.resolve(model_id, workspace, remember=True)
    job = ref.job
    assert job is not None
    if job["status"] == "running" and reap_stale(store, settings.job_stale_seconds):
        job = store.get(ref.id) or job
    view = job_view(job, store, settings, model_id)
    view["pictures_note"] = own_data.pictures_withheld(store, workspace, job.get("dataset"))
    return view
