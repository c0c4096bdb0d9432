"""A class on one server: class codes, the lecturer's live view, publishing, and a design challenge."""

from __future__ import annotations

import io
import time

import anyio
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from app import reach
from app.deps import (
    AddressDep,
    OwnerDep,
    RegistryDep,
    SettingsDep,
    StoreDep,
    ViewerDep,
    client_address,
    current_workspace,
)
from app.errors import error_responses
from app.jsonutil import json_response
from app.schemas.classes import (
    Challenge,
    ChallengeAnswer,
    ChallengeView,
    ClassCreated,
    ClassList,
    ClassView,
    CreateClass,
    Entry,
    JoinClass,
    Joined,
    Leaderboard,
    LeaderboardRow,
    LecturerToken,
    Publish,
    RenameMember,
)
from app.services import classes as service
from app.services import membership

router = APIRouter(prefix="/api/classes", tags=["classes"])

MEMBERS_ONLY = error_responses(401, 404)
LECTURERS_ONLY = error_responses(401, 403, 404)


@router.post("", status_code=201, response_model=ClassCreated, summary="Make a class", responses=error_responses(401))
def create(body: CreateClass, store: StoreDep, settings: SettingsDep, workspace: OwnerDep) -> Response:
    """Your workspace becomes the class's owner, a lecturer. The ``code`` (6 characters, no 0/O/1/I) is what
    students type; the ``lecturer_token`` (secret, answered this once and never again) makes another of
    your devices a lecturer, typed or through the lecturer link ``/class?code=CODE#lecturer=TOKEN``."""
    return json_response(service.create_class(store, settings, workspace, body.name), status_code=201)


@router.post(
    "/join",
    response_model=Joined,
    summary="Join a class with its code",
    responses=error_responses(
        401, 403, 404, s429="too many wrong codes in a row from your browser, or a flood from your address"
    ),
)
async def join(
    body: JoinClass, store: StoreDep, settings: SettingsDep, workspace: OwnerDep, address: AddressDep
) -> Response:
    """As a student, or as a lecturer with the class's ``lecturer_token``. A wrong code (404) or token (403)
    is answered after a delay that grows with each wrong one in a row from your browser, which is then
    refused for a while (429); an address's count only stops floods, so a classmate's right code goes in."""
    await anyio.to_thread.run_sync(service.check_guesses, store, settings, workspace.id, address)
    started = time.monotonic()
    try:
        joined = await anyio.to_thread.run_sync(
            service.join_class, store, settings, workspace, body.code, body.lecturer_token, body.name
        )
    except (service.ClassNotFound, service.WrongLecturerToken):
        delay = await anyio.to_thread.run_sync(service.count_wrong_guess, store, settings, workspace.id, address)
        await anyio.sleep(max(0.0, delay - (time.monotonic() - started)))
        raise
    await anyio.to_thread.run_sync(service.clear_wrong_guesses, store, workspace.id)
    return json_response(joined)


@router.get("", response_model=ClassList, summary="Your classes")
def mine(store: StoreDep, settings: SettingsDep, workspace: ViewerDep) -> Response:
    """Every class your workspace is in, with your role in it."""
    return json_response({"classes": service.my_classes(store, settings, workspace)})


@router.get("/publications", summary="What your lecturers published")
def publications(store: StoreDep, workspace: ViewerDep) -> Response:
    """Models (as share ids) and network designs published to the classes you are in."""
    return json_response({"publications": membership.publications_for(store, workspace)})


@router.get(
    "/{class_id}",
    response_model=ClassView,
    summary="A class (with its members, for a lecturer)",
    responses=MEMBERS_ONLY,
)
def get_class(class_id: str, store: StoreDep, settings: SettingsDep, workspace: ViewerDep) -> Response:
    """The class, its publications and challenge; a lecturer also gets the room's ``counts``, ``members``
    (each one's ``member_id``, name, role, how they joined, best accuracy and jobs: queued, running with
    progress, done with test accuracy and parameters) and ``room`` (the addresses students can reach)."""
    view = service.class_view(store, settings, class_id, workspace)
    if view["role"] == "lecturer":
        view["room"] = reach.room(settings)
    return json_response(view)


@router.put("/{class_id}/me", response_model=Joined, summary="Your name in the class", responses=MEMBERS_ONLY)
def rename(class_id: str, body: RenameMember, store: StoreDep, settings: SettingsDep, workspace: ViewerDep) -> Response:
    return json_response(service.rename(store, settings, class_id, workspace, body.name))


@router.delete("/{class_id}/me", status_code=204, summary="Leave a class", responses=error_responses(401, 404, 409))
def leave(class_id: str, store: StoreDep, workspace: ViewerDep) -> Response:
    """Your entries leave with you; your models stay in your workspace. The owner ends the class instead."""
    service.leave_class(store, class_id, workspace)
    return Response(status_code=204)


@router.delete("/{class_id}", status_code=204, summary="End a class (its owner)", responses=LECTURERS_ONLY)
def end(class_id: str, store: StoreDep, workspace: ViewerDep) -> Response:
    """Memberships, entries and the code go; every student's models stay in their workspaces. Only the
    class's owner may end it (403 for any other lecturer)."""
    service.delete_class(store, class_id, workspace)
    return Response(status_code=204)


@router.post(
    "/{class_id}/lecturer-token",
    status_code=201,
    response_model=LecturerToken,
    summary="A new lecturer secret (its owner)",
    responses=LECTURERS_ONLY,
)
def rotate_token(class_id: str, store: StoreDep, workspace: ViewerDep) -> Response:
    """The old token, and every lecturer link carrying it, stop working at once; lecturers who already
    joined stay lecturers."""
    return json_response(service.rotate_lecturer_token(store, class_id, workspace), status_code=201)


@router.delete("/{class_id}/members/{member_id}", status_code=204, summary="Remove a member", responses=LECTURERS_ONLY)
def remove_member(class_id: str, member_id: str, store: StoreDep, workspace: ViewerDep) -> Response:
    """Any lecturer may remove a member (never the owner), by the ``member_id`` of the lecturer's view: their
    next request about the class is 404, their entries go, their models stay theirs."""
    service.remove_member(store, class_id, workspace, member_id)
    return Response(status_code=204)


@router.get("/{class_id}/qr.svg", summary="The join link as a QR code", responses=MEMBERS_ONLY)
def qr(class_id: str, request: Request, store: StoreDep, settings: SettingsDep, workspace: ViewerDep) -> Response:
    """An SVG a projector shows beside the code: a phone's camera opens the join page with the code filled
    in, at ``CONVSCOPE_PUBLIC_URL``, or at an address others can reach when the page was opened at a
    loopback one."""
    import segno

    klass, _ = service.require_member(store, class_id, workspace)
    base = reach.join_base(settings, str(request.base_url), request.headers.get("host", ""))
    url = base + f"/class?code={klass['code']}"
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="svg", scale=8, border=2, xmldecl=False, svgclass="qr")
    return Response(buffer.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "private, no-cache"})


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
    scored on a held-out part of the data set's shipped test split. Other rules (data set, parameters or
    epochs) start a new ``round`` with an empty board; the same rules with another deadline keep it."""
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
    responses=error_responses(
        401,
        403,
        404,
        s409="entered already, weights identical to another entry, or not done training",
        s422="over the budget (with the figure), or not a model your workspace trained (with the reason)",
    ),
)
def enter(
    class_id: str, body: Entry, store: StoreDep, registry: RegistryDep, settings: SettingsDep, workspace: ViewerDep
) -> Response:
    """A model your workspace trained itself with a training job (from scratch, or fine-tuned from a shipped
    model or your own trained one), within the budget, scored on the round's held-out pictures."""
    return json_response(service.enter(store, registry, settings, class_id, workspace, body.model), status_code=201)


@router.get(
    "/{class_id}/leaderboard", response_model=Leaderboard, summary="The challenge's entries", responses=MEMBERS_ONLY
)
def leaderboard(
    class_id: str,
    store: StoreDep,
    workspace: ViewerDep,
    round: int | None = Query(None, ge=1, le=10_000, description="an earlier round (default: the current one)"),
) -> Response:
    """Each student's best entry in the round, best score first, with its ``attempts``, its parameters and
    its layers in one line; ``url`` opens it."""
    return json_response(service.leaderboard(store, class_id, workspace, round))


@router.get("/{class_id}/events", summary="The class, live (server-sent events)", responses=LECTURERS_ONLY)
async def events(class_id: str, request: Request, settings: SettingsDep) -> StreamingResponse:
    """``class`` events with the lecturer's view (counts, members, their jobs with progress) whenever it
    changes, and ``ended`` when the class ends or you are no longer one of its lecturers."""
    hub, classes = request.app.state.events, request.app.state.classes
    store = request.app.state.store
    workspace = await anyio.to_thread.run_sync(current_workspace, request, limiter=hub.limiter)
    klass = await anyio.to_thread.run_sync(service.require_lecturer, store, class_id, workspace, limiter=hub.limiter)
    assert workspace is not None
    member = await anyio.to_thread.run_sync(service.membership, store, class_id, workspace, limiter=hub.limiter)
    lease = await hub.admit(workspace.id, client_address(request))
    own = {**service.public_class(klass, "lecturer", settings, klass["owner"] == workspace.id)}
    own["member_name"] = (member or {}).get("name", "")
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    stream = classes.follow(class_id, own, workspace.id, lease)
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)
