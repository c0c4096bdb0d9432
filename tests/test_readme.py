"""Every shell and Python block of the README, run as written against a server of its own: in order, in
one folder (so the cookie jar, the downloaded model and the trained weights pass from block to block), the
way a newcomer copies them. What is changed, and why:

- the port: `127.0.0.1:8000` becomes the test server's free port;
- `PATH`: the project's `.venv/bin` first, as for a reader who activated it;
- `HOME`: a folder whose `mnist/` holds 600 training and 200 test digits in MNIST's own IDX files (made
  from the shipped digits), standing in for the full MNIST a reader downloads;
- a block marked `<!-- not run by tests/test_readme.py: REASON -->` is skipped, and its reason printed: only
  Docker, torch, the two commands themselves (tested on their own) and long-running work are.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.datasets import load_dataset
from tests.conftest import free_port
from tests.jobs.conftest import ROOT, base_env, serve

FENCE = re.compile(
    r"(?:<!-- not run by tests/test_readme\.py: (?P<skip>[^>]*?) -->\n)?```(?P<kind>sh|python)\n(?P<code>.*?)```", re.S
)
ALLOWED_SKIPS = ("Docker", "torch", "the two commands", "minutes")


def readme_blocks() -> list[tuple[str, str, str | None]]:
    """(kind, code, the reason it is not run, or None) of every ```sh and ```python block, in order."""
    text = (ROOT / "README.md").read_text()
    return [(m["kind"], m["code"], m["skip"]) for m in FENCE.finditer(text)]


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """MNIST's IDX format, gzipped: a magic number, the sizes (big-endian int32), then the bytes."""
    n, h, w = images.shape
    header = np.array([0x803, n, h, w], ">i4").tobytes()
    (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images.tobytes()))
    header = np.array([0x801, n], ">i4").tobytes()
    (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header + labels.astype(np.uint8).tobytes()))


def reader_folder(tmp_path: Path) -> tuple[Path, Path]:
    """The folder the reader works in (the repository's .venv beside it) and their HOME with ~/mnist."""
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    (work / ".venv").symlink_to(ROOT / ".venv")
    mnist = home / "mnist"
    mnist.mkdir(parents=True)
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    write_idx(mnist, "train", train.images[:600], train.labels[:600])
    write_idx(mnist, "t10k", test.images[:200], test.labels[:200])
    return work, home


def run_block(kind: str, code: str, port: int, work: Path, home: Path) -> subprocess.CompletedProcess:
    code = code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    args = ["bash", "-euo", "pipefail", "-c", code] if kind == "sh" else [str(ROOT / ".venv/bin/python"), "-c", code]
    env = {**base_env(work / "data"), "HOME": str(home)}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env['PATH']}"  # the reader's environment is the project's .venv
    return subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=300)


def check(code: str, output: str, work: Path) -> None:
    """What a block must have done, beyond ending without an error, for the blocks that say what they print."""
    first = code.strip().splitlines()[0]
    if first.startswith("# a cookie jar keeps the workspace"):
        assert "event: started" in output and "event: done" in output
        assert '"url":"/?model=s' in output.replace(" ", "")  # the share link that opens it in a browser
        assert "Netscape HTTP Cookie File" in (work / "jar").read_text()
    elif first.startswith("# a model out: ONNX"):
        printed, _, imported = output.strip().rpartition("\n")
        assert printed.startswith("[[")  # ten logits from onnxruntime
        answer = json.loads(imported)
        assert answer["name"] == "LeNet, round trip" and answer["test_accuracy"] == pytest.approx(0.98875, abs=0.002)
    elif first.startswith("# PyTorch: one .py file"):
        assert "class Net(nn.Module)" in (work / "lenet.py").read_text()
    elif first.startswith("python lenet.py"):
        assert len(json.loads(output)) == 10  # PyTorch's ten logits
    elif "--dataset ~/mnist" in first:
        assert (work / "mnist-full.npz").exists() and "accuracy" in output.lower()


def test_every_readme_block_runs_as_written(tmp_path):
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: scripts/test.sh installs Debian's curl")
    blocks = readme_blocks()
    assert len(blocks) >= 8
    shells = [code for kind, code, _ in blocks if kind == "sh"]
    assert not any("localhost" in code for code in shells), "one host name throughout: 127.0.0.1"
    work, home = reader_folder(tmp_path)
    port = free_port()
    server = serve(base_env(tmp_path / "server"), port, workers=1)
    skipped = []
    try:
        for kind, code, skip in blocks:
            if skip is not None and "needs torch" in skip and importlib.util.find_spec("torch") is not None:
                skip = None  # torch is here (installed by hand, never a dependency): the block runs too
            if skip is not None:
                assert any(word in skip for word in ALLOWED_SKIPS), skip
                skipped.append(skip)
                continue
            done = run_block(kind, code, port, work, home)
            assert done.returncode == 0, f"this README block failed:\n{code}\n{done.stderr[-2000:]}"
            check(code, done.stdout, work)
    finally:
        server.stop()
    print("\nnot run:", *(f"  - {reason}" for reason in skipped), sep="\n", file=sys.stderr)
    # a handful by design (Docker, the two commands, long work), and the torch blocks where torch is absent
    assert len([reason for reason in skipped if "needs torch" not in reason]) <= 5
