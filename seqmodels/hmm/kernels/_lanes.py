"""Threads and lanes: how the kernels split a batch of sequences, and the lanes' arithmetic.

A *lane group* is up to ``LANES`` (forward passes: ``FORWARD_LANES``)
sequences stepped side by side: per-step
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

The lane arithmetic at the end (``lanes_matmul``, ``forward_step``, ``weigh``,
``lane_emissions``) serves the forward passes; ``prefetch_for_writing`` is
LLVM's prefetch, for outputs written a row per lane.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from seqmodels._checks import check_count

#: Sequences stepped side by side in one thread by the passes that keep a
#: (T, K, W) lattice per group (smoother, E-step, Viterbi).
LANES = 64

#: Lanes of the forward passes (log-likelihood, filter), which keep only a few
#: (K, W) vectors per group: wider groups spread each step's fixed costs
#: (calls, loop setup) over more sequences (the likelihood pass at B=1000,
#: T=500, K=4: 1.31 ms at 64 lanes, 1.14 at 128, 1.03 at 256, 1.08 at 512).
FORWARD_LANES = 256

#: The normalized passes (filter, smoother, E-step) multiply their scales
#: :math:`c_t` up and turn the running product into a log when it falls below
#: this: one log per ~100 steps instead of one per step.
PRODUCT_FLOOR = 1e-100

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
        n = check_count("n", n)
        self.previous = numba.get_num_threads()
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))

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


def lane_width(n_sequences: int, lanes: int = LANES, threads: int | None = None) -> int:
    """Lanes per group: ``lanes``, or fewer so that each of ``threads`` gets a group.

    ``threads`` defaults to :func:`thread_count`; pass 1 for a grouping that
    does not depend on the thread count (sums across sequences then do not
    either).
    """
    threads = thread_count() if threads is None else threads
    return max(1, min(lanes, -(-n_sequences // threads)))


def chunk_count(n_sequences: int, lanes: int = LANES) -> int:
    """Chunks (one per thread at most) for :func:`lane_width`-wide groups of sequences."""
    n_groups = -(-n_sequences // lane_width(n_sequences, lanes))
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


# --------------------------------------------------------------------------- lane arithmetic
# Per-step arrays of a group are (rows, W); a lane's column is its vector. LLVM
# vectorizes the loops over lanes only when their bound is a run-time value (a
# constant trip count made it unroll instead, 3.5x slower) and when they hold no
# lookup by a symbol (it cannot bound such addresses to rule out aliasing).

#: Side of the tiles of :func:`lanes_matmul`; its matrices are padded to multiples of it.
TILE = 4


@njit(cache=True)
def tiled(n):
    """``n`` rounded up to a multiple of ``TILE``."""
    return -(-n // TILE) * TILE


@njit(cache=True)
def padded(matrix, n_rows, n_cols):
    """``matrix`` (R, C) in the top-left corner of zeros of shape (n_rows, n_cols).

    Zero states only add exact ``+ 0.0`` terms to the sums of non-negative
    numbers of the forward passes: their results keep every bit.
    """
    out = np.zeros((n_rows, n_cols))
    for r in range(matrix.shape[0]):
        for c in range(matrix.shape[1]):
            out[r, c] = matrix[r, c]
    return out


@njit(cache=True)
def lanes_matmul(weights, source, out, n_run):
    """``out[j, g] = sum_i source[i, g] * weights[j, i]`` for the first ``n_run`` lanes.

    ``weights`` (J, I) with both sides multiples of ``TILE``; ``source`` (I, W),
    ``out`` (J, W). The sum runs over ``i`` in ascending order, as a loop
    ``total += source[i] * weights[j, i]`` from 0 does, so one sequence stepped
    alone gets the same bits. Tiles of 4 x 4 weights keep four inputs and four
    sums of a lane in registers: 4 loads and 4 stores per 16 products instead of
    32 and 16 (2.2x faster at K=4).
    """
    for jt in range(0, weights.shape[0], TILE):
        for it in range(0, weights.shape[1], TILE):
            _tile(weights, source, out, jt, it, n_run)


@njit(cache=True, inline="always")
def _tile(weights, source, out, jt, it, n_run):
    """The 4 x 4 tile of :func:`lanes_matmul` at ``weights[jt:jt+4, it:it+4]``."""
    j0, j1, j2, j3, i0, i1, i2, i3 = jt, jt + 1, jt + 2, jt + 3, it, it + 1, it + 2, it + 3
    w00, w01, w02, w03 = weights[j0, i0], weights[j0, i1], weights[j0, i2], weights[j0, i3]
    w10, w11, w12, w13 = weights[j1, i0], weights[j1, i1], weights[j1, i2], weights[j1, i3]
    w20, w21, w22, w23 = weights[j2, i0], weights[j2, i1], weights[j2, i2], weights[j2, i3]
    w30, w31, w32, w33 = weights[j3, i0], weights[j3, i1], weights[j3, i2], weights[j3, i3]
    for g in range(n_run):
        x0, x1, x2, x3 = source[i0, g], source[i1, g], source[i2, g], source[i3, g]
        if it == 0:
            y0 = x0 * w00 + x1 * w01 + x2 * w02 + x3 * w03
            y1 = x0 * w10 + x1 * w11 + x2 * w12 + x3 * w13
            y2 = x0 * w20 + x1 * w21 + x2 * w22 + x3 * w23
            y3 = x0 * w30 + x1 * w31 + x2 * w32 + x3 * w33
        else:
            y0 = out[j0, g] + x0 * w00 + x1 * w01 + x2 * w02 + x3 * w03
            y1 = out[j1, g] + x0 * w10 + x1 * w11 + x2 * w12 + x3 * w13
            y2 = out[j2, g] + x0 * w20 + x1 * w21 + x2 * w22 + x3 * w23
            y3 = out[j3, g] + x0 * w30 + x1 * w31 + x2 * w32 + x3 * w33
        out[j0, g], out[j1, g], out[j2, g], out[j3, g] = y0, y1, y2, y3


@njit(cache=True)
def forward_step(transmat_t, source, emission, out, mass, n_run):
    """``out = (source @ A) * emission``, ``mass`` its column sums: one forward step per lane.

    :func:`lanes_matmul` then :func:`weigh`, the same sums in the same order;
    with a single tile (K' = ``TILE`` states) in one pass over the lanes, the
    vector kept in registers between the two (the likelihood pass at B=1000,
    T=500, K=4: 1.19 -> 0.99 ms).
    """
    if transmat_t.shape[0] != TILE:
        lanes_matmul(transmat_t, source, out, n_run)
        weigh(out, emission, mass, n_run)
        return
    w00, w01, w02, w03 = transmat_t[0, 0], transmat_t[0, 1], transmat_t[0, 2], transmat_t[0, 3]
    w10, w11, w12, w13 = transmat_t[1, 0], transmat_t[1, 1], transmat_t[1, 2], transmat_t[1, 3]
    w20, w21, w22, w23 = transmat_t[2, 0], transmat_t[2, 1], transmat_t[2, 2], transmat_t[2, 3]
    w30, w31, w32, w33 = transmat_t[3, 0], transmat_t[3, 1], transmat_t[3, 2], transmat_t[3, 3]
    for g in range(n_run):
        x0, x1, x2, x3 = source[0, g], source[1, g], source[2, g], source[3, g]
        y0 = (x0 * w00 + x1 * w01 + x2 * w02 + x3 * w03) * emission[0, g]
        y1 = (x0 * w10 + x1 * w11 + x2 * w12 + x3 * w13) * emission[1, g]
        y2 = (x0 * w20 + x1 * w21 + x2 * w22 + x3 * w23) * emission[2, g]
        y3 = (x0 * w30 + x1 * w31 + x2 * w32 + x3 * w33) * emission[3, g]
        out[0, g], out[1, g], out[2, g], out[3, g] = y0, y1, y2, y3
        mass[g] = y0 + y1 + y2 + y3


@njit(cache=True)
def weigh(vectors, emission, mass, n_run):
    """``vectors *= emission`` and ``mass[g] = sum_k vectors[k, g]`` (k ascending), per lane.

    In place: with distinct input and output arrays that happen to be one,
    LLVM's overlap check fails at run time and the scalar loop runs (4x slower).
    """
    for g in range(n_run):
        mass[g] = 0.0
    for k in range(vectors.shape[0]):
        for g in range(n_run):
            vectors[k, g] *= emission[k, g]
            mass[g] += vectors[k, g]


@njit(cache=True)
def lane_rows(symbols, lanes, rows):
    """``rows[g]``: where sequence ``lanes[g]`` starts in ``symbols.reshape(-1)``."""
    for g in range(lanes.shape[0]):
        rows[g] = lanes[g] * symbols.shape[1]


@njit(cache=True)
def running_lanes(lengths, lanes, t, n_run):
    """How many of ``lanes`` (longest first) have a step ``t``, given ``n_run`` had ``t - 1``."""
    while n_run and lengths[lanes[n_run - 1]] <= t:
        n_run -= 1
    return n_run


@njit(cache=True)
def lane_emissions(emission_t, flat_symbols, rows, t, n_run, out):
    """``out[k, g] = emission_t[x_t, k]`` of the sequence starting at ``rows[g]``.

    The step's one lookup by symbol, kept out of the vectorized loops.
    ``flat_symbols`` is ``symbols.reshape(-1)``: offsets set once per group
    halve the cost of indexing the sequences through ``lanes``. A loop over a
    constant ``TILE`` states unrolls: 2x faster than one over ``K`` states.
    Unsigned indices skip numba's wrap-around of negative ones (4% faster).
    """
    if out.shape[0] == TILE:
        for g in range(n_run):
            symbol = np.uint64(flat_symbols[np.uint64(rows[g] + t)])
            for k in range(TILE):
                out[k, g] = emission_t[symbol, k]
        return
    for g in range(n_run):
        symbol = np.uint64(flat_symbols[np.uint64(rows[g] + t)])
        for k in range(out.shape[0]):
            out[k, g] = emission_t[symbol, k]


@intrinsic
def prefetch_for_writing(typingctx, array, index):
    """Ask for the cache line of ``array.reshape(-1)[index]`` before writing to it.

    LLVM's ``prefetch`` intrinsic, which numba does not expose. The lanes of a
    group each write their own row of the outputs: more streams than the
    hardware prefetcher follows. (Reading the symbols the same way measured no
    gain: the input has just been validated, so it is in cache.)
    """

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        pointer = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        prefetch = builder.module.declare_intrinsic(
            "llvm.prefetch", [pointer.type],
            ir.FunctionType(ir.VoidType(), [pointer.type, i32, i32, i32]))
        builder.call(prefetch, [pointer, i32(1), i32(3), i32(1)])  # write, keep in cache, data
        return context.get_dummy_value()

    return types.void(array, index), codegen
