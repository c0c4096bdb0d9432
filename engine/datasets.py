"""The two data sets shipped with the engine, and fitting their 28x28 images to a network's input.

- ``digits``: 8,000 real MNIST digits (LeCun, Cortes, Burges; CC BY-SA 3.0); the test split is the
  800 digits the shipped LeNet never trained on.
- ``fashion``: a Fashion-MNIST subset (Xiao, Rasul, Vollgraf, Zalando Research; MIT): 12,000 images of
  the official training file, 2,000 of the official test file's first 5,000.

Both are white-on-black uint8 (N, 28, 28); ``scripts/make_datasets.py`` says how they were drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.errors import EngineError

DATASET_DIR = Path(__file__).parent / "datasets"
DATASETS = ("digits", "fashion")
SPLITS = ("train", "test")
DIGIT_NAMES = tuple(str(d) for d in range(10))
FASHION_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class Dataset:
    """``images`` uint8 (N, 28, 28), white on black; ``labels`` uint8 (N,); ``classes`` the names."""

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


@lru_cache(maxsize=4)
def load_dataset(name: str, split: str = "train") -> Dataset:
    """A shipped data set's split (read once per process; the arrays are read-only)."""
    if name not in DATASETS:
        raise EngineError(f"unknown data set {name!r}; the shipped ones are {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise EngineError(f"split must be train or test, got {split!r}")
    with np.load(DATASET_DIR / f"{name}.npz", allow_pickle=False) as data:
        images, labels = data[f"{split}_images"], data[f"{split}_labels"]
        classes = tuple(str(c) for c in data["classes"])
    images.flags.writeable = False
    labels.flags.writeable = False
    return Dataset(name, split, images, labels, classes)


def to_network_input(
    images: np.ndarray, input_shape: tuple[int, int, int] = (1, 32, 32), scale: float = 1 / 255
) -> np.ndarray:
    """uint8 images (N, H, W), or (N, C, H, W) in colour, -> floats in [0, 1] shaped (N, C', H', W') for a
    network's input (``scale=1`` for images that are floats in [0, 1] already).

    The picture is centred: padded with black (MNIST's 28x28 -> LeNet's 32x32 adds 2 on each side)
    or cropped evenly; a grayscale picture fills every input channel alike, a colour one fills a
    one-channel input with its mean.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise EngineError(f"images must be (N, H, W) or (N, C, H, W), got shape {images.shape}")
    c, th, tw = input_shape
    x = images.astype(np.float32) * np.float32(scale)
    x = x[:, None] if x.ndim == 3 else x
    for axis, target in ((2, th), (3, tw)):
        size = x.shape[axis]
        if target > size:
            before = (target - size) // 2
            pad = [(0, 0)] * 4
            pad[axis] = (before, target - size - before)
            x = np.pad(x, pad)
        elif target < size:
            start = (size - target) // 2
            x = np.take(x, np.arange(start, start + target), axis=axis)
    if x.shape[1] == c:
        return x
    if x.shape[1] == 1:
        return np.repeat(x, c, axis=1)
    mean: np.ndarray = x.mean(axis=1, keepdims=True)
    return np.repeat(mean, c, axis=1)
