"""Training, shared by the routes and the worker: what a workspace may submit, what a job is predicted to
cost and may keep, where it stands in the queue, cancelling it, and its card. Models once made (listed,
viewed, stored, copied, edited) are :mod:`app.services.models`'.
"""

from __future__ import annotations

import io
import secrets
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from app.config import Settings
from app.errors import Conflict, NotFound, OverQuota, Refused
from app.jobs.store import JobStore, QueueCaps, QueueFull, now
from app.services import datasets as own_data
from app.services.lineage import line_from
from app.services.quotas import check_room
from app.services.registry import ModelRef, ModelRegistry
from app.services.workspaces import Workspace
from engine.datasets import DATASETS, Dataset, load_dataset
from engine.finetune import fine_tune_network
from engine.memory import largest_layer, megabytes, training_bytes
from engine.network import Network
from engine.spec import LayerPlan, count_parameters, describe_plan, first_trained, multiply_adds, plan_network
from engine.train import training_defaults

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
    defaults = _fill_defaults(request, len(train), data["augmentable"])
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
        "id": "m" + uuid.uuid4().hex[:12],
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
        store.put_blob(f"{job['id']}/initial", network_file(initial))
    return _enqueue(store, settings, job, wake)


def _fill_defaults(request: dict[str, Any], pictures: int, augmentable: bool) -> dict[str, Any]:
    """Fills what the request left out: a seed of its own (the job reports it, to repeat the run) and the
    defaults for a data set of ``pictures`` (epochs, batch size, learning rate, augmentation)."""
    if request.get("seed") is None:
        request["seed"] = secrets.randbelow(2**31)
    defaults = training_defaults(pictures, augmentable)
    for key in ("epochs", "batch_size", "learning_rate", "augment"):
        if request.get(key) is None:
            request[key] = defaults[key]
    return defaults


def _enqueue(store: JobStore, settings: Settings, job: dict[str, Any], wake: Callable[[str], None]) -> dict[str, Any]:
    """Queues the job, counted against the caps under the queue's lock (429 past one), says where it
    stands and wakes a worker."""
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


def network_file(network: Network) -> bytes:
    """The network as the ``.npz`` the store keeps and ``GET /api/models/{id}/weights`` serves."""
    buffer = io.BytesIO()
    network.save(buffer)
    return buffer.getvalue()
