"""Every model a request can name: the shipped ones (``lenet``, ``fashion``, files read once at
start-up), the ones trained, edited or copied in the app (blobs in the store, read on first use and
kept in a cache bounded in bytes), and share links (``s...``) that stand for another workspace's model.
``?model=ID&snapshot=STEP`` names a model as it was at that training step.

Who may see a stored model is decided here, for every route: the workspace that made it, the lecturers
of a class it is a student in (read-only), and anyone holding one of its share links (read-only). To
everyone else it does not exist (404, never 403). The
model's record is read on every use, so a model deleted by its time-to-live is gone from every process
at once, whatever its caches still hold.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import Conflict, NotFound
from app.jobs.store import JobStore
from app.lru import ByteLRU
from app.services.membership import lecturer_sees
from app.services.workspaces import Workspace
from engine import SHIPPED_MODELS
from engine.network import Network, load_network


class ModelNotFound(NotFound):
    """No model by that name that this workspace may see (answered 404)."""


class ModelNotReady(Conflict):
    """A model still training, asked for without a snapshot (answered 409)."""


@dataclass(frozen=True)
class ModelRef:
    """What a model id (or share id) stands for, for one viewer."""

    id: str  # the stored model's own id, or the shipped model's name
    job: dict[str, Any] | None  # its record; None for a shipped model
    owned: bool  # the viewer's workspace made it (it may cancel, share or delete it)

    @property
    def shipped(self) -> bool:
        return self.job is None


def weights_bytes(network: Network) -> int:
    """What a loaded network weighs in memory: its parameters."""
    return sum(int(v.nbytes) for v in network.params.values())


class ModelRegistry:
    def __init__(self, store: JobStore, lenet_path: str | Path | None = None, cache_bytes: int = 64 << 20) -> None:
        self.store = store
        paths = {**SHIPPED_MODELS, **({"lenet": Path(lenet_path)} if lenet_path else {})}
        self.shipped: dict[str, Network] = {name: load_network(path) for name, path in paths.items()}
        self.shipped_files = paths
        self._cache: ByteLRU[Network] = ByteLRU(cache_bytes, weights_bytes)

    def resolve(self, model_id: str, viewer: Workspace | None, remember: bool = False) -> ModelRef:
        """The model ``model_id`` names for ``viewer``; :class:`ModelNotFound` if it may not see it. With
        ``remember``, a share link the viewer opens is listed under its "shared with you"."""
        if model_id in self.shipped:
            return ModelRef(model_id, None, False)
        share = self.store.share(model_id) if model_id.startswith("s") else None
        if share is not None:
            job = self.store.get(share["model"])
            if job is None:
                raise ModelNotFound(f"model: the model behind the share link {model_id!r} has been deleted")
            owned = viewer is not None and viewer.id == job.get("workspace")
            if remember and viewer is not None and not owned:
                self.store.remember_share(viewer.id, model_id)
            return ModelRef(job["id"], job, owned)
        job = self.store.get(model_id)
        if job is None or not (
            self.visible(job, viewer) or lecturer_sees(self.store, job.get("workspace") or "", viewer)
        ):
            raise ModelNotFound(f"model: no model {model_id!r} in your workspace; GET /api/models lists yours")
        return ModelRef(job["id"], job, viewer is not None and viewer.id == job.get("workspace"))

    @staticmethod
    def visible(job: dict[str, Any], viewer: Workspace | None) -> bool:
        # a record written before workspaces existed has no owner: it stays readable by anyone
        owner = job.get("workspace")
        return owner is None or (viewer is not None and viewer.id == owner)

    def get(self, model_id: str, snapshot: int | None = None, viewer: Workspace | None = None) -> Network:
        """The network named ``model_id`` (at training step ``snapshot``): :class:`ModelNotFound` if there is
        none for ``viewer``, :class:`ModelNotReady` if it has not finished training and no snapshot is asked for."""
        if model_id in self.shipped:
            if snapshot is not None:
                raise ModelNotFound(f"snapshot: the shipped model {model_id!r} has no training snapshots")
            return self.shipped[model_id]
        ref = self.resolve(model_id, viewer)
        return self.network(ref, snapshot)

    def network(self, ref: ModelRef, snapshot: int | None = None) -> Network:
        if ref.shipped:
            return self.get(ref.id, snapshot)
        key = (ref.id, snapshot)
        network = self._cache.get(key)
        if network is None:
            network = load_network(io.BytesIO(self._blob(ref, snapshot)))
            self._cache.put(key, network)
        return network

    def cache_id(self, ref: ModelRef) -> str:
        """Where things computed from a model are kept: a stored model's own id, or for a shipped model a
        name that changes with its weights (CONVSCOPE_WEIGHTS_PATH may point elsewhere tomorrow)."""
        if not ref.shipped:
            return ref.id
        digest = hashlib.sha1()
        for value in self.shipped[ref.id].params.values():
            digest.update(value.tobytes())
        return f"shipped-{ref.id}-{digest.hexdigest()[:12]}"

    def blob(self, model_id: str, snapshot: int | None = None, viewer: Workspace | None = None) -> bytes:
        """The ``.npz`` bytes of a model (or one of its snapshots), after the same checks as get."""
        if model_id in self.shipped:
            if snapshot is not None:
                raise ModelNotFound(f"snapshot: the shipped model {model_id!r} has no training snapshots")
            return self.shipped_files[model_id].read_bytes()
        return self._blob(self.resolve(model_id, viewer), snapshot)

    def _blob(self, ref: ModelRef, snapshot: int | None) -> bytes:
        assert ref.job is not None
        if snapshot is None:
            if ref.job["status"] != "done":
                raise ModelNotReady(
                    f"model: {ref.id} is {ref.job['status']}, not done; use it when training is done, "
                    "or name a training step with &snapshot=STEP"
                )
            data = self.store.get_blob(f"{ref.id}/model")
        else:
            data = self.store.get_blob(f"{ref.id}/snapshot/{snapshot}")
            if data is None:
                raise ModelNotFound(f"snapshot: {ref.id} has no snapshot at step {snapshot}; its job lists them")
        if data is None:
            raise ModelNotFound(f"model: the weights of {ref.id} are gone")
        return data
