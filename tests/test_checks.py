"""The validation layer: the three sequence layouts and the memory guard."""

import numpy as np
import pytest

from seqmodels._checks import (
    PAD_SYMBOL,
    as_sequences,
    as_symbol_batch,
    check_lengths,
    check_memory,
    format_bytes,
)


def test_a_rectangular_batch_and_a_single_sequence():
    batch = as_sequences(np.array([[0, 1, 2], [2, 1, 0]]), 3)
    assert batch.symbols.shape == (2, 3) and not batch.ragged and not batch.single
    np.testing.assert_array_equal(batch.lengths, [3, 3])
    single = as_sequences([0, 1, 1], 2)
    assert single.single and single.symbols.shape == (1, 3)


def test_a_list_of_different_lengths_is_padded():
    batch = as_sequences([[0, 1, 2], [1], np.array([2, 2])], 3)
    assert batch.ragged
    np.testing.assert_array_equal(batch.lengths, [3, 1, 2])
    np.testing.assert_array_equal(batch.symbols, [[0, 1, 2], [1, PAD_SYMBOL, PAD_SYMBOL],
                                                  [2, 2, PAD_SYMBOL]])
    np.testing.assert_array_equal(batch.mask(), [[1, 1, 1], [1, 0, 0], [1, 1, 0]])
    assert [s.tolist() for s in batch.sequences()] == [[0, 1, 2], [1], [2, 2]]
    values = np.ones((3, 3, 2))
    batch.fill_padding(values, np.nan)
    assert np.isnan(values[1, 1:]).all() and not np.isnan(values[0]).any()


@pytest.mark.parametrize("X", [np.array([0, 1, 2, 1, 0]), np.array([[0], [1], [2], [1], [0]])])
def test_hmmlearn_layout_with_lengths(X):
    batch = as_sequences(X, 3, lengths=[2, 3])
    np.testing.assert_array_equal(batch.symbols, [[0, 1, 0], [2, 1, 0]])
    np.testing.assert_array_equal(batch.lengths, [2, 3])


def test_one_column_without_lengths_is_refused_naming_lengths():
    with pytest.raises(ValueError, match="lengths"):
        as_sequences(np.zeros((5, 1), dtype=int), 2)
    assert as_sequences(np.zeros((1, 1), dtype=int), 2).symbols.shape == (1, 1)


@pytest.mark.parametrize("lengths, message", [
    ([2, 2], "sum to 4, but symbols holds 5"),
    ([0, 5], "at least 1"),
    ([-1, 6], "at least 1"),
    ([2.5, 2.5], "integers"),
    ([[5]], "1-D"),
    ([], "non-empty"),
])
def test_bad_lengths_are_refused(lengths, message):
    with pytest.raises(ValueError, match=message):
        as_sequences(np.arange(5) % 2, 2, lengths=lengths)


def test_lengths_with_a_2d_batch_is_refused():
    with pytest.raises(ValueError, match="drop lengths"):
        as_sequences(np.zeros((2, 3), dtype=int), 2, lengths=[3, 3])


@pytest.mark.parametrize("symbols, message", [
    ([[0, 1], [1.5]], r"symbols\[1\] must be integers"),
    ([[0, 1], [4]], r"symbols\[1\] has symbol 4"),
    ([[0, 1], []], r"symbols\[1\] must not be empty"),
    ([[0, 1], [[0]], [1, 1, 1]], r"symbols\[1\] must be a 1-D"),
    ([], "must not be empty"),
    (np.ma.masked_array([0, 1], mask=[0, 1]), "masked"),
])
def test_bad_ragged_input_names_the_sequence(symbols, message):
    with pytest.raises(ValueError, match=message):
        as_sequences(symbols, 3)


def test_masked_arrays_are_refused_by_the_rectangular_parser_too():
    with pytest.raises(ValueError, match="masked"):
        as_symbol_batch(np.ma.masked_array([0, 1], mask=[0, 1]), 2)


def test_check_lengths_alone():
    np.testing.assert_array_equal(check_lengths(np.array([1.0, 3.0])), [1, 3])


def test_memory_guard_refuses_what_cannot_fit():
    check_memory(1024, "a small request")
    with pytest.raises(ValueError, match=r"n_sequences=10\*\*6 needs 7.28 TiB of memory"):
        check_memory(8.0 * 10**12, "n_sequences=10**6")
    assert format_bytes(1536) == "1.5 KiB"
