"""Fitting in seqmodels.hmm: counting, Baum-Welch with restarts, state alignment."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from seqmodels.dice import casino, loaded_dice
from seqmodels.hmm import HMM, align_states, fit_counts, fit_em, window_init

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
    with pytest.raises(ValueError, match="pseudocount must be a real number, got None"):
        fit_counts(dice, symbols, n_states=2, n_symbols=2, pseudocount=None)


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
    with pytest.raises(ValueError, match="init must be one of"):
        fit_em(symbols, 2, 3, init="spectral", progress=False)
    with pytest.raises(ValueError, match="tol must be a real number, got 'a'"):
        fit_em(symbols, 2, 3, tol="a", progress=False)
    with pytest.raises(ValueError, match="n_symbols must be an integer, got '3'"):
        fit_em(symbols, 2, "3", progress=False)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        fit_em(symbols, 2, 3, seed="x", progress=False)


@pytest.mark.parametrize("init", ["windows", "random"])
def test_fit_em_is_deterministic_by_seed(init):
    symbols = loaded_dice().sample(6, 60, seed=28).symbols
    fits = [fit_em(symbols, 4, 8, n_restarts=3, max_iter=15, seed=seed, progress=False,
                   init=init) for seed in (29, 29, 30)]
    for field in ("startprob", "transmat", "emissionprob"):
        np.testing.assert_array_equal(getattr(fits[0].model, field), getattr(fits[1].model, field))
    assert fits[0].restarts.equals(fits[1].restarts)
    assert not np.array_equal(fits[0].model.emissionprob, fits[2].model.emissionprob)


# --------------------------------------------------------------------------- window_init


def blocks_of_two_alphabets(n_sequences: int, n_blocks: int, window: int, seed: int):
    """Blocks of ``window`` steps alternating between symbols {0, 1} and {2, 3}."""
    rng = np.random.default_rng(seed)
    within = rng.integers(0, 2, size=(n_sequences, n_blocks, window))
    offset = 2 * ((np.arange(n_blocks) + rng.integers(0, 2, size=(n_sequences, 1))) % 2)
    return (within + offset[..., None]).reshape(n_sequences, n_blocks * window)


def test_window_init_finds_pure_windows_exactly():
    window, smoothing = 10, 0.1
    symbols = blocks_of_two_alphabets(8, 6, window, seed=31)
    model = window_init(symbols, 2, 5, window=window, seed=32, smoothing=smoothing)
    frequencies = (np.bincount(symbols.ravel(), minlength=5) + 1) / (symbols.size + 5)
    # Every window is pure, so each centroid is one alphabet's mean histogram and
    # its mass on that alphabet is (1 - smoothing) + smoothing * (its overall share).
    on_low = model.emissionprob[:, :2].sum(axis=1)
    low_share = smoothing * frequencies[:2].sum()
    np.testing.assert_allclose(np.sort(on_low), [low_share, 1 - smoothing + low_share])
    np.testing.assert_allclose(np.diag(model.transmat), 1 - 1 / window)
    # Symbol 4 never appears, yet starts above 0 (add-one smoothed frequencies).
    np.testing.assert_allclose(model.emissionprob[:, 4], smoothing * frequencies[4])


def test_window_init_gives_valid_deterministic_parameters():
    symbols = loaded_dice().sample(20, 100, seed=33).symbols
    first = window_init(symbols, 4, 8, window=10, seed=34)
    again = window_init(symbols, 4, 8, window=10, seed=34)
    np.testing.assert_array_equal(first.emissionprob, again.emissionprob)
    assert (first.n_states, first.n_symbols) == (4, 8)
    for rows in (first.startprob[None], first.transmat, first.emissionprob):
        np.testing.assert_allclose(rows.sum(axis=1), 1.0)
        assert np.all(rows > 0)
    with pytest.raises(ValueError, match="window must be at most the sequence length 100"):
        window_init(symbols, 4, 8, window=101)
    with pytest.raises(ValueError, match="smoothing"):
        window_init(symbols, 4, 8, smoothing=1.0)
    with pytest.raises(ValueError, match="smoothing must be a real number, got None"):
        window_init(symbols, 4, 8, smoothing=None)
    with pytest.raises(ValueError, match=r"n_symbols must be an integer, got 8\.0"):
        window_init(symbols, 4, 8.0)
    with pytest.raises(ValueError, match="kmeans_iter must be at least 1, got 0"):
        window_init(symbols, 4, 8, kmeans_iter=0)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        window_init(symbols, 4, 8, seed=1.5)


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
    with pytest.raises(ValueError, match="reference must be an HMM, got DiceHMM"):
        align_states(casino().to_hmm(), casino())


# --------------------------------------------------------------------------- engines


def hmmlearn_iterations(start: HMM, symbols: np.ndarray, n_iter: int, pseudocount: float):
    """hmmlearn's fit one iteration at a time: the parameters after each, and the scores."""
    from seqmodels.hmm.fit import _to_hmm

    X, lengths = symbols.reshape(-1, 1), np.full(symbols.shape[0], symbols.shape[1])
    model, steps, scores = start, [], []
    for _ in range(n_iter):
        reference = model.to_hmmlearn(emissionprob_prior=1.0 + pseudocount, n_iter=1)
        reference.fit(X, lengths)
        scores.append(reference.monitor_.history[-1])
        model = _to_hmm(reference.startprob_, reference.transmat_, reference.emissionprob_)
        steps.append(model)
    return steps, scores


@pytest.mark.parametrize("pseudocount", [0.0, 1e-3])
def test_batched_em_step_equals_hmmlearns_every_iteration(pseudocount):
    from seqmodels._checks import as_sequences
    from seqmodels.hmm import em_step

    spec = loaded_dice()
    symbols = spec.sample(30, 80, seed=40).symbols
    start = window_init(symbols, 4, 8, seed=41)
    expected, scores = hmmlearn_iterations(start, symbols, 8, pseudocount)
    batch, model = as_sequences(symbols, 8), start
    for reference, score in zip(expected, scores, strict=True):
        model, log_likelihood = em_step(model, batch, pseudocount)
        assert log_likelihood == pytest.approx(score, rel=1e-12)
        for name in ("startprob", "transmat", "emissionprob"):
            np.testing.assert_allclose(getattr(model, name), getattr(reference, name),
                                       rtol=0, atol=1e-10)


def test_engines_agree_from_the_same_start_with_whole_histories():
    spec = casino()
    symbols = spec.sample(20, 100, seed=42).symbols
    start = window_init(symbols, 2, 6, seed=43)
    fits = {engine: fit_em(symbols, 2, 6, max_iter=12, tol=1e-12, init=start, engine=engine,
                           progress=False) for engine in ("batched", "hmmlearn")}
    batched, reference = fits["batched"], fits["hmmlearn"]
    assert len(batched.restarts) == 1 and len(batched.histories) == 1
    assert batched.histories[0].shape == (12,) == reference.histories[0].shape
    np.testing.assert_allclose(batched.histories[0], reference.histories[0], rtol=1e-12)
    assert np.all(np.diff(batched.histories[0]) > -1e-9)  # EM never goes down
    for name in ("startprob", "transmat", "emissionprob"):
        np.testing.assert_allclose(getattr(batched.model, name), getattr(reference.model, name),
                                   rtol=0, atol=1e-10)
    assert not batched.restarts.converged[0]  # stopped by max_iter, still improving


def test_converged_means_the_last_improvement_was_below_tol(casino_fit):
    _, _, fit = casino_fit
    tol = 1e-7 * 200 * 500
    for history, converged in zip(fit.histories, fit.restarts.converged, strict=True):
        assert converged == (history.size >= 2 and history[-1] - history[-2] < tol)
    assert fit.restarts.converged[fit.restarts.finalist].all()


def test_pseudocount_zero_is_plain_baum_welch():
    symbols = np.random.default_rng(44).integers(0, 4, size=(10, 50))  # 4 and 5 never appear
    plain = fit_em(symbols, 2, 6, n_restarts=1, max_iter=30, seed=45, pseudocount=0.0,
                   progress=False)
    assert np.all(plain.model.emissionprob[:, 4:] == 0)
    assert plain.model.log_likelihood([0, 5]) == -np.inf
    with pytest.raises(ValueError, match="pseudocount must be finite and >= 0"):
        fit_em(symbols, 2, 6, pseudocount=-1.0, progress=False)
    with pytest.raises(ValueError, match="engine must be one of"):
        fit_em(symbols, 2, 6, engine="torch", progress=False)


def test_init_must_match_the_sizes():
    symbols = np.zeros((3, 20), dtype=int)
    with pytest.raises(ValueError, match="init has 2 states and 6 symbols, but n_states=3"):
        fit_em(symbols, 3, 6, init=casino().to_hmm(), progress=False)


# ------------------------------------------------------------------ sequences of any length


def test_fit_counts_on_sequences_of_different_lengths():
    dice = [np.array([0, 0, 1]), np.array([1])]
    symbols = [np.array([0, 1, 2]), np.array([2])]
    # Transitions 0->0 and 0->1 only (none past either end): state 1 is never left.
    with pytest.raises(ValueError, match="state 1 is never left"):
        fit_counts(dice, symbols, 2, 3)
    counted = fit_counts(dice, symbols, 2, 3, pseudocount=1.0)
    np.testing.assert_allclose(counted.transmat, [[2 / 4, 2 / 4], [1 / 2, 1 / 2]])
    np.testing.assert_allclose(counted.emissionprob, [[2 / 5, 2 / 5, 1 / 5], [1 / 5, 1 / 5, 3 / 5]])
    X, lengths = np.array([0, 0, 1, 1]), np.array([3, 1])
    same = fit_counts(X, np.array([0, 1, 2, 2]), 2, 3, pseudocount=1.0, lengths=lengths)
    assert same == counted
    with pytest.raises(ValueError, match="same shape and lengths"):
        fit_counts([np.array([0, 1])], [np.array([0, 1, 2])], 2, 3)


def test_fit_em_reads_every_layout_alike():
    sample = casino().sample(12, [40 + 5 * b for b in range(12)], seed=46)
    sequences = sample.sequences()
    X, lengths = sample.to_hmmlearn()
    first = fit_em(sequences, 2, 6, n_restarts=2, max_iter=15, seed=47, progress=False)
    second = fit_em(X, 2, 6, n_restarts=2, max_iter=15, seed=47, progress=False, lengths=lengths)
    assert first.model == second.model
    assert first.log_likelihood == pytest.approx(
        casino().to_hmm().log_likelihood(sequences).sum(), rel=0.05)
    with pytest.raises(ValueError, match="lengths"):
        fit_em(X, 2, 6, progress=False)


def test_em_gives_the_same_bits_on_one_thread_and_on_two():
    """The E-step sums its counts per lane group in group order, with groups that do not
    depend on the thread count, so a fit is the same on any machine."""
    from seqmodels.hmm import limit_threads

    symbols = loaded_dice().sample(300, 60, seed=51).symbols
    fits = []
    for threads in (1, 2):
        with limit_threads(threads):
            fits.append(fit_em(symbols, 4, 8, n_restarts=2, max_iter=30, seed=52,
                               progress=False))
    one, two = fits
    assert one.model == two.model  # by value: every array bit for bit
    assert one.log_likelihood == two.log_likelihood
