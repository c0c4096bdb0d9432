"""Modern CNNs: graphs (a layer names its input; add and concat merge), BatchNorm, grouped and depthwise
convolutions, global average pooling, asymmetric padding and six more activations. Each new op against its
loop twin and finite differences; random graphs against the loop twins, and against PyTorch (forward,
input and weight gradients, three training steps) where torch is installed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import channels_last, graph
from engine.errors import SpecError
from engine.kinds import KINDS, Run
from engine.memory import inference_bytes
from engine.network import build_network
from engine.pytorch_export import pytorch_twin
from engine.spec import plan_network
from tests.reference import (
    activation_naive,
    batchnorm_naive,
    conv2d_naive,
    global_avgpool_naive,
    network_forward_naive,
    numeric_gradient,
    pad_naive,
)

ACTIVATIONS = ["relu", "tanh", "sigmoid", "leakyrelu", "elu", "selu", "relu6", "hardsigmoid", "hardswish"]


def one_layer(layer: dict, input_shape: list[int], classes: int = 2) -> tuple:
    """A network of ``layer`` then a linear head (flat ``input_shape``: flattened from a 1x1 volume first), and
    the layer's plan."""
    if "name" not in layer and KINDS[layer["type"]].prefix is None:
        layer["name"] = "probe"
    if len(input_shape) == 1:
        layers = [{"type": "flatten"}, layer, {"type": "linear", "units": classes}]
        spec = {"input": [input_shape[0], 1, 1], "classes": classes, "layers": layers}
    else:
        layers = [layer, {"type": "flatten"}, {"type": "linear", "units": classes}]
        spec = {"input": input_shape, "classes": classes, "layers": layers}
    network = build_network(spec, seed=3)
    return network, network.plans[len(input_shape) == 1]


def run_layer(plan, x_nchw: np.ndarray, params: dict, training: bool = False) -> np.ndarray:
    """The layer's forward pass alone, in the engine's channels-last layout, reported as (N, C, H, W)."""
    x = channels_last.to_channels_last(x_nchw) if x_nchw.ndim == 4 else x_nchw
    y, _ = plan.kind.forward(plan, [x], params, Run(training=training, keep=True))
    return channels_last.to_channels_first(y) if y.ndim == 4 else y


def layer_gradient_check(plan, x: np.ndarray, params: dict, training: bool = False) -> None:
    """The layer's backward pass against central differences of its forward pass (float64)."""
    from engine.kinds import Needs

    x = x.astype(np.float64)
    params = {k: v.astype(np.float64) for k, v in params.items()}
    y = run_layer(plan, x, params, training)
    weights = np.random.default_rng(1).standard_normal(y.shape)

    def loss() -> float:
        return float((run_layer(plan, x, params, training) * weights).sum())

    xl = channels_last.to_channels_last(x) if x.ndim == 4 else x
    _, cache = plan.kind.forward(plan, [xl], params, Run(training=training, keep=True))
    seed = channels_last.to_channels_last(weights) if weights.ndim == 4 else weights
    grads: dict = {}
    (grad_x,) = plan.kind.backward(plan, seed, cache, params, grads, Needs((True,), True))
    grad_x = channels_last.to_channels_first(grad_x) if grad_x.ndim == 4 else grad_x
    np.testing.assert_allclose(grad_x, numeric_gradient(loss, x), rtol=1e-5, atol=1e-6)
    for key, grad in grads.items():
        np.testing.assert_allclose(grad, numeric_gradient(loss, params[key]), rtol=1e-5, atol=1e-6, err_msg=key)


# -- each new op: its loop twin and its gradients --------------------------------------------------------


@pytest.mark.parametrize(
    ("channels", "filters", "groups", "stride", "padding", "mode"),
    [
        (4, 4, 4, 1, 1, "zeros"),  # depthwise
        (4, 8, 4, 2, 1, "zeros"),  # depthwise with two filters a channel
        (6, 9, 3, 1, 0, "zeros"),  # three groups of two channels
        (4, 6, 2, 1, 1, "reflect"),
        (4, 4, 2, 1, 1, "partial"),
    ],
)
def test_a_grouped_convolution_is_its_loop_twin_and_its_gradients_check_out(
    channels, filters, groups, stride, padding, mode
):
    layer = {"type": "conv", "filters": filters, "kernel_size": 3, "stride": stride, "padding": padding}
    layer.update(groups=groups, padding_mode=mode)
    network, plan = one_layer(layer, [channels, 7, 6])
    x = np.random.default_rng(0).standard_normal((2, channels, 7, 6))
    w, b = network.params["conv1.weight"], network.params["conv1.bias"] + 0.1
    expected = conv2d_naive(x, w, b, (stride, stride), (padding, padding), (1, 1), mode, groups)
    got = run_layer(plan, x.astype(np.float32), {"conv1.weight": w, "conv1.bias": b})
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert network.params["conv1.weight"].shape == (filters, channels // groups, 3, 3)
    layer_gradient_check(plan, x, {"conv1.weight": w, "conv1.bias": b})


def test_groups_that_do_not_divide_the_channels_are_a_spec_error_in_words():
    with pytest.raises(SpecError, match=r"groups 4 must divide both the input channels \(6\) and the filters \(8\)"):
        one_layer({"type": "conv", "filters": 8, "kernel_size": 3, "groups": 4}, [6, 8, 8])


@pytest.mark.parametrize("shape", [[3, 5, 4], [7]])
def test_batchnorm_trains_on_the_batchs_statistics_and_is_used_with_its_running_ones(shape):
    network, plan = one_layer({"type": "batchnorm"}, shape)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, *shape)) * 3 + 1
    params = {k: v.copy() for k, v in network.params.items() if k.startswith("bn1.")}
    params["bn1.weight"] += rng.standard_normal(shape[0]).astype(np.float32)
    params["bn1.bias"] += rng.standard_normal(shape[0]).astype(np.float32)
    as_channels = x if len(shape) == 3 else x.reshape(6, shape[0])
    trained = run_layer(plan, x.astype(np.float32), params, training=True)
    expected = batchnorm_naive(as_channels, params["bn1.weight"], params["bn1.bias"])
    np.testing.assert_allclose(trained, expected, rtol=1e-4, atol=1e-4)
    layer_gradient_check(plan, x, params, training=True)
    layer_gradient_check(plan, x, params, training=False)
    # a training pass moves the running statistics a tenth of the way to the batch's (the variance unbiased)
    state = {k: v.copy() for k, v in params.items()}
    inputs = [channels_last.to_channels_last(x) if x.ndim == 4 else x]
    plan.kind.forward(plan, inputs, state, Run(training=True, state=state))
    axes = (0, 2, 3) if len(shape) == 3 else (0,)
    mean, var = x.mean(axis=axes), x.var(axis=axes, ddof=1)
    np.testing.assert_allclose(state["bn1.running_mean"], 0.9 * params["bn1.running_mean"] + 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(state["bn1.running_var"], 0.9 * params["bn1.running_var"] + 0.1 * var, rtol=1e-5)
    used = run_layer(plan, x.astype(np.float32), state)
    stats = state["bn1.running_mean"], state["bn1.running_var"]
    expected = batchnorm_naive(as_channels, state["bn1.weight"], state["bn1.bias"], *stats)
    np.testing.assert_allclose(used, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_a_pad_layer_pads_each_side_its_own_width(mode):
    network, plan = one_layer({"type": "pad", "padding": [1, 2, 0, 3], "padding_mode": mode}, [2, 4, 5])
    assert plan.output_shape == (2, 7, 8)
    x = np.random.default_rng(4).standard_normal((2, 2, 4, 5))
    np.testing.assert_allclose(run_layer(plan, x, {}), pad_naive(x, (1, 2, 0, 3), mode))
    layer_gradient_check(plan, x, {})


def test_a_pad_too_wide_for_its_mode_is_a_spec_error():
    with pytest.raises(SpecError, match="reflect padding 4 needs an input height above 4"):
        one_layer({"type": "pad", "padding": [4, 0, 0, 0], "padding_mode": "reflect"}, [1, 4, 6])


@pytest.mark.parametrize("kind", ACTIVATIONS)
def test_every_activation_is_its_definition_and_its_gradient_checks_out(kind):
    settings = {"leakyrelu": {"slope": 0.2}, "elu": {"alpha": 0.7}}.get(kind, {})
    network, plan = one_layer({"type": kind, **settings}, [2, 3, 4])
    # values clear of every kink (0, -3, 3, 6), where finite differences would straddle two slopes
    x = np.random.default_rng(6).choice([-7.3, -4.1, -2.2, -0.6, 0.4, 1.7, 2.6, 4.5, 7.2], (2, 2, 3, 4))
    np.testing.assert_allclose(run_layer(plan, x, {}), activation_naive(kind, x, **settings), rtol=1e-12)
    layer_gradient_check(plan, x, {})


def test_global_average_pooling_is_each_channels_mean():
    network, plan = one_layer({"type": "globalavgpool"}, [3, 5, 4])
    x = np.random.default_rng(7).standard_normal((2, 3, 5, 4))
    assert plan.output_shape == (3, 1, 1)
    np.testing.assert_allclose(run_layer(plan, x, {}), global_avgpool_naive(x))
    layer_gradient_check(plan, x, {})


# -- graphs ------------------------------------------------------------------------------------------------

RESNET_BLOCK = {
    "input": [3, 8, 8],
    "classes": 4,
    "layers": [
        {"type": "conv", "filters": 6, "kernel_size": 3, "padding": 1},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "conv", "filters": 6, "kernel_size": 3, "padding": 1},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "conv", "filters": 6, "kernel_size": 3, "padding": 1},
        {"type": "batchnorm"},
        {"type": "add", "inputs": ["bn3", "bn1"]},
        {"type": "relu"},
        {"type": "globalavgpool"},
        {"type": "flatten"},
        {"type": "linear", "units": 4},
    ],
}


def test_a_residual_block_is_a_graph_with_its_shapes_and_names():
    plans = plan_network(RESNET_BLOCK)
    add = next(p for p in plans if p.type == "add")
    assert add.name == "add1" and add.input_names == ("bn3", "bn1") and add.output_shape == (6, 8, 8)
    assert plans[add.sources[1]].name == "bn1" and plans[add.sources[1]].type == "relu"  # bn1 reports after its ReLU
    rows = build_network(RESNET_BLOCK).describe()
    assert [r["name"] for r in rows] == ["input", "conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "add1", "gap1", "fc1"]
    row = next(r for r in rows if r["name"] == "add1")
    assert row["inputs"] == ["bn3", "bn1"] and row["activation"] == "relu" and row["draw"] == "merge"
    assert next(r for r in rows if r["name"] == "bn1")["parameters"] == 12  # a scale and a shift a channel


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda s: s["layers"][8].update(inputs=["bn3", "input"]),
            r"add needs inputs of one shape, got 6x8x8 and 3x8x8: put a 1x1 conv",
        ),
        (lambda s: s["layers"][8].update(inputs=["bn3"]), r'needs "inputs": the names of two or more'),
        (lambda s: s["layers"][8].update(inputs=["bn3", "fc1"]), r"input 'fc1' is not an earlier layer"),
        (lambda s: s["layers"][6].update(input="bn1"), r"the output of bn2 goes nowhere"),
    ],
)
def test_a_broken_graph_is_a_spec_error_naming_the_layer(change, words):
    spec = json.loads(json.dumps(RESNET_BLOCK))
    change(spec)
    with pytest.raises(SpecError, match=words):
        plan_network(spec)


def test_a_concat_stacks_the_channels_of_branches():
    spec = {
        "input": [1, 6, 6],
        "classes": 3,
        "layers": [
            {"type": "conv", "filters": 2, "kernel_size": 3, "padding": 1, "name": "left"},
            {"type": "conv", "filters": 3, "kernel_size": 1, "input": "input", "name": "right"},
            {"type": "concat", "inputs": ["left", "right"]},
            {"type": "flatten"},
            {"type": "linear", "units": 3},
        ],
    }
    network = build_network(spec, seed=2)
    assert network.plans[2].output_shape == (5, 6, 6)
    x = np.random.default_rng(0).random((2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(network.forward(x), network_forward_naive(network, x), rtol=1e-4, atol=1e-5)


def test_a_skip_connection_keeps_its_shortcut_in_the_inference_memory():
    chain = {**RESNET_BLOCK, "layers": [layer for layer in RESNET_BLOCK["layers"] if layer["type"] != "add"]}
    assert inference_bytes(plan_network(RESNET_BLOCK)) > inference_bytes(plan_network(chain))


MODES = ["zeros", "reflect"]


def random_graph(seed: int) -> dict:
    """A random modern network: a stem, two blocks (residual, depthwise-separable or two branches
    concatenated), each with a random activation, then global pooling (or a max pool) and a head."""
    rng = np.random.default_rng(seed)
    act = lambda: {"type": str(rng.choice(ACTIVATIONS))}  # noqa: E731
    c = int(rng.choice([4, 6]))
    stem = {"type": "conv", "filters": c, "kernel_size": 3, "padding": 1, "name": "stem"}
    layers = [stem, {"type": "batchnorm", "name": "stem_bn"}, act()]
    previous = "stem_bn"
    for b in range(2):
        kind = int(rng.integers(3))
        if kind == 0:  # residual
            layers += [
                {"type": "conv", "filters": c, "kernel_size": 3, "padding": 1, "name": f"r{b}a"},
                {"type": "batchnorm", "name": f"r{b}n"},
                act(),
                {
                    "type": "conv",
                    "filters": c,
                    "kernel_size": 3,
                    "padding": 1,
                    "padding_mode": str(rng.choice(["zeros", "reflect"])),
                },
                {"type": "batchnorm", "name": f"r{b}m"},
                {"type": "add", "inputs": [f"r{b}m", previous], "name": f"r{b}"},
                act(),
            ]
        elif kind == 1:  # depthwise-separable
            layers += [
                {"type": "conv", "filters": c, "kernel_size": 3, "padding": 1, "groups": c, "name": f"d{b}dw"},
                {"type": "batchnorm"},
                {"type": "relu6"},
                {"type": "conv", "filters": c, "kernel_size": 1, "name": f"d{b}"},
                act(),
            ]
        else:  # two branches, concatenated, then a 1x1 back to c channels
            layers += [
                {"type": "conv", "filters": 2, "kernel_size": 3, "padding": 1, "name": f"c{b}l"},
                act(),
                {
                    "type": "conv",
                    "filters": c - 2,
                    "kernel_size": 1,
                    "input": previous,
                    "groups": 2 if c % 2 == 0 else 1,
                    "name": f"c{b}r",
                },
                {"type": "concat", "inputs": [f"c{b}l", f"c{b}r"], "name": f"c{b}"},
            ]
        previous = next(layer["name"] for layer in reversed(layers) if "name" in layer)
    head = [{"type": "globalavgpool"}] if rng.random() < 0.5 else [{"type": "maxpool", "kernel_size": 2}]
    layers += [*head, {"type": "flatten"}, {"type": "linear", "units": 3}]
    for layer in layers:  # settings for the activations that take them
        if layer["type"] == "leakyrelu":
            layer["slope"] = 0.1
        if layer["type"] == "elu":
            layer["alpha"] = 0.8
    return {"input": [3, 8, 8], "classes": 3, "layers": layers}


def randomised(network):
    """Running statistics and BatchNorm scales away from their initial 0, 1 (so a mix-up shows)."""
    rng = np.random.default_rng(9)
    for key, value in network.params.items():
        if key.endswith(("running_mean", "bias")):
            value += rng.normal(0, 0.2, value.shape).astype(np.float32)
        elif key.endswith("running_var"):
            value *= rng.uniform(0.5, 2, value.shape).astype(np.float32)
    return network


@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_give_their_loop_twins_logits(seed):
    network = randomised(build_network(random_graph(seed), seed=seed))
    x = np.random.default_rng(seed).random((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(network.forward(x), network_forward_naive(network, x), rtol=1e-4, atol=1e-4)


def test_inference_folds_a_batchnorm_into_the_weighted_layer_it_alone_reads():
    layers = [
        {"type": "conv", "filters": 4, "kernel_size": 3, "padding": 1, "padding_mode": "partial", "name": "c1"},
        {"type": "batchnorm", "name": "b1"},
        {"type": "relu"},
        {"type": "conv", "filters": 4, "kernel_size": 3, "padding": 1, "groups": 4, "name": "dw"},
        {"type": "batchnorm", "name": "b2"},
        {"type": "conv", "filters": 4, "kernel_size": 1, "input": "dw", "name": "side"},  # dw has two readers
        {"type": "add", "inputs": ["b2", "side"], "name": "sum"},
        {"type": "flatten"},
        {"type": "linear", "units": 5, "name": "fc1"},
        {"type": "batchnorm", "name": "b3"},
        {"type": "linear", "units": 3, "name": "fc2"},
    ]
    network = randomised(build_network({"input": [2, 6, 6], "classes": 3, "layers": layers}, seed=4))
    plans, params = graph.folded_batchnorm(network.plans, network.params)
    kinds = [plan.type for plan in plans]
    assert kinds == ["conv", "relu", "conv", "batchnorm", "conv", "add", "flatten", "linear", "linear"]
    assert [plan.index for plan in plans] == list(range(9)) and plans[1].sources == (0,) and plans[8].sources == (7,)
    assert not np.array_equal(params["c1.weight"], network.params["c1.weight"])  # a copy, the network untouched
    x = np.random.default_rng(4).standard_normal((3, 2, 6, 6)).astype(np.float32)
    folded = graph.forward(plans, channels_last.to_channels_last(x), params, Run()).output
    np.testing.assert_allclose(folded, network_forward_naive(network, x), rtol=1e-4, atol=1e-4)


def test_a_batchnorm_networks_step_is_its_whole_batchs_on_any_number_of_cores(monkeypatch):
    network = randomised(build_network(RESNET_BLOCK, seed=1))
    rng = np.random.default_rng(0)
    x, labels = rng.random((64, 3, 8, 8)).astype(np.float32), rng.integers(0, 4, 64)
    one, two = network.copy(), network.copy()
    whole = one.training_step(x, labels, None)
    monkeypatch.setattr("engine.network.available_cores", lambda: 2)
    split = two.loss_and_gradients(x, labels)  # two slices on two threads, meeting at every BatchNorm
    assert split[0] == pytest.approx(whole[0], rel=1e-6)
    np.testing.assert_allclose(split[1], whole[1], rtol=1e-5, atol=1e-6)
    scale = max(float(np.abs(g).max()) for g in whole[2].values())  # a bias before a BatchNorm gets ~0
    for key in whole[2]:
        np.testing.assert_allclose(split[2][key], whole[2][key], rtol=1e-4, atol=1e-5 * scale, err_msg=key)
    for key in one.params:  # the running statistics moved once, by the whole batch's
        np.testing.assert_allclose(two.params[key], one.params[key], rtol=1e-5, atol=1e-7, err_msg=key)


# -- against PyTorch, where it is installed (never a dependency) ------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_are_pytorchs_forward_gradients_and_three_training_steps(seed, tmp_path):
    torch = pytest.importorskip("torch")
    network = randomised(build_network(random_graph(seed), seed=seed))
    twin = pytorch_twin(network, tmp_path)
    rng = np.random.default_rng(seed)
    x, labels = rng.random((8, 3, 8, 8)).astype(np.float32), rng.integers(0, 3, 8)
    tx = torch.tensor(x, requires_grad=True)
    logits = twin(tx)
    np.testing.assert_allclose(network.forward(x), logits.detach().numpy(), rtol=1e-4, atol=1e-5)
    logits[:, 1].sum().backward()
    np.testing.assert_allclose(network.input_gradient(x, 1), tx.grad.numpy(), rtol=1e-3, atol=1e-5)
    twin.train()
    optimizer = torch.optim.SGD(twin.parameters(), lr=0.05)
    names = twin.convscope_names
    for step in range(3):
        loss, _, grads = network.loss_and_gradients(x, labels)
        optimizer.zero_grad()
        torch_loss = torch.nn.functional.cross_entropy(twin(torch.tensor(x)), torch.tensor(labels))
        torch_loss.backward()
        assert loss == pytest.approx(torch_loss.item(), rel=1e-4), step
        torch_grads = {f"{names[k.split('.')[0]]}.{k.split('.', 1)[1]}": p.grad for k, p in twin.named_parameters()}
        scale = max(float(np.abs(grad).max()) for grad in grads.values())  # a bias before a BatchNorm gets ~0
        for key, grad in grads.items():
            np.testing.assert_allclose(
                grad, torch_grads[key].numpy(), rtol=1e-3, atol=2e-4 * scale, err_msg=f"{key} step {step}"
            )
        optimizer.step()
        for key in network.trainable_keys:
            network.params[key] -= 0.05 * grads[key]
        state = {f"{names[k.split('.')[0]]}.{k.split('.', 1)[1]}": v for k, v in twin.state_dict().items()}
        for key, value in network.params.items():
            np.testing.assert_allclose(
                value, state[key].numpy(), rtol=1e-3, atol=1e-5, err_msg=f"{key} after step {step}"
            )


@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_export_to_onnxruntime_and_import_back_with_the_same_logits(seed):
    pytest.importorskip("onnxruntime")
    from engine.onnx_export import export_onnx
    from engine.onnx_import import check_inputs, import_onnx
    from tests.onnx_files import reference_logits

    network = randomised(build_network(random_graph(seed), seed=seed))
    data = export_onnx(network)
    x = check_inputs(network.input_shape)
    np.testing.assert_allclose(reference_logits(data, x), network.forward(x), rtol=1e-4, atol=1e-4)
    back = import_onnx(data).network
    np.testing.assert_allclose(back.forward(x), network.forward(x), rtol=1e-4, atol=1e-4)
