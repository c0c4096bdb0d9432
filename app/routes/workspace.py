"""Your workspace: what it holds, how much of its limits it uses, and a fresh one for a script."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.deps import AddressDep, OwnerDep, RegistryDep, SettingsDep, StoreDep
from app.schemas.models import WorkspaceCreated, WorkspaceView
from app.services import quotas
from app.services import training as service

router = APIRouter(prefix="/api/workspace", tags=["workspace"])


@router.get("", response_model=WorkspaceView, summary="Your workspace")
def workspace(store: StoreDep, registry: RegistryDep, settings: SettingsDep, workspace: OwnerDep) -> dict:
    """Its id and name, its own models, data sets, running and queued jobs, the bytes it stores and its
    limits. A first visit without a cookie or token is given a workspace here."""
    counts = quotas.usage(store, workspace)
    models = [m for m in service.list_models(store, registry, workspace, 500) if m["group"] == "yours"]
    return {
        "id": workspace.id,
        "name": workspace.name,
        "models": models,
        "datasets": [],
        "running": counts["running"],
        "queued": counts["queued"],
        "bytes": counts["bytes"],
        "limits": service.limits(settings),
    }


@router.post("", status_code=201, response_model=WorkspaceCreated, summary="A new workspace (for scripts)")
def create_workspace(request: Request, address: AddressDep) -> dict:
    """A fresh, empty workspace and its token; send it as ``Authorization: Bearer <token>``."""
    workspace, token = request.app.state.workspaces.create(address)
    return {"id": workspace.id, "token": token}
