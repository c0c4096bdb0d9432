"""A collection of ONNX image classifiers in the shapes real exporters write them, built here with
``onnx.helper`` (no downloads): tf2onnx's Keras models (channels-last input, Transposes around the convs,
``ai.onnx.ml`` declared, ``MatMul`` + ``Add``, ``ReduceMean`` pooling, ``SAME_UPPER`` padding), PyTorch 1.x
files at opsets 8-10 (the ``Shape``/``Gather``/``Reshape`` flatten), an old IR file with its weights among
the graph's inputs and a fixed batch, MATLAB's input ``Sub``, Chainer's activations, sigmoid outputs, a
float64 input with a ``Cast``, residual and branching graphs, large and non-square inputs.

Each entry is a function returning the file's bytes; :func:`run_file` runs a file in onnxruntime the way
its exporter meant it (channels last, float64, its fixed batch), for the comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NCHW_TO_NHWC, NHWC_TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


class File:
    """A graph under construction: ``x`` the current value, weights seeded."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.x = "input"

    def const(self, value: Any, dtype: Any = np.float32) -> str:
        name = f"c{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def weight(self, *shape: int, scale: float | None = None) -> str:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        std = scale if scale is not None else float(np.sqrt(2 / fan_in))
        return self.const(self.rng.standard_normal(shape) * std)

    def op(self, op: str, *inputs: str, first: str | None = None, **attrs: Any) -> str:
        out = f"{op.lower()}_{len(self.nodes)}"
        self.nodes.append(
            helper.make_node(op, [first or self.x, *inputs], [out], name=f"{op}_{len(self.nodes)}", **attrs)
        )
        self.x = out
        return out

    def conv(self, cin: int, cout: int, k: int, group: int = 1, bias: bool = True, **attrs: Any) -> str:
        inputs = [self.weight(cout, cin // group, k, k)] + ([self.const(self.rng.normal(0, 0.1, cout))] if bias else [])
        return self.op("Conv", *inputs, kernel_shape=[k, k], group=group, **attrs)

    def bn(self, c: int) -> str:
        r = self.rng
        stats = [r.uniform(0.5, 1.5, c), r.uniform(-0.3, 0.3, c), r.uniform(-0.5, 0.5, c), r.uniform(0.5, 2, c)]
        return self.op("BatchNormalization", *(self.const(s) for s in stats), epsilon=1e-3)

    def nhwc_conv(self, cin: int, cout: int, k: int, **attrs: Any) -> str:
        """tf2onnx around a Keras conv: to channels first, the conv, back to channels last."""
        self.op("Transpose", perm=NHWC_TO_NCHW)
        self.conv(cin, cout, k, **attrs)
        return self.op("Transpose", perm=NCHW_TO_NHWC)

    def gemm(self, inputs: int, units: int) -> str:
        return self.op(
            "Gemm", self.weight(units, inputs, scale=0.3), self.const(self.rng.normal(0, 0.1, units)), transB=1
        )

    def matmul_add(self, inputs: int, units: int) -> str:
        self.op("MatMul", self.weight(inputs, units, scale=0.3))
        return self.op("Add", self.const(self.rng.normal(0, 0.1, units)))

    def bytes(
        self,
        input_dims: list[Any],
        opset: int = 13,
        *,
        extra_opsets: tuple[tuple[str, int], ...] = (),
        dtype: int = TensorProto.FLOAT,
        ir_version: int = 7,
        weights_as_inputs: bool = False,
        props: dict[str, str] | None = None,
    ) -> bytes:
        self.nodes[-1].output[0] = "output"
        inputs = [helper.make_tensor_value_info("input", dtype, input_dims)]
        if weights_as_inputs:  # old IR: every initializer is also a graph input
            inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in self.initializers]
        graph = helper.make_graph(
            self.nodes, "collection", inputs, [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
            self.initializers,
        )  # fmt: skip
        opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
        model = helper.make_model(graph, opset_imports=opsets, ir_version=ir_version)
        for key, value in (props or {}).items():
            model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
        return model.SerializeToString()


def keras_cnn_tf2onnx() -> bytes:
    """tf2onnx, Keras Sequential on 28x28x1: SAME_UPPER convs (one at stride 2: uneven padding), max pool,
    Flatten of channels-last maps, Dense (MatMul + Add), softmax; ``ai.onnx.ml`` declared, unused."""
    f = File(1)
    f.nhwc_conv(1, 8, 3, auto_pad="SAME_UPPER")
    f.op("Relu")
    f.op("Transpose", perm=NHWC_TO_NCHW)
    f.conv(8, 16, 3, auto_pad="SAME_UPPER", strides=[2, 2])
    f.op("Relu")
    f.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    f.op("Transpose", perm=NCHW_TO_NHWC)
    f.op("Reshape", f.const([-1, 7 * 7 * 16], np.int64))
    f.matmul_add(7 * 7 * 16, 10)
    f.op("Softmax", axis=-1)
    return f.bytes(["unk__0", 28, 28, 1], 13, extra_opsets=(("ai.onnx.ml", 2),))


def keras_mobilenet_tf2onnx() -> bytes:
    """tf2onnx, a MobileNet-style Keras model on 96x96x3: Rescaling (Mul, Add) on the channels-last input,
    conv + BN + ReLU6 (Clip), a depthwise-separable block, ReduceMean over H, W of channels-last maps."""
    f = File(2)
    f.op("Mul", f.const(1 / 127.5))
    f.op("Add", f.const(-1.0))
    f.op("Transpose", perm=NHWC_TO_NCHW)
    f.conv(3, 8, 3, auto_pad="SAME_UPPER", strides=[2, 2], bias=False)
    f.bn(8)
    f.op("Clip", f.const(0.0), f.const(6.0))
    f.conv(8, 8, 3, group=8, pads=[1, 1, 1, 1], bias=False)
    f.bn(8)
    f.op("Clip", f.const(0.0), f.const(6.0))
    f.conv(8, 16, 1, bias=False)
    f.bn(16)
    f.op("Clip", f.const(0.0), f.const(6.0))
    f.op("Transpose", perm=NCHW_TO_NHWC)
    f.op("ReduceMean", axes=[1, 2], keepdims=0)
    f.matmul_add(16, 5)
    f.op("Softmax", axis=-1)
    return f.bytes([None, 96, 96, 3], 13, extra_opsets=(("ai.onnx.ml", 3),))


def pytorch_opset9() -> bytes:
    """PyTorch 1.x (opset 9): conv, ReLU, max pool, ``x.view(x.size(0), -1)`` as Shape, Gather, Unsqueeze,
    Concat, Reshape, then Gemm and LogSoftmax."""
    f = File(3)
    f.conv(1, 6, 5, pads=[2, 2, 2, 2])
    f.op("Relu")
    f.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    f.conv(6, 12, 5)
    f.op("Relu")
    pooled = f.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    shape = f.op("Shape", first=pooled)
    batch = f.op("Gather", f.const(0, np.int64), first=shape, axis=0)
    unsqueezed = f.op("Unsqueeze", first=batch, axes=[0])
    target = f.op("Concat", f.const([-1], np.int64), first=unsqueezed, axis=0)
    f.op("Reshape", target, first=pooled)
    f.gemm(12 * 5 * 5, 10)
    f.op("LogSoftmax", axis=1)
    return f.bytes([1, 1, 28, 28], 9, ir_version=4)


def old_ir_fixed_batch() -> bytes:
    """An old file (IR 3, opset 8): weights listed among the graph's inputs, a fixed batch of 64, a Reshape to
    (64, -1), dropout left in, Gemm with Softmax."""
    f = File(4)
    f.conv(3, 6, 3)
    f.op("Relu")
    f.op("AveragePool", kernel_shape=[2, 2], strides=[2, 2])
    f.op("Dropout", ratio=0.3)
    f.op("Reshape", f.const([64, -1], np.int64))
    f.gemm(6 * 15 * 15, 4)
    f.op("Softmax", axis=1)
    return f.bytes([64, 3, 32, 32], 8, ir_version=3, weights_as_inputs=True)


def matlab_input_sub() -> bytes:
    """MATLAB: the input's channel mean subtracted by a Sub, BatchNorm after the ReLU (not foldable), a
    LeakyRelu, opset 10, Softmax."""
    f = File(5)
    f.op("Sub", f.const(np.array([0.48, 0.45, 0.41]).reshape(1, 3, 1, 1)))
    f.conv(3, 8, 3, pads=[1, 1, 1, 1])
    f.op("Relu")
    f.bn(8)
    f.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    f.conv(8, 8, 3)
    f.op("LeakyRelu", alpha=0.2)
    f.op("Flatten", axis=1)
    f.gemm(8 * 30 * 30, 3)
    f.op("Softmax", axis=1)
    return f.bytes([1, 3, 64, 64], 10, ir_version=5)


def chainer_activations() -> bytes:
    """Chainer-like: Selu, Elu and HardSigmoid between convs on 16x16 grey, opset 7, Gemm."""
    f = File(6)
    f.conv(1, 4, 3)
    f.op("Selu")
    f.conv(4, 4, 3)
    f.op("Elu", alpha=1.0)
    f.conv(4, 4, 3)
    f.op("HardSigmoid", alpha=1 / 6, beta=0.5)
    f.op("Flatten", axis=1)
    f.gemm(4 * 10 * 10, 6)
    return f.bytes([1, 1, 16, 16], 7, ir_version=3, weights_as_inputs=True)


def binary_sigmoid_nonsquare() -> bytes:
    """A binary classifier on 50x20 grey: one score under a Sigmoid (N x 1)."""
    f = File(7)
    f.conv(1, 8, 3, pads=[1, 1, 1, 1])
    f.op("Relu")
    f.op("GlobalAveragePool")
    f.op("Flatten", axis=1)
    f.gemm(8, 1)
    f.op("Sigmoid")
    return f.bytes(["batch", 1, 50, 20], 17)


def multilabel_sigmoid() -> bytes:
    """Five independent labels on 32x32 colour: a Sigmoid over five scores."""
    f = File(8)
    f.conv(3, 8, 3, strides=[2, 2], pads=[1, 1, 1, 1])
    f.op("Relu")
    f.op("GlobalAveragePool")
    f.op("Flatten", axis=1)
    f.gemm(8, 5)
    f.op("Sigmoid")
    return f.bytes(["N", 3, 32, 32], 17)


def float64_cast_reducemean() -> bytes:
    """A float64 input cast to float32, a conv, a mean over (2, 3) kept then squeezed (opset 13's Squeeze
    takes its axes as an input), Identity, Gemm."""
    f = File(9)
    f.op("Cast", to=TensorProto.FLOAT)
    f.conv(1, 6, 3)
    f.op("Relu")
    f.op("ReduceMean", axes=[2, 3], keepdims=1)
    f.op("Squeeze", f.const([2, 3], np.int64))
    f.op("Identity")
    f.gemm(6, 4)
    return f.bytes(["N", 1, 24, 24], 13, dtype=TensorProto.DOUBLE)


def resnet_opset17() -> bytes:
    """PyTorch 2.x (opset 17), a residual network on 224x224 colour: conv-BN-ReLU stem at stride 4, a
    residual block (the shortcut a 1x1 conv at stride 2), global pooling, Flatten, Gemm."""
    f = File(10)
    f.conv(3, 8, 7, strides=[4, 4], pads=[3, 3, 3, 3])
    f.bn(8)
    f.op("Relu")
    block_in = f.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    f.conv(8, 16, 3, strides=[2, 2], pads=[1, 1, 1, 1])
    f.bn(16)
    f.op("Relu")
    f.conv(16, 16, 3, pads=[1, 1, 1, 1])
    main = f.bn(16)
    f.op("Conv", f.weight(16, 8, 1, 1), f.const(np.zeros(16)), first=block_in, kernel_shape=[1, 1], strides=[2, 2])
    shortcut = f.bn(16)
    f.op("Add", shortcut, first=main)
    f.op("Relu")
    f.op("GlobalAveragePool")
    f.op("Flatten", axis=1)
    f.gemm(16, 7)
    return f.bytes(["batch_size", 3, 224, 224], 17)


def inception_concat() -> bytes:
    """Branches concatenated along channels (an Inception-like block), opset 11, ReduceMean axes attribute."""
    f = File(11)
    f.conv(3, 8, 3, pads=[1, 1, 1, 1])
    trunk = f.op("Relu")
    left = f.op("Conv", f.weight(4, 8, 1, 1), kernel_shape=[1, 1], first=trunk)
    right = f.op("Conv", f.weight(4, 8, 3, 3), kernel_shape=[3, 3], pads=[1, 1, 1, 1], first=trunk)
    f.op("Concat", right, first=left, axis=1)
    f.op("Relu")
    f.op("ReduceMean", axes=[2, 3], keepdims=0)
    f.gemm(8, 3)
    f.op("Softmax", axis=1)
    return f.bytes([1, 3, 40, 40], 11)


def dynamo_opset18() -> bytes:
    """PyTorch's dynamo exporter (opset 18): ReduceMean's axes as an input, a HardSwish, a depthwise conv,
    Reshape to (-1, C)."""
    f = File(12)
    f.conv(3, 12, 3, strides=[2, 2], pads=[1, 1, 1, 1])
    f.op("HardSwish")
    f.conv(12, 12, 3, group=12, pads=[1, 1, 1, 1])
    f.op("Relu")
    f.op("ReduceMean", f.const([2, 3], np.int64), keepdims=1)
    f.op("Reshape", f.const([-1, 12], np.int64))
    f.gemm(12, 4)
    return f.bytes(["s0", 3, 120, 120], 18, ir_version=8)


def normalised_mnist_props() -> bytes:
    """A digits model whose file names its preparation in ``metadata_props`` (mean and std)."""
    f = File(13)
    f.conv(1, 4, 5)
    f.op("Relu")
    f.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    f.op("Flatten", axis=1)
    f.gemm(4 * 12 * 12, 10)
    return f.bytes(["N", 1, 28, 28], 17, props={"mean": "[0.1307]", "std": "0.3081"})


COLLECTION: dict[str, Callable[[], bytes]] = {
    "keras_cnn_tf2onnx": keras_cnn_tf2onnx,
    "keras_mobilenet_tf2onnx": keras_mobilenet_tf2onnx,
    "pytorch_opset9": pytorch_opset9,
    "old_ir_fixed_batch": old_ir_fixed_batch,
    "matlab_input_sub": matlab_input_sub,
    "chainer_activations": chainer_activations,
    "binary_sigmoid_nonsquare": binary_sigmoid_nonsquare,
    "multilabel_sigmoid": multilabel_sigmoid,
    "float64_cast_reducemean": float64_cast_reducemean,
    "resnet_opset17": resnet_opset17,
    "inception_concat": inception_concat,
    "dynamo_opset18": dynamo_opset18,
    "normalised_mnist_props": normalised_mnist_props,
}


def run_file(data: bytes, x: np.ndarray, file_input: dict[str, Any]) -> np.ndarray:
    """onnxruntime's output for pictures ``x`` (N, C, H, W), handed over as the file takes them: channels
    last, float64, and in batches of its fixed size (the last one filled up)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    given = x.transpose(0, 2, 3, 1) if file_input["layout"] == "NHWC" else x
    given = given.astype(file_input["dtype"])
    batch = file_input["batch"]
    if not batch:
        return np.asarray(session.run(None, {name: given})[0])
    outputs = []
    for start in range(0, len(given), batch):
        part = given[start : start + batch]
        filled = np.concatenate([part, np.zeros((batch - len(part), *part.shape[1:]), part.dtype)])
        outputs.append(session.run(None, {name: filled})[0][: len(part)])
    return np.concatenate(outputs)


def file_probabilities(scores: np.ndarray, outputs: str) -> np.ndarray:
    """The file's own output as probabilities: a softmax's (or log-softmax's) as they are, sigmoids as they are."""
    if outputs != "softmax" or np.allclose(scores.sum(axis=1), 1, atol=1e-4):
        return scores
    if np.all(scores <= 0) and np.allclose(np.exp(scores).sum(axis=1), 1, atol=1e-4):
        return np.exp(scores)  # a LogSoftmax
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)  # plain scores
