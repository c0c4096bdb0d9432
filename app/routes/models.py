"""The training service: submit a network to train, follow it live, cancel it, list, share, copy and
download models. Every stored model belongs to a workspace; another workspace's is 404 here."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from app.deps import (
    AddressDep,
    OwnerDep,
    QueueDep,
    RegistryDep,
    SettingsDep,
    StoreDep,
    ViewerDep,
    client_address,
    current_workspace,
)
from app.errors import ApiError, error_responses
from app.jsonutil import json_response
from app.schemas.models import (
    CancelResponse,
    CopyResponse,
    JobCreated,
    ModelJob,
    ModelSummary,
    ShareResponse,
    TrainRequest,
)
from app.services import lineage, models
from app.services import training as service

router = APIRouter(prefix="/api/models", tags=["models"])

NOT_YOURS = error_responses(401, 404)


@router.post(
    "",
    status_code=202,
    response_model=JobCreated,
    summary="Train a network",
    responses=error_responses(
        401,
        s404="no data set (one of yours) or start_from model by that name that you may see",
        s422="a bad architecture (names the layer), a value out of bounds, too much memory or too long a job",
        s429="your workspace's jobs or storage are at their cap; see Retry-After",
    ),
)
def submit(
    body: TrainRequest,
    settings: SettingsDep,
    store: StoreDep,
    registry: RegistryDep,
    queue: QueueDep,
    workspace: OwnerDep,
    address: AddressDep,
) -> dict:
    """Queues a training job and returns its id at once, with its place in the queue and the predicted
    wait; follow it at ``events``. Without a workspace, one is made and its token returned."""
    job = service.submit_training(store, settings, registry, workspace, address, body.model_dump(), wake=queue.submit)
    return {
        "id": job["id"],
        "status": "queued",
        "position": job["position"],
        "wait_seconds": job["wait_seconds"],
        "estimate_seconds": job["estimate_seconds"],
        "seed": job["settings"]["seed"],
        "events": f"/api/models/{job['id']}/events",
    }


@router.get("", response_model=list[ModelSummary], summary="Shipped models, yours, and those shared with you")
def list_models(
    store: StoreDep,
    registry: RegistryDep,
    settings: SettingsDep,
    workspace: ViewerDep,
    limit: int = Query(50, ge=1, le=500),
) -> list[dict]:
    """The shipped models first (``group`` "shipped"), then your workspace's (``yours``, newest first),
    then the ones shared with you (``shared``: links you opened)."""
    return models.list_models(store, registry, workspace, limit, settings.job_stale_seconds)


@router.get("/{model_id}", response_model=ModelJob, summary="A model and its training", responses=NOT_YOURS)
def get_model(
    model_id: str, store: StoreDep, registry: RegistryDep, settings: SettingsDep, workspace: ViewerDep
) -> Response:
    """Status, settings, the layers' arithmetic, loss and accuracy so far, snapshots and test metrics;
    while queued, its place in line and the predicted wait. Opening a share link's id lists the model
    under your "shared with you"."""
    return json_response(models.model_view(store, registry, settings, workspace, model_id))


@router.get(
    "/{model_id}/events",
    summary="Follow a job live (server-sent events)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "queued, started, progress, ..."},
        **error_responses(404, s429="too many streams open from your workspace or address"),
    },
)
async def events(
    model_id: str,
    request: Request,
    last_event_id: Annotated[int | None, Header(ge=0, alias="Last-Event-ID")] = None,
    after: Annotated[int | None, Query(ge=0, description="same as the Last-Event-ID header")] = None,
) -> StreamingResponse:
    """``queued`` {position, wait_seconds}, ``started``, ``progress`` {epoch, step, steps, loss, accuracy,
    examples_per_second, eta_seconds}, ``epoch`` {epoch, val_accuracy}, ``snapshot`` {step, filters},
    then ``done`` {test_accuracy, confusion}, ``failed`` {message} or ``cancelled``. Every event has an
    id; reconnecting with ``Last-Event-ID`` resumes after it. The stream closes after the last event."""
    hub = request.app.state.events
    registry = request.app.state.registry

    def resolve() -> tuple[str, str | None]:
        workspace = current_workspace(request)
        return registry.resolve(model_id, workspace).id, workspace.id if workspace else None

    if model_id in registry.shipped:
        raise ApiError(404, f"{model_id} is a shipped model: it has no training job to follow")
    job_id, workspace_id = await anyio.to_thread.run_sync(resolve, limiter=hub.limiter)
    lease = await hub.admit(workspace_id, client_address(request))
    stream = hub.follow(job_id, last_event_id if last_event_id is not None else after or 0, lease)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


@router.post(
    "/{model_id}/cancel", status_code=202, response_model=CancelResponse, summary="Stop a job", responses=NOT_YOURS
)
def cancel(model_id: str, store: StoreDep, registry: RegistryDep, workspace: ViewerDep) -> dict:
    """A queued job is cancelled at once; a running one stops within a second or two. A cancel answered
    202 always wins: the job ends ``cancelled``, never ``done``."""
    return service.cancel_job(store, registry.resolve(model_id, workspace))


@router.post("/{model_id}/share", response_model=ShareResponse, summary="A link to share a model", responses=NOT_YOURS)
def share(model_id: str, store: StoreDep, registry: RegistryDep, workspace: ViewerDep) -> dict:
    """An unguessable share id and the pages' URLs: anyone with it may use the model read-only, and copy
    it into their own workspace."""
    return lineage.share_model(store, registry.resolve(model_id, workspace))


@router.post(
    "/{model_id}/copy",
    status_code=201,
    response_model=CopyResponse,
    summary="Copy a model into your workspace",
    responses=error_responses(404, 429),
)
def copy(
    model_id: str,
    store: StoreDep,
    registry: RegistryDep,
    settings: SettingsDep,
    workspace: OwnerDep,
    address: AddressDep,
) -> dict:
    """Your own copy of a model you can see (one shared with you, a shipped one, one of yours), to edit
    or share on."""
    return models.copy_model(store, registry, settings, workspace, address, model_id)


@router.get(
    "/{model_id}/weights",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the network as .npz"}, **NOT_YOURS},
    summary="Download a model",
)
def weights(
    model_id: str, registry: RegistryDep, workspace: ViewerDep, snapshot: int | None = Query(None, ge=0)
) -> Response:
    """The ``.npz`` with the spec, the weights and the metadata: ``engine.load_network`` reads it."""
    data = registry.blob(model_id, snapshot, workspace)
    name = f"{model_id}" + (f"-step{snapshot}" if snapshot is not None else "") + ".npz"
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
