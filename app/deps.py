"""Dependencies the routes receive: the models, the settings and the job store, set up once at start-up."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from app.config import Settings
from app.errors import ApiError
from app.jobs.queue import TrainingQueue
from app.jobs.registry import ModelRegistry
from app.jobs.store import JobStore
from engine.network import Network


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> JobStore:
    return request.app.state.store


def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


def get_queue(request: Request) -> TrainingQueue:
    return request.app.state.queue


def get_model(
    request: Request,
    model: str = Query(
        "lenet",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="a model id: lenet, fashion, or one trained here (GET /api/models)",
    ),
    snapshot: int | None = Query(None, ge=0, description="a training step of that model (its snapshots)"),
) -> Network:
    return request.app.state.registry.get(model, snapshot)


def get_model_id(
    model: str = Query("lenet", pattern=r"^[A-Za-z0-9_-]{1,64}$"),
) -> str:
    return model


async def one_file_part(request: Request) -> None:
    """Refuses a form with several ``file`` parts (which one was meant?) instead of taking the last."""
    form = await request.form()
    count = len(form.getlist("file"))
    if count > 1:
        raise ApiError(422, f"file: {count} files were sent in the field 'file'; send exactly one picture")


def client_address(request: Request) -> str:
    """The caller's address (behind a trusted proxy, uvicorn's --forwarded-allow-ips makes it the real one)."""
    return request.client.host if request.client else "unknown"


ModelDep = Annotated[Network, Depends(get_model)]
ModelIdDep = Annotated[str, Depends(get_model_id)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[JobStore, Depends(get_store)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
QueueDep = Annotated[TrainingQueue, Depends(get_queue)]
