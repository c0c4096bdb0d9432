"""The README's curl examples, run as written against a real server: a cookie jar keeps the workspace
between calls, and a bearer token does the same for a script."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import free_port
from tests.jobs.conftest import ROOT, base_env, serve


def readme_block(after_heading: str) -> str:
    """The first ```sh block after a heading."""
    text = (ROOT / "README.md").read_text()
    return re.search(r"```sh\n(.*?)```", text[text.index(after_heading) :], re.S).group(1)


def test_the_readme_curl_examples_work_with_a_cookie_jar_and_a_bearer_token(tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    port = free_port()
    server = serve(base_env(tmp_path), port, workers=1)
    try:
        script = readme_block("### Workspaces").replace("localhost:8000", f"127.0.0.1:{port}")
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr
        events, _, listing = done.stdout.rpartition("\n[")
        assert "event: started" in events and "event: done" in events
        assert "Netscape HTTP Cookie File" in (tmp_path / "jar").read_text()
        models = json.loads("[" + listing)
        assert [m["group"] for m in models] == ["shipped", "shipped"]  # a fresh workspace has nothing of its own
    finally:
        server.stop()


def readme_blocks(after_heading: str, count: int) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.*?)```", text[text.index(after_heading) :], re.S)[:count]


def test_the_readmes_onnx_round_trip_and_pytorch_file_work_as_written(tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    pytest.importorskip("onnxruntime")
    port = free_port()
    server = serve(base_env(tmp_path), port, workers=1)
    try:
        onnx_block, pytorch_block = readme_blocks("## Your own model in", 2)
        script = onnx_block.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("python -c", f"{sys.executable} -c")
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        printed, _, imported = done.stdout.strip().rpartition("\n")
        assert printed.startswith("[[") and printed.count(" ") >= 9  # ten logits from onnxruntime
        answer = json.loads(imported)
        assert answer["name"] == "LeNet, round trip" and answer["test_accuracy"] == pytest.approx(0.98875, abs=0.002)
        script = pytorch_block.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        if importlib.util.find_spec("torch") is None:  # torch is never a dependency: fetch the files only
            script = script.rsplit("\npython ", 1)[0]
        script = script.replace("\npython ", f"\n{sys.executable} ")
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "class Net(nn.Module)" in (tmp_path / "lenet.py").read_text()
        if importlib.util.find_spec("torch") is not None:
            assert len(json.loads(done.stdout)) == 10
    finally:
        server.stop()
