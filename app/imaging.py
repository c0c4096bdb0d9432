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
from PIL import Image, UnidentifiedImageError

from app.config import Settings
from app.errors import Refused, ServiceError, TooLarge, Unsupported

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
    seconds in any resize). ``fit`` is the longer side the caller needs: a JPEG decodes at a reduced
    scale straight away (1/2 to 1/8), and any picture is then shrunk by a whole factor to at most twice
    ``fit`` in uint8 (:func:`shrink`), so no caller ever holds a full-size picture as floats (a 5600x5600
    PNG was 1 GB of float64 in the digit's preparation). ``info["decoded_size"]`` keeps the size decoded.
    """
    if not data:
        raise Refused(f"{field}: the image is empty (0 bytes); send a PNG, JPEG or WebP file")
    kind = sniff_format(data)
    if kind is None:
        raise Unsupported(
            f"{field}: not a PNG, JPEG or WebP image (first bytes {data[:8]!r}); allowed formats: PNG, JPEG, WebP"
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
                raise TooLarge(
                    f"{field}: the image is {image.width}x{image.height} {image.mode}, {decoded} bytes once decoded; "
                    f"at most {settings.max_decoded_bytes} bytes are decoded per picture (about "
                    f"{settings.max_decoded_bytes // 3 // 1_000_000} megapixels of RGB; JPEGs count at reduced scale)",
                )
            image.load()  # decode now, so a truncated file fails here and not later
            orientation = image.getexif().get(ORIENTATION_TAG, 1)
            decoded_size = image.size
            if fit is not None:
                image = fit_within(shrink(image, fit), fit)  # in uint8, before a caller makes a pixel a float
            image = upright(image, orientation)  # a phone photo taken upright is shown upright
            image.info["decoded_size"] = decoded_size
    except ServiceError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooLarge(
            f"{field}: the image has too many pixels; at most {settings.max_image_pixels} pixels are allowed"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        # Pillow's own messages name in-memory objects and addresses: say it in words instead
        raise Refused(f"{field}: the {kind} image is corrupt or truncated and cannot be decoded") from None
    return image


ORIENTATION_TAG = 0x0112
ORIENTATIONS = {  # EXIF orientation -> the transpose that makes the picture upright (as ImageOps.exif_transpose)
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
STRIP_BYTES = 4 << 20  # a shrink converts and reduces this much of the picture at a time


def upright(image: Image.Image, orientation: int) -> Image.Image:
    method = ORIENTATIONS.get(orientation)
    return image if method is None else image.transpose(method)


def shrink(image: Image.Image, fit: int) -> Image.Image:
    """A decoded picture in a standard mode (:func:`standard_mode`), reduced by the largest whole factor
    that keeps its longer side at least ``fit`` (each output pixel the mean of a box; alpha weighted).

    It works strip by strip, each converted and reduced on its own, so the only full-size copy of the
    picture is the decoded one: a palette or 1-bit 5600x5600 PNG never becomes 94 MB of RGB at once.
    The caller's own resize to its exact size is then cheap and exact."""
    factor = max(image.size) // fit
    if factor < 2:
        return standard_mode(image)
    width, height = image.size
    mode = standard_mode(image.crop((0, 0, 1, 1))).mode
    out = Image.new(mode, (-(-width // factor), -(-height // factor)))
    rows = factor * max(1, STRIP_BYTES // (width * len(mode) * factor))
    for top in range(0, height, rows):
        strip = standard_mode(image.crop((0, top, width, min(height, top + rows))))
        out.paste(strip.reduce(factor), (0, top // factor))
    out.info = {k: v for k, v in image.info.items() if k != "transparency"}  # transparency is an alpha band now
    return out


def fit_within(image: Image.Image, side: int) -> Image.Image:
    """The picture with its longer side at most ``side``, its aspect ratio kept (Lanczos)."""
    if max(image.size) <= side:
        return image
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # reducing_gap: first shrink by a whole factor with a cheap box filter, then Lanczos the rest
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def check_shape(image: Image.Image, settings: Settings, field: str) -> None:
    """Refuses, from the header alone, pictures with too many pixels or an extreme shape."""
    width, height = image.size
    if width < 1 or height < 1:
        raise Refused(f"{field}: the image is {width}x{height}; it has no pixels")
    if width * height > settings.max_image_pixels:
        raise TooLarge(
            f"{field}: the image is {width}x{height} = {width * height} pixels; "
            f"at most {settings.max_image_pixels} pixels are allowed",
        )
    if max(width, height) > settings.max_image_side or max(width, height) > settings.max_aspect * min(width, height):
        raise Refused(
            f"{field}: the image is {width}x{height}; sides may be at most {settings.max_image_side} pixels "
            f"and one side at most {settings.max_aspect:g} times the other",
        )


def decode_base64_image(text: str, settings: Settings, *, field: str = "image", fit: int | None = None) -> Image.Image:
    """A base64 string or a data URL (``data:image/png;base64,...``, as canvas.toDataURL gives)."""
    match = _DATA_URL.match(text)
    if match:
        if ";base64" not in match["params"]:
            raise Refused(f"{field}: data URLs must be base64-encoded (data:image/png;base64,...)")
        text = text[match.end() :]
    try:
        data = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Refused(
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
