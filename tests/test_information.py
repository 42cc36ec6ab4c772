"""Exact block entropies and their Monte Carlo counterparts.

Exact values are checked against closed forms (Golden Mean: h(L) = 2/3 bit
from L = 2 on, E = log2 3 - 4/3 bit [CF03]) and against the package's own
forward pass word by word. Monte Carlo estimates are checked with z-tests on
their standard errors (independent sequences, so the errors are exact up to
the normal approximation of a mean of ~100 or more i.i.d. values), at
``ALPHA = 1e-3`` with Bonferroni over the steps compared.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from seqmodels import _checks, information
from seqmodels.dice import loaded_dice, sticky_three_dice
from seqmodels.processes import as_hmm, even, golden_mean, mess3, random_hmm, rrxor

ALPHA = 1e-3
BIT = np.log(2.0)
TWO_THIRDS_BIT = 2.0 / 3.0 * BIT  # 0.46210 nats


def z_bound(n_tests: int = 1) -> float:
    """Two-sided normal quantile for ``ALPHA`` shared by ``n_tests`` (Bonferroni)."""
    return stats.norm.isf(ALPHA / (2 * n_tests))


@pytest.mark.parametrize("make", [golden_mean, even, rrxor, mess3, sticky_three_dice,
                                  lambda: random_hmm(2, 3, seed=5, concentration=0.3)])
def test_word_probabilities_agree_with_the_forward_pass_word_by_word(make):
    model = make()
    hmm = as_hmm(model)
    length = 3 if hmm.n_symbols > 3 else 6
    probabilities = information.word_probabilities(model, length)
    words = np.array(list(itertools.product(range(hmm.n_symbols), repeat=length)))
    assert probabilities.shape == (len(words),)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    possible = probabilities > 0
    np.testing.assert_allclose(np.log(probabilities[possible]),
                               hmm.log_likelihood(words[possible]), rtol=1e-10, atol=1e-12)
    impossible = words[~possible][:20]  # a word of probability 0 is really impossible
    if len(impossible):
        assert np.all(hmm.log_likelihood(impossible) == -np.inf)


@pytest.mark.parametrize("make", [golden_mean, rrxor, loaded_dice])
def test_block_entropy_is_the_entropy_of_the_word_distribution(make):
    model = make()
    length = 3 if as_hmm(model).n_symbols > 3 else 7
    entropies = information.block_entropy(model, length)
    assert entropies.shape == (length + 1,) and entropies[0] == 0.0
    for n in range(1, length + 1):
        p = information.word_probabilities(model, n)
        assert entropies[n] == pytest.approx(-np.sum(p[p > 0] * np.log(p[p > 0])), rel=1e-12)
    assert np.all(np.isfinite(entropies))  # 0 log 0 = 0: impossible words add nothing


def test_golden_mean_entropies_have_their_closed_forms():
    myopic = information.myopic_entropy(golden_mean(), 10) / BIT
    assert myopic[0] == pytest.approx(-(np.log2(1 / 3) / 3 + np.log2(2 / 3) * 2 / 3), rel=1e-12)
    np.testing.assert_allclose(myopic[1:], 2.0 / 3.0, rtol=1e-12)
    for max_length in (2, 5, 10):
        excess = information.excess_entropy(golden_mean(), max_length) / BIT
        assert excess == pytest.approx(np.log2(3) - 4.0 / 3.0, rel=1e-10)


@pytest.mark.parametrize("make", [even, mess3, rrxor, lambda: random_hmm(3, 2, seed=1)])
def test_stationary_myopic_entropy_never_rises_and_excess_entropy_never_falls(make):
    model = make()
    myopic = information.myopic_entropy(model, 12)
    assert np.all(np.diff(myopic) <= 1e-12)
    excess = [information.excess_entropy(model, n) for n in range(1, 13)]
    assert np.all(np.diff(excess) >= -1e-12)


def test_even_excess_entropy_approaches_its_statistical_complexity_from_below():
    """Even is not cryptic, so E = C_mu = H(2/3, 1/3) = log2 3 - 2/3 bit [CF03]."""
    known = np.log2(3) - 2.0 / 3.0
    excess = information.excess_entropy(even(), 24) / BIT
    assert excess <= known
    assert known - excess < 0.01  # the gap halves about every two symbols: 1e-3 at L = 24
    assert information.myopic_entropy(even(), 24)[-1] / BIT >= 2.0 / 3.0


@pytest.mark.parametrize("make", [golden_mean, even])
def test_entropy_rate_is_two_thirds_of_a_bit_within_three_standard_errors(make):
    """The issue's target: 0.46210 nats within 3 Monte Carlo standard errors."""
    estimate = information.entropy_rate(make(), n_steps=10**6, seed=20)
    assert isinstance(estimate, information.RateEstimate)
    assert abs(estimate.value - TWO_THIRDS_BIT) <= 3 * estimate.standard_error
    assert 0 < estimate.standard_error < 1e-3


def test_mess3_block_entropy_limit_agrees_with_its_monte_carlo_rate():
    myopic = information.myopic_entropy(mess3(), 12)
    # h(L) falls about 4-fold less each step: the last moved it 3e-7 nats, so h(12) is
    # within 1e-6 of the limit, far inside the Monte Carlo error (about 1e-3).
    assert -1e-6 < myopic[-1] - myopic[-2] <= 0
    estimate = information.entropy_rate(mess3(), n_steps=10**6, seed=21)
    assert abs(estimate.value - myopic[-1]) <= z_bound() * estimate.standard_error


@pytest.mark.parametrize("make", [mess3, even, loaded_dice])
def test_sampled_myopic_entropy_agrees_with_the_exact_one(make):
    model = make()
    n_steps = 4 if as_hmm(model).n_symbols > 3 else 10
    exact = information.myopic_entropy(model, n_steps)
    mean, error = information.sampled_myopic_entropy(model, n_steps, n_sequences=4000, seed=22)
    assert mean.shape == error.shape == (n_steps,)
    # Step 0's losses are all equal (error ~1e-15), so allow rounding there.
    assert np.all(np.abs(mean - exact) <= z_bound(n_steps) * error + 1e-12)


# --------------------------------------------------------------------------- bad input


def test_enumeration_that_cannot_fit_is_refused_naming_the_argument(monkeypatch):
    with pytest.raises(ValueError, match=r"length=40: 1.33e\+36 words needs .* of memory"):
        information.word_probabilities(loaded_dice(), 40)
    monkeypatch.setattr(_checks, "available_memory", lambda: 10**6)
    # Refused up front: the count of words stops once they pass what 10**6 bytes hold.
    with pytest.raises(ValueError, match=r"max_length=8: at least 3\.28e\+04 words of "
                                         r"length 8 x 4 states"):
        information.block_entropy(loaded_dice(), 8)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_a_bad_length_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match="max_length must be"):
        information.block_entropy(mess3(), bad)
    with pytest.raises(ValueError, match="length must be"):
        information.word_probabilities(mess3(), bad)


def test_a_model_without_an_hmm_is_refused():
    with pytest.raises(ValueError, match="model must be an HMM or have a to_hmm"):
        information.block_entropy(np.eye(2), 3)
