"""convscope's CNN engine: pure NumPy, (N, C, H, W) layout, PyTorch's conventions.

The engine never imports the web app; everything here works from a notebook too.
"""

from pathlib import Path

from engine.architectures import LENET_SPEC
from engine.conv import col2im, conv2d, conv2d_backward, conv_transpose2d, conv_windows, im2col
from engine.data import load_digits, read_idx
from engine.datasets import DATASETS, Dataset, load_dataset, to_network_input
from engine.errors import EngineError, SpecError
from engine.filters import (
    OUTPUT_MAPPINGS,
    PRESETS,
    FilterPreset,
    apply_kernel,
    filter_values,
    same_padding,
    to_pixels,
    with_alpha,
)
from engine.layers import (
    cross_entropy,
    cross_entropy_backward,
    linear,
    linear_backward,
    log_softmax,
    relu,
    relu_backward,
    sigmoid,
    softmax,
    tanh,
)
from engine.network import Classification, Network, build_network, classify, load_network
from engine.padding import PADDING_MODES, pad2d, pad2d_backward, partial_conv_ratio
from engine.pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from engine.preprocess import DigitFrame, preprocess_digit
from engine.spec import plan_network

WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED_MODELS = {"lenet": WEIGHTS_DIR / "lenet.npz", "fashion": WEIGHTS_DIR / "fashion.npz"}


def load_model(path: str | Path | None = None) -> Network:
    """The shipped digit LeNet (``engine/weights/lenet.npz``), or the network saved at ``path``."""
    return load_network(SHIPPED_MODELS["lenet"] if path is None else path)


__all__ = [
    "DATASETS",
    "LENET_SPEC",
    "OUTPUT_MAPPINGS",
    "PADDING_MODES",
    "PRESETS",
    "SHIPPED_MODELS",
    "Classification",
    "Dataset",
    "DigitFrame",
    "EngineError",
    "FilterPreset",
    "Network",
    "SpecError",
    "apply_kernel",
    "avg_pool2d",
    "avg_pool2d_backward",
    "build_network",
    "classify",
    "col2im",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "filter_values",
    "conv_windows",
    "cross_entropy",
    "cross_entropy_backward",
    "im2col",
    "linear",
    "linear_backward",
    "load_dataset",
    "load_digits",
    "load_model",
    "load_network",
    "log_softmax",
    "max_pool2d",
    "max_pool2d_backward",
    "pad2d",
    "pad2d_backward",
    "partial_conv_ratio",
    "plan_network",
    "preprocess_digit",
    "read_idx",
    "relu",
    "relu_backward",
    "same_padding",
    "sigmoid",
    "softmax",
    "tanh",
    "to_pixels",
    "with_alpha",
    "to_network_input",
]
