"""convscope's CNN engine: pure NumPy, (N, C, H, W) layout, PyTorch's conventions.

The engine never imports the web app; everything here works from a notebook too.
"""

from engine.conv import col2im, conv2d, conv2d_backward, conv_transpose2d, conv_windows, im2col
from engine.data import load_digits, read_idx, to_network_input
from engine.filters import PRESETS, FilterPreset, apply_kernel, same_padding
from engine.layers import (
    cross_entropy,
    cross_entropy_backward,
    linear,
    linear_backward,
    log_softmax,
    relu,
    relu_backward,
    softmax,
)
from engine.model import LAYER_NAMES, LeNet, load_model
from engine.padding import PADDING_MODES, partial_conv_ratio
from engine.pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from engine.preprocess import DigitFrame, preprocess_digit

__all__ = [
    "LAYER_NAMES",
    "PADDING_MODES",
    "PRESETS",
    "DigitFrame",
    "FilterPreset",
    "LeNet",
    "apply_kernel",
    "avg_pool2d",
    "avg_pool2d_backward",
    "col2im",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_windows",
    "cross_entropy",
    "cross_entropy_backward",
    "im2col",
    "linear",
    "linear_backward",
    "load_digits",
    "load_model",
    "log_softmax",
    "max_pool2d",
    "max_pool2d_backward",
    "partial_conv_ratio",
    "preprocess_digit",
    "read_idx",
    "relu",
    "relu_backward",
    "same_padding",
    "softmax",
    "to_network_input",
]
