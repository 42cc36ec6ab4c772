"""seqmodels.testing: correct samples pass, wrong models fail, the chi-square is calibrated.

Seeds are fixed, so every outcome is deterministic. "Passes" means p > ALPHA
for a sample drawn from the model itself (a fresh seed would fail with
probability ALPHA); "fails" uses deliberately wrong models whose p-values are
far below ALPHA at these sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from seqmodels import testing
from seqmodels.dice import DiceHMM, three_dice
from seqmodels.processes import PRESETS, even, golden_mean, mess3, rrxor

ALPHA = testing.ALPHA


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_correct_sample_passes_every_check(name):
    model = PRESETS[name]()
    sample = model.sample(600, 60, seed=sum(map(ord, name)))
    results = testing.check_sample(model, sample.states, sample.symbols)
    assert [r.passed for r in results] == [True] * 4, "\n".join(map(str, results))
    testing.assert_sample_matches(model, sample.states, sample.symbols)
    testing.assert_passed(testing.check_words(model, sample.symbols, 2))


@pytest.mark.parametrize("name", ["mess3", "loaded_dice", "even"])
def test_one_long_sequence_passes_the_long_run_check(name):
    model = PRESETS[name]()
    sample = model.sample(1, 100_000, seed=5)
    testing.assert_passed(testing.check_long_run(model, sample.states),
                          testing.check_transitions(model, sample.states),
                          testing.check_emissions(model, sample.states, sample.symbols))


def test_a_wrong_emission_law_fails_the_emission_check():
    sample = mess3().sample(600, 60, seed=1)
    result = testing.check_emissions(mess3(alpha=0.8), sample.states, sample.symbols)
    assert not result.passed and result.pvalue < 1e-10
    with pytest.raises(AssertionError, match=r"emissions given states: chi2 = .* on 6 dof, "
                                             r"p = .* <= alpha = 0.00025: FAILED"):
        testing.assert_sample_matches(mess3(alpha=0.8), sample.states, sample.symbols)


def test_a_wrong_transition_law_fails_the_transition_check():
    sample = golden_mean().sample(600, 60, seed=2)
    result = testing.check_transitions(golden_mean(p=0.6), sample.states)
    assert not result.passed and result.pvalue < 1e-10
    assert testing.check_emissions(golden_mean(p=0.6), sample.states, sample.symbols).passed


def test_a_wrong_start_fails_the_path_check():
    chain = three_dice()
    tilted = DiceHMM(chain.dice, chain.transmat, [0.5, 0.25, 0.25])
    sample = chain.sample(2000, 5, seed=3)
    assert not testing.check_paths(tilted, sample.states, 1).passed
    assert not testing.check_paths(tilted, sample.states, 3).passed
    assert testing.check_transitions(tilted, sample.states).passed  # the rows are right


def test_repeated_sequences_fail_the_checks_across_sequences():
    """hmmlearn's trap: an int seed makes every call return one sequence."""
    model = mess3()
    one = model.sample(1, 50, seed=4)
    states = np.repeat(one.states, 300, axis=0)
    assert not testing.check_step_pairs(model, states).passed
    assert not testing.check_paths(model, states, 2).passed


def test_a_sample_started_in_the_wrong_place_fails_the_step_pairs():
    """States cut from step 5 of a non-stationary chain: each row's law is right, the steps not."""
    chain = PRESETS["sticky_three_dice"]()
    states = chain.sample(3000, 15, seed=6).states[:, 5:]
    assert testing.check_transitions(chain, states).passed
    result = testing.check_step_pairs(chain, states)
    assert not result.passed and "Bonferroni over 9 steps" in str(result)


def test_words_of_another_process_fail_with_the_impossible_word_named():
    symbols = even().sample(500, 10, seed=7).symbols  # even shows 00, golden mean never does
    result = testing.check_words(golden_mean(), symbols, 3)
    assert result.pvalue == 0.0 and not result.passed
    assert "has probability 0" in result.detail


def test_an_impossible_transition_fails_at_once_naming_it():
    states = np.array([[0, 1, 1, 0]])  # golden mean's B never returns to B
    result = testing.check_transitions(golden_mean(), states)
    assert result.pvalue == 0.0 and result.statistic == np.inf
    assert result.detail == ("transitions (row = from, cell = to): row 1 drew cell 1 1 times, "
                             "which has probability 0")


def test_sequences_of_different_lengths_are_read_to_their_ends():
    sample = rrxor().sample(400, 30, seed=8)
    lengths = np.random.default_rng(9).integers(1, 31, size=400)
    past_end = np.arange(30) >= lengths[:, None]
    states = np.where(past_end, -1, sample.states)
    symbols = np.where(past_end, -1, sample.symbols)
    testing.assert_sample_matches(rrxor(), states, symbols)
    full = testing.emission_counts(sample.states, sample.symbols, 8, 2)
    assert testing.emission_counts(states, symbols, 8, 2).sum() == lengths.sum() < full.sum()


# --------------------------------------------------------------------------- the chi-square


def test_without_pooling_the_statistic_is_pearsons():
    counts = np.array([[30, 50, 20], [10, 10, 0]])
    probs = np.array([[0.3, 0.5, 0.2], [0.6, 0.4, 0.0]])
    result = testing.check_multinomial(counts, probs)
    first = stats.chisquare(counts[0], 100 * probs[0])
    second = stats.chisquare(counts[1, :2], 20 * probs[1, :2])
    assert result.statistic == pytest.approx(first.statistic + second.statistic)
    assert result.dof == 3
    assert result.pvalue == pytest.approx(stats.chi2.sf(result.statistic, 3))


def test_small_cells_are_pooled_and_a_small_pool_joins_the_smallest_cell():
    probs = np.array([0.5, 0.3, 0.12, 0.04, 0.04])  # n = 50: expected 25, 15, 6, 2, 2
    counts = np.array([20, 18, 7, 3, 2])
    result = testing.check_multinomial(counts, probs)
    # The pool (2 + 2 = 4 < 5) joins the smallest big cell (6): cells 25, 15, 10.
    expected = stats.chisquare([20, 18, 12], [25, 15, 10])
    assert (result.statistic, result.dof) == (pytest.approx(expected.statistic), 2)


def test_a_row_with_too_few_draws_tests_nothing():
    result = testing.check_multinomial([1, 2, 0], [0.3, 0.3, 0.4])
    assert (result.dof, result.pvalue, result.passed) == (0, 1.0, True)


def test_the_pooled_chi_square_is_calibrated_on_sparse_rows():
    """Under the null, p <= 0.05 in 5 % of draws, within a binomial interval at ALPHA.

    Ten cells expected at 0.5 each: the unpooled chi-square rejects far too
    often here (shown too, so this test can tell pooling from none).
    """
    rng = np.random.default_rng(10)
    probs = np.array([0.6, 0.2, 0.1] + [0.01] * 10)
    n_draws, n = 4000, 50
    draws = rng.multinomial(n, probs, size=n_draws)
    pooled = [testing.check_multinomial(counts, probs).pvalue for counts in draws]
    unpooled = stats.chisquare(draws, n * probs, axis=1).pvalue
    low, high = stats.binom.interval(1 - ALPHA, n_draws, 0.05)
    assert low <= np.count_nonzero(np.array(pooled) <= 0.05) <= high
    assert np.count_nonzero(unpooled <= 0.05) > high


def test_homogeneity_agrees_with_scipy_and_tells_two_laws_apart():
    rng = np.random.default_rng(11)
    first = rng.multinomial(400, [0.2, 0.3, 0.5], size=3)
    second = rng.multinomial(300, [0.2, 0.3, 0.5], size=3)
    result = testing.check_homogeneity(first, second)
    scipy = [stats.chi2_contingency(np.stack([a, b]), correction=False)
             for a, b in zip(first, second, strict=True)]
    assert result.statistic == pytest.approx(sum(r.statistic for r in scipy))
    assert result.dof == 6 and result.passed
    other = rng.multinomial(300, [0.3, 0.3, 0.4], size=3)
    assert testing.check_homogeneity(first, other).pvalue < 1e-6


def test_thinning_lag_and_periodic_chains():
    lam = 0.8 - 0.2 / 3  # loaded_dice's second eigenvalue
    assert testing.thinning_lag(PRESETS["loaded_dice"]().transmat) == int(
        np.ceil(np.log(1e-4) / np.log(lam)))
    assert testing.thinning_lag(np.full((3, 3), 1 / 3)) == 1
    with pytest.raises(ValueError, match="periodic or reducible"):
        testing.check_long_run(rrxor(), rrxor().sample(1, 100, seed=0).states)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("states", "message"), [
    (np.array([[0, 3, 1]]), r"states\[0, 1\] = 3 is outside \[0, 3\)"),
    (np.array([[0, -1, 1]]), r"states\[0\] has a value after a -1"),
    (np.array([[0.0, 1.0]]), "states must be an array of integers"),
    (np.zeros((0, 3), dtype=int), "states must be a non-empty"),
])
def test_bad_states_are_refused_naming_them(states, message):
    with pytest.raises(ValueError, match=message):
        testing.check_transitions(mess3(), states)


def test_other_bad_arguments_are_refused_naming_them():
    sample = mess3().sample(3, 4, seed=0)
    with pytest.raises(ValueError, match="states and symbols must have one shape"):
        testing.check_emissions(mess3(), sample.states, sample.symbols[:, :2])
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        testing.check_transitions(mess3(), sample.states, alpha=1.5)
    with pytest.raises(ValueError, match="length=5: no sequence of states has 5 steps"):
        testing.check_paths(mess3(), sample.states, 5)
    with pytest.raises(ValueError, match="counts and probs must have one shape"):
        testing.check_multinomial([1, 2], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match=r"probs row 0 sums to 1\.1"):
        testing.check_multinomial([1, 2], [0.5, 0.6])
    with pytest.raises(ValueError, match="model must be an HMM"):
        testing.check_transitions(None, sample.states)
