"""Reading digit data sets: ``.npz`` files and MNIST's original IDX files.

- ``.npz`` with ``images`` uint8 (N, 28, 28) and ``labels`` (N,)
- an IDX image file (``train-images-idx3-ubyte`` or ``...-ubyte.gz``) whose labels file
  sits beside it under the matching ``labels-idx1-ubyte`` name
- a folder holding MNIST's four IDX files: ``split="train"`` reads ``train-*``,
  ``split="test"`` reads ``t10k-*``

The IDX format (LeCun et al.): a big-endian header of magic number
(0x0000 08 NDIM, 08 = unsigned byte), then NDIM uint32 sizes, then the raw bytes.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from engine.errors import EngineError

_IDX_UBYTE = 0x08


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (gzipped or not) as a uint8 array of the shape its header gives."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE:
        raise EngineError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(s) for s in np.frombuffer(raw[4:header], dtype=">u4"))
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != int(np.prod(shape)):
        raise EngineError(f"{path}: header says {shape} but holds {data.size} bytes")
    return data.reshape(shape)


def _labels_beside(images_path: Path) -> Path:
    name = images_path.name.replace("images-idx3", "labels-idx1").replace("images.idx3", "labels.idx1")
    labels_path = images_path.with_name(name)
    if name == images_path.name or not labels_path.exists():
        raise FileNotFoundError(f"no labels file found beside {images_path} (expected {labels_path.name})")
    return labels_path


def _idx_pair_in(folder: Path, split: str | None) -> Path:
    prefix = {"train": "train", "test": "t10k", None: ""}[split]
    candidates = sorted(p for p in folder.iterdir() if "images" in p.name and "idx3" in p.name)
    chosen = [p for p in candidates if p.name.startswith(prefix)]
    if not chosen:
        raise FileNotFoundError(f"no IDX image file ({prefix or 'any'}*images-idx3-ubyte[.gz]) in {folder}")
    return chosen[0]


def load_digits(path: str | Path, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 28, 28) and labels uint8 (N,) from an ``.npz``, an IDX file or an MNIST folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_dir():
        path = _idx_pair_in(path, split)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "images" not in data.files or "labels" not in data.files:
                raise EngineError(f"{path} must hold arrays 'images' (N, 28, 28) and 'labels' (N,)")
            images, labels = data["images"], data["labels"]
    else:
        images, labels = read_idx(path), read_idx(_labels_beside(path))
    if images.ndim != 3 or labels.shape != (len(images),):
        raise EngineError(f"{path}: images {images.shape} and labels {labels.shape} do not match")
    return images.astype(np.uint8), labels.astype(np.uint8)
