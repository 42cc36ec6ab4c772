"""Batched inference passes on plain arrays: forward, backward, Viterbi.

Every pass loops over time only and is vectorized across sequences. Arrays are
time-major, ``(T, B, K)``, so each step reads and writes one contiguous block;
the emission likelihoods of all steps are gathered once up front
(:func:`emission_likelihoods`). Callers in :mod:`seqmodels.hmm.model` validate
the symbols and transpose results back to the package's ``(B, T, ...)`` layout.

The forward pass uses per-step scaling (Rabiner 1989): with the predicted state
distribution :math:`q_t = P(z_t \\mid x_{<t})` (``q_0 = \\pi``, ``q_t =
\\alpha_{t-1} A``) the scale :math:`c_t = \\sum_k q_{tk} B_{k x_t} = P(x_t \\mid
x_{<t})` normalizes :math:`\\alpha_t = q_t \\odot B_{\\cdot x_t} / c_t = P(z_t
\\mid x_{\\le t})`, and :math:`\\log P(x) = \\sum_t \\log c_t`. Nothing
underflows however long the sequence.
"""

from __future__ import annotations

import numpy as np

# The likelihood-only pass renormalizes once per block of this many steps. The
# mass of an unnormalized forward vector never grows (A is stochastic and
# emissions are <= 1), so the block's end holds its smallest value; a block
# whose mass fell below _TINY is redone step by step. 16 steps of V=8
# near-uniform symbols lose about 8**-16 ~ 1e-14: far from trouble.
_RENORM_EVERY = 16
_TINY = 1e-200
# Viterbi keeps the candidates of this many float64 (about 2 MB) before
# extracting their back-pointers in one vectorized pass.
_VITERBI_BLOCK_ELEMENTS = 2**18


def emission_likelihoods(emissionprob: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """All emission likelihoods in one gather.

    Parameters
    ----------
    emissionprob : numpy.ndarray, shape (K, V)
    batch : numpy.ndarray of int, shape (B, T)
        Valid symbols.

    Returns
    -------
    numpy.ndarray, shape (T, B, K)
        ``[t, b, k] = B[k, batch[b, t]]``, C-contiguous.
    """
    return np.take(np.ascontiguousarray(emissionprob.T), batch.T, axis=0)


def zero_probability_error(
    scales: np.ndarray, batch: np.ndarray, first_step: int = 0
) -> ValueError:
    """The error for the first (sequence, step) whose predictive probability is 0.

    ``scales`` is ``(L, B)`` for steps ``first_step ..`` with at least one zero
    (or NaN after a zero); ``batch`` (B, T) is the whole batch.
    """
    bad = ~(scales > 0)
    sequence = int(np.flatnonzero(bad.any(axis=0))[0])
    step = first_step + int(np.flatnonzero(bad[:, sequence])[0])
    return ValueError(
        f"sequence {sequence} has zero probability under the model: symbol "
        f"{int(batch[sequence, step])} at step {step} cannot be emitted by any state "
        "reachable there"
    )


def forward(
    startprob: np.ndarray, transmat: np.ndarray, likelihoods: np.ndarray, batch: np.ndarray,
    first_step: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scaled forward pass keeping every step.

    Parameters
    ----------
    startprob : numpy.ndarray, shape (K,) or (B, K)
        :math:`P(z_0)`, or per sequence the prediction for the first step.
    transmat : numpy.ndarray, shape (K, K)
    likelihoods : numpy.ndarray, shape (T, B, K)
        From :func:`emission_likelihoods`.
    batch : numpy.ndarray of int, shape (B, T_total)
        The symbols, only to name them in an error.
    first_step : int
        Index of ``likelihoods[0]`` within ``batch``, for the error message.

    Returns
    -------
    beliefs : numpy.ndarray, shape (T, B, K)
        :math:`\\alpha_t = P(z_t \\mid x_{\\le t})`.
    predicted : numpy.ndarray, shape (T, B, K)
        :math:`q_t = P(z_t \\mid x_{<t})`.
    scales : numpy.ndarray, shape (T, B)
        :math:`c_t = P(x_t \\mid x_{<t})`.

    Raises
    ------
    ValueError
        If some sequence has probability 0, naming the sequence and the step.
    """
    n_steps, n_seq, n_states = likelihoods.shape
    beliefs = np.empty_like(likelihoods)
    predicted = np.empty_like(likelihoods)
    scales = np.empty((n_steps, n_seq))
    ones = np.ones(n_states)
    predicted[0] = startprob
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(n_steps):
            if t:
                np.matmul(beliefs[t - 1], transmat, out=predicted[t])
            np.multiply(predicted[t], likelihoods[t], out=beliefs[t])
            np.matmul(beliefs[t], ones, out=scales[t])
            np.divide(beliefs[t], scales[t, :, None], out=beliefs[t])
    if not np.all(scales[-1] > 0):
        raise zero_probability_error(scales, batch, first_step)
    return beliefs, predicted, scales


def log_likelihood(
    startprob: np.ndarray, transmat: np.ndarray, emissionprob: np.ndarray, batch: np.ndarray
) -> np.ndarray:
    """:math:`\\log P(x_0..x_{T-1})` per sequence, shape (B,): the forward pass alone.

    Renormalizes only once per block of ``_RENORM_EVERY`` steps (two NumPy calls
    per step instead of four); a block whose mass drops below ``_TINY`` is redone
    with per-step scaling (:func:`forward`), so this never underflows either.
    Works in the ``(K, T, B)`` layout: with sequences on the inner axis,
    :math:`A^T \\alpha` is one (K, K) @ (K, B) product, faster than
    (B, K) @ (K, K) for small K. Raises like :func:`forward`.
    """
    likelihoods = np.take(emissionprob, batch.T, axis=1)  # (K, T, B)
    n_states, n_steps, n_seq = likelihoods.shape
    transmat_t = np.ascontiguousarray(transmat.T)
    ones = np.ones(n_states)
    alpha = np.empty((n_states, n_seq))
    carry = np.empty_like(alpha)
    prior_buffer = np.empty_like(alpha)
    mass = np.empty(n_seq)
    total = np.zeros(n_seq)
    prior = np.broadcast_to(startprob[:, None], alpha.shape)
    for start in range(0, n_steps, _RENORM_EVERY):
        stop = min(start + _RENORM_EVERY, n_steps)
        np.multiply(prior, likelihoods[:, start], out=alpha)
        for t in range(start + 1, stop):
            np.matmul(transmat_t, alpha, out=carry)
            np.multiply(carry, likelihoods[:, t], out=alpha)
        np.matmul(ones, alpha, out=mass)
        if mass.min() < _TINY:
            block = np.ascontiguousarray(likelihoods[:, start:stop].transpose(1, 2, 0))
            beliefs, _, scales = forward(prior.T, transmat, block, batch, first_step=start)
            alpha[:] = beliefs[-1].T
            total += np.log(scales).sum(axis=0)
        else:
            total += np.log(mass)
            alpha /= mass
        prior = np.matmul(transmat_t, alpha, out=prior_buffer)
    return total


def smooth(
    transmat: np.ndarray, likelihoods: np.ndarray, beliefs: np.ndarray, scales: np.ndarray
) -> np.ndarray:
    """Scaled backward pass: posteriors :math:`P(z_t \\mid x_0..x_{T-1})`, shape (T, B, K).

    With the forward pass's ``beliefs`` and ``scales`` (see :func:`forward`),
    :math:`\\hat\\beta_{T-1} = 1`, :math:`\\hat\\beta_t = A (B_{\\cdot x_{t+1}}
    \\odot \\hat\\beta_{t+1}) / c_{t+1}` and the posterior is
    :math:`\\alpha_t \\odot \\hat\\beta_t`, which sums to 1 by construction.
    """
    n_steps = likelihoods.shape[0]
    transmat_t = np.ascontiguousarray(transmat.T)
    posterior = np.empty_like(beliefs)
    posterior[-1] = beliefs[-1]
    beta = np.ones_like(beliefs[0])
    weighted = np.empty_like(beta)
    for t in range(n_steps - 2, -1, -1):
        np.multiply(likelihoods[t + 1], beta, out=weighted)
        np.matmul(weighted, transmat_t, out=beta)
        np.divide(beta, scales[t + 1, :, None], out=beta)
        np.multiply(beliefs[t], beta, out=posterior[t])
    return posterior


def viterbi(
    startprob: np.ndarray, transmat: np.ndarray, emissionprob: np.ndarray, batch: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Most probable hidden paths, by max-product in log space.

    :math:`\\delta_0 = \\log\\pi + \\log B_{\\cdot x_0}`, :math:`\\delta_t(j) =
    \\max_i [\\delta_{t-1}(i) + \\log A_{ij}] + \\log B_{j x_t}`, the same
    floating-point operations in the same order as hmmlearn's ``decode``, so
    paths and ties agree exactly. Ties go to the highest state index, as there.

    Parameters
    ----------
    startprob, transmat, emissionprob : numpy.ndarray
        Shapes (K,), (K, K), (K, V).
    batch : numpy.ndarray of int, shape (B, T)

    Returns
    -------
    paths : numpy.ndarray of int64, shape (B, T)
    log_prob : numpy.ndarray, shape (B,)
        :math:`\\log P(x, z^*)` of each path; ``-inf`` if every path has probability 0.
    """
    n_seq, n_steps = batch.shape
    with np.errstate(divide="ignore"):
        log_start, log_trans = np.log(startprob), np.log(transmat)
        log_lik = np.take(np.log(emissionprob), batch.T, axis=1)  # (K, T, B)
    score, pointers = _viterbi_forward(log_start, log_trans, log_lik)
    last = _last_argmax(score)
    positions = np.empty((n_steps, n_seq), dtype=pointers.dtype)
    positions[-1] = last * n_seq + np.arange(n_seq)
    flat_pointers = pointers.reshape(n_steps, -1)
    for t in range(n_steps - 1, 0, -1):
        np.take(flat_pointers[t], positions[t], out=positions[t - 1])
    paths = (positions // n_seq).T.astype(np.int64)
    return paths, score[last, np.arange(n_seq)]


def _viterbi_forward(
    log_start: np.ndarray, log_trans: np.ndarray, log_lik: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Max-product forward pass in the (K, B) layout, keeping back-pointers.

    Returns the last step's scores :math:`\\delta_{T-1}`, shape (K, B), and
    ``pointers`` (T, K, B) int32: ``pointers[t, j, b] = i * B + b`` for the
    best predecessor ``i`` of state ``j`` (row 0 unused), a flat index into a
    (K, B) step so the backtrack is one gather per step.

    Sequences sit on the innermost axis so every NumPy call runs B-long loops.
    The candidates :math:`\\delta_{t-1}(i) + \\log A_{ij}` of a block of steps
    stay in a buffer, and their argmax is found for the whole block at once.
    """
    n_states, n_steps, n_seq = log_lik.shape
    pointers = np.empty((n_steps, n_states, n_seq), dtype=np.int32)
    block = max(1, _VITERBI_BLOCK_ELEMENTS // (n_states * n_states * n_seq))
    candidates = np.empty((block, n_states, n_states, n_seq))
    best = np.empty((block, n_states, n_seq))
    log_trans_b = log_trans[:, :, None]
    score = log_start[:, None] + log_lik[:, 0]
    for start in range(1, n_steps, block):
        stop = min(start + block, n_steps)
        for step, t in enumerate(range(start, stop)):
            np.add(score[:, None, :], log_trans_b, out=candidates[step])
            np.maximum.reduce(candidates[step], axis=0, out=best[step])
            np.add(best[step], log_lik[:, t], out=score)
        size = stop - start
        _store_pointers(candidates[:size], best[:size], pointers[start:stop])
    return score, pointers


def _store_pointers(candidates: np.ndarray, best: np.ndarray, out: np.ndarray) -> None:
    """Flat back-pointers (L, K, B) from candidates (L, K, K, B) and their maxima (L, K, B).

    The predecessor is the highest ``i`` whose candidate equals the maximum
    (hmmlearn's tie rule): weights ``i * B + 1`` on the hits, the largest wins,
    then ``b - 1`` is added. No candidate is NaN, so some ``i`` always hits.
    """
    n_states, n_seq = candidates.shape[1], candidates.shape[-1]
    hits = np.equal(candidates, best[:, None])
    weights = (np.arange(n_states, dtype=np.int32) * n_seq + 1)[:, None, None]
    np.maximum.reduce(hits * weights, axis=1, out=out)
    out += np.arange(-1, n_seq - 1, dtype=np.int32)


def _last_argmax(values: np.ndarray) -> np.ndarray:
    """Column-wise argmax of (K, B) ``values``, ties to the highest index (hmmlearn's rule)."""
    n_states = values.shape[0]
    return n_states - 1 - np.argmax(values[::-1], axis=0)
