"""What the "what did it learn" views need from a model, computed once and kept: every layer's units
over the test pictures, the test pictures' last features and their 2-D map, and (on first use) the
training pictures' features for nearest neighbours. Kept in the store beside the model (so every
worker and replica shares it) and in a per-process cache bounded in bytes
(``CONVSCOPE_LEARNED_CACHE_BYTES``)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.jobs.store import JobStore
from app.lru import ByteLRU
from app.services import datasets as own_data
from engine.datasets import Dataset, to_network_input
from engine.learned import Embedding, UnitSummary, pca_embedding, penultimate, summarise, synthetic_input
from engine.network import Network


@dataclass
class Learned:
    test: Dataset
    summaries: dict[str, UnitSummary]
    embedding: Embedding
    train_features: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        arrays = [self.embedding.points, self.embedding.axes, self.embedding.mean]
        arrays += [a for s in self.summaries.values() for a in (s.values, s.positions)]
        if self.train_features is not None:
            arrays.append(self.train_features)
        return sum(int(a.nbytes) for a in arrays)


def _key(model_id: str, part: str) -> str:
    # shipped models have no job to own their blobs: they get a prefix of their own
    return f"{model_id}/{part}"


class LearnedCache:
    def __init__(self, store: JobStore, budget_bytes: int = 256 << 20) -> None:
        self.store = store
        self._cache: ByteLRU[Learned] = ByteLRU(budget_bytes, lambda learned: learned.nbytes)

    def get(self, model_id: str, network: Network) -> Learned:
        learned = self._cache.get(model_id)
        if learned is None:
            learned = self._load(model_id, network) or self._compute(model_id, network)
            self._cache.put(model_id, learned)
        return learned

    def synthetic(self, model_id: str, network: Network, layer: str, unit: int) -> np.ndarray:
        """The synthetic picture of a unit (the input that excites it most), made once and kept in the store."""
        key = _key(model_id, f"synthetic/{layer}/{unit}")
        blob = self.store.get_blob(key)
        if blob is not None:
            with np.load(io.BytesIO(blob), allow_pickle=False) as data:
                return np.asarray(data["x"])
        x = synthetic_input(network, layer, unit)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, x=x)
        self.store.put_blob(key, buffer.getvalue())
        return x

    def train_features(self, model_id: str, network: Network) -> np.ndarray:
        learned = self.get(model_id, network)
        if learned.train_features is None:
            blob = self.store.get_blob(_key(model_id, "train-features"))
            if blob is not None:
                with np.load(io.BytesIO(blob), allow_pickle=False) as data:
                    learned.train_features = data["features"]
            else:
                train = own_data.resolve(self.store, network.dataset or "digits", "train")
                features = penultimate(network, to_network_input(train.images, network.input_shape)).astype(np.float32)
                buffer = io.BytesIO()
                np.savez_compressed(buffer, features=features)
                self.store.put_blob(_key(model_id, "train-features"), buffer.getvalue())
                learned.train_features = features
            self._cache.resize(model_id)
        return learned.train_features

    def _compute(self, model_id: str, network: Network) -> Learned:
        test = own_data.resolve(self.store, network.dataset or "digits", "test")
        x = to_network_input(test.images, network.input_shape)
        summaries = summarise(network, x)
        embedding = pca_embedding(penultimate(network, x))
        arrays: dict[str, Any] = {
            "points": embedding.points,
            "mean": embedding.mean,
            "axes": embedding.axes,
            "explained": embedding.explained,
        }
        for name, summary in summaries.items():
            arrays[f"values/{name}"] = summary.values.astype(np.float32)
            arrays[f"positions/{name}"] = summary.positions.astype(np.int16)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        self.store.put_blob(_key(model_id, "learned"), buffer.getvalue())
        return Learned(test, summaries, embedding)

    def _load(self, model_id: str, network: Network) -> Learned | None:
        blob = self.store.get_blob(_key(model_id, "learned"))
        if blob is None:
            return None
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            summaries = {
                name: UnitSummary(name, data[f"values/{name}"], data[f"positions/{name}"].astype(np.int64))
                for name in network.layer_names
                if f"values/{name}" in data.files
            }
            embedding = Embedding(data["points"], data["mean"], data["axes"], data["explained"])
        if set(summaries) != set(network.layer_names):
            return None  # written for another version of the model: work it out again
        return Learned(own_data.resolve(self.store, network.dataset or "digits", "test"), summaries, embedding)
