"""LeNet for 32x32 digits, as in the lecture's "draw your number" demo.

    input   1 x 32 x 32
    conv1   6 x 28 x 28   6 filters 5x5, ReLU
    pool1   6 x 14 x 14   2x2 max, stride 2
    conv2  16 x 10 x 10   16 filters 5x5x6, ReLU
    pool2  16 x  5 x  5   2x2 max, stride 2
    fc1   120             ReLU
    fc2   100             ReLU
    fc3    10             logits (softmax gives the probabilities)

Weights are stored as a plain ``.npz`` of named arrays (``conv1.weight``, ...)
plus a JSON ``meta`` string; nothing is pickled.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from engine.conv import conv2d, conv2d_backward
from engine.layers import cross_entropy, cross_entropy_backward, linear, linear_backward, relu, relu_backward, softmax
from engine.pool import max_pool2d, max_pool2d_backward

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "lenet.npz"
PARALLEL_MIN_BATCH = 64  # below this, splitting costs more than it saves
INPUT_SHAPE = (1, 32, 32)

# name, kind, output shape (C, H, W) or (units,), parameter shapes
ARCHITECTURE: tuple[tuple[str, str, tuple[int, ...], dict[str, tuple[int, ...]]], ...] = (
    ("conv1", "conv", (6, 28, 28), {"weight": (6, 1, 5, 5), "bias": (6,)}),
    ("pool1", "maxpool", (6, 14, 14), {}),
    ("conv2", "conv", (16, 10, 10), {"weight": (16, 6, 5, 5), "bias": (16,)}),
    ("pool2", "maxpool", (16, 5, 5), {}),
    ("fc1", "linear", (120,), {"weight": (120, 400), "bias": (120,)}),
    ("fc2", "linear", (100,), {"weight": (100, 120), "bias": (100,)}),
    ("fc3", "linear", (10,), {"weight": (10, 100), "bias": (10,)}),
)
LAYER_NAMES = tuple(name for name, *_ in ARCHITECTURE)


@dataclass
class LeNet:
    """The network's parameters by name (``"conv1.weight"``: (6, 1, 5, 5), ...) and its metadata."""

    params: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def initialize(cls, seed: int = 0) -> LeNet:
        """He-normal weights (suited to ReLU), zero biases."""
        rng = np.random.default_rng(seed)
        params = {}
        for name, _, _, shapes in ARCHITECTURE:
            for pname, shape in shapes.items():
                if pname == "bias":
                    params[f"{name}.bias"] = np.zeros(shape, np.float32)
                else:
                    fan_in = int(np.prod(shape[1:]))
                    params[f"{name}.weight"] = (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32)
        return cls(params)

    @property
    def parameter_count(self) -> int:
        return sum(p.size for p in self.params.values())

    def layers(self) -> list[dict[str, Any]]:
        """Each layer's name, kind, output shape and number of parameters, in order."""
        return [
            {
                "name": name,
                "kind": kind,
                "output_shape": list(shape),
                "parameters": sum(int(np.prod(s)) for s in shapes.values()),
            }
            for name, kind, shape, shapes in ARCHITECTURE
        ]

    # -- inference -----------------------------------------------------------------

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 4 or x.shape[1:] != INPUT_SHAPE:
            raise ValueError(f"LeNet input must be (N, 1, 32, 32), got {x.shape}")
        return x

    def activations(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every layer's output by name, in order: conv1, pool1, conv2, pool2, fc1, fc2, fc3 (logits)."""
        p = self.params
        x = self._check_input(x)
        out: dict[str, np.ndarray] = {}
        out["conv1"] = relu(conv2d(x, p["conv1.weight"], p["conv1.bias"]))
        out["pool1"] = max_pool2d(out["conv1"], 2)
        out["conv2"] = relu(conv2d(out["pool1"], p["conv2.weight"], p["conv2.bias"]))
        out["pool2"] = max_pool2d(out["conv2"], 2)
        flat = out["pool2"].reshape(len(x), -1)
        out["fc1"] = relu(linear(flat, p["fc1.weight"], p["fc1.bias"]))
        out["fc2"] = relu(linear(out["fc1"], p["fc2.weight"], p["fc2.bias"]))
        out["fc3"] = linear(out["fc2"], p["fc3.weight"], p["fc3.bias"])
        return out

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(N, 1, 32, 32) inputs in [0, 1], white ink on black -> logits (N, 10).

        A large batch is split across the cores: NumPy releases the GIL in its copies and
        products, so threads run the slices in parallel (with one BLAS thread each, as
        ``convscope serve`` sets up, this halves a 256-digit batch on two cores).
        """
        x = self._check_input(x)
        cores = os.cpu_count() or 1
        if len(x) < PARALLEL_MIN_BATCH or cores == 1:
            return self.activations(x)["fc3"]
        parts = np.array_split(x, cores)
        return np.concatenate(list(_executor(cores).map(lambda part: self.activations(part)["fc3"], parts)))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(N, 1, 32, 32) -> probabilities (N, 10), each row summing to 1."""
        return softmax(self.forward(x))

    # -- training ------------------------------------------------------------------

    def loss_and_gradients(
        self, x: np.ndarray, labels: np.ndarray, dropout: float = 0.0, rng: np.random.Generator | None = None
    ) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
        """Mean cross-entropy, the logits, and d(loss)/d(param) for every parameter.

        ``dropout`` zeroes that share of fc1's and fc2's units at random (inverted dropout:
        the rest are scaled up so that inference needs no change).
        """
        p = self.params
        x = self._check_input(x)
        n = len(x)
        # forward, keeping the pre-activation values the backward pass needs
        z1 = conv2d(x, p["conv1.weight"], p["conv1.bias"])
        a1 = relu(z1)
        m1 = max_pool2d(a1, 2)
        z2 = conv2d(m1, p["conv2.weight"], p["conv2.bias"])
        a2 = relu(z2)
        m2 = max_pool2d(a2, 2)
        flat = m2.reshape(n, -1)
        z3 = linear(flat, p["fc1.weight"], p["fc1.bias"])
        keep3, keep4 = _dropout_masks(rng, dropout, (n, 120), (n, 100))
        a3 = relu(z3) * keep3
        z4 = linear(a3, p["fc2.weight"], p["fc2.bias"])
        a4 = relu(z4) * keep4
        logits = linear(a4, p["fc3.weight"], p["fc3.bias"])
        loss = cross_entropy(logits, labels)

        # backward, layer by layer in reverse
        g: dict[str, np.ndarray] = {}
        d = cross_entropy_backward(logits, labels).astype(np.float32)
        d, g["fc3.weight"], g["fc3.bias"] = linear_backward(d, a4, p["fc3.weight"])
        d, g["fc2.weight"], g["fc2.bias"] = linear_backward(relu_backward(d * keep4, z4), a3, p["fc2.weight"])
        d, g["fc1.weight"], g["fc1.bias"] = linear_backward(relu_backward(d * keep3, z3), flat, p["fc1.weight"])
        d = max_pool2d_backward(d.reshape(m2.shape), a2, 2)
        d, g["conv2.weight"], g["conv2.bias"] = conv2d_backward(relu_backward(d, z2), m1, p["conv2.weight"])
        d = max_pool2d_backward(d, a1, 2)
        _, g["conv1.weight"], g["conv1.bias"] = conv2d_backward(relu_backward(d, z1), x, p["conv1.weight"])
        return loss, logits, g

    # -- persistence ---------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, meta=np.array(json.dumps(self.meta)), **self.params)

    @classmethod
    def load(cls, path: str | Path) -> LeNet:
        expected = {f"{name}.{p}": shape for name, _, _, shapes in ARCHITECTURE for p, shape in shapes.items()}
        with np.load(path, allow_pickle=False) as data:
            missing = sorted(set(expected) - set(data.files))
            if missing:
                raise ValueError(f"{path} is not a LeNet weights file: missing {', '.join(missing)}")
            params = {k: data[k].astype(np.float32) for k in expected}
            meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
        for k, shape in expected.items():
            if params[k].shape != shape:
                raise ValueError(f"{path}: {k} has shape {params[k].shape}, expected {shape}")
        return cls(params, meta)


def _dropout_masks(rng, rate: float, *shapes) -> list[np.ndarray | float]:
    if rate <= 0:
        return [1.0] * len(shapes)
    rng = rng or np.random.default_rng()
    return [(rng.random(shape) >= rate).astype(np.float32) / (1 - rate) for shape in shapes]


@lru_cache(maxsize=1)
def _executor(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lenet")


def load_model(path: str | Path | None = None) -> LeNet:
    """The trained LeNet shipped in ``engine/weights/lenet.npz`` (or the one at ``path``)."""
    return LeNet.load(DEFAULT_WEIGHTS if path is None else path)
