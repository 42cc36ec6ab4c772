"""Statistical checks of a sample against a model, for your own test suites.

Every check here counts something whose law under the model is *exactly*
multinomial, whatever the autocorrelation along a sequence, so the
chi-square p-value (the usual large-sample approximation, every cell
expected at 5 or more) means what it says:

- symbols given the hidden path are independent draws, one per step, from the
  emitting state's row (:func:`check_emissions`);
- by the strong Markov property the successors of state ``i`` are i.i.d. draws
  from row ``i`` of the transition matrix, so per-row transition counts are
  multinomial given the row totals, and rows are independent
  (:func:`check_transitions`);
- across independent sequences, anything at fixed steps is one draw per
  sequence: the first ``L`` states (:func:`check_paths`), the pair of states
  at each step (:func:`check_step_pairs`), the first ``L`` symbols
  (:func:`check_words`, which needs no states at all).

:func:`check_long_run` is the one approximate check (thinned steps of long
sequences against the stationary law), and says so.

Chi-square statistics need expected counts of about 5 or more (Cochran's
rule). Cells expected below 5 are pooled into one; a pool still below 5 joins
the smallest other cell. The pooling depends only on the model and the row
totals, never on the counts, and a sum of multinomial cells is multinomial,
so the pooled counts are still exactly multinomial and every cell left meets
the rule (the test only loses some power). A count in a cell of probability
0 fails at once (p = 0), naming the cell.

Every check returns a :class:`CheckResult` (statistic, degrees of freedom,
p-value, the level it is judged at); :func:`assert_passed` and
:func:`assert_sample_matches` raise ``AssertionError`` naming what failed::

    from seqmodels import testing
    sample = process.sample(500, 200, seed=0)
    testing.assert_sample_matches(process, sample.states, sample.symbols)

With fixed seeds a check's outcome is deterministic; at ``alpha = 1e-3`` a
correct sampler fails one check in a thousand new seeds, while real bugs (a
wrong row, an off-by-one) give p-values far below 1e-10 at these sizes.
Models are anything :func:`seqmodels.processes.as_hmm` takes: an HMM, a
:class:`~seqmodels.dice.DiceHMM`, a labelled process. States and symbols are
``(B, T)`` int arrays (a ``(T,)`` array is one sequence), -1 past a
sequence's end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import chdtrc  # the chi-square survival function; scipy.stats is slow to import

from seqmodels._checks import (
    check_count,
    check_memory,
    check_probabilities,
    check_real,
    float_array,
    integer_array,
    power_text,
    size_power,
)
from seqmodels.hmm.fit import pair_counts
from seqmodels.information import word_probabilities
from seqmodels.processes import as_hmm

#: Default significance level of every check.
ALPHA = 1e-3

#: Cochran's rule: the smallest expected count a chi-square cell should have.
MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes
    ----------
    name : str
        What was tested, e.g. ``"emissions given states"``.
    statistic : float
        Pearson's chi-square (``inf`` when an impossible event was drawn).
    dof : int
        Its degrees of freedom; 0 when nothing could be tested (then p = 1).
    pvalue : float
    alpha : float
        The level it is judged at (already divided for Bonferroni where the
        check combines several tests).
    detail : str
        Where it failed: the impossible cell, or the worst step.
    """

    name: str
    statistic: float
    dof: int
    pvalue: float
    alpha: float
    detail: str = ""

    @property
    def passed(self) -> bool:
        """True when ``pvalue > alpha``."""
        return self.pvalue > self.alpha

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        relation = ">" if self.passed else "<="
        text = (f"{self.name}: chi2 = {self.statistic:.4g} on {self.dof} dof, "
                f"p = {self.pvalue:.3g} {relation} alpha = {self.alpha:.3g}: {verdict}")
        return f"{text} ({self.detail})" if self.detail else text


def assert_passed(*results: CheckResult) -> None:
    """Raise ``AssertionError`` listing every result that failed (statistic, p-value, alpha)."""
    for index, result in enumerate(results):
        if not isinstance(result, CheckResult):
            raise ValueError(f"results[{index}] must be a CheckResult (what the checks return), "
                             f"got {type(result).__name__}")
    failed = [str(result) for result in results if not result.passed]
    if failed:
        raise AssertionError("statistical check failed:\n  " + "\n  ".join(failed))


def _check_counts(name: str, counts) -> np.ndarray:
    """``counts`` as a float array of at least 2 dimensions, or ``ValueError`` naming
    ``name``: every entry a finite whole number ``>= 0``."""
    array = np.atleast_2d(float_array(name, counts))
    bad = ~(np.isfinite(array) & (array >= 0) & (array == np.round(array)))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be whole numbers >= 0, got {array[where]} at {where}")
    return array


def _check_alpha(alpha) -> float:
    alpha = check_real("alpha", alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return alpha


# --------------------------------------------------------------------------- chi-square


def _cell_groups(expected: np.ndarray) -> np.ndarray:
    """Pool small cells row by row (see the module docstring); the group of each cell.

    Parameters
    ----------
    expected : numpy.ndarray, shape (R, C)
        Expected counts; a cell with 0 is no cell.

    Returns
    -------
    numpy.ndarray of int64, shape (R, C)
        A cell expected at ``MIN_EXPECTED`` or more is its own group (its column
        index); the others share group ``C``, which joins the smallest big cell
        when its total is still below ``MIN_EXPECTED``; -1 for no cell.
    """
    n_cells = expected.shape[1]
    big = expected >= MIN_EXPECTED
    small = (expected > 0) & ~big
    groups = np.where(big, np.arange(n_cells), np.where(small, n_cells, -1))
    pool = np.where(small, expected, 0.0).sum(axis=1)
    merge = np.flatnonzero((pool > 0) & (pool < MIN_EXPECTED) & big.any(axis=1))
    smallest = np.argmin(np.where(big, expected, np.inf), axis=1)
    groups[merge] = np.where(small[merge], smallest[merge, None], groups[merge])
    return groups


def _group_sums(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(R, C + 1): ``values`` summed within each row's groups (cells of group -1 dropped)."""
    n_rows, n_groups = values.shape[0], values.shape[1] + 1
    keep = groups >= 0
    flat = (np.arange(n_rows)[:, None] * n_groups + groups)[keep]
    return np.bincount(flat, weights=values[keep], minlength=n_rows * n_groups).reshape(
        n_rows, n_groups)


def _pearson(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Row sums of :math:`(O - E)^2 / E` over the cells with ``E > 0``, shape (R,)."""
    safe = np.where(expected > 0, expected, 1.0)
    return np.where(expected > 0, (observed - expected) ** 2 / safe, 0.0).sum(axis=1)


def _row_chisquare(counts: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of multinomial ``counts`` (R, C) against ``probs`` (R, C): the Pearson
    statistic and its degrees of freedom after pooling small cells, (R,) each."""
    expected = counts.sum(axis=1, keepdims=True) * probs
    groups = _cell_groups(expected)
    observed, expected = _group_sums(counts, groups), _group_sums(expected, groups)
    return _pearson(observed, expected), np.maximum((expected > 0).sum(axis=1) - 1, 0)


def _result(name: str, statistic: float, dof: int, alpha: float) -> CheckResult:
    pvalue = float(chdtrc(dof, statistic)) if dof > 0 else 1.0
    return CheckResult(name, float(statistic), int(dof), pvalue, alpha)


def _impossible(counts: np.ndarray, probs: np.ndarray, what: str) -> str:
    """A description of the first count in a cell of probability 0, or ``""``."""
    drawn = (probs == 0) & (counts > 0)
    if not drawn.any():
        return ""
    row, cell = np.argwhere(drawn)[0]
    return f"{what}: row {row} drew cell {cell} {int(counts[row, cell])} times, " \
           "which has probability 0"


def check_multinomial(counts, probs, alpha: float = ALPHA, name: str = "multinomial rows",
                      what: str = "counts") -> CheckResult:
    """Independent multinomial rows ``counts[i] ~ Mult(n_i, probs[i])``: one pooled chi-square.

    Parameters
    ----------
    counts : array_like of int, shape (R, C) or (C,)
        Observed counts; rows with no draws add nothing.
    probs : array_like, shape (R, C) or (C,)
        Each row's cell probabilities (rows sum to 1).
    alpha : float
        Level in (0, 1).
    name, what : str
        How the result and an impossible cell are described.

    Returns
    -------
    CheckResult
        The rows' statistics and degrees of freedom add up (independent rows);
        ``p = scipy.stats.chi2.sf(statistic, dof)``.

    Notes
    -----
    Assumes the rows are independent and each row's cells a multinomial
    given its total: the caller's argument (see the module docstring).
    """
    alpha = _check_alpha(alpha)
    counts = _check_counts("counts", counts)
    probs = np.atleast_2d(float_array("probs", probs))
    probs = check_probabilities("probs", probs, ndim=2)
    if counts.shape != probs.shape:
        raise ValueError(f"counts and probs must have one shape, got {counts.shape} and "
                         f"{probs.shape}")
    impossible = _impossible(counts, probs, what)
    if impossible:
        return CheckResult(name, np.inf, 0, 0.0, alpha, impossible)
    statistic, dof = _row_chisquare(counts, probs)
    return _result(name, statistic.sum(), dof.sum(), alpha)


def check_homogeneity(first, second, alpha: float = ALPHA,
                      name: str = "two samples, same law") -> CheckResult:
    """Do two samples of independent multinomial rows share each row's law?

    Row ``i`` of ``first`` and of ``second`` (counts over the same cells) form
    a 2 x C contingency table; under the hypothesis each cell's expected count
    is its column total times the row's share (the test conditions on these
    margins, as every contingency test does). Small cells are pooled as in
    :func:`check_multinomial`, by the expected counts of the smaller sample,
    the same columns on both sides; rows' statistics and degrees of freedom
    add up. Use it to compare a sampler with another one (hmmlearn's, say)
    without knowing the law.
    """
    alpha = _check_alpha(alpha)
    first, second = _check_counts("first", first), _check_counts("second", second)
    if first.shape != second.shape:
        raise ValueError(f"first and second must have one shape, got {first.shape} and "
                         f"{second.shape}")
    n_first, n_second = first.sum(axis=1, keepdims=True), second.sum(axis=1, keepdims=True)
    share = n_first / np.maximum(n_first + n_second, 1)
    columns = first + second
    # Pool by the smaller side's expectations, so both sides' cells reach the rule.
    groups = _cell_groups(columns * np.minimum(share, 1.0 - share))
    first, columns = _group_sums(first, groups), _group_sums(columns, groups)
    second = columns - first
    statistic = _pearson(first, columns * share) + _pearson(second, columns * (1.0 - share))
    tested = (n_first[:, 0] > 0) & (n_second[:, 0] > 0)
    dof = np.where(tested, np.maximum((columns > 0).sum(axis=1) - 1, 0), 0)
    return _result(name, np.where(dof > 0, statistic, 0.0).sum(), dof.sum(), alpha)


# --------------------------------------------------------------------------- counts


def _as_paths(name: str, values, bound: int) -> np.ndarray:
    """``values`` as a (B, T) int64 array in ``[0, bound)``, -1 only past each sequence's end."""
    array = integer_array(name, values)
    if array.ndim not in (1, 2) or array.size == 0:
        raise ValueError(f"{name} must be a non-empty (B, T) or (T,) array of integers, got "
                         f"shape {array.shape}")
    array = np.atleast_2d(array)
    outside = (array < -1) | (array >= bound)
    if outside.any():
        b, t = np.argwhere(outside)[0]
        raise ValueError(f"{name}[{b}, {t}] = {array[b, t]} is outside [0, {bound}) "
                         "(-1 marks the steps past a sequence's end)")
    past_end = np.cumsum(array < 0, axis=1) > 0
    if np.any(past_end & (array >= 0)):
        b = int(np.argwhere(past_end & (array >= 0))[0, 0])
        raise ValueError(f"{name}[{b}] has a value after a -1: -1 only pads a sequence's end")
    return array.astype(np.int64)


def emission_counts(states, symbols, n_states: int, n_symbols: int) -> np.ndarray:
    """Counts (K, V): ``[k, v]`` = steps at which state ``k`` emitted symbol ``v``.

    ``states`` and ``symbols`` must pad the same steps with -1.
    """
    n_states, n_symbols = _table_sizes(n_states, n_symbols)
    states = _as_paths("states", states, n_states)
    symbols = _as_paths("symbols", symbols, n_symbols)
    if states.shape != symbols.shape:
        raise ValueError(f"states and symbols must have one shape, got {states.shape} and "
                         f"{symbols.shape}")
    present = states >= 0
    if np.any(present != (symbols >= 0)):
        b, t = np.argwhere(present != (symbols >= 0))[0]
        raise ValueError(f"states and symbols must pad the same steps with -1, but at [{b}, "
                         f"{t}] states holds {states[b, t]} and symbols {symbols[b, t]}")
    return pair_counts(states[present], symbols[present], n_states, n_symbols)


def transition_counts(states, n_states: int) -> np.ndarray:
    """Counts (K, K): ``[i, j]`` = steps from state ``i`` to ``j`` within a sequence."""
    n_states, _ = _table_sizes(n_states, n_states)
    states = _as_paths("states", states, n_states)
    before, after = states[:, :-1], states[:, 1:]
    present = (before >= 0) & (after >= 0)
    return pair_counts(before[present], after[present], n_states, n_states)


def _table_sizes(n_states, n_symbols) -> tuple[int, int]:
    """Validated ``K`` and ``V`` of a (K, V) table of counts that must fit in memory."""
    n_states, n_symbols = check_count("n_states", n_states), check_count("n_symbols", n_symbols)
    check_memory(8.0 * n_states * n_symbols, f"counts of n_states={n_states} x "
                 f"n_symbols={n_symbols}")
    return n_states, n_symbols


def path_probabilities(model, length: int) -> np.ndarray:
    """Exact law of the first ``length`` hidden states, shape (K**length,).

    Path :math:`(z_0, .., z_{L-1})` is entry ``numpy.ravel_multi_index(path,
    (K,) * L)``, the last state varying fastest. ``ValueError`` naming
    ``length`` if the table cannot fit in memory.
    """
    hmm, length = as_hmm(model), check_count("length", length)
    k = hmm.n_states
    check_memory(8.0 * size_power(k, length), f"length={length}: {power_text(k, length)} paths")
    probs = hmm.startprob
    for _ in range(length - 1):
        probs = (probs.reshape(-1, k)[:, :, None] * hmm.transmat).ravel()
    return probs


def _first_steps(name: str, paths: np.ndarray, length: int) -> np.ndarray:
    """The first ``length`` steps of the sequences that have them, (B', length)."""
    head = paths[:, :length]
    head = head[np.all(head >= 0, axis=1)] if head.shape[1] == length else head[:0]
    if head.shape[0] == 0:
        raise ValueError(f"length={length}: no sequence of {name} has {length} steps")
    return head


# --------------------------------------------------------------------------- checks


def check_emissions(model, states, symbols, alpha: float = ALPHA) -> CheckResult:
    """Symbols given the hidden path follow each state's emission row.

    Given the path, the symbols are independent, one draw per step from
    ``emissionprob[z_t]``: the counts of state ``k``'s symbols are
    multinomial given how often ``k`` was visited, whatever the chain did.
    """
    hmm = as_hmm(model)
    counts = emission_counts(states, symbols, hmm.n_states, hmm.n_symbols)
    return check_multinomial(counts, hmm.emissionprob, alpha, "emissions given states",
                             "emissions (row = state, cell = symbol)")


def check_transitions(model, states, alpha: float = ALPHA) -> CheckResult:
    """Transitions out of each state follow its row of the transition matrix.

    By the strong Markov property, the successors of the successive visits to
    state ``i`` are i.i.d. draws from ``transmat[i]``, independent of other
    rows: the per-row counts are multinomial given the row totals, in one
    long sequence as in many.
    """
    hmm = as_hmm(model)
    return check_multinomial(transition_counts(states, hmm.n_states), hmm.transmat, alpha,
                             "transitions given the row totals",
                             "transitions (row = from, cell = to)")


def check_paths(model, states, length: int = 1, alpha: float = ALPHA) -> CheckResult:
    """The first ``length`` states of independent sequences follow the chain jointly.

    One draw per sequence (those at least ``length`` long) from the exact law
    of :math:`(z_0, .., z_{L-1})`: ``startprob`` and ``length - 1``
    transitions at once. ``length=1`` tests the start distribution alone.
    """
    hmm = as_hmm(model)
    length = check_count("length", length)
    head = _first_steps("states", _as_paths("states", states, hmm.n_states), length)
    index = np.ravel_multi_index(tuple(head.T), (hmm.n_states,) * length)
    counts = np.bincount(index, minlength=hmm.n_states**length)
    return check_multinomial(counts, path_probabilities(hmm, length), alpha,
                             f"paths of the first {length} step(s)", "paths (cell = path)")


def check_step_pairs(model, states, alpha: float = ALPHA) -> CheckResult:
    """The pair :math:`(z_t, z_{t+1})` at every step ``t`` follows its exact law.

    Across independent sequences the pair at a fixed ``t`` is one draw per
    sequence (those longer than ``t + 1``) from
    :math:`P(z_t = i) A_{ij}`, :math:`P(z_t) = \\pi A^t`. Each step is one
    chi-square; the family is judged by Bonferroni, each step at ``alpha``
    over the number of steps with something to test, and the result is the
    worst step's.
    """
    hmm = as_hmm(model)
    alpha = _check_alpha(alpha)
    paths = _as_paths("states", states, hmm.n_states)
    k, n_steps = hmm.n_states, paths.shape[1] - 1
    if n_steps == 0:
        return CheckResult("state pairs at each step", 0.0, 0, 1.0, alpha, "one step only")
    check_memory(3 * 8.0 * n_steps * k * k, f"states of {n_steps + 1} steps x {k}**2 pairs")
    present = (paths[:, :-1] >= 0) & (paths[:, 1:] >= 0)
    flat = (np.arange(n_steps) * k * k + paths[:, :-1] * k + paths[:, 1:])[present]
    counts = np.bincount(flat, minlength=n_steps * k * k).reshape(n_steps, k * k)
    marginals = np.empty((n_steps, k))
    marginals[0] = hmm.startprob
    for t in range(1, n_steps):
        marginals[t] = marginals[t - 1] @ hmm.transmat
    probs = (marginals[:, :, None] * hmm.transmat).reshape(n_steps, k * k)
    impossible = _impossible(counts, probs, "pairs (row = step t, cell = i * K + j)")
    if impossible:
        return CheckResult("state pairs at each step", np.inf, 0, 0.0, alpha, impossible)
    statistic, dof = _row_chisquare(counts, probs)
    tested = np.flatnonzero(dof > 0)
    if tested.size == 0:
        return CheckResult("state pairs at each step", 0.0, 0, 1.0, alpha, "nothing to test")
    pvalues = chdtrc(dof[tested], statistic[tested])
    worst = int(np.argmin(pvalues))
    step = int(tested[worst])
    return CheckResult(f"state pairs at each step (worst t={step})", float(statistic[step]),
                       int(dof[step]), float(pvalues[worst]), alpha / tested.size,
                       f"Bonferroni over {tested.size} steps")


def check_words(model, symbols, length: int, alpha: float = ALPHA) -> CheckResult:
    """The first ``length`` symbols of independent sequences follow the model's word law.

    One word per sequence (those at least ``length`` long) against the exact
    probabilities of :func:`seqmodels.information.word_probabilities`. Needs
    no hidden states: it checks any sampler of symbols (a trained network's,
    say) against a model.
    """
    hmm = as_hmm(model)
    length = check_count("length", length)
    head = _first_steps("symbols", _as_paths("symbols", symbols, hmm.n_symbols), length)
    index = np.ravel_multi_index(tuple(head.T), (hmm.n_symbols,) * length)
    probs = word_probabilities(hmm, length)
    counts = np.bincount(index, minlength=probs.size)
    return check_multinomial(counts, probs, alpha, f"words of the first {length} symbol(s)",
                             "words (cell = word)")


def thinning_lag(transmat, correlation: float = 1e-4) -> int:
    """Smallest lag ``m`` with :math:`|\\lambda_2|^m \\le` ``correlation``.

    :math:`\\lambda_2` is the transition matrix's second-largest eigenvalue in
    modulus; states ``m`` steps apart are correlated at most about
    :math:`|\\lambda_2|^m`. ``ValueError`` for a periodic or reducible chain
    (:math:`|\\lambda_2| = 1`), whose steps never decorrelate, for a ``transmat``
    that is not a square row-stochastic matrix, or a ``correlation`` outside (0, 1).
    """
    transmat = check_probabilities("transmat", transmat, ndim=2)
    if transmat.shape[0] != transmat.shape[1]:
        raise ValueError(f"transmat must be square, got shape {transmat.shape}")
    correlation = check_real("correlation", correlation)
    if not 0.0 < correlation < 1.0:  # NaN fails too
        raise ValueError(f"correlation must be in (0, 1), got {correlation!r}")
    moduli = np.sort(np.abs(np.linalg.eigvals(transmat)))
    second = moduli[-2] if moduli.size > 1 else 0.0
    if second > 1.0 - 1e-9:
        raise ValueError(f"transmat has a second eigenvalue of modulus {second:.6g}: the chain "
                         "is periodic or reducible, so its steps never decorrelate")
    if second < 1e-12:
        return 1
    return max(1, int(np.ceil(np.log(correlation) / np.log(second))))


def check_long_run(model, states, alpha: float = ALPHA, correlation: float = 1e-4) -> CheckResult:
    """Long-run state frequencies against the stationary law (approximate).

    Keeps steps ``m, 2m, ..`` of every sequence, ``m =`` :func:`thinning_lag`:
    the first is within about ``correlation`` of stationary and kept steps are
    correlated at most about ``correlation``, which changes the chi-square's
    variance by a fraction of that order. This is the one check whose draws
    are only nearly independent; it suits one long sequence.
    """
    hmm = as_hmm(model)
    lag = thinning_lag(hmm.transmat, correlation)
    kept = _as_paths("states", states, hmm.n_states)[:, lag::lag]
    counts = np.bincount(kept[kept >= 0], minlength=hmm.n_states)
    return check_multinomial(counts, hmm.stationary_distribution(), alpha,
                             f"long-run frequencies (every {lag} steps)", "states")


def check_sample(model, states, symbols, alpha: float = ALPHA) -> list[CheckResult]:
    """Every exact check of a sample: emissions, transitions, start, state pairs per step.

    ``alpha`` is the level of the whole family: each of the four checks runs
    at ``alpha / 4`` (Bonferroni), so a correct sample fails with probability
    at most ``alpha``.
    """
    share = _check_alpha(alpha) / 4
    return [
        check_emissions(model, states, symbols, share),
        check_transitions(model, states, share),
        check_paths(model, states, 1, share),
        check_step_pairs(model, states, share),
    ]


def assert_sample_matches(model, states, symbols, alpha: float = ALPHA) -> None:
    """:func:`check_sample`, raising ``AssertionError`` that names every failed check."""
    assert_passed(*check_sample(model, states, symbols, alpha))


__all__ = [
    "ALPHA", "MIN_EXPECTED", "CheckResult", "assert_passed", "assert_sample_matches",
    "check_emissions", "check_homogeneity", "check_long_run", "check_multinomial",
    "check_paths", "check_sample", "check_step_pairs", "check_transitions", "check_words",
    "emission_counts", "path_probabilities", "thinning_lag", "transition_counts",
]
