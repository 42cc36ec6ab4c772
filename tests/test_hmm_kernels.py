"""The compiled passes against hmmlearn and brute force, on sequences of any length.

Random models with K from 2 to 16 states and V from 2 to 20 symbols; batches of
different lengths (1 included) go through each layout: a list of 1-D arrays and
hmmlearn's ``(X, lengths)``. Batches of 70 sequences run in lane groups, lanes
dropping out as their sequences end (K and V padded to multiples of 4 for the
forward passes' tiles: K = 2, 3, 5 and V = 2, 7 padded, K = 16 in 4 x 4 tiles);
batches of 5, on two threads, in groups narrower than ``NARROW``: sequence by
sequence.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_hmm import enumerate_joint, random_model

from seqmodels.dice import loaded_dice
from seqmodels.hmm import HMM, FilterResult, limit_threads, sample_chain
from seqmodels.hmm.kernels import LANES

SIZES = [(2, 2), (3, 20), (5, 7), (16, 4), (16, 20)]


def ragged_sequences(model: HMM, n_seq: int, seed: int) -> list[np.ndarray]:
    """``n_seq`` sequences with lengths from 1 to 150 (1 and 150 always present)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 151, size=n_seq)
    lengths[:2] = 1, 150
    _, symbols = model.sample(n_seq, lengths, seed=seed)
    return [row[:n] for row, n in zip(symbols, lengths, strict=True)]


def concatenated(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate(sequences).reshape(-1, 1), np.array([len(s) for s in sequences])


@pytest.fixture(scope="module", params=[(*size, n_seq) for size in SIZES for n_seq in (5, 70)],
                ids=lambda p: f"K{p[0]}-V{p[1]}-B{p[2]}")
def case(request):
    n_states, n_symbols, n_seq = request.param
    model = random_model(n_states, n_symbols, seed=n_states * 100 + n_symbols)
    sequences = ragged_sequences(model, n_seq, seed=n_seq)
    return model, model.to_hmmlearn(), sequences


def test_log_likelihood_equals_hmmlearn_per_sequence(case):
    model, reference, sequences = case
    expected = [reference.score(row.reshape(-1, 1)) for row in sequences]
    np.testing.assert_allclose(model.log_likelihood(sequences), expected, rtol=1e-12)
    np.testing.assert_allclose(model.filter(sequences).log_likelihood, expected, rtol=1e-12)
    np.testing.assert_allclose(model.log_likelihood(*concatenated(sequences)), expected,
                               rtol=1e-12)


def test_smooth_equals_hmmlearn_and_pads_with_nan(case):
    model, reference, sequences = case
    X, lengths = concatenated(sequences)
    posterior = model.smooth(sequences)
    exists = np.arange(posterior.shape[1]) < lengths[:, None]
    np.testing.assert_allclose(posterior[exists], reference.predict_proba(X, lengths),
                               rtol=0, atol=1e-12)
    assert np.isnan(posterior[~exists]).all()
    np.testing.assert_array_equal(model.smooth(X, lengths), posterior)


def test_viterbi_paths_are_hmmlearns_and_padded_with_minus_one(case):
    model, reference, sequences = case
    _, lengths = concatenated(sequences)
    paths, log_prob = model.viterbi(sequences)
    exists = np.arange(paths.shape[1]) < lengths[:, None]
    for row, path, value, n in zip(sequences, paths, log_prob, lengths, strict=True):
        expected_value, expected_path = reference.decode(row.reshape(-1, 1))
        np.testing.assert_array_equal(path[:n], expected_path)
        assert value == pytest.approx(expected_value, rel=1e-12)
    assert (paths[~exists] == -1).all() and ((paths >= 0).sum(axis=1) == lengths).all()


def test_filter_pads_with_nan_and_reports_lengths(case):
    model, _, sequences = case
    result = model.filter(sequences)
    lengths = np.array([len(s) for s in sequences])
    np.testing.assert_array_equal(result.lengths, lengths)
    exists = np.arange(result.beliefs.shape[1]) < lengths[:, None]
    np.testing.assert_allclose(result.beliefs[exists].sum(axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(result.predictive[exists].sum(axis=-1), 1.0, atol=1e-12)
    assert np.isnan(result.beliefs[~exists]).all() and np.isnan(result.predictive[~exists]).all()
    np.testing.assert_array_equal(model.predictive(sequences), result.predictive)
    # Each sequence alone gives the same rows: no lane or chunk leaks into another.
    alone = model.filter(sequences[-1])
    np.testing.assert_array_equal(alone.beliefs, result.beliefs[-1, : lengths[-1]])
    assert alone.log_likelihood == pytest.approx(result.log_likelihood[-1], rel=1e-15)


@pytest.mark.parametrize(("n_states", "n_symbols"), [(3, 8), (4, 8), (6, 5)])
def test_lanes_and_single_sequences_agree_bit_for_bit(n_states, n_symbols):
    """The lane passes and the one-sequence passes (narrow groups, registers for K <= 4) do
    the same arithmetic in the same order: a sequence's results do not depend on its batch.
    The forward passes' lanes run on the model padded to 4 or 8 states (and 8 symbols)."""
    model = random_model(n_states, n_symbols, seed=1)
    lengths = np.r_[np.full(2 * LANES, 300), np.arange(100, 300, 20)]  # ragged tails too
    _, symbols = model.sample(len(lengths), lengths, seed=2)
    sequences = [row[:n] for row, n in zip(symbols, lengths, strict=True)]
    together, filtered = model.log_likelihood(sequences), model.filter(sequences)
    posterior, (paths, log_prob) = model.smooth(sequences), model.viterbi(sequences)
    for b in range(0, len(sequences), 7):
        row, n = sequences[b], lengths[b]
        assert model.log_likelihood(row) == together[b]
        alone = model.filter(row)
        np.testing.assert_array_equal(alone.beliefs, filtered.beliefs[b, :n])
        np.testing.assert_array_equal(alone.predictive, filtered.predictive[b, :n])
        assert alone.log_likelihood == filtered.log_likelihood[b]
        np.testing.assert_array_equal(model.smooth(row), posterior[b, :n])
        alone_path, alone_value = model.viterbi(row)
        np.testing.assert_array_equal(alone_path, paths[b, :n])
        assert alone_value == log_prob[b]


def test_forward_passes_read_strided_batches():
    """A batch that is a view with strides (every other step) gives the results of its copy."""
    model = random_model(4, 6, seed=3)
    _, symbols = model.sample(12, 80, seed=4)
    strided = symbols[:, ::2]
    copy = np.ascontiguousarray(strided)
    np.testing.assert_array_equal(model.log_likelihood(strided), model.log_likelihood(copy))
    assert model.filter(strided) == model.filter(copy)


# --------------------------------------------------------------------------- brute force


@pytest.mark.parametrize(("n_states", "n_symbols"), [(2, 2), (3, 20), (4, 5)])
def test_ragged_batch_matches_enumeration(n_states, n_symbols):
    model = random_model(n_states, n_symbols, seed=n_states + n_symbols)
    rng = np.random.default_rng(n_states)
    sequences = [rng.integers(0, n_symbols, size=n) for n in (1, 6, 3, 5)]
    result, posterior = model.filter(sequences), model.smooth(sequences)
    paths, log_prob = model.viterbi(sequences)
    for b, row in enumerate(sequences):
        all_paths, joint = enumerate_joint(model, row)
        assert result.log_likelihood[b] == pytest.approx(np.log(joint.sum()), rel=1e-12)
        for t in range(len(row)):
            prefix_paths, prefix = enumerate_joint(model, row[: t + 1])
            belief = np.bincount(prefix_paths[:, t], prefix, minlength=n_states) / prefix.sum()
            np.testing.assert_allclose(result.beliefs[b, t], belief, rtol=0, atol=1e-12)
            smoothed = np.bincount(all_paths[:, t], joint, minlength=n_states) / joint.sum()
            np.testing.assert_allclose(posterior[b, t], smoothed, rtol=0, atol=1e-12)
        best = np.argmax(joint)
        np.testing.assert_array_equal(paths[b, : len(row)], all_paths[best])
        assert log_prob[b] == pytest.approx(np.log(joint[best]), rel=1e-12)
    np.testing.assert_allclose(model.log_likelihood(sequences), result.log_likelihood,
                               rtol=1e-12)


# --------------------------------------------------------------------------- long and impossible


def test_one_long_sequence_stays_finite():
    spec = loaded_dice()
    symbols = spec.sample(1, 10**6, seed=3).symbols[0]
    value = spec.to_hmm().log_likelihood(symbols)
    assert np.isfinite(value) and value < -1e6
    # Per symbol, near the entropy rate (about 1.87 nats for loaded_dice).
    assert 1.8 < -value / symbols.size < 1.95


@pytest.mark.parametrize("n_seq", [3, LANES + 40])
def test_an_impossible_sequence_scores_minus_infinity_beside_finite_ones(n_seq):
    """State 0 emits only 0 and never leaves; a 1 after a 0-only start is impossible."""
    model = HMM([1.0, 0.0], [[1.0, 0.0], [0.5, 0.5]], [[1.0, 0.0], [0.5, 0.5]])
    sequences = [np.zeros(20 + b, dtype=np.int64) for b in range(n_seq)]
    sequences[1][15] = 1  # impossible at step 15
    sequences[2][0] = 1   # impossible at the first step
    scores = model.log_likelihood(sequences)
    assert scores[1] == -np.inf and scores[2] == -np.inf
    rest = np.delete(np.arange(n_seq), [1, 2])
    np.testing.assert_array_equal(scores[rest], 0.0)  # the zeros are certain
    for method in (model.filter, model.smooth, model.viterbi):
        with pytest.raises(ValueError, match=r"sequence 1 .*step 15"):
            method(sequences)


def test_thread_count_does_not_change_results():
    model = random_model(5, 7, seed=4)
    sequences = ragged_sequences(model, 90, seed=5)
    with limit_threads(1):
        one = (model.log_likelihood(sequences), model.smooth(sequences), model.viterbi(sequences),
               model.filter(sequences))
    two = (model.log_likelihood(sequences), model.smooth(sequences), model.viterbi(sequences),
           model.filter(sequences))
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    np.testing.assert_array_equal(one[2][0], two[2][0])
    assert one[3] == two[3]


# --------------------------------------------------------------------------- layouts and bad input


def test_hmmlearns_column_without_lengths_is_refused_naming_lengths():
    spec = loaded_dice()
    X, _ = spec.sample(4, 30, seed=6).to_hmmlearn()
    model = spec.to_hmm()
    for method in (model.log_likelihood, model.filter, model.smooth, model.viterbi,
                   model.predictive):
        with pytest.raises(ValueError, match=r"shape \(120, 1\).*lengths="):
            method(X)


@pytest.mark.parametrize(("symbols", "lengths", "message"), [
    (np.zeros(5, dtype=int), [2, 2], "lengths sum to 4, but symbols holds 5"),
    (np.zeros(5, dtype=int), [0, 5], "lengths must all be at least 1"),
    (np.zeros(5, dtype=int), [-1, 6], "lengths must all be at least 1"),
    (np.zeros((2, 3), dtype=int), [3, 3], "drop lengths"),
    ([[0, 1], [0.5]], None, r"symbols\[1\] must be integers"),
    ([[0, 1, 2], [0, 8]], None, r"symbols\[1\] has symbol 8, outside"),
])
def test_bad_layouts_raise_naming_the_argument(symbols, lengths, message):
    model = random_model(2, 8, seed=0)
    for method in (model.log_likelihood, model.filter, model.smooth, model.viterbi):
        with pytest.raises(ValueError, match=message):
            method(symbols, lengths=lengths)


# --------------------------------------------------------------------------- hardening


def test_models_and_results_compare_and_hash_by_value():
    first, again, other = random_model(3, 4, 7), random_model(3, 4, 7), random_model(3, 4, 8)
    assert first == again and hash(first) == hash(again) and first != other
    assert len({first, again, other}) == 2
    sequences = [np.array([0, 1, 2]), np.array([3])]
    result = first.filter(sequences)
    assert result == again.filter(sequences)  # NaN padding compares equal
    assert hash(result) == hash(again.filter(sequences))
    assert result != other.filter(sequences)
    assert isinstance(result, FilterResult) and result != first


@pytest.mark.parametrize(("arguments", "message"), [
    (([0.2, 0.2], np.eye(2), np.eye(2)), "startprob sums to 0.4"),
    (([np.nan, 1.0], np.eye(2), np.eye(2)), "startprob has a non-finite entry"),
    (([0.5, 0.5], [[1.5, -0.5], [0, 1]], np.eye(2)), "transmat row 0 has a negative entry"),
    (([0.5, 0.5], np.eye(3), np.eye(2)), r"transmat must have shape \(2, 2\)"),
    (([0.5, 0.5], np.eye(2), np.eye(3)), "emissionprob must have 2 rows"),
])
def test_sample_chain_validates_its_parameters(arguments, message):
    with pytest.raises(ValueError, match=message):
        sample_chain(*arguments, 100, 1, 0)


def test_sampling_that_cannot_fit_is_refused_before_allocating():
    spec = loaded_dice()
    with pytest.raises(ValueError, match=r"n_sequences=1000000 x length=1000000 needs "
                                         r".* of memory"):
        spec.sample(10**6, 10**6)
    with pytest.raises(ValueError, match=r"needs .* of memory"):
        spec.to_hmm().sample(10**6, 10**6)


def test_outputs_that_cannot_fit_are_refused_before_allocating(monkeypatch):
    from seqmodels import _checks

    monkeypatch.setattr(_checks, "available_memory", lambda: 10_000)
    model = random_model(2, 3, seed=0)
    symbols = np.zeros((20, 50), dtype=np.int64)
    for method, what in ((model.filter, "filter"), (model.smooth, "smooth"),
                         (model.viterbi, "viterbi"), (model.predictive, "predictive")):
        with pytest.raises(ValueError, match=f"{what} of n_sequences=20 x length=50 needs"):
            method(symbols)
    model.log_likelihood(symbols)  # needs O(B K) only


def test_lengths_per_sequence_cut_the_rectangular_sample():
    """Same seed: each sequence is the rectangular sample's prefix, so its law is the chain's."""
    model = random_model(3, 4, seed=9)
    lengths = np.array([5, 1, 12, 7])
    states, symbols = model.sample(4, lengths, seed=10)
    full_states, full_symbols = model.sample(4, 12, seed=10)
    exists = np.arange(12) < lengths[:, None]
    np.testing.assert_array_equal(states[exists], full_states[exists])
    np.testing.assert_array_equal(symbols[exists], full_symbols[exists])
    assert (states[~exists] == -1).all() and (symbols[~exists] == -1).all()
    with pytest.raises(ValueError, match=r"one length per sequence \(3\), got 4"):
        model.sample(3, lengths)
    with pytest.raises(ValueError, match="length must all be at least 1"):
        model.sample(2, [3, 0])


def test_to_hmmlearn_refuses_what_the_model_fixes():
    model = random_model(2, 3, seed=0)
    for name in ("n_components", "n_features"):
        with pytest.raises(ValueError, match=f"{name} is fixed by the model"):
            model.to_hmmlearn(**{name: 2})
