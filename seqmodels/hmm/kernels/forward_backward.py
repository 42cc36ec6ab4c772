"""Forward-backward in lanes: posterior state probabilities and the E-step's expected counts.

One pass serves both (:func:`forward_backward`): the scaled forward pass stores
:math:`\\alpha_t` and :math:`c_t` of a lane group, then the backward pass runs
:math:`\\hat\\beta_t = A (B_{\\cdot x_{t+1}} \\odot \\hat\\beta_{t+1}) / c_{t+1}` and
either writes :math:`\\gamma_t = \\alpha_t \\odot \\hat\\beta_t` (normalized) or
adds it, and the transition terms, to the expected counts. Every loop over
lanes is innermost, so each step is a few vector operations per state pair
for the whole group (see :mod:`._lanes`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from seqmodels.hmm.kernels._lanes import group_lanes, running

#: The running product of the scales is turned into a log when it falls below
#: this: one log per ~100 steps instead of one per step.
PRODUCT_FLOOR = 1e-100


@njit(cache=True)
def _gather_emissions(emission_t, symbols, lanes, n_run, step, out):
    """``out[k, g] = B[k, x_step]`` of sequence ``lanes[g]``, for the first ``n_run`` lanes."""
    for g in range(n_run):
        symbol = symbols[lanes[g], step]
        for k in range(out.shape[0]):
            out[k, g] = emission_t[symbol, k]


@njit(cache=True, error_model="numpy")
def _normalize_step(alpha, scales, step, n_run, lanes, inverse, product, log_total, bad_step):
    """Divide :math:`\\alpha_t` by :math:`c_t` per lane; log the scales' running product.

    A lane whose :math:`c_t` is 0 records ``step`` in ``bad_step`` (its first
    one) and goes on with :math:`\\alpha = 0` and :math:`c = 1`: the caller refuses it.
    """
    n_low = 0
    for g in range(n_run):
        n_low += not scales[step, g] > 0.0
    for g in range(n_run if n_low else 0):
        if not scales[step, g] > 0.0:
            scales[step, g] = 1.0
            bad_step[lanes[g]] = step if bad_step[lanes[g]] < 0 else bad_step[lanes[g]]
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


@njit(cache=True)
def _forward(startprob, transmat_t, emission_t, symbols, lengths, lanes, alpha, scales, work,
             bad_step, log_likelihood):
    """Scaled forward pass of the group ``lanes``: :math:`\\alpha_t` into ``alpha[t, :, g]``.

    ``alpha`` (T, K, W) and ``scales`` (T, W) hold each lane's steps only;
    :math:`q_t = \\alpha_{t-1} A` is summed in state order; ``work`` (4, K, W)
    is scratch. Writes ``bad_step`` (-1 or the first impossible step) and
    ``log_likelihood`` per sequence.
    """
    n_states, width = startprob.shape[0], lanes.shape[0]
    emission, inverse = work[0], work[1, 0]
    product, log_total = np.ones(width), np.zeros(width)
    for g in range(width):
        bad_step[lanes[g]] = -1
    for t in range(lengths[lanes[0]]):
        n_run = running(lengths, lanes, t)
        _gather_emissions(emission_t, symbols, lanes, n_run, t, emission)
        scales[t, :n_run] = 0.0
        for j in range(n_states):
            if t == 0:
                alpha[0, j, :n_run] = startprob[j]
            else:
                alpha[t, j, :n_run] = 0.0
                for i in range(n_states):
                    weight = transmat_t[j, i]
                    for g in range(n_run):
                        alpha[t, j, g] += alpha[t - 1, i, g] * weight
            for g in range(n_run):
                alpha[t, j, g] *= emission[j, g]
                scales[t, g] += alpha[t, j, g]
        _normalize_step(alpha, scales, t, n_run, lanes, inverse, product, log_total, bad_step)
    for g in range(width):
        log_likelihood[lanes[g]] = log_total[g] + np.log(product[g])


@njit(cache=True, error_model="numpy")
def _backward(transmat, emission_t, symbols, lengths, lanes, alpha, scales, work, posterior,
              counts):
    """Backward pass of the group ``lanes`` after :func:`_forward`.

    ``work`` (4, K, W) is scratch. With ``posterior`` (B, T, K) non-empty,
    :math:`\\gamma_t` is written there; otherwise it is added to the per-lane
    ``counts`` (K, 1 + K + V, W): column 0 gets :math:`\\gamma_0`, column
    ``1 + j`` of row ``i`` gets :math:`\\alpha_t(i) B_{j x_{t+1}}
    \\hat\\beta_{t+1}(j) / c_{t+1}` (times :math:`A_{ij}`, the expected number
    of ``i -> j`` transitions), column ``1 + K + v`` :math:`\\gamma_t` where
    :math:`x_t = v`.
    """
    n_states = transmat.shape[0]
    beta, weighted, emission, inverse = work[0], work[1], work[2], work[3, 0]
    counting = posterior.shape[0] == 0
    beta[:] = 1.0
    n_run = 0
    for t in range(lengths[lanes[0]] - 1, -1, -1):
        n_step = n_run  # lanes with a step t + 1 take a backward step; the others start
        n_run = running(lengths, lanes, t)
        if n_step:
            _gather_emissions(emission_t, symbols, lanes, n_step, t + 1, emission)
            for g in range(n_step):
                inverse[g] = 1.0 / scales[t + 1, g]
            for j in range(n_states):
                for g in range(n_step):
                    weighted[j, g] = emission[j, g] * beta[j, g] * inverse[g]
            for i in range(n_states):
                beta[i, :n_step] = 0.0
                for j in range(n_states):
                    weight = transmat[i, j]
                    for g in range(n_step):
                        beta[i, g] += weight * weighted[j, g]
            for i in range(n_states if counting else 0):
                for j in range(n_states):
                    for g in range(n_step):
                        counts[i, 1 + j, g] += alpha[t, i, g] * weighted[j, g]
        for g in range(n_run):
            inverse[g] = 0.0
        for k in range(n_states):
            for g in range(n_run):
                inverse[g] += alpha[t, k, g] * beta[k, g]
        for g in range(n_run):
            inverse[g] = 1.0 / inverse[g]
        if counting:
            for k in range(n_states):
                for g in range(n_run):
                    column = 1 + n_states + symbols[lanes[g], t]
                    counts[k, column, g] += alpha[t, k, g] * beta[k, g] * inverse[g]
        else:
            for k in range(n_states):
                for g in range(n_run):
                    posterior[lanes[g], t, k] = alpha[t, k, g] * beta[k, g] * inverse[g]
    for k in range(n_states if counting else 0):
        for g in range(lanes.shape[0]):
            counts[k, 0, g] += alpha[0, k, g] * beta[k, g] * inverse[g]


@njit(parallel=True, cache=True)
def forward_backward(startprob, transmat, transmat_t, emission_t, symbols, lengths, order,
                     width, posterior, counts, log_likelihood, bad_step):
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
    posterior : ndarray, shape (B, T, K) or (0, T, K)
        Out: :math:`P(z_t \\mid x)`, NaN past each end. Empty for the E-step.
    counts : ndarray, shape (C, K, 1 + K + V) or (C, K, 0)
        Out for the E-step: the expected counts of each of ``C`` chunks (the
        caller sums them; columns as in :func:`_backward`). Empty for smoothing,
        where ``C`` still sets the number of chunks (:func:`._lanes.chunk_count`).
    log_likelihood : ndarray, shape (B,)
        Out: :math:`\\log P(x) = \\sum_t \\log c_t`.
    bad_step : ndarray of int64, shape (B,)
        Out: the first step of probability 0, or -1.

    Notes
    -----
    Scratch per chunk: ``(T + 4) (K + 1) W`` floats, plus the per-lane counts.
    """
    n_seq, n_states = symbols.shape[0], startprob.shape[0]
    n_groups, n_chunks = -(-n_seq // width), counts.shape[0]
    for chunk in prange(n_chunks):
        longest = lengths[order[chunk * width]]
        alpha, scales = np.empty((longest, n_states, width)), np.empty((longest, width))
        work = np.empty((4, n_states, width))
        lane_counts = np.zeros((n_states, counts.shape[2], width))
        for group in range(chunk, n_groups, n_chunks):
            lanes = group_lanes(order, width, group)
            _forward(startprob, transmat_t, emission_t, symbols, lengths, lanes, alpha, scales,
                     work, bad_step, log_likelihood)
            _backward(transmat, emission_t, symbols, lengths, lanes, alpha, scales, work,
                      posterior, lane_counts)
            for g in range(lanes.shape[0] if posterior.shape[0] else 0):
                posterior[lanes[g], lengths[lanes[g]]:] = np.nan
        for k in range(n_states):
            for column in range(counts.shape[2]):
                counts[chunk, k, column] = lane_counts[k, column].sum()
