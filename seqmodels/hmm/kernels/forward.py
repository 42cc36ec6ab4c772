"""The forward pass: log-likelihoods and the filter (beliefs and forecasts), in lanes.

With the predicted state distribution :math:`q_t = P(z_t \\mid x_{<t})` (``q_0 =
\\pi``, ``q_t = \\alpha_{t-1} A``), the scale :math:`c_t = \\sum_k q_{tk} B_{k x_t} =
P(x_t \\mid x_{<t})` normalizes :math:`\\alpha_t = q_t \\odot B_{\\cdot x_t} / c_t =
P(z_t \\mid x_{\\le t})`, and :math:`\\log P(x) = \\sum_t \\log c_t` (Rabiner 1989).

Both passes step groups of up to ``FORWARD_LANES`` sequences side by side
(longest first; a lane stops at its sequence's end) on the model padded with
zero states to a multiple of 4 (:mod:`._lanes`: ``lanes_matmul``,
``forward_step``, ``weigh``); they keep only (K', W) vectors per group, no
per-step scratch. A group of fewer than ``NARROW`` sequences runs sequence by
sequence (:func:`_likelihood_one`, :func:`_forward_one`) with the same sums in
the same order, so a sequence gets the same bits alone and in any batch.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from seqmodels.hmm.kernels._lanes import (
    NARROW,
    PRODUCT_FLOOR,
    forward_step,
    group_lanes,
    lane_emissions,
    lane_rows,
    lanes_matmul,
    padded,
    prefetch_for_writing,
    run_chunks,
    running_lanes,
    tiled,
    weigh,
)

#: The likelihood-only pass leaves its forward vector unnormalized (no division
#: and no log per step) until the vector's mass falls below this; then that step
#: is redone from the normalized previous vector, which cannot underflow.
RESCALE_BELOW = 1e-100

#: Steps ahead of the writes at which :func:`_write_step` asks for the outputs' cache lines.
PREFETCH_STEPS = 2


# Hot loops index 2-D arrays directly: a row view made per step costs reference
# counting, measured at several times the arithmetic of a K=4 step.


@njit(cache=True, inline="always")
def _step(transmat_t, emission_t, symbol, previous, out, g):
    """``out[:, g] = (previous[:, g] @ A) * B[:, symbol]``, one vector (a column); its mass.

    Dot products against rows of ``transmat_t = A.T`` (contiguous): the fastest
    order measured for one sequence. Sums in the order of
    :func:`._lanes.lanes_matmul` and :func:`._lanes.weigh`.
    """
    n_states = previous.shape[0]
    mass = 0.0
    for j in range(n_states):
        total = 0.0
        for i in range(n_states):
            total += previous[i, g] * transmat_t[j, i]
        value = total * emission_t[symbol, j]
        out[j, g] = value
        mass += value
    return mass


@njit(cache=True)
def _rescaled_step(transmat_t, emission_t, symbol, previous, out, g, previous_mass):
    """:func:`_step` redone from ``previous[:, g]`` normalized (in place).

    Returns (log of the scale taken, new mass). The new vector is normalized
    too when its own mass is small. A vector that falls to 0 (the symbol is
    impossible there) becomes ones, the log of its scale -inf: an impossible
    lane of a group idles on it.
    """
    n_states = previous.shape[0]
    for i in range(n_states):
        previous[i, g] /= previous_mass
    log_scale = np.log(previous_mass)
    mass = _step(transmat_t, emission_t, symbol, previous, out, g)
    if mass == 0.0:
        for j in range(n_states):
            out[j, g] = 1.0
        return -np.inf, float(n_states)
    if mass < RESCALE_BELOW:
        for j in range(n_states):
            out[j, g] /= mass
        log_scale += np.log(mass)
        mass = 1.0
    return log_scale, mass


@njit(cache=True)
def _likelihood_tail(transmat_t, emission_t, row, start, stop, alpha, mass, log_scale):
    """Continue one sequence's unnormalized forward vector over steps ``[start, stop)``.

    ``alpha`` (K, 1) has mass ``mass``; ``log_scale`` was taken out of it so far.
    Returns :math:`\\log P(x_0..x_{stop-1})`, ``-inf`` if it is 0.
    """
    if alpha.shape[0] <= 4:
        return _likelihood_tail_in_registers(transmat_t, emission_t, row, start, stop, alpha,
                                             mass, log_scale)
    spare = np.empty_like(alpha)
    for t in range(start, stop):
        new_mass = _step(transmat_t, emission_t, row[t], alpha, spare, 0)
        if new_mass < RESCALE_BELOW:
            taken, new_mass = _rescaled_step(transmat_t, emission_t, row[t], alpha, spare, 0,
                                             mass)
            log_scale += taken
            if log_scale == -np.inf:
                return -np.inf
        alpha, spare = spare, alpha
        mass = new_mass
    return log_scale + np.log(mass)


@njit(cache=True)
def _likelihood_tail_in_registers(transmat_t, emission_t, row, start, stop, alpha, mass,
                                  log_scale):
    """:func:`_likelihood_tail` for ``K <= 4``, the forward vector held in four registers.

    One sequence alone is bound by the latency of its chain of steps; keeping
    the vector out of memory takes a store and a load off each step (7 -> 4.5
    ns per step at K=4). The model is padded to 4 states with zeros: every sum
    only gains exact ``+ 0.0`` terms, so the result is the generic loop's (and
    the lanes'), bit for bit.
    """
    a, e = padded(transmat_t, 4, 4), padded(emission_t, emission_t.shape[0], 4)
    previous, out = padded(alpha, 4, 1), np.empty((4, 1))
    a0, a1, a2, a3 = previous[0, 0], previous[1, 0], previous[2, 0], previous[3, 0]
    for t in range(start, stop):
        s = row[t]
        b0 = (a0 * a[0, 0] + a1 * a[0, 1] + a2 * a[0, 2] + a3 * a[0, 3]) * e[s, 0]
        b1 = (a0 * a[1, 0] + a1 * a[1, 1] + a2 * a[1, 2] + a3 * a[1, 3]) * e[s, 1]
        b2 = (a0 * a[2, 0] + a1 * a[2, 1] + a2 * a[2, 2] + a3 * a[2, 3]) * e[s, 2]
        b3 = (a0 * a[3, 0] + a1 * a[3, 1] + a2 * a[3, 2] + a3 * a[3, 3]) * e[s, 3]
        new_mass = b0 + b1 + b2 + b3
        if new_mass < RESCALE_BELOW:
            previous[0, 0], previous[1, 0], previous[2, 0], previous[3, 0] = a0, a1, a2, a3
            taken, new_mass = _rescaled_step(a, e, s, previous, out, 0, mass)
            log_scale += taken
            if log_scale == -np.inf:
                return -np.inf
            b0, b1, b2, b3 = out[0, 0], out[1, 0], out[2, 0], out[3, 0]
        a0, a1, a2, a3 = b0, b1, b2, b3
        mass = new_mass
    return log_scale + np.log(mass)


@njit(cache=True)
def _likelihood_one(startprob, transmat_t, emission_t, row, length):
    """:math:`\\log P(x)` of one sequence, stepped alone."""
    alpha, mass = np.empty((startprob.shape[0], 1)), 0.0
    for k in range(startprob.shape[0]):
        alpha[k, 0] = startprob[k] * emission_t[row[0], k]
        mass += alpha[k, 0]
    if mass == 0.0:
        return -np.inf
    return _likelihood_tail(transmat_t, emission_t, row, 1, length, alpha, mass, 0.0)


@njit(cache=True)
def _likelihood_lanes(startprob, transmat_t, emission_t, symbols, lengths, lanes, scratch, out):
    """:math:`\\log P(x)` of the sequences ``lanes`` (longest first), stepped side by side.

    The model comes padded (:func:`._lanes.padded`, K' = ``tiled(K)`` states);
    ``scratch`` (3, K', W) holds the lanes' forward vectors, spare vectors and
    emission probabilities. Lane ``g`` steps while ``g`` is below the count of
    lanes with a step ``t``. Same sums, in the same order, as
    :func:`_likelihood_one` on the unpadded model, so the same bits.
    """
    alpha, spare, emission = scratch[0], scratch[1], scratch[2]
    n_states, width = startprob.shape[0], lanes.shape[0]
    mass, new_mass, log_scale = np.empty(width), np.empty(width), np.zeros(width)
    flat, rows = symbols.reshape(-1), np.empty(width, dtype=np.int64)
    lane_rows(symbols, lanes, rows)
    lane_emissions(emission_t, flat, rows, 0, width, emission)
    for k in range(n_states):
        for g in range(width):
            alpha[k, g] = startprob[k]
    weigh(alpha, emission, mass, width)
    for g in range(width):
        if mass[g] == 0.0:  # impossible first symbol: idle on ones, at -inf
            mass[g], log_scale[g] = n_states, -np.inf
            for k in range(n_states):
                alpha[k, g] = 1.0
    n_run = width
    for t in range(1, lengths[lanes[0]]):
        n_next = running_lanes(lengths, lanes, t, n_run)
        for g in range(n_next, n_run):  # lanes that ended at step t - 1
            out[lanes[g]] = log_scale[g] + np.log(mass[g])
        n_run = n_next
        lane_emissions(emission_t, flat, rows, t, n_run, emission)
        forward_step(transmat_t, alpha, emission, spare, new_mass, n_run)
        n_low = 0
        for g in range(n_run):
            n_low += new_mass[g] < RESCALE_BELOW
        for g in range(n_run if n_low else 0):
            if new_mass[g] < RESCALE_BELOW:
                taken, new_mass[g] = _rescaled_step(transmat_t, emission_t, flat[rows[g] + t],
                                                    alpha, spare, g, mass[g])
                log_scale[g] += taken
        alpha, spare = spare, alpha
        mass, new_mass = new_mass, mass
    for g in range(n_run):
        out[lanes[g]] = log_scale[g] + np.log(mass[g])


def log_likelihood(startprob, transmat_t, emission_t, symbols, lengths, order, width,
                   n_chunks) -> np.ndarray:
    """:math:`\\log P(x_0..x_{L_b-1})` per sequence, shape (B,); ``-inf`` for impossible ones.

    Parameters
    ----------
    startprob : ndarray, shape (K,)
    transmat_t : ndarray, shape (K, K)
        ``transmat.T``, C-contiguous.
    emission_t : ndarray, shape (V, K)
        ``emissionprob.T``, C-contiguous: the row of a symbol is contiguous.
    symbols : ndarray of int64, shape (B, T)
    lengths : ndarray of int64, shape (B,)
    order : ndarray of int64, shape (B,)
        The sequences from longest to shortest (:func:`._lanes.longest_first`).
    width : int
        Lanes per group (:func:`._lanes.lane_width`).
    n_chunks : int
        Threads (:func:`._lanes.chunk_count`).

    Notes
    -----
    Groups of ``width`` sequences run side by side; a group of fewer than
    ``NARROW`` runs sequence by sequence, with the same bits. Memory beyond the
    input and the (B,) output: ``O(K W)`` numbers per thread.
    """
    out = np.empty(symbols.shape[0])
    run_chunks(_likelihood_chunk, n_chunks, startprob, transmat_t, emission_t, symbols, lengths,
               order, width, out)
    return out


@njit(cache=True)
def _tiled_model(startprob, transmat_t, emission_t):
    """The model padded with zero states and symbols to multiples of ``TILE`` (the lanes' form).

    Returns ``startprob`` (K',), ``transmat_t`` (K', K'), ``emission_t`` (V', K').
    """
    n_states = tiled(startprob.shape[0])
    return (padded(startprob.reshape((1, -1)), 1, n_states)[0],
            padded(transmat_t, n_states, n_states),
            padded(emission_t, tiled(emission_t.shape[0]), n_states))


@njit(cache=True, nogil=True)
def _likelihood_chunk(chunk, n_chunks, startprob, transmat_t, emission_t, symbols, lengths,
                      order, width, out):
    """:func:`log_likelihood` for the lane groups of one chunk."""
    n_groups = -(-symbols.shape[0] // width)
    start, tiled_transmat_t, tiled_emission_t = _tiled_model(startprob, transmat_t, emission_t)
    scratch = np.empty((3, start.shape[0], width))
    for group in range(chunk, n_groups, n_chunks):
        lanes = group_lanes(order, width, group)
        if lanes.shape[0] >= NARROW:
            _likelihood_lanes(start, tiled_transmat_t, tiled_emission_t, symbols, lengths,
                              lanes, scratch, out)
            continue
        for b in lanes:
            out[b] = _likelihood_one(startprob, transmat_t, emission_t, symbols[b], lengths[b])


@njit(cache=True)
def _forward_one(startprob, transmat_t, emission_t, row, length, beliefs, predictive, b):
    """Normalized forward pass of sequence ``b``; returns (log P(x), first impossible step or -1).

    Writes :math:`\\alpha_t` to ``beliefs[b, t]`` and :math:`P(x_t \\mid x_{<t}) =
    q_t B` to ``predictive[b, t]``, each only when that output has rows. Stops at
    an impossible step. The sums of :func:`_filter_lanes`, in its order.
    """
    n_states, n_symbols = transmat_t.shape[0], predictive.shape[2]
    store_beliefs, forecast = beliefs.shape[0] > 0, predictive.shape[0] > 0
    predicted, belief = startprob.copy(), np.empty(n_states)
    product, log_total = 1.0, 0.0  # the scales multiply up; one log per ~100 steps
    for t in range(length):
        for j in range(n_states if t else 0):
            total = 0.0
            for i in range(n_states):
                total += belief[i] * transmat_t[j, i]
            predicted[j] = total
        for v in range(n_symbols if forecast else 0):
            total = 0.0
            for k in range(n_states):
                total += predicted[k] * emission_t[v, k]
            predictive[b, t, v] = total
        scale = 0.0
        for k in range(n_states):
            belief[k] = predicted[k] * emission_t[row[t], k]
            scale += belief[k]
        if not scale > 0.0:
            return -np.inf, t
        inverse = 1.0 / scale
        for k in range(n_states):
            belief[k] *= inverse
        for k in range(n_states if store_beliefs else 0):
            beliefs[b, t, k] = belief[k]
        product *= scale
        if product < PRODUCT_FLOOR:
            log_total += np.log(product)
            product = 1.0
    return log_total + np.log(product), -1


@njit(cache=True)
def _normalize_lanes(vectors, scale, t, n_run, product, log_total, bad):
    """Divide each lane's vector by its ``scale`` :math:`c_t`; multiply the scales up.

    A lane whose :math:`c_t` is 0 records ``t`` in ``bad`` (its first one) and
    goes on with a zero vector and :math:`c_t = 1`: the caller refuses it. The
    running ``product`` of a lane is moved into ``log_total`` below ``PRODUCT_FLOOR``.
    """
    n_bad = 0
    for g in range(n_run):
        n_bad += not scale[g] > 0.0
    for g in range(n_run if n_bad else 0):
        if not scale[g] > 0.0:
            scale[g] = 1.0
            bad[g] = t if bad[g] < 0 else bad[g]
    n_low = 0
    for g in range(n_run):
        product[g] *= scale[g]
        n_low += product[g] < PRODUCT_FLOOR
        scale[g] = 1.0 / scale[g]
    for k in range(vectors.shape[0]):
        for g in range(n_run):
            vectors[k, g] *= scale[g]
    for g in range(n_run if n_low else 0):
        if product[g] < PRODUCT_FLOOR:
            log_total[g] += np.log(product[g])
            product[g] = 1.0


@njit(cache=True)
def _filter_lanes(startprob, transmat_t, emission_t, symbols, lengths, lanes, scratch,
                  forecast, beliefs, predictive, log_likelihood, bad_step):
    """:func:`filter_pass` for the sequences ``lanes`` (longest first), stepped side by side.

    The model comes padded (K' = ``tiled(K)`` states, V' = ``tiled(V)``
    symbols; ``emission_t`` (V', K')); ``scratch`` (3, K', W) holds the lanes'
    beliefs, predicted states and emission probabilities, ``forecast`` (V', W)
    their forecasts. Each step is written straight into row ``lanes[g]`` of
    the outputs. Same sums, in the same order, as :func:`_forward_one`.
    """
    belief, predicted, emission = scratch[0], scratch[1], scratch[2]
    width, store_forecasts = lanes.shape[0], predictive.shape[0] > 0
    scale, product, log_total = np.empty(width), np.ones(width), np.zeros(width)
    bad = np.full(width, -1)
    flat, rows = symbols.reshape(-1), np.empty(width, dtype=np.int64)
    lane_rows(symbols, lanes, rows)
    for k in range(startprob.shape[0]):
        for g in range(width):
            predicted[k, g] = startprob[k]
    n_run = width
    for t in range(lengths[lanes[0]]):
        n_run = running_lanes(lengths, lanes, t, n_run)
        if t:
            lanes_matmul(transmat_t, belief, predicted, n_run)
        if store_forecasts:
            lanes_matmul(emission_t, predicted, forecast, n_run)
        lane_emissions(emission_t, flat, rows, t, n_run, emission)
        weigh(predicted, emission, scale, n_run)
        _normalize_lanes(predicted, scale, t, n_run, product, log_total, bad)
        belief, predicted = predicted, belief
        _write_step(belief, forecast, lanes, lengths, t, n_run, beliefs, predictive)
    for g in range(width):
        log_likelihood[lanes[g]] = log_total[g] + np.log(product[g])
        bad_step[lanes[g]] = bad[g]


@njit(cache=True)
def _write_step(belief, forecast, lanes, lengths, t, n_run, beliefs, predictive):
    """``beliefs[lanes[g], t] = belief[:K, g]``, ``predictive[lanes[g], t] = forecast[:V, g]``.

    Each lane writes its own row of the outputs, so a step touches a new cache
    line in each of ``2 W`` rows, more streams than the hardware prefetcher
    follows: the line of step ``t + PREFETCH_STEPS`` is requested now (6.9 ->
    5.3 ms for B=1000, T=500, K=4, V=8). Empty outputs are skipped.
    """
    n_steps, n_states, n_symbols = beliefs.shape[1], beliefs.shape[2], predictive.shape[2]
    store_beliefs, store_forecasts = beliefs.shape[0] > 0, predictive.shape[0] > 0
    for g in range(n_run):
        b = lanes[g]
        ahead = b * n_steps + t + PREFETCH_STEPS
        if t + PREFETCH_STEPS < lengths[b]:
            if store_beliefs:
                prefetch_for_writing(beliefs, ahead * n_states)
            if store_forecasts:
                prefetch_for_writing(predictive, ahead * n_symbols)
        for k in range(n_states if store_beliefs else 0):
            beliefs[b, t, k] = belief[k, g]
        for v in range(n_symbols if store_forecasts else 0):
            predictive[b, t, v] = forecast[v, g]


def filter_pass(startprob, transmat_t, emission_t, symbols, lengths, order, width, n_chunks,
                beliefs, predictive, log_likelihood, bad_step) -> None:
    """Causal filtering of every sequence, written into the given outputs.

    Parameters
    ----------
    startprob, transmat_t, emission_t : ndarray
        Shapes (K,), (K, K) (``transmat.T``), (V, K) (``emissionprob.T``),
        all C-contiguous.
    symbols : ndarray of int64, shape (B, T)
    lengths : ndarray of int64, shape (B,)
    order, width, n_chunks
        As in :func:`log_likelihood`.
    beliefs : ndarray, shape (B, T, K) or (0, T, K)
        Out: :math:`P(z_t \\mid x_{\\le t})`, NaN past each sequence's end;
        skipped when empty.
    predictive : ndarray, shape (B, T, V) or (0, T, V)
        Out: :math:`P(x_t \\mid x_{<t})`, NaN past the end; skipped when empty.
    log_likelihood : ndarray, shape (B,)
        Out.
    bad_step : ndarray of int64, shape (B,)
        Out: the first step of probability 0, or -1.

    Notes
    -----
    Memory beyond the outputs: ``O((K + V) W)`` numbers per thread.
    """
    run_chunks(_filter_chunk, n_chunks, startprob, transmat_t, emission_t, symbols, lengths,
               order, width, beliefs, predictive, log_likelihood, bad_step)


@njit(cache=True, nogil=True)
def _filter_chunk(chunk, n_chunks, startprob, transmat_t, emission_t, symbols, lengths, order,
                  width, beliefs, predictive, log_likelihood, bad_step):
    """:func:`filter_pass` for the lane groups of one chunk."""
    n_groups = -(-symbols.shape[0] // width)
    start, tiled_transmat_t, tiled_emission_t = _tiled_model(startprob, transmat_t, emission_t)
    scratch = np.empty((3, start.shape[0], width))
    forecast = np.empty((tiled_emission_t.shape[0], width))
    for group in range(chunk, n_groups, n_chunks):
        lanes = group_lanes(order, width, group)
        if lanes.shape[0] >= NARROW:
            _filter_lanes(start, tiled_transmat_t, tiled_emission_t, symbols, lengths, lanes,
                          scratch, forecast, beliefs, predictive, log_likelihood, bad_step)
        else:
            for b in lanes:
                log_likelihood[b], bad_step[b] = _forward_one(
                    startprob, transmat_t, emission_t, symbols[b], lengths[b], beliefs,
                    predictive, b)
        for b in lanes:
            _pad_with_nan(beliefs, b, lengths[b])
            _pad_with_nan(predictive, b, lengths[b])


@njit(cache=True)
def _pad_with_nan(out, b, length):
    """``out[b, length:] = nan`` when ``out`` has rows (loops: quicker to compile)."""
    for t in range(length, out.shape[1] if out.shape[0] else 0):
        for k in range(out.shape[2]):
            out[b, t, k] = np.nan
