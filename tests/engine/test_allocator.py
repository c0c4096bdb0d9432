"""engine.allocator: a process that trains keeps its freed arrays, so a step reuses memory it has
already touched instead of faulting fresh pages in."""

import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# 20 blocks of 8 MB (2,048 pages each) allocated, filled and freed; prints the page faults they took
REUSE = """
import resource, sys
import numpy as np
from engine.allocator import keep_freed_memory
print(keep_freed_memory())
np.ones(2 << 20, np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    block = np.ones(2 << 20, np.float32)
    del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_blocks_are_reused_without_faulting_their_pages_in_again():
    run = subprocess.run([sys.executable, "-c", REUSE], cwd=ROOT, capture_output=True, text=True, timeout=60)
    said, faults = run.stdout.split()
    assert said == "True"
    assert int(faults) < 100, f"{faults} page faults for memory freed and allocated again (one block is 2,048)"
