"""Run a serial Numba kernel over blocks of work on several threads.

Numba's ``parallel=True`` compiles each ``prange`` loop through its parfor pipeline, which
costs 1-10 s per kernel on first call (FastRP's six kernels took 37 s, the random
projection's 20 s). The kernels here are instead compiled serially with ``nogil=True``
(a few tenths of a second each) as ``worker(lo, hi, *args)``, which does blocks
``lo <= b < hi``, and :func:`run_blocks` hands contiguous ranges of blocks to a pool of
Python threads, which run them without the GIL. The number of threads is Numba's
(``numba.get_num_threads()``: ``NUMBA_NUM_THREADS``, ``numba.set_num_threads``), so
pinning Numba to one thread still gives one thread. Blocks write disjoint outputs, so the
result does not depend on the number of threads.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading

import numba

__all__ = ["run_blocks"]

_TASKS_PER_THREAD = 4  # more tasks than threads evens out blocks of unequal cost
_pools: dict[int, concurrent.futures.ThreadPoolExecutor] = {}
_lock = threading.Lock()
_pid = os.getpid()


def _pool(threads: int) -> concurrent.futures.ThreadPoolExecutor:
    global _pid
    with _lock:
        if os.getpid() != _pid:  # a forked child has none of its parent's threads
            _pools.clear()
            _pid = os.getpid()
        pool = _pools.get(threads)
        if pool is None:
            pool = _pools[threads] = concurrent.futures.ThreadPoolExecutor(
                threads, thread_name_prefix="numlab-kernel")
        return pool


def run_blocks(worker, n_blocks: int, *args) -> None:
    """Call ``worker(lo, hi, *args)`` on ranges covering ``0 <= b < n_blocks``, in parallel."""
    n_blocks = int(n_blocks)
    threads = min(numba.get_num_threads(), n_blocks)
    if threads <= 1 or threading.current_thread().name.startswith("numlab-kernel"):
        worker(0, n_blocks, *args)
        return
    n_tasks = min(n_blocks, threads * _TASKS_PER_THREAD)
    edges = [n_blocks * t // n_tasks for t in range(n_tasks + 1)]
    pool = _pool(threads)
    futures = [pool.submit(worker, edges[t], edges[t + 1], *args) for t in range(n_tasks)]
    for future in futures:
        future.result()
