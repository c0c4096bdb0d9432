"""How the processes of ``convscope serve`` end together.

``convscope serve`` runs uvicorn's web workers and a training worker as child processes. If the
parent is killed outright (SIGKILL, the OOM killer), nothing tells the children; left running they
would keep the port and train on as orphans, and a restart would find the port taken. So each child
watches its parent and leaves as soon as it is gone.
"""

from __future__ import annotations

import os
import threading
import time

PARENT_ENV = "CONVSCOPE_PARENT_PID"
_watching = threading.Event()  # one watcher a process, however many apps it creates


def mark_parent() -> None:
    """Called by ``convscope serve`` before it starts children: they inherit its pid in the environment."""
    os.environ[PARENT_ENV] = str(os.getpid())


def leave_with_parent(poll_seconds: float = 0.5) -> None:
    """In a child of ``convscope serve``: exits this process once that parent is gone (re-parented)."""
    value = os.environ.get(PARENT_ENV)
    if not value or int(value) == os.getpid():
        return  # not started by serve (tests, a bare uvicorn), or serve itself
    parent = int(value)
    if os.getppid() != parent:
        os._exit(0)  # serve died while this process was still starting
    if _watching.is_set():
        return
    _watching.set()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
