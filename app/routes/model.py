"""The digit network: its layers, and the learned weights of each."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import ModelDep, ModelIdDep, StoreDep, ViewerDep
from app.errors import ApiError, error_responses
from app.schemas import LayerWeights, ModelInfo
from app.services import datasets as own_data

router = APIRouter(prefix="/api/model", tags=["model"])

# a request naming a model (?model=): unknown or another workspace's, still training, or a bad token
MODEL_ERRORS = error_responses(401, 404, 409)


@router.get("", response_model=ModelInfo, summary="The network's layers", responses=MODEL_ERRORS)
def model_info(model: ModelDep, model_id: ModelIdDep, store: StoreDep, workspace: ViewerDep) -> dict:
    """Layers in order with kind, output shape and parameter count, the total, and how it was trained
    (``?model=ID``, default the shipped LeNet; ``&snapshot=STEP`` for a trained model mid-training)."""
    return {
        "pictures_note": own_data.pictures_withheld(store, workspace, model.dataset),
        "id": model_id,
        "name": model.meta.get("name", model_id),
        "labels": model.labels,
        "input_shape": list(model.input_shape),
        "layers": [{**row, "kind": row["type"]} for row in model.describe()[1:]],
        "total_parameters": model.parameter_count,
        "meta": model.meta,
    }


@router.get(
    "/layers/{name}/weights",
    response_model=LayerWeights,
    summary="One layer's learned weights",
    responses=MODEL_ERRORS,
)
def layer_weights(name: str, model: ModelDep) -> dict:
    """A conv layer's filters (F, C/groups, KH, KW) or a linear layer's matrix (out, in), and the biases; a
    BatchNorm layer's scale (``weight``) and shift (``bias``) with its running statistics and eps."""
    if name not in model.layer_names:
        raise ApiError(404, f"no layer named {name!r}; layers are {', '.join(model.layer_names)}")
    if f"{name}.weight" not in model.params:
        with_weights = [n for n in model.layer_names if f"{n}.weight" in model.params]
        raise ApiError(404, f"{name} has no weights; layers with weights: {', '.join(with_weights)}")
    weight = model.params[f"{name}.weight"]
    answer = {
        "name": name,
        "weight_shape": list(weight.shape),
        "weight": weight.round(5).tolist(),
        "bias": model.params[f"{name}.bias"].round(5).tolist(),
    }
    if f"{name}.running_mean" in model.params:  # BatchNorm: what its affine map is made of
        plan = next(p for p in model.plans if p.named and p.name == name)
        answer["running_mean"] = model.params[f"{name}.running_mean"].round(5).tolist()
        answer["running_var"] = model.params[f"{name}.running_var"].round(5).tolist()
        answer["eps"] = plan.config["eps"]
    return answer
