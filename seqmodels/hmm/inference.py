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
# Viterbi keeps the candidates of this many float64 (1 MB, cache-sized) before
# extracting their back-pointers in one vectorized pass.
_VITERBI_BLOCK_ELEMENTS = 2**17
# The backtrack makes its per-step views for this many steps at a time.
_BACKTRACK_CHUNK = 4096


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
    \\max_i [\\delta_{t-1}(i) + \\log A_{ij}] + \\log B_{j x_t}`: the same
    floating-point operations in the same order as hmmlearn's ``decode``, so
    the paths agree exactly, ties included. Its tie rules, checked on models
    built to tie: the last step takes the lowest of the tied states, every
    back-pointer the highest.

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
    n_seq = batch.shape[0]
    with np.errstate(divide="ignore"):
        logs = np.log(startprob), np.log(transmat), np.log(emissionprob)
    score, pointers = _viterbi_forward(*logs, batch)
    last = np.argmax(score, axis=0)  # the lowest tied state, as in hmmlearn
    positions = _backtrack(pointers, last * n_seq + np.arange(n_seq))
    paths = (positions // n_seq).T.astype(np.int64, order="C")
    return paths, score[last, np.arange(n_seq)]


def _viterbi_forward(
    log_start: np.ndarray, log_trans: np.ndarray, log_emission: np.ndarray, batch: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Max-product forward pass in the (K, B) layout, keeping back-pointers.

    Returns the last step's scores :math:`\\delta_{T-1}`, shape (K, B), and
    ``pointers`` (T, K, B): ``pointers[t, j, b] = i * B + b`` for the best
    predecessor ``i`` of state ``j`` (row 0 unused), a position in a flattened
    (K, B) step, so the backtrack is one gather per step. Their dtype is the
    smallest unsigned integer that holds ``K * B - 1``.

    Sequences sit on the innermost axis, so every NumPy call runs B-long loops.
    Work proceeds in cache-sized blocks of steps: the log-likelihoods of a
    block are gathered at once, its candidates :math:`\\delta_{t-1}(i) + \\log
    A_{ij}` are kept, and their back-pointers extracted in one vectorized pass.
    Buffers are reused, so memory is the pointers plus a few blocks.
    """
    n_seq, n_steps = batch.shape
    n_states = len(log_start)
    pointers = np.empty(
        (n_steps, n_states, n_seq), dtype=np.min_scalar_type(n_states * n_seq - 1)
    )
    block = max(1, _VITERBI_BLOCK_ELEMENTS // (n_states * n_states * n_seq))
    candidates = np.empty((block, n_states, n_states, n_seq))
    best = np.empty((block, n_states, n_seq))
    log_lik = np.empty((n_states, block, n_seq))
    workspace = _PointerWorkspace(candidates.shape)
    # Materialized over sequences: a sum with one broadcast operand runs faster.
    log_trans_b = np.repeat(log_trans[:, :, None], n_seq, axis=2)
    # C order matters: the fancy-indexed sum alone would come out Fortran-ordered,
    # and every step would then read and write it with strides.
    score = np.empty((n_states, n_seq))
    np.add(log_start[:, None], log_emission[:, batch[:, 0]], out=score)
    score_b = score[:, None, :]  # a view: the loop updates score in place
    # Per-step views made once: at small B the loop is bound by call overhead.
    step_views = list(zip(candidates, best, log_lik.transpose(1, 0, 2), strict=True))
    add, reduce_max = np.add, np.maximum.reduce
    for start in range(1, n_steps, block):
        size = min(block, n_steps - start)
        np.take(log_emission, batch[:, start:start + size].T, axis=1, out=log_lik[:, :size],
                mode="clip")
        for cand, top, lik in step_views[:size]:
            add(score_b, log_trans_b, cand)
            reduce_max(cand, 0, None, top)
            add(top, lik, score)
        workspace.store(candidates[:size], best[:size], pointers[start:start + size])
    return score, pointers


class _PointerWorkspace:
    """Reusable buffers turning (L, K, K, B) candidates into (L, K, B) back-pointers.

    The predecessor is the highest ``i`` whose candidate equals the maximum
    (hmmlearn's tie rule): the largest of ``i * hit_i``, in the smallest
    unsigned type holding ``K - 1`` (uint8 up to 256 states). Some ``i``
    always hits, as candidates are finite or ``-inf``, never NaN.
    """

    def __init__(self, shape: tuple[int, int, int, int]) -> None:
        n_states, n_seq = shape[1], shape[3]
        code_type = np.min_scalar_type(n_states - 1)
        self.hits = np.empty(shape, dtype=code_type)  # 0/1, then weighted in place
        self.codes = np.empty((shape[0], n_states, n_seq), dtype=code_type)
        self.weights = np.arange(n_states, dtype=code_type)[:, None, None]
        self.sequences = np.arange(n_seq)

    def store(self, candidates: np.ndarray, best: np.ndarray, out: np.ndarray) -> None:
        """Write ``out[l, j, b] = i * B + b``, ``i`` the best predecessor of ``j``."""
        size, n_seq = len(candidates), candidates.shape[-1]
        hits, codes = self.hits[:size], self.codes[:size]
        np.equal(candidates, best[:, None], out=hits)
        np.multiply(hits, self.weights, out=hits)
        np.maximum.reduce(hits, axis=1, out=codes)
        np.multiply(codes, n_seq, out=out, dtype=out.dtype)
        np.add(out, self.sequences, out=out, casting="unsafe")  # sums stay below K * B


def _backtrack(pointers: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Positions ``z_t * B + b`` of the best paths, shape (T, B), from their last step's."""
    n_steps = len(pointers)
    positions = np.empty((n_steps, len(last)), dtype=pointers.dtype)
    positions[-1] = last
    flat = pointers.reshape(n_steps, -1)
    # Per-step views made once per chunk (bounded memory on long sequences) and
    # the method's positional form: at small B the loop is call-bound.
    for start in range(n_steps - 1, 0, -_BACKTRACK_CHUNK):
        stop = max(start - _BACKTRACK_CHUNK, 0)
        rows, steps = list(flat[stop:start + 1]), list(positions[stop:start + 1])
        for t in range(start - stop, 0, -1):
            rows[t].take(steps[t], None, steps[t - 1], "clip")
    return positions

