"""The training service's rules, shared by the routes and the worker: what a workspace may submit and
store, what a job is predicted to cost, where it stands in the queue, and how models are listed,
shared, copied and edited. Routes validate, call one function here and serialise what it returns.
"""

from __future__ import annotations

import io
import secrets
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from app.config import Settings
from app.errors import Conflict, NotFound, OverQuota, Refused
from app.jobs.stale import reap_stale
from app.jobs.store import JobStore, QueueCaps, QueueFull, now
from app.services import datasets as own_data
from app.services import quotas
from app.services.lineage import base_of, line_from, origin_of
from app.services.membership import publications_for
from app.services.quotas import check_edits, check_room
from app.services.registry import ModelRef, ModelRegistry
from app.services.workspaces import Workspace
from engine import budget
from engine.datasets import DATASETS, Dataset, load_dataset
from engine.finetune import fine_tune_network
from engine.memory import largest_layer, megabytes, training_bytes
from engine.names import clean_name
from engine.network import Network
from engine.spec import LayerPlan, count_parameters, describe_plan, first_trained, multiply_adds, plan_network
from engine.train import predict_classes, training_defaults

BACKWARD_FACTOR = 2  # the backward pass through a layer costs about two forward passes (to weights and inputs)


def estimate_seconds(
    plans: Sequence[LayerPlan], images: int, epochs: int, test_images: int, rate: float, frozen: Sequence[str] = ()
) -> float:
    """A job's predicted training time: per image and epoch, the forward pass's multiply-adds and twice
    those of the layers the backward pass visits (down to the first that trains, :func:`first_trained`),
    plus a test pass per epoch, at ``rate`` multiply-adds a second, plus a second of start-up."""
    macs = multiply_adds(plans)
    step = macs + BACKWARD_FACTOR * multiply_adds(plans[first_trained(plans, frozen) :])
    work = step * images * epochs + macs * test_images * epochs
    return 1.0 + work / rate


def check_architecture(
    spec: dict[str, Any], settings: Settings, classes: int, batch_size: int, pictures: Sequence[int] = (1, 28, 28)
) -> list[LayerPlan]:
    """The engine's checks (a 422 naming the layer), then the service's bounds: layers, input size (the
    data set's ``pictures`` channels, sides within bounds), classes, parameters, multiply-adds, and the
    memory a training batch takes."""
    if isinstance(spec.get("layers"), list) and len(spec["layers"]) > settings.max_layers:
        raise Refused(f"architecture: at most {settings.max_layers} layers are trained here, got {len(spec['layers'])}")
    plans = plan_network(spec)
    channels, height, width = spec["input"]
    low, high = settings.model_input_sides
    c, h, w = pictures
    if channels != c or not low <= height <= high or not low <= width <= high:
        kind = "grayscale" if c == 1 else "colour"
        raise Refused(
            f"architecture.input: the data set's pictures are {kind} {h}x{w}, so the input must be "
            f"[{c}, H, W] with H and W from {low} to {high} ({h} fits them exactly, more pads them); "
            f"got {spec['input']}"
        )
    if spec["classes"] != classes:
        raise Refused(f"architecture.classes: the data set has {classes} classes, got {spec['classes']}")
    parameters = count_parameters(plans)
    if parameters > settings.max_parameters:
        raise Refused(
            f"architecture: {parameters} parameters is too many to train here; at most {settings.max_parameters} "
            "(use fewer filters or units, or pool before the linear layers)"
        )
    cost = multiply_adds(plans)
    if cost > settings.max_multiply_adds:
        raise Refused(
            f"architecture: one picture costs {cost} multiply-adds, more than the {settings.max_multiply_adds} "
            "allowed here; use fewer filters, smaller kernels or stride"
        )
    check_training_memory(plans, batch_size, settings.max_training_bytes)
    return plans


def check_training_memory(plans: Sequence[LayerPlan], batch_size: int, limit: int) -> None:
    """Refuses a design whose training batch would take more than ``limit`` bytes, naming its largest layer."""
    per_picture = training_bytes(plans)
    if per_picture * batch_size <= limit:
        return
    layer = largest_layer(plans)
    shape = layer.output_shape
    what = f"{shape[0]:,} maps of {shape[1]}x{shape[2]}" if len(shape) == 3 else f"{shape[0]:,} units"
    raise Refused(
        f"architecture: {layer.name}: {what} are {megabytes(layer.output_bytes + layer.columns_bytes)} per picture, "
        f"and a training batch of {batch_size} needs {megabytes(per_picture * batch_size)} in all; the limit is "
        f"{megabytes(limit)} (use fewer filters, stride or pooling earlier, or a smaller batch)"
    )


def job_bytes(parameters: int) -> int:
    """What a finished model's weights take in the store (float32, plus its spec and metadata)."""
    return parameters * 4 + 16_384


def snapshot_count(parameters: int, budget: int, most: int) -> int:
    """How many snapshots a job keeps within its byte budget (its final weights and events come first)."""
    each = job_bytes(parameters)
    room = budget - each - 2 * 1024 * 1024  # events: progress points and snapshot filters stay well under this
    return max(0, min(most, room // each))


# -- the queue -----------------------------------------------------------------------------------


def submit_training(
    store: JobStore,
    settings: Settings,
    registry: ModelRegistry,
    workspace: Workspace,
    address: str,
    request: dict[str, Any],
    wake: Callable[[str], None],
) -> dict[str, Any]:
    """Checks a training request against the design bounds, the time estimate and the workspace's room,
    then queues it (atomically counted against the caps) and ``wake``s a worker. Returns the job record.
    With ``start_from``, the design is the start model's with a new output layer, and its weights are
    stored with the job for the worker to start from."""
    train, test, data = training_data(store, settings, workspace, request["dataset"])
    job_id = "m" + uuid.uuid4().hex[:12]
    if request.get("seed") is None:
        request["seed"] = secrets.randbelow(2**31)  # a run of its own; the job reports it to repeat the run
    defaults = training_defaults(len(train), data["augmentable"])
    for key in ("epochs", "batch_size", "learning_rate", "augment"):
        if request.get(key) is None:
            request[key] = defaults[key]
    initial, base, line = None, None, []
    if request.get("start_from"):
        start = registry.resolve(request["start_from"], workspace)
        initial = fine_tune_start(registry.network(start), request, train, data["input"])
        request["architecture"] = initial.spec
        base, line = start.id, line_from(start)
    plans = check_architecture(
        request["architecture"], settings, len(train.classes), request["batch_size"], data["input"]
    )
    train_size = check_train_size(request, train)
    estimate = check_job_size(settings, plans, train_size, request["epochs"], len(test), request.get("freeze") or ())
    parameters = count_parameters(plans)
    check_room(store, settings, workspace, address, job_bytes(parameters))
    job = {
        "id": job_id,
        "created": now(),
        "client": address,
        "workspace": workspace.id,
        "status": "queued",
        "kind": "trained",
        "origin": "trained",
        "base": base,
        "line": line,
        "name": request["name"],
        "dataset": request["dataset"],
        "preprocess": data["preprocess"],
        "classes": list(train.classes),
        "architecture": request["architecture"],
        "layers": describe_plan(plans, request["architecture"]["input"]),
        "parameters": parameters,
        "estimate_seconds": round(estimate, 1),
        "settings": {k: request[k] for k in ("epochs", "batch_size", "learning_rate", "optimizer", "augment", "seed")}
        | {"train_size": train_size, "start_from": request.get("start_from"), "freeze": request.get("freeze") or []}
        | {"defaults": defaults["words"]},
        "data": data["card"],
    }
    if initial is not None:
        store.put_blob(f"{job_id}/initial", network_file(initial))
    caps = QueueCaps(
        settings.max_jobs_per_workspace,
        settings.max_jobs_per_client,
        settings.max_queued_jobs,
        settings.max_queued_seconds_per_workspace,
        settings.max_queued_seconds_per_client,
    )
    try:
        store.submit(job, caps)
    except QueueFull as full:
        raise OverQuota(str(full), retry_after=30) from None
    place = queue_place(store, settings, job["id"])
    store.append_event(job["id"], "queued", place)
    wake(job["id"])
    return {**job, **place}


def check_job_size(
    settings: Settings, plans: Sequence[LayerPlan], pictures: int, epochs: int, tests: int, frozen: Sequence[str] = ()
) -> float:
    """The job's predicted seconds, refused past the time a job may take or the bytes its weights may store."""
    estimate = estimate_seconds(plans, pictures, epochs, tests, settings.training_macs_per_second, frozen)
    if estimate > settings.max_training_seconds:
        raise Refused(
            f"this job would train for about {estimate:,.0f} s, more than the {settings.max_training_seconds:g} s "
            f"a job may take here ({multiply_adds(plans):,} multiply-adds a picture x {pictures:,} pictures x "
            f"{epochs} epochs); use fewer epochs, fewer pictures or a smaller network"
        )
    parameters = count_parameters(plans)
    if job_bytes(parameters) * 2 > settings.max_job_bytes:
        raise Refused(
            f"architecture: {parameters:,} parameters take {megabytes(job_bytes(parameters))}; a job may store "
            f"{megabytes(settings.max_job_bytes)}"
        )
    return estimate


def training_data(
    store: JobStore, settings: Settings, workspace: Workspace, name: str
) -> tuple[Dataset, Dataset, dict[str, Any]]:
    """The data set's train and test splits, its pictures' shape, how pictures are prepared for it, and
    (for one of the workspace's own) what a model card says of it; each class must have enough examples."""
    if name in DATASETS:
        train, test = load_dataset(name, "train"), load_dataset(name, "test")
        data: dict[str, Any] = {"input": [1, 28, 28], "preprocess": own_data.preparation(store, name), "card": None}
        return train, test, {**data, "augmentable": True}
    doc = own_data.owned(store, workspace, name)
    counts = own_data.summary(doc)["counts"]
    short = {
        c: n["train"] + n["test"] for c, n in counts.items() if n["train"] + n["test"] < settings.dataset_min_per_class
    }
    if short:
        words = ", ".join(f"{c!r} has {n}" for c, n in short.items())
        raise Refused(f"dataset: each class needs at least {settings.dataset_min_per_class} examples; {words}")
    train, test = own_data.resolve_splits(store, name)
    card = {"name": doc["name"], "classes": doc["classes"], "counts": counts}
    data = {"input": doc["input"], "preprocess": doc["kind"], "card": card}
    return train, test, {**data, "augmentable": doc["kind"] == "digit"}  # drawings warp; photos have no warp yet


def fine_tune_start(start: Network, request: dict[str, Any], train: Dataset, pictures: list[int]) -> Network:
    """The network a fine-tune starts from: the start model's layers, a new output layer for the data set."""
    network, frozen = fine_tune_network(
        start, len(train.classes), pictures, request.get("freeze") or [], request["seed"]
    )
    request["freeze"] = frozen
    return network


def check_train_size(request: dict[str, Any], train: Dataset) -> int:
    train_size = request.get("train_size") or len(train)
    if train_size > len(train):
        raise Refused(f"train_size: the {request['dataset']} training split has {len(train)} images, got {train_size}")
    return int(train_size)


def model_card(job: dict[str, Any]) -> dict[str, Any] | None:
    """For a model trained on a data set of one's own: the data set, its classes and examples per class,
    how it was trained, and its accuracy per class on the held-out examples."""
    data = job.get("data")
    if not data:
        return None
    options = job.get("settings") or {}
    start = options.get("start_from")
    frozen = options.get("freeze") or []
    how = f"fine-tuned from {start}" + (f", {', '.join(frozen)} frozen" if frozen else "") if start else "from scratch"
    per_class = (job.get("metrics") or {}).get("per_class_accuracy")
    return {
        "dataset": data["name"],
        "dataset_id": job["dataset"],
        "classes": data["classes"],
        "examples": data["counts"],
        "trained": how,
        "start_from": start,
        "freeze": frozen,
        "epochs": options.get("epochs"),
        "held_out_accuracy": dict(zip(data["classes"], per_class)) if per_class else None,
    }


def queue_places(store: JobStore, settings: Settings) -> dict[str, dict[str, Any]]:
    """``{position, wait_seconds}`` of every queued job, from one reading of the active jobs: its place in
    the fair order, and the predicted time until it starts (what runs now and what is ahead of it,
    shared among the training slots)."""
    active = store.active()  # one reading for the order and the estimates: jobs start and end meanwhile
    clock = now()
    wait = sum(
        max(0.0, (j.get("estimate_seconds") or 0) - (clock - (j["started"] or clock)))
        for j in active
        if j["status"] == "running"
    )
    places = {}
    for position, job in enumerate(store.fair_queue(active), start=1):
        places[job["id"]] = {"position": position, "wait_seconds": round(wait / settings.training_slots, 1)}
        wait += job.get("estimate_seconds") or 0
    return places


def queue_place(store: JobStore, settings: Settings, job_id: str) -> dict[str, Any]:
    """One queued job's place and predicted wait (:func:`queue_places`); both None when it is not queued."""
    return queue_places(store, settings).get(job_id, {"position": None, "wait_seconds": None})


def cancel_job(store: JobStore, ref: ModelRef) -> dict[str, Any]:
    """Cancels the viewer's own job: a queued one at once; a running one is marked, and a mark that lands
    always wins (the job ends ``cancelled``, never ``done``)."""
    if not ref.owned or ref.job is None:
        raise NotFound(f"no training job {ref.id!r} in your workspace")
    job_id = ref.id
    if store.transition(job_id, ["queued"], "cancelled", finished=now(), message="cancelled", cancel=True):
        store.append_event(job_id, "cancelled", {"step": 0})
        return {"id": job_id, "status": "cancelled", "cancel_requested": True}
    if store.request_cancel(job_id):
        current = store.get(job_id) or ref.job
        return {"id": job_id, "status": current["status"], "cancel_requested": True}
    current = store.get(job_id) or ref.job
    raise Conflict(f"{job_id} is already {current['status']}; only queued or running jobs can be cancelled")


# -- models: listing, sharing, copying -------------------------------------------------------------

ORIGINS = ("trained", "copy", "edit", "import", "shipped")


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


def network_file(network: Network) -> bytes:
    """The network as the ``.npz`` the store keeps and ``GET /api/models/{id}/weights`` serves."""
    buffer = io.BytesIO()
    network.save(buffer)
    return buffer.getvalue()


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
        "quotas": quotas.report(store, settings, workspace),
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
