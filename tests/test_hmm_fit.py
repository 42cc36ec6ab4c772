"""Fitting in seqmodels.hmm: counting, Baum-Welch with restarts, state alignment."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from seqmodels.dice import casino, loaded_dice
from seqmodels.hmm import HMM, align_states, fit_counts, fit_em

# --------------------------------------------------------------------------- fit_counts


def test_fit_counts_on_a_hand_counted_example():
    dice = np.array([[0, 0, 1, 1], [1, 0, 0, 1]])
    symbols = np.array([[0, 1, 2, 2], [2, 0, 1, 2]])
    model = fit_counts(dice, symbols, n_states=2, n_symbols=3)
    np.testing.assert_allclose(model.startprob, [0.5, 0.5])
    # Transitions out of 0: 0->0 twice, 0->1 twice; out of 1: 1->1 once, 1->0 once.
    np.testing.assert_allclose(model.transmat, [[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(model.emissionprob, [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])


def within_binomial(estimate: np.ndarray, truth: np.ndarray, totals: np.ndarray, alpha: float):
    """Each ``estimate[i, j] * totals[i]`` inside the two-sided binomial interval.

    Given ``n_i`` visits to state ``i``, what follows each visit is an independent
    draw from row ``i`` (strong Markov property), so a count is Binomial(n_i, p_ij).
    """
    low, high = stats.binom.interval(1 - alpha, totals[:, None], truth)
    counts = np.rint(estimate * totals[:, None])
    return (low <= counts) & (counts <= high)


def test_fit_counts_recovers_the_generating_matrices():
    spec = loaded_dice()
    sample = spec.sample(40, 250, seed=21)
    model = fit_counts(sample.dice, sample.symbols, spec.n_states, spec.n_symbols)
    alpha = 1e-3 / (spec.n_states * (spec.n_states + spec.n_symbols))  # Bonferroni
    visits = np.bincount(sample.dice[:, :-1].ravel(), minlength=spec.n_states)
    emitted = np.bincount(sample.dice.ravel(), minlength=spec.n_states)
    assert within_binomial(model.transmat, spec.transmat, visits, alpha).all()
    assert within_binomial(model.emissionprob, spec.emissionprob, emitted, alpha).all()


def test_fit_counts_errors_and_pseudocount():
    dice = np.array([[0, 0, 0]])
    symbols = np.array([[1, 0, 1]])
    with pytest.raises(ValueError, match="state 1 is never left"):
        fit_counts(dice, symbols, n_states=2, n_symbols=2)
    model = fit_counts(dice, symbols, n_states=2, n_symbols=2, pseudocount=1.0)
    np.testing.assert_allclose(model.transmat, [[3 / 4, 1 / 4], [1 / 2, 1 / 2]])
    np.testing.assert_allclose(model.emissionprob[0], [2 / 5, 3 / 5])
    with pytest.raises(ValueError, match="same shape"):
        fit_counts(dice, symbols[:, :2], n_states=2, n_symbols=2)
    with pytest.raises(ValueError, match=r"dice has symbol 2, outside the allowed range \[0, 2\)"):
        fit_counts([0, 2, 1], [0, 1, 1], n_states=2, n_symbols=2)
    with pytest.raises(ValueError, match="pseudocount"):
        fit_counts(dice, symbols, n_states=2, n_symbols=2, pseudocount=-1.0)


# --------------------------------------------------------------------------- fit_em


@pytest.fixture(scope="module")
def casino_fit():
    spec = casino()
    sample = spec.sample(200, 500, seed=22)
    return spec, sample, fit_em(sample.symbols, 2, 6, n_restarts=4, seed=23, progress=False)


def test_fit_em_recovers_casino_after_alignment(casino_fit):
    spec, _, fit = casino_fit
    aligned, _ = align_states(fit.model, spec.to_hmm())
    assert np.abs(aligned.transmat - spec.transmat).max() < 0.05
    assert np.abs(aligned.emissionprob - spec.emissionprob).max() < 0.05


def test_fit_em_reports_every_restart_honestly(casino_fit):
    _, sample, fit = casino_fit
    table = fit.restarts
    assert list(table.columns[:4]) == ["restart", "log_likelihood", "iterations", "converged"]
    assert len(table) == 4 and table.finalist.sum() == 3
    assert fit.log_likelihood == pytest.approx(fit.model.log_likelihood(sample.symbols).sum())
    assert fit.log_likelihood == pytest.approx(table.log_likelihood.max())
    # The best restart beats the truth's likelihood on its own training data (it is the MLE).
    assert fit.log_likelihood >= casino().to_hmm().log_likelihood(sample.symbols).sum() - 1.0
    short = fit_em(sample.symbols[:20, :100], 2, 6, n_restarts=2, max_iter=3, seed=0,
                   progress=False)
    assert (short.restarts.iterations <= 3).all() and not short.restarts.converged.any()


def test_fit_em_never_scores_an_unseen_symbol_minus_infinity():
    rng = np.random.default_rng(24)
    train = rng.integers(0, 4, size=(10, 50))  # symbols 4 and 5 never appear
    fit = fit_em(train, 2, 6, n_restarts=2, max_iter=20, seed=25, progress=False)
    assert np.all(fit.model.emissionprob > 0)
    assert np.isfinite(fit.model.log_likelihood([0, 5, 4, 1]))


def test_fit_em_is_reproducible_and_validates():
    symbols = np.random.default_rng(26).integers(0, 3, size=(5, 40))
    first = fit_em(symbols, 2, 3, n_restarts=2, max_iter=10, seed=27, progress=False)
    second = fit_em(symbols, 2, 3, n_restarts=2, max_iter=10, seed=27, progress=False)
    np.testing.assert_array_equal(first.model.transmat, second.model.transmat)
    with pytest.raises(ValueError, match=r"symbol 3, outside the allowed range \[0, 3\)"):
        fit_em([0, 3], 2, 3, progress=False)
    with pytest.raises(ValueError, match="tol"):
        fit_em(symbols, 2, 3, tol=0.0, progress=False)


# --------------------------------------------------------------------------- align_states


def test_align_states_recovers_a_known_permutation():
    truth = loaded_dice().to_hmm()
    order = np.array([2, 0, 3, 1])  # shuffled state i is true state order[i]
    shuffled = HMM(truth.startprob[order], truth.transmat[np.ix_(order, order)],
                   truth.emissionprob[order])
    aligned, permutation = align_states(shuffled, truth)
    np.testing.assert_array_equal(permutation, np.argsort(order))
    np.testing.assert_array_equal(aligned.transmat, truth.transmat)
    np.testing.assert_array_equal(aligned.emissionprob, truth.emissionprob)
    np.testing.assert_array_equal(aligned.startprob, truth.startprob)


def test_align_states_needs_matching_sizes():
    with pytest.raises(ValueError, match="nothing to align"):
        align_states(casino().to_hmm(), loaded_dice().to_hmm())
