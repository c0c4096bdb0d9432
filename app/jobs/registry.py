"""Every model a request can name: the shipped ones (``lenet``, ``fashion``, files read once at
start-up) and the ones trained or edited in the app (blobs in the store, read on first use and
kept in a small cache). ``?model=ID&snapshot=STEP`` names a model as it was at that training step.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from pathlib import Path

from app.errors import ApiError
from app.jobs.store import JobStore
from engine import SHIPPED_MODELS
from engine.network import Network, load_network

CACHE_SIZE = 32  # networks kept in memory per process (a LeNet is ~0.3 MB)


class ModelRegistry:
    def __init__(self, store: JobStore, lenet_path: str | Path | None = None) -> None:
        self.store = store
        paths = {**SHIPPED_MODELS, **({"lenet": Path(lenet_path)} if lenet_path else {})}
        self.shipped: dict[str, Network] = {name: load_network(path) for name, path in paths.items()}
        self.shipped_files = paths
        self._cache: OrderedDict[tuple[str, int | None], Network] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_id: str, snapshot: int | None = None) -> Network:
        """The network named ``model_id`` (at training step ``snapshot``): 404 if there is none,
        409 if it has not finished training and no snapshot is asked for."""
        if model_id in self.shipped:
            if snapshot is not None:
                raise ApiError(404, f"snapshot: the shipped model {model_id!r} has no training snapshots")
            return self.shipped[model_id]
        key = (model_id, snapshot)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        network = load_network(io.BytesIO(self.blob(model_id, snapshot)))
        with self._lock:
            self._cache[key] = network
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return network

    def cache_id(self, model_id: str) -> str:
        """Where things computed from a model are kept: a trained model's own id, or for a shipped model
        a name that changes with its weights (CONVSCOPE_WEIGHTS_PATH may point elsewhere tomorrow)."""
        if model_id not in self.shipped:
            return model_id
        digest = hashlib.sha1()
        for value in self.shipped[model_id].params.values():
            digest.update(value.tobytes())
        return f"shipped-{model_id}-{digest.hexdigest()[:12]}"

    def blob(self, model_id: str, snapshot: int | None = None) -> bytes:
        """The ``.npz`` bytes of a stored model (or one of its snapshots), after the same checks as get."""
        if model_id in self.shipped:
            if snapshot is not None:
                raise ApiError(404, f"snapshot: the shipped model {model_id!r} has no training snapshots")
            return self.shipped_files[model_id].read_bytes()
        job = self.store.get(model_id)
        if job is None:
            raise ApiError(404, f"model: no model {model_id!r}; GET /api/models lists them")
        if snapshot is None:
            if job["status"] != "done":
                raise ApiError(
                    409,
                    f"model: {model_id} is {job['status']}, not done; use it when training is done, "
                    "or name a training step with &snapshot=STEP",
                )
            data = self.store.get_blob(f"{model_id}/model")
        else:
            data = self.store.get_blob(f"{model_id}/snapshot/{snapshot}")
            if data is None:
                raise ApiError(404, f"snapshot: {model_id} has no snapshot at step {snapshot}; its job lists them")
        if data is None:
            raise ApiError(404, f"model: the weights of {model_id} are gone")
        return data
