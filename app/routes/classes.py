"""A class on one server: class codes, the lecturer's live view, publishing, and a design challenge."""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from app.deps import AddressDep, OwnerDep, RegistryDep, SettingsDep, StoreDep, ViewerDep, current_workspace
from app.errors import ApiError, error_responses
from app.jobs import classes as service
from app.jsonutil import json_response
from app.schemas.classes import (
    Challenge,
    ChallengeAnswer,
    ChallengeView,
    ClassCreated,
    ClassList,
    CreateClass,
    Entry,
    JoinClass,
    Joined,
    Leaderboard,
    LeaderboardRow,
    Publish,
    RenameMember,
)
from app.workspaces import RecentEvents

router = APIRouter(prefix="/api/classes", tags=["classes"])

MEMBERS_ONLY = error_responses(401, 404)
LECTURERS_ONLY = error_responses(401, 403, 404)


@router.post("", status_code=201, response_model=ClassCreated, summary="Make a class", responses=error_responses(401))
def create(body: CreateClass, store: StoreDep, settings: SettingsDep, workspace: OwnerDep) -> Response:
    """Your workspace becomes the class's lecturer. The ``code`` (6 characters, no 0/O/1/I) is what
    students type; the ``lecturer_token`` (secret, shown once) makes another browser a lecturer too."""
    return json_response(service.create_class(store, settings, workspace, body.name), status_code=201)


@router.post(
    "/join",
    response_model=Joined,
    summary="Join a class with its code",
    responses=error_responses(401, 403, 404, s429="too many wrong codes from your address"),
)
async def join(
    body: JoinClass, request: Request, store: StoreDep, settings: SettingsDep, workspace: OwnerDep, address: AddressDep
) -> Response:
    """As a student, or as a lecturer with the class's ``lecturer_token``. A wrong code is 404 after a
    constant delay, and an address that sends many wrong codes gets 429 for a while."""
    wrong: RecentEvents = request.app.state.wrong_codes
    if wrong.count(address) >= settings.class_code_failures_per_address:
        raise ApiError(
            429, "too many wrong class codes from your address; wait a few minutes", headers={"Retry-After": "300"}
        )
    started = time.monotonic()
    try:
        joined = await anyio.to_thread.run_sync(
            service.join_class, store, settings, workspace, body.code, body.lecturer_token, body.name
        )
    except service.ClassNotFound:
        wrong.add(address)
        await anyio.sleep(max(0.0, settings.class_code_delay_seconds - (time.monotonic() - started)))
        raise
    return json_response(joined)


@router.get("", response_model=ClassList, summary="Your classes")
def mine(store: StoreDep, workspace: ViewerDep) -> Response:
    """Every class your workspace is in, with your role in it."""
    return json_response({"classes": service.my_classes(store, workspace)})


@router.get("/publications", summary="What your lecturers published")
def publications(store: StoreDep, workspace: ViewerDep) -> Response:
    """Models (as share ids) and network designs published to the classes you are in."""
    return json_response({"publications": service.publications_for(store, workspace)})


@router.get("/{class_id}", summary="A class (with its members, for a lecturer)", responses=MEMBERS_ONLY)
def get_class(class_id: str, store: StoreDep, workspace: ViewerDep) -> Response:
    """The class, its publications and challenge; a lecturer also gets ``members``: each one's name, role,
    and jobs (queued, running with progress, done with test accuracy and parameters)."""
    return json_response(service.class_view(store, class_id, workspace))


@router.put("/{class_id}/me", response_model=Joined, summary="Your name in the class", responses=MEMBERS_ONLY)
def rename(class_id: str, body: RenameMember, store: StoreDep, workspace: ViewerDep) -> Response:
    return json_response(service.rename(store, class_id, workspace, body.name))


@router.delete("/{class_id}/me", status_code=204, summary="Leave a class", responses=MEMBERS_ONLY)
def leave(class_id: str, store: StoreDep, workspace: ViewerDep) -> Response:
    """Your entries leave with you; your models stay in your workspace."""
    service.leave_class(store, class_id, workspace)
    return Response(status_code=204)


@router.delete("/{class_id}", status_code=204, summary="End a class", responses=LECTURERS_ONLY)
def end(class_id: str, store: StoreDep, workspace: ViewerDep) -> Response:
    """Memberships, entries and the code go; every student's models stay in their workspaces."""
    service.delete_class(store, class_id, workspace)
    return Response(status_code=204)


@router.get("/{class_id}/qr.svg", summary="The join URL as a QR code", responses=MEMBERS_ONLY)
def qr(class_id: str, request: Request, store: StoreDep, workspace: ViewerDep) -> Response:
    """An SVG a projector shows beside the code: a phone's camera opens the join page with the code filled in."""
    import segno

    klass, _ = service.require_member(store, class_id, workspace)
    url = str(request.base_url).rstrip("/") + service.public_class(klass, "student")["join_url"]
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="svg", scale=8, border=2, xmldecl=False, svgclass="qr")
    return Response(buffer.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"})


@router.post(
    "/{class_id}/publish", status_code=201, summary="Hand the class a model or a design", responses=LECTURERS_ONLY
)
def publish(
    class_id: str, body: Publish, store: StoreDep, registry: RegistryDep, settings: SettingsDep, workspace: ViewerDep
) -> Response:
    """A model reaches students as a read-only share link (listed under "from your lecturer" in the model
    picker; they copy it to change it); a design appears among the training page's presets."""
    design = body.design.model_dump() if body.design else None
    answer = service.publish(store, registry, settings, class_id, workspace, body.model, design)
    return json_response(answer, status_code=201)


@router.put(
    "/{class_id}/challenge", response_model=ChallengeView, summary="Set the design challenge", responses=LECTURERS_ONLY
)
def set_challenge(
    class_id: str, body: Challenge, store: StoreDep, settings: SettingsDep, workspace: ViewerDep
) -> Response:
    """Best test accuracy within ``max_parameters`` (and ``max_epochs``, before ``deadline``): entries are
    scored on a held-out part of the data set's shipped test split, fixed when the challenge is set."""
    return json_response(service.set_challenge(store, settings, class_id, workspace, body.model_dump()))


@router.get("/{class_id}/challenge", response_model=ChallengeAnswer, summary="The challenge", responses=MEMBERS_ONLY)
def get_challenge(class_id: str, store: StoreDep, workspace: ViewerDep) -> Response:
    klass, _ = service.require_member(store, class_id, workspace)
    return json_response({"challenge": service.public_challenge(klass["challenge"])})


@router.post(
    "/{class_id}/entries",
    status_code=201,
    response_model=LeaderboardRow,
    summary="Enter a model in the challenge",
    responses=error_responses(401, 403, 404, 409, s422="over the budget (with the figure), or not your own"),
)
def enter(
    class_id: str, body: Entry, store: StoreDep, registry: RegistryDep, settings: SettingsDep, workspace: ViewerDep
) -> Response:
    """Your own trained model within the budget, scored on the held-out pictures (``score``)."""
    return json_response(service.enter(store, registry, settings, class_id, workspace, body.model), status_code=201)


@router.get(
    "/{class_id}/leaderboard", response_model=Leaderboard, summary="The challenge's entries", responses=MEMBERS_ONLY
)
def leaderboard(class_id: str, store: StoreDep, workspace: ViewerDep) -> Response:
    """Best score first, with each entry's parameters and layers in one line; ``url`` opens it."""
    return json_response(service.leaderboard(store, class_id, workspace))


@router.get("/{class_id}/events", summary="The class, live (server-sent events)", responses=LECTURERS_ONLY)
async def events(class_id: str, request: Request) -> StreamingResponse:
    """``class`` events with the lecturer's view (members, their jobs with progress) whenever it changes,
    and ``ended`` if the class is ended."""
    hub = request.app.state.events
    store = request.app.state.store
    workspace = await anyio.to_thread.run_sync(current_workspace, request, limiter=hub.limiter)
    await anyio.to_thread.run_sync(service.require_lecturer, store, class_id, workspace, limiter=hub.limiter)
    admitted = hub.admit(workspace.id if workspace else None, request.client.host if request.client else "unknown")
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _class_stream(request, class_id, workspace, admitted), media_type="text/event-stream", headers=headers
    )


async def _class_stream(request: Request, class_id: str, workspace, admitted: list[str]) -> AsyncIterator[str]:
    hub, store, settings = request.app.state.events, request.app.state.store, request.app.state.settings
    last, quiet = None, 0.0
    try:
        while True:
            try:
                view = await anyio.to_thread.run_sync(
                    service.class_view, store, class_id, workspace, limiter=hub.limiter
                )
            except service.ClassNotFound:
                yield "event: ended\ndata: {}\n\n"
                return
            text = json.dumps(view)
            if text != last:
                last, quiet = text, 0.0
                yield f"event: class\ndata: {text}\n\n"
            elif quiet >= settings.stream_heartbeat_seconds:
                quiet = 0.0
                yield ": heartbeat\n\n"
            await anyio.sleep(settings.class_poll_seconds)
            quiet += settings.class_poll_seconds
    finally:
        hub.release(admitted)
