"""A network's description (a "spec") checked and worked out, with no array allocated: every layer's
shapes, parameter counts and formulas, receptive fields. The network itself is :mod:`engine.network`;
each layer type's own rules are its class in :mod:`engine.kinds`.

A spec is JSON-able data::

    {"input": [1, 32, 32], "classes": 10, "layers": [
        {"type": "conv", "filters": 6, "kernel_size": 5}, {"type": "relu"},
        {"type": "maxpool", "kernel_size": 2},
        ...
        {"type": "flatten"}, {"type": "linear", "units": 10}]}

Each layer reads the layer before it, or the one its ``"input"`` names (``"input"`` itself is the
network's input); a merge (``add``, ``concat``) reads the two or more its ``"inputs"`` name. So a spec is
a chain or a graph: ResNet's skip connection is ``{"type": "add", "inputs": ["pool1", "bn3"]}``.

Layers of a type with a prefix (conv, pool, fc, bn, add, ...) are *named* (``conv1, pool1, fc1``,
numbered by prefix, or the spec's ``"name"``). An unnamed activation, dropout or flatten belongs to the
named layer before it: that layer's reported output is taken after them, as the lecture draws
"CONV + ReLU" as one box. Any layer may have a ``"name"`` of its own, and is then reported on its own.
Parameters are ``{name}.weight`` / ``{name}.bias`` with PyTorch's shapes, conv ``(F, C/groups, KH, KW)``
and linear ``(out, in)``, and BatchNorm keeps ``{name}.running_mean`` / ``{name}.running_var`` beside
them, so a weight file maps one-to-one onto the same ``torch.nn`` model's state.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import SpecError
from engine.kinds import KINDS, MAX_SIZE, REQUIRED, Field, LayerKind, Where
from engine.kinds.base import Shape, as_int, short
from engine.padding import PADDING_MODES

NETWORK_INPUT = "input"


def layer_catalogue() -> dict[str, Any]:
    """Every layer type with its fields and their defaults (None: required, or for a pooling stride, "the
    kernel size"), the fields a new layer starts with, its words, whether it merges, and the padding modes:
    what a design page offers."""
    fields = {t: {k: None if v is REQUIRED else v for k, v in kind.fields.items()} for t, kind in KINDS.items()}
    new_layer = {
        t: {k: kind.suggested.get(k) if v is REQUIRED else v for k, v in kind.fields.items()}
        for t, kind in KINDS.items()
    }
    return {
        "types": list(KINDS),
        "fields": fields,
        "new_layer": new_layer,
        "words": {t: kind.words for t, kind in KINDS.items()},
        "merges": [t for t, kind in KINDS.items() if kind.merges],
        "named": [t for t, kind in KINDS.items() if kind.prefix is not None],
        "padding_modes": list(PADDING_MODES),
    }


# -- the plan: a spec checked and worked out, with no array allocated ------------------------------


@dataclass(frozen=True)
class LayerPlan:
    """One spec layer with its fields filled in, its inputs and shapes, and the named layer it reports
    under. ``sources`` are the plans it reads (-1: the network's input)."""

    index: int
    type: str
    name: str  # its own name when ``named``, else the named layer's it belongs to
    named: bool
    sources: tuple[int, ...]
    input_names: tuple[str, ...]  # the named layers (or "input") it reads, as the spec names them
    config: dict[str, Any]
    input_shapes: tuple[Shape, ...]
    output_shape: Shape
    kind: LayerKind = field(compare=False, repr=False)

    @property
    def owner(self) -> str:
        """The named layer this belongs to (itself, when named)."""
        return self.name

    @property
    def input_shape(self) -> Shape:
        return self.input_shapes[0]


@dataclass
class _Walk:
    """What planning has worked out so far: the plans, and each named layer's latest plan."""

    shape: Shape
    plans: list[LayerPlan]
    ends: dict[str, int] = field(default_factory=lambda: {NETWORK_INPUT: -1})
    counters: dict[str, int] = field(default_factory=dict)

    def output(self, source: int) -> Shape:
        return self.shape if source < 0 else self.plans[source].output_shape


def plan_network(spec: Mapping[str, Any], into: list[LayerPlan] | None = None) -> list[LayerPlan]:
    """Checks a spec and works out every layer's shapes; raises :class:`SpecError` naming the layer.

    Nothing is allocated, so a spec with a billion parameters costs nothing to refuse. ``into``, if
    given, receives each layer's plan as it is worked out, so a caller keeps the layers before a bad one.
    """
    shape, classes, layers = _check_top_level(spec)
    walk = _Walk(shape, [] if into is None else into)
    for index, raw in enumerate(layers):
        plan = _plan_layer(walk, index, raw)
        walk.plans.append(plan)
        if plan.named:
            walk.ends[plan.name] = index
        elif plan.name in walk.ends and not plan.kind.keeps_flat:
            walk.ends[plan.name] = index  # the named layer reports after its activation
    _check_used(walk.plans)
    last = walk.plans[-1]
    if last.output_shape != (classes,):
        got = "x".join(map(str, last.output_shape))
        raise SpecError(
            f"the network must end with {classes} outputs (one per class) but gives {got}; "
            f"end with a flatten and a linear layer of {classes} units",
            index=last.index,
            name=last.name if last.named else last.type,
        )
    return walk.plans


def _plan_layer(walk: _Walk, index: int, raw: Any) -> LayerPlan:
    if not isinstance(raw, Mapping) or "type" not in raw:
        raise SpecError('each layer is an object with a "type"', index=index)
    if not isinstance(raw["type"], str) or raw["type"] not in KINDS:
        raise SpecError(f"unknown layer type {short(raw['type'])}; types are {', '.join(KINDS)}", index=index)
    kind = KINDS[raw["type"]]
    previous = walk.plans[-1] if walk.plans else None
    plain = kind.prefix is None and "name" not in raw and "input" not in raw
    if plain and previous is not None and previous.name != NETWORK_INPUT:
        name, named = previous.name, False
    elif plain and kind.keeps_flat:
        name, named = NETWORK_INPUT, False  # a flatten first: nothing to report it under
    elif plain:
        raise SpecError(
            f"a {kind.type} layer needs a conv, pool or linear layer before it to belong to (or a name of its own)",
            index=index,
            name=kind.type,
        )
    else:
        name, named = _layer_name(walk, index, raw, kind), True
    where = Where(index, name if named else kind.type)
    sources, input_names = _sources(walk, index, raw, kind, where)
    config = _fill_fields(index, raw, kind, name)
    shapes = tuple(walk.output(s) for s in sources)
    output = kind.configure(config, shapes, where)
    return LayerPlan(index, kind.type, name, named, sources, input_names, config, shapes, output, kind)


def _sources(
    walk: _Walk, index: int, raw: Mapping[str, Any], kind: LayerKind, where: Where
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Which plans a layer reads: the one before it by default, or the named layers its ``input`` or
    ``inputs`` name (each must come earlier in the spec)."""
    if kind.merges:
        names = raw.get("inputs")
        if "input" in raw or not isinstance(names, Sequence) or isinstance(names, str) or len(names) < 2:
            raise where.error(f'a {kind.type} layer needs "inputs": the names of two or more earlier layers')
    elif "inputs" in raw:
        raise where.error(f'a {kind.type} layer reads one input: name it with "input", not "inputs"')
    elif "input" in raw:
        names = [raw["input"]]
    else:
        previous = walk.plans[-1] if walk.plans else None
        shown = NETWORK_INPUT if previous is None else previous.name
        return ((index - 1,) if index else (-1,)), (shown,)
    sources = []
    for ref in names:
        if not isinstance(ref, str) or ref not in walk.ends:
            known = ", ".join(walk.ends)
            raise where.error(f"input {short(ref)} is not an earlier layer; it may read {known}")
        sources.append(walk.ends[ref])
    return tuple(sources), tuple(names)


def _check_used(plans: Sequence[LayerPlan]) -> None:
    """Every layer's output feeds a later layer, but the last one's: a branch that goes nowhere is a mistake."""
    used = {s for plan in plans for s in plan.sources}
    for plan in plans[:-1]:
        if plan.index not in used:
            label = plan.type if plan.name == NETWORK_INPUT else plan.name  # a member: its named layer's
            raise SpecError(
                f"the output of {label} goes nowhere: no later layer reads it "
                '(a branch must end in an add or concat, whose "inputs" name it)',
                index=plan.index,
                name=label,
            )


def _check_top_level(spec: Any) -> tuple[Shape, int, Sequence[Any]]:
    """A spec's input shape, class count and layer list, each checked."""
    if not isinstance(spec, Mapping):
        raise SpecError(f"a network spec is an object with input, classes and layers; got {short(spec)}")
    unknown = sorted(set(spec) - {"input", "classes", "layers"})
    if unknown:
        raise SpecError(f"unknown spec field {unknown[0]!r}; a spec has input, classes and layers")
    for key in ("input", "classes", "layers"):
        if key not in spec:
            raise SpecError(f"the spec needs {key!r}")
    raw_input = spec["input"]
    if not isinstance(raw_input, Sequence) or isinstance(raw_input, str) or len(raw_input) != 3:
        raise SpecError(f"input must be [channels, height, width], got {short(raw_input)}")
    top = Where(-1, "input")
    shape = tuple(as_int(v, "input", top, 1) for v in raw_input)
    classes = spec["classes"]
    if isinstance(classes, bool) or not isinstance(classes, int) or not 2 <= classes <= MAX_SIZE:
        raise SpecError(f"classes must be a whole number of at least 2, got {short(classes)}")
    layers = spec["layers"]
    if not isinstance(layers, Sequence) or isinstance(layers, str) or not layers:
        raise SpecError("layers must be a non-empty list")
    return shape, classes, layers


def _layer_name(walk: _Walk, index: int, raw: Mapping[str, Any], kind: LayerKind) -> str:
    """A named layer's name: the spec's, or its type's prefix numbered (conv1, pool2, fc3); unique."""
    prefix = kind.prefix or kind.type
    walk.counters[prefix] = walk.counters.get(prefix, 0) + 1
    name = raw.get("name", f"{prefix}{walk.counters[prefix]}")
    if not isinstance(name, str) or not name.isidentifier() or len(name) > 32 or name == NETWORK_INPUT:
        raise SpecError(
            f"a layer name is a word of letters, digits and _ (at most 32, not 'input'), got {short(name)}",
            index=index,
        )
    if name in walk.ends:
        raise SpecError(f"the name {name!r} is used twice", index=index, name=name)
    return name


def _fill_fields(index: int, raw: Mapping[str, Any], kind: LayerKind, name: str) -> dict[str, Any]:
    allowed = kind.fields
    links = ("inputs",) if kind.merges else ("input",)
    extra = sorted(set(raw) - set(allowed) - {"type", "name", *links})
    if extra:
        fields = ", ".join(["type", *allowed, "name", *links])
        raise SpecError(
            f"unknown field {extra[0]!r} for a {kind.type} layer; its fields are {fields}", index=index, name=name
        )
    config: dict[str, Any] = {}
    for key, default in allowed.items():
        if key in raw:
            config[key] = raw[key]
        elif default is REQUIRED:
            raise SpecError(f"a {kind.type} layer needs {key!r}", index=index, name=name)
        else:
            config[key] = default
    return config


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


# -- what a plan holds and costs ---------------------------------------------------------------------


def parameter_shapes(plan: LayerPlan) -> dict[str, Shape]:
    """The layer's trained parameters, keyed ``name.weight`` / ``name.bias``, in PyTorch's shapes."""
    return {f"{plan.name}.{suffix}": shape for suffix, shape in plan.kind.parameter_shapes(plan).items()}


def state_shapes(plan: LayerPlan) -> dict[str, Shape]:
    """Everything the layer keeps: its parameters and (BatchNorm) its running statistics."""
    buffers = {f"{plan.name}.{suffix}": shape for suffix, shape in plan.kind.buffer_shapes(plan).items()}
    return {**parameter_shapes(plan), **buffers}


def count_parameters(plans: Sequence[LayerPlan]) -> int:
    """Trained parameters, as PyTorch counts them (running statistics are not parameters)."""
    return sum(int(np.prod(s)) for p in plans for s in parameter_shapes(p).values())


def multiply_adds(plans: Sequence[LayerPlan]) -> int:
    """Multiply-adds of one input's forward pass (conv ``F·C/G·KH·KW·OH·OW``, linear ``in·out``): what a
    training step costs per picture, up to a constant."""
    return sum(plan.kind.multiply_adds(plan) for plan in plans)


def first_trained(plans: Sequence[LayerPlan], frozen: Collection[str] = ()) -> int:
    """The index of the first plan with parameters outside the ``frozen`` layers (``len(plans)`` if none):
    a training step's backward pass need not go below it."""
    trained = (i for i, plan in enumerate(plans) if parameter_shapes(plan) and plan.name not in frozen)
    return next(trained, len(plans))


# -- describing a plan in the lecture's words --------------------------------------------------------


def receptive_fields(plans: Sequence[LayerPlan], input_shape: Sequence[int]) -> dict[str, Field]:
    """Each named layer's receptive field on the input, worked out layer by layer from the ones it reads
    (``r += D(K-1)*step``, ``step *= S``, ``start += (-P)*step`` through a window; a merge holds all
    its inputs' fields; a linear layer sees the whole input)."""
    whole = (int(input_shape[1]), int(input_shape[2]))
    by_plan: dict[int, Field] = {-1: Field((1, 1), (1, 1), (0, 0))}
    fields: dict[str, Field] = {}
    for plan in plans:
        by_plan[plan.index] = plan.kind.receptive(plan, [by_plan[s] for s in plan.sources], whole)
        if plan.named:
            fields[plan.name] = by_plan[plan.index]
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
            rows.append(_row(plan, fields[plan.name]))
        else:
            plan.kind.annotate(rows[-1], plan)
        if plan.named or not plan.kind.keeps_flat:
            rows[-1]["output_shape"] = list(plan.output_shape)
    return rows


def _row(plan: LayerPlan, field_: Field) -> dict[str, Any]:
    formula, fits = plan.kind.size_formula(plan)
    return {
        "name": plan.name,
        "type": plan.type,
        "index": plan.index,
        "config": dict(plan.config),
        "inputs": list(plan.input_names),
        "input_shape": list(plan.input_shape),
        "output_shape": list(plan.output_shape),
        "parameters": sum(int(np.prod(s)) for s in parameter_shapes(plan).values()),
        "parameter_formula": plan.kind.parameter_formula(plan),
        "formula": formula,
        "fits": fits,
        "receptive_field": list(field_.size),
        "receptive_step": list(field_.step),
        "receptive_start": list(field_.start),
        "activation": None,
        "dropout": None,
        "draw": plan.kind.draw,
        "window": plan.kind.window(plan),
        "words": plan.kind.words,
    }
