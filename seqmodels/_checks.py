"""Validation where data enters the package.

Every public constructor and entry point checks its input here, so a user sees
a ``ValueError`` that names the argument and what was wrong, never an
``IndexError`` from deep inside NumPy or hmmlearn.
"""

from __future__ import annotations

import numbers

import numpy as np

#: What every random function accepts as ``seed``.
Seed = int | np.random.Generator | None

#: Tolerance on a probability vector's sum.
SUM_TOL = 1e-8


def readonly(array: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """Return a read-only copy of ``array`` as ``dtype`` (float64 unless told)."""
    out = np.array(array, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


def check_probabilities(name: str, values, ndim: int) -> np.ndarray:
    """Validate a probability vector (``ndim=1``) or row-stochastic matrix (``ndim=2``).

    Parameters
    ----------
    name : str
        The argument's name, used in error messages.
    values : array_like
        Shape ``(n,)`` or ``(n, m)``: finite, non-negative, each row summing to 1
        within ``SUM_TOL``.
    ndim : {1, 2}
        The expected rank.

    Returns
    -------
    numpy.ndarray
        A read-only float64 copy.

    Raises
    ------
    ValueError
        Naming ``name``, the offending row and what was found.
    """
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of numbers: {err}") from None
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    rows = array.reshape(-1, array.shape[-1])
    for i, row in enumerate(rows):
        where = f"{name}" if ndim == 1 else f"{name} row {i}"
        if not np.all(np.isfinite(row)):
            raise ValueError(f"{where} has a non-finite entry: {row.tolist()}")
        if np.any(row < 0):
            raise ValueError(f"{where} has a negative entry: {row.tolist()}")
        total = row.sum()
        if abs(total - 1.0) > SUM_TOL:
            raise ValueError(f"{where} sums to {float(total):.12g}, not 1: {row.tolist()}")
    return readonly(array)


def check_count(name: str, value, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise if it is not an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def check_real(name: str, value) -> float:
    """Return ``value`` as a float, or raise if it is not a real number.

    Bools are refused, as in :func:`check_count`. NaN and inf pass: the caller's
    range check (``0 <= p <= 1``, ``tol > 0`` ...) decides, with its own message.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    return float(value)


def as_generator(seed: Seed) -> np.random.Generator:
    """``numpy.random.default_rng(seed)``, with a ``ValueError`` naming ``seed`` if it is refused.

    ``seed`` is an int ``>= 0``, a ``numpy.random.Generator`` (used as is) or None
    (fresh entropy); anything else ``default_rng`` accepts works too.
    """
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise ValueError(
            f"seed must be a non-negative int, a numpy.random.Generator or None, got {seed!r}"
        ) from None


def as_symbol_batch(symbols, n_symbols: int, name: str = "symbols") -> tuple[np.ndarray, bool]:
    """Validate integer symbols and return them as a ``(B, T)`` int64 batch.

    Parameters
    ----------
    symbols : array_like of int
        Shape ``(T,)`` for one sequence or ``(B, T)`` for a batch, values in
        ``[0, n_symbols)``.
    n_symbols : int
        Size of the alphabet.
    name : str
        The argument's name, used in error messages.

    Returns
    -------
    batch : numpy.ndarray of int64, shape (B, T)
    single : bool
        True when the input was one ``(T,)`` sequence, so callers can return the
        same rank they were given.
    """
    try:
        array = np.asarray(symbols)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array: {err}") from None
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
        or array.dtype == bool
    ):
        raise ValueError(f"{name} must be integers, got dtype {array.dtype}")
    if array.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (T,) or (B, T), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains NaN or inf")
        if np.any(array != np.round(array)):
            raise ValueError(f"{name} must be integers, got non-integer values")
    # Range first, in the input's own dtype: casting 1e20 or a huge uint64 to
    # int64 would wrap and name a symbol the caller never passed.
    low, high = array.min(), array.max()
    if low < 0 or high >= n_symbols:
        bad = low if low < 0 else high
        raise ValueError(f"{name} has symbol {bad}, outside the allowed range [0, {n_symbols})")
    batch = np.asarray(array, dtype=np.int64)
    single = batch.ndim == 1
    return (batch[None, :] if single else batch), single
