"""What did a model learn? Unit cards, a class map with nearest examples, and network surgery."""

from __future__ import annotations

import io
import uuid

import numpy as np
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from app.deps import RegistryDep, SettingsDep, StoreDep
from app.errors import ApiError
from app.inputs import network_input
from app.jobs.learned_cache import LearnedCache
from app.jobs.store import now
from app.jobs.worker import network_bytes
from app.jsonutil import json_response
from app.schemas.learned import EditRequest, EditResponse, EmbeddingMap, NeighboursRequest, NeighboursResponse, UnitCard
from engine.datasets import load_dataset, to_network_input
from engine.learned import apply_edits, nearest, penultimate, synthetic_input, top_examples, unit_value, unit_weights
from engine.network import Network
from engine.train import accuracy_and_confusion

router = APIRouter(prefix="/api/models", tags=["learned"])

ModelPath = Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")


def _learned(request: Request) -> LearnedCache:
    return request.app.state.learned


@router.get("/{model_id}/units/{layer}/{unit}", response_model=UnitCard, summary="What a unit responds to")
def unit_card(
    request: Request,
    registry: RegistryDep,
    model_id: str = ModelPath,
    layer: str = Path(max_length=64),
    unit: int = Path(ge=0, le=100_000),
    k: int = Query(9, ge=1, le=50),
) -> Response:
    """The ``k`` test pictures where the unit fires most (for a map, at its strongest position) with the
    receptive field there and the patch it covers, a picture made to excite it, and its weights. For the
    last layer a unit is a class: "what does the network think a 7 looks like"."""
    network = registry.get(model_id)
    if layer not in network.layer_names:
        raise ApiError(404, f"no layer {layer!r} in {model_id}; layers are {', '.join(network.layer_names)}")
    learned = _learned(request).get(registry.cache_id(model_id), network)
    summary = learned.summaries[layer]
    if unit >= summary.values.shape[1]:
        raise ApiError(404, f"{layer} has units 0..{summary.values.shape[1] - 1}, got {unit}")
    examples = top_examples(network, summary, unit, k)
    x = to_network_input(learned.test.images[[e.index for e in examples]], network.input_shape)
    synthetic = _synthetic(request, registry, model_id, network, layer, unit)
    plan_type = next(p.type for p in network.plans if p.owner == layer and p.named)
    is_last = layer == network.layer_names[-1]
    weights = unit_weights(network, layer, unit)
    return json_response(
        {
            "model": model_id,
            "layer": layer,
            "unit": unit,
            "kind": "conv" if plan_type == "conv" else "linear" if plan_type == "linear" else "pool",
            "label": network.labels[unit] if is_last else None,
            "top": [
                {
                    "index": e.index,
                    "label": int(learned.test.labels[e.index]),
                    "activation": round(e.activation, 5),
                    "position": list(e.position),
                    "box": list(e.box),
                    "patch": np.round(x[n, 0, e.box[0] : e.box[2], e.box[1] : e.box[3]], 4),
                    "picture": np.round(x[n, 0], 4),
                }
                for n, e in enumerate(examples)
            ],
            "synthetic": np.round(synthetic, 4),
            "synthetic_activation": float(unit_value(network, layer, unit, synthetic[None])[0]),
            "mean_activation": float(summary.values[:, unit].mean()),
            "weights": None if weights is None else {"weight": np.round(weights["weight"], 5), "bias": weights["bias"]},
        }
    )


def _synthetic(request: Request, registry, model_id: str, network: Network, layer: str, unit: int) -> np.ndarray:
    """The synthetic picture of a unit, made once and kept in the store."""
    store = request.app.state.store
    key = f"{registry.cache_id(model_id)}/synthetic/{layer}/{unit}"
    blob = store.get_blob(key)
    if blob is not None:
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            return data["x"]
    x = synthetic_input(network, layer, unit)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=x)
    store.put_blob(key, buffer.getvalue())
    return x


@router.get("/{model_id}/embedding", response_model=EmbeddingMap, summary="Where each test picture sits")
def embedding(request: Request, registry: RegistryDep, model_id: str = ModelPath) -> Response:
    """Every test picture's features in the layer before the last, mapped to 2-D by PCA (the two
    directions along which the features vary most; exact, fast and the same every time)."""
    network = registry.get(model_id)
    learned = _learned(request).get(registry.cache_id(model_id), network)
    return json_response(
        {
            "model": model_id,
            "method": "pca",
            "layer": network.layer_names[-2],
            "explained": learned.embedding.explained,
            "points": np.round(learned.embedding.points, 4),
            "labels": learned.test.labels.astype(int),
            "classes": list(learned.test.classes),
        }
    )


@router.post("/{model_id}/neighbours", response_model=NeighboursResponse, summary="The nearest training pictures")
def neighbours(
    body: NeighboursRequest, request: Request, registry: RegistryDep, settings: SettingsDep, model_id: str = ModelPath
) -> Response:
    """The input's place on the class map, and the ``k`` training pictures nearest it in the same features."""
    network = registry.get(model_id)
    given = network_input(network, body, settings)
    cache = _learned(request)
    learned = cache.get(registry.cache_id(model_id), network)
    features = penultimate(network, given.x[None])[0]
    train_features = cache.train_features(registry.cache_id(model_id), network)
    order, distances = nearest(train_features, features.astype(np.float32), body.k)
    train = load_dataset(network.meta.get("dataset", "digits"), "train")
    return json_response(
        {
            "model": model_id,
            "position": learned.embedding.place(features[None])[0],
            "neighbours": [
                {"index": int(i), "label": int(train.labels[i]), "distance": round(float(d), 5)}
                for i, d in zip(order, distances)
            ],
            "images": train.images[order],
            "classes": list(train.classes),
        }
    )


@router.post("/{model_id}/edit", response_model=EditResponse, status_code=201, summary="Network surgery")
def edit(
    body: EditRequest, registry: RegistryDep, store: StoreDep, settings: SettingsDep, model_id: str = ModelPath
) -> Response:
    """A copy of the model with filters or units switched off, a first-layer filter replaced, or a layer's
    weights scaled — and the test accuracy before and after, overall and per class. The original is
    never changed; the copy is a model like any other (``?model=ID``) and expires like trained ones."""
    network = registry.get(model_id)
    edited = apply_edits(network, [e.model_dump(exclude_none=True) for e in body.edits])
    dataset = network.meta.get("dataset", "digits")
    test = load_dataset(dataset, "test")
    before, confusion_before = accuracy_and_confusion(network, test.images, test.labels)
    after, confusion_after = accuracy_and_confusion(edited, test.images, test.labels)
    per_class = lambda c: (c.diagonal() / np.maximum(c.sum(axis=1), 1)).round(5)  # noqa: E731
    new_id = "e" + uuid.uuid4().hex[:12]
    name = body.name or f"{network.meta.get('name', model_id)}, edited"
    edited.meta.update(name=name, base=model_id, edits=[e.model_dump(exclude_none=True) for e in body.edits])
    edited.meta["test_accuracy"] = after
    store.create(
        {
            "id": new_id,
            "created": now(),
            "client": None,
            "status": "queued",
            "kind": "edited",
            "name": name,
            "dataset": dataset,
            "classes": edited.labels,
            "architecture": edited.spec,
            "layers": edited.describe(),
            "parameters": edited.parameter_count,
            "settings": {"base": model_id, "edits": edited.meta["edits"]},
        }
    )
    store.put_blob(f"{new_id}/model", network_bytes(edited))
    metrics = {
        "test_accuracy": after,
        "test_size": int(len(test)),
        "confusion": confusion_after.tolist(),
        "per_class_accuracy": per_class(confusion_after).tolist(),
    }
    store.transition(new_id, ["queued"], "done", started=now(), finished=now(), metrics=metrics)
    return json_response(
        {
            "id": new_id,
            "base": model_id,
            "accuracy_before": before,
            "accuracy_after": after,
            "per_class_before": per_class(confusion_before),
            "per_class_after": per_class(confusion_after),
        },
        status_code=201,
    )
