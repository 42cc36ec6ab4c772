"""The forward pass: log-likelihoods (in lanes) and the filter (beliefs and forecasts).

With the predicted state distribution :math:`q_t = P(z_t \\mid x_{<t})` (``q_0 =
\\pi``, ``q_t = \\alpha_{t-1} A``), the scale :math:`c_t = \\sum_k q_{tk} B_{k x_t} =
P(x_t \\mid x_{<t})` normalizes :math:`\\alpha_t = q_t \\odot B_{\\cdot x_t} / c_t =
P(z_t \\mid x_{\\le t})`, and :math:`\\log P(x) = \\sum_t \\log c_t` (Rabiner 1989).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from seqmodels.hmm.kernels._lanes import LANES, run_chunks

#: The likelihood-only pass leaves its forward vector unnormalized (no division
#: and no log per step) until the vector's mass falls below this; then that step
#: is redone from the normalized previous vector, which cannot underflow.
RESCALE_BELOW = 1e-100


# Hot loops index 2-D arrays directly: a row view made per step costs reference
# counting, measured at several times the arithmetic of a K=4 step.


@njit(cache=True, inline="always")
def _step(transmat_t, emission_t, symbol, previous, out):
    """``out = (previous @ A) * B[:, symbol]`` for one sequence and one step; returns its mass.

    Dot products against rows of ``transmat_t = A.T`` (contiguous): the fastest
    order measured for one sequence.
    """
    n_states = previous.shape[0]
    mass = 0.0
    for j in range(n_states):
        total = 0.0
        for i in range(n_states):
            total += previous[i] * transmat_t[j, i]
        value = total * emission_t[symbol, j]
        out[j] = value
        mass += value
    return mass


@njit(cache=True)
def _rescaled_step(transmat_t, emission_t, symbol, previous, out, previous_mass):
    """The step redone from ``previous`` normalized: returns (log of the scale taken, new mass).

    The new vector is normalized too when its own mass is small. A new mass of
    0 means the symbol is impossible there.
    """
    for i in range(previous.shape[0]):
        previous[i] /= previous_mass
    log_scale = np.log(previous_mass)
    mass = _step(transmat_t, emission_t, symbol, previous, out)
    if 0.0 < mass < RESCALE_BELOW:
        for j in range(out.shape[0]):
            out[j] /= mass
        log_scale += np.log(mass)
        mass = 1.0
    return log_scale, mass


@njit(cache=True)
def _likelihood_tail(transmat_t, emission_t, row, start, stop, alpha, mass, log_scale):
    """Continue one sequence's unnormalized forward vector over steps ``[start, stop)``.

    ``alpha`` (K,) has mass ``mass``; ``log_scale`` was taken out of it so far.
    Returns :math:`\\log P(x_0..x_{stop-1})`, ``-inf`` if it is 0.
    """
    if alpha.shape[0] <= 4:
        return _likelihood_tail_in_registers(transmat_t, emission_t, row, start, stop, alpha,
                                             mass, log_scale)
    spare = np.empty_like(alpha)
    for t in range(start, stop):
        new_mass = _step(transmat_t, emission_t, row[t], alpha, spare)
        if new_mass < RESCALE_BELOW:
            taken, new_mass = _rescaled_step(transmat_t, emission_t, row[t], alpha, spare, mass)
            log_scale += taken
            if new_mass == 0.0:
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
    a, e, vector = np.zeros((4, 4)), np.zeros((emission_t.shape[0], 4)), np.zeros(4)
    for j in range(alpha.shape[0]):
        vector[j] = alpha[j]
        for i in range(alpha.shape[0]):
            a[j, i] = transmat_t[j, i]
        for v in range(emission_t.shape[0]):
            e[v, j] = emission_t[v, j]
    a0, a1, a2, a3 = vector[0], vector[1], vector[2], vector[3]
    for t in range(start, stop):
        s = row[t]
        b0 = (a0 * a[0, 0] + a1 * a[0, 1] + a2 * a[0, 2] + a3 * a[0, 3]) * e[s, 0]
        b1 = (a0 * a[1, 0] + a1 * a[1, 1] + a2 * a[1, 2] + a3 * a[1, 3]) * e[s, 1]
        b2 = (a0 * a[2, 0] + a1 * a[2, 1] + a2 * a[2, 2] + a3 * a[2, 3]) * e[s, 2]
        b3 = (a0 * a[3, 0] + a1 * a[3, 1] + a2 * a[3, 2] + a3 * a[3, 3]) * e[s, 3]
        new_mass = b0 + b1 + b2 + b3
        if new_mass < RESCALE_BELOW:
            previous, out = np.array([a0, a1, a2, a3]), np.empty(4)
            taken, new_mass = _rescaled_step(a, e, s, previous, out, mass)
            log_scale += taken
            if new_mass == 0.0:
                return -np.inf
            b0, b1, b2, b3 = out[0], out[1], out[2], out[3]
        a0, a1, a2, a3 = b0, b1, b2, b3
        mass = new_mass
    return log_scale + np.log(mass)


@njit(cache=True)
def _likelihood_one(startprob, transmat_t, emission_t, row, length):
    """:math:`\\log P(x)` of one sequence, stepped alone."""
    alpha = startprob * emission_t[row[0]]
    mass = alpha.sum()
    if mass == 0.0:
        return -np.inf
    return _likelihood_tail(transmat_t, emission_t, row, 1, length, alpha, mass, 0.0)


@njit(cache=True)
def _lane_column(vectors, lane):
    """A copy of ``vectors[:, lane]`` (a loop: cheaper to compile than the strided slice)."""
    column = np.empty(vectors.shape[0])
    for k in range(vectors.shape[0]):
        column[k] = vectors[k, lane]
    return column


@njit(cache=True)
def _rescue_lane(transmat_t, emission_t, symbol, alpha, spare, lane, previous_mass):
    """:func:`_rescaled_step` for lane ``lane`` of ``(K, LANES)`` vectors.

    An impossible lane idles from here on a vector of ones, its log-scale at -inf.
    """
    previous, out = _lane_column(alpha, lane), np.empty(alpha.shape[0])
    taken, mass = _rescaled_step(transmat_t, emission_t, symbol, previous, out, previous_mass)
    if mass == 0.0:
        out.fill(1.0)
        taken, mass = -np.inf, float(out.shape[0])
    for k in range(alpha.shape[0]):
        alpha[k, lane], spare[k, lane] = previous[k], out[k]
    return taken, mass


@njit(cache=True)
def _likelihood_lanes(startprob, transmat_t, emission_t, symbols, lengths, lanes, out):
    """:math:`\\log P(x)` of the ``LANES`` sequences ``lanes``, stepped side by side.

    All lanes advance together up to the shortest one's length (the inner
    loops run over lanes and vectorize); each longer lane then finishes alone.
    Same arithmetic, in the same order, as :func:`_likelihood_one`.
    """
    n_states = startprob.shape[0]
    alpha, spare = np.empty((n_states, LANES)), np.empty((n_states, LANES))
    emission = np.empty((n_states, LANES))
    mass, new_mass, log_scale = np.zeros(LANES), np.empty(LANES), np.zeros(LANES)
    common = lengths[lanes].min()
    for k in range(n_states):
        for g in range(LANES):
            alpha[k, g] = startprob[k] * emission_t[symbols[lanes[g], 0], k]
            mass[g] += alpha[k, g]
    for g in range(LANES):
        if mass[g] == 0.0:
            mass[g], log_scale[g] = n_states, -np.inf
            for k in range(n_states):
                alpha[k, g] = 1.0
    for t in range(1, common):
        for k in range(n_states):
            row = emission[k]
            for g in range(LANES):
                row[g] = emission_t[symbols[lanes[g], t], k]
        new_mass.fill(0.0)
        for j in range(n_states):
            total = spare[j]
            total.fill(0.0)
            for i in range(n_states):
                weight, previous = transmat_t[j, i], alpha[i]
                for g in range(LANES):
                    total[g] += previous[g] * weight
            row = emission[j]
            for g in range(LANES):
                value = total[g] * row[g]
                total[g] = value
                new_mass[g] += value
        n_low = 0
        for g in range(LANES):
            n_low += new_mass[g] < RESCALE_BELOW
        if n_low:
            for g in range(LANES):
                if new_mass[g] < RESCALE_BELOW:
                    taken, new_mass[g] = _rescue_lane(transmat_t, emission_t,
                                                      symbols[lanes[g], t], alpha, spare, g,
                                                      mass[g])
                    log_scale[g] += taken
        alpha, spare = spare, alpha
        mass, new_mass = new_mass, mass
    for g in range(LANES):
        sequence = lanes[g]
        if lengths[sequence] == common or log_scale[g] == -np.inf:
            out[sequence] = log_scale[g] + np.log(mass[g])
        else:
            out[sequence] = _likelihood_tail(transmat_t, emission_t, symbols[sequence], common,
                                             lengths[sequence], _lane_column(alpha, g), mass[g],
                                             log_scale[g])


def log_likelihood(startprob, transmat_t, emission_t, symbols, lengths, order,
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
        The sequences from longest to shortest, so lanes have similar lengths.
    n_chunks : int
        Threads (:func:`._lanes.chunk_count`); chunk ``c`` takes every
        ``n_chunks``-th block and remaining sequence from ``c`` on.

    Notes
    -----
    Full blocks of ``LANES`` sequences run side by side; a remainder of at
    least half a block runs as one more block (its idle lanes repeat its last
    sequence), a smaller one sequence by sequence. Memory beyond the input and
    the (B,) output: ``O(K * LANES)`` per thread.
    """
    out = np.empty(symbols.shape[0])
    run_chunks(_likelihood_chunk, n_chunks, startprob, transmat_t, emission_t, symbols, lengths,
               order, out)
    return out


@njit(cache=True, nogil=True)
def _likelihood_chunk(chunk, n_chunks, startprob, transmat_t, emission_t, symbols, lengths,
                      order, out):
    """:func:`log_likelihood` for the blocks and remaining sequences of one chunk."""
    n_seq = symbols.shape[0]
    n_blocks = n_seq // LANES + (n_seq % LANES >= LANES // 2)
    lanes = np.empty(LANES, dtype=np.int64)
    for block in range(chunk, n_blocks, n_chunks):
        for g in range(LANES):
            lanes[g] = order[min(block * LANES + g, n_seq - 1)]
        _likelihood_lanes(startprob, transmat_t, emission_t, symbols, lengths, lanes, out)
    for index in range(min(n_blocks * LANES, n_seq) + chunk, n_seq, n_chunks):
        b = order[index]
        out[b] = _likelihood_one(startprob, transmat_t, emission_t, symbols[b], lengths[b])


@njit(cache=True, inline="always")
def _predict(transmat_t, source, row, out):
    """``out = source[row] @ A``: :math:`q_{t+1} = \\alpha_t A`, dot products with rows of A.T."""
    for j in range(transmat_t.shape[0]):
        total = 0.0
        for i in range(transmat_t.shape[0]):
            total += source[row, i] * transmat_t[j, i]
        out[j] = total


@njit(cache=True)
def _forward_one(startprob, transmat_t, emissionprob, emission_t, row, length, beliefs,
                 predictive):
    """Normalized forward pass of one sequence; returns (log P(x), first impossible step or -1).

    Writes :math:`\\alpha_t` to ``beliefs[t]`` and :math:`P(x_t \\mid x_{<t}) =
    q_t B` to ``predictive[t]``, each only when that output has rows. Stops at
    an impossible step.
    """
    n_states, n_symbols = emissionprob.shape
    store_beliefs, forecast = beliefs.shape[0] > 0, predictive.shape[0] > 0
    predicted, belief = startprob.copy(), np.empty((1, n_states))
    product, log_total = 1.0, 0.0  # the scales multiply up; one log per ~100 steps
    for t in range(length):
        if t:
            _predict(transmat_t, belief, 0, predicted)
        if forecast:
            for v in range(n_symbols):
                total = 0.0
                for k in range(n_states):
                    total += predicted[k] * emission_t[v, k]
                predictive[t, v] = total
        symbol = row[t]
        scale = 0.0
        for k in range(n_states):
            value = predicted[k] * emission_t[symbol, k]
            belief[0, k] = value
            scale += value
        if not scale > 0.0:
            return -np.inf, t
        inverse = 1.0 / scale
        for k in range(n_states):
            belief[0, k] *= inverse
            if store_beliefs:
                beliefs[t, k] = belief[0, k]
        product *= scale
        if product < RESCALE_BELOW:
            log_total += np.log(product)
            product = 1.0
    return log_total + np.log(product), -1


def filter_pass(startprob, transmat_t, emissionprob, emission_t, symbols, lengths, beliefs,
                predictive, log_likelihood, bad_step, n_chunks) -> None:
    """Causal filtering of every sequence, written into the given outputs.

    Parameters
    ----------
    startprob, transmat_t, emissionprob, emission_t : ndarray
        Shapes (K,), (K, K) (``transmat.T``), (K, V), (V, K) (``emissionprob.T``),
        all C-contiguous.
    symbols : ndarray of int64, shape (B, T)
    lengths : ndarray of int64, shape (B,)
    beliefs : ndarray, shape (B, T, K) or (0, T, K)
        Out: :math:`P(z_t \\mid x_{\\le t})`, NaN past each sequence's end;
        skipped when empty.
    predictive : ndarray, shape (B, T, V) or (0, T, V)
        Out: :math:`P(x_t \\mid x_{<t})`, NaN past the end; skipped when empty.
    log_likelihood : ndarray, shape (B,)
        Out.
    bad_step : ndarray of int64, shape (B,)
        Out: the first step of probability 0, or -1.
    n_chunks : int
        Threads; chunk ``c`` filters sequences ``c, c + n_chunks, ...``.
    """
    run_chunks(_filter_chunk, n_chunks, startprob, transmat_t, emissionprob, emission_t, symbols,
               lengths, beliefs, predictive, log_likelihood, bad_step)


@njit(cache=True, nogil=True)
def _filter_chunk(chunk, n_chunks, startprob, transmat_t, emissionprob, emission_t, symbols,
                  lengths, beliefs, predictive, log_likelihood, bad_step):
    """:func:`filter_pass` for the sequences of one chunk."""
    no_beliefs = np.empty((0, startprob.shape[0]))
    no_forecasts = np.empty((0, emissionprob.shape[1]))
    for b in range(chunk, symbols.shape[0], n_chunks):
        length = lengths[b]
        belief_rows = beliefs[b] if beliefs.shape[0] else no_beliefs
        forecast_rows = predictive[b] if predictive.shape[0] else no_forecasts
        log_likelihood[b], bad_step[b] = _forward_one(
            startprob, transmat_t, emissionprob, emission_t, symbols[b], length, belief_rows,
            forecast_rows)
        belief_rows[length:] = np.nan
        forecast_rows[length:] = np.nan
