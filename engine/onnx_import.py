"""An ONNX file -> a convscope network (spec, parameters, and a report of what was converted).

Only a *chain* of layers the engine has comes in: one image input ``N x C x H x W``, then ``Conv``,
``Relu``/``Tanh``/``Sigmoid``, ``MaxPool``/``AveragePool``/``GlobalAveragePool``, ``Flatten`` (or the
``Reshape`` that flattens), ``Gemm`` or ``MatMul`` + ``Add``, with ``BatchNormalization`` folded into the
conv or linear layer before it::

    scale = gamma / sqrt(var + eps)       W' = W * scale (per output channel)
    b' = (b - mean) * scale + beta

``Dropout`` and ``Identity`` are passed through, and a final ``Softmax``/``LogSoftmax`` is dropped (the
app applies its own). Anything else raises :class:`ImportRefused` naming the node and its op. The file is
hostile until proven otherwise: weights stored outside it (external data), shapes that do not match their
bytes, too many nodes, non-float weights and unknown opsets are refused before any array is made.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from engine._checks import pair
from engine.errors import EngineError
from engine.names import MAX_CLASS_NAME, plain_text
from engine.network import Network
from engine.padding import partial_conv_ratio

OLDEST_OPSET = 11
NEWEST_OPSET = onnx.defs.onnx_opset_version()
LAYER_OPS = (
    "Conv",
    "Relu",
    "Tanh",
    "Sigmoid",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Flatten",
    "Reshape",
    "Gemm",
    "MatMul",
    "Add",
    "Dropout",
    "Identity",
    "BatchNormalization",
    "Softmax",
    "LogSoftmax",
    "Pad",
    "Mul",
)
# Nodes that only work out the target shape of a Reshape (PyTorch's ``x.view(x.size(0), -1)``)
SHAPE_OPS = frozenset({"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Constant", "Mul"})
FLOAT_TYPES: dict[int, type[np.generic]] = {
    TensorProto.FLOAT: np.float32,
    TensorProto.DOUBLE: np.float64,
    TensorProto.FLOAT16: np.float16,
}
# constants that are not weights: shapes, axes, a Dropout's training flag
OTHER_TYPES: dict[int, type[np.generic]] = {
    TensorProto.INT64: np.int64,
    TensorProto.INT32: np.int32,
    TensorProto.BOOL: np.bool_,
}
ACTIVATION_TYPES = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid"}
# fixed inputs the engine's logits are stored for at import, to be compared with any ONNX runtime
CHECK_SEED = 20180412


class ImportRefused(EngineError):
    """An ONNX file convscope cannot (or will not) take; the message names what and says what is allowed."""


@dataclass(frozen=True)
class Limits:
    """How big an imported model may be: nodes in its graph, and its input's sides."""

    max_nodes: int = 500
    sides: tuple[int, int] = (8, 64)


@dataclass
class Imported:
    """What an import made: the network, and one line per conversion that was not one-to-one."""

    network: Network
    report: list[str] = field(default_factory=list)


def check_inputs(input_shape: tuple[int, int, int]) -> np.ndarray:
    """Three fixed inputs (3, C, H, W) in [0, 1]: black, mid grey, and seeded noise."""
    noise = np.random.default_rng(CHECK_SEED).random(input_shape, dtype=np.float32)
    return np.stack([np.zeros(input_shape, np.float32), np.full(input_shape, 0.5, np.float32), noise])


def import_onnx(data: bytes, limits: Limits = Limits()) -> Imported:
    """Parses and converts an ONNX file; :class:`ImportRefused` for anything outside the supported chain."""
    model = _parse(data)
    graph = model.graph
    if len(graph.node) > limits.max_nodes:
        raise ImportRefused(
            f"the graph has {len(graph.node)} nodes; an imported model has at most {limits.max_nodes} "
            "(a small CNN needs a few dozen)"
        )
    _check_opset(model)
    constants = _constants(graph)
    converter = _Converter(graph, constants, _inferred_shapes(model))
    input_shape = converter.input_shape(limits.sides)
    converter.walk()
    classes = converter.classes()
    spec = {"input": list(input_shape), "classes": classes, "layers": converter.layers}
    labels = _labels(model, classes)
    try:
        network = Network(spec, converter.params, {"labels": labels} if labels else {})
    except EngineError as error:
        raise ImportRefused(f"the converted network does not build: {error}") from None
    network.meta["import_check"] = {"seed": CHECK_SEED, "logits": _check_logits(network)}
    return Imported(network, converter.report)


def _check_logits(network: Network) -> list[list[float]]:
    logits = network.forward(check_inputs(network.input_shape))
    return [[float(v) for v in row] for row in logits]


def _parse(data: bytes) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception:  # protobuf's DecodeError, or a recursion-limit error for a nesting bomb
        raise ImportRefused("the file is not an ONNX model (it does not parse as one; is it truncated?)") from None
    if not model.graph.node:
        raise ImportRefused("the file holds no ONNX graph (no nodes): is it an ONNX model?")
    tensors = [*model.graph.initializer]
    tensors += [a.t for n in model.graph.node for a in n.attribute if a.type == onnx.AttributeProto.TENSOR]
    for tensor in tensors:
        if tensor.data_location == TensorProto.EXTERNAL or tensor.external_data:
            raise ImportRefused(
                f"tensor {tensor.name!r} is stored as external data (in another file); convscope only takes "
                "models whose weights are inside the .onnx file (save with save_as_external_data=False)"
            )
    if any(len(g.node) for n in model.graph.node for a in n.attribute for g in [a.g, *a.graphs]):
        raise ImportRefused("the graph has subgraphs (If, Loop or Scan): only a chain of layers is supported")
    return model


def _check_opset(model: onnx.ModelProto) -> None:
    for entry in model.opset_import:
        if entry.domain not in ("", "ai.onnx"):
            raise ImportRefused(f"operator set {entry.domain!r} is not supported: only the standard ONNX operators")
        if not OLDEST_OPSET <= entry.version <= NEWEST_OPSET:
            raise ImportRefused(
                f"opset {entry.version} is not supported; export with an opset from {OLDEST_OPSET} to {NEWEST_OPSET}"
            )


def _to_array(tensor: TensorProto) -> np.ndarray:
    """A tensor's values, after checking its type and that its declared shape matches its bytes."""
    name = tensor.name or "a constant"
    dtype = FLOAT_TYPES.get(tensor.data_type) or OTHER_TYPES.get(tensor.data_type)
    if dtype is None:
        kind = TensorProto.DataType.Name(tensor.data_type)
        raise ImportRefused(f"tensor {name!r} holds {kind}; weights must be float (float32, float16 or float64)")
    count = int(np.prod(tensor.dims, dtype=np.int64)) if tensor.dims else 1
    if any(d < 0 for d in tensor.dims) or count > 1 << 28:
        raise ImportRefused(f"tensor {name!r} declares the shape {list(tensor.dims)}, which is not a weight's")
    itemsize = np.dtype(dtype).itemsize
    stored = len(tensor.raw_data) // itemsize if tensor.raw_data else _field_count(tensor)
    if stored != count or (tensor.raw_data and len(tensor.raw_data) != count * itemsize):
        raise ImportRefused(
            f"tensor {name!r} declares the shape {list(tensor.dims)} ({count} values) but holds {stored}: "
            "the file is damaged"
        )
    try:
        return np.asarray(numpy_helper.to_array(tensor))
    except Exception:
        raise ImportRefused(f"tensor {name!r} cannot be read: the file is damaged") from None


def _field_count(tensor: TensorProto) -> int:
    if tensor.data_type == TensorProto.INT64:
        return len(tensor.int64_data)
    if tensor.data_type == TensorProto.DOUBLE:
        return len(tensor.double_data)
    if tensor.data_type in (TensorProto.FLOAT16, TensorProto.INT32, TensorProto.BOOL):
        return len(tensor.int32_data)
    return len(tensor.float_data)


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers and the outputs of Constant nodes, by name."""
    constants = {t.name: _to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type != "Constant":
            continue
        attribute = node.attribute[0] if len(node.attribute) == 1 else None
        if attribute is None:
            raise ImportRefused(f"node {node.name!r} (Constant) needs exactly one value")
        if attribute.name == "value":
            constants[node.output[0]] = _to_array(attribute.t)
        elif attribute.name in ("value_int", "value_ints", "value_float", "value_floats"):
            constants[node.output[0]] = np.asarray(onnx.helper.get_attribute_value(attribute))
        else:
            raise ImportRefused(f"node {node.name!r} (Constant) holds a {attribute.name}, not a number")
    return constants


def _inferred_shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    """Every value's shape as ONNX's shape inference works it out (None for a symbolic dimension)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as error:
        raise ImportRefused(f"the graph's shapes do not check out: {str(error)[:300]}") from None
    shapes: dict[str, list[int | None]] = {}
    for value in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
        if value.type.tensor_type.HasField("shape"):
            dims = value.type.tensor_type.shape.dim
            shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return shapes


def _labels(model: onnx.ModelProto, classes: int) -> list[str] | None:
    """The class names in the file's ``metadata_props["labels"]`` (a JSON list, or comma-separated)."""
    for prop in model.metadata_props:
        if prop.key == "labels":
            try:
                names = json.loads(prop.value)
            except ValueError:
                names = prop.value.split(",")
            if isinstance(names, list) and len(names) == classes:
                return [plain_text(str(n), MAX_CLASS_NAME) or str(k) for k, n in enumerate(names)]
    return None


def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _where(node: onnx.NodeProto) -> str:
    return f"node {node.name or node.output[0]!r} ({node.op_type})"


class _Converter:
    """Walks the graph's chain from its input to its output, one layer (or fold) per node."""

    def __init__(
        self, graph: onnx.GraphProto, constants: dict[str, np.ndarray], shapes: dict[str, list[int | None]]
    ) -> None:
        self.graph = graph
        self.nodes = list(graph.node)  # one list: protobuf makes a new wrapper object on each access
        self.constants = constants
        self.shapes = shapes
        self.layers: list[dict[str, Any]] = []
        self.params: dict[str, np.ndarray] = {}
        self.report: list[str] = []
        self.shape: tuple[int, ...] = ()  # the current value's shape without the batch
        self.counters: dict[str, int] = {}
        self.handlers: dict[str, Callable[[onnx.NodeProto, dict[str, Any]], None]] = {
            "Conv": self._conv,
            "MaxPool": self._pool,
            "AveragePool": self._pool,
            "GlobalAveragePool": self._global_pool,
            "Flatten": self._flatten,
            "Reshape": self._reshape,
            "Gemm": self._gemm,
            "MatMul": self._matmul,
            "Add": self._add,
            "BatchNormalization": self._batch_norm,
            "Dropout": self._dropout,
            "Identity": lambda node, attrs: None,
            "Pad": self._pad,
            "Mul": self._partial_ratio,
        }
        self.pad: tuple[str, list[int]] | None = None  # a Pad node's mode and pads, for the Conv after it

    # -- the graph's ends --------------------------------------------------------------------------------

    def input_shape(self, sides: tuple[int, int]) -> tuple[int, int, int]:
        inputs = [v for v in self.graph.input if v.name not in self.constants]
        if len(inputs) != 1:
            names = ", ".join(repr(v.name) for v in inputs) or "none"
            raise ImportRefused(f"the model must have one image input; it has {len(inputs)} ({names})")
        if len(self.graph.output) != 1:
            raise ImportRefused(f"the model must have one output (class scores); it has {len(self.graph.output)}")
        value = inputs[0]
        if value.type.tensor_type.elem_type != TensorProto.FLOAT:
            raise ImportRefused(f"input {value.name!r} must be float32 pixels")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
        if len(dims) != 4 or None in dims[1:]:
            shown = ["N" if d is None else d for d in dims]
            raise ImportRefused(
                f"input {value.name!r} has the shape {shown}; it must be N x C x H x W with C, H, W fixed"
            )
        c, h, w = (int(d) for d in dims[1:])  # type: ignore[arg-type]
        lo, hi = sides
        if c not in (1, 3) or not (lo <= h <= hi and lo <= w <= hi):
            raise ImportRefused(
                f"input {value.name!r} is {c} x {h} x {w}; convscope takes 1 or 3 channels and sides from {lo} to {hi}"
            )
        self.input_name, self.output_name = value.name, self.graph.output[0].name
        self.shape = (c, h, w)
        return (c, h, w)

    def classes(self) -> int:
        if len(self.shape) != 1 or self.shape[0] < 2:
            raise ImportRefused(
                "the output must be class scores (N x K, K >= 2); the chain ends with "
                f"N x {' x '.join(map(str, self.shape))}"
            )
        return self.shape[0]

    # -- the walk ------------------------------------------------------------------------------------

    def walk(self) -> None:
        shape_nodes = self._shape_nodes()
        chain = [n for n in self.nodes if n.op_type != "Constant" and id(n) not in shape_nodes]
        self.current, visited = self.input_name, set()
        while self.current != self.output_name:
            consumers = [n for n in chain if self.current in n.input]
            if not consumers:
                raise ImportRefused(f"value {self.current!r} leads nowhere: the output is not reached from the input")
            if len(consumers) > 1:
                names = " and ".join(_where(n) for n in consumers[:2])
                raise ImportRefused(
                    f"value {self.current!r} feeds {names}: only a chain of layers is supported, not branches"
                )
            node = consumers[0]
            self._check_inputs(node)
            if node.op_type in ("Softmax", "LogSoftmax"):
                if node.output[0] != self.output_name:
                    raise ImportRefused(f"{_where(node)} is only supported as the last node")
                self.report.append(f"final {node.op_type} dropped: the app applies its own softmax")
            else:
                self._convert(node)
            self.current = node.output[0]
            visited.add(id(node))
        stray = [n for n in chain if id(n) not in visited]
        if stray:
            raise ImportRefused(f"{_where(stray[0])} is not on the path from the input to the output (a branch?)")

    def _shape_nodes(self) -> set[int]:
        """Nodes whose outputs only feed a Reshape's target shape (or other such nodes)."""
        found: set[int] = set()
        users: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
        for node in self.nodes:
            for slot, name in enumerate(node.input):
                users.setdefault(name, []).append((node, slot))
        for node in reversed(self.nodes):
            if node.op_type not in SHAPE_OPS or not node.output:
                continue
            uses = [u for out in node.output for u in users.get(out, [])]
            if uses and all((u.op_type == "Reshape" and slot == 1) or id(u) in found for u, slot in uses):
                found.add(id(node))
        return found

    def _check_inputs(self, node: onnx.NodeProto) -> None:
        for slot, name in enumerate(node.input):
            computed_shape = node.op_type == "Reshape" and slot == 1
            if name and name != self.current and name not in self.constants and not computed_shape:
                raise ImportRefused(
                    f"{_where(node)} joins two paths ({self.current!r} and {name!r}): only a chain of layers is "
                    "supported, "
                    "not residual connections"
                )
        if node.op_type not in self.handlers and node.op_type not in (*ACTIVATION_TYPES, "Softmax", "LogSoftmax"):
            raise ImportRefused(f"{_where(node)} is not supported; supported ops: {', '.join(LAYER_OPS)}")
        extra = [o for o in node.output[1:] if o and any(o in n.input for n in self.nodes)]
        if extra:
            raise ImportRefused(f"{_where(node)}: its output {extra[0]!r} is used; only its first output can be")

    def _convert(self, node: onnx.NodeProto) -> None:
        attrs = _attributes(node)
        if self.pad is not None and node.op_type != "Conv":
            raise ImportRefused(f"a Pad node is only supported right before a Conv, not before {_where(node)}")
        if node.op_type in ACTIVATION_TYPES:
            self._need_owner(node)
            self.layers.append({"type": ACTIVATION_TYPES[node.op_type]})
            return
        self.handlers[node.op_type](node, attrs)

    # -- layers ---------------------------------------------------------------------------------------

    def _name(self, prefix: str) -> str:
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return f"{prefix}{self.counters[prefix]}"

    def _need_owner(self, node: onnx.NodeProto) -> None:
        if not any(layer["type"] in ("conv", "maxpool", "avgpool", "linear") for layer in self.layers):
            raise ImportRefused(
                f"{_where(node)} comes before any conv, pool or linear layer, which convscope cannot show"
            )

    def _constant(self, node: onnx.NodeProto, slot: int, what: str) -> np.ndarray:
        if len(node.input) <= slot or not node.input[slot]:
            raise ImportRefused(f"{_where(node)} has no {what}")
        value = self.constants.get(node.input[slot])
        if value is None:
            raise ImportRefused(f"{_where(node)}: its {what} must be a constant (an initializer)")
        if value.dtype.kind != "f":
            raise ImportRefused(f"{_where(node)}: its {what} holds {value.dtype}, not float weights")
        return value.astype(np.float32)

    def _window(self, node: onnx.NodeProto, attrs: dict[str, Any], kernel: tuple[int, int]) -> dict[str, Any]:
        """Stride, symmetric padding and dilation of a Conv or pool node, in the spec's terms."""
        strides = tuple(attrs.get("strides", (1, 1)))
        dilations = tuple(attrs.get("dilations", (1, 1)))
        pads = list(attrs.get("pads", (0, 0, 0, 0)))
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        if len(strides) != 2 or len(dilations) != 2:
            raise ImportRefused(f"{_where(node)} is not a 2-D window (kernel, strides or pads of another length)")
        for what, values, least in (("kernel_shape", kernel, 1), ("strides", strides, 1), ("dilations", dilations, 1)):
            if any(int(v) < least for v in values):
                raise ImportRefused(f"{_where(node)}: {what} {list(values)}; each must be at least {least}")
        if any(int(p) < 0 for p in pads):
            raise ImportRefused(f"{_where(node)}: pads {pads}; padding cannot be negative")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for axis in (0, 1):
                size = self.shape[1 + axis]
                out = -(-size // strides[axis])
                total = max(0, (out - 1) * strides[axis] + dilations[axis] * (kernel[axis] - 1) + 1 - size)
                pads.append(total)
            if any(p % 2 for p in pads):
                raise ImportRefused(f"{_where(node)}: auto_pad {auto} pads unevenly here; export with explicit pads")
            pads = [pads[0] // 2, pads[1] // 2, pads[0] // 2, pads[1] // 2]
        if len(pads) != 4:
            raise ImportRefused(f"{_where(node)} is not a 2-D window (kernel, strides or pads of another length)")
        if pads[:2] != pads[2:]:
            raise ImportRefused(
                f"{_where(node)} has asymmetric pads {pads} (top, left, bottom, right); convscope pads every side "
                "alike: export with padding that is the same on both sides"
            )
        return {
            "stride": [int(s) for s in strides],
            "padding": [int(p) for p in pads[:2]],
            "dilation": [int(d) for d in dilations],
        }

    def _after(self, layer: dict[str, Any], output: tuple[int, ...]) -> None:
        self.layers.append(layer)
        self.shape = output

    def _volume(self, node: onnx.NodeProto) -> tuple[int, int, int]:
        if len(self.shape) != 3:
            raise ImportRefused(f"{_where(node)} needs an N x C x H x W input but gets a flat one")
        c, h, w = self.shape
        return c, h, w

    def _conv(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
        c, h, w = self._volume(node)
        self.conv_input = (h, w)
        weight = self._constant(node, 1, "weight")
        if attrs.get("group", 1) != 1:
            raise ImportRefused(f"{_where(node)} is a grouped convolution (group = {attrs['group']}); only group = 1")
        if weight.ndim != 4 or weight.shape[1] != c:
            raise ImportRefused(f"{_where(node)}: weight {list(weight.shape)} does not fit an input of {c} channels")
        kernel = (int(weight.shape[2]), int(weight.shape[3]))
        window = self._window(node, attrs, kernel)
        mode = "zeros"
        if self.pad is not None:
            mode, pads = self.pad
            if any(window["padding"]) and mode != "zeros":
                raise ImportRefused(f"{_where(node)} pads again after a {mode} Pad; pad once")
            window["padding"] = [a + b for a, b in zip(window["padding"], pads)]
            self.pad = None
        bias = self._constant(node, 2, "bias") if len(node.input) > 2 and node.input[2] else np.zeros(len(weight))
        name = self._name("conv")
        self.params[f"{name}.weight"] = weight
        self.params[f"{name}.bias"] = bias.astype(np.float32).reshape(len(weight))
        out = tuple(
            (n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, k, s, p, d in zip((h, w), kernel, window["stride"], window["padding"], window["dilation"])
        )
        layer = {"type": "conv", "filters": int(len(weight)), "kernel_size": list(kernel), **window}
        if mode != "zeros":
            layer["padding_mode"] = mode
        self._after(layer, (int(len(weight)), *out))
        self.report.append(f"{_where(node)} → {name}")

    def _pool(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
        c, h, w = self._volume(node)
        kind = "maxpool" if node.op_type == "MaxPool" else "avgpool"
        kernel = tuple(int(k) for k in attrs.get("kernel_shape", ()))
        if len(kernel) != 2:
            raise ImportRefused(f"{_where(node)} needs a 2-D kernel_shape")
        window = self._window(node, attrs, (kernel[0], kernel[1]))
        if any(window["padding"]):
            raise ImportRefused(
                f"{_where(node)} pads its input ({window['padding']}); convscope's pooling layers take no padding"
            )
        if any(d != 1 for d in window["dilation"]):
            raise ImportRefused(f"{_where(node)} is dilated; convscope's pooling layers are not")
        out = tuple((n - k) // s + 1 for n, k, s in zip((h, w), kernel, window["stride"]))
        if attrs.get("ceil_mode", 0):
            ceiled = tuple(-(-(n - k) // s) + 1 for n, k, s in zip((h, w), kernel, window["stride"]))
            if ceiled != out:
                raise ImportRefused(
                    f"{_where(node)} rounds its output size up (ceil_mode = 1); export with ceil_mode=False"
                )
        name = self._name("pool")
        layer = {"type": kind, "kernel_size": list(kernel), "stride": window["stride"]}
        self._after(layer, (c, *out))
        self.report.append(f"{_where(node)} → {name}")

    def _global_pool(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
        c, h, w = self._volume(node)
        name = self._name("pool")
        self._after({"type": "avgpool", "kernel_size": [h, w]}, (c, 1, 1))
        self.report.append(f"{_where(node)} → {name}: an average pool over the whole {h}x{w} map")

    def _flatten(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
        if attrs.get("axis", 1) != 1:
            raise ImportRefused(f"{_where(node)} flattens from axis {attrs['axis']}; only axis 1 (keep the batch)")
        if len(self.shape) > 1:
            self._after({"type": "flatten"}, (int(np.prod(self.shape)),))

    def _reshape(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
        flat = int(np.prod(self.shape))
        target = self.constants.get(node.input[1])
        if target is not None:
            values = [int(v) for v in np.asarray(target).ravel()]
            ok = len(values) == 2 and values[0] in (0, -1, 1) and values[1] in (-1, flat)
        else:
            inferred = self.shapes.get(node.output[0])
            ok = inferred is not None and len(inferred) == 2 and inferred[1] in (None, flat)
        if not ok:
            raise ImportRefused(
                f"{_where(node)} reshapes to something other than (batch, -1): only flattening is supported"
            )
        if len(self.shape) > 1:
            self._after({"type": "flatten"}, (flat,))
        self.report.append(f"{_where(node)} read as a flatten")

    def _linear(self, node: onnx.NodeProto, weight: np.ndarray, bias: np.ndarray) -> None:
        if len(self.shape) != 1:
            raise ImportRefused(f"{_where(node)} needs a flat input; flatten before it")
        if weight.ndim != 2 or weight.shape[1] != self.shape[0]:
            raise ImportRefused(f"{_where(node)}: weight {list(weight.shape)} does not fit {self.shape[0]} inputs")
        name = self._name("fc")
        self.params[f"{name}.weight"] = weight.astype(np.float32)
        self.params[f"{name}.bias"] = np.broadcast_to(bias, (len(weight),)).astype(np.float32)
        self._after({"type": "linear", "units": int(len(weight))}, (int(len(weight)),))
        self.report.append(f"{_where(node)} → {name}")

    def _gemm(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
        if attrs.get("transA", 0):
            raise ImportRefused(f"{_where(node)} transposes its input (transA = 1); only transB is supported")
        weight = self._constant(node, 1, "weight")
        weight = weight if attrs.get("transB", 0) else weight.T
        bias = self._constant(node, 2, "bias") if len(node.input) > 2 and node.input[2] else np.zeros(1, np.float32)
        self._linear(node, attrs.get("alpha", 1.0) * weight, attrs.get("beta", 1.0) * bias.ravel())

    def _matmul(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
        if node.input[0] != self.current:
            raise ImportRefused(f"{_where(node)} multiplies a constant by the data; only data x weight is supported")
        weight = self._constant(node, 1, "weight")
        self._linear(node, weight.T, np.zeros(1, np.float32))

    def _last_weighted(self, node: onnx.NodeProto) -> str:
        """The conv or linear layer just before ``node`` (no activation between), which a fold changes."""
        last = self.layers[-1] if self.layers else None
        if last is None or last["type"] not in ("conv", "linear"):
            raise ImportRefused(
                f"{_where(node)} does not follow a Conv, Gemm or MatMul directly, so it cannot be folded into one"
            )
        prefix = "conv" if last["type"] == "conv" else "fc"
        return f"{prefix}{self.counters[prefix]}"

    def _add(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
        slot = 1 if node.input[0] == self.current else 0
        name = self._last_weighted(node)
        bias = self._constant(node, slot, "bias")
        units = len(self.params[f"{name}.bias"])
        # broadcast over (N, F, H, W) or (N, F): one value, or one per unit on the channel axis
        per_unit = (units,) + (1, 1) * (len(self.shape) == 3)
        if bias.size != 1 and bias.shape[-len(per_unit) :] != per_unit or bias.size not in (1, units):
            raise ImportRefused(f"{_where(node)} adds a {list(bias.shape)} constant, which is not a bias of {units}")
        self.params[f"{name}.bias"] = self.params[f"{name}.bias"] + bias.reshape(-1)
        self.report.append(f"{_where(node)} added to {name}'s bias")

    def _batch_norm(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
        if attrs.get("training_mode", 0):
            raise ImportRefused(f"{_where(node)} is in training mode; export the model in eval mode")
        name = self._last_weighted(node)
        gamma, beta, mean, var = (self._constant(node, k, w) for k, w in enumerate(("scale", "B", "mean", "var"), 1))
        scale = gamma / np.sqrt(var + attrs.get("epsilon", 1e-5))
        weight = self.params[f"{name}.weight"]
        if scale.shape != (len(weight),):
            raise ImportRefused(f"{_where(node)} normalises {scale.size} channels but {name} has {len(weight)}")
        self.params[f"{name}.weight"] = (weight * scale.reshape(-1, *([1] * (weight.ndim - 1)))).astype(np.float32)
        self.params[f"{name}.bias"] = ((self.params[f"{name}.bias"] - mean) * scale + beta).astype(np.float32)
        self.report.append(
            f"BatchNormalization {node.name or node.output[0]!r} after {name} folded into {name}'s weights"
        )

    def _dropout(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
        ratio = attrs.get("ratio", 0.5)
        if len(node.input) > 1 and node.input[1]:
            ratio = float(np.asarray(self.constants[node.input[1]]).ravel()[0])
        if any(layer["type"] in ("conv", "maxpool", "avgpool", "linear") for layer in self.layers) and 0 <= ratio < 1:
            self.layers.append({"type": "dropout", "rate": round(float(ratio), 4)})
        else:
            self.report.append(f"{_where(node)} dropped: it does nothing when the model is used")

    def _pad(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
        """A Pad right before a Conv: its padding, with reflect / edge / zeros as the conv's padding mode."""
        mode = attrs.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        modes = {"constant": "zeros", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}
        pads = [int(v) for v in np.asarray(self.constants.get(node.input[1], attrs.get("pads", []))).ravel()]
        value = self.constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        even = len(pads) == 8 and pads[:4] == pads[4:] and pads[0] == pads[1] == 0 and min(pads) >= 0
        if mode not in modes or not even or (value is not None and np.any(value != 0)) or len(node.input) > 3:
            raise ImportRefused(
                f"{_where(node)} is only supported as the same padding of height and width on both sides, "
                "with zeros, reflect or edge, right before a Conv"
            )
        self.pad = (modes[mode], pads[2:4])

    def _partial_ratio(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> None:
        """A Mul by partial convolution's re-weighting ratio right after a bias-free, zero-padded Conv."""
        last = self.layers[-1] if self.layers else None
        ratio = self.constants.get(node.input[1] if node.input[0] == self.current else node.input[0])
        if last is None or last["type"] != "conv" or last.get("padding_mode", "zeros") != "zeros" or ratio is None:
            raise ImportRefused(f"{_where(node)} is only supported as partial convolution's ratio after a Conv")
        name = f"conv{self.counters['conv']}"
        expected = partial_conv_ratio(
            self.conv_input,
            pair(last["kernel_size"]),
            pair(last["stride"]),
            pair(last["padding"]),
            pair(last["dilation"]),
        )
        if ratio.size != expected.size or not np.allclose(ratio.reshape(expected.shape), expected, rtol=1e-5):
            raise ImportRefused(f"{_where(node)} multiplies by something other than partial convolution's ratio")
        if np.any(self.params[f"{name}.bias"]):
            raise ImportRefused(f"{_where(node)}: partial convolution's ratio must come before the bias is added")
        last["padding_mode"] = "partial"
        self.report.append(f"{_where(node)} read as {name}'s partial-convolution padding")
