"""The PyTorch file: its text mirrors the spec (names, shapes, padding), and where torch is installed
(never a dependency) it runs and gives the engine's logits."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from engine import SHIPPED_MODELS
from engine.network import build_network, load_network
from engine.onnx_import import check_inputs
from engine.pytorch_export import export_pytorch

PADDED = {
    "input": [3, 11, 10],
    "classes": 4,
    "layers": [
        {"type": "conv", "filters": 5, "kernel_size": [3, 2], "padding": [2, 1], "stride": [1, 2], "dilation": [2, 1]},
        {"type": "sigmoid"},
        {"type": "maxpool", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "dropout", "rate": 0.3},
        {"type": "linear", "units": 4},
    ],
}


def padded(mode: str):
    spec = json.loads(json.dumps(PADDED))
    spec["layers"][0]["padding_mode"] = mode
    network = build_network(spec, seed=2)
    network.params["conv1.bias"] += 0.25
    return network


def test_lenets_file_names_its_layers_as_the_spec_does():
    text = export_pytorch(load_network(SHIPPED_MODELS["lenet"]), module="lenet")
    assert "self.conv1 = nn.Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(0, 0), dilation=(1, 1))" in text
    assert "self.pool1 = nn.MaxPool2d(kernel_size=(2, 2), stride=(2, 2))" in text
    assert "self.fc3 = nn.Linear(100, 10)" in text
    assert "x = torch.flatten(x, 1)  # -> 400" in text
    assert "def load(path):" in text and "allow_pickle=False" in text
    assert "python lenet.py weights.npz" in text
    compile(text, "lenet.py", "exec")  # valid Python wherever torch is missing


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "partial"])
def test_padding_modes_are_written_as_pytorch_has_them(mode):
    text = export_pytorch(padded(mode))
    if mode == "partial":
        assert "class PartialConv2d(nn.Conv2d):" in text and "self.conv1 = PartialConv2d(3, 5" in text
    else:
        assert f"padding_mode='{mode}'" in text
    assert "nn.functional.dropout(x, 0.3, self.training)" in text


def load_module(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["lenet", "fashion", "zeros", "reflect", "replicate", "circular", "partial"])
def test_where_torch_is_installed_the_file_gives_the_engines_logits(name, tmp_path):
    torch = pytest.importorskip("torch")
    network = load_network(SHIPPED_MODELS[name]) if name in SHIPPED_MODELS else padded(name)
    (tmp_path / "model.py").write_text(export_pytorch(network, module="model"))
    network.save(tmp_path / "weights.npz")
    module = load_module(tmp_path / "model.py")
    x = check_inputs(network.input_shape)
    with torch.no_grad():
        logits = module.load(str(tmp_path / "weights.npz"))(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, network.forward(x), rtol=1e-4, atol=1e-5)
    run = subprocess.run(
        [sys.executable, str(tmp_path / "model.py"), str(tmp_path / "weights.npz")], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    np.testing.assert_allclose(json.loads(run.stdout), network.forward(x[:1])[0], rtol=1e-4, atol=1e-5)


AWKWARD_NAMES = ["lambda", "forward", "training", "__class__", "ｃｏｎｖ2", "conv2"]


def awkwardly_named():
    """Valid spec names that a careless export would make a SyntaxError, a broken module or a collision of."""
    kinds = [("conv", {"filters": 2, "kernel_size": 3})] * 3 + [("maxpool", {"kernel_size": 2})] * 2
    layers = [{"type": kind, "name": name, **fields} for (kind, fields), name in zip(kinds, AWKWARD_NAMES)]
    layers += [{"type": "flatten"}, {"type": "linear", "units": 3, "name": AWKWARD_NAMES[-1]}]
    network = build_network({"input": [1, 24, 24], "classes": 3, "layers": layers}, seed=4)
    for key in network.params:
        network.params[key] += 0.01 * (1 + len(key))  # every tensor different: a swapped load shows
    return network


def test_every_layer_becomes_a_plain_unique_attribute_and_keeps_its_name_beside_it():
    network = awkwardly_named()
    assert [p.owner for p in network.plans if p.named] == AWKWARD_NAMES
    text = export_pytorch(network, module="awkward")
    compile(text, "awkward.py", "exec")  # `self.lambda = ...` would be a SyntaxError
    for line in (
        "self.lambda_layer = nn.Conv2d(1, 2,",
        "self.forward_layer = nn.Conv2d(2, 2,",
        "self.training_layer = nn.Conv2d(2, 2,",
        "self.class_layer = nn.MaxPool2d(",
        "self.conv2_2 = nn.MaxPool2d(",
        "self.conv2 = nn.Linear(",
    ):
        assert line in text, line
    assert "# ｃｏｎｖ2" in text and "# lambda" in text and "# __class__" in text
    names = eval(text.split("convscope_names = ")[1].split("  #")[0])  # a literal dict
    assert names == {
        "lambda_layer": "lambda",
        "forward_layer": "forward",
        "training_layer": "training",
        "class_layer": "__class__",
        "conv2_2": "ｃｏｎｖ2",
        "conv2": "conv2",
    }


def test_the_reserved_attributes_are_every_one_nn_module_has_where_torch_is_installed():
    torch = pytest.importorskip("torch")
    from engine.pytorch_export import MODULE_ATTRIBUTES

    own = {n for n in dir(torch.nn.Module) if not n.startswith("_")} | set(vars(torch.nn.Module()))
    assert {n for n in own if not n.startswith("_")} <= MODULE_ATTRIBUTES


def test_awkward_names_run_where_torch_is_installed(tmp_path):
    torch = pytest.importorskip("torch")
    network = awkwardly_named()
    (tmp_path / "awkward.py").write_text(export_pytorch(network, module="awkward"), encoding="utf-8")
    network.save(tmp_path / "weights.npz")
    module = load_module(tmp_path / "awkward.py")
    net = module.load(str(tmp_path / "weights.npz"))
    assert net.training is False and callable(net.forward)  # nothing of nn.Module's was replaced
    x = check_inputs(network.input_shape)
    with torch.no_grad():
        np.testing.assert_allclose(net(torch.from_numpy(x)).numpy(), network.forward(x), rtol=1e-4, atol=1e-5)
