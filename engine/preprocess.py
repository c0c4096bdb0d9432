"""Turning any picture of a digit into the 32x32 frame LeNet was trained on.

MNIST's recipe (LeCun et al.): the digit's bounding box is scaled, keeping its
aspect ratio, so the longer side is 20 px (with anti-aliasing), then placed in a
28x28 field so its centre of mass sits at the centre; LeNet's input pads that
by 2 px to 32x32. MNIST digits are white ink on black; a drawing on a canvas is
usually dark ink on white, so the background is read off the border first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from engine.errors import EngineError

FRAME = 28
BOX = 20
PAD = 2
# A pixel counts as ink when it stands out from the background by this much (of the full contrast).
INK_THRESHOLD = 0.25
# Ink whose bounding box is smaller than this share of the picture's shorter side is a dot, not a digit:
# blown up to the 20 px box it becomes a disc the network reads as a confident 0.
SMALL_SHARE = 0.1


@dataclass(frozen=True)
class DigitFrame:
    """``pixels``: (32, 32) float32 in [0, 1], white ink on black; all zeros when ``empty``.
    ``too_small``: the ink's box is under ``SMALL_SHARE`` of the picture's shorter side (a dot)."""

    pixels: np.ndarray
    empty: bool
    inverted: bool
    too_small: bool = False


def _border(image: np.ndarray) -> np.ndarray:
    return np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])


def _fit_box(ink: np.ndarray) -> np.ndarray:
    """Scales the ink so its longer side is ``BOX`` pixels, anti-aliased, aspect kept."""
    h, w = ink.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL wants (width, height)
    resized = Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.asarray(np.clip(np.asarray(resized), 0.0, 1.0))  # Lanczos rings slightly below 0 and above 1


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Places ``digit`` in a FRAMExFRAME field with its centre of mass at (14, 14)."""
    h, w = digit.shape
    mass = digit.sum()
    rows, cols = np.arange(h), np.arange(w)
    cy = (digit.sum(axis=1) * rows).sum() / mass
    cx = (digit.sum(axis=0) * cols).sum() / mass
    # keep the whole digit in the field even when its mass is far off centre
    top = int(np.clip(round(FRAME / 2 - cy), 0, FRAME - h))
    left = int(np.clip(round(FRAME / 2 - cx), 0, FRAME - w))
    field = np.zeros((FRAME, FRAME), np.float32)
    field[top : top + h, left : left + w] = digit
    return field


def _gray(image: np.ndarray) -> np.ndarray:
    """A grayscale picture (H, W) 0..255 as floats in [0, 1], or an EngineError saying what is wrong."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2 or min(image.shape) < 2:
        raise EngineError(f"image must be a 2-D grayscale array of at least 2x2, got shape {image.shape}")
    if not np.isfinite(image).all():
        raise EngineError("image values must be finite numbers 0..255")
    return np.asarray(np.clip(image, 0, 255) / 255.0)


def preprocess_digit(image: np.ndarray) -> DigitFrame:
    """A grayscale image (H, W) with values 0..255, ink dark or light -> LeNet's 32x32 frame."""
    gray = _gray(image)

    background = float(np.median(_border(gray)))
    inverted = background > 0.5
    if inverted:
        gray, background = 1.0 - gray, 1.0 - background
    ink = np.clip((gray - background) / max(1.0 - background, 1e-6), 0.0, 1.0)

    mask = ink > INK_THRESHOLD
    if not mask.any():
        return DigitFrame(np.zeros((FRAME + 2 * PAD,) * 2, np.float32), empty=True, inverted=inverted)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    # faint noise inside the box (paper texture, JPEG) must not pull the centre of mass
    crop = np.where(crop > INK_THRESHOLD / 2, crop, 0.0)

    field = _centre_by_mass(_fit_box(crop))
    too_small = max(crop.shape) < SMALL_SHARE * min(gray.shape)
    return DigitFrame(np.pad(field, PAD), empty=False, inverted=inverted, too_small=too_small)


def preprocess_picture(image: np.ndarray, size: int = FRAME) -> DigitFrame:
    """Any grayscale picture (H, W) 0..255 -> a ``size`` x ``size`` frame in [0, 1], light object on black.

    Fashion-MNIST's recipe without a digit's cropping: the whole picture is scaled, keeping its
    aspect ratio, so its longer side is ``size``, and centred; a light background (a photo of a shirt
    on a white table) is inverted first, as the data set's pictures are light on black.
    """
    gray = _gray(image)
    inverted = float(np.median(_border(gray))) > 0.5
    if inverted:
        gray = 1.0 - gray
    h, w = gray.shape
    scale = size / max(h, w)
    shape = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL wants (width, height)
    resized = np.clip(
        np.asarray(Image.fromarray(gray.astype(np.float32)).resize(shape, Image.Resampling.LANCZOS)), 0, 1
    )
    frame = np.zeros((size, size), np.float32)
    top, left = (size - resized.shape[0]) // 2, (size - resized.shape[1]) // 2
    frame[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return DigitFrame(frame, empty=not (frame > INK_THRESHOLD).any(), inverted=inverted)


def fit_frame(frame: np.ndarray, input_shape: tuple[int, int, int]) -> np.ndarray:
    """A 2-D frame -> a network's input (C, H, W): centred, padded with black or cropped evenly,
    the same picture in every channel (as :func:`engine.datasets.to_network_input` fits data sets)."""
    from engine.datasets import to_network_input

    return np.asarray(to_network_input(np.asarray(frame, np.float32)[None], input_shape, scale=1.0)[0])


def frame_for(preparation: str, image: np.ndarray, input_shape: tuple[int, int, int]) -> tuple[np.ndarray, DigitFrame]:
    """A grayscale picture -> (the network's input (C, H, W), the frame before fitting), prepared as the
    network says (:attr:`engine.network.Network.preparation`): MNIST's digit recipe (``digit``), the whole
    picture light on black (``picture``), or the picture only scaled to the input (``none``)."""
    if preparation == "digit":
        frame = preprocess_digit(image)
    elif preparation == "picture":
        frame = preprocess_picture(image)
    else:
        frame = scale_only(image, input_shape[1:])
        return np.repeat(frame.pixels[None], input_shape[0], axis=0), frame
    return fit_frame(frame.pixels, input_shape), frame


def scale_only(image: np.ndarray, size: tuple[int, int]) -> DigitFrame:
    """A grayscale picture (H, W) 0..255 -> (height, width) in [0, 1], resized and nothing else."""
    gray = Image.fromarray(_gray(image).astype(np.float32)).resize((size[1], size[0]), Image.Resampling.LANCZOS)
    pixels = np.clip(np.asarray(gray, np.float32), 0, 1)
    return DigitFrame(pixels, empty=not (pixels > INK_THRESHOLD).any(), inverted=False)


def colour_input(rgb: np.ndarray, input_shape: tuple[int, int, int], keep_aspect: bool) -> np.ndarray:
    """A colour picture (H, W, 3) 0..255 -> a 3-channel network's input (3, h, w) in [0, 1]: scaled to fit
    and centred on black (``keep_aspect``, a ``picture`` model) or stretched to the input (``none``); the
    three channels stay red, green and blue, as a photo's volume is drawn in the lecture."""
    _, height, width = input_shape
    image = Image.fromarray(np.asarray(rgb, np.uint8)[:, :, :3], "RGB")
    if not keep_aspect:
        resized = np.asarray(image.resize((width, height), Image.Resampling.LANCZOS), np.float32)
        return np.ascontiguousarray(resized.transpose(2, 0, 1) / 255.0)
    scale = min(height / image.height, width / image.width)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resized = np.asarray(image.resize(size, Image.Resampling.LANCZOS), np.float32) / 255.0
    out = np.zeros((3, height, width), np.float32)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    out[:, top : top + resized.shape[0], left : left + resized.shape[1]] = resized.transpose(2, 0, 1)
    return out
