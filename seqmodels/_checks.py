"""Validation where data enters the package.

Every public constructor and entry point checks its input here, so a user sees
a ``ValueError`` that names the argument and what was wrong, never an
``IndexError`` from deep inside NumPy or hmmlearn.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import zlib
from dataclasses import dataclass

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


#: dtype kinds that hold numbers: signed and unsigned integers, floats; object arrays
#: (Python numbers, None) are converted and refused if that fails.
_NUMBER_KINDS = "iufO"


def plain_array(name: str, values) -> np.ndarray:
    """``numpy.asarray(values)``, refusing masked arrays and ragged nesting by name."""
    _refuse_masked(values, name)
    try:
        return np.asarray(values)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array: {err}") from None


def float_array(name: str, values) -> np.ndarray:
    """``values`` as a float64 array; ``ValueError`` naming ``name`` unless they are numbers.

    Refused: masked arrays (a masked entry is a missing value), ragged nesting,
    bools (a mask or a flag, not a quantity), strings (even ``"0.5"``), complex
    numbers and anything NumPy cannot read as floats. NaN and inf pass: range
    checks are the caller's.
    """
    array = plain_array(name, values)
    if array.dtype.kind not in _NUMBER_KINDS:
        raise ValueError(f"{name} must be an array of numbers, got dtype {array.dtype}")
    try:
        return np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of numbers: {err}") from None


def integer_array(name: str, values) -> np.ndarray:
    """``values`` as an array of an integer dtype, or ``ValueError`` naming ``name``.

    Refused: masked arrays, ragged nesting, bools, floats (even 1.0: the caller
    asked for states or counts by index) and everything else that is not integers.
    """
    array = plain_array(name, values)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an array of integers, got dtype {array.dtype}")
    return array


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
    array = float_array(name, values)
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


def positive_real(name: str, value, allow_none: bool = False) -> float | None:
    """``value`` as a float if it is a positive finite number (or None when allowed)."""
    if value is None and allow_none:
        return None
    number = check_real(name, value)
    if not 0.0 < number < np.inf:  # NaN fails too
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return number


def non_negative_real(name: str, value) -> float:
    """``value`` as a float if it is a finite number ``>= 0``."""
    number = check_real(name, value)
    if not 0.0 <= number < np.inf:  # NaN fails too
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return number


def as_generator(seed: Seed) -> np.random.Generator:
    """``numpy.random.default_rng(seed)``, with a ``ValueError`` naming ``seed`` if it is refused.

    ``seed`` is an int ``>= 0``, a ``numpy.random.Generator`` (used as is) or None
    (fresh entropy); anything else ``default_rng`` accepts works too, except a
    bool (``True`` is no seed: usually an argument in the wrong place).
    """
    refused = ValueError(f"seed must be a non-negative int, a numpy.random.Generator or None, "
                         f"got {seed!r}")
    if isinstance(seed, (bool, np.bool_)):
        raise refused
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise refused from None


def _symbol_values(array: np.ndarray, n_symbols: int, name: str) -> np.ndarray:
    """Check that a non-empty array holds integer symbols in ``[0, n_symbols)``; as int64
    (a copy unless it is int64 already)."""
    if array.dtype.kind not in "iuf":  # bools are a mask, not symbols
        raise ValueError(f"{name} must be integers, got dtype {array.dtype}")
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
    if array.dtype != np.int64:  # a copy: int8 symbols take 8 times their size
        check_memory(8.0 * array.size, f"{name} of shape {array.shape} as int64")
    return np.asarray(array, dtype=np.int64)


def _refuse_masked(symbols, name: str) -> None:
    if isinstance(symbols, np.ma.MaskedArray):
        raise ValueError(f"{name} is a masked array; missing observations are not supported: "
                         "pass the observed sequences (a list of 1-D arrays may differ in length)")


def named_seed(seed: int, *keys: str | int) -> np.random.SeedSequence:
    """The child of root ``seed`` named by ``keys``: ``default_rng(named_seed(0, "em"))``.

    The stream depends only on the root seed and the names, not on which other
    streams were drawn or in what order, so adding a stage (or running stages
    on other processes, in any order) moves nothing else. Strings are keyed by
    their CRC-32, integers (``>= 0``) as they are.
    """
    spawn_key = tuple(zlib.crc32(key.encode()) if isinstance(key, str) else int(key)
                      for key in keys)
    return np.random.SeedSequence(seed, spawn_key=spawn_key)


def as_symbol_batch(symbols, n_symbols: int, name: str = "symbols") -> tuple[np.ndarray, bool]:
    """Validate integer symbols and return them as a ``(B, T)`` int64 batch.

    Parameters
    ----------
    symbols : array_like of int
        Shape ``(T,)`` for one sequence or ``(B, T)`` for a batch, values in
        ``[0, n_symbols)``. Sequences of different lengths go through
        :func:`as_sequences` instead.
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
    array = plain_array(name, symbols)
    if array.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (T,) or (B, T), got shape {array.shape}")
    batch = _symbol_values(array, n_symbols, name)
    single = batch.ndim == 1
    return (batch[None, :] if single else batch), single


#: The symbol stored past a sequence's end in a padded batch: a valid symbol, so
#: gathers stay in range; every pass stops at each sequence's length.
PAD_SYMBOL = 0


@dataclass(frozen=True)
class SymbolBatch:
    """Validated sequences of possibly different lengths, padded to one rectangle.

    Attributes
    ----------
    symbols : numpy.ndarray of int64, shape (B, T)
        ``T`` is the longest length; steps ``t >= lengths[b]`` hold
        :data:`PAD_SYMBOL` and mean nothing.
    lengths : numpy.ndarray of int64, shape (B,)
        Each sequence's length, all ``>= 1``.
    single : bool
        The input was one ``(T,)`` sequence: callers drop the batch axis.
    """

    symbols: np.ndarray
    lengths: np.ndarray
    single: bool = False

    @property
    def ragged(self) -> bool:
        """True when some sequence is shorter than ``T`` (so outputs carry padding)."""
        return bool(self.lengths.min() < self.symbols.shape[1])

    def mask(self) -> np.ndarray:
        """``(B, T)`` bool: True at the steps that exist (``t < lengths[b]``)."""
        return np.arange(self.symbols.shape[1]) < self.lengths[:, None]

    def fill_padding(self, per_step: np.ndarray, fill) -> np.ndarray:
        """Set the padded steps of a ``(B, T, ...)`` array to ``fill`` in place; return it."""
        if self.ragged:
            per_step[~self.mask()] = fill
        return per_step

    def sequences(self) -> list[np.ndarray]:
        """The sequences as a list of 1-D int64 arrays, padding dropped."""
        return [row[:n] for row, n in zip(self.symbols, self.lengths, strict=True)]


def check_lengths(lengths, total: int | None = None, name: str = "lengths") -> np.ndarray:
    """Validate sequence lengths: 1-D integers ``>= 1`` (summing to ``total`` when given)."""
    array = plain_array(name, lengths)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of integers, got shape "
                         f"{array.shape}")
    if not (np.issubdtype(array.dtype, np.integer)
            or (np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array))
                and np.all(array == np.round(array)))):
        raise ValueError(f"{name} must be integers, got {array.tolist()[:10]}")
    if array.min() < 1:
        raise ValueError(f"{name} must all be at least 1, got {array.min()} at index "
                         f"{int(np.argmin(array))}")
    array = array.astype(np.int64)
    if total is not None and int(array.sum()) != total:
        raise ValueError(f"{name} sum to {int(array.sum())}, but symbols holds {total} entries")
    return array


def _padded(rows: list[np.ndarray], lengths: np.ndarray, name: str) -> np.ndarray:
    """The rows in one (B, T) batch, ``T`` the longest, after checking that it fits: one
    long sequence among many short ones makes a batch far larger than the data."""
    check_memory(8.0 * len(rows) * lengths.max(),
                 f"{name}: {len(rows)} sequences padded to the longest, {lengths.max()} steps")
    batch = np.full((len(rows), int(lengths.max())), PAD_SYMBOL, dtype=np.int64)
    for b, row in enumerate(rows):
        batch[b, : row.size] = row
    return batch


def as_sequences(symbols, n_symbols: int, name: str = "symbols",
                 lengths=None) -> SymbolBatch:
    """Validate sequences given in any of the package's three layouts.

    Parameters
    ----------
    symbols : array_like of int
        One of: a ``(T,)`` sequence; a ``(B, T)`` batch; a list of 1-D arrays of
        different lengths; or, with ``lengths``, hmmlearn's concatenation ``X`` of
        shape ``(N,)`` or ``(N, 1)``. Values in ``[0, n_symbols)``.
    n_symbols : int
        Size of the alphabet.
    name : str
        The argument's name, used in error messages.
    lengths : array_like of int, optional
        hmmlearn's ``lengths``: positive, summing to ``N``.

    Returns
    -------
    SymbolBatch

    Raises
    ------
    ValueError
        Naming ``name`` or ``lengths``: a masked array, empty input, values that
        are not integers in range, lengths that do not add up, ``lengths`` with a
        ``(B, T)`` batch, and a ``(N, 1)`` array without ``lengths`` (hmmlearn's
        layout far more often than ``N`` one-step sequences).
    """
    _refuse_masked(symbols, name)
    if lengths is not None:
        return _from_hmmlearn_layout(symbols, n_symbols, name, lengths)
    try:
        array = np.asarray(symbols)
    except ValueError:  # a list of sequences of different lengths
        return _from_list(symbols, n_symbols, name)
    if array.dtype == object and isinstance(symbols, (list, tuple)):
        return _from_list(symbols, n_symbols, name)
    if array.ndim == 2 and array.shape[1] == 1 and array.shape[0] > 1:
        raise ValueError(
            f"{name} has shape {array.shape}: that is hmmlearn's layout (sequences "
            "concatenated in one column), so pass their lengths as lengths=...; for "
            f"{array.shape[0]} one-step sequences pass lengths=numpy.ones({array.shape[0]})"
        )
    batch, single = as_symbol_batch(array, n_symbols, name)
    return SymbolBatch(batch, np.full(batch.shape[0], batch.shape[1], dtype=np.int64), single)


def _from_hmmlearn_layout(symbols, n_symbols: int, name: str, lengths) -> SymbolBatch:
    array = plain_array(name, symbols)
    if not (array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)):
        raise ValueError(
            f"lengths is for hmmlearn's layout, {name} of shape (N,) or (N, 1); {name} has "
            f"shape {array.shape}: drop lengths for a (B, T) batch"
        )
    flat = _symbol_values(array.reshape(-1), n_symbols, name)
    lengths = check_lengths(lengths, flat.size)
    rows = np.split(flat, np.cumsum(lengths)[:-1])
    return SymbolBatch(_padded(rows, lengths, name), lengths)


def _from_list(symbols, n_symbols: int, name: str) -> SymbolBatch:
    if len(symbols) == 0:
        raise ValueError(f"{name} must not be empty")
    rows = []
    for b, row in enumerate(symbols):
        where = f"{name}[{b}]"
        array = plain_array(where, row)
        if array.ndim != 1:
            raise ValueError(f"{where} must be a 1-D sequence, got shape {array.shape}")
        rows.append(_symbol_values(array, n_symbols, where))
    lengths = np.array([row.size for row in rows], dtype=np.int64)
    return SymbolBatch(_padded(rows, lengths, name), lengths)


# --------------------------------------------------------------------------- memory


def available_memory() -> int | None:
    """Bytes of memory a new allocation can use now (``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def format_bytes(n_bytes: float) -> str:
    """``n_bytes`` in binary units, three significant figures: ``"7.28 TiB"``."""
    value = float(n_bytes)
    if not math.isfinite(value):
        return "more than 10**308 bytes"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.3g} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def size_power(base: int, exponent: int) -> float:
    """``base ** exponent`` as a float for sizing arrays, ``inf`` where a float overflows
    (``8.0 ** 10**12`` raises ``OverflowError``; no such array fits anyway)."""
    if base <= 1:
        return float(base)
    return float(base) ** exponent if exponent * math.log(base) < 700 else math.inf


def power_text(base: int, exponent: int) -> str:
    """``base ** exponent`` for a message: ``"1.33e+36"``, or ``"8**1000000"`` past floats."""
    value = size_power(base, exponent)
    return f"{value:.3g}" if math.isfinite(value) else f"{base}**{exponent}"


def memory_capacity(bytes_each: float) -> float:
    """How many items of ``bytes_each`` bytes the memory available now holds (inf if unknown)."""
    available = available_memory()
    return math.inf if available is None else available / bytes_each


def check_memory(n_bytes: float, what: str) -> None:
    """Refuse, before anything is allocated, a request whose arrays cannot fit in memory.

    Parameters
    ----------
    n_bytes : float
        What the request's arrays take (a float: sizes from user input may
        overflow int64 when multiplied).
    what : str
        The request, naming its arguments (``"n_sequences=10**6 x length=10**6"``).

    Raises
    ------
    ValueError
        ``"{what} needs 7.28 TiB of memory; 22.1 GiB is available"`` when
        ``n_bytes`` exceeds the memory available now.
    """
    available = available_memory()
    if available is not None and n_bytes > available:
        raise ValueError(f"{what} needs {format_bytes(n_bytes)} of memory; "
                         f"{format_bytes(available)} is available")


# --------------------------------------------------------------------------- equality


def _hash_key(value):
    """A hashable stand-in for a field: an array by dtype, shape and bytes (NaN, -0.0 canonical)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc":
            value = np.where(np.isnan(value), np.nan, value + 0.0)  # one NaN, no -0.0
        return value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes()
    return value


def _fields_equal(first, second) -> bool:
    if isinstance(first, np.ndarray) or isinstance(second, np.ndarray):
        first, second = np.asarray(first), np.asarray(second)
        return (first.shape == second.shape and first.dtype.kind == second.dtype.kind
                and bool(np.array_equal(first, second, equal_nan=first.dtype.kind in "fc")))
    return bool(first == second)


def by_value(cls):
    """Class decorator: a frozen dataclass holding arrays compares and hashes by value.

    Apply above ``@dataclass(frozen=True)``. Two instances are equal when they
    are of the same class and every field is equal (arrays: same shape and
    ``array_equal``, NaN equal to NaN); the hash is built from the same fields,
    arrays by their bytes, so equal objects hash alike. Fields declared with
    ``compare=False`` (derived caches) are left out of both.
    """
    names = tuple(field.name for field in dataclasses.fields(cls) if field.compare)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(_fields_equal(getattr(self, name), getattr(other, name)) for name in names)

    def __hash__(self):
        return hash((cls.__qualname__, *(_hash_key(getattr(self, name)) for name in names)))

    cls.__eq__, cls.__hash__ = __eq__, __hash__
    return cls
