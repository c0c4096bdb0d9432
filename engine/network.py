"""Any small sequential CNN, built from a plain description (a "spec").

A spec is JSON-able data::

    {"input": [1, 32, 32], "classes": 10, "layers": [
        {"type": "conv", "filters": 6, "kernel_size": 5}, {"type": "relu"},
        {"type": "maxpool", "kernel_size": 2},
        ...
        {"type": "flatten"}, {"type": "linear", "units": 10}]}

Layer types and their fields (omitted fields take PyTorch's defaults):

- ``conv``: ``filters``, ``kernel_size``, ``stride`` 1, ``padding`` 0, ``dilation`` 1 (each an int or
  ``[h, w]``), ``padding_mode`` ``zeros`` (any of :data:`engine.padding.PADDING_MODES`)
- ``maxpool`` / ``avgpool``: ``kernel_size``, ``stride`` (defaults to the kernel size)
- ``linear``: ``units``; it needs a flat input, so a ``flatten`` comes first
- ``relu``, ``tanh``, ``sigmoid``, ``flatten``; ``dropout``: ``rate`` 0.5

Conv, pool and linear layers are *named* (``conv1, pool1, fc1``, numbered by kind, or the spec's
``"name"``). An activation or dropout belongs to the named layer before it: that layer's reported
output is taken after them, as the lecture draws "CONV + ReLU" as one box. Parameters are
``{name}.weight`` / ``{name}.bias`` with PyTorch's shapes, conv ``(F, C, KH, KW)`` and linear
``(out, in)``, so a weight file maps one-to-one onto the same ``torch.nn`` model.

Shapes along the way follow ``OH = floor((H + 2P - D(KH-1) - 1) / S) + 1``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from engine._checks import effective_size
from engine.budget import check_time
from engine.conv import conv2d, conv2d_backward, im2col
from engine.cpus import usable_cpus
from engine.errors import EngineError, SpecError
from engine.layers import (
    cross_entropy,
    cross_entropy_backward,
    dropout_mask,
    linear,
    linear_backward,
    relu,
    sigmoid,
    sigmoid_backward,
    softmax,
    tanh,
    tanh_backward,
)
from engine.padding import PADDING_MODES, pad2d, partial_conv_ratio
from engine.pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward

ACTIVATIONS = ("relu", "tanh", "sigmoid")
NAMED_TYPES = ("conv", "maxpool", "avgpool", "linear")
LAYER_TYPES = (*NAMED_TYPES, *ACTIVATIONS, "flatten", "dropout")
NAME_PREFIX = {"conv": "conv", "maxpool": "pool", "avgpool": "pool", "linear": "fc"}
REQUIRED = object()  # marks a field a spec must give
FIELDS: dict[str, dict[str, Any]] = {
    "conv": {
        "filters": REQUIRED,
        "kernel_size": REQUIRED,
        "stride": 1,
        "padding": 0,
        "dilation": 1,
        "padding_mode": "zeros",
    },
    "maxpool": {"kernel_size": REQUIRED, "stride": None},
    "avgpool": {"kernel_size": REQUIRED, "stride": None},
    "linear": {"units": REQUIRED},
    "dropout": {"rate": 0.5},
    "relu": {},
    "tanh": {},
    "sigmoid": {},
    "flatten": {},
}
# No size in a spec may pass this: it keeps a typo (or a hostile number) from reaching an allocation.
MAX_SIZE = 65536
PARALLEL_MIN_BATCH = 64  # below this, splitting a batch across cores costs more than it saves
PARALLEL_MIN_TRAIN_BATCH = 32  # the same for a training step, whose backward pass doubles the work
BLAS_QUIET_BATCH = 4  # below this, switching BLAS to one thread costs more than its products (measured)
COLUMNS_BUDGET = 64 << 20  # bytes of im2col matrix one chunk of a batch may build

LENET_SPEC: dict[str, Any] = {
    "input": [1, 32, 32],
    "classes": 10,
    "layers": [
        {"type": "conv", "filters": 6, "kernel_size": 5},
        {"type": "relu"},
        {"type": "maxpool", "kernel_size": 2},
        {"type": "conv", "filters": 16, "kernel_size": 5},
        {"type": "relu"},
        {"type": "maxpool", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "linear", "units": 120},
        {"type": "relu"},
        {"type": "dropout", "rate": 0.25},
        {"type": "linear", "units": 100},
        {"type": "relu"},
        {"type": "dropout", "rate": 0.25},
        {"type": "linear", "units": 10},
    ],
}


# -- the plan: a spec checked and worked out, with no array allocated ------------------------------


@dataclass(frozen=True)
class LayerPlan:
    """One spec layer with its fields filled in, its shapes, and the named layer it reports under."""

    index: int
    type: str
    owner: str  # the named layer this belongs to (itself, for conv, pool and linear)
    config: dict[str, Any]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]

    @property
    def named(self) -> bool:
        return self.type in NAMED_TYPES


def _words(pair: tuple[int, int]) -> str:
    return f"{pair[0]}x{pair[1]}"


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def _size_formula(n: int, k: int, s: int, p: int, d: int) -> tuple[str, float]:
    exact = (n + 2 * p - d * (k - 1) - 1) / s + 1
    return f"({n} + 2*{p} - {d}*({k}-1) - 1)/{s} + 1 = {_number(round(exact, 2))}", exact


def _as_int(value: Any, what: str, index: int, name: str | None, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SpecError(f"{what} must be a whole number, got {_short(value)}", index=index, name=name)
    if not minimum <= value <= MAX_SIZE:
        raise SpecError(f"{what} must be between {minimum} and {MAX_SIZE}, got {_short(value)}", index=index, name=name)
    return int(value)


def _as_pair(value: Any, what: str, index: int, name: str | None, minimum: int) -> tuple[int, int]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise SpecError(f"{what} must be an int or [height, width], got {_short(value)}", index=index, name=name)
        return (_as_int(value[0], what, index, name, minimum), _as_int(value[1], what, index, name, minimum))
    single = _as_int(value, what, index, name, minimum)
    return (single, single)


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**12 else "a very large number"
    return text if len(text) <= 40 else text[:37] + "..."


def _pair_or_int(pair: tuple[int, int]) -> int | list[int]:
    return pair[0] if pair[0] == pair[1] else list(pair)


def _fill_fields(index: int, raw: Mapping[str, Any], name: str | None) -> dict[str, Any]:
    kind = raw["type"]
    allowed = FIELDS[kind]
    extra = sorted(set(raw) - set(allowed) - {"type", "name"})
    if extra:
        fields = ", ".join(["type", *allowed, *(["name"] if kind in NAMED_TYPES else [])])
        raise SpecError(
            f"unknown field {extra[0]!r} for a {kind} layer; its fields are {fields}", index=index, name=name
        )
    if "name" in raw and kind not in NAMED_TYPES:
        raise SpecError(
            f"a {kind} layer takes no name: it belongs to the conv, pool or linear layer before it",
            index=index,
            name=name,
        )
    config: dict[str, Any] = {}
    for key, default in allowed.items():
        if key in raw:
            config[key] = raw[key]
        elif default is REQUIRED:
            raise SpecError(f"a {kind} layer needs {key!r}", index=index, name=name)
        else:
            config[key] = default
    return config


def plan_network(spec: Mapping[str, Any], into: list[LayerPlan] | None = None) -> list[LayerPlan]:
    """Checks a spec and works out every layer's shapes; raises :class:`SpecError` naming the layer.

    Nothing is allocated, so a spec with a billion parameters costs nothing to refuse. ``into``, if
    given, receives each layer's plan as it is worked out, so a caller keeps the layers before a bad one.
    """
    if not isinstance(spec, Mapping):
        raise SpecError(f"a network spec is an object with input, classes and layers; got {_short(spec)}")
    unknown = sorted(set(spec) - {"input", "classes", "layers"})
    if unknown:
        raise SpecError(f"unknown spec field {unknown[0]!r}; a spec has input, classes and layers")
    for key in ("input", "classes", "layers"):
        if key not in spec:
            raise SpecError(f"the spec needs {key!r}")
    raw_input = spec["input"]
    if not isinstance(raw_input, Sequence) or isinstance(raw_input, str) or len(raw_input) != 3:
        raise SpecError(f"input must be [channels, height, width], got {_short(raw_input)}")
    shape: tuple[int, ...] = tuple(_as_int(v, "input", None, None, 1) for v in raw_input)  # type: ignore[arg-type]
    classes = spec["classes"]
    if isinstance(classes, bool) or not isinstance(classes, int) or not 2 <= classes <= MAX_SIZE:
        raise SpecError(f"classes must be a whole number of at least 2, got {_short(classes)}")
    layers = spec["layers"]
    if not isinstance(layers, Sequence) or isinstance(layers, str) or not layers:
        raise SpecError("layers must be a non-empty list")

    plans: list[LayerPlan] = [] if into is None else into
    counters: dict[str, int] = {}
    names: set[str] = set()
    owner: str | None = None
    for index, raw in enumerate(layers):
        if not isinstance(raw, Mapping) or "type" not in raw:
            raise SpecError('each layer is an object with a "type"', index=index)
        kind = raw["type"]
        if kind not in LAYER_TYPES:
            raise SpecError(f"unknown layer type {_short(kind)}; types are {', '.join(LAYER_TYPES)}", index=index)
        name = None
        if kind in NAMED_TYPES:
            prefix = NAME_PREFIX[kind]
            counters[prefix] = counters.get(prefix, 0) + 1
            name = raw.get("name", f"{prefix}{counters[prefix]}")
            if not isinstance(name, str) or not name.isidentifier() or len(name) > 32 or name == "input":
                raise SpecError(
                    f"a layer name is a word of letters, digits and _ (at most 32, not 'input'), got {_short(name)}",
                    index=index,
                )
            if name in names:
                raise SpecError(f"the name {name!r} is used twice", index=index, name=name)
            names.add(name)
        config = _fill_fields(index, raw, name or kind)
        output = _output_shape(index, name or kind, kind, config, shape)
        if name is not None:
            owner = name
        elif kind != "flatten" and owner is None:
            raise SpecError(
                f"a {kind} layer needs a conv, pool or linear layer before it to belong to", index=index, name=kind
            )
        plans.append(LayerPlan(index, kind, owner or "input", config, shape, output))
        shape = output
    if shape != (classes,):
        last = plans[-1]
        got = "x".join(map(str, shape))
        raise SpecError(
            f"the network must end with {classes} outputs (one per class) but gives {got}; "
            f"end with a flatten and a linear layer of {classes} units",
            index=last.index,
            name=last.owner if last.named else last.type,
        )
    return plans


@dataclass(frozen=True)
class SpecCheck:
    """What the shape table shows for a spec that may be broken: the layers that could be worked out
    (as :func:`describe_plan` gives them), their parameters, and the first error (None when it builds)."""

    layers: list[dict[str, Any]]
    parameters: int
    plans: list[LayerPlan]
    error: SpecError | None


def check_spec(spec: Mapping[str, Any]) -> SpecCheck:
    """Like :func:`plan_network`, but keeps going as far as it can instead of raising."""
    plans: list[LayerPlan] = []
    error = None
    try:
        plan_network(spec, into=plans)
    except SpecError as caught:
        error = caught
    raw_input = spec.get("input") if isinstance(spec, Mapping) else None
    sizes = list(raw_input) if isinstance(raw_input, Sequence) and not isinstance(raw_input, str) else []
    fine = len(sizes) == 3 and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIZE for v in sizes)
    rows = describe_plan(plans, sizes) if fine else []
    return SpecCheck(rows, count_parameters(plans), plans, error)


def _output_shape(index: int, name: str, kind: str, config: dict[str, Any], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The layer's output shape, or a :class:`SpecError` in the lecture's terms. Normalises ``config``."""
    flat = len(shape) == 1
    if kind in ("conv", "maxpool", "avgpool"):
        if flat:
            raise SpecError(
                f"a {kind} layer needs a volume (channels x height x width) but its input is flat "
                f"({shape[0]} values): put it before the flatten",
                index=index,
                name=name,
            )
        c, h, w = shape
        kernel = _as_pair(config["kernel_size"], "kernel_size", index, name, 1)
        stride = _as_pair(config["stride"] if config["stride"] is not None else list(kernel), "stride", index, name, 1)
        padding, dilation = (0, 0), (1, 1)
        channels = c
        if kind == "conv":
            channels = _as_int(config["filters"], "filters", index, name, 1)
            padding = _as_pair(config["padding"], "padding", index, name, 0)
            dilation = _as_pair(config["dilation"], "dilation", index, name, 1)
            mode = config["padding_mode"]
            if mode not in PADDING_MODES:
                raise SpecError(
                    f"padding_mode must be one of {', '.join(PADDING_MODES)}, got {_short(mode)}",
                    index=index,
                    name=name,
                )
            for axis, n, p in (("height", h, padding[0]), ("width", w, padding[1])):
                if mode == "reflect" and p >= n:
                    raise SpecError(
                        f"reflect padding {p} needs an input {axis} above {p}, got {n}", index=index, name=name
                    )
                if mode == "circular" and p > n:
                    raise SpecError(
                        f"circular padding {p} needs an input {axis} of at least {p}, got {n}", index=index, name=name
                    )
            config.update(filters=channels, padding=_pair_or_int(padding), dilation=_pair_or_int(dilation))
        config.update(kernel_size=_pair_or_int(kernel), stride=_pair_or_int(stride))
        sizes = []
        for a in (0, 1):
            formula, exact = _size_formula((h, w)[a], kernel[a], stride[a], padding[a], dilation[a])
            if exact < 1:
                span = effective_size(kernel[a], dilation[a])
                what = f"a {_words(kernel)} kernel" + (
                    f" (spanning {span} with dilation {dilation[a]})" if span > kernel[a] else ""
                )
                raise SpecError(f"{what} does not fit a {h}x{w} input: {formula}", index=index, name=name)
            sizes.append(int(exact // 1))
        return (channels, sizes[0], sizes[1])
    if kind == "flatten":
        if flat:
            raise SpecError("the input is already flat", index=index, name=name)
        return (int(np.prod(shape)),)
    if kind == "linear":
        if not flat:
            raise SpecError(
                f"a linear layer needs a flat input but gets a {'x'.join(map(str, shape))} volume: "
                "add a flatten layer before it",
                index=index,
                name=name,
            )
        return (_as_int(config["units"], "units", index, name, 1),)
    if kind == "dropout":
        rate = config["rate"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise SpecError(f"rate must be a number in [0, 1), got {_short(rate)}", index=index, name=name)
        config["rate"] = float(rate)
    return shape  # activations and dropout keep the shape


def _pair(value: int | list[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def parameter_shapes(plan: LayerPlan) -> dict[str, tuple[int, ...]]:
    """PyTorch's parameter shapes: conv (F, C, KH, KW) and (F,), linear (out, in) and (out,)."""
    if plan.type == "conv":
        kh, kw = _pair(plan.config["kernel_size"])
        f = plan.output_shape[0]
        return {f"{plan.owner}.weight": (f, plan.input_shape[0], kh, kw), f"{plan.owner}.bias": (f,)}
    if plan.type == "linear":
        out = plan.output_shape[0]
        return {f"{plan.owner}.weight": (out, plan.input_shape[0]), f"{plan.owner}.bias": (out,)}
    return {}


def count_parameters(plans: Sequence[LayerPlan]) -> int:
    return sum(int(np.prod(s)) for p in plans for s in parameter_shapes(p).values())


# -- describing a plan in the lecture's words --------------------------------------------------------


def _parameter_formula(plan: LayerPlan) -> str | None:
    """``6 × (5·5·1 + 1) = 156``: filters times (weights per filter + one bias)."""
    if plan.type == "conv":
        f, c, kh, kw = parameter_shapes(plan)[f"{plan.owner}.weight"]
        return f"{f} × ({kh}·{kw}·{c} + 1) = {f * (kh * kw * c + 1)}"
    if plan.type == "linear":
        out, inp = parameter_shapes(plan)[f"{plan.owner}.weight"]
        return f"{out} × ({inp} + 1) = {out * (inp + 1)}"
    return None


def _size_text(plan: LayerPlan) -> tuple[str | None, bool]:
    """The output-size formula with this layer's numbers, and whether the windows tile the input exactly."""
    if plan.type not in ("conv", "maxpool", "avgpool"):
        return None, True
    cfg = plan.config
    kernel, stride = _pair(cfg["kernel_size"]), _pair(cfg["stride"])
    padding, dilation = _pair(cfg.get("padding", 0)), _pair(cfg.get("dilation", 1))
    _, h, w = plan.input_shape
    parts = [_size_formula((h, w)[a], kernel[a], stride[a], padding[a], dilation[a]) for a in (0, 1)]
    fits = all(float(exact).is_integer() for _, exact in parts)
    if parts[0][0] == parts[1][0]:
        return parts[0][0], fits
    return f"height {parts[0][0]}; width {parts[1][0]}", fits


@dataclass(frozen=True)
class Field:
    """Where one unit of a layer looks on the input: ``size`` cells, the first unit's top-left at
    ``start`` (negative inside the padding), and neighbouring units ``step`` cells apart."""

    size: tuple[int, int]
    step: tuple[int, int]
    start: tuple[int, int]

    def box(self, i: int, j: int, input_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """Unit (i, j)'s field as [y0, x0, y1, x1) clipped to the input."""
        y0, x0 = self.start[0] + i * self.step[0], self.start[1] + j * self.step[1]
        return (
            max(y0, 0),
            max(x0, 0),
            min(y0 + self.size[0], input_hw[0]),
            min(x0 + self.size[1], input_hw[1]),
        )


def receptive_fields(plans: Sequence[LayerPlan], input_shape: Sequence[int]) -> dict[str, Field]:
    """Each named layer's receptive field on the input: ``r += D(K-1)*step``, ``step *= S``,
    ``start += (-P)*step``. A linear layer sees the whole input."""
    size, step, start = [1, 1], [1, 1], [0, 0]
    fields: dict[str, Field] = {}
    whole = (int(input_shape[1]), int(input_shape[2]))
    for plan in plans:
        if plan.type in ("conv", "maxpool", "avgpool"):
            cfg = plan.config
            kernel, stride = _pair(cfg["kernel_size"]), _pair(cfg["stride"])
            padding, dilation = _pair(cfg.get("padding", 0)), _pair(cfg.get("dilation", 1))
            for a in (0, 1):
                start[a] -= padding[a] * step[a]
                size[a] += (effective_size(kernel[a], dilation[a]) - 1) * step[a]
                step[a] *= stride[a]
            fields[plan.owner] = Field((size[0], size[1]), (step[0], step[1]), (start[0], start[1]))
        elif plan.type == "linear":
            fields[plan.owner] = Field(whole, whole, (0, 0))
    return fields


def describe_plan(plans: Sequence[LayerPlan], input_shape: Sequence[int]) -> list[dict[str, Any]]:
    """One entry per named layer, after an entry for the input: what the shape table shows."""
    fields = receptive_fields(plans, input_shape)
    rows: list[dict[str, Any]] = [
        {
            "name": "input",
            "type": "input",
            "output_shape": list(input_shape),
            "parameters": 0,
            "receptive_field": [1, 1],
        }
    ]
    for plan in plans:
        if plan.named:
            formula, fits = _size_text(plan)
            field_ = fields[plan.owner]
            rows.append(
                {
                    "name": plan.owner,
                    "type": plan.type,
                    "index": plan.index,
                    "config": dict(plan.config),
                    "input_shape": list(plan.input_shape),
                    "output_shape": list(plan.output_shape),
                    "parameters": sum(int(np.prod(s)) for s in parameter_shapes(plan).values()),
                    "parameter_formula": _parameter_formula(plan),
                    "formula": formula,
                    "fits": fits,
                    "receptive_field": list(field_.size),
                    "receptive_step": list(field_.step),
                    "receptive_start": list(field_.start),
                    "activation": None,
                    "dropout": None,
                }
            )
        elif plan.type in ACTIVATIONS:
            rows[-1]["activation"] = plan.type
        elif plan.type == "dropout":
            rows[-1]["dropout"] = plan.config["rate"]
        if plan.named or plan.type in ACTIVATIONS or plan.type == "dropout":
            rows[-1]["output_shape"] = list(plan.output_shape)
    return rows


# -- forward and backward, one layer at a time --------------------------------------------------------


def _conv_args(cfg: dict[str, Any]) -> dict[str, Any]:
    return {
        "stride": _pair(cfg["stride"]),
        "padding": _pair(cfg["padding"]),
        "dilation": _pair(cfg["dilation"]),
    }


def _layer_forward(
    plan: LayerPlan, x: np.ndarray, params: dict[str, np.ndarray], rng: np.random.Generator | None, keep: bool
) -> tuple[np.ndarray, Any]:
    """One layer's output and, when ``keep``, what its backward pass needs (cs231n's cache)."""
    kind, cfg = plan.type, plan.config
    if kind == "conv":
        w, b = params[f"{plan.owner}.weight"], params[f"{plan.owner}.bias"]
        args = _conv_args(cfg)
        if not keep:
            return conv2d(x, w, b, padding_mode=cfg["padding_mode"], **args), None
        # im2col once, kept for the backward pass (which needs the same columns for dW)
        n, f = len(x), w.shape[0]
        _, oh, ow = plan.output_shape
        columns = im2col(pad2d(x, args["padding"], cfg["padding_mode"]), w.shape[2:], args["stride"], args["dilation"])
        out = (w.reshape(f, -1) @ columns).reshape(f, n, oh, ow)
        if cfg["padding_mode"] == "partial":
            out *= partial_conv_ratio(x.shape[2:], w.shape[2:], **args).astype(out.dtype)
        out += b[:, None, None, None]
        return np.ascontiguousarray(out.transpose(1, 0, 2, 3)), (x, columns)
    if kind == "maxpool":
        out = max_pool2d(x, cfg["kernel_size"], cfg["stride"])
        return out, (x, out)
    if kind == "avgpool":
        return avg_pool2d(x, cfg["kernel_size"], cfg["stride"]), x
    if kind == "linear":
        return linear(x, params[f"{plan.owner}.weight"], params[f"{plan.owner}.bias"]), x
    if kind == "flatten":
        return x.reshape(len(x), -1), x.shape
    if kind == "relu":
        y = relu(x)
        return y, y
    if kind == "tanh":
        y = tanh(x)
        return y, y
    if kind == "sigmoid":
        y = sigmoid(x)
        return y, y
    # dropout: the identity at inference, a random mask while training
    if rng is None or cfg["rate"] == 0:
        return x, None
    mask = dropout_mask(x.shape, cfg["rate"], rng, x.dtype.type)
    return x * mask, mask


def _layer_backward(
    plan: LayerPlan,
    grad: np.ndarray,
    cache: Any,
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    need_input_grad: bool,
) -> np.ndarray:
    """d loss / d layer input from d loss / d layer output; parameter gradients go into ``grads``
    (an empty array instead when ``need_input_grad`` is false for a conv layer)."""
    kind, cfg = plan.type, plan.config
    if kind == "conv":
        x, columns = cache
        w = params[f"{plan.owner}.weight"]
        grad_x, grads[f"{plan.owner}.weight"], grads[f"{plan.owner}.bias"] = conv2d_backward(
            grad,
            x,
            w,
            padding_mode=cfg["padding_mode"],
            columns=columns,
            need_input_grad=need_input_grad,
            **_conv_args(cfg),
        )
        return grad_x
    if kind == "linear":
        grad_x, grads[f"{plan.owner}.weight"], grads[f"{plan.owner}.bias"] = linear_backward(
            grad, cache, params[f"{plan.owner}.weight"]
        )
        return grad_x
    if kind == "maxpool":
        x, out = cache
        return max_pool2d_backward(grad, x, cfg["kernel_size"], cfg["stride"], out=out)
    if kind == "avgpool":
        return avg_pool2d_backward(grad, cache, cfg["kernel_size"], cfg["stride"])
    if kind == "flatten":
        return grad.reshape(cache)
    if kind == "relu":
        return grad * (cache > 0)
    if kind == "tanh":
        return tanh_backward(grad, cache)
    if kind == "sigmoid":
        return sigmoid_backward(grad, cache)
    return grad if cache is None else grad * cache  # dropout


# -- the network ---------------------------------------------------------------------------------------


def available_cores() -> int:
    """The cores this process may run on (its affinity and cgroup quota), not every core of the machine."""
    return usable_cpus()


@cache
def _executor(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="network")


@cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def _one_blas_thread():
    """Holds BLAS to one thread while the engine runs slices of a batch on threads of its own, so
    that (say) two slices with two BLAS threads each never fight over two cores."""
    controller = _blas_controller()
    infos = [i for i in controller.info() if i.get("user_api") == "blas"]
    if max((i.get("num_threads", 1) for i in infos), default=1) == 1:
        yield  # already so (as `convscope serve` runs): skip the switch
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


@dataclass
class Network:
    """A built network: its spec, parameters by name (PyTorch's shapes) and metadata.

    x is always (N, C, H, W) as the spec's ``input`` says; logits are (N, classes).
    """

    spec: dict[str, Any]
    params: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    plans: list[LayerPlan] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.plans = plan_network(self.spec)
        expected = {k: s for p in self.plans for k, s in parameter_shapes(p).items()}
        missing = sorted(set(expected) - set(self.params))
        if missing:
            raise EngineError(f"parameters missing for this spec: {', '.join(missing)}")
        for key, shape in expected.items():
            if tuple(self.params[key].shape) != shape:
                raise EngineError(f"{key} has shape {tuple(self.params[key].shape)}, the spec needs {shape}")
        self.params = {k: self.params[k] for k in expected}  # in layer order, nothing extra

    # -- what it is ----------------------------------------------------------------------------------

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.spec["input"]
        return (int(c), int(h), int(w))

    @property
    def classes(self) -> int:
        return int(self.spec["classes"])

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(p.owner for p in self.plans if p.named)

    @property
    def parameter_count(self) -> int:
        return sum(int(p.size) for p in self.params.values())

    @property
    def labels(self) -> list[str]:
        """The class names (from the metadata), or the class numbers."""
        names = self.meta.get("labels")
        return list(names) if names and len(names) == self.classes else [str(k) for k in range(self.classes)]

    def describe(self) -> list[dict[str, Any]]:
        """The input, then one entry per named layer: type, output shape, parameters, receptive field."""
        return describe_plan(self.plans, self.input_shape)

    def receptive_field(self, name: str) -> Field:
        return receptive_fields(self.plans, self.input_shape)[name]

    # -- inference ---------------------------------------------------------------------------------

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[1:] != self.input_shape:
            expected = "(N, " + ", ".join(map(str, self.input_shape)) + ")"
            raise EngineError(f"the network's input must be {expected}, got {x.shape}")
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float32)
        return x

    def _in_slices(
        self, fn: Callable, x: np.ndarray, *more: np.ndarray | list, min_batch: int, rows: np.ndarray | None = None
    ) -> list:
        """``fn(slice, *(m[k] for m in more))`` on slice k of the batch, one per core, with BLAS held to one
        thread; ``more`` holds per-slice arguments (one entry when the batch stays whole); ``rows``, if
        given, is an array with a row per input, cut like the batch and passed after ``more``.

        NumPy releases the GIL in its copies and products, so threads run the slices in parallel; BLAS's
        own threads are kept out of every engine pass, since two of them on two cores only fight (and,
        measured here, make mid-sized products several times slower). A batch under ``min_batch`` is
        one slice: splitting it would cost more than it saves.
        """
        check_time()  # a caller past its time budget stops here, between passes
        cores = available_cores()
        whole = (x, *(m[0] for m in more), *(() if rows is None else (rows,)))
        if len(x) < BLAS_QUIET_BATCH:  # products this small run on one BLAS thread anyway
            return [fn(*whole)]
        with _one_blas_thread():
            if len(x) < min_batch or cores == 1:
                return [fn(*whole)]
            bounds = np.linspace(0, len(x), cores + 1).astype(int)
            jobs = [
                (x[a:b], *(m[i] for m in more), *(() if rows is None else (rows[a:b],)))
                for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))
            ]
            return list(_executor(cores).map(lambda job: fn(*job), jobs))

    def activations(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every named layer's output in order (after its activation); the last is the logits."""
        x = self._check_input(x)

        def run(x: np.ndarray) -> dict[str, np.ndarray]:
            out: dict[str, np.ndarray] = {}
            for plan in self.plans:
                x, _ = _layer_forward(plan, x, self.params, None, keep=False)
                if plan.owner != "input" and plan.type != "flatten":
                    out[plan.owner] = x
            return out

        return self._in_slices(run, x, min_batch=len(x) + 1)[0]

    def _logits(self, x: np.ndarray) -> np.ndarray:
        for plan in self.plans:
            x, _ = _layer_forward(plan, x, self.params, None, keep=False)
        return x

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(N, C, H, W) -> logits (N, classes); a large batch is split across the cores."""
        x = self._check_input(x)
        return np.concatenate(self._in_slices(self._logits, x, min_batch=PARALLEL_MIN_BATCH))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(N, C, H, W) -> probabilities (N, classes), each row summing to 1."""
        return softmax(self.forward(x).astype(np.float64))

    def max_batch(self, budget_bytes: int = COLUMNS_BUDGET) -> int:
        """How many inputs one pass may take before a conv layer's im2col matrix passes the budget."""
        per_input = 1
        for plan in self.plans:
            if plan.type == "conv":
                kh, kw = _pair(plan.config["kernel_size"])
                _, oh, ow = plan.output_shape
                per_input = max(per_input, plan.input_shape[0] * kh * kw * oh * ow * 4)
        return max(1, budget_bytes // per_input)

    # -- gradients ---------------------------------------------------------------------------------

    def _forward_keep(self, x: np.ndarray, rng: np.random.Generator | None) -> tuple[np.ndarray, list[Any]]:
        caches = []
        for plan in self.plans:
            x, cache_ = _layer_forward(plan, x, self.params, rng, keep=True)
            caches.append(cache_)
        return x, caches

    def _backward(
        self, grad: np.ndarray, caches: list[Any], need_input_grad: bool, at_layers: dict | None = None
    ) -> tuple[np.ndarray, dict]:
        """Back through every layer; ``at_layers``, if given, receives the gradient with respect to each
        named layer's reported output (what :meth:`activations` gives), as Grad-CAM needs."""
        grads: dict[str, np.ndarray] = {}
        reported = self._reported_plans()
        for i in range(len(self.plans) - 1, -1, -1):
            if at_layers is not None and i in reported:
                at_layers[self.plans[i].owner] = grad
            # the first layer's input gradient is only wanted for input gradients
            grad = _layer_backward(self.plans[i], grad, caches[i], self.params, grads, need_input_grad or i > 0)
        return grad, grads

    def _reported_plans(self) -> set[int]:
        """Indices of the plans whose output is a named layer's reported output (its last, bar flatten)."""
        last: dict[str, int] = {}
        for i, plan in enumerate(self.plans):
            if plan.owner != "input" and plan.type != "flatten":
                last[plan.owner] = i
        return set(last.values())

    def loss_and_gradients(
        self, x: np.ndarray, labels: np.ndarray, dropout_rng: np.random.Generator | None = None
    ) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
        """Mean cross-entropy, the logits (N, classes), and d loss / d parameter keyed like ``params``.

        Dropout layers drop units only when ``dropout_rng`` is given (training); without it the
        pass is deterministic, as gradient checks need. A batch of ``PARALLEL_MIN_TRAIN_BATCH`` or
        more is split across the cores like :meth:`forward` (each slice with its own dropout
        stream spawned from ``dropout_rng``), and the slices' gradients are averaged by their size.
        """
        x = self._check_input(x)
        labels = np.asarray(labels)
        cores = available_cores()
        if len(x) < PARALLEL_MIN_TRAIN_BATCH or cores == 1:
            return self._in_slices(self._loss_and_gradients, x, [labels], [dropout_rng], min_batch=len(x) + 1)[0]
        bounds = np.linspace(0, len(x), cores + 1).astype(int)
        rngs = dropout_rng.spawn(cores) if dropout_rng is not None else [None] * cores
        slices = [labels[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        parts = self._in_slices(self._loss_and_gradients, x, slices, rngs, min_batch=PARALLEL_MIN_TRAIN_BATCH)
        shares = [len(part[1]) / len(x) for part in parts]
        loss = sum(part[0] * share for part, share in zip(parts, shares))
        grads = {k: sum(part[2][k] * share for part, share in zip(parts, shares)) for k in self.params}
        return float(loss), np.concatenate([part[1] for part in parts]), grads

    def _loss_and_gradients(
        self, x: np.ndarray, labels: np.ndarray, dropout_rng: np.random.Generator | None
    ) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
        logits, caches = self._forward_keep(x, dropout_rng)
        loss = cross_entropy(logits, labels)
        _, grads = self._backward(cross_entropy_backward(logits, labels).astype(logits.dtype), caches, False)
        return loss, logits, grads

    def check_target(self, target: int | np.ndarray, n: int) -> np.ndarray:
        """``target`` as an (n,) array of class indices, or an :class:`EngineError` in words."""
        targets = np.broadcast_to(np.asarray(target), (n,))
        if not np.issubdtype(targets.dtype, np.integer) or (targets < 0).any() or (targets >= self.classes).any():
            raise EngineError(f"target must be a class index 0..{self.classes - 1}, got {target!r}")
        return targets

    def input_gradient(self, x: np.ndarray, target: int | np.ndarray) -> np.ndarray:
        """``d logits[n, target[n]] / d x``, shape of ``x``; ``target`` an int or an (N,) array."""
        x = self._check_input(x)
        targets = self.check_target(target, len(x))
        seed = np.zeros((len(x), self.classes), x.dtype)
        seed[np.arange(len(x)), targets] = 1
        return self.backward_to_input(x, seed)[1]

    def backward_to_input(
        self, x: np.ndarray, seed: Callable[[np.ndarray], np.ndarray] | np.ndarray, at_layers: dict | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The logits (N, classes) and ``d (sum of seed * logits) / d x``: any gradient of the logits (a
        one-hot, a loss's) carried back to the input. ``seed`` is an (N, classes) array, or a function of
        the logits that works row by row. ``at_layers`` as in :meth:`_backward`."""
        x = self._check_input(x)
        fixed = None if callable(seed) else np.asarray(seed)

        def run(x: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
            logits, caches = self._forward_keep(x, None)
            gradient = rows if rows is not None else seed(logits)  # type: ignore[operator]
            grad_x, _ = self._backward(np.asarray(gradient, logits.dtype), caches, True, at_layers)
            assert grad_x is not None
            return logits, grad_x

        # each slice of the batch gets its own rows of the seed, so slices can go to different cores
        min_batch = PARALLEL_MIN_TRAIN_BATCH if at_layers is None else len(x) + 1
        parts = self._in_slices(run, x, min_batch=min_batch, rows=fixed)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def layer_gradient(
        self,
        x: np.ndarray,
        layer: str,
        seed: Callable[[np.ndarray], np.ndarray],
        before_activation: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Named layer ``layer``'s output for ``x`` and ``d (sum of seed(output) * output) / d x``: how the
        input should change to raise (say) one unit, as activation maximisation needs. With
        ``before_activation`` the output is taken before the layer's activation (a ReLU's zero has no
        gradient to climb)."""
        x = self._check_input(x)
        owned = [i for i, p in enumerate(self.plans) if p.owner == layer and (p.named or i in self._reported_plans())]
        if not owned:
            raise EngineError(f"no layer named {layer!r}; layers are {', '.join(self.layer_names)}")
        last = min(owned) if before_activation else max(owned)
        out, caches = x, []
        for plan in self.plans[: last + 1]:
            out, cache_ = _layer_forward(plan, out, self.params, None, keep=True)
            caches.append(cache_)
        grad = np.asarray(seed(out), out.dtype)
        grads: dict[str, np.ndarray] = {}
        for i in range(last, -1, -1):
            grad = _layer_backward(self.plans[i], grad, caches[i], self.params, grads, True)
        return out, grad

    # -- persistence -------------------------------------------------------------------------------

    def copy(self) -> Network:
        return Network(
            json.loads(json.dumps(self.spec)), {k: v.copy() for k, v in self.params.items()}, dict(self.meta)
        )

    def save(self, path: str | Path | BinaryIO) -> None:
        """A ``.npz`` of named arrays plus ``spec`` and ``meta`` as JSON strings; never pickle."""
        arrays: dict[str, Any] = {"spec": np.array(json.dumps(self.spec)), "meta": np.array(json.dumps(self.meta))}
        np.savez_compressed(path, **{**arrays, **self.params})


def initial_parameters(plans: Sequence[LayerPlan], seed: int = 0) -> dict[str, np.ndarray]:
    """He-normal weights before a ReLU (Glorot-normal otherwise), zero biases; float32."""
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    for i, plan in enumerate(plans):
        shapes = parameter_shapes(plan)
        if not shapes:
            continue
        nxt = next((p.type for p in plans[i + 1 :] if p.type in ACTIVATIONS or p.named), None)
        for key, shape in shapes.items():
            if key.endswith(".bias"):
                params[key] = np.zeros(shape, np.float32)
                continue
            fan_in = int(np.prod(shape[1:]))
            fan_out = shape[0] * int(np.prod(shape[2:]))
            std = np.sqrt(2 / fan_in) if nxt == "relu" else np.sqrt(2 / (fan_in + fan_out))
            params[key] = (rng.standard_normal(shape) * std).astype(np.float32)
    return params


def build_network(spec: Mapping[str, Any], seed: int = 0) -> Network:
    """A fresh network from a spec, with seeded initial weights; :class:`SpecError` names a bad layer."""
    plans = plan_network(spec)
    spec_copy = json.loads(json.dumps(spec))  # the network owns a plain-data copy
    return Network(spec_copy, initial_parameters(plans, seed))


def _file_name(path: str | Path | BinaryIO) -> str:
    return Path(path).name if isinstance(path, (str, Path)) else "the file"


def load_network(path: str | Path | BinaryIO) -> Network:
    """A network saved by :meth:`Network.save`. A file of named LeNet weights without a spec
    (as earlier ``convscope train`` wrote) is read as :data:`LENET_SPEC`."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise EngineError(f"{_file_name(path)} is not a network file (.npz): {error}") from None
    with data:
        files = set(data.files)
        spec = json.loads(str(data["spec"])) if "spec" in files else LENET_SPEC
        meta = json.loads(str(data["meta"])) if "meta" in files else {}
        params = {k: data[k].astype(np.float32) for k in files - {"spec", "meta"}}
    return Network(spec, params, meta)


@dataclass(frozen=True)
class Classification:
    """Softmax probabilities (float64, summing to 1) and the ``k`` most likely classes, best first."""

    probabilities: np.ndarray
    top: list[tuple[int, float]]


def classify(logits: np.ndarray, k: int = 2) -> Classification:
    """Logits (classes,) -> probabilities and the top ``k`` (class, probability) pairs; ties go to the
    lower class index, as ``argmax`` does."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 1 or not np.isfinite(logits).all():
        raise EngineError(f"classify takes one row of finite logits, got shape {logits.shape}")
    probabilities = softmax(logits)
    order = np.argsort(-probabilities, kind="stable")[:k]
    return Classification(probabilities, [(int(c), float(probabilities[c])) for c in order])
