"""Why did it decide? Attribution maps, and the small changes that fool it."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter
from fastapi.responses import Response

from app import budgets
from app.deps import ModelDep, ModelIdDep, SettingsDep
from app.errors import ApiError, error_responses
from app.inputs import network_input
from app.jsonutil import json_response
from app.schemas.explain import METHODS, AdversarialRequest, AdversarialResponse, ExplainRequest, ExplainResponse
from engine import explain as attributions
from engine.network import Network

router = APIRouter(prefix="/api", tags=["explain"])

# a request naming a model (?model=): unknown or another workspace's, still training, or a bad token
MODEL_ERRORS = error_responses(401, 404, 409)


def _given(model: Network, request, settings) -> np.ndarray:
    given = network_input(model, request, settings)
    if given.empty:
        raise ApiError(422, "the input is empty: there is nothing to explain yet; draw something first")
    return given.x


def _target(model: Network, target: int | None, x: np.ndarray) -> int:
    if target is None:
        return int(model.forward(x[None])[0].argmax())
    if target >= model.classes:
        raise ApiError(422, f"target: this model has classes 0..{model.classes - 1}, got {target}")
    return target


@router.post(
    "/explain",
    response_model=ExplainResponse,
    summary="Why the network chose a class",
    responses=MODEL_ERRORS,
)
def explain(request: ExplainRequest, model: ModelDep, model_id: ModelIdDep, settings: SettingsDep) -> Response:
    """Attribution maps for ``target`` (default: the top guess), each in the input's shape, raw signed values:
    saliency, SmoothGrad, integrated gradients (with the completeness check), Grad-CAM per conv layer
    and occlusion."""
    methods = set(request.methods)
    budgets.check_explain(settings, model, methods, request.samples, request.steps)
    x = _given(model, request, settings)
    target = _target(model, request.target, x)
    body: dict = {
        "model": model_id,
        "labels": model.labels,
        "input": np.round(x, 4),
        "target": target,
        "probabilities": model.predict_proba(x[None])[0],
        **dict.fromkeys(METHODS),
    }
    if "saliency" in methods:
        body["saliency"] = attributions.saliency(model, x, target)
    if "smoothgrad" in methods:
        body["smoothgrad"] = attributions.smoothgrad(model, x, target, request.noise, request.samples)
    if "integrated_gradients" in methods:
        ig = attributions.integrated_gradients(model, x, target, request.steps)
        body["integrated_gradients"] = {
            "attribution": ig.attribution,
            "baseline": ig.baseline,
            "steps": ig.steps,
            "completeness": {"sum": ig.sum, "logit_difference": ig.logit_difference},
        }
    if "gradcam" in methods:
        maps = attributions.gradcam(model, x, target)
        body["gradcam"] = {name: {"map": cam.map, "upsampled": cam.upsampled} for name, cam in maps.items()}
    if "occlusion" in methods:
        fill = attributions.BASELINES[request.fill]
        result = attributions.occlusion(model, x, target, request.patch, request.stride, fill)
        body["occlusion"] = {"patch": result.patch, "stride": result.stride, "fill": request.fill, "map": result.map}
    return json_response(body)


def _verdict(model: Network, cls: int, probabilities: np.ndarray) -> dict:
    return {"class": cls, "label": model.labels[cls], "probabilities": probabilities}


def layer_changes(model: Network, original: np.ndarray, changed: np.ndarray) -> list[dict]:
    """Per named layer: the relative size of the change, and where it is (|difference| over channels)."""
    before, after = model.activations(original[None]), model.activations(changed[None])
    changes = []
    for name, a in before.items():
        difference = np.abs(after[name][0] - a[0])
        norm = float(np.linalg.norm(a[0])) or 1.0
        where = difference.mean(axis=0) if difference.ndim == 3 else difference
        changes.append({"name": name, "relative_change": float(np.linalg.norm(difference)) / norm, "map": where})
    return changes


@router.post(
    "/adversarial",
    response_model=AdversarialResponse,
    summary="Fool the network",
    responses=MODEL_ERRORS,
)
def adversarial(request: AdversarialRequest, model: ModelDep, model_id: ModelIdDep, settings: SettingsDep) -> Response:
    """FGSM (one step) or PGD: a change of at most ``epsilon`` per pixel that makes the network say another
    class (or ``target``), stopping at the first step that does; and how far each layer's output moved."""
    budgets.check_attack(settings, model)
    x = _given(model, request, settings)
    if request.target is not None:
        _target(model, request.target, x)
    if request.method == "fgsm":
        attack = attributions.fgsm(model, x, request.epsilon, request.target)
    else:
        attack = attributions.pgd(model, x, request.epsilon, request.steps, request.target)
    perturbation = attack.adversarial - x
    return json_response(
        {
            "model": model_id,
            "labels": model.labels,
            "input": np.round(x, 4),
            "adversarial": np.round(attack.adversarial, 4),
            "perturbation": np.round(perturbation, 4),
            "original": _verdict(model, attack.original_class, attack.original_probabilities),
            "result": _verdict(model, attack.result_class, attack.result_probabilities),
            "flipped": attack.flipped,
            "linf": float(np.abs(perturbation).max()),
            "l2": float(np.linalg.norm(perturbation)),
            "steps_taken": attack.steps_taken,
            "layers": layer_changes(model, x, attack.adversarial),
        }
    )
