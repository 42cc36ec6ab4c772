"""The process catalogue: published definitions, one sampler, one PRESETS, bad parameters."""

from __future__ import annotations

import numpy as np
import pytest

from seqmodels import dice
from seqmodels.processes import (
    PRESETS,
    LabelledProcess,
    ProcessSample,
    as_hmm,
    even,
    golden_mean,
    mess3,
    original_beliefs,
    original_state_names,
    random_hmm,
    rrxor,
    state_map,
)

PROCESSES = ["golden_mean", "even", "mess3", "rrxor", "random_hmm"]


def test_mess3_matrices_are_the_published_ones():
    """T[A] at x = 0.05, alpha = 0.85, as in Shai et al.'s notebook; B and C by symmetry."""
    T = mess3().T
    expected_a = [[0.765, 0.00375, 0.00375], [0.0425, 0.0675, 0.00375], [0.0425, 0.00375, 0.0675]]
    np.testing.assert_allclose(T[0], expected_a, rtol=1e-12)
    order = np.array([1, 2, 0])  # relabelling A -> B -> C -> A maps T[A] to T[B]
    np.testing.assert_allclose(T[1][np.ix_(order, order)], T[0], rtol=1e-12)
    np.testing.assert_allclose(T[2][np.ix_(order[order], order[order])], T[0], rtol=1e-12)


def test_mess3_keeps_its_three_states_and_its_parameters_move_it():
    process = mess3(x=0.1, alpha=0.6)
    assert process.n_states == 3 and process.state_names == ["A", "B", "C"]
    np.testing.assert_allclose(process.to_hmm().transmat[0], [0.8, 0.1, 0.1])
    np.testing.assert_allclose(process.to_hmm().emissionprob[0], [0.6, 0.2, 0.2])
    assert process.name == "mess3(x=0.1, alpha=0.6)"


def test_golden_mean_never_shows_two_zeros_in_a_row():
    symbols = golden_mean().sample(50, 200, seed=1).symbols
    assert not np.any((symbols[:, :-1] == 0) & (symbols[:, 1:] == 0))
    assert np.any(symbols == 0) and np.any(symbols == 1)


def _runs_of_ones(row: np.ndarray) -> list[int]:
    """Lengths of the blocks of 1s that begin and end inside ``row`` (bounded by 0s)."""
    gaps = np.diff(np.flatnonzero(row == 0)) - 1
    return gaps[gaps > 0].tolist()


def test_even_process_blocks_of_ones_have_even_length():
    sample = even().sample(50, 200, seed=2)
    runs = [n for row in sample.symbols for n in _runs_of_ones(row)]
    assert len(runs) > 100 and all(n % 2 == 0 for n in runs)
    assert even().state_names == ["A/0", "A/1", "B"]


def test_rrxor_every_third_symbol_is_the_xor_of_the_two_before():
    sample = rrxor().sample(40, 99, seed=3)
    for row, original in zip(sample.symbols, sample.original_states, strict=True):
        # The triple boundary: the step at which the process re-enters S.
        phase = int(np.flatnonzero(original == 0)[0]) % 3
        triples = row[phase + 1:][: (len(row) - phase - 1) // 3 * 3].reshape(-1, 3)
        np.testing.assert_array_equal(triples[:, 2], triples[:, 0] ^ triples[:, 1])


def test_random_hmm_is_reproducible_and_factorised():
    first, again = random_hmm(4, 5, seed=7), random_hmm(4, 5, seed=7)
    np.testing.assert_array_equal(first.T, again.T)
    assert first.n_states == 4 and first.n_symbols == 5
    assert not np.array_equal(first.T, random_hmm(4, 5, seed=8).T)
    hmm = first.to_hmm()
    np.testing.assert_allclose(hmm.startprob @ hmm.transmat, hmm.startprob, atol=1e-12)


@pytest.mark.parametrize("name", PROCESSES)
def test_sampling_is_the_hmm_sampler(name):
    process = PRESETS[name]()
    sample = process.sample(6, 30, seed=11)
    states, symbols = process.to_hmm().sample(6, 30, seed=11)
    np.testing.assert_array_equal(sample.states, states)
    np.testing.assert_array_equal(sample.symbols, symbols)
    np.testing.assert_array_equal(sample.original_states, process.state_map[states])
    np.testing.assert_array_equal(state_map(process), process.state_map)
    assert sample.n_sequences == 6 and sample.length == 30
    assert [len(row) for row in sample.sequences()] == [30] * 6
    assert len(process.state_names) == process.n_states


@pytest.mark.parametrize("name", sorted(dice.PRESETS))
def test_dice_presets_keep_their_names_and_outputs(name):
    model = PRESETS[name]()
    assert PRESETS[name] is dice.PRESETS[name] and isinstance(model, dice.DiceHMM)
    ours, theirs = model.sample(5, 20, seed=4), dice.PRESETS[name]().sample(5, 20, seed=4)
    np.testing.assert_array_equal(ours.faces, theirs.faces)
    np.testing.assert_array_equal(ours.states, theirs.dice)
    np.testing.assert_array_equal(state_map(model), np.arange(model.n_states))
    assert model.state_names == dice.PRESETS[name]().state_names


def test_the_package_re_exports_the_processes_and_one_presets():
    import seqmodels

    assert seqmodels.PRESETS is PRESETS
    assert seqmodels.mess3 is mess3 and seqmodels.LabelledProcess is LabelledProcess
    assert set(dice.PRESETS) < set(PRESETS)


def test_the_comparison_config_accepts_every_preset():
    from seqmodels.compare import ComparisonConfig

    for name in PRESETS:
        assert ComparisonConfig(preset=name).preset == name
    with pytest.raises(ValueError, match=r"preset must be one of .*'mess3'"):
        ComparisonConfig(preset="mess4")


@pytest.mark.parametrize("name", ["even", "rrxor", "mess3", "casino"])
def test_beliefs_over_the_original_states_for_any_preset(name):
    model = PRESETS[name]()
    hmm = as_hmm(model)
    _, symbols = hmm.sample(3, 20, seed=9)
    beliefs = hmm.filter(symbols).beliefs
    merged = original_beliefs(model, beliefs)
    names = original_state_names(model)
    assert merged.shape == (3, 20, len(names))
    np.testing.assert_allclose(merged.sum(axis=-1), 1.0, atol=1e-12)
    for k in range(len(names)):  # each original state gets its HMM states' beliefs
        np.testing.assert_allclose(merged[..., k],
                                   beliefs[..., state_map(model) == k].sum(axis=-1))
    if name == "even":
        assert names == ["A", "B"]


def test_as_hmm_takes_hmms_and_presets_and_names_anything_else():
    hmm = mess3().to_hmm()
    assert as_hmm(hmm) is hmm and as_hmm(mess3()).n_states == 3
    assert as_hmm(dice.casino()).n_states == 2
    with pytest.raises(ValueError, match="model must be an HMM or have a to_hmm"):
        as_hmm("mess3")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("make", "message"), [
    (lambda: mess3(alpha=1.0), r"alpha must be in \(0, 1\), got 1.0"),
    (lambda: mess3(alpha=0.0), r"alpha must be in \(0, 1\)"),
    (lambda: mess3(alpha=float("nan")), r"alpha must be in \(0, 1\)"),
    (lambda: mess3(x=0.0), r"x must be in \(0, 0.5\], got 0.0"),
    (lambda: mess3(x=0.6), r"x must be in \(0, 0.5\]"),
    (lambda: mess3(x="0.1"), "x must be a real number"),
    (lambda: golden_mean(p=1.0), r"p must be in \(0, 1\)"),
    (lambda: even(p=-0.5), r"p must be in \(0, 1\)"),
    (lambda: random_hmm(n_states=0), "n_states must be at least 1, got 0"),
    (lambda: random_hmm(n_symbols=0), "n_symbols must be at least 1"),
    (lambda: random_hmm(n_states=2.5), "n_states must be an integer"),
    (lambda: random_hmm(concentration=0.0), "concentration must be positive and finite"),
    (lambda: random_hmm(concentration=np.inf), "concentration must be positive and finite"),
    (lambda: random_hmm(seed=-1), "seed must be a non-negative int"),
])
def test_bad_preset_parameters_are_refused_naming_them(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_process_names_each_original_state():
    with pytest.raises(ValueError, match="original_state_names must name the 2 states of T"):
        LabelledProcess("even", even().T, ("A",))
    with pytest.raises(ValueError, match="T from state 0 sums to"):
        LabelledProcess("bad", np.ones((2, 2, 2)))


def test_process_samples_refuse_inconsistent_arrays():
    process = golden_mean()
    good = process.sample(2, 5, seed=0)
    with pytest.raises(ValueError, match="non-empty \\(B, T\\) arrays of one shape"):
        ProcessSample(good.states[:, :3], good.symbols, process)
    with pytest.raises(ValueError, match=r"states\[0, 0\] = 2 is outside \[0, 2\)"):
        ProcessSample(np.full((2, 5), 2), good.symbols, process)
    # State A is entered only on symbol 1 (see golden_mean): a 0 there is impossible.
    with pytest.raises(ValueError, match=r"symbols\[0, 0\] = 0 cannot be emitted by state 0 \(A\)"):
        ProcessSample(np.zeros((2, 5), dtype=int), np.zeros((2, 5), dtype=int), process)
    with pytest.raises(ValueError, match=r"lengths must hold one length in 1\.\.5"):
        ProcessSample(good.states, good.symbols, process, lengths=[5, 6])


def test_a_sample_with_lengths_pads_past_each_end():
    process = golden_mean()
    full = process.sample(2, 6, seed=1)
    short = ProcessSample(full.states, full.symbols, process, lengths=[6, 3])
    assert short.symbols[1, 3:].tolist() == [-1, -1, -1]
    assert short.original_states[1, 3:].tolist() == [-1, -1, -1]
    assert [len(row) for row in short.sequences()] == [6, 3]


def test_processes_samples_and_baselines_compare_and_hash_by_value():
    from seqmodels.compare import IIDBaseline, MarkovBaseline
    from seqmodels.processes import even, mess3

    assert mess3() == mess3() and hash(mess3()) == hash(mess3())
    assert mess3() != mess3(alpha=0.8) and even() != mess3()
    assert even().sample(3, 5, seed=1) == even().sample(3, 5, seed=1)
    assert even().sample(3, 5, seed=1) != even().sample(3, 5, seed=2)
    symbols = np.array([[0, 1, 1, 0]])
    assert IIDBaseline.fit(symbols, 2) == IIDBaseline.fit(symbols, 2)
    assert len({MarkovBaseline.fit(symbols, 2), MarkovBaseline.fit(symbols, 2)}) == 1
