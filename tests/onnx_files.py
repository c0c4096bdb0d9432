"""ONNX files the suite builds itself with ``onnx.helper``: small chains of layers, one node per call.

chain(["Conv", ...]) is too terse to read, so a file is built from steps:
b = Builder((1, 8, 8)); b.conv(4, 3, pads=1); b.op("Relu"); b.flatten(); b.gemm(3); data = b.bytes()
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Builder:
    """A chain from ``input`` (N x C x H x W, N symbolic) to ``output``, with seeded random weights."""

    def __init__(self, input_shape: tuple[int, int, int], seed: int = 0) -> None:
        self.shape = input_shape
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.current = "input"
        self.count = 0

    def weight(self, shape: tuple[int, ...], scale: float = 0.5, dtype: Any = np.float32) -> str:
        name = f"w{len(self.initializers)}"
        value = (self.rng.standard_normal(shape) * scale).astype(dtype)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def constant(self, value: np.ndarray) -> str:
        name = f"k{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op: str, *inputs: str, **attrs: Any) -> str:
        """Appends ``op`` on the current value (then ``inputs``); returns its output's name."""
        return self.node(op, [self.current, *inputs], **attrs)

    def node(self, op: str, inputs: list[str], outputs: int = 1, **attrs: Any) -> str:
        self.count += 1
        names = [f"/layer{self.count}/{op}_output_{k}" for k in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=f"/layer{self.count}/{op}", **attrs))
        self.current = names[0]
        return names[0]

    def conv(self, filters: int, kernel: int | tuple[int, int], channels: int, bias: bool = True, **attrs: Any) -> str:
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        inputs = [self.weight((filters, channels, kh, kw))] + ([self.weight((filters,))] if bias else [])
        return self.op("Conv", *inputs, **attrs)

    def batch_norm(self, channels: int) -> str:
        gamma = self.constant(self.rng.uniform(0.5, 1.5, channels).astype(np.float32))
        beta = self.constant(self.rng.uniform(-0.5, 0.5, channels).astype(np.float32))
        mean = self.constant(self.rng.uniform(-1, 1, channels).astype(np.float32))
        var = self.constant(self.rng.uniform(0.5, 2, channels).astype(np.float32))
        return self.op("BatchNormalization", gamma, beta, mean, var, epsilon=1e-3)

    def gemm(self, units: int, inputs: int, trans_b: bool = True, **attrs: Any) -> str:
        shape = (units, inputs) if trans_b else (inputs, units)
        return self.op("Gemm", self.weight(shape), self.weight((units,)), transB=int(trans_b), **attrs)

    def model(self, opset: int = 17, outputs: int | None = None) -> onnx.ModelProto:
        c, h, w = self.shape
        self.nodes[-1].output[0] = "output"
        graph = helper.make_graph(
            self.nodes,
            "test",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", c, h, w])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", outputs] if outputs else None)],
            self.initializers,
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)

    def bytes(self, opset: int = 17) -> bytes:
        return self.model(opset).SerializeToString()


def small_cnn(opset: int = 17, seed: int = 0) -> bytes:
    """conv 4@3x3 (pad 1) -> BN -> relu -> maxpool 2 -> conv 6@3x3 -> tanh -> flatten -> gemm 5 -> softmax."""
    b = Builder((1, 8, 8), seed)
    b.conv(4, 3, channels=1, pads=[1, 1, 1, 1])
    b.batch_norm(4)
    b.op("Relu")
    b.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    b.conv(6, 3, channels=4)
    b.op("Tanh")
    b.op("Flatten", axis=1)
    b.gemm(5, 6 * 2 * 2)
    b.op("Softmax", axis=1)
    return b.bytes(opset)


def reference_logits(data: bytes, x: np.ndarray) -> np.ndarray:
    """What onnxruntime computes for the file (the test-only reference)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0])
