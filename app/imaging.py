"""The one place where bytes, base64 and data URLs become arrays (and arrays become PNG).

Formats are sniffed from the bytes themselves, never trusted from a filename or a
content type; Pillow's decompression-bomb guard is set from the settings, and a
truncated or corrupt file is refused with a message instead of half-decoded.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from app.config import Settings
from app.errors import ApiError

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
)
_DATA_URL = re.compile(r"^data:(?P<type>[\w/+.-]*)(?P<params>(;[\w=.-]+)*),", re.ASCII)


def sniff_format(data: bytes) -> str | None:
    """PNG, JPEG or WEBP from the file's first bytes; None for anything else."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


BYTES_PER_BAND = {
    "1": 1,
    "L": 1,
    "P": 1,
    "LA": 2,
    "RGB": 3,
    "RGBA": 4,
    "CMYK": 4,
    "YCbCr": 3,
    "I;16": 2,
    "I": 4,
    "F": 4,
}


def decode_image(data: bytes, settings: Settings, *, field: str = "file", fit: int | None = None) -> Image.Image:
    """Bytes of a PNG, JPEG or WebP -> a fully decoded Pillow image, upright (EXIF orientation applied).

    Everything is checked from the header, before a pixel is decoded: the pixel count, the decoded
    size in bytes, and the shape (a 40,000,000x1 strip is tiny as a file but ties up a worker for
    seconds in any resize). ``fit``, the longer side the caller will shrink the picture to, lets a
    JPEG decode at a reduced scale straight away (1/2 to 1/8), which costs a fraction of the memory.
    """
    if not data:
        raise ApiError(422, f"{field}: the image is empty (0 bytes); send a PNG, JPEG or WebP file")
    kind = sniff_format(data)
    if kind is None:
        raise ApiError(
            415, f"{field}: not a PNG, JPEG or WebP image (first bytes {data[:8]!r}); allowed formats: PNG, JPEG, WebP"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data), formats=[kind])
            check_shape(image, settings, field)
            if fit is not None and kind == "JPEG":
                image.draft(image.mode, (fit, fit))  # decode at the smallest scale that still covers `fit`
            decoded = image.width * image.height * BYTES_PER_BAND.get(image.mode, 4)
            if decoded > settings.max_decoded_bytes:
                raise ApiError(
                    413,
                    f"{field}: the image is {image.width}x{image.height} {image.mode}, {decoded} bytes once decoded; "
                    f"at most {settings.max_decoded_bytes} bytes are decoded per picture (about "
                    f"{settings.max_decoded_bytes // 3 // 1_000_000} megapixels of RGB; JPEGs count at reduced scale)",
                )
            image.load()  # decode now, so a truncated file fails here and not later
            image = ImageOps.exif_transpose(image)  # a phone photo taken upright is shown upright
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(
            413, f"{field}: the image has too many pixels; at most {settings.max_image_pixels} pixels are allowed"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        # Pillow's own messages name in-memory objects and addresses: say it in words instead
        raise ApiError(422, f"{field}: the {kind} image is corrupt or truncated and cannot be decoded") from None
    return image


def check_shape(image: Image.Image, settings: Settings, field: str) -> None:
    """Refuses, from the header alone, pictures with too many pixels or an extreme shape."""
    width, height = image.size
    if width < 1 or height < 1:
        raise ApiError(422, f"{field}: the image is {width}x{height}; it has no pixels")
    if width * height > settings.max_image_pixels:
        raise ApiError(
            413,
            f"{field}: the image is {width}x{height} = {width * height} pixels; "
            f"at most {settings.max_image_pixels} pixels are allowed",
        )
    if max(width, height) > settings.max_image_side or max(width, height) > settings.max_aspect * min(width, height):
        raise ApiError(
            422,
            f"{field}: the image is {width}x{height}; sides may be at most {settings.max_image_side} pixels "
            f"and one side at most {settings.max_aspect:g} times the other",
        )


def decode_base64_image(text: str, settings: Settings, *, field: str = "image", fit: int | None = None) -> Image.Image:
    """A base64 string or a data URL (``data:image/png;base64,...``, as canvas.toDataURL gives)."""
    match = _DATA_URL.match(text)
    if match:
        if ";base64" not in match["params"]:
            raise ApiError(422, f"{field}: data URLs must be base64-encoded (data:image/png;base64,...)")
        text = text[match.end() :]
    try:
        data = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            422,
            f"{field}: not valid base64; send base64 of a PNG/JPEG/WebP file "
            "or a data URL such as canvas.toDataURL() gives",
        ) from None
    return decode_image(data, settings, field=field, fit=fit)


def to_grayscale(image: Image.Image) -> np.ndarray:
    """(H, W) float array 0..255 for the digit model.

    Transparent pixels have no colour of their own, so they are composited onto the
    opposite of the ink: a canvas with black strokes on a transparent background
    becomes black on white, white strokes become white on black.
    """
    if has_alpha(image):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
        alpha = rgba[..., 3:] / 255.0
        luma = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])
        opaque = alpha[..., 0] > 0.5
        ink_is_dark = opaque.any() and luma[opaque].mean() < 128
        backdrop = 255.0 if ink_is_dark else 0.0
        return luma * alpha[..., 0] + backdrop * (1 - alpha[..., 0])
    return np.asarray(image.convert("L"), dtype=np.float64)


def has_alpha(image: Image.Image) -> bool:
    """True for an alpha band, and for palette or grayscale images with a transparent colour."""
    return "A" in image.getbands() or "transparency" in image.info


def standard_mode(image: Image.Image, *, grayscale: bool = False) -> Image.Image:
    """L, LA, RGB or RGBA: palettes, CMYK, 16-bit and 1-bit pictures are converted, to L(A) with
    ``grayscale``; transparency is kept as an alpha band."""
    if grayscale:
        wanted = "LA" if has_alpha(image) else "L"
    elif image.mode in ("L", "LA", "RGB", "RGBA"):
        return image
    else:
        wanted = "RGBA" if has_alpha(image) else "RGB"
    return image if image.mode == wanted else image.convert(wanted)


def to_channels(image: Image.Image) -> np.ndarray:
    """A picture in a standard mode -> (H, W, C) uint8 with C = 1 to 4."""
    array = np.asarray(image)
    return array[:, :, None] if array.ndim == 2 else array


def encode_png(pixels: np.ndarray) -> bytes:
    """(H, W, C) uint8 with 1 to 4 channels -> PNG bytes."""
    buffer = io.BytesIO()
    # Pillow infers L, LA, RGB or RGBA from the channel count
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
