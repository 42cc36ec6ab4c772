"""The one sampler of the code base: hidden paths and symbols of a categorical HMM.

:class:`~seqmodels.hmm.HMM` and :class:`~seqmodels.dice.DiceHMM` both draw
through :func:`sample_chain`.
"""

from __future__ import annotations

import numpy as np

from seqmodels._checks import Seed, as_generator

# Sampling a chain is a loop over time. With fewer sequences than this, each is
# cut into chunks so a step still touches about this many lanes and NumPy's
# per-call overhead is amortized (see ``_sample_states``).
_MIN_LANES = 1024


def _cumulative(probs: np.ndarray) -> np.ndarray:
    """Row-wise CDF, exactly 1 from each row's last positive entry on.

    Forcing the tail to 1 keeps a rounding shortfall (a fair D6's CDF ends at
    ``1 - 2**-53``) from drawing an index past the last positive probability,
    such as face 8 on a D6; with uniforms in [0, 1) the draw
    ``(u >= cdf).sum()`` then only lands on positive entries.
    """
    cdf = np.cumsum(probs, axis=-1)
    positive = probs > 0
    positive_from_here = np.cumsum(positive[..., ::-1], axis=-1)[..., ::-1]
    cdf[positive_from_here - positive == 0] = 1.0
    return cdf


def _bucket_count(n_rows: int, n_draws: int) -> int:
    """Buckets per row of a lookup table: a power of two from 16 to 2**16.

    About one bucket per eight draws, so building the table never costs more
    than the draws it serves, and at most 2**22 entries in all.
    """
    by_draws = int(n_draws // 8).bit_length()
    by_memory = 22 - (max(n_rows, 1) - 1).bit_length()
    return 1 << max(4, min(16, by_draws, by_memory))


def _lookup_table(cdf: np.ndarray, n_draws: int) -> np.ndarray:
    """Exact bucketed inverse CDF: ``table[k, m]`` is the draw for every ``u`` in bucket ``m``.

    Bucket ``m`` of ``M`` holds ``u`` in ``[m / M, (m + 1) / M)``; ``floor(u * M)``
    is exact because ``M`` is a power of two. The draw ``#{j : cdf[k, j] <= u}``
    is constant on the bucket exactly when no ``cdf[k, j]`` lies strictly inside
    it; buckets where a CDF step falls are marked ``-1`` and drawn by search.

    Parameters
    ----------
    cdf : numpy.ndarray, shape (K, n)
    n_draws : int
        How many draws the table will serve; it sets ``M`` (``_bucket_count``).

    Returns
    -------
    numpy.ndarray of int64, shape (K, M)
    """
    n_buckets = _bucket_count(cdf.shape[0], n_draws)
    edges = np.arange(n_buckets + 1) / n_buckets
    table = np.empty((cdf.shape[0], n_buckets), dtype=np.int64)
    for k, row in enumerate(cdf):
        at_start = np.searchsorted(row, edges[:-1], side="right")
        before_end = np.searchsorted(row, edges[1:], side="left")
        table[k] = np.where(at_start == before_end, at_start, -1)
    return table


def _draw_categorical_rows(cdf: np.ndarray, rows: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws: index ``j`` with probability ``cdf``-row ``rows[i]``'s mass at ``j``.

    Parameters
    ----------
    cdf : numpy.ndarray, shape (K, n)
        Row-wise cumulative probabilities, 1 from the last positive entry on.
    rows : numpy.ndarray of int, any shape S
        Which row each draw uses.
    uniforms : numpy.ndarray, shape S
        Uniforms in [0, 1).

    Returns
    -------
    numpy.ndarray of int64, shape S
        ``#{j : cdf[rows, j] <= u}``: zero-probability entries are never drawn.
        Most draws are one table lookup (see ``_lookup_table``); the few whose
        bucket holds a CDF step are searched exactly.
    """
    table = _lookup_table(cdf, rows.size)
    out = table.ravel()[rows * table.shape[1] + (uniforms * table.shape[1]).astype(np.int64)]
    missed = np.flatnonzero(out < 0)
    if missed.size:
        flat = out.reshape(-1)
        flat[missed] = _count_at_or_below(cdf, rows.reshape(-1)[missed],
                                          uniforms.reshape(-1)[missed])
    return out


def _count_at_or_below(cdf: np.ndarray, rows: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """The inverse-CDF draw by comparison, ``#{j : cdf[rows, j] <= u}``, for a few draws."""
    return (uniforms[..., None] >= cdf[rows]).sum(axis=-1)


def _chunk_count(n_sequences: int, n_transitions: int) -> int:
    """How many chunks to cut each sequence's transitions into (see ``_sample_states``)."""
    if n_sequences >= _MIN_LANES // 4:
        return 1
    return min(n_transitions, -(-_MIN_LANES // n_sequences))


def _sample_states(
    startprob: np.ndarray, transmat: np.ndarray, n_sequences: int, length: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Hidden paths (B, T): a loop over time, vectorized across sequences.

    With few sequences a plain loop over ``T`` steps would spend its time in
    NumPy call overhead. Instead each sequence's ``T - 1`` transitions are cut
    into ``C`` chunks of ``L`` steps and every chunk is run from *every* start
    state at once with the same uniforms (a coupling: the path is a function of
    the start state and the uniforms). A short loop over chunks then picks, for
    each chunk, the run that starts where the previous chunk ended. The result
    has exactly the Markov chain's law; the loop has ``L + C`` steps, not ``T``.
    Arrays are time-major so each step reads and writes contiguous rows.
    """
    n_states = transmat.shape[0]
    first = _draw_categorical_rows(
        _cumulative(startprob)[None, :], np.zeros(n_sequences, dtype=np.int64),
        rng.random(n_sequences),
    )
    states = np.empty((length, n_sequences), dtype=np.int64)
    states[0] = first
    n_transitions = length - 1
    if n_transitions == 0:
        return states.T.copy()
    n_chunks = _chunk_count(n_sequences, n_transitions)
    chunk_len = -(-n_transitions // n_chunks)
    # Lanes are (start state, sequence * chunk); ``start`` picks a lane's run for a sequence.
    n_lanes = n_sequences * n_chunks
    if n_chunks == 1:  # one run per sequence, from its real start
        current, start = first[None, :].copy(), np.zeros(n_sequences, dtype=np.int64)
    else:  # every chunk from every start state, coupled by shared uniforms
        current, start = np.repeat(np.arange(n_states)[:, None], n_lanes, axis=1), first
    uniforms = rng.random((chunk_len, n_lanes))
    runs = _run_lanes(_cumulative(transmat), current, uniforms)

    lanes = np.arange(n_sequences) * n_chunks
    filled = 1
    for chunk in range(n_chunks):
        path = runs[:, start, lanes + chunk]
        take = min(chunk_len, length - filled)
        states[filled: filled + take] = path[:take]
        filled += take
        start = path[-1]
    return states.T.copy()


def _run_lanes(cdf: np.ndarray, current: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Run many chains side by side with shared per-lane uniforms.

    Parameters
    ----------
    cdf : numpy.ndarray, shape (K, K)
        Row-wise cumulative transition probabilities, last column 1.
    current : numpy.ndarray of int, shape (S, W)
        Start state of every run; runs in the same column share uniforms.
    uniforms : numpy.ndarray, shape (L, W)

    Returns
    -------
    numpy.ndarray of int64, shape (L, S, W)
        The state after each of the ``L`` steps.
    """
    start = current
    n_steps = uniforms.shape[0]
    runs = np.empty((n_steps, *current.shape), dtype=np.int64)
    table = _lookup_table(cdf, uniforms.size * current.shape[0])
    flat_table = table.ravel()
    buckets = (uniforms * table.shape[1]).astype(np.int64)
    index = np.empty(current.shape, dtype=np.int64)
    for step in range(n_steps):
        # One table lookup per run; the rare run whose bucket holds a CDF step
        # (probability about K / M) is drawn by comparison.
        np.multiply(current, table.shape[1], out=index)
        index += buckets[step]
        current = np.take(flat_table, index, out=runs[step])
        if current.min() < 0:
            missed = np.nonzero(current < 0)
            previous = runs[step - 1][missed] if step else start[missed]
            current[missed] = _count_at_or_below(cdf, previous, uniforms[step][missed[-1]])
    return runs


def sampling_bytes(n_sequences: int, length: int, n_states: int) -> float:
    """An upper bound on the memory :func:`draw_chain` takes for ``B x T`` steps.

    States and symbols (int64), their uniforms (float64), the transposed copy
    of the states and, on the chunked path, one run per start state: at most
    ``(5 + K)`` eight-byte values per step.
    """
    return 8.0 * n_sequences * length * (5 + n_states)


def draw_chain(
    startprob: np.ndarray, transmat: np.ndarray, emissionprob: np.ndarray,
    lengths: np.ndarray, seed: Seed = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Hidden states and symbols of a categorical HMM, for validated parameters.

    Parameters
    ----------
    startprob, transmat, emissionprob : numpy.ndarray
        Shapes (K,), (K, K), (K, V); validated (see :class:`~seqmodels.hmm.HMM`).
    lengths : numpy.ndarray of int, shape (B,)
        Steps per sequence, all ``>= 1``.
    seed : int, numpy.random.Generator or None
        Passed once to :func:`numpy.random.default_rng`.

    Returns
    -------
    states, symbols : numpy.ndarray of int64, shape (B, T)
        ``T = lengths.max()``; -1 past each sequence's end. Sequences of
        different lengths are drawn at length ``T`` and cut: the law of each
        one's first ``L`` steps does not depend on the steps after them.

    Notes
    -----
    All uniforms are drawn up front; emissions are drawn after the paths in one
    vectorized pass. Draws are exact inverse-CDF draws, most of them a single
    lookup in a bucketed table (``_lookup_table``). Cost is ``O(B T)`` with
    ``O(T / C + C)`` Python steps, so ``B=1, T=10**6`` and ``B=10**4, T=100``
    are both quick.
    """
    rng = as_generator(seed)
    n_sequences, length = len(lengths), int(lengths.max())
    states = _sample_states(startprob, transmat, n_sequences, length, rng)
    symbols = _draw_categorical_rows(
        _cumulative(emissionprob), states, rng.random((n_sequences, length))
    )
    if lengths.min() < length:
        past_end = np.arange(length) >= lengths[:, None]
        states[past_end] = symbols[past_end] = -1
    return states, symbols


def sample_chain(
    startprob, transmat, emissionprob, n_sequences: int, length, seed: Seed = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample hidden states and symbols of a categorical HMM: the one sampler.

    ``HMM(startprob, transmat, emissionprob).sample(n_sequences, length, seed)``:
    the parameters are validated as :class:`~seqmodels.hmm.HMM` validates them
    (``ValueError`` naming the argument and row), then drawn by
    :func:`draw_chain`. See :meth:`HMM.sample` for the sizes, the seed and the
    returned ``(states, symbols)``, each ``(B, T)`` int64.
    """
    from seqmodels.hmm.model import HMM  # deferred: model imports this module

    return HMM(startprob, transmat, emissionprob).sample(n_sequences, length, seed)
