"""Labelled transitions T[x, i, j] as a state-emitting HMM: the same law, the way back.

The reference for every word is the edge-emitting forward pass written out
here, ``pi @ T[x_0] @ ... @ T[x_{L-1}] @ 1``, independent of the conversion.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from seqmodels import HMM, stationary_distribution
from seqmodels.hmm.labelled import from_labelled_transitions
from seqmodels.processes import even, golden_mean, mess3, rrxor

MAX_WORD = 8


def all_words(n_symbols: int, length: int) -> np.ndarray:
    """Every word of ``length`` symbols, (V**length, length), last symbol fastest."""
    return np.array(list(itertools.product(range(n_symbols), repeat=length)), dtype=np.int64)


def edge_word_probabilities(T: np.ndarray, start: np.ndarray, words: np.ndarray) -> np.ndarray:
    """``start @ T[w_0] @ ... @ T[w_{L-1}] @ 1`` for every row ``w`` of ``words``."""
    vectors = np.repeat(start[None, :], len(words), axis=0)
    for t in range(words.shape[1]):
        vectors = np.einsum("wi,wij->wj", vectors, T[words[:, t]])
    return vectors.sum(axis=1)


def state_word_probabilities(hmm: HMM, words: np.ndarray) -> np.ndarray:
    """The state-emitting forward pass, ``alpha_t = (alpha_{t-1} A) * B[:, x_t]``, summed."""
    alpha = hmm.startprob[None, :] * hmm.emissionprob[:, words[:, 0]].T
    for t in range(1, words.shape[1]):
        alpha = (alpha @ hmm.transmat) * hmm.emissionprob[:, words[:, t]].T
    return alpha.sum(axis=1)


def random_T(n_symbols: int, n_states: int, seed: int, sparsity: float = 0.0) -> np.ndarray:
    """Random labelled transitions; a ``sparsity`` fraction of the (x, j) cells set to 0."""
    rng = np.random.default_rng(seed)
    rows = rng.dirichlet(np.ones(n_symbols * n_states), size=n_states)  # (K, V * K)
    rows[rng.random(rows.shape) < sparsity] = 0.0
    rows[:, 0] += rows.sum(axis=1) == 0  # keep every row a distribution
    rows /= rows.sum(axis=1, keepdims=True)
    return rows.reshape(n_states, n_symbols, n_states).transpose(1, 0, 2)


CASES = {
    "golden_mean": lambda: golden_mean().T,
    "even": lambda: even().T,
    "mess3": lambda: mess3().T,
    "rrxor": lambda: rrxor().T,
    "random V2 K3": lambda: random_T(2, 3, seed=1),
    "random V3 K2": lambda: random_T(3, 2, seed=2),
    "random sparse V3 K3": lambda: random_T(3, 3, seed=3, sparsity=0.5),
    "random V4 K1": lambda: random_T(4, 1, seed=4),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_word_up_to_length_8_has_the_edge_emitting_probability(case):
    T = CASES[case]()
    converted = from_labelled_transitions(T)
    start = stationary_distribution(T.sum(axis=0))
    for length in range(1, MAX_WORD + 1):
        words = all_words(T.shape[0], length)
        expected = edge_word_probabilities(T, start, words)
        np.testing.assert_allclose(state_word_probabilities(converted.hmm, words), expected,
                                   rtol=1e-10, atol=1e-15, err_msg=f"length {length}")
        # The package's own forward pass agrees on every word, -inf for impossible ones
        # (hmmlearn's layout with lengths: a (N, 1) batch alone would be refused as one).
        scores = converted.hmm.log_likelihood(words.ravel(), lengths=np.full(len(words), length))
        with np.errstate(divide="ignore"):
            np.testing.assert_allclose(scores, np.log(expected), rtol=1e-10)


def test_a_given_start_distribution_is_used():
    T = random_T(2, 3, seed=5)
    start = np.array([1.0, 0.0, 0.0])
    converted = HMM.from_labelled_transitions(T, startprob=start)
    for length in (1, 4):
        words = all_words(2, length)
        np.testing.assert_allclose(state_word_probabilities(converted.hmm, words),
                                   edge_word_probabilities(T, start, words), rtol=1e-12)


@pytest.mark.parametrize(("case", "n_states"), [
    ("golden_mean", 2), ("mess3", 3), ("even", 3), ("rrxor", 8), ("random V2 K3", 6),
    ("random V4 K1", 1),  # one state: i.i.d. symbols, always factorised
])
def test_states_are_added_only_where_a_destination_does_not_factorise(case, n_states):
    T = CASES[case]()
    converted = from_labelled_transitions(T)
    assert converted.hmm.n_states == n_states
    assert converted.adds_states == (n_states > T.shape[1])
    assert converted.original_states == T.shape[1]
    np.testing.assert_array_equal(np.unique(converted.state_map), np.arange(T.shape[1]))


def test_a_factorised_T_gives_back_its_matrices():
    rng = np.random.default_rng(6)
    transmat = rng.dirichlet(np.ones(4), size=4)
    emission = rng.dirichlet(np.ones(3), size=4)
    converted = from_labelled_transitions(transmat[None] * emission.T[:, None, :])
    np.testing.assert_array_equal(converted.state_map, np.arange(4))
    np.testing.assert_allclose(converted.hmm.transmat, transmat, rtol=1e-12)
    np.testing.assert_allclose(converted.hmm.emissionprob, emission, rtol=1e-12)


@pytest.mark.parametrize("case", ["even", "rrxor", "random V2 K3", "mess3"])
def test_the_stationary_start_stays_stationary(case):
    hmm = from_labelled_transitions(CASES[case]()).hmm
    np.testing.assert_allclose(hmm.startprob @ hmm.transmat, hmm.startprob, atol=1e-12)


@pytest.mark.parametrize("case", ["even", "rrxor", "random sparse V3 K3", "mess3"])
def test_beliefs_summed_by_the_state_map_are_the_mixed_states(case):
    """P(s_{t+1} | x_0..x_t) = pi T[x_0] .. T[x_t] normalized, along sampled sequences."""
    T = CASES[case]()
    converted = from_labelled_transitions(T)
    _, symbols = converted.hmm.sample(5, 40, seed=7)
    beliefs = converted.original_beliefs(converted.hmm.filter(symbols).beliefs)
    assert beliefs.shape == (5, 40, T.shape[1])
    for b in range(5):
        mixed = stationary_distribution(T.sum(axis=0))
        for t in range(40):
            mixed = mixed @ T[symbols[b, t]]
            mixed = mixed / mixed.sum()
            np.testing.assert_allclose(beliefs[b, t], mixed, atol=1e-12)


def test_original_beliefs_refuse_the_wrong_number_of_states():
    converted = from_labelled_transitions(even().T)
    with pytest.raises(ValueError, match="beliefs must end in an axis of 3 states"):
        converted.original_beliefs(np.ones((4, 2)) / 2)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("T", "message"), [
    (np.ones((2, 2)), r"T must have shape \(V, K, K\)"),
    (np.ones((2, 2, 3)) / 6, r"T must have shape \(V, K, K\)"),
    (np.zeros((0, 2, 2)), r"T must have shape \(V, K, K\)"),
    ([[["a"]]], "T must be an array of numbers"),
    (np.array([[[0.5, np.nan], [0.5, 0.5]], [[0.0, 0.0], [0.0, 0.0]]]),
     r"T\[0, 0, 1\] is not finite"),
    (np.array([[[1.5, 0.0], [0.5, 0.5]], [[-0.5, 0.0], [0.0, 0.0]]]),
     r"T\[1, 0, 0\] is negative"),
    (np.array([[[0.5, 0.0], [0.5, 0.5]], [[0.0, 0.5], [0.25, 0.0]]]),
     r"T from state 1 sums to 1.25 over \(x, j\), not 1"),
])
def test_bad_T_is_refused_naming_it(T, message):
    with pytest.raises(ValueError, match=message):
        HMM.from_labelled_transitions(T)


def test_a_bad_start_distribution_is_refused_naming_it():
    with pytest.raises(ValueError, match="startprob must have one entry per state of T"):
        from_labelled_transitions(even().T, startprob=[1.0])
    with pytest.raises(ValueError, match="startprob sums to"):
        from_labelled_transitions(even().T, startprob=[0.5, 0.6])
