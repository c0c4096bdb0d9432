"""The training service: submit a network to train, follow it live, cancel it, list and download models."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from app.deps import QueueDep, RegistryDep, SettingsDep, StoreDep, client_address
from app.errors import ApiError
from app.jobs.store import ACTIVE, TERMINAL, now
from app.jobs.worker import reap_stale
from app.jsonutil import json_response
from app.schemas.models import CancelResponse, JobCreated, ModelJob, ModelSummary, TrainRequest
from engine.datasets import load_dataset
from engine.network import count_parameters, describe_plan, plan_network

router = APIRouter(prefix="/api/models", tags=["models"])


def multiply_adds(plans) -> int:
    """Multiply-adds of one input's forward pass: what a training step costs per image."""
    total = 0
    for plan in plans:
        if plan.type == "conv":
            f, oh, ow = plan.output_shape
            kernel = plan.config["kernel_size"]
            kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
            total += f * plan.input_shape[0] * kh * kw * oh * ow
        elif plan.type == "linear":
            total += plan.input_shape[0] * plan.output_shape[0]
    return total


def check_architecture(spec: dict[str, Any], settings, classes: int) -> list:
    """The engine's checks (a 422 naming the layer), then the service's bounds."""
    if isinstance(spec.get("layers"), list) and len(spec["layers"]) > settings.max_layers:
        raise ApiError(
            422, f"architecture: at most {settings.max_layers} layers are trained here, got {len(spec['layers'])}"
        )
    plans = plan_network(spec)
    channels, height, width = spec["input"]
    if channels != 1 or not 8 <= height <= 64 or not 8 <= width <= 64:
        raise ApiError(
            422,
            f"architecture.input: the data sets are grayscale 28x28 pictures, so the input must be "
            f"[1, H, W] with H and W from 8 to 64 (28 fits them exactly, 32 pads them); got {spec['input']}",
        )
    if spec["classes"] != classes:
        raise ApiError(422, f"architecture.classes: the data set has {classes} classes, got {spec['classes']}")
    parameters = count_parameters(plans)
    if parameters > settings.max_parameters:
        raise ApiError(
            422,
            f"architecture: {parameters} parameters is too many to train here; at most {settings.max_parameters} "
            "(use fewer filters or units, or pool before the linear layers)",
        )
    cost = multiply_adds(plans)
    if cost > settings.max_multiply_adds:
        raise ApiError(
            422,
            f"architecture: one picture costs {cost} multiply-adds, more than the {settings.max_multiply_adds} "
            "allowed here; use fewer filters, smaller kernels or stride",
        )
    return plans


@router.post(
    "",
    status_code=202,
    response_model=JobCreated,
    summary="Train a network",
    responses={
        422: {"description": "a bad architecture (names the layer) or a value out of bounds"},
        429: {"description": "the queue is full, or this client has too many jobs; see Retry-After"},
    },
)
def submit(body: TrainRequest, request: Request, settings: SettingsDep, store: StoreDep, queue: QueueDep) -> dict:
    """Queues a training job and returns its id at once; follow it at ``events``."""
    train = load_dataset(body.dataset, "train")
    plans = check_architecture(body.architecture, settings, len(train.classes))
    train_size = body.train_size or len(train)
    if train_size > len(train):
        raise ApiError(422, f"train_size: the {body.dataset} training split has {len(train)} images, got {train_size}")
    active = store.active()
    queued = sum(j["status"] == "queued" for j in active)
    if queued >= settings.max_queued_jobs:
        raise ApiError(
            429,
            f"the training queue is full ({queued} jobs waiting); try again in a minute",
            headers={"Retry-After": "60"},
        )
    client = client_address(request)
    mine = sum(j["client"] == client for j in active)
    if mine >= settings.max_jobs_per_client:
        raise ApiError(
            429,
            f"you have {mine} jobs queued or running, the most one client may have; wait for one to finish "
            "or cancel one",
            headers={"Retry-After": "30"},
        )
    job_id = "m" + uuid.uuid4().hex[:12]
    job = {
        "id": job_id,
        "created": now(),
        "client": client,
        "status": "queued",
        "kind": "trained",
        "name": body.name,
        "dataset": body.dataset,
        "classes": list(train.classes),
        "architecture": body.architecture,
        "layers": describe_plan(plans, body.architecture["input"]),
        "parameters": count_parameters(plans),
        "settings": {
            "epochs": body.epochs,
            "batch_size": body.batch_size,
            "learning_rate": body.learning_rate,
            "optimizer": body.optimizer,
            "augment": body.augment,
            "train_size": train_size,
            "seed": body.seed,
        },
    }
    store.create(job)
    position = store.position(job_id)
    store.append_event(job_id, "queued", {"position": position})
    queue.submit(job_id)
    return {"id": job_id, "status": "queued", "position": position, "events": f"/api/models/{job_id}/events"}


def shipped_summary(model_id: str, network) -> dict:
    meta = network.meta
    return {
        "id": model_id,
        "name": meta.get("name", model_id),
        "kind": "shipped",
        "dataset": meta.get("dataset", "digits"),
        "status": "done",
        "test_accuracy": meta.get("test_accuracy"),
        "parameters": network.parameter_count,
        "created": None,
    }


@router.get("", response_model=list[ModelSummary], summary="Shipped and recent models")
def list_models(
    store: StoreDep, registry: RegistryDep, settings: SettingsDep, limit: int = Query(20, ge=1, le=100)
) -> list[dict]:
    """The shipped models first, then the most recent trained or edited ones, newest first."""
    reap_stale(store, settings.job_stale_seconds)
    trained = [
        {
            "id": job["id"],
            "name": job["name"],
            "kind": job.get("kind", "trained"),
            "dataset": job["dataset"],
            "status": job["status"],
            "test_accuracy": (job["metrics"] or {}).get("test_accuracy"),
            "parameters": job.get("parameters"),
            "created": job["created"],
        }
        for job in store.recent(limit)
    ]
    return [shipped_summary(i, n) for i, n in registry.shipped.items()] + trained


def job_view(job: dict, store) -> dict:
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
        **{k: job.get(k) for k in ("id", "name", "status", "dataset", "classes", "architecture", "layers")},
        **{k: job.get(k) for k in ("parameters", "created", "started", "finished", "message", "settings", "metrics")},
        "kind": job.get("kind", "trained"),
        "position": store.position(job["id"]) if job["status"] == "queued" else None,
        "history": history,
        "epochs": epochs,
        "snapshots": snapshots,
    }


def shipped_view(model_id: str, network) -> dict:
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


@router.get("/{model_id}", response_model=ModelJob, summary="A model and its training")
def get_model(model_id: str, store: StoreDep, registry: RegistryDep, settings: SettingsDep) -> Response:
    """Status, settings, the layers' arithmetic, loss and accuracy so far, snapshots and test metrics."""
    if model_id in registry.shipped:
        return json_response(shipped_view(model_id, registry.shipped[model_id]))
    job = store.get(model_id)
    if job is None:
        raise ApiError(404, f"no model {model_id!r}; GET /api/models lists them")
    if job["status"] == "running" and reap_stale(store, settings.job_stale_seconds):
        job = store.get(model_id) or job
    return json_response(job_view(job, store))


@router.get(
    "/{model_id}/events",
    summary="Follow a job live (server-sent events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "queued, started, progress, ..."}},
)
async def events(
    model_id: str,
    request: Request,
    last_event_id: Annotated[int | None, Header(ge=0, alias="Last-Event-ID")] = None,
    after: Annotated[int | None, Query(ge=0, description="same as the Last-Event-ID header")] = None,
) -> StreamingResponse:
    """``queued`` {position}, ``started``, ``progress`` {epoch, step, steps, loss, accuracy,
    examples_per_second, eta_seconds}, ``epoch`` {epoch, val_accuracy}, ``snapshot`` {step, filters},
    then ``done`` {test_accuracy, confusion}, ``failed`` {message} or ``cancelled``. Every event has an
    id; reconnecting with ``Last-Event-ID`` resumes after it. The stream closes after the last event."""
    hub = request.app.state.events
    job = await hub_job(request, model_id)
    if job is None:
        raise ApiError(404, f"no training job {model_id!r}; GET /api/models lists them")
    stream = hub.follow(model_id, last_event_id if last_event_id is not None else after or 0)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


async def hub_job(request: Request, model_id: str) -> dict | None:
    import anyio

    hub = request.app.state.events
    return await anyio.to_thread.run_sync(hub.store.get, model_id, limiter=hub.limiter)


@router.post("/{model_id}/cancel", status_code=202, response_model=CancelResponse, summary="Stop a job")
def cancel(model_id: str, store: StoreDep) -> dict:
    """A queued job is cancelled at once; a running one stops within a second or two."""
    job = store.get(model_id)
    if job is None:
        raise ApiError(404, f"no training job {model_id!r}")
    if job["status"] == "queued" and store.transition(
        model_id, ["queued"], "cancelled", finished=now(), message="cancelled"
    ):
        store.append_event(model_id, "cancelled", {"step": 0})
        return {"id": model_id, "status": "cancelled", "cancel_requested": True}
    if job["status"] in ACTIVE:
        store.update(model_id, cancel=True)
        return {"id": model_id, "status": job["status"], "cancel_requested": True}
    assert job["status"] in TERMINAL
    raise ApiError(409, f"{model_id} is already {job['status']}; only queued or running jobs can be cancelled")


@router.get(
    "/{model_id}/weights",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the network as .npz"}},
    summary="Download a model",
)
def weights(model_id: str, registry: RegistryDep, snapshot: int | None = Query(None, ge=0)) -> Response:
    """The ``.npz`` with the spec, the weights and the metadata: ``engine.load_network`` reads it."""
    data = registry.blob(model_id, snapshot)
    name = f"{model_id}" + (f"-step{snapshot}" if snapshot is not None else "") + ".npz"
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
