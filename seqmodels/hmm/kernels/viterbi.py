"""Viterbi in lanes: the most probable state paths, with hmmlearn's values and tie rules.

:math:`\\delta_0 = \\log\\pi + \\log B_{\\cdot x_0}`, :math:`\\delta_t(j) = \\max_i
[\\delta_{t-1}(i) + \\log A_{ij}] + \\log B_{j x_t}`: hmmlearn's operations in
hmmlearn's order, so the lattice agrees bit for bit. A lane group's lattice is
stored ``(T, K, W)`` (the max-plus loops over lanes vectorize); the backtrack
recomputes each argmax from it (no back-pointer array), with hmmlearn's tie
rules: the lowest tied state at the last step, the highest tied predecessor
everywhere else. O(K^2) work per sequence-step, no K x K x B temporary.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from seqmodels.hmm.kernels._lanes import NARROW, gather_lanes, group_lanes, run_chunks


@njit(cache=True)
def _lattice_lane(log_start, log_trans_t, log_emission_t, lane_symbols, n_steps, lattice, g):
    """:func:`_lattice` for lane ``g`` alone, the maxima in registers: the same values.

    For groups of fewer than ``NARROW`` lanes (see :mod:`._lanes`).
    """
    n_states = log_start.shape[0]
    for t in range(n_steps):
        symbol = lane_symbols[t, g]
        for j in range(n_states):
            best = log_start[j]
            if t > 0:
                best = -np.inf
                for i in range(n_states):
                    candidate = lattice[t - 1, i, g] + log_trans_t[j, i]
                    best = candidate if candidate > best else best
            lattice[t, j, g] = best + log_emission_t[symbol, j]


@njit(cache=True)
def _lattice(log_start, log_trans_t, log_emission_t, lane_symbols, n_running, n_steps, lattice,
             best):
    """:math:`\\delta_t(j)` of a lane group into ``lattice[t, j, g]`` (``best``: scratch)."""
    n_states = log_start.shape[0]
    for t in range(n_steps):
        n_run = n_running[t]
        for j in range(n_states):
            if t == 0:
                for g in range(n_run):
                    best[g] = log_start[j]
            else:
                for g in range(n_run):
                    best[g] = -np.inf
                for i in range(n_states):
                    weight = log_trans_t[j, i]
                    for g in range(n_run):
                        candidate = lattice[t - 1, i, g] + weight
                        best[g] = candidate if candidate > best[g] else best[g]
            for g in range(n_run):
                lattice[t, j, g] = best[g] + log_emission_t[lane_symbols[t, g], j]


@njit(cache=True)
def _first_impossible_step(lattice, lane, length):
    """The first step at which every state of lane ``lane`` is at -inf."""
    for t in range(length):
        if lattice[t, :, lane].max() == -np.inf:
            return t
    return length - 1


@njit(cache=True)
def _backtrack(log_trans_t, n_running, n_steps, lattice, lanes, paths, log_prob, bad_step):
    """Paths of a lane group from its lattice, every lane's step ``t`` together."""
    n_states, n_run = log_trans_t.shape[0], 0
    for t in range(n_steps - 1, -1, -1):
        n_next = n_run  # lanes with a step t + 1 follow it back; the others end at t
        n_run = n_running[t]
        for g in range(n_next, n_run):
            last = 0
            for k in range(1, n_states):
                if lattice[t, k, g] > lattice[t, last, g]:
                    last = k
            b = lanes[g]
            paths[b, t], log_prob[b] = last, lattice[t, last, g]
            bad_step[b] = -1 if log_prob[b] > -np.inf else _first_impossible_step(lattice, g,
                                                                                   t + 1)
        for g in range(n_next):
            b = lanes[g]
            following, state, best_value = paths[b, t + 1], 0, -np.inf
            for i in range(n_states):
                value = lattice[t, i, g] + log_trans_t[following, i]
                if value >= best_value:
                    state, best_value = i, value
            paths[b, t] = state


def viterbi_pass(log_start, log_trans_t, log_emission_t, symbols, lengths, order, width,
                 n_chunks, paths, log_prob, bad_step) -> None:
    """Viterbi paths into ``paths`` (B, T) int64 (-1 past each end), ``log_prob`` (B,).

    ``log_start`` (K,), ``log_trans_t`` (K, K) = ``log(transmat).T`` and
    ``log_emission_t`` (V, K) = ``log(emissionprob).T``, C-contiguous; ``order``
    (B,) the sequences from longest to shortest, in groups of ``width`` lanes
    spread over ``n_chunks`` threads (see :mod:`._lanes`).

    ``bad_step`` (B,) receives each sequence's first impossible step, or -1.
    Scratch: one (T, K + 1, W) lattice and symbols per chunk.
    """
    run_chunks(_viterbi_chunk, n_chunks, log_start, log_trans_t, log_emission_t, symbols,
               lengths, order, width, paths, log_prob, bad_step)


@njit(cache=True, nogil=True)
def _viterbi_chunk(chunk, n_chunks, log_start, log_trans_t, log_emission_t, symbols, lengths,
                   order, width, paths, log_prob, bad_step):
    """:func:`viterbi_pass` for the lane groups of one chunk."""
    n_seq, n_states = symbols.shape[0], log_start.shape[0]
    n_groups = -(-n_seq // width)
    longest = lengths[order[chunk * width]]
    lattice, best = np.empty((longest, n_states, width)), np.empty(width)
    lane_symbols = np.empty((longest, width), dtype=np.int64)
    n_running = np.empty(longest, dtype=np.int64)
    for group in range(chunk, n_groups, n_chunks):
        lanes = group_lanes(order, width, group)
        n_steps = gather_lanes(symbols, lengths, lanes, lane_symbols, n_running)
        for g in range(lanes.shape[0] if lanes.shape[0] < NARROW else 0):
            _lattice_lane(log_start, log_trans_t, log_emission_t, lane_symbols,
                          lengths[lanes[g]], lattice, g)
        if lanes.shape[0] >= NARROW:
            _lattice(log_start, log_trans_t, log_emission_t, lane_symbols, n_running, n_steps,
                     lattice, best)
        _backtrack(log_trans_t, n_running, n_steps, lattice, lanes, paths, log_prob,
                   bad_step)
        for g in range(lanes.shape[0]):
            paths[lanes[g], lengths[lanes[g]]:] = -1
