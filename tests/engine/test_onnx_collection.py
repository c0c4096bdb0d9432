"""Real files in: a collection of ONNX classifiers in the shapes each exporter writes them
(:mod:`tests.onnx_collection`) imports, and gives onnxruntime's probabilities for the same pictures."""

from __future__ import annotations

import numpy as np
import pytest

from engine.onnx_import import Preparation, import_onnx
from tests.onnx_collection import COLLECTION, file_probabilities, run_file

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("name", COLLECTION)
def test_each_exporters_file_imports_and_gives_onnxruntimes_probabilities(name):
    data = COLLECTION[name]()
    imported = import_onnx(data, preparation=Preparation())  # the file's own numbers, unprepared
    network = imported.network
    x = np.random.default_rng(1).random((5, *network.input_shape), dtype=np.float32)
    ours = network.predict_proba(x)
    theirs = file_probabilities(run_file(data, x, network.meta["file_input"]), network.meta["outputs"])
    if network.meta["outputs"] == "binary":
        theirs = np.concatenate([1 - theirs, theirs], axis=1)
    np.testing.assert_allclose(ours, theirs, atol=2e-4)
    assert len(imported.report) >= 3


def test_the_report_says_how_each_exporters_quirks_were_read():
    report = "\n".join(import_onnx(COLLECTION["keras_mobilenet_tf2onnx"]()).report)
    assert "operator set 'ai.onnx.ml' is declared but no node uses it: ignored" in report
    assert "input 'input' is channels last (N x H x W x C): read channels first" in report
    assert "(Mul) at the input → normalize1" in report and "(Add) at the input → normalize1" in report
    assert "pads unevenly: [0, 1, 0, 1]" in report
    assert "folded into conv1's weights" in report
    assert "(ReduceMean) over height and width → gap1 (global average pooling)" in report
    old = "\n".join(import_onnx(COLLECTION["pytorch_opset9"]()).report)
    assert "opset 9 upgraded to 11 with onnx's version converter" in old


def test_channels_last_units_reach_the_linear_layer_in_the_engines_order():
    network = import_onnx(COLLECTION["keras_cnn_tf2onnx"]()).network
    assert network.input_shape == (1, 28, 28)
    layers = [layer["type"] for layer in network.spec["layers"]]
    # SAME_UPPER pads a 3x3 window at stride 1 evenly; at stride 2 on 28 rows, one row more below and right
    assert layers == ["conv", "relu", "pad", "conv", "relu", "maxpool", "flatten", "linear"]
    assert network.spec["layers"][2]["padding"] == [0, 1, 0, 1]


def test_sigmoid_outputs_are_a_binary_classifier_or_independent_probabilities():
    binary = import_onnx(COLLECTION["binary_sigmoid_nonsquare"]()).network
    assert binary.labels == ["no", "yes"] and binary.input_shape == (1, 50, 20)
    assert np.allclose(binary.predict_proba(np.zeros((1, 1, 50, 20), np.float32)).sum(), 1)
    multi = import_onnx(COLLECTION["multilabel_sigmoid"]()).network
    assert multi.independent and multi.classes == 5
    probabilities = multi.predict_proba(np.random.default_rng(0).random((4, 3, 32, 32), dtype=np.float32))
    assert np.all((probabilities > 0) & (probabilities < 1)) and not np.allclose(probabilities.sum(axis=1), 1)


def test_the_inputs_preparation_is_a_first_layer_from_the_form_or_the_files_metadata():
    data = COLLECTION["normalised_mnist_props"]()
    network = import_onnx(data).network
    first = network.spec["layers"][0]
    assert first == {"type": "normalize", "name": "preparation", "mean": [0.1307], "std": [0.3081]}
    assert network.meta["preparation"] == {"input_range": "0..1", "mean": [0.1307], "std": [0.3081]}
    x = np.random.default_rng(2).random((3, 1, 28, 28), dtype=np.float32)
    expected = run_file(data, (x - 0.1307) / 0.3081, network.meta["file_input"])
    np.testing.assert_allclose(network.forward(x), expected, rtol=1e-4, atol=1e-4)
    # a model trained on -1..1 colour pictures, per-channel statistics given with the file
    mobile = COLLECTION["keras_mobilenet_tf2onnx"]()
    prepared = import_onnx(mobile, preparation=Preparation("0..255", (0.0,), (1.0,))).network
    x = np.random.default_rng(3).random((2, 3, 96, 96), dtype=np.float32)
    theirs = run_file(mobile, x * 255, prepared.meta["file_input"])
    np.testing.assert_allclose(prepared.predict_proba(x), theirs, atol=2e-4)


@pytest.mark.parametrize(
    ("preparation", "words"),
    [
        (Preparation("0..100"), "input_range: '0..100'; choose one of 0..1, 0..255, -1..1"),
        (Preparation(mean=(0.5, 0.5)), "mean: 2 numbers for a model of 1 channels; give 1 or 1"),
        (Preparation(std=(0.0,)), "std: [0.0]; each must be a number from 0.0001 to 10000"),
    ],
)
def test_a_preparation_that_cannot_be_is_refused_naming_its_field(preparation, words):
    from engine.onnx_import import ImportRefused

    with pytest.raises(ImportRefused, match=words.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        import_onnx(COLLECTION["normalised_mnist_props"](), preparation=preparation)


def test_damaged_numbers_and_unknown_types_are_refused_naming_the_node():
    import onnx
    from onnx import numpy_helper

    from engine.onnx_import import ImportRefused

    def refused(model: onnx.ModelProto) -> str:
        with pytest.raises(ImportRefused) as caught:
            import_onnx(model.SerializeToString())
        return str(caught.value)

    model = onnx.load_from_string(COLLECTION["matlab_input_sub"]())
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    weight = next(t for t in model.graph.initializer if t.name == conv.input[1])
    broken = numpy_helper.to_array(weight).copy()
    broken.flat[0] = np.nan
    weight.CopyFrom(numpy_helper.from_array(broken, weight.name))
    assert "(Conv): its weight holds NaN or infinite numbers" in refused(model)
    model = onnx.load_from_string(COLLECTION["matlab_input_sub"]())
    norm = next(n for n in model.graph.node if n.op_type == "BatchNormalization")
    var = next(t for t in model.graph.initializer if t.name == norm.input[4])
    var.CopyFrom(numpy_helper.from_array(-np.ones(tuple(var.dims), np.float32), var.name))
    assert "a variance plus epsilon is not positive" in refused(model)
    model = onnx.load_from_string(COLLECTION["float64_cast_reducemean"]())
    model.graph.node[0].attribute[0].i = 10**6
    assert "casts to type 1000000; only between float types" in refused(model)
