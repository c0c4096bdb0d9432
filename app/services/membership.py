"""Who is in which class, as the store keeps it: a ``member`` document under the class for each workspace
in it, and an ``enrolment`` under the workspace for each class it is in. Below the classes service, the
model registry (a lecturer sees a student's models) and the training service (published models)."""

from __future__ import annotations

from typing import Any

from app.jobs.store import JobStore
from app.services.workspaces import Workspace


def member_key(class_id: str, workspace_id: str) -> str:
    """The id of the ``member`` document of a workspace in a class (its ``enrolment`` is the reverse)."""
    return f"{class_id}:{workspace_id}"


def enrolment_key(workspace_id: str, class_id: str) -> str:
    return f"{workspace_id}:{class_id}"


def enrolled(store: JobStore, workspace: Workspace | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each class the workspace is in, with its membership there."""
    if workspace is None:
        return []
    found = []
    for enrolment in store.docs("enrolment", workspace.id):
        klass = store.get_doc("class", enrolment["class"])
        member = store.get_doc("member", member_key(enrolment["class"], workspace.id)) if klass else None
        if klass is not None and member is not None:
            found.append((member, klass))
    return found


def lecturer_sees(store: JobStore, owner: str, viewer: Workspace | None) -> bool:
    """Whether ``viewer`` lectures a class in which the workspace ``owner`` is a student."""
    if viewer is None:
        return False
    for enrolment in store.docs("enrolment", owner):
        mine = store.get_doc("member", member_key(enrolment["class"], owner))
        if mine is None or mine["role"] != "student":
            continue
        theirs = store.get_doc("member", member_key(enrolment["class"], viewer.id))
        if theirs is not None and theirs["role"] == "lecturer":
            return True
    return False


def publications_for(store: JobStore, workspace: Workspace | None) -> list[dict[str, Any]]:
    """Everything the caller's lecturers published, with the class it came from."""
    return [
        {**p, "class": klass["id"], "class_name": klass["name"]}
        for _, klass in enrolled(store, workspace)
        for p in klass["publications"]
    ]
