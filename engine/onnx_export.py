"""A convscope network -> an ONNX model (opset 17) whose output is the engine's logits.

Each layer type writes its own nodes (:meth:`engine.kinds.LayerKind.to_onnx`), reading the values of the
layers it reads: a chain stays a chain, a skip connection is an ``Add`` of two paths. Every layer has a
direct ONNX twin except the padding modes ONNX's ``Conv`` cannot express; those get the nodes that
compute the same numbers:

- ``reflect`` / ``replicate``: a ``Pad`` node (mode ``reflect`` / ``edge``) before an unpadded ``Conv``;
- ``circular``: ``Slice`` + ``Concat`` wrapping the last rows and columns around (opset 17's ``Pad`` has
  no wrap mode), then an unpadded ``Conv``;
- ``partial``: a zero-padded ``Conv`` without bias, a ``Mul`` by the re-weighting ratio (a constant
  ``1 x 1 x OH x OW`` tensor, since it depends only on the position), then an ``Add`` of the bias.

Dropout is left out: it does nothing when the model is used; BatchNorm is ``BatchNormalization`` with its
running statistics. The labels, the spec and the model's name go into ``metadata_props``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engine.network import Network

OPSET = 17


class Graph:
    """Nodes and initializers as the layers add them."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.names: set[str] = set()

    def constant(self, name: str, value: np.ndarray) -> str:
        """An initializer holding ``value``; a name already taken gets a number."""
        unique, count = name, 1
        while unique in self.names:
            unique, count = f"{name}_{count}", count + 1
        self.names.add(unique)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), unique))
        return unique

    def node(self, op: str, owner: str, inputs: list[str], **attrs: Any) -> str:
        """Appends ``op`` reading ``inputs``; returns its output's name. Node names are PyTorch's
        (``/conv1/Conv``), numbered when a layer has two nodes of one op."""
        name, count = f"/{owner}/{op}", 1
        while name in self.names:
            name, count = f"/{owner}/{op}_{count}", count + 1
        self.names.add(name)
        output = f"{name}_output_0"
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def wrap(self, owner: str, source: str, sides: tuple[int, int, int, int], shape: tuple[int, ...]) -> str:
        """Circular padding of (top, bottom, left, right): the last rows go before the first and the first
        after the last, then the same for columns: ``[1 2 3]`` padded by 2 and 1 -> ``2 3 | 1 2 3 | 1``."""
        top, bottom, left, right = sides
        for axis, before, after, size in ((2, top, bottom, shape[1]), (3, left, right, shape[2])):
            if not (before or after):
                continue
            parts = []
            for part, start, stop in (("head", size - before, size), ("tail", 0, after)):
                if start == stop:
                    continue
                bounds = [
                    self.constant(f"{owner}.wrap{axis}.{part}.{what}", np.array([value], np.int64))
                    for what, value in (("start", start), ("stop", stop), ("axis", axis))
                ]
                parts.append((part, self.node("Slice", owner, [source, *bounds])))
            pieces = [v for p, v in parts if p == "head"] + [source] + [v for p, v in parts if p == "tail"]
            source = self.node("Concat", owner, pieces, axis=axis)
        return source


def export_onnx(network: Network, name: str | None = None) -> bytes:
    """The network as an ONNX file's bytes (checked by ``onnx.checker``)."""
    graph = Graph()
    values = {-1: "input"}
    for plan in network.plans:
        values[plan.index] = plan.kind.to_onnx(graph, plan, network.params, [values[s] for s in plan.sources])
    last = values[network.plans[-1].index]
    if not graph.nodes or graph.nodes[-1].output[0] != last:
        last = graph.node("Identity", network.plans[-1].name, [last])  # a last layer with no node of its own
    graph.nodes[-1].output[0] = "logits"
    c, h, w = network.input_shape
    model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            name or network.meta.get("name") or "convscope",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", c, h, w])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", network.classes])],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="convscope",
        ir_version=8,  # opset 17's IR version: runtimes from 2022 on read it
    )
    metadata = {
        "labels": json.dumps(network.labels),
        "convscope_spec": json.dumps(network.spec),
        "name": str(name or network.meta.get("name", "")),
    }
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    data: bytes = model.SerializeToString()
    return data
