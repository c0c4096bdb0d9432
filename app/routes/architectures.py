"""Designing a network: the ready-made architectures, and the live arithmetic of any spec."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body
from fastapi.responses import Response

from app.deps import SettingsDep, StoreDep, ViewerDep
from app.errors import Refused, error_responses
from app.jobs.store import JobStore
from app.jsonutil import json_response
from app.schemas.models import SpecCheckResponse
from app.services import datasets as own_data
from app.services.training import check_architecture
from app.services.workspaces import Workspace
from engine.architectures import ARCHITECTURES, append_block
from engine.datasets import DATASETS, load_dataset
from engine.spec import check_spec, layer_catalogue
from engine.train import training_defaults

router = APIRouter(prefix="/api/architectures", tags=["models"])


@router.get("/layers", summary="The layer types a design may use")
def layer_types() -> dict[str, Any]:
    """Each layer type's fields with their defaults (null: required; a pooling stride's null follows the
    kernel size), what a new layer starts with, and the padding modes: the design page builds its rows
    from this, so it never shows a field or a default the engine does not have."""
    return layer_catalogue()


@router.get("", summary="Ready-made architectures")
def architectures() -> dict[str, Any]:
    """The training page's presets (lenet, tiny, tinyvgg, broken, small-resnet, mobilenet) and the shipped
    clothing network, as specs."""
    return ARCHITECTURES


def data_shape(store: JobStore, workspace: Workspace | None, dataset: str) -> tuple[int, list[int], dict]:
    """How many classes a data set has, its pictures' shape and how a job trains on it by default: a shipped
    one's, or one of the caller's own."""
    if dataset in DATASETS:
        train = load_dataset(dataset, "train")
        return len(train.classes), [1, 28, 28], training_defaults(len(train), True)
    doc = own_data.owned(store, workspace, dataset)
    return len(doc["classes"]), doc["input"], own_data.summary(doc)["training_defaults"]


@router.post(
    "/check",
    response_model=SpecCheckResponse,
    summary="The shapes and parameters of a design",
    responses=error_responses(401, 404),
)
def check(
    settings: SettingsDep,
    store: StoreDep,
    workspace: ViewerDep,
    architecture: dict[str, Any] = Body(examples=[ARCHITECTURES["broken"]]),
    dataset: str = Body("digits", pattern=r"^(digits|fashion|d[0-9a-f]{12})$"),
    batch_size: int = Body(32, ge=1, le=512, description="the training batch the memory bound is checked for"),
) -> Response:
    """Every layer that can be worked out (output shape, the size formula with its numbers, parameters as
    ``6 × (5·5·1 + 1) = 156``, receptive field), and the first problem: the engine's sentence naming the
    layer, or a bound of the training service. Always 200: a broken design is what this is for."""
    result = check_spec(architecture)
    error = None
    classes, pictures, defaults = data_shape(store, workspace, dataset)
    if result.error is not None:
        e = result.error
        layer = (
            None if e.index is None else {"index": e.index, "number": e.index + 1, "name": e.name, "reason": e.reason}
        )
        error = {"detail": str(e), "layer": layer}
    else:
        try:
            check_architecture(architecture, settings, classes, batch_size, pictures)
        except Refused as bound:
            error = {"detail": bound.message, "layer": None}
    answer = {"valid": error is None, "layers": result.layers, "parameters": result.parameters, "error": error}
    return json_response({**answer, "training_defaults": defaults})


@router.post(
    "/blocks",
    summary="Add a residual or depthwise-separable block to a design",
    responses=error_responses(s422="the design does not build, or has no maps to put a block after"),
)
def add_block(
    architecture: dict[str, Any] | str = Body(
        examples=[ARCHITECTURES["tinyvgg"], "lenet"], description="a spec, or a ready-made one's name"
    ),
    block: Literal["residual", "separable"] = Body("residual", description="ResNet's block or MobileNet's"),
    filters: int = Body(32, ge=1, le=512, description="the block's output channels"),
    stride: int = Body(1, ge=1, le=2, description="2 halves the maps (a residual block then projects its shortcut)"),
) -> dict[str, Any]:
    """The design with the block after its last layer of maps (before its flatten or pooling head): a
    residual block (conv, BatchNorm, ReLU, conv, BatchNorm, the input added back through a 1x1 conv when
    the shape changes, ReLU) or a depthwise-separable one (a 3x3 conv a channel, then a 1x1 conv, each with
    BatchNorm and ReLU6). The new layers' names come back in ``added``."""
    if isinstance(architecture, str):
        if architecture not in ARCHITECTURES:
            names = ", ".join(ARCHITECTURES)
            raise Refused(f"architecture: not a ready-made one; the names are {names}, or send a spec")
        architecture = ARCHITECTURES[architecture]
    grown, added = append_block(architecture, block, filters, stride)
    return {"architecture": grown, "added": added}
