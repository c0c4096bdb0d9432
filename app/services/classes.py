"""A class on one server: a lecturer's workspace makes a class with a code students type; the lecturers
see the class's members, their jobs and their models, publish models and designs to it, and set a design
challenge whose entries are scored on a held-out part of the shipped test split.

Roles: the workspace that made the class is its **owner** (a lecturer who alone may end the class or
make a new lecturer secret); another browser becomes a **lecturer** with the secret (the token, or the
lecturer link that carries it); everyone else who types the code is a **student**. The secret is
answered once, when the class is made, and only its hash is kept.

Everything is kept as store documents (:meth:`JobStore.put_doc`):

- ``class`` (owner: the workspace that made it): name, code, the lecturer token's hash, the challenge
  (with its round and the seed of its held-out pictures, never shown), earlier rounds, the publications;
- ``classcode`` (owner ``codes``): code -> class id;
- ``member`` (owner: the class), ``enrolment`` (owner: the workspace): one pair per workspace in a class,
  with its role, its ``member_id`` (what the lecturer's view names it by) and, for a student, its name;
- ``entry`` (owner: the class): a student's model entered in a round of the challenge, with its score.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from app.config import Settings
from app.errors import Conflict, Forbidden, NotFound, OverQuota, Refused
from app.jobs.store import JobStore
from app.services import quotas
from app.services.lineage import LINE_DEPTH, origin_of, share_model
from app.services.membership import enrolled, enrolment_key, member_key
from app.services.workspaces import Workspace
from engine import budget
from engine.datasets import DATASETS, load_dataset
from engine.network import Network
from engine.spec import plan_network
from engine.train import accuracy_and_confusion

if TYPE_CHECKING:
    from app.services.registry import ModelRef, ModelRegistry

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: a code is read off a projector
CODE_LENGTH = 6
GUESS_WINDOW = 600  # wrong codes count for ten minutes
ROUND_RULES = ("dataset", "max_parameters", "max_epochs")  # changing one of these starts a new round


class ClassNotFound(NotFound):
    """No class by that id that this workspace is in (404, never 403: it does not say the class exists)."""


class WrongLecturerToken(Forbidden):
    """A lecturer token (or link) that is not the class's current one."""


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


# -- guessing: wrong codes and tokens, counted in the store for every process ----------------------------


def _guess_keys(workspace_id: str, address: str) -> tuple[str, str]:
    return f"wrong-code:w:{workspace_id}", f"wrong-code:a:{address}"


def check_guesses(store: JobStore, settings: Settings, workspace_id: str, address: str) -> None:
    """Refuses (429) a workspace that has sent too many wrong codes or tokens in a row, or an address that
    floods (a threshold a school's typing mistakes never reach): a classmate's right code still goes in."""
    mine, theirs = _guess_keys(workspace_id, address)
    if store.tally_count(theirs) >= settings.class_code_failures_per_address:
        raise OverQuota(
            f"more than {settings.class_code_failures_per_address:,} wrong class codes came from your address in "
            "ten minutes; wait a few minutes",
            retry_after=300,
        )
    if store.tally_count(mine) >= settings.class_code_failures_per_workspace:
        raise OverQuota(
            f"{settings.class_code_failures_per_workspace} wrong class codes or lecturer tokens in a row from your "
            "browser; check the code on the lecturer's screen and try again in ten minutes",
            retry_after=GUESS_WINDOW,
        )


def count_wrong_guess(store: JobStore, settings: Settings, workspace_id: str, address: str) -> float:
    """Counts a wrong code or token; returns how long its answer waits: the constant delay, doubling for
    each wrong one in a row past ``class_code_slow_after`` (at most 8 s)."""
    keys = _guess_keys(workspace_id, address)
    store.tally_add(uuid.uuid4().hex, [(key, 1 << 30) for key in keys], ttl=GUESS_WINDOW)
    over = store.tally_count(keys[0]) - settings.class_code_slow_after
    return (
        settings.class_code_delay_seconds * (2 ** min(max(over, 0), 4))
        if over > 0
        else settings.class_code_delay_seconds
    )


def clear_wrong_guesses(store: JobStore, workspace_id: str) -> None:
    """A right code ends a run of wrong ones."""
    store.tally_remove([_guess_keys(workspace_id, "")[0]])


# -- membership ------------------------------------------------------------------------------------


def member_id(member: dict[str, Any]) -> str:
    """The id a lecturer names a member by (made when it joined; derived for members of older classes)."""
    if member.get("member_id"):
        return str(member["member_id"])
    return "u" + hashlib.sha256(member_key(member["class"], member["workspace"]).encode()).hexdigest()[:12]


def membership(store: JobStore, class_id: str, workspace: Workspace | None) -> dict[str, Any] | None:
    return None if workspace is None else store.get_doc("member", member_key(class_id, workspace.id))


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
        raise Forbidden("only the class's lecturers may do this; students see it with GET")
    return klass


def require_owner(store: JobStore, class_id: str, workspace: Workspace | None) -> dict[str, Any]:
    klass = require_lecturer(store, class_id, workspace)
    assert workspace is not None
    if klass["owner"] != workspace.id:
        raise Forbidden("only the class's owner (the lecturer who made it) may do this")
    return klass


def _add_member(
    store: JobStore, klass: dict, workspace: Workspace, role: str, name: str | None, via: str
) -> dict[str, Any]:
    """Writes a workspace's membership: ``via`` is how it joined (``created``, ``token`` or ``code``)."""
    members = store.docs("member", klass["id"])
    number = 1 + sum(m["role"] == "student" for m in members)
    clock = time.time()
    member = {
        "class": klass["id"],
        "workspace": workspace.id,
        "member_id": "u" + secrets.token_hex(6),
        "role": role,
        "via": via,
        "name": name or ("Lecturer" if role == "lecturer" else f"Student {number}"),
        "joined": clock,
        "lecturer_since": clock if role == "lecturer" else None,
    }
    store.put_doc("member", member_key(klass["id"], workspace.id), klass["id"], member)
    store.put_doc("enrolment", enrolment_key(workspace.id, klass["id"]), workspace.id, {"class": klass["id"]})
    return member


def _drop_member(store: JobStore, class_id: str, workspace_id: str) -> None:
    """Takes a workspace out of a class with its entries (its models stay its own). Under the class's lock."""
    for entry in store.docs("entry", class_id):
        if entry["workspace"] == workspace_id:
            store.delete_doc("entry", entry["id"])
    store.delete_doc("member", member_key(class_id, workspace_id))
    store.delete_doc("enrolment", enrolment_key(workspace_id, class_id))


def create_class(store: JobStore, settings: Settings, workspace: Workspace, name: str) -> dict[str, Any]:
    """A new class owned by the caller: its id, code, join URL, and the lecturer token (answered this once)."""
    _check_class_count(store, settings, workspace)
    token = secrets.token_urlsafe(24)
    with store.doc_lock("classes"):
        code = new_code(store)
        class_id = "k" + uuid.uuid4().hex[:12]
        klass: dict[str, Any] = {
            "id": class_id,
            "owner": workspace.id,
            "name": name,
            "code": code,
            "created": time.time(),
            "token_hash": _hash(token),
            "challenge": None,
            "rounds": [],
            "publications": [],
        }
        store.put_doc("class", class_id, workspace.id, klass)
        store.put_doc("classcode", code, "codes", {"class": class_id})
        _add_member(store, klass, workspace, "lecturer", None, "created")
    return {**public_class(klass, "lecturer", settings, owner=True), "lecturer_token": token}


def join_class(
    store: JobStore, settings: Settings, workspace: Workspace, code: str, lecturer_token: str | None, name: str | None
) -> dict[str, Any]:
    """Puts the caller's workspace in the class with that code: a lecturer with the right token, else a
    student. Joining again changes nothing but a token's promotion (and a name given)."""
    entry = store.get_doc("classcode", normalise_code(code))
    klass = store.get_doc("class", entry["class"]) if entry else None
    if klass is None:
        raise ClassNotFound("code: no class has that code; check it on the lecturer's screen")
    role = "student"
    if lecturer_token:
        if not secrets.compare_digest(_hash(lecturer_token), klass["token_hash"]):
            raise WrongLecturerToken(
                "lecturer_token: it is not this class's current lecturer secret (the owner may have made a new "
                "one); join without it as a student, or ask the owner for the new link"
            )
        role = "lecturer"
    with store.doc_lock(klass["id"]):
        member = membership(store, klass["id"], workspace)
        if member is not None and (member["role"] == "lecturer" or role == "student"):
            if name:
                member["name"] = name
                store.put_doc("member", member_key(klass["id"], workspace.id), klass["id"], member)
        elif member is not None:  # a student promoted by the token keeps the name the class knows
            member.update(role="lecturer", via="token", lecturer_since=time.time(), name=name or member["name"])
            store.put_doc("member", member_key(klass["id"], workspace.id), klass["id"], member)
        else:
            _check_room(store, settings, workspace, klass)
            member = _add_member(store, klass, workspace, role, name, "token" if role == "lecturer" else "code")
    owner = klass["owner"] == workspace.id
    return {**public_class(klass, member["role"], settings, owner), "member_name": member["name"]}


def rotate_lecturer_token(store: JobStore, class_id: str, workspace: Workspace | None) -> dict[str, str]:
    """A new lecturer secret (the owner only): the old token and every link carrying it stop working at once."""
    require_owner(store, class_id, workspace)
    token = secrets.token_urlsafe(24)
    with store.doc_lock(class_id):
        klass = store.get_doc("class", class_id)
        if klass is None:
            raise ClassNotFound(f"class: no class {class_id!r}")
        klass["token_hash"] = _hash(token)
        store.put_doc("class", class_id, klass["owner"], klass)
    return {"lecturer_token": token}


def _check_class_count(store: JobStore, settings: Settings, workspace: Workspace) -> None:
    quotas.check(store, settings, workspace, "classes", "leave one first")


def _check_room(store: JobStore, settings: Settings, workspace: Workspace, klass: dict) -> None:
    if len(store.docs("member", klass["id"])) >= settings.max_class_members:
        raise Conflict(f"the class is full ({settings.max_class_members} members); ask the lecturer")
    _check_class_count(store, settings, workspace)


def join_url(klass: dict[str, Any], settings: Settings) -> str:
    """The join link with the code in it: absolute on ``CONVSCOPE_PUBLIC_URL`` when that is set."""
    return f"{settings.public_url or ''}/class?code={klass['code']}"


def public_class(klass: dict, role: str, settings: Settings, owner: bool = False) -> dict[str, Any]:
    """What any member sees of a class (never the lecturer token, nor its hash)."""
    return {
        "id": klass["id"],
        "name": klass["name"],
        "code": klass["code"],
        "role": role,
        "owner": owner,
        "join_url": join_url(klass, settings),
        "created": klass["created"],
    }


def my_classes(store: JobStore, settings: Settings, workspace: Workspace | None) -> list[dict[str, Any]]:
    return [
        public_class(klass, member["role"], settings, klass["owner"] == member["workspace"])
        for member, klass in enrolled(store, workspace)
    ]


def rename(
    store: JobStore, settings: Settings, class_id: str, workspace: Workspace | None, name: str
) -> dict[str, Any]:
    klass, member = require_member(store, class_id, workspace)
    member["name"] = name
    store.put_doc("member", member_key(class_id, member["workspace"]), class_id, member)
    owner = klass["owner"] == member["workspace"]
    return {**public_class(klass, member["role"], settings, owner), "member_name": name}


def leave_class(store: JobStore, class_id: str, workspace: Workspace | None) -> None:
    """Takes the caller's workspace out of the class, with its entries (its models stay its own)."""
    klass, member = require_member(store, class_id, workspace)
    if klass["owner"] == member["workspace"]:
        raise Conflict("you own this class, so it would be left without an owner: end it instead")
    with store.doc_lock(class_id):
        _drop_member(store, class_id, member["workspace"])


def remove_member(store: JobStore, class_id: str, workspace: Workspace | None, removed_id: str) -> None:
    """A lecturer takes a member out (never the owner): their entries go, their models stay theirs."""
    klass = require_lecturer(store, class_id, workspace)
    with store.doc_lock(class_id):
        member = next((m for m in store.docs("member", class_id) if member_id(m) == removed_id), None)
        if member is None:
            raise NotFound(f"member_id: no member {removed_id!r} in this class; GET /api/classes/{class_id} lists them")
        if member["workspace"] == klass["owner"]:
            raise Forbidden("the class's owner cannot be removed; the owner ends the class instead")
        _drop_member(store, class_id, member["workspace"])


def delete_class(store: JobStore, class_id: str, workspace: Workspace | None) -> None:
    """Ends the class (its owner only): memberships, entries and the code go; every model stays where it is."""
    klass = require_owner(store, class_id, workspace)
    with store.doc_lock(class_id):
        for member in store.docs("member", class_id):
            _drop_member(store, class_id, member["workspace"])
        for entry in store.docs("entry", class_id):
            store.delete_doc("entry", entry["id"])
        store.delete_doc("classcode", klass["code"])
        store.delete_doc("class", class_id)


# -- what the lecturers see -----------------------------------------------------------------------------


def _job_line(store: JobStore, job: dict[str, Any]) -> dict[str, Any]:

    line = {
        "id": job["id"],
        "name": job["name"],
        "kind": job.get("kind", "trained"),
        "origin": origin_of(job),
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


def _member_line(store: JobStore, klass: dict, member: dict, jobs: list[dict], entered: set[str]) -> dict[str, Any]:
    lines = [_job_line(store, job) for job in jobs]
    scores = [j["test_accuracy"] for j in lines if j["status"] == "done" and j["test_accuracy"] is not None]
    return {
        "member_id": member_id(member),
        "name": member["name"],
        "role": member["role"],
        "owner": member["workspace"] == klass["owner"],
        "via": member.get("via", "created" if member["workspace"] == klass["owner"] else "code"),
        "joined": member["joined"],
        "lecturer_since": member.get("lecturer_since") if member["role"] == "lecturer" else None,
        "best_accuracy": max(scores) if scores else None,
        "entered": member["workspace"] in entered,
        "jobs": lines,
    }


class RoomReading:
    """A class as its lecturers see it, read again as it changes. Each reading takes the class, its members,
    its entries and the server's active jobs (a few queries); a member's list of jobs is read again only
    when its active jobs changed (one started, one ended), and every ``FULL_EVERY`` readings for what
    appears without a job (a copy, an edit, an import, a deletion). A web process keeps one per class its
    lecturers follow (:class:`app.jobs.events.ClassHub`)."""

    FULL_EVERY = 10
    JOBS_SHOWN = 20

    def __init__(self, class_id: str) -> None:
        self.class_id = class_id
        self.jobs: dict[str, list[dict[str, Any]]] = {}  # each member workspace's newest jobs
        self.active: dict[str, set[str]] = {}  # and which of them were queued or running
        self.readings = 0

    def _jobs_of(self, store: JobStore, workspace: str, active: list[dict], full: bool) -> list[dict[str, Any]]:
        now_active = {job["id"] for job in active}
        if full or workspace not in self.jobs or now_active != self.active.get(workspace):
            self.jobs[workspace] = store.workspace_jobs(workspace)[: self.JOBS_SHOWN]
        else:  # the same jobs: their fresh records carry what changed (a status, a heartbeat)
            fresh = {job["id"]: job for job in active}
            self.jobs[workspace] = [fresh.get(job["id"], job) for job in self.jobs[workspace]]
        self.active[workspace] = now_active
        return self.jobs[workspace]

    def read(self, store: JobStore) -> tuple[dict[str, Any], set[str]] | None:
        """The room's state (members with their jobs, counts, the challenge and the publications) and the
        workspaces that lecture it; None when the class is gone."""
        klass = store.get_doc("class", self.class_id)
        if klass is None:
            return None
        full, self.readings = self.readings % self.FULL_EVERY == 0, self.readings + 1
        members = store.docs("member", self.class_id)
        current = _round(klass["challenge"])
        entered = {e["workspace"] for e in store.docs("entry", self.class_id) if e.get("round", 1) == current}
        active: dict[str, list[dict]] = {}
        for job in store.active():
            active.setdefault(job.get("workspace") or "", []).append(job)
        lines = [
            _member_line(
                store, klass, m, self._jobs_of(store, m["workspace"], active.get(m["workspace"], []), full), entered
            )
            for m in members
        ]
        state = {
            "publications": klass["publications"],
            "challenge": public_challenge(klass["challenge"]),
            "counts": _counts([line for line in lines if line["role"] == "student"]),
            "members": lines,
        }
        return state, {m["workspace"] for m in members if m["role"] == "lecturer"}


def _counts(students: list[dict[str, Any]]) -> dict[str, int]:
    """The room at a glance: students in it, training now, with a trained model, entered this round."""
    return {
        "joined": len(students),
        "training": sum(any(j["status"] == "running" for j in s["jobs"]) for s in students),
        "with_model": sum(any(j["status"] == "done" and j["origin"] == "trained" for j in s["jobs"]) for s in students),
        "entered": sum(s["entered"] for s in students),
    }


def class_view(store: JobStore, settings: Settings, class_id: str, workspace: Workspace | None) -> dict[str, Any]:
    """The class as the caller sees it: a lecturer gets every member with their jobs and the room's counts,
    a student the class, the publications and the challenge."""
    klass, member = require_member(store, class_id, workspace)
    view: dict[str, Any] = {
        **public_class(klass, member["role"], settings, klass["owner"] == member["workspace"]),
        "member_name": member["name"],
        "member_id": member_id(member),
        "publications": klass["publications"],
        "challenge": public_challenge(klass["challenge"]),
        "counts": None,
        "members": None,
    }
    if member["role"] == "lecturer":
        state = RoomReading(class_id).read(store)
        if state is None:
            raise ClassNotFound(f"class: no class {class_id!r} that you are in")
        view.update(state[0])
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


# -- the challenge, in rounds ----------------------------------------------------------------------------


def _round(challenge: dict[str, Any] | None) -> int:
    return 0 if challenge is None else int(challenge.get("round", 1))


def set_challenge(
    store: JobStore, settings: Settings, class_id: str, workspace: Workspace | None, challenge: dict[str, Any]
) -> dict[str, Any]:
    """Sets the class's challenge. New rules (data set, parameters or epochs) start a new round, with held-out
    pictures drawn afresh from a seed kept with it (never shown); the same rules keep the round and its
    pictures, so a changed deadline alone does not empty the board."""
    require_lecturer(store, class_id, workspace)
    if challenge["dataset"] not in DATASETS:
        raise Refused(f"dataset: {challenge['dataset']!r}; a challenge runs on {', '.join(DATASETS)}")
    count = min(settings.challenge_test_size, len(load_dataset(challenge["dataset"], "test")))
    with store.doc_lock(class_id):
        klass = store.get_doc("class", class_id)
        if klass is None:
            raise ClassNotFound(f"class: no class {class_id!r}")
        current = klass["challenge"]
        rounds = klass.get("rounds") or ([public_challenge(current)] if current else [])
        same = current is not None and all(current[k] == challenge[k] for k in ROUND_RULES)
        if same:
            stored = {**current, "deadline": challenge["deadline"], "set": time.time()}
        else:
            seed = secrets.randbelow(2**31)
            stored = {**challenge, "seed": seed, "test_size": count, "round": len(rounds) + 1, "set": time.time()}
        shown = public_challenge(stored)
        klass["challenge"], klass["rounds"] = stored, [*rounds[: _round(stored) - 1], shown]
        store.put_doc("class", class_id, klass["owner"], klass)
    return shown or {}


def public_challenge(challenge: dict[str, Any] | None) -> dict[str, Any] | None:
    """What members see of a challenge: its rules and round, never the seed of its held-out pictures."""
    if challenge is None:
        return None
    shown = {k: challenge[k] for k in ("dataset", "max_parameters", "max_epochs", "deadline", "test_size")}
    return {**shown, "round": _round(challenge)}


def held_out(challenge: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The challenge's held-out test pictures and labels: a fixed part of the shipped test split."""
    test = load_dataset(challenge["dataset"], "test")
    picks = np.sort(np.random.default_rng(challenge["seed"]).permutation(len(test))[: challenge["test_size"]])
    return test.images[picks], test.labels[picks]


def layers_line(network: Network) -> str:
    """A design in one line: "conv 8@3x3 → maxpool → conv 16@3x3 → fc 10"."""
    words = (plan.kind.brief(plan.config) for plan in network.plans)
    return " → ".join(word for word in words if word)


def weights_digest(network: Network) -> str:
    """A fingerprint of a network's weights: byte-identical weights, and only those, give the same one."""
    digest = hashlib.sha256()
    for name in sorted(network.params):
        value = np.ascontiguousarray(network.params[name], np.float32)
        digest.update(name.encode() + str(value.shape).encode() + value.tobytes())
    return digest.hexdigest()


ORIGIN_REFUSALS = {
    "copy": "it is a copy of another model",
    "edit": "it is an edited model (network surgery on another one)",
    "import": "it is an imported ONNX file",
    "shipped": "it is a model shipped with convscope",
}


def entry_refusal(job: dict[str, Any] | None, owned: bool, entrant: str) -> str | None:
    """Why a model may not be entered, or None: an entry is a model the entrant's workspace trained with a
    training job, from scratch or fine-tuned from a shipped model or from its own trained model, checked
    along the whole line of models it came from."""

    if job is None:
        return ORIGIN_REFUSALS["shipped"]
    if not owned:
        return "it is someone else's model (shared with you, or published to the class)"
    origin = origin_of(job)
    if origin != "trained":
        return ORIGIN_REFUSALS[origin]
    line = job.get("line") or []
    for step in line:
        if step["origin"] == "shipped":
            return None
        if step["origin"] != "trained":
            return f"it is fine-tuned from a model that {ORIGIN_REFUSALS[step['origin']].removeprefix('it ')}"
        if step["workspace"] != entrant:
            return "it is fine-tuned from another workspace's model"
    if len(line) >= LINE_DEPTH:
        return f"it is fine-tuned through more than {LINE_DEPTH} models, too many to check"
    return None


def _check_entry(ref: ModelRef, challenge: dict[str, Any], entrant: str) -> dict[str, Any]:
    """The rules an entry meets before its weights are read: the student's own trained work, done, on the
    challenge's data set."""
    refusal = entry_refusal(ref.job, ref.owned, entrant)
    if refusal or ref.job is None:
        raise Refused(f"model: {refusal}; enter a model your workspace trained itself with a training job")
    if ref.job["status"] != "done":
        raise Conflict(f"model: {ref.id} is {ref.job['status']}; enter it when its training is done")
    if ref.job["dataset"] != challenge["dataset"]:
        raise Refused(f"model: it was trained on {ref.job['dataset']}; the challenge is on {challenge['dataset']}")
    epochs = (ref.job.get("settings") or {}).get("epochs", 0)
    if challenge.get("max_epochs") and epochs > challenge["max_epochs"]:
        raise Refused(f"model: trained for {epochs} epochs; the challenge allows at most {challenge['max_epochs']}")
    return ref.job


def _check_budget(network: Network, challenge: dict[str, Any]) -> None:
    if network.parameter_count > challenge["max_parameters"]:
        raise Refused(
            f"model: {network.parameter_count:,} parameters, over the challenge's budget of "
            f"{challenge['max_parameters']:,}; make the network smaller (fewer filters or units)"
        )


def enter(
    store: JobStore, registry: ModelRegistry, settings: Settings, class_id: str, workspace: Workspace | None, model: str
) -> dict[str, Any]:
    """Scores a student's own trained model on the round's held-out pictures and lists it on the
    leaderboard (through a share link, so the class can open it). The caps and duplicates are checked
    under the class's lock, after scoring, so parallel entries cannot pass them."""

    klass, member = require_member(store, class_id, workspace)
    challenge = _open_challenge(klass, member)
    ref = registry.resolve(model, workspace)
    job = _check_entry(ref, challenge, member["workspace"])
    network = registry.network(ref)
    _check_budget(network, challenge)
    images, labels = held_out(challenge)
    score, _ = accuracy_and_confusion(network, images, labels)
    budget.commit()  # the share link and the entry are stored: the client hears so, never a 503
    entry = {
        "id": "n" + uuid.uuid4().hex[:12],
        "class": class_id,
        "workspace": member["workspace"],
        "student": member["name"],
        "model": share_model(store, ref)["share_id"],
        "model_id": ref.id,
        "model_name": job["name"],
        "round": _round(challenge),
        "digest": weights_digest(network),
        "score": round(float(score), 5),
        "parameters": network.parameter_count,
        "layers": layers_line(network),
        "created": time.time(),
    }
    with store.doc_lock(class_id):
        _check_unique(store, settings, class_id, entry)
        store.put_doc("entry", entry["id"], class_id, entry)
    return public_entry(store, entry, attempts=None)


def _check_unique(store: JobStore, settings: Settings, class_id: str, entry: dict[str, Any]) -> None:
    """A student's entries this round stay within the cap, the same model is entered once a round, and
    no entry repeats another student's weights byte for byte."""
    entries = store.docs("entry", class_id)
    mine = [e for e in entries if e["workspace"] == entry["workspace"] and e.get("round", 1) == entry["round"]]
    if any(e.get("model_id") == entry["model_id"] or e["model"] == entry["model"] for e in mine):
        raise Conflict(f"model: {entry['model_name']!r} is already entered in this round")
    if len(mine) >= settings.max_entries_per_student:
        raise OverQuota(
            f"you have entered {len(mine)} models this round, the most a student may "
            f"({settings.max_entries_per_student})",
            retry_after=3600,
        )
    twin = next(
        (e for e in entries if e.get("digest") == entry["digest"] and e["workspace"] != entry["workspace"]), None
    )
    if twin is not None:
        raise Conflict(
            f"model: its weights are byte for byte those of {_student_of(store, twin)}'s entry "
            f"{twin['model_name']!r} (entry {twin['id']}); enter a model you trained"
        )


def _open_challenge(klass: dict, member: dict) -> dict[str, Any]:
    challenge: dict[str, Any] | None = klass["challenge"]
    if member["role"] != "student":
        raise Forbidden("lecturers set the challenge; students enter it")
    if challenge is None:
        raise Conflict("the class has no challenge yet; the lecturer sets one")
    if challenge.get("deadline") and time.time() > challenge["deadline"]:
        raise Conflict("the challenge's deadline has passed: it takes no more entries")
    return challenge


def _student_of(store: JobStore, entry: dict[str, Any]) -> str:
    member = store.get_doc("member", member_key(entry["class"], entry["workspace"]))
    return str(member["name"]) if member else str(entry["student"])  # the name chosen now, if it changed


def public_entry(store: JobStore, entry: dict[str, Any], attempts: int | None) -> dict[str, Any]:
    fields = ("id", "model", "model_name", "score", "parameters", "layers", "created")
    return {
        "student": _student_of(store, entry),
        **{k: entry[k] for k in fields},
        "round": entry.get("round", 1),
        "attempts": attempts if attempts is not None else 1,
        "url": f"/?model={entry['model']}",
    }


def leaderboard(
    store: JobStore, class_id: str, workspace: Workspace | None, round_number: int | None = None
) -> dict[str, Any]:
    """Each student's best entry in a round (the current one unless ``round_number`` names an earlier one),
    best score first (ties: fewer parameters, then the earlier entry), with how many models they entered."""
    klass, _ = require_member(store, class_id, workspace)
    rounds = klass.get("rounds") or ([public_challenge(klass["challenge"])] if klass["challenge"] else [])
    current = _round(klass["challenge"])
    chosen = current if round_number is None else round_number
    if round_number is not None and not 1 <= round_number <= len(rounds):
        words = f"rounds 1 to {len(rounds)}" if rounds else "no rounds yet"
        raise NotFound(f"round: the class has had {words}, not round {round_number}")
    ranked = sorted(
        (e for e in store.docs("entry", class_id) if e.get("round", 1) == chosen),
        key=lambda e: (-e["score"], e["parameters"], e["created"]),
    )
    best: dict[str, dict[str, Any]] = {}
    attempts: dict[str, int] = {}
    for entry in ranked:
        best.setdefault(entry["workspace"], entry)
        attempts[entry["workspace"]] = attempts.get(entry["workspace"], 0) + 1
    rows = [public_entry(store, e, attempts[w]) for w, e in best.items()]
    challenge = rounds[chosen - 1] if chosen else None
    return {"challenge": challenge, "round": chosen, "rounds": len(rounds), "entries": rows}
