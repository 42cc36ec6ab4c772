"""Inference in seqmodels.hmm: hmmlearn agreement, brute force, properties, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from seqmodels.dice import loaded_dice
from seqmodels.hmm import HMM, stationary_distribution


def random_model(n_states: int, n_symbols: int, seed: int) -> HMM:
    """Dense random parameters: every path and symbol has positive probability."""
    rng = np.random.default_rng(seed)
    return HMM(
        rng.dirichlet(np.ones(n_states)),
        rng.dirichlet(np.ones(n_states), size=n_states),
        rng.dirichlet(np.ones(n_symbols), size=n_states),
    )


def permuted(model: HMM, order: np.ndarray) -> HMM:
    return HMM(model.startprob[order], model.transmat[np.ix_(order, order)],
               model.emissionprob[order])


# --------------------------------------------------------------------------- hmmlearn


@pytest.fixture(scope="module")
def case():
    """A random K=4, V=8 model, its hmmlearn twin and 6 sequences of 200 steps."""
    model = random_model(4, 8, seed=11)
    _, symbols = model.sample(6, 200, seed=12)
    return model, model.to_hmmlearn(), symbols


def test_log_likelihood_equals_hmmlearn_score(case):
    model, reference, symbols = case
    expected = [reference.score(row.reshape(-1, 1)) for row in symbols]
    np.testing.assert_allclose(model.log_likelihood(symbols), expected, rtol=1e-9, atol=0)
    np.testing.assert_allclose(model.filter(symbols).log_likelihood, expected, rtol=1e-9, atol=0)


def test_viterbi_equals_hmmlearn_decode(case):
    model, reference, symbols = case
    paths, log_prob = model.viterbi(symbols)
    assert paths.dtype == np.int64 and paths.shape == symbols.shape
    for row, path, value in zip(symbols, paths, log_prob, strict=True):
        expected_value, expected_path = reference.decode(row.reshape(-1, 1))
        np.testing.assert_array_equal(path, expected_path)
        assert value == pytest.approx(expected_value, rel=1e-9)


def decode_batch(model: HMM, symbols: np.ndarray) -> tuple[np.ndarray, float]:
    """hmmlearn's Viterbi on the batch concatenated with lengths: paths (B, T), total log-prob."""
    lengths = np.full(symbols.shape[0], symbols.shape[1])
    log_prob, paths = model.to_hmmlearn().decode(
        symbols.reshape(-1, 1), lengths, algorithm="viterbi"
    )
    return paths.reshape(symbols.shape), log_prob


def assert_viterbi_is_hmmlearns(model: HMM, symbols: np.ndarray) -> np.ndarray:
    """Paths equal to hmmlearn's decode and total log-probability within 1e-9; the paths."""
    paths, log_prob = model.viterbi(symbols)
    expected_paths, expected_log_prob = decode_batch(model, symbols)
    np.testing.assert_array_equal(paths, expected_paths)
    assert log_prob.sum() == pytest.approx(expected_log_prob, rel=1e-9)
    return paths


def twin_model() -> HMM:
    """States 1 and 2 are exact twins (same emissions, mirrored transitions): their scores tie.

    Emission probabilities 1/4 and 1/8 (powers of 2) and zeros, as in the dice presets.
    """
    emission = np.array([[0.25] * 4 + [0.0] * 4, [0.125] * 8, [0.125] * 8, [0.5] * 2 + [0.0] * 6])
    transmat = np.full((4, 4), 0.2 / 3)
    np.fill_diagonal(transmat, 0.8)
    return HMM(np.full(4, 0.25), transmat, emission)


@pytest.mark.parametrize("length", [2, 60])
def test_viterbi_equals_hmmlearn_on_tied_scores(length):
    model = twin_model()
    _, symbols = model.sample(20, length, seed=length)
    paths = assert_viterbi_is_hmmlearns(model, symbols)
    assert np.any(paths == 1)  # twin 1 wins the last step's ties (the lowest index)


def test_viterbi_tie_rules_are_hmmlearns():
    """All paths tie: the last step takes the lowest state, every back-pointer the highest."""
    flat = HMM(np.full(3, 1 / 3), np.full((3, 3), 1 / 3), np.full((3, 2), 0.5))
    symbols = np.array([[0, 1, 1, 0, 1], [1, 1, 0, 0, 0]])
    paths, log_prob = flat.viterbi(symbols)
    np.testing.assert_array_equal(paths, [[2, 2, 2, 2, 0]] * 2)
    np.testing.assert_array_equal(paths, decode_batch(flat, symbols)[0])
    np.testing.assert_allclose(log_prob, 5 * np.log(1 / 6), rtol=1e-12)


@pytest.mark.parametrize("n_seq", [3, 80])
def test_viterbi_one_chunk_and_many(n_seq):
    """3 sequences: one per chunk; 80: several per chunk, the lattice reused."""
    model = random_model(4, 8, seed=n_seq)
    _, symbols = model.sample(n_seq, 60, seed=n_seq + 1)
    paths = assert_viterbi_is_hmmlearns(model, symbols)
    assert paths.dtype == np.int64 and paths.flags.c_contiguous


def test_viterbi_with_more_states_than_a_byte_counts():
    model = random_model(300, 3, seed=300)
    _, symbols = model.sample(4, 10, seed=301)
    paths = assert_viterbi_is_hmmlearns(model, symbols)
    assert paths[:, :-1].max() >= 256  # a back-pointer that needs two bytes


def test_smooth_equals_hmmlearn_predict_proba(case):
    model, reference, symbols = case
    lengths = np.full(symbols.shape[0], symbols.shape[1])
    expected = reference.predict_proba(symbols.reshape(-1, 1), lengths)
    np.testing.assert_allclose(model.smooth(symbols).reshape(expected.shape), expected,
                               rtol=0, atol=1e-10)


def test_hmmlearn_round_trip_is_configured(case):
    model, reference, _ = case
    assert reference.n_features == model.n_symbols and reference.init_params == ""
    back = HMM.from_hmmlearn(reference)
    for name in ("startprob", "transmat", "emissionprob"):
        np.testing.assert_array_equal(getattr(back, name), getattr(model, name))


# --------------------------------------------------------------------------- brute force


def enumerate_joint(model: HMM, symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All hidden paths (N, T) and P(path, symbols) (N,), by enumeration."""
    paths = np.array(list(itertools.product(range(model.n_states), repeat=len(symbols))))
    joint = model.startprob[paths[:, 0]] * model.emissionprob[paths[:, 0], symbols[0]]
    for t in range(1, len(symbols)):
        joint = joint * model.transmat[paths[:, t - 1], paths[:, t]]
        joint = joint * model.emissionprob[paths[:, t], symbols[t]]
    return paths, joint


@pytest.mark.parametrize(("n_states", "length"), [(2, 6), (3, 5)])
def test_inference_matches_enumeration(n_states, length):
    model = random_model(n_states, 3, seed=n_states)
    symbols = np.random.default_rng(length).integers(0, 3, size=length)
    result = model.filter(symbols)
    smoothed = model.smooth(symbols)
    paths, joint = enumerate_joint(model, symbols)
    assert result.log_likelihood == pytest.approx(np.log(joint.sum()), rel=1e-12)
    for t in range(length):
        prefix_paths, prefix = enumerate_joint(model, symbols[: t + 1])
        belief = np.bincount(prefix_paths[:, t], prefix, minlength=n_states) / prefix.sum()
        np.testing.assert_allclose(result.beliefs[t], belief, atol=1e-12)
        posterior = np.bincount(paths[:, t], joint, minlength=n_states) / joint.sum()
        np.testing.assert_allclose(smoothed[t], posterior, atol=1e-12)
        before = enumerate_joint(model, symbols[:t])[1].sum() if t else 1.0
        forecast = [
            enumerate_joint(model, np.append(symbols[:t], v))[1].sum() / before for v in range(3)
        ]
        np.testing.assert_allclose(result.predictive[t], forecast, atol=1e-12)
    best = np.argmax(joint)
    path, log_prob = model.viterbi(symbols)
    np.testing.assert_array_equal(path, paths[best])
    assert log_prob == pytest.approx(np.log(joint[best]), rel=1e-12)


# --------------------------------------------------------------------------- properties


@settings(max_examples=25, deadline=None)
@given(
    n_states=st.integers(1, 4), n_symbols=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(1, 4), st.integers(2, 40)),  # (B, 1) reads as hmmlearn's X
)
def test_filter_and_smoother_properties(n_states, n_symbols, seed, shape):
    model = random_model(n_states, n_symbols, seed)
    _, symbols = model.sample(*shape, seed=seed)
    result = model.filter(symbols)
    smoothed = model.smooth(symbols)
    np.testing.assert_allclose(result.beliefs.sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(result.predictive.sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(smoothed.sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(smoothed[:, -1], result.beliefs[:, -1], atol=1e-12)
    np.testing.assert_allclose(
        result.predictive[:, 0], np.broadcast_to(model.startprob @ model.emissionprob,
                                                 result.predictive[:, 0].shape), atol=1e-12)
    order = np.random.default_rng(seed).permutation(n_states)
    np.testing.assert_allclose(
        permuted(model, order).log_likelihood(symbols), result.log_likelihood,
        rtol=1e-10, atol=1e-12,
    )
    np.testing.assert_allclose(model.log_likelihood(symbols), result.log_likelihood,
                               rtol=1e-10, atol=1e-12)


def test_single_sequence_keeps_its_rank():
    model = random_model(3, 4, seed=5)
    _, symbols = model.sample(1, 30, seed=6)
    single = symbols[0]
    result = model.filter(single)
    assert result.beliefs.shape == (30, 3) and result.predictive.shape == (30, 4)
    assert np.ndim(result.log_likelihood) == 0
    assert model.smooth(single).shape == (30, 3)
    path, log_prob = model.viterbi(single)
    assert path.shape == (30,) and np.ndim(log_prob) == 0
    assert np.ndim(model.log_likelihood(single)) == 0
    assert result.log_likelihood == pytest.approx(model.filter(symbols).log_likelihood[0])


# --------------------------------------------------------------------------- long sequences


def test_no_underflow_at_100k_steps():
    spec = loaded_dice()
    model = spec.to_hmm()
    symbols = spec.sample(1, 10**5, seed=7).symbols
    expected = model.to_hmmlearn().score(symbols.reshape(-1, 1))
    result = model.filter(symbols)
    assert np.isfinite(expected) and expected < -1e5  # far below the float64 range of P(x)
    assert result.log_likelihood[0] == pytest.approx(expected, rel=1e-9)
    assert model.log_likelihood(symbols)[0] == pytest.approx(expected, rel=1e-9)
    smoothed = model.smooth(symbols)
    assert np.all(np.isfinite(smoothed)) and np.allclose(smoothed.sum(axis=-1), 1.0)
    assert_viterbi_is_hmmlearns(model, symbols)


@pytest.mark.parametrize("n_seq", [1, 70])  # one sequence alone; a block of lanes and a rest
@pytest.mark.parametrize("probability", [1e-30, 1e-250])
def test_likelihood_path_survives_steps_that_underflow(n_seq, probability):
    """Each step multiplies the mass by ``probability``: the unnormalized vector must be
    rescued before it underflows (1e-250 underflows in two steps from 1e-100)."""
    emission = np.array([[1 - probability, probability], [0.5, 0.5]])
    model = HMM([1.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], emission)
    symbols = np.ones((n_seq, 100), dtype=np.int64)
    expected = 100 * np.log(probability)
    np.testing.assert_allclose(model.log_likelihood(symbols), expected, rtol=1e-12)
    np.testing.assert_allclose(model.filter(symbols).log_likelihood, expected, rtol=1e-12)


# --------------------------------------------------------------------------- the worked example


def test_previous_given_state_is_the_reversed_chain():
    model = HMM([1.0, 0.0, 0.0], [[0.1, 0.6, 0.3], [0.5, 0.0, 0.5], [0.2, 0.7, 0.1]],
                np.eye(3))
    stationary = model.stationary_distribution()
    reverse = np.array([model.previous_given_state(k)[0] for k in range(3)])
    np.testing.assert_allclose(reverse.sum(axis=1), 1.0)
    np.testing.assert_allclose(stationary @ reverse, stationary, atol=1e-12)
    # Detailed balance between the chain and its reversal: p_k R_ki = p_i A_ik.
    np.testing.assert_allclose(stationary[:, None] * reverse,
                               (stationary[:, None] * model.transmat).T, atol=1e-12)
    # With identity emissions the symbol is the state.
    np.testing.assert_allclose(model.previous_given_state(1)[1], reverse[1])


def test_next_given_state_pushes_through_the_emissions():
    model = loaded_dice().to_hmm()
    p_state, p_symbol = model.next_given_state(3)
    np.testing.assert_array_equal(p_state, model.transmat[3])
    assert p_symbol[0] == pytest.approx(0.8 * 0.5 + 0.2 / 3 * (1 / 4 + 1 / 6 + 1 / 8))
    # loaded_dice's chain is symmetric, hence reversible: back looks like forward.
    np.testing.assert_allclose(model.previous_given_state(3)[0], p_state, atol=1e-12)


def test_entropy_rate_of_a_revealed_chain():
    """States emit disjoint symbols, so h = sum_k p_k (H(A_k) + H(B_k)) exactly."""
    transmat = np.array([[0.7, 0.3], [0.4, 0.6]])
    emission = np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.2, 0.8]])
    model = HMM([0.5, 0.5], transmat, emission)
    p = model.stationary_distribution()
    truth = float(p @ (stats.entropy(transmat, axis=1) + stats.entropy(emission, axis=1)))
    estimate, standard_error = model.entropy_rate(n_steps=40_000, seed=8)
    z = stats.norm.ppf(1 - 1e-3 / 2)
    assert 0 < standard_error < 0.02
    assert abs(estimate - truth) < z * standard_error


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("symbols", "message"), [
    ([0, 1, 8], r"symbol 8, outside the allowed range \[0, 8\)"),
    ([0, -1], r"symbol -1, outside the allowed range \[0, 8\)"),
    ([0.0, np.nan], "NaN"),
    ([0.5, 1.0], "integers"),
    ([], "empty"),
    (np.zeros((2, 2, 2), dtype=int), "shape"),
    ([[0, 1], [9]], r"symbols\[1\] has symbol 9, outside"),
    ([0.0, 1e20], r"symbol 1e\+20, outside"),  # named as given, not as a wrapped int64
    (np.array([0, 2**63 + 5], dtype=np.uint64), "symbol 9223372036854775813, outside"),
])
def test_bad_symbols_raise_value_error(symbols, message):
    model = random_model(2, 8, seed=0)
    for method in (model.filter, model.smooth, model.viterbi, model.log_likelihood,
                   model.predictive):
        with pytest.raises(ValueError, match=message):
            method(symbols)


def test_zero_probability_sequence_names_sequence_and_step():
    # State 0 emits only symbol 0 and never leaves; a 1 at step 40 is impossible.
    model = HMM([1.0, 0.0], [[1.0, 0.0], [0.5, 0.5]], [[1.0, 0.0], [0.5, 0.5]])
    symbols = np.zeros((3, 50), dtype=np.int64)
    symbols[2, 40] = 1
    for method in (model.filter, model.smooth, model.viterbi, model.predictive):
        with pytest.raises(ValueError, match=r"sequence 2 .*symbol 1 at step 40"):
            method(symbols)


def test_stationary_distribution_validates_and_takes_lists():
    np.testing.assert_allclose(stationary_distribution([[0.9, 0.1], [0.2, 0.8]]), [2 / 3, 1 / 3])
    with pytest.raises(ValueError, match=r"transmat must be square, got shape \(1, 2\)"):
        stationary_distribution([[0.5, 0.5]])
    with pytest.raises(ValueError, match=r"transmat row 0 sums to 0\.5"):
        stationary_distribution([[0.5, 0.0], [0.0, 1.0]])


def test_bad_state_index_raises_value_error():
    model = random_model(2, 3, seed=0)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        model.next_given_state(2)
    with pytest.raises(ValueError, match="at least 0"):
        model.previous_given_state(-1)
    transient = HMM([1.0, 0.0], [[0.0, 1.0], [0.0, 1.0]], np.eye(2))
    with pytest.raises(ValueError, match="stationary probability 0"):
        transient.previous_given_state(0)
