"""Ready-made network specs: the shipped models' and the training page's presets.

Each is plain data for :func:`engine.network.build_network`; shapes are worked out from the input.
"""

from __future__ import annotations

import copy
from typing import Any

from engine.errors import EngineError

# The lecture's LeNet-5, as the shipped digit model is built: MNIST's 28x28 digits padded to 32x32.
LENET_SPEC: dict[str, Any] = {
    "input": [1, 32, 32],
    "classes": 10,
    "layers": [
        {"type": "conv", "filters": 6, "kernel_size": 5},
        {"type": "relu"},
        {"type": "maxpool", "kernel_size": 2},
        {"type": "conv", "filters": 16, "kernel_size": 5},
        {"type": "relu"},
        {"type": "maxpool", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "linear", "units": 120},
        {"type": "relu"},
        {"type": "dropout", "rate": 0.25},
        {"type": "linear", "units": 100},
        {"type": "relu"},
        {"type": "dropout", "rate": 0.25},
        {"type": "linear", "units": 10},
    ],
}

# The shipped clothing classifier: LeNet's shape with more filters, padded convolutions on 28x28.
FASHION_SPEC: dict[str, Any] = {
    "input": [1, 28, 28],
    "classes": 10,
    "layers": [
        {"type": "conv", "filters": 16, "kernel_size": 5, "padding": 2},
        {"type": "relu"},
        {"type": "maxpool", "kernel_size": 2},
        {"type": "conv", "filters": 32, "kernel_size": 5, "padding": 2},
        {"type": "relu"},
        {"type": "maxpool", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "linear", "units": 128},
        {"type": "relu"},
        {"type": "dropout", "rate": 0.3},
        {"type": "linear", "units": 10},
    ],
}

ARCHITECTURES: dict[str, dict[str, Any]] = {
    # the lecture's LeNet on MNIST's 28x28 padded to 32x32
    "lenet": LENET_SPEC,
    # one conv layer: the smallest network that still learns filters
    "tiny": {
        "input": [1, 28, 28],
        "classes": 10,
        "layers": [
            {"type": "conv", "filters": 4, "kernel_size": 5},
            {"type": "relu"},
            {"type": "maxpool", "kernel_size": 4},
            {"type": "flatten"},
            {"type": "linear", "units": 10},
        ],
    },
    # CNN Explainer's Tiny VGG (two blocks of two 3x3 convs and a pool), scaled to 28x28
    "tinyvgg": {
        "input": [1, 28, 28],
        "classes": 10,
        "layers": [
            {"type": "conv", "filters": 10, "kernel_size": 3, "padding": 1},
            {"type": "relu"},
            {"type": "conv", "filters": 10, "kernel_size": 3, "padding": 1},
            {"type": "relu"},
            {"type": "maxpool", "kernel_size": 2},
            {"type": "conv", "filters": 10, "kernel_size": 3, "padding": 1},
            {"type": "relu"},
            {"type": "conv", "filters": 10, "kernel_size": 3, "padding": 1},
            {"type": "relu"},
            {"type": "maxpool", "kernel_size": 2},
            {"type": "flatten"},
            {"type": "linear", "units": 10},
        ],
    },
    # a third 5x5 conv after the maps have shrunk to 2x2: it does not fit, and the page says why
    "broken": {
        "input": [1, 28, 28],
        "classes": 10,
        "layers": [
            {"type": "conv", "filters": 6, "kernel_size": 5},
            {"type": "relu"},
            {"type": "maxpool", "kernel_size": 2},
            {"type": "conv", "filters": 16, "kernel_size": 5},
            {"type": "relu"},
            {"type": "maxpool", "kernel_size": 4},
            {"type": "conv", "filters": 32, "kernel_size": 5},
            {"type": "relu"},
            {"type": "flatten"},
            {"type": "linear", "units": 10},
        ],
    },
    "fashion": FASHION_SPEC,
}


def architecture(name: str) -> dict[str, Any]:
    """A copy of a ready-made spec, free to edit."""
    if name not in ARCHITECTURES:
        raise EngineError(f"unknown architecture {name!r}; ready-made ones are {', '.join(ARCHITECTURES)}")
    return copy.deepcopy(ARCHITECTURES[name])
