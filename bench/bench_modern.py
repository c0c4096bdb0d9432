"""Modern blocks on this machine, against PyTorch CPU in the same run where it is installed:

    .venv/bin/python bench/bench_modern.py            # the table
    .venv/bin/python bench/bench_modern.py --quick    # fewer repeats

1. A residual block with BatchNorm (ResNet's basic block, as the training page adds it): a training step
   at batch 64 -- forward, backward and Adam, BatchNorm on the batch's statistics, the slices meeting at
   every BatchNorm as training splits them across the cores. Target: within 1.5x of PyTorch.
2. A depthwise-separable block (MobileNet's): a forward pass at batch 64. Target: within 2x.
3. The two presets the blocks make (small-resnet, mobilenet), both figures, for scale.

Each block sits between a small stem and a head (global average pooling, a linear layer), so that there is
a loss to train. PyTorch runs the engine's own PyTorch export with the same weights. The ratio is
convscope / PyTorch, each the median of timed runs in this process; torch is never a dependency
(`pip install torch==2.13.0` takes the CPU build).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import fmt, median_seconds, ratio, torch_training_step, training_step  # noqa: E402

from engine import build_network, processes  # noqa: E402
from engine.allocator import keep_freed_memory  # noqa: E402
from engine.architectures import architecture, residual_block, separable_block  # noqa: E402
from engine.network import Network  # noqa: E402
from engine.parallel import available_cores  # noqa: E402
from engine.pytorch_export import pytorch_twin  # noqa: E402

BATCH = 64
HEAD = [{"type": "globalavgpool", "name": "gap"}, {"type": "flatten"}, {"type": "linear", "units": 10, "name": "fc"}]


def residual_design(channels: int = 32, size: int = 14) -> dict[str, Any]:
    """A 3x3 stem to ``channels`` maps of ``size`` x ``size``, one residual block on them, the head."""
    stem = [{"type": "conv", "filters": channels, "kernel_size": 3, "padding": 1, "name": "stem"}]
    stem += [{"type": "batchnorm", "name": "stem_bn"}, {"type": "relu", "name": "stem_relu"}]
    block = residual_block("block", "stem_relu", channels, channels)
    return {"input": [channels, size, size], "classes": 10, "layers": stem + block + HEAD}


def separable_design(channels: int = 32, filters: int = 64, size: int = 14) -> dict[str, Any]:
    """One depthwise-separable block from ``channels`` to ``filters`` maps of ``size`` x ``size``, the head."""
    block = separable_block("sep", channels, filters)
    return {"input": [channels, size, size], "classes": 10, "layers": block + HEAD}


def timed(network: Network, torch: Any, repeat: int) -> dict[str, float | None]:
    """The forward pass (inference: running statistics) and the training step, ours and PyTorch's."""
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, *network.input_shape), dtype=np.float32)
    labels = rng.integers(0, network.classes, BATCH)
    times: dict[str, float | None] = {"forward": median_seconds(lambda: network.forward(x), repeat)}
    times["step"] = median_seconds(training_step(network.copy(), x, labels), repeat)
    times["torch forward"] = times["torch step"] = None
    if torch is not None:
        twin = pytorch_twin(network, Path(tempfile.mkdtemp(prefix="convscope-twin-"))).eval()
        with torch.inference_mode():
            times["torch forward"] = median_seconds(lambda: twin(torch.from_numpy(x)), repeat)
        times["torch step"] = median_seconds(torch_training_step(torch, network.copy(), x, labels), repeat)
    return times


def row(name: str, times: dict[str, float | None]) -> str:
    forward, step = times["forward"], times["step"]
    assert forward is not None and step is not None
    cells = [f"{name:<46}", fmt(forward), fmt(times["torch forward"]), ratio(forward, times["torch forward"])]
    cells += [fmt(step), fmt(times["torch step"]), ratio(step, times["torch step"])]
    return " | ".join(cells)


def optional_torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(available_cores())
    return torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed runs")
    repeat = 7 if parser.parse_args().quick else 25
    torch = optional_torch()
    keep_freed_memory()  # as the training worker does (freed arrays are not faulted in again)
    processes.wait_until_ready(available_cores() - 1)
    where = f"PyTorch {torch.__version__}" if torch else "no PyTorch here: ratios are left blank"
    print(f"{available_cores()} cores; batch {BATCH}; {where}; ratio = convscope / PyTorch\n")
    header = f"{'network':<46} | {'forward':>11} | {'torch':>11} | {'':>7} | {'train step':>11} | {'torch':>11} |"
    print(header + "\n" + "-" * len(header))
    rows = [
        ("residual block + BatchNorm, 32 x 14 x 14", residual_design()),
        ("depthwise-separable block, 32 -> 64 x 14 x 14", separable_design()),
        ("preset small-resnet (clothing, 28 x 28)", architecture("small-resnet")),
        ("preset mobilenet (clothing, 28 x 28)", architecture("mobilenet")),
    ]
    for name, spec in rows:
        print(row(name, timed(build_network(spec, seed=0), torch, repeat)), flush=True)
    print("\ntargets: the residual block's training step within 1.5x; the separable block's forward within 2x")


if __name__ == "__main__":
    main()
