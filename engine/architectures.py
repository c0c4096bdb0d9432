"""Ready-made network specs: the shipped models' and the training page's presets.

Each is plain data for :func:`engine.network.build_network`; shapes are worked out from the input.
"""

from __future__ import annotations

import copy
from typing import Any

from engine.errors import EngineError


def residual_block(name: str, source: str, channels: int, filters: int, stride: int = 1) -> list[dict[str, Any]]:
    """ResNet's basic block, as the training page adds it: conv, BatchNorm, ReLU, conv, BatchNorm, the
    block's input (``source``, of ``channels``) added back, through a 1x1 conv and BatchNorm when the shape
    changes, then ReLU."""
    layers: list[dict[str, Any]] = [
        {"type": "conv", "filters": filters, "kernel_size": 3, "padding": 1, "stride": stride, "name": f"{name}_conv1"},
        {"type": "batchnorm", "name": f"{name}_bn1"},
        {"type": "relu"},
        {"type": "conv", "filters": filters, "kernel_size": 3, "padding": 1, "name": f"{name}_conv2"},
        {"type": "batchnorm", "name": f"{name}_bn2"},
    ]
    shortcut = source
    if stride != 1 or filters != channels:
        layers += [
            {
                "type": "conv",
                "filters": filters,
                "kernel_size": 1,
                "stride": stride,
                "input": source,
                "name": f"{name}_proj",
            },
            {"type": "batchnorm", "name": f"{name}_proj_bn"},
        ]
        shortcut = f"{name}_proj_bn"
    return [*layers, {"type": "add", "inputs": [f"{name}_bn2", shortcut], "name": name}, {"type": "relu"}]


def separable_block(name: str, channels: int, filters: int, stride: int = 1) -> list[dict[str, Any]]:
    """MobileNet's depthwise-separable block: a 3x3 depthwise conv, BatchNorm, ReLU6, then a 1x1 conv to
    ``filters`` channels, BatchNorm, ReLU6."""
    return [
        {
            "type": "conv",
            "filters": channels,
            "kernel_size": 3,
            "padding": 1,
            "stride": stride,
            "groups": channels,
            "name": f"{name}_dw",
        },
        {"type": "batchnorm", "name": f"{name}_dw_bn"},
        {"type": "relu6"},
        {"type": "conv", "filters": filters, "kernel_size": 1, "name": f"{name}_pw"},
        {"type": "batchnorm", "name": f"{name}_pw_bn"},
        {"type": "relu6"},
    ]


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
    # a small ResNet for clothing (He et al., 2016): a stem, a residual block, then one that halves the maps
    # and doubles the channels with a 1x1 projection on its shortcut, global average pooling, one linear layer
    "small-resnet": {
        "input": [1, 28, 28],
        "classes": 10,
        "layers": [
            {"type": "conv", "filters": 16, "kernel_size": 3, "padding": 1, "name": "stem"},
            {"type": "batchnorm", "name": "stem_bn"},
            {"type": "relu"},
            {"type": "maxpool", "kernel_size": 2, "name": "pool"},
            *residual_block("block1", "pool", 16, 16),
            *residual_block("block2", "block1", 16, 32, stride=2),
            {"type": "globalavgpool", "name": "gap"},
            {"type": "flatten"},
            {"type": "linear", "units": 10, "name": "fc"},
        ],
    },
    # MobileNet's idea (Howard et al., 2017): depthwise-separable blocks, each a 3x3 depthwise conv (one filter
    # a channel) then a 1x1 conv that mixes the channels, with BatchNorm and ReLU6 after each
    "mobilenet": {
        "input": [1, 28, 28],
        "classes": 10,
        "layers": [
            {"type": "conv", "filters": 16, "kernel_size": 3, "padding": 1, "stride": 2, "name": "stem"},
            {"type": "batchnorm", "name": "stem_bn"},
            {"type": "relu6"},
            *separable_block("sep1", 16, 32),
            *separable_block("sep2", 32, 64, stride=2),
            *separable_block("sep3", 64, 64),
            {"type": "globalavgpool", "name": "gap"},
            {"type": "flatten"},
            {"type": "linear", "units": 10, "name": "fc"},
        ],
    },
}


def architecture(name: str) -> dict[str, Any]:
    """A copy of a ready-made spec, free to edit."""
    if name not in ARCHITECTURES:
        raise EngineError(f"unknown architecture {name!r}; ready-made ones are {', '.join(ARCHITECTURES)}")
    return copy.deepcopy(ARCHITECTURES[name])


BLOCKS = ("residual", "separable")


def append_block(spec: dict[str, Any], block: str, filters: int, stride: int = 1) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``spec`` with a block after its last layer of maps (before its flatten or pooling head), and
    the new layers' names: ``residual`` (ResNet's basic block, a 1x1 projection on the shortcut when the
    shape changes) or ``separable`` (MobileNet's depthwise-separable block). Named ``block1``, ``sep1``, ...
    as the spec's names allow."""
    from engine.spec import plan_network  # here: the spec module imports the registry, which is not needed above

    if block not in BLOCKS:
        raise EngineError(f"block must be one of {', '.join(BLOCKS)}, got {block!r}")
    plans = plan_network(spec)
    maps = [p for p in plans if len(p.output_shape) == 3]
    if not maps:
        raise EngineError("the design has no layer of maps to put a block after: start with a conv layer")
    after = maps[-1]
    taken = {p.name for p in plans}
    prefix = "block" if block == "residual" else "sep"
    number = next(n for n in range(1, len(plans) + 2) if f"{prefix}{n}" not in taken and f"{prefix}{n}_dw" not in taken)
    name = f"{prefix}{number}"
    source = after.name  # the block's first layer reads the layer before it; the shortcut names it
    channels = after.output_shape[0]
    if block == "residual":
        layers = residual_block(name, source, channels, filters, stride)
    else:
        layers = separable_block(name, channels, filters, stride)
    grown = copy.deepcopy(spec)
    grown["layers"][after.index + 1 : after.index + 1] = layers
    return grown, [layer["name"] for layer in layers if "name" in layer]
