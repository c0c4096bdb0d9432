"""Classic image kernels and applying one to a picture.

Each preset keeps its integer weights and divisor as printed in textbooks
(``[[1, 2, 1], [2, 4, 2], [1, 2, 1]] / 16``) so a page can show them that way;
``kernel`` is the scaled float version that is actually applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.conv import conv2d
from engine.errors import EngineError


@dataclass(frozen=True)
class FilterPreset:
    name: str
    label: str
    weights: tuple[tuple[int, ...], ...]
    divisor: int
    description: str
    # how the output becomes pixels by default: kernels whose weights sum to 0 give signed edges
    output: str = "clip"
    # added to every weighted sum, as a conv layer's bias is: emboss's customary mid-grey
    bias: float = 0.0

    @property
    def kernel(self) -> np.ndarray:
        return np.array(self.weights, dtype=np.float64) / self.divisor


_BINOMIAL_5 = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1])
# unsharp masking: 2*identity - gaussian, written over the gaussian's divisor 256
_UNSHARP_5 = -_BINOMIAL_5.copy()
_UNSHARP_5[2, 2] = 2 * 256 - 36


def _rows(a: np.ndarray | list[list[int]]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(v) for v in row) for row in np.asarray(a))


PRESETS: dict[str, FilterPreset] = {
    p.name: p
    for p in (
        FilterPreset(
            "identity",
            "Identity",
            _rows([[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
            1,
            "Copies each pixel unchanged: the centre weight is 1, all neighbours 0.",
        ),
        FilterPreset(
            "edge_detection",
            "Edge detection",
            _rows([[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
            1,
            "Laplacian: four neighbours minus four times the centre, zero on flat areas, strong on edges.",
            "stretch",
        ),
        FilterPreset(
            "outline",
            "Outline",
            _rows([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
            1,
            "Eight-neighbour Laplacian: highlights every change of brightness, in all directions.",
            "stretch",
        ),
        FilterPreset(
            "sharpen",
            "Sharpen",
            _rows([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
            1,
            "The pixel plus its difference from its neighbours, so edges get crisper.",
        ),
        FilterPreset("box_blur", "Box blur", _rows(np.ones((3, 3))), 9, "The plain average of the 3x3 neighbourhood."),
        FilterPreset(
            "gaussian_blur",
            "Gaussian blur 3x3",
            _rows([[1, 2, 1], [2, 4, 2], [1, 2, 1]]),
            16,
            "A weighted average that trusts the centre most: a softer, more natural blur.",
        ),
        FilterPreset(
            "emboss",
            "Emboss",
            _rows([[-2, -1, 0], [-1, 0, 1], [0, 1, 2]]),
            1,
            "Differences along the diagonal plus a mid-grey bias of 128, as if the picture were pressed into "
            "metal lit from one corner: flat areas turn grey, edges light or dark (the customary emboss).",
            "clip",
            128.0,
        ),
        FilterPreset(
            "emboss_lecture",
            "Emboss (the lecture's)",
            _rows([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
            1,
            "The lecture's emboss: its centre 1 keeps the picture under the relief, so flat areas keep their "
            "brightness; the customary emboss has a 0 there and a bias of 128 instead.",
        ),
        FilterPreset(
            "sobel_x",
            "Sobel x",
            _rows([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
            1,
            "Horizontal gradient: responds to vertical edges, smoothing along them.",
            "stretch",
        ),
        FilterPreset(
            "sobel_y",
            "Sobel y",
            _rows([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
            1,
            "Vertical gradient: responds to horizontal edges, smoothing along them.",
            "stretch",
        ),
        FilterPreset(
            "gaussian_blur_5x5",
            "Gaussian blur 5x5",
            _rows(_BINOMIAL_5),
            256,
            "A wider Gaussian (binomial 1-4-6-4-1 in each direction) for a stronger blur.",
        ),
        FilterPreset(
            "unsharp_mask_5x5",
            "Unsharp mask 5x5",
            _rows(_UNSHARP_5),
            256,
            "Twice the image minus its 5x5 Gaussian blur: sharpens while keeping noise down.",
        ),
    )
}


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding per side that keeps the size at stride 1 for odd kernels: ``D(K-1)/2``, rounded down."""
    return dilation * (kernel_size - 1) // 2


OUTPUT_MAPPINGS = ("clip", "abs", "stretch", "rescale")
# the share of the strongest |values| that ``stretch`` lets saturate: a few extreme pixels must not
# decide the brightness of every other edge
STRETCH_PERCENTILE = 98.0
# the most ``stretch`` multiplies by: a phone photo's JPEG speckle (|v| of 3 to 6 under a Laplacian) stays
# dark grey instead of becoming white "edges" (an unbounded gain made it x42.5); a 32-level edge still saturates
MAX_STRETCH_GAIN = 8.0


def _check_output(output: str) -> None:
    if output not in OUTPUT_MAPPINGS:
        raise EngineError(f"output must be one of {', '.join(OUTPUT_MAPPINGS)}, got {output!r}")


def to_pixels(values: np.ndarray, output: str = "clip") -> np.ndarray:
    """Maps filtered values (any real numbers) to 0..255 uint8.

    ``clip``: round, then cut at 0 and 255 (negative edges vanish);
    ``abs``: round ``|v|``, then cut at 255 (edges of both signs show);
    ``stretch``: ``|v|`` times the gain that makes the 98th percentile of ``|v|`` white (edges of both
    signs, bright enough for a projector; the gain is ``stretch_gain``);
    ``rescale``: ``(v - min) / (max - min) * 255`` over the whole picture, rounded
    (a constant picture is clipped instead, as it has no range to stretch).
    """
    _check_output(output)
    values = np.asarray(values, dtype=np.float64)
    if output == "abs":
        values = np.abs(values)
    elif output == "stretch":
        values = np.abs(values) * stretch_gain(values)
    elif output == "rescale" and values.size:
        low, high = float(values.min()), float(values.max())
        if high > low:
            values = (values - low) / (high - low) * 255
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def stretch_gain(values: np.ndarray) -> float:
    """The factor ``stretch`` multiplies ``|v|`` by: 255 over the 98th percentile of ``|v|``, from 1 (strong
    output is left) to ``MAX_STRETCH_GAIN`` (faint output is brightened, but noise is not made into edges);
    1 when the picture has no edges at all."""
    values = np.abs(np.asarray(values, dtype=np.float64))
    top = float(np.percentile(values, STRETCH_PERCENTILE)) if values.size else 0.0
    return min(MAX_STRETCH_GAIN, max(1.0, 255.0 / top)) if top > 0 else 1.0


def filter_values(
    image: np.ndarray,
    kernel: np.ndarray,
    padding_mode: str = "zeros",
    stride: int = 1,
    dilation: int = 1,
    bias: float = 0.0,
) -> np.ndarray:
    """Cross-correlates each colour channel of ``image`` (H, W, C) with ``kernel`` (KH, KW), plus ``bias``:
    ``out = Σ w·x + b``, as one filter of a conv layer.

    Padding is "same" (``D(K-1)/2`` per side), so ``OH = (H + 2P - D(KH-1) - 1)/S + 1``.
    A 4th (alpha) channel, or the 2nd of gray+alpha, is not filtered. Returns the raw
    float32 values (OH, OW, C without alpha), before any mapping to pixels.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise EngineError(f"image must be (H, W, C) with 1 to 4 channels, got {image.shape}")
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 2:
        raise EngineError(f"kernel must be 2-D, got shape {kernel.shape}")
    colour = image[:, :, :-1] if image.shape[2] in (2, 4) else image
    padding = (same_padding(kernel.shape[0], dilation), same_padding(kernel.shape[1], dilation))
    # channels become the batch: one conv2d call filters them all with the same kernel
    x = colour.transpose(2, 0, 1)[:, None].astype(np.float32)
    out = conv2d(
        x,
        kernel[None, None],
        np.array([bias], np.float32),
        stride=stride,
        padding=padding,
        dilation=dilation,
        padding_mode=padding_mode,
    )
    return out[:, 0].transpose(1, 2, 0)


def apply_kernel(
    image: np.ndarray,
    kernel: np.ndarray,
    padding_mode: str = "zeros",
    stride: int = 1,
    dilation: int = 1,
    output: str = "clip",
    bias: float = 0.0,
) -> np.ndarray:
    """``filter_values`` mapped to pixels by ``to_pixels(…, output)``: (H, W, C) uint8 → (OH, OW, C) uint8.

    A 4th (alpha) channel is not filtered: it is sampled at the window centres.
    """
    _check_output(output)  # before the work, not after it
    image = np.asarray(image)
    values = filter_values(image, kernel, padding_mode, stride, dilation, bias)
    return with_alpha(image, to_pixels(values, output), stride)


def with_alpha(image: np.ndarray, filtered: np.ndarray, stride: int = 1) -> np.ndarray:
    """Appends ``image``'s alpha channel, if it has one, to ``filtered`` (OH, OW, C) uint8.

    Alpha is not filtered: with "same" padding, output (i, j) is centred on input (i*S, j*S),
    so it takes that pixel's alpha.
    """
    if image.shape[2] not in (2, 4):
        return filtered
    oh, ow = filtered.shape[:2]
    alpha = image[::stride, ::stride, -1][:oh, :ow]
    return np.concatenate([filtered, alpha[:, :, None]], axis=2)
