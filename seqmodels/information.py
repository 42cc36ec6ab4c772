"""Exact information measures of a process, and its entropy rate with an error bar.

For a process with symbols :math:`x_0, x_1, \\ldots` (any preset of
:mod:`seqmodels.processes`, a :class:`~seqmodels.dice.DiceHMM`, an
:class:`~seqmodels.hmm.HMM`), all in nats:

- block entropy :math:`H(L) = -\\sum_{w \\in V^L} P(w) \\log P(w)` over the words
  :math:`w = x_0 .. x_{L-1}`, by exact enumeration (:func:`block_entropy`);
- myopic entropy :math:`h(L) = H(L) - H(L-1) = H(x_{L-1} \\mid x_0 .. x_{L-2})`,
  the expected log loss of the Bayes-optimal forecast at step ``t = L - 1``
  (:func:`myopic_entropy`); for a stationary process it falls to the entropy
  rate :math:`h_\\mu`;
- excess entropy :math:`E = \\sum_{L \\ge 1} (h(L) - h_\\mu)`, estimated from the
  words up to a length (:func:`excess_entropy`);
- the entropy rate :math:`h_\\mu` by Monte Carlo with its standard error
  (:func:`entropy_rate`), and :math:`h(t + 1)` at every step of long sequences
  the same way (:func:`sampled_myopic_entropy`).

Divide by :math:`\\log 2` for bits. Words are enumerated from the model's own
start distribution: the processes start stationary, so theirs are the
stationary block entropies [CF03]_; the dice presets start uniform, so theirs
are the entropies of the first ``L`` throws.

.. [CF03] J. P. Crutchfield and D. P. Feldman, "Regularities unseen, randomness
   observed: Levels of entropy convergence", Chaos 13, 25 (2003).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from seqmodels._checks import (
    check_count,
    check_memory,
    memory_capacity,
    power_text,
    size_power,
)
from seqmodels.hmm import HMM, Seed
from seqmodels.processes import as_hmm

#: Bytes per word of a level of the word tree, per state and in all: the forward
#: variables and their filtered copy (2 K floats), the index and its copy, the
#: probability and the mask (4 more), a bound on what a level holds at its peak.
_BYTES_PER_WORD_STATE = 16
_BYTES_PER_WORD = 32


class RateEstimate(NamedTuple):
    """A Monte Carlo estimate: ``value`` and its ``standard_error`` (nats per symbol)."""

    value: float
    standard_error: float


#: Most distinct state sets :func:`_word_count` follows before it takes ``V**L`` instead.
_MAX_STATE_SETS = 4096


def _word_count(hmm: HMM, length: int, most: float) -> float:
    """How many words of ``length`` symbols have positive probability, or some number
    above ``most`` as soon as the count passes it; from the supports alone.

    A word's probability is positive when some state path can emit it, so what
    matters about a prefix is the set of states it can be in next: words are
    counted per set (the subset construction of the automaton of positive
    entries), at a cost of (sets x V x K) per symbol, never a pass over the words.
    Counts never fall as words grow (every word has a continuation), and once a
    level repeats the one before, all later levels do. With more than
    :data:`_MAX_STATE_SETS` sets the bound ``V**length`` is returned.
    """
    n_states = hmm.n_states
    successors = [_bits(hmm.transmat[k] > 0) for k in range(n_states)]
    emitters = [_bits(column > 0) for column in hmm.emissionprob.T]
    sets = {_bits(hmm.startprob > 0): 1.0}  # possible next states -> number of prefixes
    for _ in range(length):
        following: dict[int, float] = {}
        for states, count in sets.items():
            for emitter in emitters:
                now = states & emitter
                if now:
                    after = 0
                    for k in range(n_states):
                        after |= successors[k] if now >> k & 1 else 0
                    following[after] = following.get(after, 0.0) + count
        if following == sets:
            break
        sets = following
        if sum(sets.values()) > most:
            break
        if len(sets) > _MAX_STATE_SETS:
            return size_power(hmm.n_symbols, length)
    return sum(sets.values())


def _bits(members: np.ndarray) -> int:
    """A set of states as an int: bit ``k`` set when ``members[k]``."""
    return sum(1 << int(k) for k in np.flatnonzero(members))


def _check_words_fit(hmm: HMM, max_length: int, argument: str, output_bytes: float,
                     output: str) -> None:
    """Refuse, before any level of the word tree is built, a ``max_length`` whose result
    (``output_bytes``, described by ``output``) or longest level (the largest: counts
    never fall) cannot fit in memory.

    Raises
    ------
    ValueError
        Naming ``argument`` (``"max_length=..."``) and what does not fit.
    """
    check_memory(output_bytes, f"{argument}: {output}")
    per_word = _BYTES_PER_WORD_STATE * hmm.n_states + _BYTES_PER_WORD
    n_words = _word_count(hmm, max_length, memory_capacity(per_word))
    check_memory(output_bytes + n_words * per_word,
                 f"{argument}: at least {n_words:.3g} words of length {max_length} x "
                 f"{hmm.n_states} states")


def _word_levels(hmm: HMM, max_length: int) -> Iterator[tuple[np.ndarray, ...]]:
    """The forward pass over the word tree, one level (word length) at a time.

    Level ``L`` holds every word of length ``L`` with positive probability:
    ``index`` (n,) its number in base ``V`` (first symbol most significant),
    ``alpha`` (n, K) the forward variables :math:`P(x_0..x_{L-1}, z_{L-1} = k)`,
    and ``probability`` (n,) their sums. A word of probability 0 has only
    children of probability 0, so it is dropped with its subtree: sparse
    processes (Golden Mean, RRXOR) reach longer words.

    The caller checks first that the longest level fits (:func:`_check_words_fit`).
    """
    n_states, n_symbols = hmm.n_states, hmm.n_symbols
    emission = hmm.emissionprob.T  # (V, K)
    index = np.zeros(1, dtype=np.int64)
    predicted = hmm.startprob[None, :]  # P(words so far, z at the next step)
    for length in range(1, max_length + 1):
        n_words = predicted.shape[0] * n_symbols
        alpha = (predicted[:, None, :] * emission[None, :, :]).reshape(n_words, n_states)
        index = (index[:, None] * n_symbols + np.arange(n_symbols)).reshape(-1)
        probability = alpha.sum(axis=1)
        alive = probability > 0
        if not alive.all():
            index, alpha, probability = index[alive], alpha[alive], probability[alive]
        yield index, alpha, probability
        if length < max_length:
            predicted = alpha @ hmm.transmat


def word_probabilities(model, length: int) -> np.ndarray:
    """:math:`P(x_0 .. x_{L-1} = w)` for every word ``w`` of ``length`` symbols.

    Parameters
    ----------
    model : HMM, DiceHMM or LabelledProcess
    length : int
        ``L >= 1``.

    Returns
    -------
    numpy.ndarray, shape (V**L,)
        Entry :math:`\\sum_t w_t V^{L-1-t}` (the word read as a base-``V``
        number, first symbol most significant: ``numpy.ravel_multi_index``
        order) holds its probability; the entries sum to 1.

    Raises
    ------
    ValueError
        Naming ``length``: not an integer ``>= 1``, or too many words for memory.
    """
    hmm, length = as_hmm(model), check_count("length", length)
    n_words = size_power(hmm.n_symbols, length)
    _check_words_fit(hmm, length, f"length={length}", 8.0 * n_words,
                     f"{power_text(hmm.n_symbols, length)} words")
    probabilities = np.zeros(int(n_words))
    # Only the last level (the words of full length) is kept.
    index, _, probability = deque(_word_levels(hmm, length), maxlen=1)[0]
    probabilities[index] = probability
    return probabilities


def _entropy(probabilities: np.ndarray) -> float:
    """:math:`-\\sum p \\log p` over positive ``probabilities`` (0 log 0 = 0 by omission)."""
    return float(-np.sum(probabilities * np.log(probabilities)))


def block_entropy(model, max_length: int) -> np.ndarray:
    """Block entropies :math:`H(0), H(1), .., H(L)` by exact enumeration, in nats.

    Parameters
    ----------
    model : HMM, DiceHMM or LabelledProcess
        Any model with a ``to_hmm()``, or an HMM.
    max_length : int
        ``L >= 1``: the longest words.

    Returns
    -------
    numpy.ndarray, shape (L + 1,)
        ``H[n]`` :math:`= -\\sum_{|w| = n} P(w) \\log P(w)`; ``H[0] = 0``.

    Notes
    -----
    One forward pass over the word tree: the forward variables of every word
    of length ``n`` give those of its ``V`` children with one matrix product
    and one broadcast, so level ``n`` costs time and memory in proportion to
    :math:`N_{n-1} V K`, with :math:`N_n \\le V^n` the words of positive
    probability (words of probability 0 are dropped with their subtrees). The words of 8 throws of
    ``loaded_dice`` (:math:`8^8 = 1.7 \\cdot 10^7`, ``K = 4``) peak at 1.3 GB of
    memory; Mess3 to length 14 (:math:`3^{14} = 4.8 \\cdot 10^6` words) at 0.4 GB.

    Raises
    ------
    ValueError
        Naming ``max_length``: not an integer ``>= 1``, or a longest level of
        the tree that cannot fit in memory (refused before any level is built:
        the words of positive probability are counted from the supports first).
    """
    hmm, max_length = as_hmm(model), check_count("max_length", max_length)
    _check_words_fit(hmm, max_length, f"max_length={max_length}", 8.0 * (max_length + 1.0),
                     f"{max_length + 1} block entropies")
    entropies = np.zeros(max_length + 1)
    for length, (_, _, probability) in enumerate(_word_levels(hmm, max_length), start=1):
        entropies[length] = _entropy(probability)
    return entropies


def myopic_entropy(model, max_length: int) -> np.ndarray:
    """Myopic entropies :math:`h(1), .., h(L)`, exact, in nats.

    Returns
    -------
    numpy.ndarray, shape (L,)
        Entry ``t`` is :math:`h(t + 1) = H(t + 1) - H(t) = H(x_t \\mid x_0..x_{t-1})`:
        the expected log loss of the Bayes-optimal forecast of :math:`x_t`,
        aligned with ``predictive[:, t]`` of every forecaster.

    See :func:`block_entropy` for the parameters and errors.
    """
    return np.diff(block_entropy(model, max_length))


def excess_entropy(model, max_length: int) -> float:
    """Excess entropy estimated from the words up to ``max_length``, in nats.

    .. math::

        E_L = H(L) - L\\, h(L) = \\sum_{n=1}^{L} \\big(h(n) - h(L)\\big)

    the definition :math:`E = \\sum_n (h(n) - h_\\mu)` with the last myopic
    entropy :math:`h(L)` standing in for :math:`h_\\mu`. For a stationary process
    :math:`h(n)` never increases, so :math:`h(L) \\ge h_\\mu` and every term is
    at most the true one: :math:`E_L` is a lower bound that rises to :math:`E`.
    It is exact once ``L`` exceeds the Markov order (Golden Mean: ``L >= 2``);
    for processes of infinite order (Even, Mess3) the gap closes as
    :math:`h(L) - h_\\mu` does, geometrically for these. Compare
    :func:`myopic_entropy`'s last two entries to judge convergence.
    """
    entropies = block_entropy(model, max_length)
    return float(entropies[-1] - max_length * (entropies[-1] - entropies[-2]))


def entropy_rate(model, n_steps: int = 10**6, seed: Seed = None) -> RateEstimate:
    """The entropy rate :math:`h_\\mu` by Monte Carlo, with its standard error.

    The Bayes-optimal log loss per symbol, nats, on sequences drawn from the
    stationary chain: :meth:`HMM.entropy_rate <seqmodels.hmm.HMM.entropy_rate>`
    (independent sequences after a burn-in; the standard error is over the
    sequences, so it needs no correction for autocorrelation).
    """
    return RateEstimate(*as_hmm(model).entropy_rate(n_steps=n_steps, seed=seed))


def sampled_myopic_entropy(model, length: int, n_sequences: int = 1000,
                           seed: Seed = None) -> tuple[np.ndarray, np.ndarray]:
    """:math:`h(t + 1)` at every step of long sequences by Monte Carlo, with standard errors.

    Where :func:`myopic_entropy` cannot enumerate the words, average the
    Bayes-optimal log loss :math:`-\\log P(x_t \\mid x_0..x_{t-1})` at each step
    over ``n_sequences`` independent sequences from the model's start.

    Returns
    -------
    mean : numpy.ndarray, shape (length,)
        Estimates of :math:`h(t + 1)`, aligned as :func:`myopic_entropy`.
    standard_error : numpy.ndarray, shape (length,)
        Standard deviation over sequences over :math:`\\sqrt{B}` (sequences
        are independent, so this is the standard error of each entry).
    """
    n_sequences = check_count("n_sequences", n_sequences, minimum=2)
    hmm = as_hmm(model)
    _, symbols = hmm.sample(n_sequences, length, seed)
    predictive = hmm.predictive(symbols)
    losses = -np.log(np.take_along_axis(predictive, symbols[..., None], axis=-1)[..., 0])
    return losses.mean(axis=0), losses.std(axis=0, ddof=1) / np.sqrt(n_sequences)


__all__ = [
    "RateEstimate", "block_entropy", "entropy_rate", "excess_entropy", "myopic_entropy",
    "sampled_myopic_entropy", "word_probabilities",
]
