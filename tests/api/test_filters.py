"""GET /api/filters and POST /api/filters/apply."""

import io
import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from tests.api.conftest import ok, png_bytes

LECTURE_KERNELS = {
    "edge_detection": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "outline": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "box_blur": (np.ones((3, 3)) / 9).tolist(),
    "gaussian_blur": (np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16).tolist(),
    "emboss_lecture": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}


def apply(client, photo, **form):
    image = form.pop("image", None)
    data = png_bytes(photo) if image is None else image
    return client.post(
        "/api/filters/apply",
        files={"file": ("photo.png", data, "image/png")},
        data={k: str(v) for k, v in form.items()},
    )


def decoded(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_presets_include_the_lectures_kernels(client):
    presets = {p["name"]: p for p in ok(client.get("/api/filters"))}
    for name, kernel in LECTURE_KERNELS.items():
        np.testing.assert_allclose(presets[name]["kernel"], kernel)
    for name in ("identity", "sobel_x", "sobel_y", "gaussian_blur_5x5", "unsharp_mask_5x5"):
        assert name in presets
    assert all(p["label"] and p["description"] for p in presets.values())
    assert presets["gaussian_blur"]["divisor"] == 16


def test_identity_returns_the_picture_unchanged(client, photo):
    np.testing.assert_array_equal(decoded(apply(client, photo, preset="identity")), photo)


def scipy_filtered(photo, kernel) -> np.ndarray:
    """The reference: each channel correlated with zero padding, unrounded (H, W, 3)."""
    channels = [ndimage.correlate(photo[..., c].astype(float), np.asarray(kernel), mode="constant") for c in range(3)]
    return np.stack(channels, axis=-1)


@pytest.mark.parametrize("name", list(LECTURE_KERNELS))
def test_each_preset_matches_scipy_on_every_channel(client, photo, name):
    out = decoded(apply(client, photo, preset=name, output="clip")).astype(int)
    expected = np.clip(np.rint(scipy_filtered(photo, LECTURE_KERNELS[name])), 0, 255)
    assert np.abs(out - expected).max() <= 1  # float32 rounding at .5


def test_emboss_adds_the_customary_mid_grey_bias_so_flat_areas_turn_grey(client, photo):
    preset = next(p for p in ok(client.get("/api/filters")) if p["name"] == "emboss")
    assert preset["bias"] == 128 and np.asarray(preset["kernel"]).sum() == 0
    out = decoded(apply(client, photo, preset="emboss")).astype(int)
    expected = np.clip(np.rint(scipy_filtered(photo, preset["kernel"]) + 128), 0, 255)
    assert np.abs(out - expected).max() <= 1
    drawing = np.full((40, 40, 3), 255, np.uint8)
    drawing[10:30, 18:22] = 0  # a clean stroke on white: the input's flat white becomes grey, the stroke a relief
    embossed = decoded(apply(client, drawing, preset="emboss"))[..., 0]
    assert embossed[2, 2] == 128 and embossed[20, 20] == 128 and embossed.min() < 60 and embossed.max() > 200
    lecture = decoded(apply(client, drawing, preset="emboss_lecture"))[..., 0]
    assert lecture[2, 2] == 255  # the lecture's centre 1 keeps the white: it looks like the input
    custom = apply(client, photo, kernel="[[0,0,0],[0,1,0],[0,0,0]]", bias="-100")
    assert decoded(custom).astype(int).max() <= 155 and custom.headers["X-Output-Bias"] == "-100"


def test_edge_kernels_show_edges_of_both_signs_by_default(client, photo):
    presets = {p["name"]: p["output"] for p in ok(client.get("/api/filters"))}
    assert presets["edge_detection"] == presets["outline"] == presets["sobel_x"] == "stretch"
    assert presets["box_blur"] == presets["sharpen"] == "clip"
    response = apply(client, photo, preset="edge_detection")
    assert response.headers["x-output-mapping"] == "stretch"
    magnitude = np.abs(scipy_filtered(photo, LECTURE_KERNELS["edge_detection"]))
    gain = max(1.0, 255 / np.percentile(magnitude, 98))  # the strongest 2% of edges saturate
    assert float(response.headers["x-output-gain"]) == pytest.approx(gain, rel=1e-4)
    expected = np.clip(np.rint(magnitude * gain), 0, 255)
    assert np.abs(decoded(response).astype(int) - expected).max() <= 1
    assert (decoded(response) == 255).mean() >= 0.015  # the strongest edges are white on a projector
    # clipped, the negative half of every edge is black: absolute values are brighter on average
    clipped = decoded(apply(client, photo, preset="edge_detection", output="clip"))
    assert decoded(response).mean() > clipped.mean() + 5


def test_rescale_stretches_the_pictures_own_range_to_0_255(client, photo):
    kernel = [[-1, 0, 1]]
    response = apply(client, photo, kernel=json.dumps(kernel), output="rescale")
    values = scipy_filtered(photo, kernel)
    low, high = values.min(), values.max()
    assert float(response.headers["x-output-min"]) == pytest.approx(low)
    assert float(response.headers["x-output-max"]) == pytest.approx(high)
    out = decoded(response).astype(int)
    assert out.min() == 0 and out.max() == 255
    assert np.abs(out - np.rint((values - low) / (high - low) * 255)).max() <= 1
    # a typed kernel is clipped unless told otherwise
    assert apply(client, photo, kernel=json.dumps(kernel)).headers["x-output-mapping"] == "clip"


def test_a_typed_kernel_with_padding_mode_stride_and_dilation(client, photo):
    kernel = [[1, 0, 0], [0, 0, 0], [0, 0, 0]]
    out = decoded(apply(client, photo, kernel=json.dumps(kernel), padding_mode="replicate"))
    np.testing.assert_array_equal(out[1:, 1:], photo[:-1, :-1])  # shifted by one pixel
    np.testing.assert_array_equal(out[0, 1:], photo[0, :-1])
    strided = apply(client, photo, preset="box_blur", stride=2, dilation=2)
    assert decoded(strided).shape == (30, 40, 3)
    assert strided.headers["x-output-size"] == "40x30"


def test_partial_padding_keeps_a_blurred_border_as_bright_as_the_inside(client):
    flat = np.full((20, 20, 3), 200, np.uint8)
    zeros = decoded(apply(client, flat, preset="box_blur", padding_mode="zeros"))
    partial = decoded(apply(client, flat, preset="box_blur", padding_mode="partial"))
    assert zeros[0, 0, 0] == round(200 * 4 / 9)
    assert (partial == 200).all()


def test_even_kernels_and_grayscale(client, photo):
    out = decoded(apply(client, photo, kernel="[[1, 1], [1, 1]]", grayscale="true"))
    assert out.ndim == 2 and out.shape == (59, 79)


def test_alpha_is_left_untouched(client, photo):
    rgba = np.dstack([photo, np.tile(np.arange(80, dtype=np.uint8) * 3, (60, 1))])
    out = decoded(apply(client, rgba, preset="edge_detection"))
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])


def test_large_photos_are_downscaled_and_say_so(client):
    big = np.zeros((600, 2048, 3), np.uint8)
    response = apply(client, big, preset="identity")
    assert response.headers["x-resized"] == "1024x300"
    assert decoded(response).shape == (300, 1024, 3)


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"preset": "blur"}, 422, "unknown preset 'blur'; choose one of identity"),
        ({}, 422, "exactly one of 'preset'"),
        ({"preset": "identity", "kernel": "[[1]]"}, 422, "exactly one of 'preset'"),
        ({"kernel": "[[1, 2], [3]]"}, 422, "ragged"),
        ({"kernel": "[[1, 2"}, 422, "not valid JSON"),
        ({"kernel": json.dumps(np.ones((16, 16)).tolist())}, 422, "between 1x1 and 15x15, got 16x16"),
        ({"kernel": "[[NaN]]"}, 422, "finite"),
        ({"kernel": "[1, 2, 3]"}, 422, "2-D"),
        ({"preset": "identity", "padding_mode": "mirror"}, 422, "padding_mode"),
        ({"preset": "identity", "stride": 0}, 422, "stride"),
        ({"preset": "identity", "dilation": 99}, 422, "dilation"),
        ({"preset": "identity", "output": "gamma"}, 422, "output"),
    ],
)
def test_bad_filter_requests_get_a_clear_4xx(client, photo, form, status, message):
    response = apply(client, photo, **form)
    assert response.status_code == status
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"", 422, "empty"),
        (b"%PDF-1.4 not an image", 415, "not a PNG, JPEG or WebP"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 422, "corrupt or truncated"),
    ],
)
def test_bad_uploads_get_a_clear_4xx(client, photo, data, status, message):
    response = apply(client, photo, preset="identity", image=data)
    assert response.status_code == status
    assert message in response.json()["detail"]


def test_reflect_padding_wider_than_a_tiny_picture(client):
    tiny = np.zeros((3, 3, 3), np.uint8)
    response = apply(client, tiny, kernel=json.dumps(np.ones((15, 15)).tolist()), padding_mode="reflect")
    assert response.status_code == 422
    assert "reflect needs padding < 3" in response.json()["detail"]


def test_webp_and_jpeg_are_accepted(client, photo):
    for fmt in ("WEBP", "JPEG"):
        buffer = io.BytesIO()
        Image.fromarray(photo).save(buffer, format=fmt)
        assert decoded(apply(client, photo, preset="sharpen", image=buffer.getvalue())).shape == (60, 80, 3)


def _encoded(image, fmt, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        _encoded(Image.fromarray(np.full((40, 40), 60000, np.uint16)), "PNG"),  # 16-bit grayscale
        _encoded(Image.new("CMYK", (40, 40), (0, 0, 0, 0)), "JPEG"),
        _encoded(Image.new("P", (40, 40), 0), "PNG", transparency=0),
        _encoded(Image.new("1", (40, 40), 1), "PNG"),
        _encoded(Image.new("LA", (40, 40), (10, 20)), "PNG"),
        _encoded(Image.new("RGB", (40, 40)), "WEBP", save_all=True, append_images=[Image.new("RGB", (40, 40))]),
    ],
    ids=["16-bit", "cmyk-jpeg", "palette-transparent", "1-bit", "gray-alpha", "animated-webp"],
)
def test_unusual_image_modes_are_filtered_and_read(client, data):
    response = client.post("/api/filters/apply", files={"file": ("x", data, "image/png")}, data={"preset": "sharpen"})
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (40, 40)
    response = client.post("/api/predict/file", files={"file": ("x", data, "image/png")})
    assert response.status_code == 200


def test_grayscale_keeps_the_transparency_of_a_palette_picture(client):
    palette = Image.new("P", (20, 20), 1)
    palette.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    palette.paste(0, (0, 0, 10, 20))  # the left half uses the transparent index 0
    data = _encoded(palette, "PNG", transparency=0)
    response = client.post(
        "/api/filters/apply",
        files={"file": ("p.png", data, "image/png")},
        data={"preset": "identity", "grayscale": "true"},
    )
    out = np.asarray(Image.open(io.BytesIO(response.content)))
    assert out.shape == (20, 20, 2)  # gray and alpha
    assert (out[:, :10, 1] == 0).all() and (out[:, 10:, 1] == 255).all()
