"""Shared helpers: the in-repo MNIST sample, a free loopback port."""

import socket
from pathlib import Path

SAMPLE_PATH = Path(__file__).parent / "data" / "mnist-sample.npz"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
