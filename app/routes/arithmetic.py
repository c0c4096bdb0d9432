"""Convolution arithmetic: worked convolutions and poolings cell by cell, and output-size formulas."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.errors import ApiError
from app.jsonutil import json_response
from app.limits import limits
from app.schemas import (
    ArithmeticResponse,
    ConvolveRequest,
    ConvolveResponse,
    PoolRequest,
    PoolResponse,
)
from engine._checks import output_size, pair
from engine.arithmetic import explain_layer
from engine.trace import DirectTrace, direct_view_of_transposed, trace_conv2d, trace_conv_transpose2d, trace_pool2d

router = APIRouter(prefix="/api", tags=["arithmetic"])


def _check_step_budget(cells: int, taps: int, what: str) -> None:
    if cells * taps > limits().max_step_values:
        raise ApiError(
            413,
            f"{what} would list {cells} steps of {taps} products = {cells * taps} values; "
            f"at most {limits().max_step_values} are allowed: send include_steps=false or a smaller input",
        )


def _cells(shape: tuple[int, ...]):
    return ((i, j) for i in range(shape[0]) for j in range(shape[1]))


@router.post("/convolve", response_model=ConvolveResponse, summary="Convolve a small grid, step by step")
def convolve(request: ConvolveRequest) -> Response:
    """Cross-correlation of ``input`` with ``kernel`` (2-D, or 3-D with channels first), with every output
    cell's window positions (padded frame) and products, for animating one cell at a time. A kernel of
    several filters (F, C, KH, KW) over a 3-D input makes an output volume (F, OH, OW) — each filter spans
    the input's full depth — and its steps go filter by filter, each with its channels' sums and its bias."""
    if request.transposed:
        return _convolve_transposed(request)
    x = request.input if request.input.ndim == 3 else request.input[None]
    volume = request.kernel.ndim == 4
    kernels = request.kernel if volume else (request.kernel if request.kernel.ndim == 3 else request.kernel[None])[None]
    biases = request.bias if isinstance(request.bias, list) else [request.bias] * len(kernels)
    if len(biases) != len(kernels):
        raise ApiError(422, f"bias: {len(kernels)} filters need {len(kernels)} biases, got {len(biases)}")
    if volume and request.input.ndim != 3:
        raise ApiError(422, "kernel: several filters (F, C, KH, KW) need a 3-D input (C, H, W)")
    if request.include_steps:
        # the budget is checked before the trace is built; an unfit kernel is the engine's 422
        (sh, sw), (ph, pw), (dh, dw) = pair(request.stride), pair(request.padding), pair(request.dilation)
        oh, ow = (
            output_size(x.shape[1], kernels.shape[2], sh, ph, dh),
            output_size(x.shape[2], kernels.shape[3], sw, pw, dw),
        )
        cells = max(oh, 0) * max(ow, 0) * len(kernels)
        listed = max(0, min(cells - request.first_step, request.step_count or cells))
        _check_step_budget(listed, kernels[0].size, "this convolution")
    args = (request.stride, request.padding, request.dilation, request.padding_mode)
    traces = [trace_conv2d(x, k, b, *args) for k, b in zip(kernels, biases)]
    steps = []
    if request.include_steps:
        taps = kernels.shape[2] * kernels.shape[3]
        oh, ow = traces[0].output.shape
        first = request.first_step
        last = first + (request.step_count or len(traces) * oh * ow)
        for number in range(first, min(last, len(traces) * oh * ow)):
            f, i, j = number // (oh * ow), number // ow % oh, number % ow  # filter by filter, row by row
            trace = traces[f]
            step = {
                "output": [i, j],
                "positions": trace.positions[i, j],
                "products": trace.products[i, j],
                "value": trace.output[i, j],
            }
            if volume:
                sums = trace.products[i, j].reshape(-1, taps).sum(axis=1)
                step.update(filter=f, channel_sums=np.round(sums, 10), bias=biases[f])
            steps.append(step)
    output = np.stack([t.output for t in traces]) if volume else traces[0].output
    return json_response(
        {
            "output": output,
            "output_size": list(output.shape),
            "padded_input": traces[0].padded_input if request.input.ndim == 3 else traces[0].padded_input[0],
            "steps": steps,
        }
    )


def _convolve_transposed(request: ConvolveRequest) -> Response:
    if not all(isinstance(v, int) for v in (request.stride, request.padding, request.dilation)):
        raise ApiError(422, "stride, padding, dilation: a transposed convolution takes one number each here")
    if request.padding_mode != "zeros":
        raise ApiError(422, "transposed convolution only crops (padding_mode zeros); got " + request.padding_mode)
    if request.include_steps and request.input.ndim == 2:
        _check_step_budget(request.input.size, request.kernel.size, "this transposed convolution")
    if isinstance(request.bias, list):
        raise ApiError(422, "bias: a transposed convolution here has one kernel and takes one bias")
    trace = trace_conv_transpose2d(
        request.input, request.kernel, request.bias, request.stride, request.padding, request.dilation
    )
    steps = []
    if request.include_steps:
        steps = [
            {
                "input": [i, j],
                "positions": trace.positions[i, j],
                "products": trace.products[i, j],
                "value": float(request.input[i, j]),
            }
            for i, j in _cells(request.input.shape)
        ]
    direct = direct_view_of_transposed(
        request.input, request.kernel, request.bias, request.stride, request.padding, request.dilation
    )
    return json_response(
        {
            "output": trace.output,
            "output_size": list(trace.output.shape),
            "padded_input": request.input,
            "steps": steps,
            "direct": None if direct is None else _direct(direct, request.include_steps),
        }
    )


def _direct(direct: DirectTrace, include_steps: bool) -> dict:
    """The transposed layer as a direct convolution over the zero-inserted input (the page's "direct" view)."""
    trace = direct.trace
    return {
        "input": direct.input,
        "padding": direct.padding,
        "kernel": direct.kernel,
        "output": trace.output,
        "steps": [
            {"output": [i, j], "positions": trace.positions[i, j], "products": trace.products[i, j], "value": v}
            for (i, j), v in np.ndenumerate(trace.output)
        ]
        if include_steps
        else [],
    }


@router.post("/pool", response_model=PoolResponse, summary="Pool a small grid, step by step")
def pool(request: PoolRequest) -> Response:
    """Max or average pooling of a 2-D ``input``, with every window's cells and the winning cell for max."""
    kernel = pair(request.kernel_size)
    stride = pair(request.stride) if request.stride is not None else kernel
    oh, ow = (output_size(request.input.shape[a], kernel[a], stride[a], 0, 1) for a in (0, 1))
    _check_step_budget(max(oh, 0) * max(ow, 0), kernel[0] * kernel[1], "this pooling")
    trace = trace_pool2d(request.input, kernel, stride, request.mode)
    steps = [
        {
            "output": [i, j],
            "positions": trace.positions[i, j],
            "values": trace.values[i, j],
            "value": trace.output[i, j],
            "source": trace.winners[i, j] if trace.winners is not None else None,
        }
        for i, j in _cells(trace.output.shape)
    ]
    return json_response({"output": trace.output, "output_size": list(trace.output.shape), "steps": steps})


def _pair(text: str, name: str, lo: int, hi: int) -> tuple[int, int]:
    """``"3"`` -> (3, 3); ``"3,5"`` -> (3, 5): height, then width."""
    parts = text.split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or any(len(p.strip()) > 6 for p in parts):
        raise ApiError(422, f"query.{name}: a whole number or a height,width pair such as 3,5; got {text[:20]!r}")
    if not all(lo <= v <= hi for v in values):
        raise ApiError(422, f"query.{name}: each value must be from {lo} to {hi}; got {text[:20]!r}")
    return (values[0], values[-1])


PairQuery = Query(pattern=r"^\s*\d{1,6}\s*(,\s*\d{1,6}\s*)?$")


@router.get("/arithmetic", response_model=ArithmeticResponse, summary="Output size of a layer, explained")
def arithmetic(
    input_size: Annotated[str, PairQuery, Query(description="N: input size, or height,width", examples=["7"])],
    kernel_size: Annotated[str, PairQuery, Query(description="F: filter size, or height,width", examples=["3"])],
    stride: Annotated[str, PairQuery, Query(description="S, or height,width")] = "1",
    padding: Annotated[str, PairQuery, Query(description="P: zero padding per side, or height,width")] = "0",
    dilation: Annotated[str, PairQuery, Query(description="D: spacing of the taps (1 = dense), or h,w")] = "1",
    in_channels: int | None = Query(None, ge=1, le=4096, description="input depth, for the parameter count"),
    filters: int | None = Query(None, ge=1, le=4096, description="number of filters, for the parameter count"),
    groups: int = Query(1, ge=1, le=4096, description="channel groups: 1 ordinary, = channels depthwise"),
    transposed: bool = Query(False, description="transposed convolution: (N-1)S - 2P + D(F-1) + 1"),
    operation: Literal["conv", "max", "avg", "transposed"] | None = Query(
        None, description="the layer, for the PyTorch line (default conv, or transposed)"
    ),
) -> Response:
    """``(N + 2P - D(F-1) - 1)/S + 1`` along each axis, whether it is a whole number and what that means,
    the parameter count ``filters × (channels/groups · KH · KW + 1)``, and the same layer in PyTorch.
    Sizes are a number (square) or ``height,width`` (``kernel_size=3,5``); the top-level fields describe
    the height, ``height`` and ``width`` each axis."""
    mode = operation or ("transposed" if transposed else "conv")
    layer = explain_layer(
        _pair(input_size, "input_size", 1, 4096),
        _pair(kernel_size, "kernel_size", 1, 1024),
        _pair(stride, "stride", 1, 1024),
        _pair(padding, "padding", 0, 1024),
        _pair(dilation, "dilation", 1, 64),
        mode=mode,
        in_channels=in_channels,
        filters=filters,
        groups=groups,
    )
    height, width = asdict(layer.height), asdict(layer.width)
    square = height == width
    has_output, pooling = min(layer.output_shape) >= 1, mode in ("max", "avg")
    body = {
        **height,
        "fits": layer.fits,
        "formula": height["formula"] if square else f"height {height['formula']}; width {width['formula']}",
        "message": height["message"] if square else f"height: {height['message']}. Width: {width['message']}",
        "parameters": layer.parameters,
        "parameter_formula": layer.parameter_formula,
        "output_volume": [filters, *layer.output_shape] if filters and has_output and not pooling else None,
        "output_shape": list(layer.output_shape),
        "height": height,
        "width": width,
        "groups": groups,
        "pytorch": layer.pytorch,
        "pytorch_output": layer.pytorch_output,
    }
    return json_response(body)
