"""An ONNX file -> a convscope network (spec, parameters, and a report of what was converted).

One image input ``N x C x H x W``, one output of class scores, and a graph of the ops the engine has
(:mod:`engine.onnx_graph` turns each node into a layer, a fold or nothing): ``Conv`` (grouped and
depthwise too), the activations, pooling, ``BatchNormalization``, ``Pad``, ``Flatten`` (or the ``Reshape``
that flattens), ``Gemm`` or ``MatMul`` + ``Add``, and ``Add``/``Concat`` where paths meet. ``Dropout`` and
``Identity`` are passed through, and a final ``Softmax``/``LogSoftmax`` is dropped (the app applies its
own). Anything else raises :class:`ImportRefused` naming the node and its op. The file is hostile until
proven otherwise: weights stored outside it (external data), shapes that do not match their bytes, too
many nodes, non-float weights and unknown opsets are refused before any array is made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from engine.errors import EngineError
from engine.names import MAX_CLASS_NAME, plain_text
from engine.network import Network
from engine.onnx_graph import Converter, ImportRefused, Value, convert, where

OLDEST_OPSET = 11
NEWEST_OPSET = onnx.defs.onnx_opset_version()
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
# fixed inputs the engine's logits are stored for at import, to be compared with any ONNX runtime
CHECK_SEED = 20180412


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
    """Parses and converts an ONNX file; :class:`ImportRefused` for anything the engine cannot run."""
    model = _parse(data)
    if len(model.graph.node) > limits.max_nodes:
        raise ImportRefused(
            f"the graph has {len(model.graph.node)} nodes; an imported model has at most {limits.max_nodes} "
            "(a small CNN needs a few dozen)"
        )
    _check_opset(model)
    converter, input_shape, output = _walk(model, _constants(model.graph), limits)
    classes = _classes(converter, output)
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


def _walk(
    model: onnx.ModelProto, constants: dict[str, np.ndarray], limits: Limits
) -> tuple[Converter, tuple[int, int, int], str]:
    """Converts every node on the way from the input to the output; the converter, the input's shape and
    the output value."""
    graph = model.graph
    every = list(graph.node)  # one list: protobuf makes a new wrapper object on each access
    shape_nodes = _shape_nodes(every)
    nodes = [n for n in every if n.op_type != "Constant" and id(n) not in shape_nodes]
    converter = Converter(nodes, constants, _inferred_shapes(model))
    input_name, input_shape = _input(graph, constants, limits.sides)
    output = _output(graph)
    converter.values[input_name] = Value("input", -1, input_shape)
    for node in nodes:
        extra = [o for o in node.output[1:] if o and converter.readers[o]]
        if extra:
            raise ImportRefused(f"{where(node)}: its output {extra[0]!r} is used; only its first output can be")
        if node.op_type in ("Softmax", "LogSoftmax"):
            if node.output[0] != output:
                raise ImportRefused(f"{where(node)} is only supported as the last node")
            converter.same(node, node.input[0])
            converter.report.append(f"final {node.op_type} dropped: the app applies its own softmax")
            continue
        convert(converter, node)
    return converter, input_shape, output


def _shape_nodes(nodes: list[onnx.NodeProto]) -> set[int]:
    """Nodes whose outputs only feed a Reshape's target shape (or other such nodes)."""
    found: set[int] = set()
    users: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in nodes:
        for slot, name in enumerate(node.input):
            users.setdefault(name, []).append((node, slot))
    for node in reversed(nodes):
        if node.op_type not in SHAPE_OPS or not node.output:
            continue
        uses = [u for out in node.output for u in users.get(out, [])]
        if uses and all((u.op_type == "Reshape" and slot == 1) or id(u) in found for u, slot in uses):
            found.add(id(node))
    return found


def _input(
    graph: onnx.GraphProto, constants: dict[str, np.ndarray], sides: tuple[int, int]
) -> tuple[str, tuple[int, int, int]]:
    inputs = [v for v in graph.input if v.name not in constants]
    if len(inputs) != 1:
        names = ", ".join(repr(v.name) for v in inputs) or "none"
        raise ImportRefused(f"the model must have one image input; it has {len(inputs)} ({names})")
    value = inputs[0]
    if value.type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ImportRefused(f"input {value.name!r} must be float32 pixels")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
    if len(dims) != 4 or None in dims[1:]:
        shown = ["N" if d is None else d for d in dims]
        raise ImportRefused(f"input {value.name!r} has the shape {shown}; it must be N x C x H x W with C, H, W fixed")
    c, h, w = (int(d) for d in dims[1:])  # type: ignore[arg-type]
    lo, hi = sides
    if c not in (1, 3) or not (lo <= h <= hi and lo <= w <= hi):
        raise ImportRefused(
            f"input {value.name!r} is {c} x {h} x {w}; convscope takes 1 or 3 channels and sides from {lo} to {hi}"
        )
    return value.name, (c, h, w)


def _output(graph: onnx.GraphProto) -> str:
    if len(graph.output) != 1:
        raise ImportRefused(f"the model must have one output (class scores); it has {len(graph.output)}")
    return str(graph.output[0].name)


def _classes(converter: Converter, output: str) -> int:
    made = converter.values.get(output)
    if made is None or made.index != len(converter.layers) - 1 or not converter.layers:
        raise ImportRefused(f"the output {output!r} is not reached from the input through the layers")
    if len(made.shape) != 1 or made.shape[0] < 2:
        shown = " x ".join(map(str, made.shape))
        raise ImportRefused(f"the output must be class scores (N x K, K >= 2); the graph ends with N x {shown}")
    return made.shape[0]
