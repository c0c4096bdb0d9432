"""What did a model learn? Unit cards, a class map with nearest examples, and network surgery."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from app import budgets
from app.deps import AddressDep, OwnerDep, RegistryDep, SettingsDep, StoreDep, ViewerDep
from app.errors import ApiError, error_responses
from app.inputs import network_input
from app.jsonutil import json_response
from app.schemas.learned import EditRequest, EditResponse, EmbeddingMap, NeighboursRequest, NeighboursResponse, UnitCard
from app.services import datasets as own_data
from app.services import models
from app.services.learned import Learned, LearnedCache
from app.services.registry import ModelRegistry
from app.services.workspaces import Workspace
from engine.datasets import to_network_input
from engine.learned import apply_edits, nearest, penultimate, top_examples, unit_value, unit_weights
from engine.network import Network

router = APIRouter(prefix="/api/models", tags=["learned"])

# a request naming a model (?model=): unknown or another workspace's, still training, or a bad token
MODEL_ERRORS = error_responses(401, 404, 409)

ModelPath = Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")


def _learned(request: Request) -> LearnedCache:
    return request.app.state.learned


def _model(request: Request, model_id: str, workspace: Workspace | None, need_data: bool = True) -> tuple[Network, str]:
    """The network the viewer may see under ``model_id`` and where what is computed from it is kept,
    after checking that its summaries over the test pictures fit one request's memory. A model imported
    without a data set has no pictures to summarise: 409 where they are needed."""
    registry: ModelRegistry = request.app.state.registry
    ref = registry.resolve(model_id, workspace)
    network = registry.network(ref)
    if network.dataset is None:
        if need_data:
            raise ApiError(409, NO_DATA)
        return network, registry.cache_id(ref)
    test = own_data.resolve(request.app.state.store, network.dataset, "test")
    budgets.check_summaries(request.app.state.settings, network, len(test))
    return network, registry.cache_id(ref)


NO_DATA = (
    "model: it was imported without a data set, so there are no pictures to rank or map; import it again "
    "with dataset=digits or dataset=fashion (if those are its classes) to see top examples and the class map"
)


@router.get(
    "/{model_id}/units/{layer}/{unit}",
    response_model=UnitCard,
    summary="What a unit responds to",
    responses=MODEL_ERRORS,
)
def unit_card(
    request: Request,
    workspace: ViewerDep,
    model_id: str = ModelPath,
    layer: str = Path(max_length=64),
    unit: int = Path(ge=0, le=100_000),
    k: int = Query(9, ge=1, le=50),
) -> Response:
    """The ``k`` test pictures where the unit fires most (for a map, at its strongest position) with the
    receptive field there and the patch it covers, a picture made to excite it, and its weights. For the
    last layer a unit is a class: "what does the network think a 7 looks like"."""
    network, cache_id = _model(request, model_id, workspace, need_data=False)
    if layer not in network.layer_names:
        raise ApiError(404, f"no layer {layer!r} in {model_id}; layers are {', '.join(network.layer_names)}")
    plan = next(p for p in network.plans if p.name == layer and p.named)
    if unit >= plan.output_shape[0]:
        raise ApiError(404, f"{layer} has units 0..{plan.output_shape[0] - 1}, got {unit}")
    synthetic = _learned(request).synthetic(cache_id, network, layer, unit)
    top: list[dict] = []
    mean_activation = None
    withheld = own_data.pictures_withheld(request.app.state.store, workspace, network.dataset)
    if network.dataset is not None:
        learned = _learned(request).get(cache_id, network)
        top, mean_activation = _top(network, learned, layer, unit, k, pictures=withheld is None)
    is_last = layer == network.layer_names[-1]
    weights = unit_weights(network, layer, unit)
    return json_response(
        {
            "model": model_id,
            "layer": layer,
            "unit": unit,
            "kind": "linear" if len(plan.output_shape) == 1 else plan.kind.draw,
            "label": network.labels[unit] if is_last else None,
            "top": top,
            "note": None if network.dataset else "top examples need a data set: this model was imported without one",
            "pictures_note": withheld,
            "synthetic": np.round(synthetic, 4),
            "synthetic_activation": float(unit_value(network, layer, unit, synthetic[None])[0]),
            "mean_activation": mean_activation,
            "weights": None if weights is None else {"weight": np.round(weights["weight"], 5), "bias": weights["bias"]},
        }
    )


def _top(network: Network, learned: Learned, layer: str, unit: int, k: int, pictures: bool) -> tuple[list[dict], float]:
    """The ``k`` test pictures where the unit fires most, and its mean over all of them (without the
    pictures themselves unless ``pictures``: the ranks, labels, activations and boxes stay)."""
    summary = learned.summaries[layer]
    examples = top_examples(network, summary, unit, k)
    x = to_network_input(learned.test.images[[e.index for e in examples]], network.input_shape)
    # a colour picture keeps its three channels (C x H x W); a gray one is its only plane (H x W)
    shown = x if x.shape[1] == 3 else x[:, 0]
    top = [
        {
            "index": e.index,
            "label": int(learned.test.labels[e.index]),
            "activation": round(e.activation, 5),
            "position": list(e.position),
            "box": list(e.box),
            "patch": np.round(shown[n, ..., e.box[0] : e.box[2], e.box[1] : e.box[3]], 4) if pictures else None,
            "picture": np.round(shown[n], 4) if pictures else None,
        }
        for n, e in enumerate(examples)
    ]
    return top, float(summary.values[:, unit].mean())


@router.get(
    "/{model_id}/embedding",
    response_model=EmbeddingMap,
    summary="Where each test picture sits",
    responses=MODEL_ERRORS,
)
def embedding(request: Request, workspace: ViewerDep, model_id: str = ModelPath) -> Response:
    """Every test picture's features in the layer before the last, mapped to 2-D by PCA (the two
    directions along which the features vary most; exact, fast and the same every time)."""
    network, cache_id = _model(request, model_id, workspace)
    learned = _learned(request).get(cache_id, network)
    return json_response(
        {
            "model": model_id,
            "method": "pca",
            "layer": network.layer_names[-2],
            "explained": learned.embedding.explained,
            "points": np.round(learned.embedding.points, 4),
            "labels": learned.test.labels.astype(int),
            "classes": list(learned.test.classes),
            "dataset": network.dataset,
            "pictures_note": own_data.pictures_withheld(request.app.state.store, workspace, network.dataset),
        }
    )


@router.post(
    "/{model_id}/neighbours",
    response_model=NeighboursResponse,
    summary="The nearest training pictures",
    responses=MODEL_ERRORS,
)
def neighbours(
    body: NeighboursRequest,
    request: Request,
    settings: SettingsDep,
    workspace: ViewerDep,
    model_id: str = ModelPath,
) -> Response:
    """The input's place on the class map, and the ``k`` training pictures nearest it in the same features."""
    network, cache_id = _model(request, model_id, workspace)
    train = own_data.resolve(request.app.state.store, network.dataset or "digits", "train")  # _model refused none
    budgets.check_neighbours(settings, network, len(train))
    given = network_input(network, body, settings)
    cache = _learned(request)
    learned = cache.get(cache_id, network)
    features = penultimate(network, given.x[None])[0]
    train_features = cache.train_features(cache_id, network)
    order, distances = nearest(train_features, features.astype(np.float32), body.k)
    withheld = own_data.pictures_withheld(request.app.state.store, workspace, network.dataset)
    return json_response(
        {
            "model": model_id,
            "position": learned.embedding.place(features[None])[0],
            "neighbours": [
                {"index": int(i), "label": int(train.labels[i]), "distance": round(float(d), 5)}
                for i, d in zip(order, distances)
            ],
            "images": None if withheld else train.images[order],
            "classes": list(train.classes),
            "pictures_note": withheld,
        }
    )


@router.post(
    "/{model_id}/edit",
    response_model=EditResponse,
    status_code=201,
    summary="Network surgery",
    responses={
        404: {"description": "no such model for you"},
        429: {"description": "your workspace's edits or storage are at their cap"},
    },
)
def edit(
    body: EditRequest,
    registry: RegistryDep,
    store: StoreDep,
    settings: SettingsDep,
    workspace: OwnerDep,
    address: AddressDep,
    model_id: str = ModelPath,
) -> Response:
    """A copy of the model with filters or units switched off, a first-layer filter replaced, or a layer's
    weights scaled — and the test accuracy before and after, overall and per class. The original is
    never changed; the copy is a model of your workspace like any other (``?model=ID``), named after what
    was changed, and expires like trained ones."""
    ref = registry.resolve(model_id, workspace)
    network = registry.network(ref)
    budgets.check_edit(settings, network)
    edits = [e.model_dump(exclude_none=True) for e in body.edits]
    edited = apply_edits(network, edits)
    answer = models.create_edit(store, settings, workspace, address, ref, network, edited, edits, body.name)
    return json_response(answer, status_code=201)
