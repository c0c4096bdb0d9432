"""A class on one server: a lecturer's workspace makes a class with a code students type; the lecturer
sees the class's members, their jobs and their models, publishes models and designs to it, and sets a
design challenge whose entries are scored on a held-out part of the shipped test split.

Everything is kept as store documents (:meth:`JobStore.put_doc`):

- ``class`` (owner: the workspace that made it): name, code, the lecturer token's hash, the challenge,
  the publications;
- ``classcode`` (owner ``codes``): code -> class id;
- ``member`` (owner: the class), ``enrolment`` (owner: the workspace): one pair per workspace in a class,
  with its role (``lecturer`` or ``student``) and, for a student, the name it chose;
- ``entry`` (owner: the class): a student's model entered in the challenge, with its score.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from app.config import Settings
from app.errors import ApiError, Conflict, NotFound, OverQuota
from app.jobs.store import JobStore
from app.workspaces import Workspace
from engine.datasets import DATASETS, load_dataset
from engine.network import Network
from engine.spec import plan_network
from engine.train import accuracy_and_confusion

if TYPE_CHECKING:
    from app.jobs.registry import ModelRegistry

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: a code is read off a projector
CODE_LENGTH = 6
ROLES = ("lecturer", "student")


class ClassNotFound(NotFound):
    """No class by that id that this workspace is in (404, never 403: it does not say the class exists)."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_code(store: JobStore) -> str:
    for _ in range(20):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if store.get_doc("classcode", code) is None:
            return code
    raise Conflict("no free class code was found; try again")  # 32^6 codes: never in practice


def normalise_code(code: str) -> str:
    """What a student typed, as a code: capitals, without the spaces or dashes put in to read it out."""
    return "".join(ch for ch in code.upper() if ch.isalnum())[: CODE_LENGTH + 4]


# -- membership ------------------------------------------------------------------------------------


def _member_id(class_id: str, workspace_id: str) -> str:
    """The id of the ``member`` document of a workspace in a class (its ``enrolment`` is the reverse)."""
    return f"{class_id}:{workspace_id}"


def _enrolment_id(workspace_id: str, class_id: str) -> str:
    return f"{workspace_id}:{class_id}"


def membership(store: JobStore, class_id: str, workspace: Workspace | None) -> dict[str, Any] | None:
    return None if workspace is None else store.get_doc("member", _member_id(class_id, workspace.id))


def require_member(store: JobStore, class_id: str, workspace: Workspace | None) -> tuple[dict, dict]:
    """The class and the caller's membership; 404 for a class the caller is not in."""
    klass = store.get_doc("class", class_id)
    member = membership(store, class_id, workspace)
    if klass is None or member is None:
        raise ClassNotFound(f"class: no class {class_id!r} that you are in; GET /api/classes lists yours")
    return klass, member


def require_lecturer(store: JobStore, class_id: str, workspace: Workspace | None) -> dict[str, Any]:
    klass, member = require_member(store, class_id, workspace)
    if member["role"] != "lecturer":
        raise ApiError(403, "only the class's lecturers may do this; students see it with GET")
    return klass


def _add_member(store: JobStore, klass: dict, workspace: Workspace, role: str, name: str | None) -> dict:
    members = store.docs("member", klass["id"])
    number = 1 + sum(m["role"] == "student" for m in members)
    member = {
        "class": klass["id"],
        "workspace": workspace.id,
        "role": role,
        "name": name or ("Lecturer" if role == "lecturer" else f"Student {number}"),
        "joined": time.time(),
    }
    store.put_doc("member", _member_id(klass["id"], workspace.id), klass["id"], member)
    enrolment = {"class": klass["id"], "role": role}
    store.put_doc("enrolment", _enrolment_id(workspace.id, klass["id"]), workspace.id, enrolment)
    return member


def create_class(store: JobStore, settings: Settings, workspace: Workspace, name: str) -> dict[str, Any]:
    """A new class led by the caller: its id, code, a lecturer token (shown once) and the join URL."""
    _check_class_count(store, settings, workspace)
    token = secrets.token_urlsafe(24)
    with store.doc_lock("classes"):
        code = new_code(store)
        class_id = "k" + uuid.uuid4().hex[:12]
        klass: dict[str, Any] = {
            "id": class_id,
            "owner": workspace.id,  # the workspace it is listed under: the one that made it
            "name": name,
            "code": code,
            "created": time.time(),
            "token_hash": _hash(token),
            "challenge": None,
            "publications": [],
        }
        store.put_doc("class", class_id, workspace.id, klass)
        store.put_doc("classcode", code, "codes", {"class": class_id})
        _add_member(store, klass, workspace, "lecturer", None)
    return {**public_class(klass, "lecturer"), "lecturer_token": token}


def join_class(
    store: JobStore, settings: Settings, workspace: Workspace, code: str, lecturer_token: str | None, name: str | None
) -> dict[str, Any]:
    """Puts the caller's workspace in the class with that code: a lecturer with the right token, else a
    student. Joining again changes nothing but a lecturer token's promotion (and a name given)."""
    entry = store.get_doc("classcode", normalise_code(code))
    klass = store.get_doc("class", entry["class"]) if entry else None
    if klass is None:
        raise ClassNotFound("code: no class has that code; check it on the lecturer's screen")
    role = "student"
    if lecturer_token:
        if not secrets.compare_digest(_hash(lecturer_token), klass["token_hash"]):
            raise ApiError(403, "lecturer_token: it is not this class's; join without it as a student")
        role = "lecturer"
    with store.doc_lock(klass["id"]):
        member = membership(store, klass["id"], workspace)
        if member is not None and (member["role"] == "lecturer" or role == "student"):
            if name:
                member["name"] = name
                store.put_doc("member", _member_id(klass["id"], workspace.id), klass["id"], member)
            return {**public_class(klass, member["role"]), "member_name": member["name"]}
        if member is None:
            _check_room(store, settings, workspace, klass)
        member = _add_member(store, klass, workspace, role, name or (member or {}).get("name"))
    return {**public_class(klass, role), "member_name": member["name"]}


def _check_class_count(store: JobStore, settings: Settings, workspace: Workspace) -> None:
    if len(store.docs("enrolment", workspace.id)) >= settings.max_classes_per_workspace:
        raise OverQuota(f"a workspace may be in at most {settings.max_classes_per_workspace} classes; leave one first")


def _check_room(store: JobStore, settings: Settings, workspace: Workspace, klass: dict) -> None:
    if len(store.docs("member", klass["id"])) >= settings.max_class_members:
        raise Conflict(f"the class is full ({settings.max_class_members} members); ask the lecturer")
    _check_class_count(store, settings, workspace)


def public_class(klass: dict, role: str) -> dict[str, Any]:
    """What any member sees of a class (never the lecturer token, nor its hash)."""
    return {
        "id": klass["id"],
        "name": klass["name"],
        "code": klass["code"],
        "role": role,
        "join_url": f"/class?code={klass['code']}",
        "created": klass["created"],
    }


def _enrolled(store: JobStore, workspace: Workspace | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each class the workspace is in, with its enrolment (its role there)."""
    if workspace is None:
        return []
    found = []
    for enrolment in store.docs("enrolment", workspace.id):
        klass = store.get_doc("class", enrolment["class"])
        if klass is not None:
            found.append((enrolment, klass))
    return found


def my_classes(store: JobStore, workspace: Workspace | None) -> list[dict[str, Any]]:
    return [public_class(klass, enrolment["role"]) for enrolment, klass in _enrolled(store, workspace)]


def rename(store: JobStore, class_id: str, workspace: Workspace | None, name: str) -> dict[str, Any]:
    klass, member = require_member(store, class_id, workspace)
    member["name"] = name
    store.put_doc("member", _member_id(class_id, member["workspace"]), class_id, member)
    return {**public_class(klass, member["role"]), "member_name": name}


def leave_class(store: JobStore, class_id: str, workspace: Workspace | None) -> None:
    """Takes the caller's workspace out of the class, with its entries (its models stay its own)."""
    require_member(store, class_id, workspace)
    assert workspace is not None
    with store.doc_lock(class_id):
        for entry in store.docs("entry", class_id):
            if entry["workspace"] == workspace.id:
                store.delete_doc("entry", entry["id"])
        store.delete_doc("member", _member_id(class_id, workspace.id))
        store.delete_doc("enrolment", _enrolment_id(workspace.id, class_id))


def delete_class(store: JobStore, class_id: str, workspace: Workspace | None) -> None:
    """Ends the class (a lecturer only): memberships, entries and the code go; every model stays where it is."""
    klass = require_lecturer(store, class_id, workspace)
    with store.doc_lock(class_id):
        for member in store.docs("member", class_id):
            store.delete_doc("enrolment", _enrolment_id(member["workspace"], class_id))
            store.delete_doc("member", _member_id(class_id, member["workspace"]))
        for entry in store.docs("entry", class_id):
            store.delete_doc("entry", entry["id"])
        store.delete_doc("classcode", klass["code"])
        store.delete_doc("class", class_id)


def lecturer_sees(store: JobStore, owner: str, viewer: Workspace | None) -> bool:
    """Whether ``viewer`` lectures a class in which the workspace ``owner`` is a student."""
    if viewer is None:
        return False
    for enrolment in store.docs("enrolment", owner):
        if enrolment["role"] != "student":
            continue
        member = store.get_doc("member", _member_id(enrolment["class"], viewer.id))
        if member is not None and member["role"] == "lecturer":
            return True
    return False


# -- what the lecturer sees -----------------------------------------------------------------------------


def _job_line(store: JobStore, job: dict[str, Any]) -> dict[str, Any]:
    line = {
        "id": job["id"],
        "name": job["name"],
        "kind": job.get("kind", "trained"),
        "status": job["status"],
        "dataset": job.get("dataset"),
        "parameters": job.get("parameters"),
        "test_accuracy": (job.get("metrics") or {}).get("test_accuracy"),
        "progress": None,
        "created": job["created"],
    }
    last = store.last_event(job["id"], "progress") if job["status"] == "running" else None
    if last:
        line["progress"] = {k: last.get(k) for k in ("step", "steps", "epoch", "loss", "accuracy")}
    return line


def class_view(store: JobStore, class_id: str, workspace: Workspace | None) -> dict[str, Any]:
    """The class as the caller sees it: a lecturer gets every member with their jobs and models, a
    student the class, the publications and the challenge."""
    klass, member = require_member(store, class_id, workspace)
    view: dict[str, Any] = {
        **public_class(klass, member["role"]),
        "member_name": member["name"],
        "publications": klass["publications"],
        "challenge": klass["challenge"],
        "members": None,
    }
    if member["role"] == "lecturer":
        view["members"] = [
            {
                "name": m["name"],
                "role": m["role"],
                "joined": m["joined"],
                "jobs": [_job_line(store, job) for job in store.workspace_jobs(m["workspace"])[:20]],
            }
            for m in store.docs("member", class_id)
        ]
    return view


# -- publishing -----------------------------------------------------------------------------------------


def publish(
    store: JobStore,
    registry: ModelRegistry,
    settings: Settings,
    class_id: str,
    workspace: Workspace | None,
    model: str | None,
    design: dict[str, Any] | None,
) -> dict[str, Any]:
    """Hands the class a model (through a share link, read-only; students copy it to change it) or a
    network design (a named spec, offered among the training page's presets)."""
    from app.jobs.service import share_model  # here: the service module imports this one

    klass = require_lecturer(store, class_id, workspace)
    if len(klass["publications"]) >= settings.max_class_publications:
        raise Conflict(f"a class holds at most {settings.max_class_publications} publications")
    if model is not None:
        ref = registry.resolve(model, workspace)
        name = ref.job["name"] if ref.job else registry.shipped[ref.id].meta.get("name", ref.id)
        model_id = share_model(store, ref)["share_id"] if ref.job else ref.id
        publication = {"id": "p" + uuid.uuid4().hex[:10], "kind": "model", "name": name, "model": model_id}
    else:
        assert design is not None
        plan_network(design["architecture"])  # a design that does not build is refused (422) now
        publication = {"id": "p" + uuid.uuid4().hex[:10], "kind": "design", **design}
    with store.doc_lock(class_id):
        klass = store.get_doc("class", class_id) or klass
        klass["publications"].append(publication)
        store.put_doc("class", class_id, klass["owner"], klass)
    return publication


def publications_for(store: JobStore, workspace: Workspace | None) -> list[dict[str, Any]]:
    """Everything the caller's lecturers published, with the class it came from."""
    return [
        {**p, "class": klass["id"], "class_name": klass["name"]}
        for _, klass in _enrolled(store, workspace)
        for p in klass["publications"]
    ]


# -- the challenge -----------------------------------------------------------------------------------


def set_challenge(
    store: JobStore, settings: Settings, class_id: str, workspace: Workspace | None, challenge: dict[str, Any]
) -> dict[str, Any]:
    """Sets (or replaces) the class's challenge; the held-out pictures are drawn once, from a seed kept
    with it, so every entry is scored on the same ones."""
    klass = require_lecturer(store, class_id, workspace)
    if challenge["dataset"] not in DATASETS:
        raise ApiError(422, f"dataset: {challenge['dataset']!r}; a challenge runs on {', '.join(DATASETS)}")
    test = load_dataset(challenge["dataset"], "test")
    count = min(settings.challenge_test_size, len(test))
    stored = {**challenge, "seed": secrets.randbelow(2**31), "test_size": count, "set": time.time()}
    with store.doc_lock(class_id):
        klass = store.get_doc("class", class_id) or klass
        klass["challenge"] = stored
        store.put_doc("class", class_id, klass["owner"], klass)
    return public_challenge(stored) or {}


def public_challenge(challenge: dict[str, Any] | None) -> dict[str, Any] | None:
    if challenge is None:
        return None
    return {k: challenge[k] for k in ("dataset", "max_parameters", "max_epochs", "deadline", "test_size")}


def held_out(challenge: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The challenge's held-out test pictures and labels: a fixed part of the shipped test split."""
    test = load_dataset(challenge["dataset"], "test")
    picks = np.sort(np.random.default_rng(challenge["seed"]).permutation(len(test))[: challenge["test_size"]])
    return test.images[picks], test.labels[picks]


def layers_line(network: Network) -> str:
    """A design in one line: "conv 8@3x3 → maxpool → conv 16@3x3 → fc 10"."""
    words = []
    for plan in network.plans:
        cfg = plan.config
        if plan.type == "conv":
            k = cfg["kernel_size"]
            k = f"{k}x{k}" if isinstance(k, int) else f"{k[0]}x{k[1]}"
            words.append(f"conv {cfg['filters']}@{k}")
        elif plan.type in ("maxpool", "avgpool"):
            words.append(plan.type)
        elif plan.type == "linear":
            words.append(f"fc {cfg['units']}")
    return " → ".join(words)


def enter(
    store: JobStore, registry: ModelRegistry, settings: Settings, class_id: str, workspace: Workspace | None, model: str
) -> dict[str, Any]:
    """Scores a student's own trained model on the challenge's held-out pictures and lists it on the
    leaderboard (through a share link, so the class can open it). Over budget: 422 with the figure."""
    from app.jobs.service import share_model  # here: the service module imports this one

    klass, member = require_member(store, class_id, workspace)
    challenge = _open_challenge(klass, member)
    ref = registry.resolve(model, workspace)
    if not ref.owned or ref.job is None or ref.job.get("kind", "trained") != "trained":
        raise ApiError(422, "model: enter a model you trained yourself (a copy, an edit or an import does not count)")
    if ref.job["status"] != "done":
        raise Conflict(f"model: {ref.id} is {ref.job['status']}; enter it when its training is done")
    if ref.job["dataset"] != challenge["dataset"]:
        raise ApiError(
            422, f"model: it was trained on {ref.job['dataset']}; the challenge is on {challenge['dataset']}"
        )
    network = registry.network(ref)
    if network.parameter_count > challenge["max_parameters"]:
        raise ApiError(
            422,
            f"model: {network.parameter_count:,} parameters, over the challenge's budget of "
            f"{challenge['max_parameters']:,}; make the network smaller (fewer filters or units)",
        )
    epochs = (ref.job.get("settings") or {}).get("epochs", 0)
    if challenge.get("max_epochs") and epochs > challenge["max_epochs"]:
        raise ApiError(
            422, f"model: trained for {epochs} epochs; the challenge allows at most {challenge['max_epochs']}"
        )
    mine = [e for e in store.docs("entry", class_id) if e["workspace"] == member["workspace"]]
    if len(mine) >= settings.max_entries_per_student:
        raise OverQuota(
            f"you have entered {len(mine)} models, the most a student may ({settings.max_entries_per_student})",
            retry_after=3600,
        )
    images, labels = held_out(challenge)
    score, _ = accuracy_and_confusion(network, images, labels)
    entry = {
        "id": "n" + uuid.uuid4().hex[:12],
        "class": class_id,
        "workspace": member["workspace"],
        "student": member["name"],
        "model": share_model(store, ref)["share_id"],
        "model_name": ref.job["name"],
        "score": round(float(score), 5),
        "parameters": network.parameter_count,
        "layers": layers_line(network),
        "created": time.time(),
    }
    store.put_doc("entry", entry["id"], class_id, entry)
    return public_entry(store, entry)


def _open_challenge(klass: dict, member: dict) -> dict[str, Any]:
    challenge: dict[str, Any] | None = klass["challenge"]
    if member["role"] != "student":
        raise ApiError(403, "lecturers set the challenge; students enter it")
    if challenge is None:
        raise Conflict("the class has no challenge yet; the lecturer sets one")
    if challenge.get("deadline") and time.time() > challenge["deadline"]:
        raise Conflict("the challenge's deadline has passed: it takes no more entries")
    return challenge


def public_entry(store: JobStore, entry: dict[str, Any]) -> dict[str, Any]:
    member = store.get_doc("member", _member_id(entry["class"], entry["workspace"]))
    student = member["name"] if member else entry["student"]  # the name chosen now, if it changed
    fields = ("id", "model", "model_name", "score", "parameters", "layers", "created")
    return {"student": student, **{k: entry[k] for k in fields}, "url": f"/?model={entry['model']}"}


def leaderboard(store: JobStore, class_id: str, workspace: Workspace | None) -> dict[str, Any]:
    """Every entry, best score first (ties: fewer parameters, then the earlier entry)."""
    klass, _ = require_member(store, class_id, workspace)
    entries = sorted(store.docs("entry", class_id), key=lambda e: (-e["score"], e["parameters"], e["created"]))
    return {"challenge": public_challenge(klass["challenge"]), "entries": [public_entry(store, e) for e in entries]}
