"""Convolution arithmetic: worked convolutions and poolings cell by cell, and output-size formulas."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.errors import ApiError
from app.jsonutil import json_response
from app.schemas import (
    MAX_STEP_VALUES,
    ArithmeticResponse,
    ConvolveRequest,
    ConvolveResponse,
    PoolRequest,
    PoolResponse,
)
from engine.arithmetic import explain
from engine.conv import conv2d, conv_transpose2d, conv_windows
from engine.padding import pad2d
from engine.pool import avg_pool2d, max_pool2d

router = APIRouter(prefix="/api", tags=["arithmetic"])


def window_positions(out_h: int, out_w: int, kernel: tuple[int, int], stride: int, dilation: int) -> np.ndarray:
    """(OH, OW, KH*KW, 2): padded-frame [r, c] of every tap of every window."""
    i, j, u, v = np.meshgrid(
        np.arange(out_h), np.arange(out_w), np.arange(kernel[0]), np.arange(kernel[1]), indexing="ij"
    )
    return np.stack([i * stride + u * dilation, j * stride + v * dilation], axis=-1).reshape(out_h, out_w, -1, 2)


def _check_step_budget(cells: int, taps: int, what: str) -> None:
    if cells * taps > MAX_STEP_VALUES:
        raise ApiError(
            413,
            f"{what} would list {cells} steps of {taps} products = {cells * taps} values; "
            f"at most {MAX_STEP_VALUES} are allowed: send include_steps=false or a smaller input",
        )


def _clean_grid(grid: np.ndarray) -> list[list[float]]:
    return [[_clean(v) for v in row] for row in grid]


def _clean(value: float) -> float:
    """Integers stay integers in JSON (4.0 -> 4.0, not 3.9999999)."""
    return float(np.round(value, 10))


@router.post("/convolve", response_model=ConvolveResponse, summary="Convolve a small grid, step by step")
def convolve(request: ConvolveRequest) -> Response:
    """Cross-correlation of ``input`` with ``kernel`` (2-D, or 3-D with channels first), with every
    output cell's window positions (padded frame) and products, for animating one cell at a time."""
    if request.transposed:
        return _convolve_transposed(request)
    x = request.input if request.input.ndim == 3 else request.input[None]
    k = request.kernel if request.kernel.ndim == 3 else request.kernel[None]
    if k.shape[0] != x.shape[0]:
        raise ApiError(
            422,
            f"kernel has {k.shape[0]} channels but input has {x.shape[0]}: a filter always "
            "extends the full depth of the input",
        )
    args = dict(stride=request.stride, padding=request.padding, dilation=request.dilation)
    try:
        out = conv2d(x[None], k[None], np.array([request.bias]), padding_mode=request.padding_mode, **args)[0, 0]
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    xp = pad2d(x[None], (request.padding, request.padding), request.padding_mode)[0]
    kernel = k.shape[1:]
    steps = []
    if request.include_steps:
        _check_step_budget(out.size, k.size, "this convolution")
        windows = conv_windows(xp[None], kernel, (request.stride,) * 2, (request.dilation,) * 2)[0]
        # c i j u v -> i j c u v: each cell's products, channel by channel
        products = (windows * k[:, None, None]).transpose(1, 2, 0, 3, 4).reshape(*out.shape, -1)
        positions = window_positions(*out.shape, kernel, request.stride, request.dilation)
        steps = [
            {
                "output": [i, j],
                "positions": positions[i, j].tolist(),
                "products": [_clean(p) for p in products[i, j]],
                "value": _clean(out[i, j]),
            }
            for i in range(out.shape[0])
            for j in range(out.shape[1])
        ]
    padded = xp if request.input.ndim == 3 else xp[0]
    return json_response(
        {
            "output": _clean_grid(out),
            "output_size": list(out.shape),
            "padded_input": padded.tolist(),
            "steps": steps,
        }
    )


def _convolve_transposed(request: ConvolveRequest) -> Response:
    x, k = request.input, request.kernel
    if x.ndim != 2 or k.ndim != 2:
        raise ApiError(422, "transposed convolution takes a 2-D input and a 2-D kernel here")
    if request.padding_mode != "zeros":
        raise ApiError(422, "transposed convolution only crops (padding_mode zeros); got " + request.padding_mode)
    args = dict(stride=request.stride, padding=request.padding, dilation=request.dilation)
    try:
        out = conv_transpose2d(x[None, None], k[None, None], np.array([request.bias]), **args)[0, 0]
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    steps = []
    if request.include_steps:
        _check_step_budget(x.size, k.size, "this transposed convolution")
        positions = window_positions(*x.shape, k.shape, request.stride, request.dilation) - request.padding
        steps = [
            {
                "input": [i, j],
                "positions": positions[i, j].tolist(),
                "products": [_clean(p) for p in (x[i, j] * k).ravel()],
                "value": _clean(x[i, j]),
            }
            for i in range(x.shape[0])
            for j in range(x.shape[1])
        ]
    return json_response(
        {
            "output": _clean_grid(out),
            "output_size": list(out.shape),
            "padded_input": x.tolist(),
            "steps": steps,
        }
    )


@router.post("/pool", response_model=PoolResponse, summary="Pool a small grid, step by step")
def pool(request: PoolRequest) -> Response:
    """Max or average pooling of a 2-D ``input``, with every window's cells and the winning cell for max."""
    x = request.input[None, None]
    stride = request.stride or request.kernel_size
    reduce = max_pool2d if request.mode == "max" else avg_pool2d
    try:
        out = reduce(x, request.kernel_size, stride)[0, 0]
    except ValueError as error:
        raise ApiError(422, str(error)) from None
    kernel = (request.kernel_size, request.kernel_size)
    _check_step_budget(out.size, request.kernel_size**2, "this pooling")
    values = conv_windows(x, kernel, (stride, stride), (1, 1))[0, 0].reshape(*out.shape, -1)
    positions = window_positions(*out.shape, kernel, stride, 1)
    winners = values.argmax(axis=-1)
    steps = [
        {
            "output": [i, j],
            "positions": positions[i, j].tolist(),
            "values": values[i, j].tolist(),
            "value": _clean(out[i, j]),
            "source": positions[i, j, winners[i, j]].tolist() if request.mode == "max" else None,
        }
        for i in range(out.shape[0])
        for j in range(out.shape[1])
    ]
    return json_response({"output": _clean_grid(out), "output_size": list(out.shape), "steps": steps})


@router.get("/arithmetic", response_model=ArithmeticResponse, summary="Output size of a convolution, explained")
def arithmetic(
    input_size: int = Query(..., ge=1, le=4096, description="N: input height (= width)", examples=[7]),
    kernel_size: int = Query(..., ge=1, le=1024, description="F: filter size", examples=[3]),
    stride: int = Query(1, ge=1, le=1024, description="S"),
    padding: int = Query(0, ge=0, le=1024, description="P: zero padding per side"),
    dilation: int = Query(1, ge=1, le=64, description="D: spacing of the filter taps (1 = dense)"),
    in_channels: int | None = Query(None, ge=1, le=4096, description="input depth, for the parameter count"),
    filters: int | None = Query(None, ge=1, le=4096, description="number of filters, for the parameter count"),
    transposed: bool = Query(False, description="transposed convolution: (N-1)S - 2P + D(F-1) + 1"),
) -> dict:
    """``(N + 2P - D(F-1) - 1)/S + 1``, whether it is a whole number, and what that means."""
    result = explain(
        input_size,
        kernel_size,
        stride,
        padding,
        dilation,
        transposed=transposed,
        in_channels=in_channels,
        filters=filters,
    )
    return asdict(result)
