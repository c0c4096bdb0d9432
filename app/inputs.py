"""What a model-using request sends (``pixels``, ``image`` or ``frame``) made into the network's input,
prepared the way the model's data set was."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from app.config import Settings
from app.errors import ApiError
from app.imaging import decode_base64_image, standard_mode, to_grayscale
from app.schemas import PredictRequest
from engine.network import Network
from engine.preprocess import colour_input, frame_for


@dataclass(frozen=True)
class NetworkInput:
    """``x``: the network's input (C, H, W) in [0, 1]; ``empty`` when it holds no ink;
    ``too_small`` when the ink is a dot that preprocessing would blow up into a confident guess."""

    x: np.ndarray
    empty: bool
    inverted: bool
    too_small: bool = False

    @property
    def guessable(self) -> bool:
        return not (self.empty or self.too_small)

    def as_json(self) -> np.ndarray:
        """What responses call ``input``: H x W for one channel, C x H x W otherwise."""
        return np.round(self.x[0] if self.x.shape[0] == 1 else self.x, 4)


def _big_enough(image: Image.Image, settings: Settings, field: str) -> Image.Image:
    """A decoded picture (shrunk by :func:`decode_image` to ``pixels_max_side``: a digit ends up 20 px tall,
    and a phone photo needs no more than a thousand pixels to get there) that was big enough to read."""
    width, height = image.info.get("decoded_size", image.size)
    if min(width, height) < settings.pixels_min_side:
        raise ApiError(
            422,
            f"{field}: the image is {width}x{height}; pictures need at least "
            f"{settings.pixels_min_side}x{settings.pixels_min_side} pixels",
        )
    return image


def from_picture(model: Network, gray: np.ndarray) -> NetworkInput:
    """A grayscale picture (H, W) 0..255, prepared as the model's data set was (digits: MNIST's crop,
    box and centre of mass; clothing: the whole picture; an imported model: as its import said)."""
    x, frame = frame_for(model.preparation, gray, model.input_shape)
    return NetworkInput(x, frame.empty, frame.inverted, frame.too_small)


def from_frame(model: Network, frame: np.ndarray) -> NetworkInput:
    """The network's own input, edited directly: no preprocessing, only its shape is checked."""
    x = frame if frame.ndim == 3 else frame[None]
    if x.shape != model.input_shape:
        expected, got = "x".join(map(str, model.input_shape)), "x".join(map(str, x.shape))
        raise ApiError(422, f"frame: this model's input is {expected} (channels x height x width), got {got}")
    return NetworkInput(x.astype(np.float32), not x.any(), False)


def reads_colour(model: Network) -> bool:
    """A 3-channel model that takes pictures (not digits): a photo keeps its colours."""
    return model.input_shape[0] == 3 and model.preparation != "digit"


def from_image(model: Network, image: Image.Image, settings: Settings, field: str) -> NetworkInput:
    """A decoded upload: in colour for a colour model, else grayscale prepared as its data set was."""
    image = _big_enough(image, settings, field)
    if not reads_colour(model):
        return from_picture(model, to_grayscale(image))
    rgb = np.asarray(standard_mode(image).convert("RGB"))
    x = colour_input(rgb, model.input_shape, keep_aspect=model.preparation == "picture")
    return NetworkInput(x, not (x > 0.02).any(), False)


def network_input(model: Network, request: PredictRequest, settings: Settings) -> NetworkInput:
    """Whichever of ``pixels``, ``image`` or ``frame`` the request holds, as the network's input."""
    # the request's validators made its lists arrays already
    if request.frame is not None:
        return from_frame(model, np.asarray(request.frame))
    if request.pixels is not None:
        return from_picture(model, np.asarray(request.pixels))
    assert request.image is not None  # exactly one of the three, as the request's validator checked
    image = decode_base64_image(request.image, settings, fit=settings.pixels_max_side)
    return from_image(model, image, settings, "image")
