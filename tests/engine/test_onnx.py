"""ONNX in and out: every supported op converted and checked against onnxruntime (a test-only reference),
every refusal naming what was wrong, hostile files refused before any array is made, and every shipped
model and padding mode exported and read back with the same logits."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from engine import SHIPPED_MODELS
from engine.network import build_network, load_network
from engine.onnx_export import export_onnx
from engine.onnx_import import ImportRefused, Limits, check_inputs, import_onnx
from tests.onnx_files import Builder, reference_logits, small_cnn

pytest.importorskip("onnxruntime")


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def assert_same_as_onnxruntime(data: bytes, probabilities: bool = False) -> None:
    network = import_onnx(data).network
    x = check_inputs(network.input_shape)
    ours = network.forward(x)
    ours = softmax(ours) if probabilities else ours
    np.testing.assert_allclose(ours, reference_logits(data, x), rtol=1e-4, atol=1e-5)


# -- every supported op ------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [11, 13, 17, onnx.defs.onnx_opset_version()])
def test_a_small_cnn_with_batch_norm_and_softmax_gives_onnxruntimes_numbers(opset):
    assert_same_as_onnxruntime(small_cnn(opset), probabilities=True)


def test_the_report_says_what_was_folded_and_dropped():
    report = import_onnx(small_cnn()).report
    assert any("BatchNormalization" in line and "folded into conv1" in line for line in report)
    assert "final Softmax dropped: the app turns the scores into probabilities" in report


def conv_then_head(channels: int = 1, size: int = 9, **conv) -> Builder:
    b = Builder((channels, size, size))
    b.conv(3, conv.pop("kernel", 3), channels=channels, **conv)
    return b


def finish(b: Builder, shape: tuple[int, ...]) -> bytes:
    b.op("Flatten", axis=1)
    b.gemm(4, int(np.prod(shape)))
    return b.bytes()


@pytest.mark.parametrize(
    ("conv", "out"),
    [
        ({"pads": [1, 1, 1, 1]}, (3, 9, 9)),
        ({"strides": [2, 2]}, (3, 4, 4)),
        ({"dilations": [2, 2], "pads": [2, 2, 2, 2]}, (3, 9, 9)),
        ({"kernel": (3, 1), "pads": [1, 0, 1, 0], "strides": [1, 2]}, (3, 9, 5)),
        ({"auto_pad": "SAME_UPPER"}, (3, 9, 9)),
        ({"bias": False}, (3, 7, 7)),
    ],
)
def test_conv_pads_strides_dilations_and_no_bias(conv, out):
    b = conv_then_head(**conv)
    b.op("Sigmoid")
    assert_same_as_onnxruntime(finish(b, out))


@pytest.mark.parametrize(
    ("pool", "out"),
    [
        ({"op": "MaxPool", "kernel_shape": [2, 2], "strides": [2, 2]}, (3, 3, 3)),
        ({"op": "MaxPool", "kernel_shape": [3, 3]}, (3, 5, 5)),  # ONNX's stride defaults to 1, not the kernel
        ({"op": "AveragePool", "kernel_shape": [2, 3], "strides": [1, 2], "count_include_pad": 1}, (3, 6, 3)),
        ({"op": "GlobalAveragePool"}, (3, 1, 1)),
    ],
)
def test_pooling(pool, out):
    b = conv_then_head()
    b.op(pool.pop("op"), **pool)
    assert_same_as_onnxruntime(finish(b, out))


def test_reshape_to_batch_by_minus_one_and_pytorchs_computed_shape_are_flattens():
    for computed in (False, True):
        b = conv_then_head()
        b.op("Relu")
        if computed:  # x.view(x.size(0), -1) as torch.onnx.export writes it
            data = b.current
            shape = b.node("Shape", [data])
            batch = b.node("Gather", [shape, b.constant(np.array(0, np.int64))], axis=0)
            batch = b.node("Unsqueeze", [batch, b.constant(np.array([0], np.int64))])
            target = b.node("Concat", [batch, b.constant(np.array([-1], np.int64))], axis=0)
            b.node("Reshape", [data, target])
        else:
            b.op("Reshape", b.constant(np.array([0, -1], np.int64)))
        b.gemm(4, 3 * 7 * 7)
        assert_same_as_onnxruntime(b.bytes())


def test_gemm_without_trans_b_and_with_alpha_beta_and_matmul_plus_add():
    b = conv_then_head()
    b.op("Flatten", axis=1)
    b.gemm(6, 147, trans_b=False, alpha=0.5, beta=2.0)
    b.op("Tanh")
    b.op("MatMul", b.weight((6, 4)))
    b.op("Add", b.weight((4,)))
    assert_same_as_onnxruntime(b.bytes())


@pytest.mark.parametrize("opset", [11, 13])
def test_dropout_identity_and_batch_norm_after_a_linear_layer(opset):
    b = conv_then_head()
    b.op("Relu")
    b.op("Flatten", axis=1)
    b.gemm(6, 147)
    b.batch_norm(6)
    b.op("Identity")
    if opset < 12:
        b.op("Dropout", ratio=0.25)
    else:
        b.op("Dropout", b.constant(np.array(0.25, np.float32)))
    b.gemm(4, 6)
    b.op("LogSoftmax", axis=1)
    data = b.bytes(opset)
    network = import_onnx(data).network
    assert [layer["type"] for layer in network.spec["layers"]][-3:] == ["linear", "dropout", "linear"]
    x = check_inputs(network.input_shape)
    np.testing.assert_allclose(np.log(softmax(network.forward(x))), reference_logits(data, x), rtol=1e-4, atol=1e-5)


def test_three_channels_and_labels_from_the_files_metadata():
    b = conv_then_head(channels=3)
    b.op("Flatten", axis=1)
    b.gemm(2, 3 * 7 * 7)
    model = b.model()
    helper.set_model_props(model, {"labels": '["cat", "dog"]'})
    imported = import_onnx(model.SerializeToString())
    assert imported.network.input_shape == (3, 9, 9)
    assert imported.network.labels == ["cat", "dog"]
    assert_same_as_onnxruntime(model.SerializeToString())


def test_labels_from_metadata_are_plain_text():
    b = conv_then_head(channels=3)
    b.op("Flatten", axis=1)
    b.gemm(3, 3 * 7 * 7)
    model = b.model()
    helper.set_model_props(model, {"labels": json.dumps(["c\x00at", "\x1b[2Jdog\r\n", "\u202e" + "x" * 100])})
    labels = import_onnx(model.SerializeToString()).network.labels
    assert labels[:2] == ["c at", "[2Jdog"]
    assert labels[2].startswith("xxx") and len(labels[2]) == 40 and labels[2].endswith("…")


def test_the_check_logits_kept_at_import_are_onnxruntimes():
    data = small_cnn()
    network = import_onnx(data).network
    kept = np.array(network.meta["import_check"]["logits"])
    np.testing.assert_allclose(softmax(kept), reference_logits(data, check_inputs((1, 8, 8))), rtol=1e-4, atol=1e-5)


# -- refusals, each naming what was wrong ---------------------------------------------------------------


def refused(data: bytes, limits: Limits = Limits()) -> str:
    with pytest.raises(ImportRefused) as caught:
        import_onnx(data, limits)
    return str(caught.value)


def test_an_unsupported_op_names_the_node_and_lists_the_supported_ops():
    b = conv_then_head()
    b.op("Softplus")
    message = refused(finish(b, (3, 7, 7)))
    assert "node '/layer2/Softplus' (Softplus) is not supported" in message
    assert "supported ops: Conv, Relu" in message and "LeakyRelu" in message


def test_a_residual_add_of_two_paths_is_an_add_layer():
    b = conv_then_head(pads=[1, 1, 1, 1])
    first = b.current
    b.op("Relu")
    b.node("Add", [b.current, first])
    data = finish(b, (3, 9, 9))
    layers = import_onnx(data).network.spec["layers"]
    assert [layer["type"] for layer in layers][:3] == ["conv", "relu", "add"]
    assert layers[1]["name"] == "relu1" and layers[1]["input"] == "conv1"  # the branch point: conv1 is read twice
    assert layers[2]["inputs"] == ["relu1", "conv1"]
    assert_same_as_onnxruntime(data)


def test_uneven_pads_become_a_pad_layer_and_grouped_convs_keep_their_groups():
    b = Builder((1, 9, 9))
    b.conv(3, 3, channels=1, pads=[1, 1, 0, 0])  # top and left only
    data = finish(b, (3, 8, 8))
    layers = import_onnx(data).network.spec["layers"]
    assert layers[0] == {"type": "pad", "padding": [1, 0, 1, 0], "name": "pad1"}
    assert_same_as_onnxruntime(data)
    b = Builder((3, 9, 9))
    b.conv(3, 3, channels=1, group=3)  # depthwise: one input channel per filter
    data = finish(b, (3, 7, 7))
    assert import_onnx(data).network.spec["layers"][0]["groups"] == 3
    assert_same_as_onnxruntime(data)


def test_new_activations_and_a_batch_norm_after_an_activation():
    b = conv_then_head()
    b.op("LeakyRelu", alpha=0.1)
    b.batch_norm(3)  # after an activation: not foldable, a batchnorm layer
    b.op("Elu", alpha=0.5)
    b.op("Selu")
    b.op("HardSwish")
    b.op("HardSigmoid", alpha=1 / 6, beta=0.5)
    b.op("Clip", b.constant(np.array(0, np.float32)), b.constant(np.array(6, np.float32)))
    data = finish(b, (3, 7, 7))
    kinds = [layer["type"] for layer in import_onnx(data).network.spec["layers"]]
    assert kinds[:8] == ["conv", "leakyrelu", "batchnorm", "elu", "selu", "hardswish", "hardsigmoid", "relu6"]
    assert_same_as_onnxruntime(data)


@pytest.mark.parametrize(
    ("op", "attrs", "words"),
    [
        ("Conv", {"strides": [0, 0]}, "strides [0, 0]; each must be at least 1"),
        ("Conv", {"dilations": [1, 0]}, "dilations [1, 0]; each must be at least 1"),
        ("Conv", {"pads": [-1, -1, -1, -1]}, "pads [-1, -1, -1, -1]; padding cannot be negative"),
        ("Conv", {"strides": [0, 0], "auto_pad": "SAME_UPPER"}, "strides [0, 0]; each must be at least 1"),
        ("MaxPool", {"kernel_shape": [2, 2], "strides": [0, 0]}, "strides [0, 0]; each must be at least 1"),
        ("AveragePool", {"kernel_shape": [2, 2], "strides": [0, 0]}, "strides [0, 0]; each must be at least 1"),
        ("MaxPool", {"kernel_shape": [0, 2]}, "kernel_shape [0, 2]; each must be at least 1"),
    ],
)
def test_a_window_of_zero_or_negative_size_is_refused_naming_the_node(op, attrs, words):
    b = conv_then_head()
    if op == "Conv":
        b.conv(3, 3, channels=3, **attrs)
    else:
        b.op(op, **attrs)
    message = refused(finish(b, (3, 7, 7)))
    assert f"({op})" in message and words in message, message


def test_padded_or_ceil_pooling_is_refused():
    b = conv_then_head()
    b.op("MaxPool", kernel_shape=[2, 2], pads=[1, 1, 1, 1])
    assert "take no padding" in refused(finish(b, (3, 4, 4)))
    b = conv_then_head()  # 7x7 maps: 3x3 rounding down, 4x4 rounding up
    b.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    assert "ceil_mode" in refused(finish(b, (3, 4, 4)))


def test_two_inputs_or_two_outputs_are_refused():
    model = onnx.load_from_string(small_cnn())
    model.graph.input.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 1, 8, 8]))
    assert "one image input; it has 2" in refused(model.SerializeToString())
    model = onnx.load_from_string(small_cnn())
    model.graph.output.append(helper.make_tensor_value_info("/layer3/Relu_output_0", TensorProto.FLOAT, None))
    assert "one output" in refused(model.SerializeToString())


def test_non_float_weights_and_unknown_opsets_are_refused():
    b = Builder((1, 9, 9))
    b.op("Conv", b.weight((3, 1, 3, 3), dtype=np.int8))
    assert "holds INT8; weights must be float" in refused(finish(b, (3, 7, 7)))
    model = onnx.load_from_string(small_cnn())
    model.opset_import[0].version = 6
    assert "opset 6 is not supported; export with an opset from 7 to" in refused(model.SerializeToString())
    model.opset_import[0].version = 17
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    report = import_onnx(model.SerializeToString()).report
    assert "operator set 'com.microsoft' is declared but no node uses it: ignored" in report
    model.graph.node[1].domain = "com.microsoft"
    assert "is from the operator set 'com.microsoft'" in refused(model.SerializeToString())


def test_inputs_outside_the_engines_bounds_are_refused():
    b = Builder((5, 9, 9))
    b.conv(3, 3, channels=5)
    assert "1 or 3 channels" in refused(finish(b, (3, 7, 7)))
    b = Builder((1, 400, 200))
    b.conv(1, 3, channels=1, strides=[8, 8])
    assert "1 x 400 x 200; convscope takes 1 or 3 channels and sides from 8 to 384" in refused(finish(b, (1, 50, 25)))


# -- hostile files -----------------------------------------------------------------------------------


def test_external_data_naming_a_file_on_the_server_is_refused():
    model = onnx.load_from_string(small_cnn())
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="/etc/passwd")
    assert "stored as external data" in refused(model.SerializeToString())


def test_truncated_random_and_nested_files_are_refused_with_a_message():
    data = small_cnn()
    for bad in (data[: len(data) // 2], np.random.default_rng(0).bytes(5000), b"", b"\x0a" * 5000):
        assert "not an ONNX model" in refused(bad) or "no ONNX graph" in refused(bad)
    # a protobuf nesting bomb: graph > node > attribute > graph > ... deeper than protobuf allows
    bomb = b""
    for _ in range(200):
        bomb = b"\x3a" + _varint(len(bomb)) + bomb  # field 7 (graph), length-delimited
    assert "not an ONNX model" in refused(bomb) or "no ONNX graph" in refused(bomb)


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def test_a_graph_of_ten_thousand_nodes_is_refused_before_it_is_read():
    b = conv_then_head()
    for _ in range(10_000):
        b.op("Identity")
    assert "10003 nodes" in refused(finish(b, (3, 7, 7)))


def test_a_weight_whose_declared_shape_does_not_match_its_bytes_is_refused():
    model = onnx.load_from_string(small_cnn())
    model.graph.initializer[0].dims[0] = 4000
    assert "the file is damaged" in refused(model.SerializeToString())
    model.graph.initializer[0].dims[0] = 2**40
    assert "not a weight's" in refused(model.SerializeToString()) or "damaged" in refused(model.SerializeToString())


# -- export: every model out, and back in -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_every_shipped_model_exports_to_onnxruntime_and_back_with_the_same_logits(name):
    network = load_network(SHIPPED_MODELS[name])
    data = export_onnx(network)
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    model = onnx.load_from_string(data)
    assert model.opset_import[0].version == 17
    assert dict((p.key, p.value) for p in model.metadata_props)["labels"].startswith('["')
    x = check_inputs(network.input_shape)
    np.testing.assert_allclose(reference_logits(data, x), network.forward(x), rtol=1e-4, atol=1e-4)
    back = import_onnx(data).network
    np.testing.assert_allclose(back.forward(x), network.forward(x), rtol=1e-5, atol=1e-5)
    assert back.labels == network.labels


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular", "partial"])
def test_every_padding_mode_exports_with_the_engines_numbers(mode):
    spec = {
        "input": [3, 11, 10],
        "classes": 4,
        "layers": [
            {
                "type": "conv",
                "filters": 5,
                "kernel_size": [3, 2],
                "padding": [2, 1],
                "dilation": [2, 1],
                "stride": [1, 2],
                "padding_mode": mode,
            },
            {"type": "tanh"},
            {"type": "avgpool", "kernel_size": 2},
            {"type": "flatten"},
            {"type": "dropout", "rate": 0.3},
            {"type": "linear", "units": 4},
        ],
    }
    network = build_network(spec, seed=1)
    network.params["conv1.bias"] += 0.3  # a bias that partial padding must add after its ratio
    data = export_onnx(network)
    x = check_inputs(network.input_shape)
    np.testing.assert_allclose(reference_logits(data, x), network.forward(x), rtol=1e-4, atol=1e-5)
    back = import_onnx(data).network  # circular padding too: its Slice + Concat read back as the conv's mode
    assert back.spec["layers"][0].get("padding_mode", "zeros") == mode
    np.testing.assert_allclose(back.forward(x), network.forward(x), rtol=1e-5, atol=1e-5)


def test_the_exported_graph_carries_the_spec_and_pytorchs_node_names():
    network = load_network(SHIPPED_MODELS["lenet"])
    model = onnx.load_from_string(export_onnx(network))
    assert [n.name for n in model.graph.node][:3] == ["/conv1/Conv", "/conv1/Relu", "/pool1/MaxPool"]
    assert {i.name for i in model.graph.initializer} >= {"conv1.weight", "fc3.bias"}
    metadata = {p.key: p.value for p in model.metadata_props}
    assert '"layers"' in metadata["convscope_spec"]
    assert numpy_helper.to_array(model.graph.initializer[0]).shape == (6, 1, 5, 5)
