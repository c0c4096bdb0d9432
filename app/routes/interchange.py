"""Your own model in (an ONNX file), every model out (ONNX, or a PyTorch file)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import Response

from app.deps import AddressDep, OwnerDep, RegistryDep, SettingsDep, StoreDep, ViewerDep, one_file_part
from app.errors import error_responses
from app.jsonutil import json_response
from app.schemas.models import ImportResponse
from app.services.interchange import ImportRequest, export_model, import_model

router = APIRouter(prefix="/api/models", tags=["interchange"])


@router.post(
    "/import",
    status_code=201,
    response_model=ImportResponse,
    summary="Import a model from an ONNX file",
    responses=error_responses(
        400,
        401,
        404,
        413,
        s422="the file is not ONNX, or holds a graph convscope cannot run (names the node and its op)",
        s429="your workspace's storage is at its cap",
    ),
)
def import_file(
    file: Annotated[UploadFile, File(description="the .onnx file (weights inside it, not as external data)")],
    _single: Annotated[None, Depends(one_file_part)],
    settings: SettingsDep,
    store: StoreDep,
    workspace: OwnerDep,
    address: AddressDep,
    name: Annotated[str | None, Form(max_length=200, description="the model's name (default: the file's)")] = None,
    labels: Annotated[str | None, Form(max_length=20_000, description="class names as a JSON list")] = None,
    preprocess: Annotated[
        Literal["digit", "picture", "none"] | None,
        Form(description="how a drawing or photo becomes its input (default: its data set's, else by channels)"),
    ] = None,
    dataset: Annotated[
        str | None, Form(max_length=64, description="digits or fashion: its test pictures for the learned views")
    ] = None,
    input_range: Annotated[
        Literal["0..1", "0..255", "-1..1"] | None,
        Form(description="the range of the pictures the model was trained on (default 0..1, or the file's)"),
    ] = None,
    mean: Annotated[
        str | None,
        Form(max_length=200, description="subtracted after the range: one number or one a channel, e.g. 0.1307"),
    ] = None,
    std: Annotated[
        str | None,
        Form(max_length=200, description="divided by after the mean: one number or one a channel, e.g. 0.3081"),
    ] = None,
) -> Response:
    """An image classifier of opset 7 to 28 (older than 11: upgraded with onnx's version converter), up to
    384 px a side, channels first or last: convs (grouped, depthwise), activations, pooling (ReduceMean
    too), BatchNormalization (folded after a conv or linear layer), Pad, Add/Concat merges, Flatten or a
    flattening Reshape, Gemm or MatMul + Add, constant Sub/Div/Mul/Add at the input (a normalize layer),
    Transposes, Squeeze, Cast, Dropout, Identity; a final Softmax dropped, a final Sigmoid read as a binary
    classifier (one score) or independent probabilities. ``input_range``, ``mean`` and ``std`` say how the
    training pictures were prepared (else the file's ``metadata_props``). The report has a line for every
    node; its logits on three fixed inputs are kept (``check_logits``) so any ONNX runtime can be compared.
    It joins your workspace like a trained model."""
    data = file.file.read(settings.import_max_bytes + 1)
    request = ImportRequest(
        data, file.filename or "model.onnx", name, labels, preprocess, dataset or None, input_range, mean, std
    )
    return json_response(import_model(store, settings, workspace, address, request), status_code=201)


@router.get(
    "/{model_id}/export",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {}, "text/x-python": {}},
            "description": "the model as an ONNX file (opset 17), or as one PyTorch .py file",
        },
        **error_responses(401, 404, 409),
    },
    summary="Download a model as ONNX or PyTorch",
)
def export(
    model_id: str,
    registry: RegistryDep,
    workspace: ViewerDep,
    format: Literal["onnx", "pytorch"] = Query("onnx", description="onnx, or pytorch (a .py file)"),  # noqa: A002
) -> Response:
    """ONNX: opset 17, checked by ``onnx.checker``, labels in ``metadata_props``; padding modes Conv cannot
    express become Pad, Slice + Concat or a constant Mul. PyTorch: an ``nn.Module`` with the spec's layer
    names and ``load(path)``, which reads ``GET /api/models/{id}/weights`` with NumPy."""
    ref = registry.resolve(model_id, workspace)
    data, media_type, filename = export_model(ref, registry.network(ref), format)
    return Response(data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
