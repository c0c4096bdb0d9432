"""Your workspace: what it holds, how much of its limits it uses, and a fresh one for a script."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.deps import AddressDep, OwnerDep, RegistryDep, SettingsDep, StoreDep
from app.schemas.models import WorkspaceCreated, WorkspaceView
from app.services import models

router = APIRouter(prefix="/api/workspace", tags=["workspace"])


@router.get("", response_model=WorkspaceView, summary="Your workspace")
def workspace(store: StoreDep, registry: RegistryDep, settings: SettingsDep, workspace: OwnerDep) -> dict:
    """Its id and name, its own models and data sets, running and queued jobs, the bytes it stores, and
    every quota: each resource's limit and use (``quotas``; ``limits`` has the caps alone). A first visit
    without a cookie or token is given a workspace here."""
    return models.workspace_view(store, registry, settings, workspace)


@router.post("", status_code=201, response_model=WorkspaceCreated, summary="A new workspace (for scripts)")
def create_workspace(request: Request, address: AddressDep) -> dict:
    """A fresh, empty workspace and its token; send it as ``Authorization: Bearer <token>``."""
    workspace, token = request.app.state.workspaces.create(address)
    return {"id": workspace.id, "token": token}
