"""Unit tests of the public API of ``seqmodels.dice`` and of its bad-input errors.

The statistical checks of the sampler live in ``test_sampling.py``.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest

from seqmodels._io import save_npz
from seqmodels.dice import (
    PRESETS,
    DiceHMM,
    DiceSample,
    Die,
    casino,
    loaded_dice,
    sticky_three_dice,
    three_dice,
)

# --------------------------------------------------------------------------- Die


def test_die_defaults_to_fair_and_names_itself():
    die = Die(6)
    assert die.faces == 6 and die.name == "D6"
    np.testing.assert_allclose(die.probs, np.full(6, 1 / 6))
    assert not die.probs.flags.writeable


def test_die_with_uneven_probs_is_named_loaded():
    assert Die(2, [0.3, 0.7]).name == "loaded D2"
    assert Die(2, [0.3, 0.7], name="coin").name == "coin"


def test_worked_example_tampered_die():
    die = Die.loaded(6, face=1, p=0.5)
    np.testing.assert_allclose(die.probs, [0.5, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert die.name == "loaded D6"


def test_loaded_die_puts_p_on_its_face():
    np.testing.assert_allclose(Die.loaded(4, face=3, p=1.0).probs, [0, 0, 1, 0])
    np.testing.assert_allclose(Die.loaded(4, face=2, p=0.0).probs, [1 / 3, 0, 1 / 3, 1 / 3])
    np.testing.assert_allclose(Die.loaded(1, face=1, p=1.0).probs, [1.0])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Die(0), "faces must be at least 1"),
        (lambda: Die(-2), "faces must be at least 1"),
        (lambda: Die(2.5), "faces must be an integer"),
        (lambda: Die(3, [0.5, 0.5]), "must have 3 entries, got 2"),
        (lambda: Die(2, [1.5, -0.5]), "probs of a D2 has a negative entry"),
        (lambda: Die(2, [np.nan, 1.0]), "probs of a D2 has a non-finite entry"),
        (lambda: Die(2, [0.5, 0.6]), "probs of a D2 sums to 1.1, not 1"),
        (lambda: Die.loaded(0, face=1, p=0.5), "faces must be at least 1"),
        (lambda: Die.loaded(6, face=7, p=0.5), "face must be in 1..6, got 7"),
        (lambda: Die.loaded(6, face=0, p=0.5), "face must be at least 1"),
        (lambda: Die.loaded(6, face=1, p=1.5), r"p must be a probability in \[0, 1\], got 1.5"),
        (lambda: Die.loaded(6, face=1, p=-0.1), r"p must be a probability in \[0, 1\]"),
        (lambda: Die.loaded(6, face=1, p=np.nan), r"p must be a probability in \[0, 1\]"),
        (lambda: Die.loaded(1, face=1, p=0.5), "D1 shows its only face with probability 1"),
        (lambda: Die.loaded(6, face=1, p="a"), "p must be a real number, got 'a'"),
        (lambda: Die.loaded(6, face=1, p=None), "p must be a real number, got None"),
        (lambda: Die.loaded(6, face=1, p=[0.5]), r"p must be a real number, got \[0.5\]"),
        (lambda: Die.loaded(6, face=1, p=True), "p must be a real number, got True"),
    ],
)
def test_bad_die_raises_naming_the_problem(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --------------------------------------------------------------------------- DiceHMM


def test_dice_hmm_properties():
    spec = loaded_dice()
    assert spec.n_states == 4 and spec.n_symbols == 8
    assert spec.state_names == ["D4", "D6", "D8", "tampered D6"]
    emission = spec.emissionprob
    assert emission.shape == (4, 8) and not emission.flags.writeable
    for k, die in enumerate(spec.dice):
        np.testing.assert_array_equal(emission[k, : die.faces], die.probs)
        assert np.all(emission[k, die.faces:] == 0)
    np.testing.assert_allclose(spec.startprob, np.full(4, 0.25))


def test_attributes_are_readable_and_read_only():
    spec = DiceHMM([Die(4), Die(6)], [[0.9, 0.1], [0.2, 0.8]], [0.3, 0.7])
    assert isinstance(spec.dice, tuple)
    np.testing.assert_array_equal(spec.transmat, [[0.9, 0.1], [0.2, 0.8]])
    np.testing.assert_array_equal(spec.startprob, [0.3, 0.7])
    with pytest.raises(ValueError, match="read-only"):
        spec.transmat[0, 0] = 0.5


def test_stationary_distribution_solves_p_a_equals_p():
    spec = DiceHMM([Die(4), Die(6)], [[0.9, 0.1], [0.2, 0.8]])
    p = spec.stationary_distribution()
    np.testing.assert_allclose(p, [2 / 3, 1 / 3])
    np.testing.assert_allclose(p @ spec.transmat, p)


def test_to_hmm_carries_the_same_matrices():
    spec = casino()
    hmm = spec.to_hmm()
    np.testing.assert_array_equal(hmm.startprob, spec.startprob)
    np.testing.assert_array_equal(hmm.transmat, spec.transmat)
    np.testing.assert_array_equal(hmm.emissionprob, spec.emissionprob)


def test_presets_have_the_issue_parameters():
    assert set(PRESETS) == {"three_dice", "sticky_three_dice", "casino", "loaded_dice"}
    np.testing.assert_allclose(three_dice().transmat, np.full((3, 3), 1 / 3))
    third = 1 / 3
    np.testing.assert_allclose(
        sticky_three_dice().transmat, [[third] * 3, [0, 0.9, 0.1], [third] * 3]
    )
    spec = casino()
    np.testing.assert_allclose(spec.transmat, [[0.95, 0.05], [0.10, 0.90]])
    np.testing.assert_allclose(spec.emissionprob[1], [0.1] * 5 + [0.5])
    spec = loaded_dice()
    np.testing.assert_allclose(np.diag(spec.transmat), 0.8)
    np.testing.assert_allclose(spec.transmat[0, 1:], 0.2 / 3)
    np.testing.assert_allclose(spec.emissionprob[3, :6], [0.5] + [0.1] * 5)
    for make in PRESETS.values():
        assert isinstance(make(), DiceHMM)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dice": []}, "dice must be a non-empty sequence of Die"),
        ({"dice": [4, 6]}, "dice must be a non-empty sequence of Die"),
        ({"dice": None}, "dice must be a non-empty sequence of Die"),
        ({"dice": Die(6)}, "dice must be a non-empty sequence of Die"),
        ({"transmat": [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]},
         r"transmat must be square with one row per die \(2 x 2\), got shape \(2, 3\)"),
        ({"transmat": np.eye(3)}, r"one row per die \(2 x 2\), got shape \(3, 3\)"),
        ({"transmat": [0.5, 0.5]}, "transmat must have 2 dimension"),
        ({"transmat": [[0.5, 0.5], [0.7, 0.2]]}, "transmat row 1 sums to 0.9, not 1"),
        ({"transmat": [[1.2, -0.2], [0.5, 0.5]]}, "transmat row 0 has a negative entry"),
        ({"transmat": [[np.nan, 1.0], [0.5, 0.5]]}, "transmat row 0 has a non-finite entry"),
        ({"transmat": [["a", "b"], ["c", "d"]]}, "transmat must be an array of numbers"),
        ({"startprob": [0.2, 0.2]}, "startprob sums to 0.4, not 1"),
        ({"startprob": [1.0, 0.0, 0.0]}, r"startprob must have one entry per die \(2\)"),
        ({"startprob": [-1.0, 2.0]}, "startprob has a negative entry"),
    ],
)
def test_bad_dice_hmm_raises_naming_the_problem(kwargs, message):
    arguments = {"dice": [Die(4), Die(6)], "transmat": [[0.5, 0.5], [0.5, 0.5]], **kwargs}
    with pytest.raises(ValueError, match=message):
        DiceHMM(**arguments)


@pytest.mark.parametrize(
    ("n_sequences", "length", "message"),
    [
        (0, 5, "n_sequences must be at least 1, got 0"),
        (-3, 5, "n_sequences must be at least 1"),
        (2.0, 5, "n_sequences must be an integer, got 2.0"),
        ("2", 5, "n_sequences must be an integer"),
        (True, 5, "n_sequences must be an integer"),
        (2, 0, "length must be at least 1, got 0"),
        (2, 1.5, "length must be an integer, got 1.5"),
        (2, None, "length must be an integer, got None"),
    ],
)
def test_bad_sample_size_raises_naming_the_argument(n_sequences, length, message):
    with pytest.raises(ValueError, match=message):
        loaded_dice().sample(n_sequences, length, seed=0)


def test_numpy_integer_sizes_are_accepted():
    sample = loaded_dice().sample(np.int64(2), np.int32(3), seed=0)
    assert (sample.n_sequences, sample.length) == (2, 3)


# --------------------------------------------------------------------------- DiceSample


@pytest.fixture(scope="module")
def sample() -> DiceSample:
    return loaded_dice().sample(10, 7, seed=0)


def test_sample_arrays_shapes_and_symbols(sample):
    assert sample.dice.shape == sample.faces.shape == (10, 7)
    assert sample.dice.dtype == sample.faces.dtype == np.int64
    assert (sample.n_sequences, sample.length) == (10, 7)
    np.testing.assert_array_equal(sample.symbols, sample.faces - 1)
    assert sample.symbols.min() >= 0 and sample.symbols.max() < sample.spec.n_symbols
    assert not sample.faces.flags.writeable


def test_to_hmmlearn_shapes(sample):
    X, lengths = sample.to_hmmlearn()
    assert X.shape == (70, 1) and np.issubdtype(X.dtype, np.integer)
    np.testing.assert_array_equal(lengths, np.full(10, 7))
    np.testing.assert_array_equal(X[7:14, 0], sample.symbols[1])


def test_to_frame_is_tidy(sample):
    frame = sample.to_frame()
    assert list(frame.columns) == ["sequence", "t", "die", "die_name", "face"]
    assert len(frame) == 70
    row = frame.iloc[7 * 3 + 5]
    assert (row.sequence, row.t) == (3, 5)
    assert row.die == sample.dice[3, 5] and row.face == sample.faces[3, 5]
    assert row.die_name == sample.spec.state_names[sample.dice[3, 5]]
    names = frame.groupby("die")["die_name"].unique()
    assert all(len(value) == 1 for value in names)
    assert isinstance(frame, pd.DataFrame)


def sequence_rows(part: DiceSample, whole: DiceSample) -> list[int]:
    """Index in ``whole`` of each of ``part``'s sequences (paths are distinct here)."""
    def key(sample: DiceSample, i: int) -> bytes:
        return sample.dice[i].tobytes() + sample.faces[i].tobytes()

    rows = {key(whole, i): i for i in range(whole.n_sequences)}
    return [rows[key(part, i)] for i in range(part.n_sequences)]


def test_split_by_whole_sequences_disjoint_and_complete():
    whole = loaded_dice().sample(20, 30, seed=1)
    train, test = whole.split(0.25, seed=2)
    assert (train.n_sequences, test.n_sequences) == (15, 5)
    assert train.length == test.length == 30
    train_rows, test_rows = sequence_rows(train, whole), sequence_rows(test, whole)
    assert sorted(train_rows + test_rows) == list(range(20))
    assert train.spec is whole.spec
    again = whole.split(0.25, seed=2)[1]
    np.testing.assert_array_equal(again.faces, test.faces)
    other = whole.split(0.25, seed=3)[1]
    assert sequence_rows(other, whole) != test_rows


@pytest.mark.parametrize(
    ("fraction", "message"),
    [(0.0, r"test_fraction must be in \(0, 1\)"), (1.0, r"test_fraction must be in \(0, 1\)"),
     (0.01, "leaves an empty train or test part"), (0.99, "leaves an empty train or test part"),
     ("0.2", "test_fraction must be a real number"), (None, "test_fraction must be a real number")],
)
def test_bad_split_raises(sample, fraction, message):
    with pytest.raises(ValueError, match=message):
        sample.split(fraction, seed=0)


def test_split_with_a_bad_seed_raises_value_error(sample):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        sample.split(0.5, seed="x")


def test_save_load_round_trip(tmp_path):
    original = casino().sample(3, 9, seed=5)
    path = original.save(tmp_path / "casino")
    assert str(path).endswith(".npz")
    loaded = DiceSample.load(path)
    np.testing.assert_array_equal(loaded.dice, original.dice)
    np.testing.assert_array_equal(loaded.faces, original.faces)
    assert loaded.spec.state_names == original.spec.state_names
    np.testing.assert_array_equal(loaded.spec.transmat, original.spec.transmat)
    np.testing.assert_array_equal(loaded.spec.startprob, original.spec.startprob)
    np.testing.assert_array_equal(loaded.spec.emissionprob, original.spec.emissionprob)


def write_corrupt_files(folder) -> dict[str, tuple[object, str]]:
    """Files DiceSample.load must refuse, each with the message it must give."""
    garbage = folder / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    plain = folder / "plain.npz"
    np.savez(plain, dice=np.zeros((2, 2), dtype=int))
    other_kind = save_npz(folder / "hmm", "HMM", {"transmat": np.eye(2)}, {})
    missing = save_npz(folder / "missing", "DiceSample", {"dice": np.zeros((1, 1))}, {})
    good = casino().sample(2, 3, seed=0)
    arrays = {"dice": good.dice, "faces": good.faces + 10, "transmat": good.spec.transmat,
              "startprob": good.spec.startprob, "emissionprob": good.spec.emissionprob}
    meta = {"die_names": good.spec.state_names, "die_faces": [6, 6]}
    bad_faces = save_npz(folder / "bad_faces", "DiceSample", arrays, meta)
    no_meta_keys = save_npz(folder / "no_keys", "DiceSample", {**arrays, "faces": good.faces}, {})
    truncated = folder / "truncated.npz"
    truncated.write_bytes(good.save(folder / "good").read_bytes()[:200])
    text_zip = folder / "text.npz"
    with zipfile.ZipFile(text_zip, "w") as archive:
        archive.writestr("__metadata__.npy", "hello")
    return {
        "missing file": (folder / "nope.npz", "no such file"),
        "not a zip": (garbage, "not an .npz archive"),
        "truncated": (truncated, "not an .npz archive|not a readable"),
        "zip of text": (text_zip, "no seqmodels metadata|not a readable .npz"),
        "plain npz": (plain, "no seqmodels metadata"),
        "other kind": (other_kind, "holds a 'HMM', not a DiceSample"),
        "missing arrays": (missing, r"corrupt DiceSample: missing arrays \['faces'"),
        "faces out of range": (bad_faces, r"corrupt DiceSample: faces must lie in 1..6"),
        "no metadata keys": (no_meta_keys, "corrupt DiceSample"),
    }


CORRUPT_CASES = [
    "missing file", "not a zip", "truncated", "zip of text", "plain npz", "other kind",
    "missing arrays", "faces out of range", "no metadata keys",
]


@pytest.mark.parametrize("case", CORRUPT_CASES)
def test_load_refuses_corrupt_or_foreign_files(tmp_path, case):
    path, message = write_corrupt_files(tmp_path)[case]
    with pytest.raises(ValueError, match=message):
        DiceSample.load(path)


@pytest.mark.parametrize(
    ("dice", "faces", "message"),
    [
        (np.zeros(3, dtype=int), np.ones(3, dtype=int), "non-empty"),
        (np.zeros((2, 2), dtype=int), np.ones((2, 3), dtype=int), "of one shape"),
        (np.zeros((1, 2)), np.ones((1, 2)), "must be an array of integers"),
        (np.full((1, 2), 4), np.ones((1, 2), dtype=int), r"dice must lie in \[0, 4\)"),
        (np.zeros((1, 2), dtype=int), np.full((1, 2), 9), "faces must lie in 1..8"),
        (np.zeros((1, 2), dtype=int), np.zeros((1, 2), dtype=int), "faces must lie in 1..8"),
    ],
)
def test_bad_dice_sample_raises(dice, faces, message):
    with pytest.raises(ValueError, match=message):
        DiceSample(dice=dice, faces=faces, spec=loaded_dice())


def test_dice_sample_refuses_a_face_its_die_lacks_and_a_foreign_spec():
    dice, faces = np.array([[2, 0]]), np.array([[8, 6]])  # a 6 on the D4
    with pytest.raises(ValueError, match=r"faces\[0, 1\] = 6 .* die 0 \(D4\), which has only 4"):
        DiceSample(dice=dice, faces=faces, spec=loaded_dice())
    with pytest.raises(ValueError, match="spec must be a DiceHMM, got HMM"):
        DiceSample(dice=dice, faces=faces, spec=loaded_dice().to_hmm())


def test_load_refuses_a_path_that_is_not_a_path():
    with pytest.raises(ValueError, match=r"path must be a str or os\.PathLike, got None"):
        DiceSample.load(None)


# ------------------------------------------------------------- equality and ragged samples


def test_dice_and_chains_compare_and_hash_by_value():
    assert Die(6) == Die(6) and hash(Die(6)) == hash(Die(6))
    assert Die(6) != Die.loaded(6, face=1, p=0.5) and Die(6) != Die(6, name="fair")
    assert loaded_dice() == loaded_dice() and hash(loaded_dice()) == hash(loaded_dice())
    assert loaded_dice() != casino() and len({casino(), casino(), three_dice()}) == 2
    assert loaded_dice().to_hmm() == loaded_dice().to_hmm()
    assert casino().sample(3, 5, seed=1) == casino().sample(3, 5, seed=1)
    assert casino().sample(3, 5, seed=1) != casino().sample(3, 5, seed=2)


@pytest.fixture(scope="module")
def ragged() -> DiceSample:
    return loaded_dice().sample(4, [6, 1, 9, 3], seed=3)


def test_a_sample_with_a_length_per_sequence(ragged):
    np.testing.assert_array_equal(ragged.lengths, [6, 1, 9, 3])
    assert ragged.length == 9 and ragged.ragged and not loaded_dice().sample(2, 3).ragged
    thrown = np.arange(9) < ragged.lengths[:, None]
    assert (ragged.dice[~thrown] == -1).all() and (ragged.faces[~thrown] == 0).all()
    assert (ragged.faces[thrown] >= 1).all() and (ragged.dice[thrown] >= 0).all()
    assert [len(s) for s in ragged.sequences()] == [6, 1, 9, 3]
    assert len(ragged.to_frame()) == 19
    truth = loaded_dice().to_hmm()
    assert truth.log_likelihood(ragged.sequences()).shape == (4,)


def test_hmmlearn_layout_round_trips_a_ragged_sample(ragged):
    X, Z, lengths = ragged.to_hmmlearn(with_states=True)
    assert X.shape == (19, 1) and Z.shape == (19,)
    np.testing.assert_array_equal(lengths, [6, 1, 9, 3])
    back = DiceSample.from_hmmlearn(X, Z, lengths, spec=ragged.spec)
    assert back == ragged
    truth = ragged.spec.to_hmm()
    np.testing.assert_allclose(truth.log_likelihood(X, lengths),
                               truth.log_likelihood(ragged.sequences()))
    X2, lengths2 = ragged.to_hmmlearn()
    np.testing.assert_array_equal(lengths2, lengths)
    np.testing.assert_array_equal(X2, X)
    # hmmlearn's own sample (X, Z) reads as one sequence.
    X, Z = truth.to_hmmlearn().sample(50, random_state=np.random.RandomState(0))
    single = DiceSample.from_hmmlearn(X, Z, spec=ragged.spec)
    assert single.n_sequences == 1 and single.length == 50
    with pytest.raises(ValueError, match="lengths sum to 40, but symbols holds 50"):
        DiceSample.from_hmmlearn(X, Z, [20, 20], spec=ragged.spec)
    with pytest.raises(ValueError, match=r"X must have shape \(N, 1\)"):
        DiceSample.from_hmmlearn(X[:, 0], Z, spec=ragged.spec)


def test_a_ragged_sample_splits_saves_and_loads(ragged, tmp_path):
    train, test = ragged.split(0.5, seed=4)
    assert sorted([*train.lengths, *test.lengths]) == [1, 3, 6, 9]
    for part in (train, test):
        assert part.length == part.lengths.max()
    assert DiceSample.load(ragged.save(tmp_path / "ragged")) == ragged


def test_bad_lengths_of_a_sample_are_refused():
    dice, faces = np.zeros((2, 3), dtype=int), np.ones((2, 3), dtype=int)
    for lengths, message in (([3, 4], r"one length in 1..3 per sequence \(2\)"),
                             ([3], r"one length in 1..3 per sequence \(2\)"),
                             ([0, 3], "at least 1")):
        with pytest.raises(ValueError, match=message):
            DiceSample(dice=dice, faces=faces, spec=loaded_dice(), lengths=lengths)
    with pytest.raises(ValueError, match=r"length must be an int or one length per sequence"):
        loaded_dice().sample(3, [2, 2])
