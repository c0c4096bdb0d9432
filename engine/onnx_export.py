"""A convscope network -> an ONNX model (opset 17) whose output is the engine's logits.

Every layer has a direct ONNX twin except the padding modes ONNX's ``Conv`` cannot express; those get
the nodes that compute the same numbers:

- ``reflect`` / ``replicate``: a ``Pad`` node (mode ``reflect`` / ``edge``) before an unpadded ``Conv``;
- ``circular``: ``Slice`` + ``Concat`` wrapping the last rows and columns around (opset 17's ``Pad`` has
  no wrap mode), then an unpadded ``Conv``;
- ``partial``: a zero-padded ``Conv`` without bias, a ``Mul`` by the re-weighting ratio (a constant
  ``1 x 1 x OH x OW`` tensor, since it depends only on the position), then an ``Add`` of the bias.

Dropout is left out: it does nothing when the model is used. The labels, the spec and the model's
name go into ``metadata_props``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engine._checks import pair
from engine.network import Network
from engine.padding import partial_conv_ratio
from engine.spec import LayerPlan

OPSET = 17
PAD_MODES = {"reflect": "reflect", "replicate": "edge"}


class _Graph:
    """Nodes and initializers as they are added, with the name of the value the chain has reached."""

    def __init__(self, input_name: str) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.current = input_name
        self.names: set[str] = set()

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def add(self, op: str, owner: str, inputs: list[str], **attrs: Any) -> str:
        """Appends ``op`` reading the current value (then ``inputs``); its output becomes the current value."""
        return self.join(op, owner, [self.current, *inputs], **attrs)

    def join(self, op: str, owner: str, inputs: list[str], **attrs: Any) -> str:
        """Appends ``op`` reading ``inputs``; its output becomes the current value. Node names are
        PyTorch's (``/conv1/Conv``), numbered when a layer has two nodes of one op."""
        name, count = f"/{owner}/{op}", 1
        while name in self.names:
            name, count = f"/{owner}/{op}_{count}", count + 1
        self.names.add(name)
        output = f"{name}_output_0"
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        self.current = output
        return output


def export_onnx(network: Network, name: str | None = None) -> bytes:
    """The network as an ONNX file's bytes (checked by ``onnx.checker``)."""
    graph = _Graph("input")
    for plan in network.plans:
        _add_layer(graph, plan, network.params)
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


def _add_layer(graph: _Graph, plan: LayerPlan, params: dict[str, np.ndarray]) -> None:
    cfg, owner = plan.config, plan.owner
    if plan.type == "conv":
        _add_conv(graph, plan, params)
    elif plan.type in ("maxpool", "avgpool"):
        op = "MaxPool" if plan.type == "maxpool" else "AveragePool"
        # the plan has filled in a stride that follows the kernel
        graph.add(op, owner, [], kernel_shape=list(pair(cfg["kernel_size"])), strides=list(pair(cfg["stride"])))
    elif plan.type == "linear":
        weight = graph.constant(f"{owner}.weight", params[f"{owner}.weight"])
        bias = graph.constant(f"{owner}.bias", params[f"{owner}.bias"])
        graph.add("Gemm", owner, [weight, bias], transB=1)
    elif plan.type == "flatten":
        graph.add("Flatten", owner, [], axis=1)
    elif plan.type in ("relu", "tanh", "sigmoid"):
        graph.add(plan.type.capitalize(), owner, [])
    # dropout: nothing at inference


def _add_conv(graph: _Graph, plan: LayerPlan, params: dict[str, np.ndarray]) -> None:
    cfg, owner = plan.config, plan.owner
    padding, mode = pair(cfg["padding"]), cfg["padding_mode"]
    stride, dilation = list(pair(cfg["stride"])), list(pair(cfg["dilation"]))
    weight = graph.constant(f"{owner}.weight", params[f"{owner}.weight"])
    pads = [padding[0], padding[1], padding[0], padding[1]]
    if mode in PAD_MODES and any(padding):
        widths = graph.constant(f"{owner}.pads", np.array([0, 0, *padding, 0, 0, *padding], np.int64))
        graph.add("Pad", owner, [widths], mode=PAD_MODES[mode])
        pads = [0, 0, 0, 0]
    elif mode == "circular" and any(padding):
        _wrap(graph, owner, padding, plan.input_shape)
        pads = [0, 0, 0, 0]
    window = {"strides": stride, "dilations": dilation, "pads": pads, "kernel_shape": list(pair(cfg["kernel_size"]))}
    if mode != "partial":
        graph.add("Conv", owner, [weight, graph.constant(f"{owner}.bias", params[f"{owner}.bias"])], **window)
        return
    graph.add("Conv", owner, [weight], **window)
    h, w = plan.input_shape[1], plan.input_shape[2]
    ratio = partial_conv_ratio((h, w), pair(cfg["kernel_size"]), pair(cfg["stride"]), padding, pair(cfg["dilation"]))
    graph.add("Mul", owner, [graph.constant(f"{owner}.partial_ratio", ratio[None, None].astype(np.float32))])
    bias_map = graph.constant(f"{owner}.bias", params[f"{owner}.bias"].reshape(1, -1, 1, 1))
    graph.add("Add", owner, [bias_map])


def _wrap(graph: _Graph, owner: str, padding: tuple[int, int], shape: tuple[int, ...]) -> None:
    """Circular padding: the last P rows go before the first and the first P after the last, then the
    same for columns: ``[1 2 3] -> 2 3 | 1 2 3 | 1 2``."""
    for axis, p, size in ((2, padding[0], shape[1]), (3, padding[1], shape[2])):
        if not p:
            continue
        source = graph.current
        ends = []
        for part, start, stop in (("head", size - p, size), ("tail", 0, p)):
            bounds = [
                graph.constant(f"{owner}.wrap{axis}.{part}.{what}", np.array([value], np.int64))
                for what, value in (("start", start), ("stop", stop), ("axis", axis))
            ]
            ends.append(graph.join("Slice", owner, [source, *bounds]))
        graph.join("Concat", owner, [ends[0], source, ends[1]], axis=axis)
