"""A web worker's memory for huge pictures, on a `convscope serve` of its own (one web worker, /proc's
VmRSS and VmHWM):

    .venv/bin/python bench/bench_memory.py

1. One 5600x5600 PNG added to a data set: how much higher the web worker peaks than it stood before
   (pictures are shrunk in uint8 before anything else; before that change: +1,079 MB).
2. Eight of them at once: the peak of the server's processes together (before: 5.3 GB).
Figures are printed, never asserted: they depend on the machine's allocator and load.
"""

from __future__ import annotations

import base64
import contextlib
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import client_for, serving  # noqa: E402

from tests.conftest import a_few_lines, status_bytes  # noqa: E402


def family(pid: int) -> list[int]:
    """The process and every process below it."""
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                kids = [int(k) for k in (task / "children").read_text().split()]
                found += kids
                frontier += kids
    return found


def reset_peaks(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM starts again from VmRSS


def main() -> None:
    url_of_picture = "data:image/png;base64," + base64.b64encode(a_few_lines()).decode()
    with serving(tempfile.mkdtemp(prefix="convscope-memory-"), workers=1) as (url, process):
        client = client_for(url)
        made = client.post("/api/datasets", json={"name": "big", "classes": ["a", "b"], "kind": "digit"}).json()
        add = f"/api/datasets/{made['id']}/images"
        client.post(add, json=[{"label": "a", "image": url_of_picture}])  # what every request loads, loaded
        reset_peaks([process.pid])
        before = status_bytes(process.pid, "VmRSS")
        client.post(add, json=[{"label": "a", "image": url_of_picture}]).raise_for_status()
        grew = status_bytes(process.pid, "VmHWM") - before
        print(f"one 5600x5600 PNG: the web worker peaked {grew >> 20} MB above where it stood")
        pids = family(process.pid)
        reset_peaks(pids)
        with ThreadPoolExecutor(8) as pool:
            for answer in pool.map(
                lambda _: client.post(add, json=[{"label": "b", "image": url_of_picture}]), range(8)
            ):
                answer.raise_for_status()
        peak = sum(status_bytes(pid, "VmHWM") for pid in pids)
        print(f"eight at once: the server's processes peaked at {peak >> 20} MB together")


if __name__ == "__main__":
    main()
