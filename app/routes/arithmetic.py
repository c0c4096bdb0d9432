"""Convolution arithmetic: worked convolutions and poolings cell by cell, and output-size formulas."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.errors import ApiError
from app.jsonutil import json_response
from app.schemas import (
    LIMITS,
    ArithmeticResponse,
    ConvolveRequest,
    ConvolveResponse,
    PoolRequest,
    PoolResponse,
)
from engine._checks import output_size
from engine.arithmetic import explain
from engine.trace import trace_conv2d, trace_conv_transpose2d, trace_pool2d

router = APIRouter(prefix="/api", tags=["arithmetic"])


def _check_step_budget(cells: int, taps: int, what: str) -> None:
    if cells * taps > LIMITS.max_step_values:
        raise ApiError(
            413,
            f"{what} would list {cells} steps of {taps} products = {cells * taps} values; "
            f"at most {LIMITS.max_step_values} are allowed: send include_steps=false or a smaller input",
        )


def _cells(shape: tuple[int, ...]):
    return ((i, j) for i in range(shape[0]) for j in range(shape[1]))


@router.post("/convolve", response_model=ConvolveResponse, summary="Convolve a small grid, step by step")
def convolve(request: ConvolveRequest) -> Response:
    """Cross-correlation of ``input`` with ``kernel`` (2-D, or 3-D with channels first), with every
    output cell's window positions (padded frame) and products, for animating one cell at a time."""
    if request.transposed:
        return _convolve_transposed(request)
    x = request.input if request.input.ndim == 3 else request.input[None]
    k = request.kernel if request.kernel.ndim == 3 else request.kernel[None]
    if request.include_steps:
        # the budget is checked before the trace is built; an unfit kernel is the engine's 422
        args = (request.stride, request.padding, request.dilation)
        oh, ow = output_size(x.shape[1], k.shape[1], *args), output_size(x.shape[2], k.shape[2], *args)
        _check_step_budget(max(oh, 0) * max(ow, 0), k.size, "this convolution")
    trace = trace_conv2d(x, k, request.bias, request.stride, request.padding, request.dilation, request.padding_mode)
    steps = []
    if request.include_steps:
        steps = [
            {
                "output": [i, j],
                "positions": trace.positions[i, j],
                "products": trace.products[i, j],
                "value": trace.output[i, j],
            }
            for i, j in _cells(trace.output.shape)
        ]
    return json_response(
        {
            "output": trace.output,
            "output_size": list(trace.output.shape),
            "padded_input": trace.padded_input if request.input.ndim == 3 else trace.padded_input[0],
            "steps": steps,
        }
    )


def _convolve_transposed(request: ConvolveRequest) -> Response:
    if request.padding_mode != "zeros":
        raise ApiError(422, "transposed convolution only crops (padding_mode zeros); got " + request.padding_mode)
    if request.include_steps and request.input.ndim == 2:
        _check_step_budget(request.input.size, request.kernel.size, "this transposed convolution")
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
    return json_response(
        {
            "output": trace.output,
            "output_size": list(trace.output.shape),
            "padded_input": request.input,
            "steps": steps,
        }
    )


@router.post("/pool", response_model=PoolResponse, summary="Pool a small grid, step by step")
def pool(request: PoolRequest) -> Response:
    """Max or average pooling of a 2-D ``input``, with every window's cells and the winning cell for max."""
    stride = request.stride or request.kernel_size
    oh, ow = (output_size(side, request.kernel_size, stride, 0, 1) for side in request.input.shape)
    _check_step_budget(max(oh, 0) * max(ow, 0), request.kernel_size**2, "this pooling")
    trace = trace_pool2d(request.input, request.kernel_size, stride, request.mode)
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
