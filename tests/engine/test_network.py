"""Networks from a description: shapes, names, the forward pass against loop twins, every gradient
against finite differences, the lecture's LeNet, bad specs in words, saving and loading."""

import json

import numpy as np
import pytest

from engine import LENET_SPEC, SpecError, build_network, load_dataset, load_model, load_network, to_network_input
from engine.architectures import ARCHITECTURES, architecture
from engine.conv import conv2d
from engine.graph import swapped_before_pool
from engine.layers import linear, relu
from engine.network import classify
from engine.padding import PADDING_MODES
from engine.pool import max_pool2d
from tests.reference import network_forward_naive, numeric_gradient


def random_spec(rng: np.random.Generator) -> dict:
    """A small random network: a conv in some padding mode (rectangular sizes allowed), an activation,
    maybe a pool, another conv, flatten and linear layers; every shape fits."""
    c, h, w = int(rng.integers(1, 3)), int(rng.integers(7, 11)), int(rng.integers(7, 11))
    mode = str(rng.choice(PADDING_MODES))
    layers = [
        {
            "type": "conv",
            "filters": int(rng.integers(1, 4)),
            "kernel_size": [int(rng.integers(1, 4)), int(rng.integers(1, 4))],
            "stride": int(rng.integers(1, 3)),
            "padding": [int(rng.integers(0, 3)), int(rng.integers(0, 2))],
            "dilation": int(rng.integers(1, 3)),
            "padding_mode": mode,
        },
        {"type": str(rng.choice(["relu", "tanh", "sigmoid"]))},
    ]
    if rng.random() < 0.7:
        layers.append(
            {"type": str(rng.choice(["maxpool", "avgpool"])), "kernel_size": 2, "stride": int(rng.integers(1, 3))}
        )
    layers += [
        {"type": "conv", "filters": 2, "kernel_size": 2, "padding": 1, "padding_mode": "zeros"},
        {"type": str(rng.choice(["relu", "tanh", "sigmoid"]))},
        {"type": "flatten"},
        {"type": "linear", "units": 5},
        {"type": "tanh"},
        {"type": "dropout", "rate": 0.5},
        {"type": "linear", "units": 3},
    ]
    return {"input": [c, h, w], "classes": 3, "layers": layers}


def specs_that_build(seed: int, count: int):
    rng = np.random.default_rng(seed)
    built = 0
    while built < count:
        try:
            network = build_network(random_spec(rng), seed=built)
        except SpecError:
            continue  # a draw whose shapes do not fit; the next one will
        network.params = {k: v.astype(np.float64) for k, v in network.params.items()}
        built += 1
        yield network, rng


# -- the lecture's LeNet ---------------------------------------------------------------------------


def test_lenet_is_a_spec_with_the_lecture_shapes_and_parameter_counts():
    network = build_network(LENET_SPEC)
    rows = network.describe()
    assert [r["name"] for r in rows] == ["input", "conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "fc3"]
    assert [r["output_shape"] for r in rows] == [
        [1, 32, 32], [6, 28, 28], [6, 14, 14], [16, 10, 10], [16, 5, 5], [120], [100], [10]
    ]  # fmt: skip
    assert [r["parameters"] for r in rows] == [0, 156, 0, 2416, 0, 48120, 12100, 1010]
    assert network.parameter_count == 63802
    conv1 = rows[1]
    assert conv1["parameter_formula"] == "6 × (5·5·1 + 1) = 156"
    assert conv1["formula"] == "(32 + 2*0 - 1*(5-1) - 1)/1 + 1 = 28"
    assert conv1["activation"] == "relu"
    assert [r["receptive_field"] for r in rows[1:5]] == [[5, 5], [6, 6], [14, 14], [16, 16]]
    assert rows[5]["dropout"] == 0.25


def test_the_shipped_lenet_gives_the_same_logits_as_the_hand_written_lenet():
    model = load_model()
    p = model.params
    x = to_network_input(load_dataset("digits", "test").images[:16])
    # LeNet written out op by op, as the engine computed it before networks came from specs
    a = max_pool2d(relu(conv2d(x, p["conv1.weight"], p["conv1.bias"])), 2)
    a = max_pool2d(relu(conv2d(a, p["conv2.weight"], p["conv2.bias"])), 2).reshape(16, -1)
    a = relu(linear(relu(linear(a, p["fc1.weight"], p["fc1.bias"])), p["fc2.weight"], p["fc2.bias"]))
    expected = linear(a, p["fc3.weight"], p["fc3.bias"])
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-5, atol=1e-4)
    rebuilt = build_network(LENET_SPEC)
    rebuilt.params = dict(model.params)
    np.testing.assert_allclose(rebuilt.forward(x), expected, rtol=1e-5, atol=1e-4)


def test_activations_are_named_layers_after_their_activation_and_end_with_the_logits():
    model = load_model()
    x = to_network_input(load_dataset("digits", "test").images[:3])
    acts = model.activations(x)
    assert tuple(acts) == ("conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "fc3")
    assert (acts["conv1"] >= 0).all()  # after its ReLU
    np.testing.assert_allclose(acts["fc3"], model.forward(x), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(model.predict_proba(x).sum(axis=1), 1, rtol=1e-6)


def test_a_large_batch_split_across_cores_gives_the_same_logits():
    model = load_model()
    x = to_network_input(load_dataset("digits", "test").images[:200])
    np.testing.assert_allclose(model.forward(x), model.activations(x)["fc3"], rtol=1e-5, atol=1e-5)


# -- any spec: forward and gradients against references --------------------------------------------


def test_random_specs_match_the_loop_twins_forward():
    for network, rng in specs_that_build(seed=0, count=12):
        x = rng.standard_normal((2, *network.input_shape))
        np.testing.assert_allclose(network.forward(x), network_forward_naive(network, x), rtol=1e-9, atol=1e-9)


def test_random_specs_have_every_parameter_gradient_right():
    for network, rng in specs_that_build(seed=1, count=8):
        x = rng.standard_normal((2, *network.input_shape))
        labels = rng.integers(0, 3, 2)
        _, _, grads = network.loss_and_gradients(x, labels)
        assert set(grads) == set(network.params)
        for name, param in network.params.items():
            expected = numeric_gradient(lambda: network.loss_and_gradients(x, labels)[0], param)  # noqa: B023
            np.testing.assert_allclose(grads[name], expected, rtol=1e-4, atol=1e-7, err_msg=f"{name} of {network.spec}")


def test_random_specs_have_the_input_gradient_right():
    for network, rng in specs_that_build(seed=2, count=8):
        x = rng.standard_normal((2, *network.input_shape))
        targets = np.array([0, 2])
        grad = network.input_gradient(x, targets)
        expected = numeric_gradient(lambda: network.forward(x)[[0, 1], targets].sum(), x)  # noqa: B023
        np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-7, err_msg=str(network.spec))


def test_dropout_drops_only_while_training_with_a_generator():
    network = build_network(LENET_SPEC)
    x = np.random.default_rng(0).random((4, 1, 32, 32))
    labels = np.arange(4)
    assert network.loss_and_gradients(x, labels)[0] == network.loss_and_gradients(x, labels)[0]
    with_dropout = network.loss_and_gradients(x, labels, dropout_rng=np.random.default_rng(1))[1]
    assert not np.allclose(with_dropout, network.forward(x))
    np.testing.assert_allclose(network.loss_and_gradients(x, labels)[1], network.forward(x), rtol=1e-5)


# -- bad specs, said in the lecture's words -------------------------------------------------------


def test_the_broken_preset_names_its_layer_and_the_arithmetic():
    with pytest.raises(SpecError) as caught:
        build_network(ARCHITECTURES["broken"])
    assert str(caught.value) == (
        "layer 7 (conv3): a 5x5 kernel does not fit a 2x2 input: (2 + 2*0 - 1*(5-1) - 1)/1 + 1 = -2"
    )
    assert (caught.value.index, caught.value.name) == (6, "conv3")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["layers"].insert(0, {"type": "softmax"}), r"layer 1: unknown layer type 'softmax'"),
        (lambda s: s["layers"][0].update(size=5), r"layer 1 \(conv1\): unknown field 'size' for a conv layer"),
        (lambda s: s["layers"][0].update(filters=0), r"layer 1 \(conv1\): filters must be between 1"),
        (lambda s: s["layers"][0].update(kernel_size=-3), r"layer 1 \(conv1\): kernel_size must be between 1"),
        (lambda s: s["layers"][0].update(padding_mode="mirror"), r"layer 1 \(conv1\): padding_mode must be one of"),
        (lambda s: s["layers"].pop(6), r"layer 7 \(fc1\): a linear layer needs a flat input .* add a flatten"),
        (lambda s: s["layers"][-1].update(units=7), r"layer 14 \(fc3\): the network must end with 10 outputs"),
        (
            lambda s: s["layers"].insert(7, {"type": "conv", "filters": 2, "kernel_size": 1}),
            r"layer 8 \(conv3\): a conv layer needs a volume",
        ),
        (lambda s: s["layers"][2].update(name="conv1"), r"layer 3 \(conv1\): the name 'conv1' is used twice"),
        (lambda s: s["layers"][3].update(input="nowhere"), r"layer 4 \(conv2\): input 'nowhere' is not an earlier"),
        (lambda s: s["layers"][3].update(inputs=["pool1"]), r"layer 4 \(conv2\): a conv layer reads one input"),
        (lambda s: s["layers"][9].update(rate=1.5), r"layer 10 \(dropout\): rate must be a number in \[0, 1\)"),
        (lambda s: s.update(input=[1, 32]), r"input must be \[channels, height, width\]"),
        (lambda s: s.update(classes=1), r"classes must be a whole number of at least 2"),
        (lambda s: s.update(layers=[]), r"layers must be a non-empty list"),
        (
            lambda s: s["layers"][0].update(filters=10**400),
            r"filters must be between 1 and 65536, got a very large number",
        ),
        (lambda s: s["layers"][0].update(kernel_size=[5, 5, 5]), r"kernel_size must be an int or \[height, width\]"),
        (lambda s: s["layers"][0].update(stride=True), r"stride must be a whole number"),
    ],
)
def test_bad_specs_raise_a_spec_error_naming_the_layer(change, message):
    spec = architecture("lenet")
    change(spec)
    with pytest.raises(SpecError, match=message):
        build_network(spec)


def test_rectangular_kernels_and_a_spec_given_name():
    spec = {
        "input": [1, 12, 20],
        "classes": 2,
        "layers": [
            {"type": "conv", "name": "edges", "filters": 3, "kernel_size": [3, 5], "stride": [1, 2], "padding": [1, 0]},
            {"type": "flatten"},
            {"type": "linear", "units": 2},
        ],
    }
    network = build_network(spec)
    edges = network.describe()[1]
    assert edges["name"] == "edges" and edges["output_shape"] == [3, 12, 8]
    assert network.params["edges.weight"].shape == (3, 1, 3, 5)
    assert edges["formula"] == "height (12 + 2*1 - 1*(3-1) - 1)/1 + 1 = 12; width (20 + 2*0 - 1*(5-1) - 1)/2 + 1 = 8.50"
    assert edges["fits"] is False


# -- saving, loading, classifying ----------------------------------------------------------------


def test_save_and_load_round_trip_keeps_spec_weights_and_metadata(tmp_path):
    network = build_network(architecture("tinyvgg"), seed=3)
    network.meta["labels"] = list("abcdefghij")
    network.save(tmp_path / "net.npz")
    with np.load(tmp_path / "net.npz", allow_pickle=False) as data:  # plain arrays and JSON, no pickle
        assert json.loads(str(data["spec"])) == architecture("tinyvgg")
    loaded = load_network(tmp_path / "net.npz")
    assert loaded.spec == network.spec and loaded.labels == list("abcdefghij")
    for name, value in network.params.items():
        np.testing.assert_array_equal(loaded.params[name], value)


def test_loading_something_else_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="parameters missing for this spec: conv1.bias"):
        load_network(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="is not a network file"):
        load_network(tmp_path / "text.npz")


def test_classify_gives_probabilities_and_the_best_classes_first():
    result = classify(np.array([0.0, 2.0, 1.0, 2.0]), k=3)
    np.testing.assert_allclose(result.probabilities.sum(), 1)
    assert [c for c, _ in result.top] == [1, 3, 2]  # a tie goes to the lower index
    assert result.top[0][1] == pytest.approx(np.exp(2) / (1 + 2 * np.exp(2) + np.exp(1)))


def test_the_forward_refuses_the_wrong_input_shape():
    with pytest.raises(ValueError, match=r"input must be \(N, 1, 32, 32\)"):
        load_model().forward(np.zeros((1, 28, 28)))


def test_an_activation_before_a_max_pool_may_run_after_it_with_the_same_logits():
    network = load_model()
    order = [p.type for p in swapped_before_pool(network.plans, training=False)]
    assert order[:3] == ["conv", "maxpool", "relu"]  # swapped: max(relu(a), relu(b)) = relu(max(a, b))
    assert [p.type for p in network.plans][:3] == ["conv", "relu", "maxpool"]  # the spec keeps its order
    x = np.random.default_rng(5).random((70, 1, 32, 32), dtype=np.float32)
    in_spec_order = network.activations(x)[network.layer_names[-1]]  # layer by layer, as the spec says
    np.testing.assert_allclose(network.forward(x), in_spec_order, rtol=1e-5, atol=1e-6)
