"""An ONNX graph's nodes -> a spec's layers: each node becomes a layer of the registry's types, a fold into
the layer before it, or nothing (an Identity); a value read by several nodes becomes a branch, an ``Add``
of two paths a merge. :mod:`engine.onnx_import` checks the file and calls this.

Folds keep a model the size it was trained as: ``BatchNormalization`` right after a conv or linear layer
(whose output nothing else reads) goes into its weights, ``scale = gamma / sqrt(var + eps)``,
``W' = W * scale``, ``b' = (b - mean) * scale + beta``; a constant ``Add`` into its bias; a ``Pad`` (or our
own exports' circular ``Slice`` + ``Concat``) right before a conv into its padding mode; a ``Mul`` by
partial convolution's ratio into ``padding_mode: partial``; constant ``Sub``/``Div``/``Mul``/``Add`` at the
input into one ``normalize`` layer. Anywhere else a BatchNorm is a ``batchnorm`` layer and a Pad a ``pad``
layer. Channels-last values (Keras's, through tf2onnx) are followed through their ``Transpose``s rather
than computed: see :class:`Value`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import onnx

from engine._checks import pair
from engine.errors import EngineError
from engine.kinds import KINDS, Where
from engine.padding import partial_conv_ratio

PAD_MODES = {"constant": "zeros", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}
# layer types that act on each number (or each channel's numbers) alike: a channels-last value stays one
ELEMENTWISE = frozenset({"dropout", "add", "normalize"})


class ImportRefused(EngineError):
    """An ONNX file convscope cannot (or will not) take; the message names what and says what is allowed."""


def where(node: onnx.NodeProto) -> str:
    return f"node {node.name or node.output[0]!r} ({node.op_type})"


def attributes(node: onnx.NodeProto) -> dict[str, Any]:
    return {
        a.name: (v.decode() if isinstance(v := onnx.helper.get_attribute_value(a), bytes) else v)
        for a in node.attribute
    }


@dataclass(frozen=True)
class Value:
    """A value of the graph as the spec sees it: the named layer (or "input") a later layer names to read
    it, the index of the layer that made it (-1: the input), and its shape without the batch, channels
    first as the engine keeps it.

    Keras's models (through tf2onnx) hold their maps channels last and transpose around each conv: ``nhwc``
    marks a value the file holds as N x H x W x C while the engine holds it channels first, and ``hwc_of``
    a flat value that the file flattened from such maps (C, H, W), so its units come in H, W, C order: the
    linear layer that reads it takes its weights' columns in the engine's order instead."""

    ref: str
    index: int
    shape: tuple[int, ...]
    nhwc: bool = False
    hwc_of: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class Padded:
    """A Pad not yet made a layer: the value it pads, its sides (top, bottom, left, right) and mode."""

    source: str
    sides: tuple[int, int, int, int]
    mode: str


@dataclass(frozen=True)
class Unsqueezed:
    """An Unsqueeze not yet undone: only a Squeeze, Flatten or Reshape back may read it."""

    source: str


@dataclass(frozen=True)
class Sliced:
    """A Slice not yet placed: our exports' circular padding slices the rows (or columns) it wraps."""

    source: str
    axis: int
    start: int
    stop: int


# ONNX activations -> their layer types, from the registry (Clip, ReLU6's op, is read by its range instead)
ACTIVATIONS = {kind.onnx_op: kind for kind in KINDS.values() if kind.activation and kind.onnx_op != "Clip"}


class Converter:
    """Walks the graph's nodes in their (topological) order, one layer, fold or pass-through each."""

    def __init__(
        self,
        nodes: list[onnx.NodeProto],
        constants: dict[str, np.ndarray],
        shapes: dict[str, Any],
        batch: int | None = None,
        makers: dict[str, onnx.NodeProto] | None = None,
    ) -> None:
        self.nodes = nodes
        self.makers = makers or {}  # every value's node, the shape-computing ones too
        self.batch = batch  # the input's fixed batch size, if it has one (a Reshape may name it)
        self.sigmoid = False  # the scores end in a Sigmoid (dropped): independent or binary probabilities
        self.constants = constants
        self.shapes = shapes  # ONNX's shape inference, for a Reshape's target
        self.layers: list[dict[str, Any]] = []
        self.params: dict[str, np.ndarray] = {}
        self.report: list[str] = []
        self.values: dict[str, Value] = {}
        self.pending: dict[str, Padded | Sliced | Unsqueezed] = {}
        self.counters: Counter[str] = Counter()
        self.readers: Counter[str] = Counter(name for n in nodes for name in n.input if name)
        self.conv_inputs: dict[str, tuple[int, int]] = {}  # each conv's input size (for partial padding's ratio)

    # -- layers -----------------------------------------------------------------------------------------

    def name(self, prefix: str) -> str:
        self.counters[prefix] += 1
        return f"{prefix}{self.counters[prefix]}"

    def value(self, node: onnx.NodeProto, name: str) -> Value:
        """The layer value ``name`` (a pending Pad becomes a pad layer here: nothing folded it)."""
        if name in self.pending:
            self.place_pending(node, name)
        if name not in self.values:
            raise ImportRefused(f"{where(node)} reads {name!r}, which no earlier node makes")
        return self.values[name]

    def emit(
        self,
        node: onnx.NodeProto,
        layer: dict[str, Any],
        inputs: list[str],
        params: dict[str, np.ndarray] | None = None,
    ) -> Value:
        """Appends ``layer`` reading the values ``inputs``; its output is ``node``'s first. It reads the layer
        before it without saying so when that is the only reader of its output; else it names its input (and
        gets a name of its own)."""
        kind = KINDS[layer["type"]]
        sources = [self.value(node, v) for v in inputs]
        elementwise = kind.activation or layer["type"] in ELEMENTWISE
        layout = (sources[0].nhwc, sources[0].hwc_of)
        if any((s.nhwc, s.hwc_of) != layout for s in sources) or (any(layout) and not elementwise):
            raise ImportRefused(
                f"{where(node)} reads channels-last maps (N x H x W x C) or units flattened from them; convscope "
                "takes them only through a Transpose back to N x C x H x W, a flatten, global pooling or a linear layer"
            )
        last = len(self.layers) - 1
        if kind.merges:
            layer["inputs"] = [s.ref for s in sources]
        elif not (
            sources[0].index == last and self.readers[inputs[0]] <= 1 and (last >= 0 or sources[0].ref == "input")
        ):
            layer["input"] = sources[0].ref
        if kind.prefix is not None or "input" in layer or (kind.activation and not self.layers):
            layer["name"] = self.name(kind.prefix or layer["type"])
        config = {k: v for k, v in layer.items() if k not in ("type", "name", "input", "inputs")}
        config = {**{k: d for k, d in kind.fields.items() if k not in config}, **config}
        try:
            shape = kind.configure(
                config, [s.shape for s in sources], Where(len(self.layers), layer.get("name", kind.type))
            )
        except EngineError as error:
            raise ImportRefused(f"{where(node)}: {error}") from None
        ref = layer.get("name") or sources[0].ref
        for suffix, array in (params or {}).items():
            self.params[f"{ref}.{suffix}"] = np.asarray(array, np.float32)
        self.layers.append(layer)
        produced = Value(ref, len(self.layers) - 1, shape, *(layout if elementwise else (False, None)))
        self.values[node.output[0]] = produced
        return produced

    def same(self, node: onnx.NodeProto, source: str) -> None:
        """``node`` changes nothing the engine keeps: its output is its input."""
        self.values[node.output[0]] = self.value(node, source)
        self.readers[source] += self.readers[node.output[0]] - 1

    def constant(self, node: onnx.NodeProto, slot: int, what: str) -> np.ndarray:
        if len(node.input) <= slot or not node.input[slot]:
            raise ImportRefused(f"{where(node)} has no {what}")
        value = self.constants.get(node.input[slot])
        if value is None:
            raise ImportRefused(f"{where(node)}: its {what} must be a constant (an initializer)")
        if value.dtype.kind != "f":
            raise ImportRefused(f"{where(node)}: its {what} holds {value.dtype}, not float weights")
        if not np.all(np.isfinite(value)):
            raise ImportRefused(f"{where(node)}: its {what} holds NaN or infinite numbers; the file is damaged")
        return value.astype(np.float32)

    def data_inputs(self, node: onnx.NodeProto) -> list[str]:
        return [name for name in node.input if name and name not in self.constants]

    # -- the folds ------------------------------------------------------------------------------------

    def foldable(self, node: onnx.NodeProto, value: str, types: tuple[str, ...]) -> str | None:
        """The name of the layer that made ``value`` if it is the last one, of one of ``types``, and
        ``node`` is the only reader of its output: a fold may change its weights."""
        made = self.values.get(value)
        if made is None or made.index != len(self.layers) - 1 or self.readers[value] != 1:
            return None
        layer = self.layers[-1]
        return str(layer["name"]) if layer["type"] in types else None

    def place_pending(self, node: onnx.NodeProto, name: str) -> None:
        """A Pad (or a wrap) that no conv folded: a ``pad`` layer."""
        pending = self.pending.pop(name)
        if isinstance(pending, Sliced):
            raise ImportRefused(f"{where(node)} reads a Slice, which convscope only takes as circular padding")
        if isinstance(pending, Unsqueezed):
            raise ImportRefused(
                f"{where(node)} reads an Unsqueeze's output; only a Squeeze, Flatten or Reshape back may"
            )
        source = pending.source
        carrier = onnx.helper.make_node("Pad", [source], [name], name=f"pad of {source}")
        self.readers[source] += self.readers[name] - 1
        self.emit(carrier, {"type": "pad", "padding": list(pending.sides), "padding_mode": pending.mode}, [source])
        self.report.append(f"a {pending.mode} Pad of {list(pending.sides)} (top, bottom, left, right) → a pad layer")

    def window(
        self, node: onnx.NodeProto, attrs: dict[str, Any], kernel: tuple[int, int], hw: tuple[int, int]
    ) -> dict[str, Any]:
        """Stride, padding and dilation of a Conv or pool node in the spec's terms; uneven padding is
        returned as ``extra`` (top, bottom, left, right) for a pad layer before it."""
        strides = tuple(int(v) for v in attrs.get("strides", (1, 1)))
        dilations = tuple(int(v) for v in attrs.get("dilations", (1, 1)))
        pads = [int(v) for v in attrs.get("pads", (0, 0, 0, 0))]
        auto = str(attrs.get("auto_pad", "NOTSET"))
        if len(strides) != 2 or len(dilations) != 2 or len(pads) != 4:
            raise ImportRefused(f"{where(node)} is not a 2-D window (kernel, strides or pads of another length)")
        for what, values, least in (("kernel_shape", kernel, 1), ("strides", strides, 1), ("dilations", dilations, 1)):
            if any(v < least for v in values):
                raise ImportRefused(f"{where(node)}: {what} {list(values)}; each must be at least {least}")
        if any(p < 0 for p in pads):
            raise ImportRefused(f"{where(node)}: pads {pads}; padding cannot be negative")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = _same_pads(hw, kernel, strides, dilations, upper=auto == "SAME_UPPER")
        top, left, bottom, right = pads
        even = (min(top, bottom), min(left, right))
        extra = (top - even[0], bottom - even[0], left - even[1], right - even[1])
        return {"stride": list(strides), "padding": list(even), "dilation": list(dilations), "extra": extra}


def _same_pads(
    hw: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, ...], dilations: tuple[int, ...], upper: bool
) -> list[int]:
    """ONNX's SAME padding: the output is ceil(size / stride), the odd cell at the end (upper) or start."""
    before, after = [], []
    for axis in (0, 1):
        size = hw[axis]
        out = -(-size // strides[axis])
        total = max(0, (out - 1) * strides[axis] + dilations[axis] * (kernel[axis] - 1) + 1 - size)
        small, big = total // 2, total - total // 2
        before.append(small if upper else big)
        after.append(big if upper else small)
    return [before[0], before[1], after[0], after[1]]


def check_partial_ratio(conv: dict[str, Any], hw: tuple[int, int], ratio: np.ndarray) -> bool:
    """Whether ``ratio`` is partial convolution's re-weighting for ``conv`` on an ``hw`` map."""
    expected = partial_conv_ratio(
        hw, pair(conv["kernel_size"]), pair(conv["stride"]), pair(conv["padding"]), pair(conv["dilation"])
    )
    return ratio.size == expected.size and bool(np.allclose(ratio.reshape(expected.shape), expected, rtol=1e-5))


# -- the ops ----------------------------------------------------------------------------------------------


def convert(cv: Converter, node: onnx.NodeProto) -> None:
    """``node`` as a layer, a fold or a pass-through."""
    op, attrs = node.op_type, attributes(node)
    if op in ACTIVATIONS:
        kind = ACTIVATIONS[op]
        try:
            fields = kind.from_onnx(attrs)
        except EngineError as error:
            raise ImportRefused(f"{where(node)}: {error}") from None
        cv.emit(node, {"type": kind.type, **fields}, [node.input[0]])
    elif op in HANDLERS:
        HANDLERS[op](cv, node, attrs)
    else:
        raise ImportRefused(f"{where(node)} is not supported; supported ops: {', '.join(SUPPORTED_OPS)}")


def _clip(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    low = cv.constants.get(node.input[1]) if len(node.input) > 1 and node.input[1] else attrs.get("min")
    high = cv.constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else attrs.get("max")
    low_v = -np.inf if low is None else float(np.asarray(low).ravel()[0])
    high_v = np.inf if high is None else float(np.asarray(high).ravel()[0])
    if low_v == 0 and high_v == 6:
        cv.emit(node, {"type": "relu6"}, [node.input[0]])
    elif low_v == 0 and high_v == np.inf:
        cv.emit(node, {"type": "relu"}, [node.input[0]])
    else:
        raise ImportRefused(f"{where(node)} clips to [{low_v:g}, {high_v:g}]; only [0, 6] (ReLU6) and [0, inf) (ReLU)")


def _shape_of(cv: Converter, node: onnx.NodeProto, name: str) -> tuple[int, ...]:
    pending = cv.pending.get(name)
    if isinstance(pending, Padded):
        c, h, w = _shape_of(cv, node, pending.source)
        top, bottom, left, right = pending.sides
        return (c, h + top + bottom, w + left + right)
    return cv.value(node, name).shape


def _conv(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    source, pad = node.input[0], None
    waiting = cv.pending.get(source)
    if isinstance(waiting, Padded) and cv.readers[source] == 1:
        pad = waiting
        del cv.pending[source]
        source = pad.source
    shape = cv.value(node, source).shape
    if len(shape) != 3:
        raise ImportRefused(f"{where(node)} needs an N x C x H x W input but gets a flat one")
    c, h, w = shape
    weight, groups = cv.constant(node, 1, "weight"), int(attrs.get("group", 1))
    if weight.ndim != 4 or groups < 1 or weight.shape[1] * groups != c:
        raise ImportRefused(f"{where(node)}: weight {list(weight.shape)} with group {groups} does not fit {c} channels")
    kernel = (int(weight.shape[2]), int(weight.shape[3]))
    padded_hw = (h, w) if pad is None else (h + pad.sides[0] + pad.sides[1], w + pad.sides[2] + pad.sides[3])
    window = cv.window(node, attrs, kernel, padded_hw)
    mode = "zeros"
    if pad is not None:
        folds = pad.sides[0] == pad.sides[1] and pad.sides[2] == pad.sides[3] and not any(window["extra"])
        if folds and (pad.mode == "zeros" or not any(window["padding"])):
            mode = pad.mode
            window["padding"] = [window["padding"][0] + pad.sides[0], window["padding"][1] + pad.sides[2]]
        else:
            cv.pending[node.input[0]] = pad
            source = node.input[0]
    if any(window["extra"]):
        source = _pad_before(cv, node, source, window["extra"])
    bias = cv.constant(node, 2, "bias") if len(node.input) > 2 and node.input[2] else np.zeros(len(weight), np.float32)
    layer = {"type": "conv", "filters": int(len(weight)), "kernel_size": list(kernel), "stride": window["stride"]}
    layer.update(padding=window["padding"], dilation=window["dilation"])
    if groups != 1:
        layer["groups"] = groups
    if mode != "zeros":
        layer["padding_mode"] = mode
    made = cv.emit(node, layer, [source], {"weight": weight, "bias": bias.reshape(len(weight))})
    cv.conv_inputs[made.ref] = (h, w)
    cv.report.append(f"{where(node)} → {made.ref}")


def _pad_before(cv: Converter, node: onnx.NodeProto, source: str, sides: tuple[int, int, int, int]) -> str:
    """A zero pad layer of the uneven part of a window's padding (SAME_UPPER's extra row), before it."""
    carrier = onnx.helper.make_node("Pad", [source], [f"{node.output[0]}/uneven"], name=f"{node.name}/uneven")
    cv.readers[f"{node.output[0]}/uneven"] = 1
    made = cv.emit(carrier, {"type": "pad", "padding": list(sides)}, [source])
    cv.report.append(f"{where(node)} pads unevenly: {list(sides)} (top, bottom, left, right) → {made.ref}")
    return str(carrier.output[0])


def _pool(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    shape = cv.value(node, node.input[0]).shape
    if len(shape) != 3:
        raise ImportRefused(f"{where(node)} needs an N x C x H x W input but gets a flat one")
    kernel = tuple(int(k) for k in attrs.get("kernel_shape", ()))
    if len(kernel) != 2:
        raise ImportRefused(f"{where(node)} needs a 2-D kernel_shape")
    window = cv.window(node, attrs, (kernel[0], kernel[1]), shape[1:])
    if any(window["padding"]) or any(window["extra"]):
        raise ImportRefused(f"{where(node)} pads its input; convscope's pooling layers take no padding")
    if any(d != 1 for d in window["dilation"]):
        raise ImportRefused(f"{where(node)} is dilated; convscope's pooling layers are not")
    floor_out = tuple((n - k) // s + 1 for n, k, s in zip(shape[1:], kernel, window["stride"]))
    ceil_out = tuple(-(-(n - k) // s) + 1 for n, k, s in zip(shape[1:], kernel, window["stride"]))
    if attrs.get("ceil_mode", 0) and ceil_out != floor_out:
        raise ImportRefused(f"{where(node)} rounds its output size up (ceil_mode = 1); export with ceil_mode=False")
    kind = "maxpool" if node.op_type == "MaxPool" else "avgpool"
    made = cv.emit(node, {"type": kind, "kernel_size": list(kernel), "stride": window["stride"]}, [node.input[0]])
    cv.report.append(f"{where(node)} → {made.ref}")


def _global_pool(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    made = cv.emit(node, {"type": "globalavgpool"}, [node.input[0]])
    cv.report.append(f"{where(node)} → {made.ref}")


def _flatten(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    if attrs.get("axis", 1) != 1:
        raise ImportRefused(f"{where(node)} flattens from axis {attrs['axis']}; only axis 1 (keep the batch)")
    if _undoes_unsqueeze(cv, node):
        return
    made = cv.value(node, node.input[0])
    if len(made.shape) == 1:
        cv.same(node, node.input[0])
    elif made.nhwc:  # flattened channels last: the units come in H, W, C order
        c, h, w = made.shape
        cv.values[node.input[0]] = replace(made, nhwc=False)
        flat = cv.emit(node, {"type": "flatten"}, [node.input[0]])
        cv.values[node.input[0]] = made
        cv.values[node.output[0]] = replace(flat, hwc_of=(c, h, w))
    else:
        cv.emit(node, {"type": "flatten"}, [node.input[0]])


def _undoes_unsqueeze(cv: Converter, node: onnx.NodeProto) -> bool:
    """A Squeeze, Flatten or Reshape of an Unsqueeze's output: the value before the Unsqueeze."""
    pending = cv.pending.get(node.input[0])
    if not isinstance(pending, Unsqueezed):
        return False
    del cv.pending[node.input[0]]
    cv.same(node, pending.source)
    cv.report.append(f"{where(node)} undoes an Unsqueeze: nothing to do")
    return True


def _reshape(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    if _undoes_unsqueeze(cv, node):
        return
    shape = cv.value(node, node.input[0]).shape
    flat = int(np.prod(shape))
    target = cv.constants.get(node.input[1])
    batches = {0, -1, 1} | ({cv.batch} if cv.batch else set())
    if target is not None:
        values = [int(v) for v in np.asarray(target).ravel()]
        fine = len(values) == 2 and values[0] in batches and values[1] in (-1, flat)
    else:
        inferred = cv.shapes.get(node.output[0])
        fine = inferred is not None and len(inferred) == 2 and inferred[1] in (None, flat)
        fine = fine or _batch_then_rest(cv, node.input[1], flat)
    if not fine:
        raise ImportRefused(f"{where(node)} reshapes to something other than (batch, -1): only flattening is supported")
    _flatten(cv, node, {})
    cv.report.append(f"{where(node)} read as a flatten")


def _batch_then_rest(cv: Converter, target: str, flat: int) -> bool:
    """Whether a computed target shape is PyTorch's ``(x.size(0), -1)``: a Concat of something (the batch,
    from a Shape) and the constant -1 (or the flat size)."""
    maker = cv.makers.get(target)
    if maker is None or maker.op_type != "Concat" or len(maker.input) != 2:
        return False
    rest = cv.constants.get(maker.input[1])
    return rest is not None and rest.size == 1 and int(rest.ravel()[0]) in (-1, flat)


def _linear(cv: Converter, node: onnx.NodeProto, weight: np.ndarray, bias: np.ndarray) -> None:
    source = cv.value(node, node.input[0])
    shape = source.shape
    if len(shape) != 1:
        raise ImportRefused(f"{where(node)} needs a flat input; flatten before it")
    if weight.ndim != 2 or weight.shape[1] != shape[0]:
        raise ImportRefused(f"{where(node)}: weight {list(weight.shape)} does not fit {shape[0]} inputs")
    if source.hwc_of is not None:  # the file's units in H, W, C order; the engine's flatten gives C, H, W
        c, h, w = source.hwc_of
        engine_index = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()
        reordered = np.empty_like(weight)
        reordered[:, engine_index] = weight
        weight = reordered
        cv.values[node.input[0]] = replace(source, hwc_of=None)
    params = {"weight": weight, "bias": np.broadcast_to(bias, (len(weight),))}
    made = cv.emit(node, {"type": "linear", "units": int(len(weight))}, [node.input[0]], params)
    cv.values[node.input[0]] = source
    cv.report.append(f"{where(node)} → {made.ref}" + (" (its inputs reordered from H, W, C)" if source.hwc_of else ""))


def _gemm(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    if attrs.get("transA", 0):
        raise ImportRefused(f"{where(node)} transposes its input (transA = 1); only transB is supported")
    weight = cv.constant(node, 1, "weight")
    weight = weight if attrs.get("transB", 0) else weight.T
    bias = cv.constant(node, 2, "bias") if len(node.input) > 2 and node.input[2] else np.zeros(1, np.float32)
    _linear(cv, node, attrs.get("alpha", 1.0) * weight, attrs.get("beta", 1.0) * bias.ravel())


def _matmul(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    if node.input[0] in cv.constants:
        raise ImportRefused(f"{where(node)} multiplies a constant by the data; only data x weight is supported")
    _linear(cv, node, cv.constant(node, 1, "weight").T, np.zeros(1, np.float32))


def _add(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    data = cv.data_inputs(node)
    if len(data) == 2:
        made = cv.emit(node, {"type": "add"}, data)
        cv.report.append(f"{where(node)} → {made.ref}: two paths added")
        return
    if len(data) == 1 and _prepares_input(cv, node, data[0]):
        return
    target = cv.foldable(node, data[0], ("conv", "linear")) if len(data) == 1 else None
    if target is None:
        raise ImportRefused(f"{where(node)} adds a constant to something other than a conv or linear layer's output")
    bias = cv.constant(node, 1 if node.input[0] == data[0] else 0, "bias")
    units = len(cv.params[f"{target}.bias"])
    per_unit = (units,) + (1, 1) * (cv.layers[-1]["type"] == "conv")
    if bias.size != 1 and bias.shape[-len(per_unit) :] != per_unit or bias.size not in (1, units):
        raise ImportRefused(f"{where(node)} adds a {list(bias.shape)} constant, which is not a bias of {units}")
    cv.params[f"{target}.bias"] = cv.params[f"{target}.bias"] + bias.reshape(-1)
    cv.same(node, data[0])
    cv.report.append(f"{where(node)} added to {target}'s bias")


def _batch_norm(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    if attrs.get("training_mode", 0):
        raise ImportRefused(f"{where(node)} is in training mode; export the model in eval mode")
    gamma, beta, mean, var = (cv.constant(node, k, w) for k, w in enumerate(("scale", "B", "mean", "var"), 1))
    eps = float(attrs.get("epsilon", 1e-5))
    if not np.all(var + eps > 0):
        raise ImportRefused(f"{where(node)}: a variance plus epsilon is not positive; the statistics are damaged")
    target = cv.foldable(node, node.input[0], ("conv", "linear"))
    if target is None:
        params = {"weight": gamma, "bias": beta, "running_mean": mean, "running_var": var}
        made = cv.emit(node, {"type": "batchnorm", "eps": eps}, [node.input[0]], params)
        cv.report.append(f"{where(node)} → {made.ref}")
        return
    scale = gamma / np.sqrt(var + eps)
    weight = cv.params[f"{target}.weight"]
    if scale.shape != (len(weight),):
        raise ImportRefused(f"{where(node)} normalises {scale.size} channels but {target} has {len(weight)}")
    cv.params[f"{target}.weight"] = (weight * scale.reshape(-1, *([1] * (weight.ndim - 1)))).astype(np.float32)
    cv.params[f"{target}.bias"] = ((cv.params[f"{target}.bias"] - mean) * scale + beta).astype(np.float32)
    cv.same(node, node.input[0])
    cv.report.append(
        f"BatchNormalization {node.name or node.output[0]!r} after {target} folded into {target}'s weights"
    )


def _dropout(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    ratio = attrs.get("ratio", 0.5)
    if len(node.input) > 1 and node.input[1]:
        ratio = float(np.asarray(cv.constants[node.input[1]]).ravel()[0])
    if cv.layers and 0 <= ratio < 1:
        cv.emit(node, {"type": "dropout", "rate": round(float(ratio), 4)}, [node.input[0]])
    else:
        cv.same(node, node.input[0])
        cv.report.append(f"{where(node)} dropped: it does nothing when the model is used")


def _pad(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    """A Pad of height and width: kept aside, for the conv after it to fold or else a pad layer."""
    mode = PAD_MODES.get(str(attrs.get("mode", "constant")))
    given = cv.constants.get(node.input[1]) if len(node.input) > 1 and node.input[1] else attrs.get("pads", [])
    pads = [int(v) for v in np.asarray(given).ravel()]
    value = cv.constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    fine = len(pads) == 8 and pads[0] == pads[1] == pads[4] == pads[5] == 0 and min(pads) >= 0
    if mode is None or not fine or (value is not None and np.any(value != 0)) or len(node.input) > 3:
        raise ImportRefused(
            f"{where(node)} is only supported padding height and width (with zeros, reflect, edge or wrap)"
        )
    cv.value(node, node.input[0])
    cv.pending[node.output[0]] = Padded(node.input[0], (pads[2], pads[6], pads[3], pads[7]), mode)


def _slice(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    """A Slice of one axis with constant bounds: kept aside, for the Concat of circular padding."""
    bounds = [cv.constants.get(name) for name in node.input[1:4]]
    if len(node.input) < 4 or any(b is None or np.asarray(b).size != 1 for b in bounds):
        raise ImportRefused(f"{where(node)} is only supported as part of circular padding (a Slice of one axis)")
    start, stop, axis = (int(np.asarray(b).ravel()[0]) for b in bounds)
    cv.pending[node.output[0]] = Sliced(node.input[0], axis, start, stop)


def _concat(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    axis = int(attrs.get("axis", 1))
    if axis == 1:
        made = cv.emit(node, {"type": "concat"}, list(node.input))
        cv.report.append(f"{where(node)} → {made.ref}: channels stacked")
        return
    parts = [cv.pending.get(name) for name in node.input]
    slices = [p for p in parts if isinstance(p, Sliced)]
    middle = [name for name, p in zip(node.input, parts) if not isinstance(p, Sliced)]
    if axis not in (2, 3) or len(middle) != 1 or any(s.source != middle[0] or s.axis != axis for s in slices):
        raise ImportRefused(f"{where(node)} concatenates along axis {axis}; only channels (1), or circular padding")
    source = middle[0]
    size = _shape_of(cv, node, source)[axis - 1]
    before = next((size - s.start for s in slices if s.stop == size and parts[0] is s), 0)
    after = next((s.stop for s in slices if s.start == 0 and parts[-1] is s), 0)
    if before + after != sum(s.stop - s.start for s in slices):
        raise ImportRefused(f"{where(node)} is not circular padding: its Slices do not wrap the edges around")
    for name in node.input:
        if name != source:
            cv.pending.pop(name, None)
    inner = cv.pending.pop(source, None)
    sides = [0, 0, 0, 0] if not isinstance(inner, Padded) else list(inner.sides)
    origin = source if not isinstance(inner, Padded) else inner.source
    if isinstance(inner, Padded) and inner.mode != "circular":
        raise ImportRefused(f"{where(node)} wraps around a {inner.mode} Pad; pad one way only")
    offset = 0 if axis == 2 else 2
    sides[offset], sides[offset + 1] = sides[offset] + before, sides[offset + 1] + after
    cv.pending[node.output[0]] = Padded(origin, (sides[0], sides[1], sides[2], sides[3]), "circular")


def _mul(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    """A Mul at the input (its preparation), or by partial convolution's re-weighting ratio right after a
    bias-free, zero-padded Conv."""
    data = cv.data_inputs(node)
    if len(data) == 1 and _prepares_input(cv, node, data[0]):
        return
    target = cv.foldable(node, data[0], ("conv",)) if len(data) == 1 else None
    ratio = cv.constants.get(node.input[1] if node.input[0] == data[0] else node.input[0]) if data else None
    conv = cv.layers[-1] if target else None
    if target is None or conv is None or conv.get("padding_mode", "zeros") != "zeros" or ratio is None:
        raise ImportRefused(f"{where(node)} is only supported as partial convolution's ratio after a Conv")
    if not check_partial_ratio(conv, cv.conv_inputs[target], ratio):
        raise ImportRefused(f"{where(node)} multiplies by something other than partial convolution's ratio")
    if np.any(cv.params[f"{target}.bias"]):
        raise ImportRefused(f"{where(node)}: partial convolution's ratio must come before the bias is added")
    conv["padding_mode"] = "partial"
    cv.same(node, data[0])
    cv.report.append(f"{where(node)} read as {target}'s partial-convolution padding")


def _passes(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    cv.same(node, node.input[0])


def _sub_or_div(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    data = cv.data_inputs(node)
    if len(data) != 1 or node.input[0] != data[0] or not _prepares_input(cv, node, data[0]):
        raise ImportRefused(
            f"{where(node)} is only supported at the input, taking a constant from the pictures or dividing them "
            "by one (their preparation: a mean and a standard deviation a channel)"
        )


def _prepares_input(cv: Converter, node: onnx.NodeProto, data: str) -> bool:
    """A Sub, Div, Mul or Add of a constant (one number, or one a channel) on the input, or on a
    ``normalize`` layer that alone reads it: folded into that layer, ``y = (x − mean) / std``. False when
    ``data`` is not the input's preparation (the caller's other readings apply)."""
    made = cv.values.get(data)
    first = made is not None and (
        made.index == -1 or (made.index == len(cv.layers) - 1 and cv.layers[-1]["type"] == "normalize")
    )
    if made is None or not first or cv.readers[data] != 1 or made.index == -1 and cv.layers:
        return False
    constant = cv.constant(node, 1 if node.input[0] == data else 0, "constant")
    per_channel = _per_channel(node, constant, made)
    if made.index == -1:
        made = cv.emit(node, {"type": "normalize", "mean": [0.0] * made.shape[0], "std": [1.0] * made.shape[0]}, [data])
    else:
        cv.same(node, data)
    layer = cv.layers[-1]
    mean, std = np.asarray(layer["mean"], np.float64), np.asarray(layer["std"], np.float64)
    if node.op_type in ("Mul", "Div") and np.any(per_channel <= 0):
        raise ImportRefused(
            f"{where(node)} scales the input by {per_channel.tolist()}; a preparation scales by positive numbers"
        )
    if node.op_type == "Sub":
        mean = mean + per_channel * std
    elif node.op_type == "Add":
        mean = mean - per_channel * std
    else:
        std = std / per_channel if node.op_type == "Mul" else std * per_channel
    layer["mean"], layer["std"] = [float(v) for v in mean], [float(v) for v in std]
    cv.report.append(
        f"{where(node)} at the input → {made.ref} (mean {_short(layer['mean'])}, std {_short(layer['std'])})"
    )
    return True


def _short(values: list[float]) -> str:
    return str([float(f"{v:.6g}") for v in values])


def _per_channel(node: onnx.NodeProto, constant: np.ndarray, made: Value) -> np.ndarray:
    """A constant that broadcasts over the input as one number per channel: those numbers (C,)."""
    c, h, w = made.shape if len(made.shape) == 3 else (made.shape[0], 1, 1)
    full = (1, h, w, c) if made.nhwc else (1, c, h, w)
    try:
        spread = np.broadcast_to(constant.reshape((1,) * max(0, 4 - constant.ndim) + constant.shape[-4:]), full)
    except ValueError:
        raise ImportRefused(
            f"{where(node)}: a constant of shape {list(constant.shape)} does not fit the input"
        ) from None
    channels = np.moveaxis(spread, 3 if made.nhwc else 1, 0).reshape(c, -1)
    if not np.allclose(channels, channels[:, :1], rtol=1e-6, atol=1e-7):
        raise ImportRefused(
            f"{where(node)} prepares each pixel with its own number (a mean image); convscope takes one number a "
            "channel: export with a per-channel mean (or none)"
        )
    return channels[:, 0].astype(np.float64)


def _transpose(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    """Between channels first and channels last: nothing the engine does (it keeps maps one way); the value
    remembers which way the file holds it."""
    perm = tuple(int(v) for v in attrs.get("perm", ()))
    made = cv.value(node, node.input[0])
    if len(made.shape) != 3 or perm not in ((0, 2, 3, 1), (0, 3, 1, 2)) or (perm == (0, 3, 1, 2)) != made.nhwc:
        raise ImportRefused(
            f"{where(node)} permutes {list(perm)}; convscope takes only transposes between N x C x H x W and "
            "N x H x W x C (Keras's channels-last maps)"
        )
    cv.same(node, node.input[0])
    cv.values[node.output[0]] = replace(made, nhwc=not made.nhwc)
    cv.report.append(f"{where(node)} to channels {'last' if not made.nhwc else 'first'}: folded away")


def _reduce_mean(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    """A mean over height and width: global average pooling (and a flatten when the axes are dropped)."""
    made = cv.value(node, node.input[0])
    given = cv.constants.get(node.input[1]) if len(node.input) > 1 and node.input[1] else attrs.get("axes")
    axes = {int(a) % 4 for a in np.asarray(given if given is not None else [], np.int64).ravel()}
    spatial = {1, 2} if made.nhwc else {2, 3}
    if len(made.shape) != 3 or axes != spatial:
        raise ImportRefused(
            f"{where(node)} averages over axes {sorted(axes)}; only over height and width (global pooling)"
        )
    if made.nhwc:
        cv.values[node.input[0]] = replace(made, nhwc=False)
    pooled = cv.emit(node, {"type": "globalavgpool"}, [node.input[0]])
    cv.values[node.input[0]] = made
    if not attrs.get("keepdims", 1):
        cv.emit(node, {"type": "flatten"}, [node.output[0]])
    elif made.nhwc:
        cv.values[node.output[0]] = replace(cv.values[node.output[0]], nhwc=True)
    cv.report.append(f"{where(node)} over height and width → {pooled.ref} (global average pooling)")


def _squeeze(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    """Dropping the 1 x 1 of a map (after global pooling, or a 1 x 1 conv's scores): a flatten."""
    if _undoes_unsqueeze(cv, node):
        return
    made = cv.value(node, node.input[0])
    if len(made.shape) == 3 and made.shape[1:] == (1, 1):
        _flatten(cv, node, {})
    elif len(made.shape) == 1:
        cv.same(node, node.input[0])
    else:
        raise ImportRefused(f"{where(node)} squeezes a {list(made.shape)} map; only 1 x 1 maps (to units)")


def _unsqueeze(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    cv.value(node, node.input[0])
    cv.pending[node.output[0]] = Unsqueezed(node.input[0])


def _cast(cv: Converter, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
    """A Cast between float types changes nothing the engine keeps (it computes in float32)."""
    to = int(attrs.get("to", 0))
    if to not in FLOAT_CASTS:
        name = onnx.TensorProto.DataType.Name(to) if to in onnx.TensorProto.DataType.values() else f"type {to}"
        raise ImportRefused(f"{where(node)} casts to {name}; only between float types")
    cv.same(node, node.input[0])


HANDLERS = {
    "Conv": _conv,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_pool,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _add,
    "BatchNormalization": _batch_norm,
    "Dropout": _dropout,
    "Identity": _passes,
    "Pad": _pad,
    "Slice": _slice,
    "Concat": _concat,
    "Mul": _mul,
    "Clip": _clip,
    "Sub": _sub_or_div,
    "Div": _sub_or_div,
    "Transpose": _transpose,
    "ReduceMean": _reduce_mean,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Cast": _cast,
}
FLOAT_CASTS = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}
SUPPORTED_OPS = ("Conv", *ACTIVATIONS, *(op for op in HANDLERS if op != "Conv"), "Softmax", "LogSoftmax")
