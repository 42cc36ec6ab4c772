"""Forward-backward in lanes: posterior state probabilities and the E-step's expected counts.

One pass serves both (:func:`forward_backward`): the scaled forward pass stores
:math:`\\alpha_t` and :math:`c_t` of a lane group, then the backward pass runs
:math:`\\hat\\beta_t = A (B_{\\cdot x_{t+1}} \\odot \\hat\\beta_{t+1}) / c_{t+1}` and
either writes :math:`\\gamma_t = \\alpha_t \\odot \\hat\\beta_t` (normalized) or
adds it, and the transition terms, to the expected counts. Every loop over
lanes is innermost, so each step is a few vector operations per state pair
for the whole group (see :mod:`._lanes`). Lane ``g`` runs while
``g < n_running[t]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from seqmodels.hmm.kernels._lanes import (
    NARROW,
    PRODUCT_FLOOR,
    gather_lanes,
    group_lanes,
    run_chunks,
)


@njit(cache=True, error_model="numpy")
def _normalize(alpha, scales, step, n_run, inverse, product, log_total, bad):
    """Divide :math:`\\alpha_t` by :math:`c_t` per lane; log the scales' running product.

    A lane whose :math:`c_t` is 0 records ``step`` in ``bad`` (its first one)
    and goes on with :math:`\\alpha = 0` and :math:`c = 1`: the caller refuses it.
    """
    n_low = 0
    for g in range(n_run):
        n_low += not scales[step, g] > 0.0
    for g in range(n_run if n_low else 0):
        if not scales[step, g] > 0.0:
            scales[step, g] = 1.0
            bad[g] = step if bad[g] < 0 else bad[g]
    n_low = 0
    for g in range(n_run):
        inverse[g] = 1.0 / scales[step, g]
        product[g] *= scales[step, g]
        n_low += product[g] < PRODUCT_FLOOR
    for k in range(alpha.shape[1]):
        for g in range(n_run):
            alpha[step, k, g] *= inverse[g]
    for g in range(n_run if n_low else 0):
        if product[g] < PRODUCT_FLOOR:
            log_total[g] += np.log(product[g])
            product[g] = 1.0


@njit(cache=True, error_model="numpy")
def _forward(startprob, transmat_t, emission_t, lane_symbols, n_running, n_steps, alpha, scales,
             bad, log_likelihood):
    """Scaled forward pass of a lane group: :math:`\\alpha_t` into ``alpha[t, :, g]`` (T, K, W).

    :math:`q_t = \\alpha_{t-1} A` is summed in state order. ``scales`` (T, W)
    gets :math:`c_t`, ``bad`` (W,) -1 or the first impossible step,
    ``log_likelihood`` (W,) :math:`\\log P(x)`.
    """
    n_states, width = startprob.shape[0], alpha.shape[2]
    product, log_total, inverse = np.ones(width), np.zeros(width), np.empty(width)
    bad[:] = -1
    for t in range(n_steps):
        n_run = n_running[t]
        for g in range(n_run):
            scales[t, g] = 0.0
        for j in range(n_states):
            if t == 0:
                for g in range(n_run):
                    alpha[0, j, g] = startprob[j] * emission_t[lane_symbols[0, g], j]
            else:
                for g in range(n_run):
                    alpha[t, j, g] = 0.0
                for i in range(n_states):
                    weight = transmat_t[j, i]
                    for g in range(n_run):
                        alpha[t, j, g] += alpha[t - 1, i, g] * weight
                for g in range(n_run):
                    alpha[t, j, g] *= emission_t[lane_symbols[t, g], j]
            for g in range(n_run):
                scales[t, g] += alpha[t, j, g]
        _normalize(alpha, scales, t, n_run, inverse, product, log_total, bad)
    for g in range(width):
        log_likelihood[g] = log_total[g] + np.log(product[g])


@njit(cache=True, error_model="numpy")
def _backward(transmat, emission_t, lane_symbols, n_running, n_steps, alpha, scales, lanes,
              posterior, counts):
    """Backward pass of a lane group after :func:`_forward`.

    With ``posterior`` (B, T, K) non-empty, :math:`\\gamma_t` of lane ``g`` is
    written to ``posterior[lanes[g], t]``; otherwise the per-lane ``counts``
    gather it (:func:`_add_counts`).
    """
    n_states, width = alpha.shape[1], alpha.shape[2]
    beta, weighted = np.ones((n_states, width)), np.empty((n_states, width))
    inverse = np.empty(width)
    n_run = 0
    for t in range(n_steps - 1, -1, -1):
        n_step = n_run  # lanes with a step t + 1 take a backward step; the others start
        n_run = n_running[t]
        for g in range(n_step):
            inverse[g] = 1.0 / scales[t + 1, g]
        for j in range(n_states):
            for g in range(n_step):
                weighted[j, g] = (emission_t[lane_symbols[t + 1, g], j] * beta[j, g]
                                  * inverse[g])
        for i in range(n_states):
            for g in range(n_step):
                beta[i, g] = 0.0
            for j in range(n_states):
                weight = transmat[i, j]
                for g in range(n_step):
                    beta[i, g] += weight * weighted[j, g]
        for g in range(n_run):
            inverse[g] = 0.0
        for k in range(n_states):
            for g in range(n_run):
                inverse[g] += alpha[t, k, g] * beta[k, g]
        for g in range(n_run):
            inverse[g] = 1.0 / inverse[g]
        if posterior.shape[0]:
            _write_posterior(posterior, lanes, alpha, beta, inverse, t, n_run)
        else:
            _add_counts(counts, alpha, beta, weighted, inverse, lane_symbols, t, n_step, n_run)


@njit(cache=True)
def _add_counts(counts, alpha, beta, weighted, inverse, lane_symbols, t, n_step, n_run):
    """The E-step's per-lane ``counts`` (K, 1 + K + V, W) at step ``t``.

    Column 0 of row ``k`` gathers :math:`\\gamma_0(k)`; column ``1 + j`` of row
    ``i`` :math:`\\alpha_t(i) B_{j x_{t+1}} \\hat\\beta_{t+1}(j) / c_{t+1}` (times
    :math:`A_{ij}` this is the expected number of ``i -> j`` transitions);
    column ``1 + K + v`` of row ``k`` :math:`\\gamma_t(k)` where :math:`x_t = v`.
    """
    n_states = alpha.shape[1]
    for i in range(n_states):
        for j in range(n_states):
            for g in range(n_step):
                counts[i, 1 + j, g] += alpha[t, i, g] * weighted[j, g]
    for k in range(n_states):
        for g in range(n_run):
            column = 1 + n_states + lane_symbols[t, g]
            counts[k, column, g] += alpha[t, k, g] * beta[k, g] * inverse[g]
    for k in range(n_states if t == 0 else 0):
        for g in range(n_run):
            counts[k, 0, g] += alpha[0, k, g] * beta[k, g] * inverse[g]


@njit(cache=True)
def _write_posterior(posterior, lanes, alpha, beta, inverse, t, n_run):
    """``posterior[lanes[g], t] =`` :math:`\\gamma_t` of lane ``g``."""
    for k in range(alpha.shape[1]):
        for g in range(n_run):
            posterior[lanes[g], t, k] = alpha[t, k, g] * beta[k, g] * inverse[g]


@njit(cache=True, error_model="numpy")
def _forward_backward_lane(startprob, transmat, transmat_t, emission_t, lane_symbols, n_steps,
                           alpha, scales, lane, posterior, b, counts):
    """:func:`_forward` then :func:`_backward` for lane ``lane`` alone, sequence ``b``.

    For groups of fewer than ``NARROW`` lanes (a vector loop over one lane costs
    its setup per state pair): the same operations in the same order, so the
    same bits, with the sums in registers. Returns (log P(x), bad step or -1).
    """
    n_states = startprob.shape[0]
    product, log_total, bad = 1.0, 0.0, -1
    for t in range(n_steps):
        symbol, scale = lane_symbols[t, lane], 0.0
        for j in range(n_states):
            if t == 0:
                value = startprob[j] * emission_t[symbol, j]
            else:
                value = 0.0
                for i in range(n_states):
                    value += alpha[t - 1, i, lane] * transmat_t[j, i]
                value *= emission_t[symbol, j]
            alpha[t, j, lane] = value
            scale += value
        if not scale > 0.0:
            scale, bad = 1.0, t if bad < 0 else bad
        scales[t, lane], inverse = scale, 1.0 / scale
        product *= scale
        for k in range(n_states):
            alpha[t, k, lane] *= inverse
        if product < PRODUCT_FLOOR:
            log_total, product = log_total + np.log(product), 1.0
    beta, weighted = np.ones(n_states), np.empty(n_states)
    for t in range(n_steps - 1, -1, -1):
        if t < n_steps - 1:
            symbol, inverse = lane_symbols[t + 1, lane], 1.0 / scales[t + 1, lane]
            for j in range(n_states):
                weighted[j] = emission_t[symbol, j] * beta[j] * inverse
            for i in range(n_states):
                value = 0.0
                for j in range(n_states):
                    value += transmat[i, j] * weighted[j]
                beta[i] = value
            for i in range(n_states if counts.shape[1] else 0):
                for j in range(n_states):
                    counts[i, 1 + j, lane] += alpha[t, i, lane] * weighted[j]
        total = 0.0
        for k in range(n_states):
            total += alpha[t, k, lane] * beta[k]
        inverse = 1.0 / total
        for k in range(n_states):
            value = alpha[t, k, lane] * beta[k] * inverse
            if counts.shape[1]:
                counts[k, 1 + n_states + lane_symbols[t, lane], lane] += value
                if t == 0:
                    counts[k, 0, lane] += value
            else:
                posterior[b, t, k] = value
    return log_total + np.log(product), bad


def forward_backward(startprob, transmat, transmat_t, emission_t, symbols, lengths, order,
                     width, n_chunks, posterior, counts, log_likelihood, bad_step) -> None:
    """Smoothing (``posterior`` non-empty) or the E-step of Baum-Welch, over the whole batch.

    Parameters
    ----------
    startprob, transmat, transmat_t, emission_t : ndarray
        Shapes (K,), (K, K), (K, K) (``transmat.T``), (V, K) (``emissionprob.T``),
        all C-contiguous.
    symbols : ndarray of int64, shape (B, T)
    lengths : ndarray of int64, shape (B,)
    order : ndarray of int64, shape (B,)
        The sequences from longest to shortest (:func:`._lanes.longest_first`).
    width : int
        Lanes per group (:func:`._lanes.lane_width`).
    n_chunks : int
        Chunks of groups, one per thread (:func:`._lanes.chunk_count`).
    posterior : ndarray, shape (B, T, K) or (0, T, K)
        Out: :math:`P(z_t \\mid x)`, NaN past each end. Empty for the E-step.
    counts : ndarray, shape (G, K, 1 + K + V) or (0, K, 0)
        Out for the E-step: the expected counts of each of the ``G`` lane
        groups (columns as in :func:`_add_counts`), for the caller to sum in
        group order. Per group, not per chunk, so that with a grouping that
        does not depend on the thread count (``lane_width(B, threads=1)``) the
        sums do not either, to the last bit. Empty for smoothing.
    log_likelihood : ndarray, shape (B,)
        Out: :math:`\\log P(x) = \\sum_t \\log c_t`.
    bad_step : ndarray of int64, shape (B,)
        Out: the first step of probability 0, or -1.

    Notes
    -----
    Scratch per chunk: ``T (K + 2) W`` numbers, plus the per-lane counts.
    """
    run_chunks(_forward_backward_chunk, n_chunks, startprob, transmat, transmat_t,
               emission_t, symbols, lengths, order, width, posterior, counts, log_likelihood,
               bad_step)


@njit(cache=True, nogil=True)
def _forward_backward_chunk(chunk, n_chunks, startprob, transmat, transmat_t, emission_t,
                            symbols, lengths, order, width, posterior, counts, log_likelihood,
                            bad_step):
    """:func:`forward_backward` for the lane groups of one chunk."""
    n_seq, n_states = symbols.shape[0], startprob.shape[0]
    n_groups = -(-n_seq // width)
    longest = lengths[order[chunk * width]]
    alpha, scales = np.empty((longest, n_states, width)), np.empty((longest, width))
    lane_symbols = np.empty((longest, width), dtype=np.int64)
    n_running = np.empty(longest, dtype=np.int64)
    bad, lane_log_likelihood = np.empty(width, dtype=np.int64), np.empty(width)
    lane_counts = np.zeros((n_states, counts.shape[2], width))
    for group in range(chunk, n_groups, n_chunks):
        lanes = group_lanes(order, width, group)
        n_steps = gather_lanes(symbols, lengths, lanes, lane_symbols, n_running)
        if lanes.shape[0] < NARROW:
            for g in range(lanes.shape[0]):
                lane_log_likelihood[g], bad[g] = _forward_backward_lane(
                    startprob, transmat, transmat_t, emission_t, lane_symbols,
                    lengths[lanes[g]], alpha, scales, g, posterior, lanes[g], lane_counts)
        else:
            _forward(startprob, transmat_t, emission_t, lane_symbols, n_running, n_steps, alpha,
                     scales, bad, lane_log_likelihood)
            _backward(transmat, emission_t, lane_symbols, n_running, n_steps, alpha, scales,
                      lanes, posterior, lane_counts)
        for g in range(lanes.shape[0]):
            b = lanes[g]
            log_likelihood[b], bad_step[b] = lane_log_likelihood[g], bad[g]
            if posterior.shape[0]:
                posterior[b, lengths[b]:] = np.nan
        for k in range(counts.shape[1] if counts.shape[0] else 0):
            for column in range(counts.shape[2]):
                counts[group, k, column] = lane_counts[k, column].sum()
                lane_counts[k, column] = 0.0
