"""A model trained in PyTorch on normalised digits (``Normalize(0.1307, 0.3081)``, as PyTorch's MNIST
example does), exported by ``torch.onnx.export`` and imported with that preparation: it reads the app's
0..1 digits as it was trained to, and scores what onnxruntime scores on the normalised pictures. Runs where
torch is installed (``pip install torch==2.13.0``; never a dependency)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from engine.datasets import load_dataset
from engine.onnx_import import Preparation, import_onnx
from tests.onnx_collection import file_probabilities, run_file

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

MEAN, STD = 0.1307, 0.3081


def trained_export() -> bytes:
    """PyTorch's MNIST example network, four epochs of Adam on the 7,200 training digits, normalised."""
    from torch import nn

    torch.manual_seed(0)
    train = load_dataset("digits", "train")
    x = (torch.from_numpy(train.images.astype(np.float32) / 255)[:, None] - MEAN) / STD
    y = torch.from_numpy(np.asarray(train.labels)).long()
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(32 * 12 * 12, 64), nn.ReLU(), nn.Linear(64, 10), nn.LogSoftmax(dim=1),
    )  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(4):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 64):
            batch = order[start : start + 64]
            optimizer.zero_grad()
            nn.functional.nll_loss(net(x[batch]), y[batch]).backward()
            optimizer.step()
    buffer = io.BytesIO()
    torch.onnx.export(
        net.eval(), torch.zeros(1, 1, 28, 28), buffer, input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "N"}}, dynamo=False,
    )  # fmt: skip
    return buffer.getvalue()


def test_a_normalised_pytorch_model_reads_the_apps_digits_once_told_its_mean_and_std():
    data = trained_export()
    test = load_dataset("digits", "test")
    pictures = test.images.astype(np.float32)[:, None] / 255  # the app's digits: 0..1
    labels = np.asarray(test.labels)
    prepared = import_onnx(data, preparation=Preparation(mean=(MEAN,), std=(STD,))).network
    ours = (prepared.forward(pictures).argmax(axis=1) == labels).mean()
    theirs = (run_file(data, (pictures - MEAN) / STD, prepared.meta["file_input"]).argmax(axis=1) == labels).mean()
    assert ours == pytest.approx(theirs, abs=1 / len(labels))  # at most one digit apart (a tie in the last bits)
    assert ours >= 0.95
    # unprepared, the same digits reach it 3.2 times fainter and 0.42 too bright: other numbers throughout
    unprepared = import_onnx(data).network
    assert not np.allclose(unprepared.forward(pictures[:8]), prepared.forward(pictures[:8]), atol=0.5)


def torch_networks() -> dict:
    """Networks as a course writes them in PyTorch: a small ResNet, a MobileNet-style one, a Keras-like
    one with LeakyReLU and a sigmoid output, each in eval mode with BatchNorm statistics away from 0 and 1."""
    from torch import nn

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
            self.body = nn.Sequential(
                nn.Conv2d(8, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                nn.Conv2d(8, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8),
            )  # fmt: skip
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))

        def forward(self, x):
            y = self.stem(x)
            return self.head(torch.relu(self.body(y) + y))

    def separable(cin: int, cout: int, stride: int) -> list:
        return [
            nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(),
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.Hardswish(),
        ]  # fmt: skip

    mobile = nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU6(), *separable(8, 16, 2), *separable(16, 24, 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(24, 4), nn.Softmax(dim=1),
    )  # fmt: skip
    binary = nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.LeakyReLU(0.1), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3), nn.ELU(), nn.Flatten(),
        nn.Linear(8 * 8 * 2, 1), nn.Sigmoid(),
    )  # fmt: skip
    return {"resnet": (Residual(), (3, 64, 64)), "mobilenet": (mobile, (3, 96, 96)), "binary": (binary, (1, 24, 12))}


@pytest.mark.parametrize("name", ["resnet", "mobilenet", "binary"])
def test_pytorch_exports_of_modern_networks_give_onnxruntimes_probabilities(name):
    torch.manual_seed(1)
    net, shape = torch_networks()[name]
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2)
    buffer = io.BytesIO()
    torch.onnx.export(
        net.eval(), torch.zeros(1, *shape), buffer, input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "N"}}, dynamo=False,
    )  # fmt: skip
    network = import_onnx(buffer.getvalue()).network
    x = np.random.default_rng(2).random((4, *shape), dtype=np.float32)
    theirs = file_probabilities(run_file(buffer.getvalue(), x, network.meta["file_input"]), network.meta["outputs"])
    ours = network.predict_proba(x)
    np.testing.assert_allclose(ours[:, -theirs.shape[1] :], theirs, atol=2e-4)  # binary: the "yes" column
