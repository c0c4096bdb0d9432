"""Dependencies the routes receive: the models, the settings and the job store, set up once at start-up."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Query, Request

from app.config import Settings
from app.errors import ApiError
from app.jobs.queue import TrainingQueue
from app.jobs.store import JobStore
from app.services.registry import ModelRegistry
from app.services.workspaces import Workspace, Workspaces, request_token
from engine.network import Network


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> JobStore:
    return request.app.state.store


def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


def get_queue(request: Request) -> TrainingQueue:
    return request.app.state.queue


_UNKNOWN = object()
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SAME_SITE_FETCHES = ("same-origin", "none")  # Sec-Fetch-Site: this origin's pages, or the person's own typing


def refuse_other_origins(request: Request) -> None:
    """A request that would change something with the workspace cookie comes from this server's own pages:
    its ``Origin`` is this origin (or ``CONVSCOPE_PUBLIC_URL``'s), or, without one, ``Sec-Fetch-Site`` says
    same-origin. Anything else is 403 (cross-site request forgery, from the same site too: a page at
    another port or a sibling subdomain gets the cookie, SameSite=Lax notwithstanding). Scripts are
    unaffected: they send the token as a bearer token, which no other page can."""
    origin = request.headers.get("origin")
    if origin is not None:
        settings: Settings = request.app.state.settings
        own = {f"{request.url.scheme}://{request.url.netloc}".lower()}
        if settings.public_url:
            public = urlsplit(settings.public_url)
            own.add(f"{public.scheme}://{public.netloc}".lower())
        if origin.lower() in own:
            return
        came_from = f"a page at {origin[:100]}"
    else:
        site = request.headers.get("sec-fetch-site")
        if site is None or site in SAME_SITE_FETCHES:
            return  # a script, an old browser or a bookmark: no page of another origin asked for this
        came_from = f"a {site} page"
    raise ApiError(
        403,
        f"this request came from {came_from}, not from this server's own pages, and carried your workspace "
        "cookie: refused, so that no other page can act in your workspace (a script sends the workspace token "
        "as 'Authorization: Bearer <token>' instead)",
    )


def current_workspace(request: Request) -> Workspace | None:
    """The workspace the request's bearer token or cookie names, or None. An unknown bearer token is a
    401 (a script should know its token is wrong); an unknown cookie is a visitor to be given a new one."""
    known = getattr(request.state, "workspace", _UNKNOWN)
    if known is not _UNKNOWN:
        return known  # type: ignore[return-value]
    token, bearer = request_token(request.headers, request.cookies)
    if token is not None and not bearer and request.method not in SAFE_METHODS:
        refuse_other_origins(request)
    workspace = None
    if token is not None and len(token) <= 128:
        workspaces: Workspaces = request.app.state.workspaces
        workspace = workspaces.from_token(token)
    if workspace is None and bearer:
        raise ApiError(
            401,
            "Authorization: that bearer token names no workspace on this server; POST /api/workspace makes one "
            "and returns its token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.workspace = workspace
    return workspace


def owning_workspace(request: Request) -> Workspace:
    """The request's workspace, made now if it has none: its token goes back with the answer
    (``Set-Cookie`` and ``X-Workspace-Token``, see :class:`app.services.workspaces.WorkspaceCookie`)."""
    workspace = current_workspace(request)
    if workspace is None:
        workspaces: Workspaces = request.app.state.workspaces
        workspace, token = workspaces.create(client_address(request))
        request.state.workspace = workspace
        request.state.new_workspace_token = token
    return workspace


def get_model(
    request: Request,
    model: str = Query(
        "lenet",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="a model id: lenet, fashion, one of your workspace's (GET /api/models) or a share link's id",
    ),
    snapshot: int | None = Query(None, ge=0, description="a training step of that model (its snapshots)"),
) -> Network:
    registry: ModelRegistry = request.app.state.registry
    if model in registry.shipped:  # the shipped models need no workspace: no store read at all
        return registry.get(model, snapshot)
    return registry.get(model, snapshot, current_workspace(request))


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
ViewerDep = Annotated[Workspace | None, Depends(current_workspace)]
OwnerDep = Annotated[Workspace, Depends(owning_workspace)]
AddressDep = Annotated[str, Depends(client_address)]
ModelIdDep = Annotated[str, Depends(get_model_id)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[JobStore, Depends(get_store)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
QueueDep = Annotated[TrainingQueue, Depends(get_queue)]
