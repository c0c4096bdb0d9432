"""Image kernels: the presets, and applying a preset or a typed kernel to an uploaded picture."""

from __future__ import annotations

import json
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response

from app.deps import SettingsDep, one_file_part
from app.errors import ApiError, error_responses
from app.imaging import decode_image, encode_png, standard_mode, to_channels
from app.limits import limits
from app.schemas import DOCUMENTED, FilterInfo, OutputMapping, PaddingMode, as_grid
from engine.filters import PRESETS, filter_values, stretch_gain, to_pixels, with_alpha

router = APIRouter(prefix="/api/filters", tags=["filters"])


@router.get("", response_model=list[FilterInfo], summary="List the kernel presets")
def list_filters() -> list[dict]:
    """Every preset with its name, label, kernel (already divided), integer weights, divisor, description
    and the output mapping that shows its effect best."""
    return [
        {
            "name": p.name,
            "label": p.label,
            "kernel": p.kernel.tolist(),
            "weights": [list(r) for r in p.weights],
            "divisor": p.divisor,
            "description": p.description,
            "output": p.output,
            "bias": p.bias,
        }
        for p in PRESETS.values()
    ]


def parse_kernel(preset: str | None, kernel: str | None) -> np.ndarray:
    """The kernel a request names: exactly one of a preset name or a JSON 2-D list."""
    if (preset is None) == (kernel is None):
        raise ApiError(422, "send exactly one of 'preset' (a name from GET /api/filters) or 'kernel' (a JSON 2-D list)")
    if preset is not None:
        if preset not in PRESETS:
            raise ApiError(422, f"preset: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        return PRESETS[preset].kernel
    assert kernel is not None  # one of the two, as checked above
    if len(kernel) > 20_000:
        raise ApiError(
            413,
            f"kernel: {len(kernel)} characters is too long for a {limits().kernel_side}x{limits().kernel_side} kernel",
        )
    try:
        values = json.loads(kernel)
    except json.JSONDecodeError as error:
        raise ApiError(
            422, f"kernel: not valid JSON ({error.msg}); send a 2-D list such as [[0,1,0],[1,-4,1],[0,1,0]]"
        ) from None
    except (ValueError, RecursionError):  # an integer of over 4300 digits, lists nested a thousand deep
        raise ApiError(
            422,
            "kernel: numbers may have at most 4300 digits and the list must be 2-D, like [[0,1,0],[1,-4,1],[0,1,0]]",
        ) from None
    try:
        return as_grid(values, field="kernel", ndims=(2,), max_side=limits().kernel_side)
    except ValueError as error:
        raise ApiError(422, str(error)) from None


@router.post(
    "/apply",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the filtered picture as PNG"},
        **error_responses(400, 413, 415),
    },
    summary="Apply a kernel to a picture",
)
def apply_filter(
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="PNG, JPEG or WebP picture")],
    _single: Annotated[None, Depends(one_file_part)],
    preset: Annotated[str | None, Form(description="a preset name from GET /api/filters")] = None,
    kernel: Annotated[
        str | None, Form(description="a JSON 2-D list, up to 15x15", examples=["[[0,1,0],[1,-4,1],[0,1,0]]"])
    ] = None,
    padding_mode: Annotated[PaddingMode, Form()] = "zeros",
    stride: Annotated[int, Form(ge=1, description=f"at most {DOCUMENTED.max_filter_stride}")] = 1,
    dilation: Annotated[int, Form(ge=1, description=f"at most {DOCUMENTED.max_grid_dilation}")] = 1,
    grayscale: Annotated[bool, Form()] = False,
    bias: Annotated[
        float | None,
        Form(
            ge=-1e6,
            le=1e6,
            allow_inf_nan=False,
            description="added to every weighted sum (a conv layer's bias); default: the preset's (emboss 128), 0",
        ),
    ] = None,
    output: Annotated[
        OutputMapping | None,
        Form(
            description="how filtered values become pixels: 'clip' to 0..255, 'abs' (|value|, then clip), "
            "'stretch' (|value| times the gain that makes the strongest edges white, X-Output-Gain) or 'rescale' "
            "(the picture's min..max stretched to 0..255); default: the preset's choice, 'clip' for a typed kernel"
        ),
    ] = None,
) -> Response:
    """Cross-correlates each colour channel with the kernel ("same" padding ``D(K-1)/2`` per side),
    maps the values to 0..255 as ``output`` says and returns a PNG. Alpha is left as it was. The headers
    ``X-Output-Min`` / ``X-Output-Max`` give the range of the values before the mapping. Pictures larger than
    ``CONVSCOPE_MAX_FILTER_SIDE`` (1024) pixels on their longer side are first downscaled, and the
    ``X-Resized: WxH`` header says so."""
    for name, value, most in (
        ("stride", stride, settings.max_filter_stride),
        ("dilation", dilation, settings.max_grid_dilation),
    ):
        if value > most:
            raise ApiError(422, f"{name}: Input should be less than or equal to {most} (got {value})")
    weights = parse_kernel(preset, kernel)
    image = decode_image(file.file.read(), settings, field="file", fit=settings.max_filter_side)
    resized = image.size != image.info["decoded_size"]
    image = standard_mode(image, grayscale=grayscale)
    pixels = to_channels(image)
    # a kernel wider than a tiny picture or reflect padding too large is the engine's 422
    offset = bias if bias is not None else (PRESETS[preset].bias if preset is not None else 0.0)
    values = filter_values(pixels, weights, padding_mode=padding_mode, stride=stride, dilation=dilation, bias=offset)
    mapping = output or (PRESETS[preset].output if preset is not None else "clip")
    filtered = with_alpha(pixels, to_pixels(values, mapping), stride)
    headers = output_headers(values, filtered, mapping, offset)
    if resized:
        headers["X-Resized"] = f"{image.width}x{image.height}"
    return Response(encode_png(filtered), media_type="image/png", headers=headers)


def output_headers(values: np.ndarray, filtered: np.ndarray, mapping: str, bias: float) -> dict[str, str]:
    """What the filtered picture's headers say: its size, how its values became pixels, their range, the
    stretch's gain and the bias added."""
    return {
        "X-Output-Size": f"{filtered.shape[1]}x{filtered.shape[0]}",
        "X-Output-Mapping": mapping,
        "X-Output-Min": f"{float(values.min()):.6g}",
        "X-Output-Max": f"{float(values.max()):.6g}",
        "X-Output-Gain": f"{stretch_gain(values) if mapping == 'stretch' else 1.0:.6g}",
        "X-Output-Bias": f"{bias:.6g}",
    }
