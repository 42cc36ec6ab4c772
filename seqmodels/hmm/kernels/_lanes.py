"""Threads and lanes: how the kernels split a batch of sequences.

A *lane group* is up to ``LANES`` sequences stepped side by side: per-step
arrays are laid out ``(..., LANES)`` so that the loops over lanes are the
innermost ones and vectorize, and the lanes' independent recursions hide each
other's latency (one sequence alone is bound by the latency of its own chain
of dependent multiply-adds). Groups are taken from the sequences sorted from
longest to shortest, so the lanes still running at any step are a prefix of
the group (:func:`gather_lanes`). A *chunk* is the work of one thread: groups
``chunk, chunk + n_chunks, ...``, round-robin so that long and short groups
spread evenly, with scratch allocated once per chunk.

Chunks run on a pool of Python threads (:func:`run_chunks`) while the
kernels, compiled with ``nogil=True``, release the GIL: the same parallelism as
numba's ``prange`` without its compilation, which cost about 8 of the ~19
seconds of compiling every kernel cold.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit

#: Sequences stepped side by side in one thread. The likelihood pass measured
#: slower with fewer than 64.
LANES = 64

#: Groups of fewer lanes run lane by lane (same operations in the same order, so
#: the same bits): a vector loop over one or two lanes costs its setup per state
#: pair, 5-7x slower at one lane.
NARROW = 4


class limit_threads:  # lower case: it reads as a call, limit_threads(1)
    """Run the kernels on at most ``n`` threads from this thread on.

    ``limit_threads(1)`` alone keeps the limit; ``with limit_threads(1): ...``
    restores the previous count on exit. The limit is per calling thread, as in
    :func:`numba.set_num_threads`. Setting ``NUMBA_NUM_THREADS=1`` in a worker
    process's environment before it imports numba does the same for the whole
    process.
    """

    def __init__(self, n: int) -> None:
        self.previous = numba.get_num_threads()
        numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))

    def __enter__(self) -> limit_threads:
        return self

    def __exit__(self, *exc) -> None:
        numba.set_num_threads(self.previous)


_pool: list[ThreadPoolExecutor] = []  # created on first use; dropped in a forked child


def _drop_pool() -> None:
    _pool.clear()  # the parent's threads do not exist in a forked child


os.register_at_fork(after_in_child=_drop_pool)


def run_chunks(kernel: Callable, n_chunks: int, *args) -> None:
    """``kernel(chunk, n_chunks, *args)`` for every chunk, on up to ``n_chunks`` threads.

    The calling thread runs chunk 0; ``n_chunks`` comes from
    :func:`chunk_count`, so it follows :func:`limit_threads`.
    """
    if n_chunks > 1 and not _pool:
        _pool.append(ThreadPoolExecutor(numba.config.NUMBA_NUM_THREADS,
                                        thread_name_prefix="seqmodels-kernel"))
    others = [_pool[0].submit(kernel, chunk, n_chunks, *args) for chunk in range(1, n_chunks)]
    kernel(0, n_chunks, *args)
    for future in others:
        future.result()


def thread_count() -> int:
    """Threads the kernels may use from this thread (see :class:`limit_threads`)."""
    return numba.get_num_threads()


def lane_width(n_sequences: int) -> int:
    """Lanes per group: ``LANES``, or fewer so that every thread gets a group."""
    return max(1, min(LANES, -(-n_sequences // thread_count())))


def chunk_count(n_sequences: int) -> int:
    """Chunks (one per thread at most) for :func:`lane_width`-wide groups of sequences."""
    n_groups = -(-n_sequences // lane_width(n_sequences))
    return max(1, min(n_groups, thread_count()))


def longest_first(lengths: np.ndarray) -> np.ndarray:
    """Sequence indices (int64) from the longest to the shortest, ties in index order."""
    return np.argsort(-lengths, kind="stable").astype(np.int64)


@njit(cache=True)
def group_lanes(order, width, group):
    """The sequences of lane group ``group``: ``order[group * width:][:width]``."""
    return order[group * width: min((group + 1) * width, order.shape[0])]


@njit(cache=True)
def gather_lanes(symbols, lengths, lanes, lane_symbols, n_running):
    """Transpose the group's symbols for the per-step loops; count the lanes running per step.

    ``lane_symbols[t, g] = symbols[lanes[g], t]`` (T, W) and ``n_running[t]``
    (T,) for ``t`` below the group's longest length, which is returned: the
    lanes running at step ``t`` are the first ``n_running[t]``.
    """
    n_steps, n_run = lengths[lanes[0]], lanes.shape[0]
    for t in range(n_steps):
        while lengths[lanes[n_run - 1]] <= t:
            n_run -= 1
        n_running[t] = n_run
        for g in range(n_run):
            lane_symbols[t, g] = symbols[lanes[g], t]
    return n_steps
