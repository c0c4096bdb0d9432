"""From a drawing to LeNet's 32x32 frame, and reading digit files."""

import gzip

import numpy as np
import pytest
from PIL import Image

from engine import load_digits, load_model, preprocess_digit, read_idx, to_network_input
from tests.conftest import SAMPLE_PATH


def big_dark_on_white_drawing(digit28: np.ndarray, *, size=(300, 420), scale=9, at=(20, 150)) -> np.ndarray:
    """A MNIST digit blown up, drawn in dark ink on white, placed off-centre on a larger canvas."""
    big = np.asarray(Image.fromarray(digit28).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR))
    canvas = np.full(size, 255, np.uint8)
    canvas[at[0] : at[0] + big.shape[0], at[1] : at[1] + big.shape[1]] = 255 - big
    return canvas


def test_a_large_dark_on_white_drawing_becomes_the_mnist_frame():
    images, labels = load_digits(SAMPLE_PATH)
    model = load_model()
    frames, originals = [], []
    for digit in images[:100]:
        frame = preprocess_digit(big_dark_on_white_drawing(digit))
        assert frame.inverted and not frame.empty
        assert frame.pixels.shape == (32, 32) and frame.pixels.dtype == np.float32
        assert 0 <= frame.pixels.min() and frame.pixels.max() <= 1
        frames.append(frame.pixels)
        originals.append(to_network_input(digit[None])[0, 0])
    frames, originals = np.array(frames), np.array(originals)
    # the same digit, in the same place: the frames correlate strongly with MNIST's own
    correlation = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(frames, originals)]
    assert np.median(correlation) > 0.9
    guesses = model.forward(frames[:, None]).argmax(axis=1)
    assert (guesses == labels[:100]).mean() >= 0.95


def test_the_digit_fits_a_20px_box_centred_by_mass():
    canvas = np.zeros((200, 100), np.uint8)
    canvas[20:180, 40:60] = 255  # a tall bar: 160 x 20
    frame = preprocess_digit(canvas).pixels
    rows, cols = np.flatnonzero(frame.any(axis=1)), np.flatnonzero(frame.any(axis=0))
    assert rows[-1] - rows[0] + 1 in (20, 21, 22)  # 20 px plus at most the anti-aliased rim
    assert cols[-1] - cols[0] + 1 <= 5  # aspect ratio kept: 20 * 20/160 = 2.5 px
    r, c = np.indices(frame.shape)
    assert (r * frame).sum() / frame.sum() == pytest.approx(16, abs=0.6)  # 14 + the 2 px pad
    assert (c * frame).sum() / frame.sum() == pytest.approx(16, abs=0.6)


def test_light_ink_on_dark_is_kept_as_it_is():
    canvas = np.zeros((64, 64))
    canvas[10:50, 30:34] = 255
    frame = preprocess_digit(canvas)
    assert not frame.inverted and not frame.empty


@pytest.mark.parametrize("blank", [np.full((280, 280), 255), np.zeros((28, 28)), np.full((50, 50), 128)])
def test_an_empty_drawing_is_reported_not_guessed(blank):
    frame = preprocess_digit(blank)
    assert frame.empty
    assert not frame.pixels.any()


def test_preprocess_refuses_non_images():
    with pytest.raises(ValueError, match="2-D"):
        preprocess_digit(np.zeros((3, 28, 28)))
    with pytest.raises(ValueError, match="finite"):
        preprocess_digit(np.full((28, 28), np.nan))


def test_idx_files_gzipped_or_not_read_like_the_npz(tmp_path):
    images, labels = load_digits(SAMPLE_PATH)
    images, labels = images[:20], labels[:20]
    header_images = bytes([0, 0, 8, 3]) + np.array([20, 28, 28], ">u4").tobytes()
    header_labels = bytes([0, 0, 8, 1]) + np.array([20], ">u4").tobytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(header_images + images.tobytes())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(header_labels + labels.tobytes())
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header_images + images.tobytes()))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header_labels + labels.tobytes()))
    for path, split in ((tmp_path / "t10k-images-idx3-ubyte", None), (tmp_path, "train"), (tmp_path, "test")):
        got_images, got_labels = load_digits(path, split=split)
        np.testing.assert_array_equal(got_images, images)
        np.testing.assert_array_equal(got_labels, labels)


def test_a_file_that_is_not_idx_is_refused(tmp_path):
    (tmp_path / "junk").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="bad magic number"):
        read_idx(tmp_path / "junk")
