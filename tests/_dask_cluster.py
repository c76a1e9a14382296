"""A worker of the Dask tests' cluster (the ``client`` fixture of conftest.py) killed in the
middle of a computation."""

from __future__ import annotations

import contextlib
import os
import signal
import threading


@contextlib.contextmanager
def worker_killed_after(client, seconds):
    """Kill one of ``client``'s worker processes (SIGKILL) ``seconds`` into the block, and
    fail if the block ended before the kill: the test would not have tested recovery."""
    pids = client.run(os.getpid)  # {worker address: pid}
    victim = sorted(pids)[0]
    killed = threading.Event()

    def kill():
        os.kill(pids[victim], signal.SIGKILL)
        killed.set()

    timer = threading.Timer(seconds, kill)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
    assert killed.is_set(), "the computation ended before the worker was killed"
