"""Statistical checks of the dice sampler (``DiceHMM.sample`` -> ``hmm.sample_chain``).

Significance level
------------------
Every test rejects at ``ALPHA = 1e-3``. There are about 60 such tests, so for a
correct sampler and a fresh set of seeds the chance that any one fails is at
most about 6 % (Bonferroni); the seeds are fixed, so the outcome is
deterministic. A real bug (a wrong row, an off-by-one at a chunk boundary)
gives p-values far below 1e-10 at these sample sizes. Tests that check many
time steps at once divide ``ALPHA`` by their number of steps.

Both sampler paths
------------------
``sample_chain`` steps ``B >= 256`` sequences through time side by side (the
*plain* path) but cuts fewer, long sequences into coupled chunks (the *chunked*
path). Every statistic is checked on both; ``assert_path`` guards that the
chosen shapes really take the intended path.

Autocorrelation
---------------
Steps of one sequence are dependent, so pooled die counts are not multinomial.
The tests only use statistics that are exact multinomials, through the public
checks of :mod:`seqmodels.testing` (which argue the same points):

- faces given the hidden path are independent draws from each die;
- the successors of die ``i`` are i.i.d. draws from ``transmat[i]`` (strong
  Markov property), so per-row transition counts are multinomial given the
  row total, and rows are independent of each other;
- first steps and whole short paths: one draw per independent sequence;
- long-run frequencies: on the plain path the last step of each of ``B``
  independent sequences (its law is ``startprob @ transmat**(T-1)``, within
  1e-12 of stationary at ``T = 200``); on the chunked path one long sequence
  thinned at a lag ``m`` with ``|lambda_2|**m <= 1e-4`` (``lambda_2`` the
  chain's second eigenvalue), so the kept steps are independent to within a
  correlation of 1e-4, which changes the chi-square's variance by < 0.1 %.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from scipy import stats

from seqmodels.dice import PRESETS, DiceHMM, loaded_dice, three_dice
from seqmodels.hmm.sampling import _chunk_count
from seqmodels.testing import (
    MIN_EXPECTED,
    assert_passed,
    check_emissions,
    check_homogeneity,
    check_multinomial,
    check_paths,
    check_step_pairs,
    check_transitions,
    emission_counts,
    thinning_lag,
    transition_counts,
)

ALPHA = 1e-3

# (n_sequences, length) of the two big samples per preset.
PATHS = {"plain": (512, 200), "chunked": (1, 100_000)}


def assert_path(n_sequences: int, length: int, path: str) -> None:
    """Fail if these shapes would not take ``path`` in the sampler."""
    chunks = _chunk_count(n_sequences, max(length - 1, 1))
    assert (chunks > 1) == (path == "chunked"), (n_sequences, length, chunks)


@cache
def big_sample(preset: str, path: str):
    n_sequences, length = PATHS[path]
    assert_path(n_sequences, length, path)
    return PRESETS[preset]().sample(n_sequences, length, seed=sum(map(ord, preset + path)))


def collect(model: DiceHMM, n_sequences: int, length: int, total: int, seed: int) -> np.ndarray:
    """``total`` independent hidden paths (total, length) from calls of ``n_sequences`` each."""
    rng = np.random.default_rng(seed)
    calls = -(-total // n_sequences)
    paths = [model.sample(n_sequences, length, rng).dice for _ in range(calls)]
    return np.concatenate(paths)[:total]


def long_run_states(preset: str, path: str) -> np.ndarray:
    """Independent draws from (about) the stationary law; see the module docstring."""
    sample = big_sample(preset, path)
    if path == "plain":
        return sample.dice[:, -1]
    lag = thinning_lag(sample.spec.transmat)
    return sample.dice[0, ::lag]


# --------------------------------------------------------------------------- goodness of fit

presets = pytest.mark.parametrize("preset", sorted(PRESETS))
paths = pytest.mark.parametrize("path", sorted(PATHS))


@presets
@paths
def test_faces_given_die_follow_each_die(preset, path):
    sample = big_sample(preset, path)
    spec = sample.spec
    assert_passed(check_emissions(spec, sample.dice, sample.symbols, ALPHA))


@presets
@paths
def test_transition_counts_follow_each_row(preset, path):
    sample = big_sample(preset, path)
    assert_passed(check_transitions(sample.spec, sample.dice, ALPHA))


@presets
@paths
def test_long_run_frequencies_are_stationary(preset, path):
    spec = PRESETS[preset]()
    states = long_run_states(preset, path)
    counts = np.bincount(states, minlength=spec.n_states)
    assert_passed(check_multinomial(counts, spec.stationary_distribution(), ALPHA))


@presets
@pytest.mark.parametrize("n_sequences", [4000, 100], ids=["plain", "chunked"])
def test_whole_short_paths_follow_the_chain(preset, n_sequences):
    """(z_0, z_1, z_2): first step vs startprob and both transitions, jointly."""
    spec = PRESETS[preset]()
    assert_path(n_sequences, 3, "plain" if n_sequences >= 256 else "chunked")
    dice = collect(spec, n_sequences, 3, total=6000, seed=n_sequences)
    assert_passed(check_paths(spec, dice, 3, ALPHA))


@pytest.mark.parametrize(
    ("n_sequences", "length"), [(4000, 1), (1, 1), (4000, 2), (1, 2), (1, 3)],
)
def test_edge_shapes_follow_the_chain(n_sequences, length):
    spec = loaded_dice()
    dice = collect(spec, n_sequences, length, total=6000, seed=length)
    assert dice.shape == (6000, length)
    assert_passed(check_paths(spec, dice, length, ALPHA))


@pytest.mark.parametrize("path", ["plain", "chunked"])
def test_every_step_pair_follows_the_chain(path):
    """Pairs (z_t, z_{t+1}) at each t, across partial and unused chunks at the end."""
    spec = loaded_dice()
    n_sequences, length = (4000, 14) if path == "plain" else (200, 14)
    assert_path(n_sequences, length, path)
    dice = collect(spec, n_sequences, length, total=4000, seed=7)
    result = check_step_pairs(spec, dice, ALPHA)  # Bonferroni over the 13 steps
    assert_passed(result)
    assert result.alpha == ALPHA / (length - 1)


@paths
@pytest.mark.parametrize(("preset", "die", "face"), [("loaded_dice", 3, 1), ("casino", 1, 6)])
def test_loaded_face_inside_binomial_interval(path, preset, die, face):
    sample = big_sample(preset, path)
    thrown = sample.faces[sample.dice == die]
    low, high = stats.binom.interval(1 - ALPHA, thrown.size, 0.5)
    assert low <= np.count_nonzero(thrown == face) <= high


# --------------------------------------------------------------------------- impossible events


@paths
def test_sticky_never_goes_from_d6_to_d4(path):
    dice = big_sample("sticky_three_dice", path).dice
    assert np.count_nonzero((dice[:, :-1] == 1) & (dice[:, 1:] == 0)) == 0
    assert np.count_nonzero((dice[:, :-1] == 1) & (dice[:, 1:] == 1)) > 0


@presets
@paths
def test_no_face_above_the_die(preset, path):
    sample = big_sample(preset, path)
    face_counts = np.array([die.faces for die in sample.spec.dice])
    assert np.all(sample.faces <= face_counts[sample.dice])
    assert np.all(sample.faces >= 1)


class _ConstantUniforms(np.random.Generator):
    """A Generator whose uniforms are all one value: the sampler's extreme inputs."""

    def __init__(self, value: float):
        super().__init__(np.random.PCG64(0))
        self.value = value

    def random(self, size=None, dtype=np.float64, out=None):
        return np.full(size, self.value)


@presets
@pytest.mark.parametrize("n_sequences", [300, 2])
def test_extreme_uniforms_draw_only_possible_outcomes(preset, n_sequences):
    """u -> 1 picks each row's last positive entry, u = 0 its first: never a zero entry.

    A rounding shortfall in a CDF (a fair D6's sums to 1 - 1e-16) once let
    u -> 1 draw face 8 on a D6.
    """
    spec = PRESETS[preset]()
    top = spec.sample(n_sequences, 20, seed=_ConstantUniforms(np.nextafter(1.0, 0.0)))
    bottom = spec.sample(n_sequences, 20, seed=_ConstantUniforms(0.0))
    for sample, index in ((top, -1), (bottom, 0)):  # last / first positive entry
        first = np.flatnonzero(spec.startprob)[index]
        assert np.all(sample.dice[:, 0] == first)
        for t in range(1, 20):
            expected = [np.flatnonzero(spec.transmat[k])[index] for k in sample.dice[:, t - 1]]
            assert np.array_equal(sample.dice[:, t], expected)
        expected_faces = [
            np.flatnonzero(spec.emissionprob[k])[index] + 1 for k in sample.dice.ravel()
        ]
        assert np.array_equal(sample.faces.ravel(), expected_faces)


@pytest.mark.parametrize("startprob", [[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])
@pytest.mark.parametrize("n_sequences", [1000, 3])
def test_zero_probability_start_states_never_start(startprob, n_sequences):
    spec = DiceHMM(three_dice().dice, three_dice().transmat, startprob)
    first = collect(spec, n_sequences, 5, total=1000, seed=1)[:, 0]
    counts = np.bincount(first, minlength=3)
    assert np.all(counts[np.asarray(startprob) == 0] == 0)
    assert_passed(check_multinomial(counts, spec.startprob, ALPHA))


# --------------------------------------------------------------------------- seeds and independence


@pytest.mark.parametrize(("n_sequences", "length"), [(300, 50), (2, 5000), (1, 1)])
def test_same_seed_same_sample_and_different_seeds_differ(n_sequences, length):
    spec = loaded_dice()
    first = spec.sample(n_sequences, length, seed=42)
    again = spec.sample(n_sequences, length, seed=42)
    from_generator = spec.sample(n_sequences, length, seed=np.random.default_rng(42))
    for other in (again, from_generator):
        assert np.array_equal(first.dice, other.dice)
        assert np.array_equal(first.faces, other.faces)
    if n_sequences * length > 1:
        different = spec.sample(n_sequences, length, seed=43)
        assert not np.array_equal(first.faces, different.faces)


@pytest.mark.parametrize("seed", ["42", 1.5, -1])
def test_a_bad_seed_raises_value_error_naming_it(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative int, a numpy"):
        loaded_dice().sample(2, 3, seed=seed)


def test_a_shared_generator_advances_between_calls():
    rng = np.random.default_rng(0)
    spec = loaded_dice()
    first, second = spec.sample(300, 50, rng), spec.sample(300, 50, rng)
    assert not np.array_equal(first.faces, second.faces)


@paths
@pytest.mark.parametrize("what", ["dice", "faces"])
def test_sequences_in_a_batch_are_independent(path, what):
    """Contingency table of two sequences' values at the same (thinned) time steps."""
    spec = loaded_dice()
    n_sequences, length = (512, 900) if path == "plain" else (2, 250_000)
    assert_path(n_sequences, length, path)
    sample = spec.sample(n_sequences, length, seed=11)
    values = getattr(sample, what)
    lag = thinning_lag(spec.transmat)
    steps = values[:, ::lag]
    left, right = steps[0::2].ravel(), steps[1::2].ravel()
    table = np.zeros((values.max() + 1, values.max() + 1))
    np.add.at(table, (left, right), 1)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    result = stats.chi2_contingency(table, correction=False)
    assert result.expected_freq.min() >= MIN_EXPECTED
    assert result.pvalue > ALPHA


# --------------------------------------------------------------------------- against hmmlearn


@presets
def test_hmmlearn_agrees_on_faces_and_transitions_given_die(preset):
    """One long sequence each; per-row two-sample tests are exact despite autocorrelation."""
    spec = PRESETS[preset]()
    faces, dice = spec.to_hmm().to_hmmlearn().sample(20_000, random_state=np.random.RandomState(3))
    theirs_dice, theirs_faces = dice[None, :], faces.T + 1
    ours = spec.sample(1, 20_000, seed=3)
    k, v = spec.n_states, spec.n_symbols
    assert_passed(
        check_homogeneity(emission_counts(ours.dice, ours.symbols, k, v),
                          emission_counts(theirs_dice, theirs_faces - 1, k, v), ALPHA),
        check_homogeneity(transition_counts(ours.dice, k), transition_counts(theirs_dice, k),
                          ALPHA),
    )


def test_hmmlearn_agrees_on_the_last_step_of_short_sequences():
    """Independent short sequences: last transition pair and last (die, face)."""
    spec, length, n = loaded_dice(), 3, 1500
    model, random_state = spec.to_hmm().to_hmmlearn(), np.random.RandomState(4)
    draws = [model.sample(length, random_state=random_state) for _ in range(n)]
    theirs_faces = np.stack([x[:, 0] for x, _ in draws]) + 1
    theirs_dice = np.stack([z for _, z in draws])
    # A Generator or RandomState passed on advances; an int would repeat one sequence.
    assert len({tuple(z) for z in theirs_dice}) > 1
    ours = spec.sample(n, length, seed=4)
    k, v = spec.n_states, spec.n_symbols
    pair_ours = transition_counts(ours.dice[:, -2:], k).ravel()
    pair_theirs = transition_counts(theirs_dice[:, -2:], k).ravel()
    last_ours = emission_counts(ours.dice[:, -1], ours.symbols[:, -1], k, v).ravel()
    last_theirs = emission_counts(theirs_dice[:, -1], theirs_faces[:, -1] - 1, k, v).ravel()
    assert_passed(check_homogeneity(pair_ours, pair_theirs, ALPHA),
                  check_homogeneity(last_ours, last_theirs, ALPHA))


@pytest.mark.parametrize("n_rows, n_columns", [(1, 1), (2, 6), (4, 8), (50, 50)])
def test_lookup_table_draws_equal_comparison_draws(n_rows, n_columns):
    """The bucketed table is exact: same draw as ``#{j : cdf_j <= u}`` at every edge."""
    from seqmodels.hmm.sampling import (
        _bucket_count,
        _count_at_or_below,
        _cumulative,
        _draw_categorical_rows,
    )

    rng = np.random.default_rng(7)
    probs = rng.dirichlet(np.ones(n_columns), size=n_rows)
    probs[:, 1:][:, rng.random(n_columns - 1) < 0.3] = 0.0  # zero-probability columns
    cdf = _cumulative(probs / probs.sum(axis=1, keepdims=True))
    n_buckets = _bucket_count(n_rows, 10**6)
    steps = cdf.ravel()
    uniforms = np.concatenate([
        rng.random(10_000),
        np.arange(n_buckets) / n_buckets,                      # bucket starts
        np.nextafter(np.arange(1, n_buckets + 1) / n_buckets, 0),  # just below bucket ends
        steps, np.nextafter(steps, 0),                         # at and just below CDF steps
    ])
    uniforms = uniforms[(uniforms >= 0) & (uniforms < 1)]
    rows = rng.integers(0, n_rows, uniforms.size)
    np.testing.assert_array_equal(
        _draw_categorical_rows(cdf, rows, uniforms), _count_at_or_below(cdf, rows, uniforms)
    )
