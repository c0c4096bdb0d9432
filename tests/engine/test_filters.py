"""Mapping filtered values to pixels: clip, abs, stretch and rescale."""

import numpy as np
import pytest

from engine import PRESETS, EngineError, apply_kernel, to_pixels
from engine.filters import MAX_STRETCH_GAIN, stretch_gain


def test_the_three_mappings_on_a_row_of_signed_values():
    values = np.array([[-300.0, -20.0, 0.0, 127.5, 400.0]])
    assert to_pixels(values, "clip").tolist() == [[0, 0, 0, 128, 255]]  # NumPy rounds .5 to even
    assert to_pixels(values, "abs").tolist() == [[255, 20, 0, 128, 255]]
    # (v + 300) / 700 * 255: -20 → 102, 0 → 109.3, 127.5 → 155.7
    assert to_pixels(values, "rescale").tolist() == [[0, 102, 109, 156, 255]]


def test_a_flat_picture_has_no_range_to_stretch_and_is_clipped():
    assert to_pixels(np.full((2, 2), 300.0), "rescale").tolist() == [[255, 255], [255, 255]]


def test_edge_detection_on_a_step_shows_both_sides_of_the_edge_with_abs():
    step = np.zeros((5, 6, 1), np.uint8)
    step[:, 3:] = 100
    kernel = PRESETS["edge_detection"].kernel
    clipped = apply_kernel(step, kernel, padding_mode="replicate")[2, :, 0]
    absolute = apply_kernel(step, kernel, padding_mode="replicate", output="abs")[2, :, 0]
    assert clipped.tolist() == [0, 0, 100, 0, 0, 0]  # the bright side's -100 is lost
    assert absolute.tolist() == [0, 0, 100, 100, 0, 0]


def test_an_unknown_mapping_is_refused():
    with pytest.raises(EngineError, match="clip, abs, stretch, rescale"):
        apply_kernel(np.zeros((3, 3, 1), np.uint8), np.ones((1, 1)), output="gamma")


def test_stretch_brightens_faint_edges_until_the_strongest_are_white():
    values = np.concatenate([np.linspace(-40, 40, 199), [60.0]])
    gain = stretch_gain(values)
    assert gain == pytest.approx(255 / np.percentile(np.abs(values), 98))
    pixels = to_pixels(values, "stretch")
    assert pixels.max() == 255 and pixels[0] == min(255, round(40 * gain))
    assert stretch_gain(np.full(5, 400.0)) == 1  # already bright: never darkened
    assert stretch_gain(np.zeros(5)) == 1  # a flat picture: nothing to stretch


def test_stretch_never_makes_a_photos_noise_into_edges():
    """A phone photo's JPEG speckle under a Laplacian (|v| of a few levels) stays dark grey: the gain stops at
    MAX_STRETCH_GAIN instead of making the 98th percentile of noise white (it was x42.5)."""
    rng = np.random.default_rng(0)
    speckle = rng.normal(0, 2.5, (200, 200))
    assert stretch_gain(speckle) == MAX_STRETCH_GAIN
    assert np.percentile(to_pixels(speckle, "stretch"), 98) <= 8 * 6
    edge = np.zeros((50, 50))
    edge[:, 25] = 40.0  # a real edge of 40 levels still turns white
    assert to_pixels(edge, "stretch").max() == 255
