"""A network's description (a "spec") checked and worked out, with no array allocated: every layer's
shapes, parameter counts and formulas, receptive fields. The network itself is :mod:`engine.network`.

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

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine._checks import effective_size, pair
from engine.arithmetic import size_formula
from engine.errors import SpecError
from engine.padding import PADDING_MODES

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
# What a new layer starts with where a spec must give a value (the design page's "Add a layer")
SUGGESTED = {"filters": 8, "kernel_size": 3, "units": 10}


def layer_catalogue() -> dict[str, Any]:
    """Every layer type with its fields and their defaults (None: required, or for a pooling stride, "the
    kernel size"), the fields a new layer starts with, and the padding modes: what a design page offers."""
    fields = {kind: {k: None if v is REQUIRED else v for k, v in spec.items()} for kind, spec in FIELDS.items()}
    new_layer = {
        kind: {k: SUGGESTED.get(k) if v is REQUIRED else v for k, v in spec.items()} for kind, spec in FIELDS.items()
    }
    return {"types": list(LAYER_TYPES), "fields": fields, "new_layer": new_layer, "padding_modes": list(PADDING_MODES)}


# No size in a spec may pass this: it keeps a typo (or a hostile number) from reaching an allocation.
MAX_SIZE = 65536


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


def _as_int(value: Any, what: str, index: int | None, name: str | None, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SpecError(f"{what} must be a whole number, got {_short(value)}", index=index, name=name)
    if not minimum <= value <= MAX_SIZE:
        raise SpecError(f"{what} must be between {minimum} and {MAX_SIZE}, got {_short(value)}", index=index, name=name)
    return int(value)


def _as_pair(value: Any, what: str, index: int | None, name: str | None, minimum: int) -> tuple[int, int]:
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
    shape, classes, layers = _check_top_level(spec)
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
        name = _layer_name(index, raw, counters, names) if kind in NAMED_TYPES else None
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


def _check_top_level(spec: Any) -> tuple[tuple[int, ...], int, Sequence[Any]]:
    """A spec's input shape, class count and layer list, each checked."""
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
    shape = tuple(_as_int(v, "input", None, None, 1) for v in raw_input)
    classes = spec["classes"]
    if isinstance(classes, bool) or not isinstance(classes, int) or not 2 <= classes <= MAX_SIZE:
        raise SpecError(f"classes must be a whole number of at least 2, got {_short(classes)}")
    layers = spec["layers"]
    if not isinstance(layers, Sequence) or isinstance(layers, str) or not layers:
        raise SpecError("layers must be a non-empty list")
    return shape, classes, layers


def _layer_name(index: int, raw: Mapping[str, Any], counters: dict[str, int], names: set[str]) -> str:
    """A named layer's name: the spec's, or its kind's prefix numbered (conv1, pool2, fc3); unique."""
    prefix = NAME_PREFIX[raw["type"]]
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
    return name


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
        return _window_output(index, name, kind, config, shape)
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


def _window_output(
    index: int, name: str, kind: str, config: dict[str, Any], shape: tuple[int, ...]
) -> tuple[int, int, int]:
    """A conv or pooling layer's output volume: its window's fields checked and normalised in ``config``."""
    c, h, w = shape
    kernel = _as_pair(config["kernel_size"], "kernel_size", index, name, 1)
    stride = _as_pair(config["stride"] if config["stride"] is not None else list(kernel), "stride", index, name, 1)
    padding, dilation, channels = (0, 0), (1, 1), c
    if kind == "conv":
        channels = _as_int(config["filters"], "filters", index, name, 1)
        padding = _as_pair(config["padding"], "padding", index, name, 0)
        dilation = _as_pair(config["dilation"], "dilation", index, name, 1)
        _check_padding_mode(index, name, config["padding_mode"], (h, w), padding)
        config.update(filters=channels, padding=_pair_or_int(padding), dilation=_pair_or_int(dilation))
    config.update(kernel_size=_pair_or_int(kernel), stride=_pair_or_int(stride))
    sizes = []
    for a in (0, 1):
        formula, exact = size_formula((h, w)[a], kernel[a], stride[a], padding[a], dilation[a])
        if exact < 1:
            span = effective_size(kernel[a], dilation[a])
            what = f"a {_words(kernel)} kernel" + (
                f" (spanning {span} with dilation {dilation[a]})" if span > kernel[a] else ""
            )
            raise SpecError(f"{what} does not fit a {h}x{w} input: {formula}", index=index, name=name)
        sizes.append(int(exact // 1))
    return (channels, sizes[0], sizes[1])


def _check_padding_mode(index: int, name: str, mode: Any, size: tuple[int, int], padding: tuple[int, int]) -> None:
    if mode not in PADDING_MODES:
        raise SpecError(
            f"padding_mode must be one of {', '.join(PADDING_MODES)}, got {_short(mode)}", index=index, name=name
        )
    for axis, n, p in (("height", size[0], padding[0]), ("width", size[1], padding[1])):
        if mode == "reflect" and p >= n:
            raise SpecError(f"reflect padding {p} needs an input {axis} above {p}, got {n}", index=index, name=name)
        if mode == "circular" and p > n:
            raise SpecError(
                f"circular padding {p} needs an input {axis} of at least {p}, got {n}", index=index, name=name
            )


def parameter_shapes(plan: LayerPlan) -> dict[str, tuple[int, ...]]:
    """PyTorch's parameter shapes: conv (F, C, KH, KW) and (F,), linear (out, in) and (out,)."""
    if plan.type == "conv":
        kh, kw = pair(plan.config["kernel_size"])
        f = plan.output_shape[0]
        return {f"{plan.owner}.weight": (f, plan.input_shape[0], kh, kw), f"{plan.owner}.bias": (f,)}
    if plan.type == "linear":
        out = plan.output_shape[0]
        return {f"{plan.owner}.weight": (out, plan.input_shape[0]), f"{plan.owner}.bias": (out,)}
    return {}


def count_parameters(plans: Sequence[LayerPlan]) -> int:
    return sum(int(np.prod(s)) for p in plans for s in parameter_shapes(p).values())


# -- describing a plan in the lecture's words --------------------------------------------------------


def multiply_adds(plans: Sequence[LayerPlan]) -> int:
    """Multiply-adds of one input's forward pass (conv ``F·C·KH·KW·OH·OW``, linear ``in·out``): what a
    training step costs per picture, up to a constant."""
    total = 0
    for plan in plans:
        if plan.type == "conv":
            f, oh, ow = plan.output_shape
            kh, kw = pair(plan.config["kernel_size"])
            total += f * plan.input_shape[0] * kh * kw * oh * ow
        elif plan.type == "linear":
            total += plan.input_shape[0] * plan.output_shape[0]
    return total


def first_trained(plans: Sequence[LayerPlan], frozen: Collection[str] = ()) -> int:
    """The index of the first plan with parameters outside the ``frozen`` layers (``len(plans)`` if none):
    a training step's backward pass need not go below it."""
    trained = (i for i, plan in enumerate(plans) if parameter_shapes(plan) and plan.owner not in frozen)
    return next(trained, len(plans))


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
    kernel, stride = pair(cfg["kernel_size"]), pair(cfg["stride"])
    padding, dilation = pair(cfg.get("padding", 0)), pair(cfg.get("dilation", 1))
    _, h, w = plan.input_shape
    parts = [size_formula((h, w)[a], kernel[a], stride[a], padding[a], dilation[a]) for a in (0, 1)]
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
            kernel, stride = pair(cfg["kernel_size"]), pair(cfg["stride"])
            padding, dilation = pair(cfg.get("padding", 0)), pair(cfg.get("dilation", 1))
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
