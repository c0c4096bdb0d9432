"""An ONNX file -> a convscope network (spec, parameters, and a report of what was converted).

One image input (``N x C x H x W``, or Keras's ``N x H x W x C``; float32 or float64; any batch), one
output of class scores, and a graph of the ops the engine has (:mod:`engine.onnx_graph` turns each node
into a layer, a fold or nothing), at opsets 7 to 28: a file older than opset 11 is upgraded by onnx's
version converter first, and operator sets it declares but never uses are dropped. A final
``Softmax``/``LogSoftmax`` is dropped (the app applies its own); a final ``Sigmoid`` makes a binary
classifier (one score) or independent probabilities (several). How the training pictures were prepared
(:class:`Preparation`: range, mean, std; given, or in the file's ``metadata_props``) becomes a first
``normalize`` layer. Anything else raises :class:`ImportRefused` naming the node, its op and what would
make the file importable. The file is hostile until proven otherwise: weights stored outside it
(external data), shapes that do not match their bytes, too many nodes, non-float or non-finite weights
and unknown opsets are refused before any layer is made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from engine.errors import EngineError
from engine.kinds.base import short
from engine.kinds.norm import MAX_NORMALISE
from engine.names import MAX_CLASS_NAME, plain_text
from engine.network import Network
from engine.onnx_graph import Converter, ImportRefused, Value, convert, where

OLDEST_OPSET = 7  # older files are upgraded to UPGRADE_TO with onnx's version converter first
UPGRADE_TO = 11  # not 13, where Softmax changed: the converter would wrap a final Softmax in reshapes
NEWEST_OPSET = onnx.defs.onnx_opset_version()
STANDARD_DOMAINS = ("", "ai.onnx")
# Nodes that only work out the target shape of a Reshape (PyTorch's ``x.view(x.size(0), -1)``)
SHAPE_OPS = frozenset({"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Constant", "Mul"})
INPUT_TYPES = {TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64"}
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
    sides: tuple[int, int] = (8, 384)


@dataclass
class Imported:
    """What an import made: the network, and one line per conversion that was not one-to-one."""

    network: Network
    report: list[str] = field(default_factory=list)


def check_inputs(input_shape: tuple[int, int, int]) -> np.ndarray:
    """Three fixed inputs (3, C, H, W) in [0, 1]: black, mid grey, and seeded noise."""
    noise = np.random.default_rng(CHECK_SEED).random(input_shape, dtype=np.float32)
    return np.stack([np.zeros(input_shape, np.float32), np.full(input_shape, 0.5, np.float32), noise])


# the pictures' numbers a model was trained on, as (a, b): the app's pictures x in 0..1 become a·x + b
INPUT_RANGES = {"0..1": (1.0, 0.0), "0..255": (255.0, 0.0), "-1..1": (2.0, -1.0)}
PREPARATION_KEYS = ("input_range", "mean", "std")


@dataclass(frozen=True)
class Preparation:
    """How a model's training pictures were prepared: their range, then ``(x − mean) / std`` a channel
    (PyTorch's ``Normalize``); one number stands for every channel. Given with the file or in its
    ``metadata_props``."""

    input_range: str = "0..1"
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def checked(self, channels: int) -> Preparation:
        """Itself with one mean and std a channel; :class:`ImportRefused` naming the field that is wrong."""
        if self.input_range not in INPUT_RANGES:
            raise ImportRefused(f"input_range: {short(self.input_range)}; choose one of {', '.join(INPUT_RANGES)}")
        spread = {}
        for key, low in (("mean", -MAX_NORMALISE), ("std", 1 / MAX_NORMALISE)):
            values = getattr(self, key)
            if len(values) not in (1, channels):
                raise ImportRefused(
                    f"{key}: {len(values)} numbers for a model of {channels} channels; give 1 or {channels}"
                )
            if not all(isinstance(v, (int, float)) and low <= v <= MAX_NORMALISE for v in values):
                raise ImportRefused(
                    f"{key}: {short(list(values))}; each must be a number from {low:g} to {MAX_NORMALISE:g}"
                )
            spread[key] = tuple(float(v) for v in values) * (channels // len(values))
        return Preparation(self.input_range, spread["mean"], spread["std"])

    @property
    def plain(self) -> bool:
        return self.input_range == "0..1" and not any(self.mean) and all(v == 1 for v in self.std)

    def layer(self) -> dict[str, Any]:
        """The ``normalize`` layer that takes the app's 0..1 pictures to the model's numbers:
        ``(a·x + b − mean) / std = (x − (mean − b)/a) / (std/a)``."""
        a, b = INPUT_RANGES[self.input_range]
        mean = [(m - b) / a for m in self.mean]
        return {"type": "normalize", "name": "preparation", "mean": mean, "std": [v / a for v in self.std]}

    def describe(self) -> str:
        return f"range {self.input_range}, mean {list(self.mean)}, std {list(self.std)}"

    def as_meta(self) -> dict[str, Any]:
        return {"input_range": self.input_range, "mean": list(self.mean), "std": list(self.std)}


def file_preparation(model: onnx.ModelProto) -> Preparation | None:
    """A preparation from the file's ``metadata_props`` (``input_range``, ``mean``, ``std``: JSON or
    comma-separated numbers), or None when it names none."""
    props = {p.key: p.value for p in model.metadata_props if p.key in PREPARATION_KEYS}
    if not props:
        return None
    fields: dict[str, Any] = {}
    if "input_range" in props:
        fields["input_range"] = props["input_range"].strip()
    for key in ("mean", "std"):
        if key in props:
            try:
                parsed = json.loads(props[key]) if props[key].strip().startswith("[") else props[key].split(",")
                fields[key] = tuple(float(v) for v in (parsed if isinstance(parsed, list) else [parsed]))
            except (TypeError, ValueError):
                raise ImportRefused(f"metadata_props {key}: {short(props[key])} is not a list of numbers") from None
    return Preparation(**fields)


def _prepend(converter: Converter, layer: dict[str, Any]) -> None:
    """``layer`` first: the layers that named the input read it instead."""
    for later in converter.layers:
        if later.get("input") == "input":
            later["input"] = layer["name"]
        if "inputs" in later:
            later["inputs"] = [layer["name"] if ref == "input" else ref for ref in later["inputs"]]
    converter.layers.insert(0, layer)


def import_onnx(data: bytes, limits: Limits = Limits(), preparation: Preparation | None = None) -> Imported:
    """Parses and converts an ONNX file; :class:`ImportRefused` for anything the engine cannot run.
    ``preparation`` (else the file's ``metadata_props``) becomes a ``normalize`` layer before the rest."""
    model = _parse(data)
    if len(model.graph.node) > limits.max_nodes:
        raise ImportRefused(
            f"the graph has {len(model.graph.node)} nodes; an imported model has at most {limits.max_nodes} "
            "(a small CNN needs a few dozen)"
        )
    notes: list[str] = []
    model = _standard_opset(model, notes)
    converter, source, output = _walk(model, _constants(model.graph), limits)
    converter.report[:0] = notes
    classes, outputs = _outputs(converter, output)
    prepared = (preparation or file_preparation(model) or Preparation()).checked(source.shape[0])
    if not prepared.plain:
        _prepend(converter, prepared.layer())
        converter.report.insert(0, f"pictures prepared first ({prepared.describe()}) → layer preparation")
    spec = {"input": list(source.shape), "classes": classes, "layers": converter.layers}
    labels = _labels(model, classes) or (["no", "yes"] if outputs == "binary" else None)
    meta: dict[str, Any] = {"labels": labels} if labels else {}
    meta |= {"outputs": outputs, "file_input": source.file_input, "preparation": prepared.as_meta()}
    try:
        network = Network(spec, converter.params, meta)
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


def _standard_opset(model: onnx.ModelProto, notes: list[str]) -> onnx.ModelProto:
    """The model on the standard operator set alone, from opset OLDEST_OPSET up: declared sets no node uses
    (tf2onnx declares ``ai.onnx.ml``) are dropped, a used one is refused by node, and a file older than
    opset 11 is upgraded to UPGRADE_TO by onnx's version converter; each step is noted for the report."""
    used = {node.domain for node in model.graph.node}
    for entry in list(model.opset_import):
        if entry.domain in STANDARD_DOMAINS:
            continue
        if entry.domain in used:
            node = next(n for n in model.graph.node if n.domain == entry.domain)
            raise ImportRefused(
                f"{where(node)} is from the operator set {entry.domain!r}; convscope runs only the standard ONNX ops"
            )
        model.opset_import.remove(entry)
        notes.append(f"operator set {entry.domain!r} is declared but no node uses it: ignored")
    versions = [entry.version for entry in model.opset_import if entry.domain in STANDARD_DOMAINS]
    version = versions[0] if versions else 0
    if not OLDEST_OPSET <= version <= NEWEST_OPSET:
        raise ImportRefused(
            f"opset {version} is not supported; export with an opset from {OLDEST_OPSET} to {NEWEST_OPSET}"
        )
    if version >= 11:
        return model
    try:
        upgraded = onnx.version_converter.convert_version(model, UPGRADE_TO)
    except Exception as error:  # the converter raises its own C++ errors
        raise ImportRefused(
            f"opset {version} could not be upgraded to {UPGRADE_TO} by onnx's version converter "
            f"({str(error).splitlines()[0][:200]}); export with opset 11 or newer"
        ) from None
    notes.append(f"opset {version} upgraded to {UPGRADE_TO} with onnx's version converter")
    return upgraded


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


@dataclass(frozen=True)
class Source:
    """The file's image input: its name, the engine's (C, H, W), and how the file takes it (channels last,
    float64, a fixed batch), for whoever runs the original file beside the import."""

    name: str
    shape: tuple[int, int, int]
    nhwc: bool
    batch: int | None
    dtype: str

    @property
    def file_input(self) -> dict[str, Any]:
        return {"layout": "NHWC" if self.nhwc else "NCHW", "dtype": self.dtype, "batch": self.batch}


def _walk(model: onnx.ModelProto, constants: dict[str, np.ndarray], limits: Limits) -> tuple[Converter, Source, str]:
    """Converts every node on the way from the input to the output; the converter, the input and the
    output value. Every node gets a line in the report."""
    graph = model.graph
    every = list(graph.node)  # one list: protobuf makes a new wrapper object on each access
    shape_nodes = _shape_nodes(every)
    nodes = [n for n in every if n.op_type != "Constant" and id(n) not in shape_nodes]
    source = _input(graph, constants, limits.sides)
    makers = {name: node for node in every for name in node.output}
    converter = Converter(nodes, constants, _inferred_shapes(model), source.batch, makers)
    output = _output(graph)
    converter.values[source.name] = Value("input", -1, source.shape, source.nhwc)
    if source.nhwc:
        converter.report.append(f"input {source.name!r} is channels last (N x H x W x C): read channels first")
    for node in nodes:
        extra = [o for o in node.output[1:] if o and converter.readers[o]]
        if extra:
            raise ImportRefused(f"{where(node)}: its output {extra[0]!r} is used; only its first output can be")
        if node.output[0] == output and node.op_type in ("Softmax", "LogSoftmax", "Sigmoid"):
            converter.same(node, node.input[0])
            converter.sigmoid = node.op_type == "Sigmoid"
            converter.report.append(f"final {node.op_type} dropped: the app turns the scores into probabilities")
            continue
        if node.op_type in ("Softmax", "LogSoftmax"):
            raise ImportRefused(f"{where(node)} is only supported as the last node")
        lines = len(converter.report)
        convert(converter, node)
        if len(converter.report) == lines:
            converter.report.append(_mapping(converter, node))
    return converter, source, output


def _mapping(converter: Converter, node: onnx.NodeProto) -> str:
    """The report's line for a node its handler did not describe: the layer it became, or what waits."""
    made = converter.values.get(node.output[0])
    if made is None:
        return f"{where(node)} kept for the node after it"
    if made.index < 0:
        return f"{where(node)} changes nothing: the input passes"
    layer = converter.layers[made.index]
    named = f"{layer['type']} {layer['name']}" if "name" in layer else f"{layer['type']} after {made.ref}"
    return f"{where(node)} → {named}"


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


def _input(graph: onnx.GraphProto, constants: dict[str, np.ndarray], sides: tuple[int, int]) -> Source:
    """The one image input: N x C x H x W, or Keras's N x H x W x C (C of 1 or 3, the sides not), float32
    or float64, any batch."""
    inputs = [v for v in graph.input if v.name not in constants]  # old files list their weights as inputs
    if len(inputs) != 1:
        names = ", ".join(repr(v.name) for v in inputs) or "none"
        raise ImportRefused(f"the model must have one image input; it has {len(inputs)} ({names})")
    value = inputs[0]
    dtype = INPUT_TYPES.get(value.type.tensor_type.elem_type)
    if dtype is None:
        raise ImportRefused(f"input {value.name!r} must be float pixels (float32 or float64)")
    dims = [
        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in value.type.tensor_type.shape.dim
    ]
    if len(dims) != 4 or None in dims[1:]:
        shown = ["N" if d is None else d for d in dims]
        raise ImportRefused(f"input {value.name!r} has the shape {shown}; it must be N x C x H x W with C, H, W fixed")
    nhwc = dims[3] in (1, 3) and dims[1] not in (1, 3)
    c, h, w = (int(d) for d in ((dims[3], dims[1], dims[2]) if nhwc else dims[1:]))  # type: ignore[arg-type]
    lo, hi = sides
    if c not in (1, 3) or not (lo <= h <= hi and lo <= w <= hi):
        raise ImportRefused(
            f"input {value.name!r} is {c} x {h} x {w}; convscope takes 1 or 3 channels and sides from {lo} to {hi}"
        )
    return Source(value.name, (c, h, w), nhwc, dims[0], dtype)


def _output(graph: onnx.GraphProto) -> str:
    if len(graph.output) != 1:
        raise ImportRefused(f"the model must have one output (class scores); it has {len(graph.output)}")
    return str(graph.output[0].name)


def _outputs(converter: Converter, output: str) -> tuple[int, str]:
    """The classes, and how the scores become probabilities: ``softmax``; ``binary`` for a sigmoid over one
    score z, given a second class here (a linear layer making the pair (0, z), whose softmax is
    (1 − σ(z), σ(z)), the file's probability for "yes"); ``independent`` for a sigmoid over K scores."""
    made = converter.values.get(output)
    if made is None or made.index != len(converter.layers) - 1 or not converter.layers:
        raise ImportRefused(f"the output {output!r} is not reached from the input through the layers")
    shown = " x ".join(map(str, made.shape))
    if len(made.shape) != 1 or made.shape[0] < (1 if converter.sigmoid else 2):
        raise ImportRefused(
            f"the output must be class scores (N x K, K >= 2, or one score under a final Sigmoid); the graph ends "
            f"with N x {shown}"
        )
    if not converter.sigmoid:
        return made.shape[0], "softmax"
    if made.shape[0] > 1:
        converter.report.append(
            f"a Sigmoid over {made.shape[0]} scores: independent probabilities (they need not add up to 1)"
        )
        return made.shape[0], "independent"
    converter.layers.append({"type": "linear", "units": 2, "name": "binary"})
    converter.params["binary.weight"] = np.array([[0.0], [1.0]], np.float32)
    converter.params["binary.bias"] = np.zeros(2, np.float32)
    converter.report.append(
        "a Sigmoid over one score: a binary classifier; layer binary makes the scores (0, z), whose softmax is "
        "(1 − σ(z), σ(z))"
    )
    return 2, "binary"
