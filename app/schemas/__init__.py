"""Request and response models of the REST API, with the examples /docs shows."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from app.config import get_settings
from app.limits import limits

PaddingMode = Literal["zeros", "reflect", "replicate", "circular", "partial"]
OutputMapping = Literal["clip", "abs", "stretch", "rescale"]

# an 8x8 vertical stroke: the smallest drawing the predict examples can show
ONE_STROKE: list[Any] = [[0] * 8] * 2 + [[0, 0, 0, 255, 255, 0, 0, 0]] * 4 + [[0] * 8] * 2
LECTURE_IMAGE: list[Any] = [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
LECTURE_FILTER: list[Any] = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
LECTURE_POOL_INPUT: list[Any] = [[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]

# Bounds of everything a caller controls live in Settings (the README's "Limits"). Validators read the
# serving app's settings at request time (app.limits); the descriptions /docs shows quote the defaults.
DOCUMENTED = get_settings()


NUMBER_TYPES = {int, float}


def Size(lo: int, bound: str):  # noqa: N802 - a type, named like one
    """A size along both axes: one whole number, or [height, width], each from ``lo`` to the setting ``bound``."""

    def within(value: int) -> int:
        hi = getattr(limits(), bound)
        if value > hi:
            raise ValueError(f"Input should be less than or equal to {hi}")
        return value

    one = Annotated[int, Field(ge=lo), AfterValidator(within)]
    return one | tuple[one, one]


# A grid arrives as nested JSON lists and leaves its validator as a float64 array (see as_grid).
Grid = Annotated[Any, WithJsonSchema({"type": "array", "items": {}})]


def _shape_of(values, field: str, ndims: tuple[int, ...]) -> tuple[int, list]:
    """How deep the lists go (walking first elements, never recursing) and the innermost rows."""
    depth, probe = 0, values
    while isinstance(probe, list):
        depth += 1
        if depth > max(ndims) or not probe:
            break
        probe = probe[0]
    if depth not in ndims:
        wanted = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{field} must be a {wanted} list of numbers")
    rows = values
    for _ in range(depth - 2):  # unnest one level at a time, without recursion
        if not all(isinstance(plane, list) for plane in rows):
            raise ValueError(f"{field} must be a list of 2-D grids, one per channel")
        rows = [row for plane in rows for row in plane]
    return depth, rows


def as_grid(
    values,
    *,
    field: str,
    ndims: tuple[int, ...],
    max_side: int,
    min_side: int = 1,
    lo: float | None = None,
    hi: float | None = None,
    max_abs: float | None = None,
) -> np.ndarray:
    """A nested list -> float64 array, refusing anything but plain numbers (no strings, no true/false),
    ragged lists, the wrong depth, NaN/inf, values past ``max_abs`` (the setting by default) and sizes out
    of bounds."""
    max_abs = limits().max_grid_value if max_abs is None else max_abs
    _, rows = _shape_of(values, field, ndims)
    for row in rows:
        if not isinstance(row, list) or not set(map(type, row)) <= NUMBER_TYPES:
            raise ValueError(
                f"{field} must hold plain numbers in rows of equal length; strings, true/false, "
                "null or deeper lists were sent"
            )
    try:
        array = np.array(values, dtype=np.float64)
    except OverflowError:
        raise ValueError(f"{field} values must lie within ±{max_abs:g}; a number too large was sent") from None
    except (ValueError, TypeError):
        raise ValueError(
            f"{field} must be a rectangular list of numbers; rows of different lengths (a ragged list) were sent"
        ) from None
    if array.ndim not in ndims:
        wanted = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{field} must be a {wanted} list of numbers, got shape {list(array.shape)}")
    spatial = array.shape[-2:]
    if min(spatial) < min_side or max(spatial) > max_side:
        raise ValueError(
            f"{field} must be between {min_side}x{min_side} and {max_side}x{max_side}, got {spatial[0]}x{spatial[1]}"
        )
    if array.ndim >= 3 and not 1 <= array.shape[-3] <= limits().grid_channels:
        raise ValueError(f"{field} may have 1 to {limits().grid_channels} channels, got {array.shape[-3]}")
    if array.ndim == 4 and not 1 <= array.shape[0] <= limits().grid_filters:
        raise ValueError(f"{field} may hold 1 to {limits().grid_filters} filters, got {array.shape[0]}")
    if not np.isfinite(array).all():
        raise ValueError(f"{field} must hold finite numbers: NaN and infinity are not allowed")
    if lo is not None and hi is not None:
        if array.min() < lo or array.max() > hi:
            raise ValueError(f"{field} values must lie in {lo:g}..{hi:g}, got {array.min():g}..{array.max():g}")
    elif np.abs(array).max() > max_abs:
        raise ValueError(
            f"{field} values must lie within ±{max_abs:g} (so that sums of products stay exact), "
            f"got {np.abs(array).max():g}"
        )
    return array


# -- predict ------------------------------------------------------------------------


class PredictRequest(BaseModel):
    """Exactly one of ``pixels``, ``image`` or ``frame``."""

    pixels: Grid | None = Field(
        None,
        description=f"grayscale values 0..255, from {DOCUMENTED.pixels_min_side}x{DOCUMENTED.pixels_min_side} up to "
        f"{DOCUMENTED.pixels_max_side}x{DOCUMENTED.pixels_max_side}; ink dark or light",
    )
    image: str | None = Field(
        None, description="PNG/JPEG/WebP as base64 or a data URL (canvas.toDataURL())", max_length=16_000_000
    )
    frame: Grid | None = Field(
        None,
        description="the network's own input, run without preprocessing: H×W (one channel) or C×H×W "
        f"floats in 0..1 of the model's input shape (LeNet: 32×32), up to {DOCUMENTED.frame_side} per side",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"pixels": ONE_STROKE},
                {"image": "data:image/png;base64,iVBORw0KGgo..."},
            ]
        }
    )

    @model_validator(mode="after")
    def exactly_one_source(self) -> PredictRequest:
        if sum(v is not None for v in (self.pixels, self.image, self.frame)) != 1:
            raise ValueError(
                "send exactly one of 'pixels' (2-D list of 0..255), 'image' (base64 or data URL) "
                "or 'frame' (the network's input, 0..1)"
            )
        return self

    @field_validator("frame")
    @classmethod
    def _frame_grid(cls, value):
        if value is None:
            return None
        return as_grid(value, field="frame", ndims=(2, 3), max_side=limits().frame_side, lo=0, hi=1)

    @field_validator("pixels")
    @classmethod
    def _pixel_grid(cls, value):
        # validated once and kept as an array: the route needs nothing else
        if value is None:
            return None
        return as_grid(
            value,
            field="pixels",
            ndims=(2,),
            min_side=limits().pixels_min_side,
            max_side=limits().pixels_max_side,
            lo=0,
            hi=255,
        )


class Guess(BaseModel):
    digit: int = Field(description="the class index", examples=[7])
    label: str | None = Field(None, description="the class name", examples=["7"])
    probability: float = Field(examples=[0.98])


class LayerActivation(BaseModel):
    name: str = Field(examples=["conv1"])
    shape: list[int] = Field(examples=[[6, 28, 28]])
    values: list = Field(description="nested lists of the layer's output, shaped like `shape`")


class PredictResponse(BaseModel):
    model: str = Field("lenet", description="the model that answered", examples=["lenet"])
    labels: list[str] = Field(
        default_factory=lambda: [str(d) for d in range(10)], description="the model's class names, by index"
    )
    digit: int | None = Field(description="the first guess (class index); null when the drawing is empty", examples=[7])
    label: str | None = Field(None, description="the first guess's class name", examples=["7"])
    probabilities: list[float] | None = Field(
        description="one probability a class, summing to 1 (unless independent); null when empty"
    )
    independent: bool = Field(
        False,
        description="true for an imported model whose classes each have their own sigmoid probability: "
        "they need not add up to 1",
    )
    top: list[Guess] = Field(description="first and second guess; empty when the drawing is empty")
    input: list = Field(description="the frame the network saw (LeNet: 32x32), 0..1, white ink on black")
    empty: bool = Field(description="true when no ink was found: then there is no guess")
    too_small: bool = Field(
        False,
        description="true when the ink is a dot (its box under a tenth of the picture's shorter side): "
        "scaled up to the 20 px box it would get a confident but meaningless guess, so there is none",
    )
    inverted: bool = Field(False, description="true when the drawing was dark ink on light and was inverted")
    layers: list[LayerActivation] | None = Field(
        None, description="with ?activations=true: conv1, pool1, conv2, pool2, fc1, fc2, fc3 in order"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": "lenet",
                    "labels": [str(d) for d in range(10)],
                    "digit": 7,
                    "label": "7",
                    "probabilities": [0.0, 0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 0.98, 0.0, 0.01],
                    "top": [
                        {"digit": 7, "label": "7", "probability": 0.98},
                        {"digit": 1, "label": "1", "probability": 0.01},
                    ],
                    "input": [[0.0] * 32] * 32,
                    "empty": False,
                    "too_small": False,
                    "inverted": True,
                }
            ]
        }
    )


# -- filters ------------------------------------------------------------------------


class FilterInfo(BaseModel):
    name: str = Field(examples=["gaussian_blur"])
    label: str = Field(examples=["Gaussian blur 3x3"])
    kernel: list[list[float]] = Field(description="the kernel as applied (already divided)")
    weights: list[list[int]] = Field(
        description="integer weights before dividing", examples=[[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]
    )
    divisor: int = Field(examples=[16])
    description: str
    output: OutputMapping = Field(
        examples=["clip"], description="the output mapping that shows the preset best: clip, abs or rescale"
    )
    bias: float = Field(0.0, description="added to every weighted sum, as a conv layer's bias (emboss: 128)")


# -- convolution arithmetic ---------------------------------------------------------


class ConvolveRequest(BaseModel):
    input: Grid = Field(
        description=f"2-D (H, W) or 3-D (C, H, W) list of numbers, up to {DOCUMENTED.grid_side}x{DOCUMENTED.grid_side}"
    )
    kernel: Grid = Field(
        description=f"2-D (KH, KW), 3-D (C, KH, KW) or several filters 4-D (F, C, KH, KW), up to "
        f"{DOCUMENTED.kernel_side}x{DOCUMENTED.kernel_side}"
    )
    bias: float | list[float] = Field(
        0.0, description="one bias, or one per filter when the kernel holds several (F, C, KH, KW)"
    )
    stride: Size(1, "max_grid_stride") = Field(1, description="a number, or [height, width]")  # type: ignore[valid-type]
    padding: Size(0, "max_grid_padding") = Field(0, description="a number, or [height, width]")  # type: ignore[valid-type]
    dilation: Size(1, "max_grid_dilation") = Field(1, description="a number, or [height, width]")  # type: ignore[valid-type]
    padding_mode: PaddingMode = "zeros"
    include_steps: bool = Field(True, description="list every output cell's window and products")
    first_step: int = Field(0, ge=0, le=1_000_000, description="list the steps from this one on")
    step_count: int | None = Field(
        None, ge=1, le=100_000, description="list at most this many steps (a window of a large volume)"
    )
    transposed: bool = Field(
        False,
        description="transposed convolution (2-D only): each input cell scatters input*kernel onto the output; "
        "steps then go over the input cells",
    )

    model_config = ConfigDict(json_schema_extra={"examples": [{"input": LECTURE_IMAGE, "kernel": LECTURE_FILTER}]})

    @field_validator("input")
    @classmethod
    def _input_grid(cls, value):
        return as_grid(value, field="input", ndims=(2, 3), max_side=limits().grid_side)

    @field_validator("kernel")
    @classmethod
    def _kernel_grid(cls, value):
        return as_grid(value, field="kernel", ndims=(2, 3, 4), max_side=limits().kernel_side)

    @field_validator("bias")
    @classmethod
    def _bias_values(cls, value):
        values = value if isinstance(value, list) else [value]
        if not 1 <= len(values) <= limits().grid_filters:
            raise ValueError(f"bias must be a number or a list of 1 to {limits().grid_filters}, got {len(values)}")
        if not all(np.isfinite(v) and abs(v) <= limits().max_grid_value for v in values):
            raise ValueError(f"bias values must be finite and within ±{limits().max_grid_value:g}")
        return value


class ConvolveStep(BaseModel):
    filter: int | None = Field(None, description="several filters: which one (its output map)")
    channel_sums: list[float] | None = Field(None, description="several filters: each input channel's sum")
    bias: float | None = Field(None, description="several filters: this filter's bias")
    output: list[int] | None = Field(None, description="[i, j] of the output cell", examples=[[0, 0]])
    input: list[int] | None = Field(None, description="transposed: [i, j] of the input cell that scatters")
    positions: list[list[int]] = Field(
        description="[r, c] under each kernel tap, in padded-input coordinates (transposed: output coordinates, "
        "which fall outside the output where padding crops it)"
    )
    products: list[float] = Field(description="input times weight at each tap (channel by channel for 3-D input)")
    value: float = Field(examples=[4.0])


class DirectView(BaseModel):
    """A transposed convolution written as a direct one, cell by cell."""

    input: list = Field(description="the input with S - 1 zeros between cells and D(F-1) - P zeros around")
    padding: int = Field(description="the zeros around: D(F-1) - P")
    kernel: list = Field(description="the kernel turned 180°")
    output: list = Field(description="equal to the transposed convolution's output")
    steps: list[ConvolveStep]


class ConvolveResponse(BaseModel):
    output: list = Field(description="(OH, OW), or (F, OH, OW) for several filters")
    output_size: list[int] = Field(examples=[[3, 3]])
    padded_input: list = Field(description="the input after padding, (C, H+2P, W+2P) or (H+2P, W+2P)")
    steps: list[ConvolveStep]
    direct: DirectView | None = Field(
        None, description="transposed: the same layer as a direct convolution (null when P > D(F-1))"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "output": [[4, 3, 4], [2, 4, 3], [2, 3, 4]],
                    "output_size": [3, 3],
                    "padded_input": LECTURE_IMAGE,
                    "steps": [
                        {
                            "output": [0, 0],
                            "positions": [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2], [2, 0], [2, 1], [2, 2]],
                            "products": [1, 0, 1, 0, 1, 0, 0, 0, 1],
                            "value": 4.0,
                        }
                    ],
                }
            ]
        }
    )


class PoolRequest(BaseModel):
    input: Grid = Field(description=f"2-D list of numbers, up to {DOCUMENTED.grid_side}x{DOCUMENTED.grid_side}")
    kernel_size: Size(1, "kernel_side") = Field(2, description="a number, or [height, width]")  # type: ignore[valid-type]
    stride: Size(1, "max_grid_stride") | None = Field(None, description="defaults to kernel_size")  # type: ignore[valid-type]
    mode: Literal["max", "avg"] = "max"

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"input": LECTURE_POOL_INPUT, "kernel_size": 2, "stride": 2}]}
    )

    @field_validator("input")
    @classmethod
    def _input_grid(cls, value):
        return as_grid(value, field="input", ndims=(2,), max_side=limits().grid_side)


class PoolStep(BaseModel):
    output: list[int]
    positions: list[list[int]] = Field(description="[r, c] of every input cell in the window")
    values: list[float]
    value: float
    source: list[int] | None = Field(None, description="max pooling: [r, c] of the winning cell")


class PoolResponse(BaseModel):
    output: list[list[float]]
    output_size: list[int]
    steps: list[PoolStep]

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"output": [[6, 8], [3, 4]], "output_size": [2, 2], "steps": []}]}
    )


class AxisArithmetic(BaseModel):
    exact: float
    fits: bool
    output_size: int
    formula: str
    message: str
    effective_kernel_size: int
    uncovered: int
    parameters: int | None = None
    output_volume: list[int] | None = None


class ArithmeticResponse(BaseModel):
    exact: float = Field(description="the formula's value before rounding down", examples=[2.3333])
    fits: bool = Field(description="true when the kernel tiles the (padded) input exactly", examples=[False])
    output_size: int = Field(description="what a framework computes (rounded down)", examples=[2])
    formula: str = Field(examples=["(7 + 2*0 - 1*(3-1) - 1)/3 + 1 = 2.33"])
    message: str
    effective_kernel_size: int = Field(description="D*(F-1) + 1", examples=[3])
    uncovered: int = Field(description="input rows (and columns) at the end that no window reaches", examples=[1])
    parameters: int | None = Field(
        None, description="filters * (in_channels/groups * KH * KW + 1); 0 for pooling", examples=[760]
    )
    output_volume: list[int] | None = Field(None, description="[filters, output height, output width]")
    parameter_formula: str | None = Field(None, examples=["10 × (5·5·3 + 1) = 760"])
    output_shape: list[int] = Field(description="[height, width] as a framework computes it", examples=[[2, 2]])
    height: AxisArithmetic = Field(description="the height's own numbers")
    width: AxisArithmetic = Field(description="the width's own numbers")
    groups: int = Field(1, examples=[1])
    pytorch: str = Field(
        description="the same layer in PyTorch", examples=["nn.Conv2d(3, 10, kernel_size=5, stride=1, padding=2)"]
    )
    pytorch_output: str | None = Field(None, description="its output shape in PyTorch", examples=["(N, 10, 32, 32)"])


# -- model --------------------------------------------------------------------------


class LayerDescription(BaseModel):
    """One named layer of a network as ``Network.describe()`` gives it (the input row has only the first five)."""

    name: str = Field(examples=["conv1"])
    type: str = Field(description="input, or a layer type of GET /api/architectures/layers", examples=["conv"])
    output_shape: list[int] = Field(description="after the layer's activation", examples=[[6, 28, 28]])
    parameters: int = Field(examples=[156])
    receptive_field: list[int] = Field(description="[h, w] input cells one unit sees", examples=[[5, 5]])
    index: int | None = Field(None, description="position in the spec's layers list", examples=[0])
    config: dict | None = Field(None, examples=[{"filters": 6, "kernel_size": 5, "stride": 1, "padding": 0}])
    input_shape: list[int] | None = Field(None, examples=[[1, 32, 32]])
    parameter_formula: str | None = Field(
        None, description="filters × (weights per filter + 1 bias)", examples=["6 × (5·5·1 + 1) = 156"]
    )
    formula: str | None = Field(
        None,
        description="(N + 2P - D(F-1) - 1)/S + 1 with this layer's numbers",
        examples=["(32 + 2*0 - 1*(5-1) - 1)/1 + 1 = 28"],
    )
    fits: bool | None = Field(None, description="false when the windows leave the last rows or columns unseen")
    receptive_step: list[int] | None = Field(None, description="input cells between neighbouring units' fields")
    receptive_start: list[int] | None = Field(None, description="top-left of unit (0, 0)'s field (negative: padding)")
    activation: str | None = Field(None, examples=["relu"])
    dropout: float | None = Field(None, description="dropout rate while training", examples=[None])
    inputs: list[str] | None = Field(
        None, description="the layers it reads (two or more: a merge)", examples=[["input"]]
    )
    draw: str | None = Field(None, description="how the pages draw it: conv, pool, fc, norm, merge, pad or map")
    window: dict | None = Field(
        None, description="the input cells one output cell reads: kernel, stride, padding, dilation (h, w) each"
    )
    words: str | None = Field(None, description="the layer's type in a sentence")


class LayerInfo(LayerDescription):
    kind: str = Field(description="the same as type (kept for older clients)", examples=["conv"])


class ModelInfo(BaseModel):
    id: str = Field("lenet", examples=["lenet"])
    name: str = Field(examples=["LeNet"])
    labels: list[str] = Field(default_factory=list, description="class names by index", examples=[list("0123456789")])
    input_shape: list[int] = Field(examples=[[1, 32, 32]])
    layers: list[LayerInfo]
    total_parameters: int = Field(examples=[63802])
    meta: dict = Field(description="how the shipped weights were trained (version, accuracy, ...)")
    pictures_note: str | None = Field(
        None, description="why its data set's pictures are not shown to you (they are its owner's); null if they are"
    )


class LayerWeights(BaseModel):
    name: str
    weight_shape: list[int]
    weight: list
    bias: list[float]
    running_mean: list[float] | None = Field(None, description="a BatchNorm layer's, with running_var and eps")
    running_var: list[float] | None = None
    eps: float | None = None


class StoreHealth(BaseModel):
    ok: bool
    error: str | None = Field(description="why the store cannot be reached", examples=[None])


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(examples=["ok"])
    store: StoreHealth
    model: dict = Field(examples=[{"version": "1.0", "val_accuracy": 0.99, "parameters": 63802}])
