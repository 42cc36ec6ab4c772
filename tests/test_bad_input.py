"""Bad input to the public API: every one refused, fast, with a ValueError naming the argument.

Each :class:`Target` is one argument of one public entry point (every name
exported by ``seqmodels`` and its public modules, and the flags of the two
command-line tools through their ``main(argv)``), with a Hypothesis strategy
of values that are *invalid for that argument* while every other argument is
valid. Each strategy says in its comments why its values are invalid (the
documented contract they break), so a refusal is always the right answer.

For every drawn value the call must raise ``ValueError`` (a CLI: exit with
argparse's status 2) whose message matches the target's ``names`` pattern (the
argument or flag), within :data:`TIME_LIMIT` seconds (a hang is cut by an alarm
and fails). Returning anything is a silent result and fails; any other
exception propagates and fails. Huge sizes must be refused by the memory guard
(the message says how much memory they need) before anything is allocated.

Examples are derandomized (fixed per target) and bounded; the last test checks
that at least :data:`MIN_EXAMPLES` examples ran in all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import re
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqmodels
from seqmodels import (
    HMM,
    RNN,
    DiceHMM,
    DiceSample,
    Die,
    ElmanRNN,
    LabelledProcess,
    ProcessSample,
    align_states,
    casino,
    even,
    fit_counts,
    fit_em,
    golden_mean,
    information,
    mess3,
    processes,
    random_hmm,
    sample_chain,
    stationary_distribution,
    testing,
)
from seqmodels._checks import as_sequences
from seqmodels.compare import (
    ComparisonConfig,
    ComparisonResult,
    IIDBaseline,
    MarkovBaseline,
    process_pool,
    registry,
    run_comparison,
    run_on_samples,
    write_report,
)
from seqmodels.hmm import em_step, limit_threads, window_init
from seqmodels.sweep import (
    GridCell,
    SweepGrid,
    dask_engine,
    load_results,
    local_engine,
    run_cell,
    run_sweep,
)

ROOT = Path(__file__).resolve().parents[1]

#: Fewest examples the whole file must run.
MIN_EXAMPLES = 300
#: Examples per target (fewer when a target's strategy has fewer distinct values).
EXAMPLES_PER_TARGET = 8
#: Seconds one example may take: a refusal is immediate, so this only catches work
#: that was started (a huge request attempted) or a hang.
TIME_LIMIT = 5.0

#: Examples run per target, filled as the targets run.
EXAMPLES_RUN: Counter[str] = Counter()


def load_cli(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_cli", ROOT / f"experiments/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COMPARE_CLI, SWEEP_CLI = load_cli("compare"), load_cli("sweep")

# --------------------------------------------------------------------------- valid fixtures

TRUTH = seqmodels.loaded_dice().to_hmm()  # K = 4 states, V = 8 symbols
DICE = casino()  # K = 2 dice, V = 6 faces
SAMPLE = DICE.sample(4, 6, seed=0)
GOLDEN = golden_mean()
SYMBOLS = np.array([[0, 1, 2, 3, 4], [7, 6, 5, 4, 3]])  # valid for TRUTH (V = 8)
STATES = np.array([[0, 1, 2, 3, 0], [1, 1, 2, 2, 3]])  # valid for TRUTH (K = 4)
NET = RNN(3, 4, 3, seed=0)  # V = 3
ELMAN = ElmanRNN(3, 4, 3, seed=0)
NET_SYMBOLS = np.array([[0, 1, 2, 1], [2, 2, 0, 1], [1, 0, 0, 2]])
CONFIG = ComparisonConfig.quick()
GOLDEN_SAMPLE = GOLDEN.sample(12, 6, seed=0)
GRID = SweepGrid(n_train=(25,), seed=(0,), settings=ComparisonConfig.quick())
#: A ComparisonResult without contents: write_report must refuse a bad folder
#: before it reads (renders) anything.
EMPTY_RESULT = ComparisonResult(*[None] * len(dataclasses.fields(ComparisonResult)))


# --------------------------------------------------------------------------- strategies
#
# Each strategy draws values that break the argument's documented contract.

#: Sizes no machine here can hold: at least 10**12 elements of 8 bytes (8 TB),
#: and past int64 too (a size must not wrap around when multiplied).
HUGE = st.one_of(st.integers(10**12, 10**18), st.just(2**70))


def masked(values) -> np.ma.MaskedArray:
    """``values`` with the first entry masked: a masked entry is a missing value, which
    the package does not take (refused everywhere, never silently unmasked)."""
    array = np.asarray(values)
    mask = np.zeros(array.shape, dtype=bool)
    mask.flat[0] = True
    return np.ma.masked_array(array, mask=mask)


def not_numbers(none_ok: bool = False) -> st.SearchStrategy:
    """Values that are no number at all: strings, containers, objects, and None unless the
    argument documents None as a choice."""
    values = [st.text(max_size=4), st.just([1]), st.just({"a": 1}), st.just(object()),
              st.just(np.array([2, 3]))]
    return st.one_of(*values, *([] if none_ok else [st.none()]))


def bad_counts(minimum: int = 1, none_ok: bool = False, huge: bool = False) -> st.SearchStrategy:
    """Invalid for an integer argument ``>= minimum``: integers below it (Python and
    NumPy), bools (True is not a count), floats (the argument takes ints; 2.5, nan
    and inf have no meaning as a size, and 3.0 is refused by the same rule), and
    non-numbers. With ``huge``: sizes whose arrays cannot fit in memory."""
    below = st.integers(max_value=minimum - 1)
    parts = [below, below.filter(lambda v: v > -2**63).map(np.int64), st.booleans(),
             st.floats(allow_nan=True, allow_infinity=True), not_numbers(none_ok)]
    if huge:  # weighted: the memory guard is what this argument must show
        parts = [HUGE, HUGE, *parts]
    return st.one_of(*parts)


def bad_reals(low: float = 0.0, high: float = np.inf, low_ok: bool = False,
              high_ok: bool = False, none_ok: bool = False) -> st.SearchStrategy:
    """Invalid for a real argument in the interval from ``low`` to ``high`` (ends
    included when ``*_ok``): NaN, numbers outside it, bools, non-numbers."""
    outside_low = st.floats(max_value=low, allow_nan=False, allow_infinity=True,
                            exclude_max=low_ok)
    parts = [st.just(np.nan), outside_low, st.booleans(), not_numbers(none_ok)]
    if high < np.inf or not high_ok:
        parts.append(st.floats(min_value=high, exclude_min=high_ok, allow_nan=False,
                               allow_infinity=True))
    return st.one_of(*parts)


def bad_seeds() -> st.SearchStrategy:
    """Not an int >= 0, a Generator or None: negative ints, floats, bools (True is no
    seed), strings, mappings, objects."""
    return st.one_of(st.integers(max_value=-1), st.floats(), st.booleans(), st.text(max_size=3),
                     st.just({"seed": 1}), st.just(object()))


def _uniform(*shape: int) -> np.ndarray:
    return np.full(shape, 1.0 / shape[-1])


def bad_probabilities(n: int, rows: int | None = None, none_ok: bool = False,
                      free_size: bool = False) -> st.SearchStrategy:
    """Invalid for a probability vector of ``n`` entries (``rows=None``) or a
    row-stochastic ``(rows, n)`` matrix: another shape (unless ``free_size``: the
    argument sets ``n``, as emissionprob sets the alphabet), another rank, empty, a
    NaN or inf or negative entry, a row whose sum is off 1 by far more than the 1e-8
    tolerance, strings, ragged rows, masked entries, bools (a one-hot bool row sums
    to 1 but is a mask, not probabilities)."""
    shape = (n,) if rows is None else (rows, n)
    valid = _uniform(*shape)
    other_size = st.integers(1, 6).filter(lambda m: m != n)

    def with_entry(value: float) -> np.ndarray:
        array = valid.copy()
        array.flat[0] = value
        return array

    def negative(_) -> np.ndarray:  # rows still sum to 1
        array = np.zeros(shape)
        array[..., 0], array[..., -1] = 2.0, -1.0
        if n == 1:
            array[..., 0] = -1.0
        return array

    def bool_rows(_) -> np.ndarray:
        array = np.zeros(shape, dtype=bool)
        array[..., 0] = True
        return array

    parts = [
        *([] if free_size else [other_size.map(lambda m: _uniform(m) if rows is None
                                               else _uniform(rows, m))]),
        st.just(valid[None]), st.just(np.ones(())) if rows is None else st.just(valid[0]),
        st.just(np.zeros((0,) * len(shape))),
        st.sampled_from([np.nan, np.inf, -np.inf]).map(with_entry),
        st.just(0).map(negative),
        st.one_of(st.floats(0.0, 0.99), st.floats(1.01, 10.0)).map(lambda f: valid * f),
        st.just(np.full(shape, "a")), st.just([[0.5], [0.25, 0.25]]),
        st.just(valid).map(masked), st.just(0).map(bool_rows),
        *([] if none_ok else [st.none()]),
    ]
    if rows is not None and rows != n:
        parts.append(st.just(_uniform(n, n)))
    return st.one_of(*parts)


def bad_labelled_transitions() -> st.SearchStrategy:
    """Invalid labelled transitions ``T[x, i, j]`` (V, K, K): not square in (i, j), the
    wrong rank, outgoing mass off 1 (every state's sum over (x, j) must be 1), a NaN
    or negative entry, a masked entry, bools, not numbers."""
    valid = GOLDEN.T
    return st.one_of(
        st.sampled_from([np.full((2, 2, 3), 1 / 6), valid[0], valid[None], np.zeros((0, 2, 2)),
                         np.full((2, 2, 2), 0.5), valid * 0.5]),
        st.sampled_from([np.nan, -0.5]).map(lambda v: np.where(valid > 0.9, v, valid)),
        st.just(masked(valid)), st.just(valid > 0), st.sampled_from([None, "T", [], 0.5]),
    )


def bad_symbols(n_symbols: int, base: np.ndarray, layouts: str = "all") -> st.SearchStrategy:
    """Invalid sequences of symbols in ``[0, n_symbols)`` (``base`` is a valid (B, T)
    batch): a symbol out of range (negative, ``>= n_symbols``; put first, where even
    the -1 that pads a sequence's end is out of place), a non-integer, NaN or inf
    float, strings, None, empty batches and sequences, a 3-D array, a masked entry,
    bools. With ``layouts="all"`` (the parsers of every layout) also ragged rows with
    one bad row and a (N, 1) column without ``lengths`` (hmmlearn's layout, refused
    without its lengths); ``"rectangular"`` arguments take (B, T) arrays only, where a
    (N, 1) array is N one-step sequences."""

    def with_entry(value) -> np.ndarray:
        array = base.astype(np.result_type(base, np.asarray(value)))
        array[0, 0] = value
        return array

    rectangular = [
        st.one_of(st.integers(max_value=-1), st.integers(min_value=n_symbols)).map(with_entry),
        st.sampled_from([0.5, np.nan, np.inf, -np.inf]).map(with_entry),
        st.just(np.full(base.shape, "1")), st.none(), st.just(3),
        st.sampled_from([np.zeros((0, 4), int), np.zeros((2, 0), int)]),
        st.just(base[None]), st.just(base).map(masked), st.just(base > 0),
    ]
    if layouts == "rectangular":
        return st.one_of(*rectangular)
    first = base[0]
    return st.one_of(
        *rectangular, st.sampled_from([[], [[]], [[], []]]),
        st.sampled_from([[first, [n_symbols]], [first, [0.5]], [first, []], [first, [[0]]],
                         [first, None]]),
        st.just(base.reshape(-1, 1)),
    )


def bad_lengths(total: int) -> st.SearchStrategy:
    """Invalid hmmlearn ``lengths`` for ``total`` concatenated symbols: a wrong sum, a
    zero or negative length, non-integers, NaN, 2-D, empty, strings, bools (they sum
    to ``total`` but are flags, not lengths), a masked entry."""
    return st.one_of(
        st.integers(1, 3 * total).filter(lambda s: s != total).map(lambda s: [s]),
        st.integers(max_value=0).map(lambda z: [z, total - z]),
        st.just([total / 2, total / 2]) if total % 2 else st.just([total - 0.5, 0.5]),
        st.just([np.nan]), st.just([[total]]), st.just([]), st.just(["a"]), st.just(str(total)),
        st.just([True] * total), st.just(masked([total - 1, 1])),
    )


def bad_paths_to_write(tmp: Path) -> st.SearchStrategy:
    """Places no file can be written: not a path (None, a number, bytes), the empty
    string, an existing folder, a file in a missing folder, a file under a file."""
    (tmp / "folder.npz").mkdir(parents=True, exist_ok=True)
    (tmp / "plain").write_text("x")
    return st.sampled_from([None, 12, b"x.npz", "", str(tmp / "folder.npz"),
                            str(tmp / "missing" / "x.npz"), str(tmp / "plain" / "x.npz")])


def bad_folders_to_write(tmp: Path) -> st.SearchStrategy:
    """Folders a report cannot replace: not a path, the empty string, a file, a folder
    under a file, a folder of files the report did not write (they would be lost)."""
    (tmp / "foreign").mkdir(parents=True, exist_ok=True)
    (tmp / "foreign" / "thesis.tex").write_text("x")
    (tmp / "plain").write_text("x")
    return st.sampled_from([None, 12, b"report", "", str(tmp / "plain"),
                            str(tmp / "plain" / "report"), str(tmp / "foreign")])


def bad_paths_to_read(tmp: Path) -> st.SearchStrategy:
    """Files that are not a saved model or sample: not a path, empty, missing, a folder,
    a text file, an ``.npz`` of another kind, a random archive."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "notes.txt").write_text("not an archive")
    np.savez(tmp / "plain.npz", a=np.arange(3))
    other = tmp / "other.npz"
    if not other.exists():
        NET.save(other)  # an RNN, not a DiceSample (and the reverse below)
    sample = tmp / "sample.npz"
    if not sample.exists():
        SAMPLE.save(sample)
    return st.sampled_from([None, 12, "", str(tmp / "missing.npz"), str(tmp),
                            str(tmp / "notes.txt"), str(tmp / "plain.npz"), str(other),
                            str(sample)])


def not_one_of(*allowed: object) -> st.SearchStrategy:
    """Anything but the allowed choices: other strings (case and spaces count), None,
    numbers, containers."""
    return st.one_of(st.text(max_size=6), st.none(), st.integers(), st.just([allowed[0]]),
                     st.just(object())).filter(lambda v: v not in allowed)


def not_models() -> st.SearchStrategy:
    """Not an HMM nor anything with ``to_hmm()``: None, strings, numbers, arrays, dicts."""
    return st.one_of(st.none(), st.text(max_size=4), st.integers(), st.just(np.eye(2)),
                     st.just({"startprob": [1.0]}), st.just(object()))


# --------------------------------------------------------------------------- the targets


@dataclass(frozen=True)
class Target:
    """One argument of one entry point, and invalid values for it.

    ``call(value)`` passes ``value`` as that argument (everything else valid);
    the ``ValueError`` it raises must match ``names``, and also ``also`` when
    given (the memory guard's "needs ... of memory").
    """

    name: str
    call: Callable[[Any], object]
    values: st.SearchStrategy
    names: str
    also: str | None = None
    examples: int = EXAMPLES_PER_TARGET
    #: Why this target is known to fail (a strict xfail: it must fail until fixed).
    known_failure: str | None = None


MEMORY = r"needs .* of memory"


def cli(main: Callable, *argv: str) -> Callable[[Any], object]:
    """Run a CLI with ``argv`` plus the drawn arguments; argparse's exit 2 becomes a
    ValueError holding what it printed, so CLI refusals are checked as the API's."""
    def run(extra) -> object:
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = main([*argv, *extra])
            except SystemExit as exit_:
                if exit_.code == 2:  # argparse's message follows the usage, which names every flag
                    raise ValueError(stderr.getvalue().partition(" error: ")[2]) from None
                raise AssertionError(f"exit {exit_.code}: {stderr.getvalue()}") from None
        return f"exit status {status}"

    return run


def flag_values(flag: str, values: st.SearchStrategy) -> st.SearchStrategy:
    """``[flag, text]`` for each text drawn."""
    return values.map(lambda text: [flag, text])


#: Texts no integer flag takes: words, decimals, blanks, and integers below 1.
NOT_POSITIVE_INT_TEXT = st.one_of(st.sampled_from(["abc", "1.5", "", " ", "1e3", "--", "0x10"]),
                                  st.integers(max_value=0).map(str))
#: Integer texts whose runs cannot fit in memory.
HUGE_TEXT = st.sampled_from(["1000000000", "100000000000", str(10**18)])


def hmm_targets() -> list[Target]:
    K, V = TRUTH.n_states, TRUTH.n_symbols
    X = SYMBOLS.reshape(-1)
    symbol_methods = ("filter", "predictive", "smooth", "viterbi", "log_likelihood")
    return [
        Target("HMM startprob", lambda v: HMM(v, TRUTH.transmat, TRUTH.emissionprob),
               bad_probabilities(K), "startprob"),
        Target("HMM transmat", lambda v: HMM(TRUTH.startprob, v, TRUTH.emissionprob),
               bad_probabilities(K, K), "transmat"),
        Target("HMM emissionprob", lambda v: HMM(TRUTH.startprob, TRUTH.transmat, v),
               bad_probabilities(V, K, free_size=True), "emissionprob"),
        *[Target(f"HMM.{method} symbols", lambda v, m=method: getattr(TRUTH, m)(v),
                 bad_symbols(V, SYMBOLS), "symbols") for method in symbol_methods],
        *[Target(f"HMM.{method} lengths", lambda v, m=method: getattr(TRUTH, m)(X, lengths=v),
                 bad_lengths(X.size), "lengths") for method in ("filter", "log_likelihood")],
        Target("HMM.sample n_sequences", lambda v: TRUTH.sample(v, 10),
               bad_counts(huge=True), "n_sequences"),
        Target("HMM.sample length", lambda v: TRUTH.sample(10, v), bad_counts(huge=True),
               "length"),
        Target("HMM.sample lengths per sequence", lambda v: TRUTH.sample(2, v),
               st.one_of(bad_lengths(2).filter(lambda v: np.ndim(v) == 1 and len(v) != 2),
                         st.just([1, 0]), st.just([2.5, 1]), st.just([10**13, 1])),
               "length"),
        Target("HMM.sample seed", lambda v: TRUTH.sample(2, 3, seed=v), bad_seeds(), "seed"),
        Target("HMM huge sample is refused by the memory guard",
               lambda v: TRUTH.sample(*v), st.tuples(HUGE, HUGE), "n_sequences", MEMORY),
        Target("HMM.entropy_rate n_steps", lambda v: TRUTH.entropy_rate(v),
               bad_counts(minimum=20, huge=True), "n_steps"),
        Target("HMM.entropy_rate seed", lambda v: TRUTH.entropy_rate(1000, seed=v),
               bad_seeds(), "seed"),
        Target("HMM.next_given_state k", TRUTH.next_given_state,
               st.one_of(bad_counts(minimum=0), st.integers(min_value=K)), r"\bk\b"),
        Target("HMM.previous_given_state k", TRUTH.previous_given_state,
               st.one_of(bad_counts(minimum=0), st.integers(min_value=K)), r"\bk\b"),
        Target("HMM.to_hmmlearn fixed sizes", lambda v: TRUTH.to_hmmlearn(**v),
               st.sampled_from([{"n_components": 2}, {"n_features": 3},
                                {"n_components": K, "n_features": V}]),
               "n_components|n_features"),
        Target("HMM.from_hmmlearn model", HMM.from_hmmlearn, not_models(), "model"),
        Target("HMM.from_labelled_transitions T", HMM.from_labelled_transitions,
               bad_labelled_transitions(), r"\bT\b"),
        Target("HMM.from_labelled_transitions startprob",
               lambda v: HMM.from_labelled_transitions(GOLDEN.T, v),
               bad_probabilities(2, none_ok=True), "startprob"),
        Target("sample_chain startprob",
               lambda v: sample_chain(v, TRUTH.transmat, TRUTH.emissionprob, 3, 4, 0),
               bad_probabilities(K), "startprob"),
        Target("sample_chain transmat",
               lambda v: sample_chain(TRUTH.startprob, v, TRUTH.emissionprob, 3, 4, 0),
               bad_probabilities(K, K), "transmat"),
        Target("sample_chain emissionprob",
               lambda v: sample_chain(TRUTH.startprob, TRUTH.transmat, v, 3, 4, 0),
               bad_probabilities(V, K, free_size=True), "emissionprob"),
        Target("sample_chain n_sequences",
               lambda v: sample_chain(TRUTH.startprob, TRUTH.transmat, TRUTH.emissionprob, v, 4),
               bad_counts(huge=True), "n_sequences"),
        Target("sample_chain length",
               lambda v: sample_chain(TRUTH.startprob, TRUTH.transmat, TRUTH.emissionprob, 3, v),
               bad_counts(huge=True), "length"),
        Target("stationary_distribution transmat", stationary_distribution,
               bad_probabilities(K, K), "transmat"),
    ]


def restoring_threads(call: Callable) -> Callable:
    """``call``, with the kernels' thread count put back after it: ``limit_threads(n)``
    keeps its limit, and results of the later tests depend on the count (at rounding)."""
    def run(value):
        previous = numba.get_num_threads()
        try:
            return call(value)
        finally:
            numba.set_num_threads(previous)

    return run


def fit_targets() -> list[Target]:
    K, V = TRUTH.n_states, TRUTH.n_symbols
    batch = as_sequences(SYMBOLS, V)
    return [
        Target("fit_counts dice", lambda v: fit_counts(v, SYMBOLS, K, V, 1.0),
               bad_symbols(K, STATES), "dice"),
        Target("fit_counts symbols", lambda v: fit_counts(STATES, v, K, V, 1.0),
               st.one_of(bad_symbols(V, SYMBOLS), st.just(SYMBOLS[:, :3])), "symbols"),
        Target("fit_counts n_states", lambda v: fit_counts(STATES, SYMBOLS, v, V, 1.0),
               bad_counts(huge=True), "n_states"),
        Target("fit_counts n_symbols", lambda v: fit_counts(STATES, SYMBOLS, K, v, 1.0),
               bad_counts(huge=True), "n_symbols"),
        Target("fit_counts pseudocount", lambda v: fit_counts(STATES, SYMBOLS, K, V, v),
               bad_reals(low_ok=True), "pseudocount"),
        Target("fit_em symbols", lambda v: fit_em(v, K, V, progress=False),
               bad_symbols(V, SYMBOLS), "symbols"),
        Target("fit_em n_states", lambda v: fit_em(SYMBOLS, v, V, progress=False),
               bad_counts(huge=True), "n_states"),
        Target("fit_em n_symbols", lambda v: fit_em(SYMBOLS, K, v, progress=False),
               bad_counts(huge=True), "n_symbols"),
        *[Target(f"fit_em {name}", lambda v, n=name: fit_em(SYMBOLS, K, V, progress=False,
                                                             **{n: v}),
                 bad_counts(), name)
          for name in ("n_restarts", "max_iter", "screen_iter", "n_finalists", "window")],
        Target("fit_em tol", lambda v: fit_em(SYMBOLS, K, V, tol=v, progress=False),
               bad_reals(none_ok=True), "tol"),
        Target("fit_em pseudocount", lambda v: fit_em(SYMBOLS, K, V, pseudocount=v,
                                                      progress=False),
               bad_reals(low_ok=True), "pseudocount"),
        Target("fit_em seed", lambda v: fit_em(SYMBOLS, K, V, seed=v, progress=False),
               bad_seeds(), "seed"),
        Target("fit_em init", lambda v: fit_em(SYMBOLS, K, V, init=v, progress=False),
               st.one_of(not_one_of("windows", "random"), st.just(DICE.to_hmm())), "init"),
        Target("fit_em engine", lambda v: fit_em(SYMBOLS, K, V, engine=v, progress=False),
               not_one_of("batched", "hmmlearn"), "engine"),
        Target("window_init symbols", lambda v: window_init(v, K, V, window=2),
               bad_symbols(V, SYMBOLS), "symbols"),
        Target("window_init window", lambda v: window_init(SYMBOLS, K, V, window=v),
               st.one_of(bad_counts(), st.integers(min_value=6)), "window"),
        Target("window_init smoothing", lambda v: window_init(SYMBOLS, K, V, window=2,
                                                              smoothing=v),
               bad_reals(high=1.0, low_ok=True), "smoothing"),
        Target("em_step model", lambda v: em_step(v, batch, 0.0), not_models(), "model"),
        Target("em_step batch", lambda v: em_step(TRUTH, v, 0.0),
               st.one_of(bad_symbols(V, SYMBOLS), st.just(as_sequences([[8, 1]], 9))), "batch"),
        Target("em_step pseudocount", lambda v: em_step(TRUTH, batch, v),
               bad_reals(low_ok=True), "pseudocount"),
        Target("align_states model", lambda v: align_states(v, TRUTH),
               st.one_of(not_models(), st.just(DICE.to_hmm())), "model"),
        Target("align_states reference", lambda v: align_states(TRUTH, v), not_models(),
               "reference"),
        Target("limit_threads", restoring_threads(limit_threads), bad_counts(), r"\bn\b"),
    ]


def dice_targets(tmp: Path) -> list[Target]:
    X, _ = SAMPLE.to_hmmlearn()
    return [
        Target("Die faces", Die, bad_counts(huge=True), "faces"),
        Target("Die probs", lambda v: Die(6, v), bad_probabilities(6, none_ok=True), "probs"),
        Target("Die.loaded faces", lambda v: Die.loaded(v, 1, 0.5), bad_counts(huge=True),
               "faces"),
        Target("Die.loaded face", lambda v: Die.loaded(6, v, 0.5),
               st.one_of(bad_counts(), st.integers(min_value=7)), "face"),
        Target("Die.loaded p", lambda v: Die.loaded(6, 1, v),
               bad_reals(high=1.0, low_ok=True, high_ok=True), r"\bp\b"),
        Target("DiceHMM dice", lambda v: DiceHMM(v, np.eye(2)),
               st.sampled_from([None, Die(6), "D6", 6, [], [Die(6), 6], [[Die(6)], [Die(4)]]]),
               "dice"),
        Target("DiceHMM transmat", lambda v: DiceHMM([Die(6), Die(4)], v),
               bad_probabilities(2, 2), "transmat"),
        Target("DiceHMM startprob", lambda v: DiceHMM([Die(6), Die(4)], np.eye(2), v),
               bad_probabilities(2, none_ok=True), "startprob"),
        Target("DiceHMM.sample n_sequences", lambda v: DICE.sample(v, 10),
               bad_counts(huge=True), "n_sequences"),
        Target("DiceHMM.sample length", lambda v: DICE.sample(10, v),
               bad_counts(huge=True), "length"),
        Target("DiceHMM.sample seed", lambda v: DICE.sample(2, 3, seed=v), bad_seeds(), "seed"),
        Target("DiceSample dice", lambda v: DiceSample(v, SAMPLE.faces, DICE),
               bad_symbols(2, SAMPLE.dice, "rectangular"), "dice"),
        Target("DiceSample faces", lambda v: DiceSample(SAMPLE.dice, v, DICE),
               bad_symbols(7, SAMPLE.faces, "rectangular"), "faces"),
        Target("DiceSample spec", lambda v: DiceSample(SAMPLE.dice, SAMPLE.faces, v),
               not_models(), "spec"),
        Target("DiceSample.split test_fraction", SAMPLE.split,
               bad_reals(high=1.0), "test_fraction"),
        Target("DiceSample.split seed", lambda v: SAMPLE.split(0.5, v), bad_seeds(), "seed"),
        Target("DiceSample.save path", SAMPLE.save, bad_paths_to_write(tmp / "save"), "path|"
               + re.escape(str(tmp))),
        Target("DiceSample.load path", DiceSample.load,
               bad_paths_to_read(tmp / "load").filter(lambda p: not str(p).endswith("sample.npz")),
               "path|" + re.escape(str(tmp))),
        Target("DiceSample.from_hmmlearn X",
               lambda v: DiceSample.from_hmmlearn(v, SAMPLE.dice.reshape(-1), spec=DICE),
               st.sampled_from([None, X[:, 0], X[:-1], X + 1, np.full(X.shape, 0.5), "x"]),
               r"\bX\b|faces"),
        Target("DiceSample.from_hmmlearn lengths",
               lambda v: DiceSample.from_hmmlearn(X, SAMPLE.dice.reshape(-1), v, spec=DICE),
               bad_lengths(X.shape[0]), "lengths"),
    ]


def process_targets() -> list[Target]:
    return [
        Target("golden_mean p", golden_mean, bad_reals(high=1.0), r"\bp\b"),
        Target("even p", even, bad_reals(high=1.0), r"\bp\b"),
        Target("mess3 x", mess3, bad_reals(high=0.5, high_ok=True), r"\bx\b"),
        Target("mess3 alpha", lambda v: mess3(0.05, v), bad_reals(high=1.0), "alpha"),
        Target("random_hmm n_states", random_hmm, bad_counts(huge=True), "n_states"),
        Target("random_hmm n_symbols", lambda v: random_hmm(3, v), bad_counts(huge=True),
               "n_symbols"),
        Target("random_hmm seed", lambda v: random_hmm(3, 3, v), bad_seeds(), "seed"),
        Target("random_hmm concentration", lambda v: random_hmm(3, 3, 0, v), bad_reals(),
               "concentration"),
        Target("LabelledProcess T", lambda v: LabelledProcess("p", v),
               bad_labelled_transitions(), r"\bT\b"),
        Target("LabelledProcess original_state_names",
               lambda v: LabelledProcess("p", GOLDEN.T, v),
               st.sampled_from([["A"], ["A", "B", "C"], "AB", 3, [None, None]]),
               "original_state_names"),
        Target("LabelledProcess.sample n_sequences", lambda v: GOLDEN.sample(v, 4),
               bad_counts(huge=True), "n_sequences"),
        Target("ProcessSample symbols",
               lambda v: ProcessSample(GOLDEN_SAMPLE.states, v, GOLDEN),
               bad_symbols(2, GOLDEN_SAMPLE.symbols, "rectangular"),
               "symbols"),
        Target("ProcessSample process",
               lambda v: ProcessSample(GOLDEN_SAMPLE.states, GOLDEN_SAMPLE.symbols, v),
               not_models(), "process"),
        Target("as_hmm model", processes.as_hmm, not_models(), "model"),
        Target("state_map process", processes.state_map, not_models(), "process|model"),
        Target("original_state_names process", processes.original_state_names, not_models(),
               "process|model"),
        Target("original_beliefs beliefs", lambda v: processes.original_beliefs(GOLDEN, v),
               st.sampled_from([None, "b", np.ones((3, 5)), np.ones(3), masked(np.ones((3, 2))),
                                np.ones((3, 2), dtype=bool)]), "beliefs"),
        Target("LabelledProcess.original_beliefs beliefs", even().original_beliefs,
               st.sampled_from([None, "b", np.ones((3, 2)), masked(np.ones((3, 3))),
                                np.ones((2, 3), dtype=bool)]), "beliefs"),
        Target("original_beliefs process", lambda v: processes.original_beliefs(v, np.ones(2)),
               not_models(), "process|model"),
    ]


def information_targets() -> list[Target]:
    functions = {"block_entropy": information.block_entropy,
                 "myopic_entropy": information.myopic_entropy,
                 "excess_entropy": information.excess_entropy}
    return [
        *[Target(f"{name} max_length", lambda v, f=function: f(TRUTH, v),
                 bad_counts(huge=True), "max_length") for name, function in functions.items()],
        Target("block_entropy of a sparse process, huge max_length",
               lambda v: information.block_entropy(GOLDEN, v), HUGE, "max_length", MEMORY),
        Target("block_entropy model", lambda v: information.block_entropy(v, 3), not_models(),
               "model"),
        Target("word_probabilities length", lambda v: information.word_probabilities(TRUTH, v),
               bad_counts(huge=True), "length"),
        Target("entropy_rate n_steps", lambda v: information.entropy_rate(TRUTH, v),
               bad_counts(minimum=20, huge=True), "n_steps"),
        Target("entropy_rate model", lambda v: information.entropy_rate(v, 1000), not_models(),
               "model"),
        Target("sampled_myopic_entropy length",
               lambda v: information.sampled_myopic_entropy(TRUTH, v, 10),
               bad_counts(huge=True), "length"),
        Target("sampled_myopic_entropy n_sequences",
               lambda v: information.sampled_myopic_entropy(TRUTH, 5, v),
               bad_counts(minimum=2, huge=True), "n_sequences"),
    ]


def stat_check_targets() -> list[Target]:
    K, V = TRUTH.n_states, TRUTH.n_symbols
    counts = np.array([[3, 2], [1, 4]])
    probs = np.full((2, 2), 0.5)
    return [
        Target("check_multinomial counts", lambda v: testing.check_multinomial(v, probs),
               st.sampled_from([None, "c", np.array([[1, -2], [3, 4]]),
                                np.array([[1.5, 2], [3, 4]]), np.array([[np.nan, 1], [1, 1]]),
                                np.ones((2, 3), int), masked(counts), counts > 2]),
               "counts"),
        Target("check_multinomial probs", lambda v: testing.check_multinomial(counts, v),
               bad_probabilities(2, 2).filter(lambda v: not (isinstance(v, np.ndarray)
                                                           and v.shape == (2,))), "probs"),
        Target("check_multinomial alpha", lambda v: testing.check_multinomial(counts, probs, v),
               bad_reals(high=1.0), "alpha"),
        Target("check_homogeneity first", lambda v: testing.check_homogeneity(v, counts),
               st.sampled_from([None, "c", np.array([[1, -2], [3, 4]]), np.ones((3, 2), int),
                                np.array([[0.5, 1], [1, 1]]), masked(counts)]), "first"),
        Target("check_homogeneity second", lambda v: testing.check_homogeneity(counts, v),
               st.sampled_from([None, np.array([[np.inf, 2], [3, 4]]), np.ones((2, 1), int)]),
               "second"),
        Target("emission_counts states", lambda v: testing.emission_counts(v, SYMBOLS, K, V),
               bad_symbols(K, STATES, "rectangular"), "states"),
        Target("emission_counts n_states",
               lambda v: testing.emission_counts(STATES, SYMBOLS, v, V),
               st.one_of(bad_counts(huge=True), st.integers(1, 3)), "n_states|states"),
        Target("transition_counts n_states", lambda v: testing.transition_counts(STATES, v),
               bad_counts(huge=True), "n_states|states"),
        Target("path_probabilities length", lambda v: testing.path_probabilities(TRUTH, v),
               bad_counts(huge=True), "length"),
        Target("check_emissions model", lambda v: testing.check_emissions(v, STATES, SYMBOLS),
               not_models(), "model"),
        Target("check_transitions states", lambda v: testing.check_transitions(TRUTH, v),
               bad_symbols(K, STATES, "rectangular"), "states"),
        Target("check_paths length", lambda v: testing.check_paths(TRUTH, STATES, v),
               st.one_of(bad_counts(huge=True), st.integers(6, 10)), "length"),
        Target("check_step_pairs alpha", lambda v: testing.check_step_pairs(TRUTH, STATES, v),
               bad_reals(high=1.0), "alpha"),
        Target("check_words length", lambda v: testing.check_words(TRUTH, SYMBOLS, v),
               st.one_of(bad_counts(huge=True), st.integers(6, 10)), "length"),
        Target("check_long_run correlation",
               lambda v: testing.check_long_run(TRUTH, STATES, correlation=v),
               bad_reals(high=1.0), "correlation"),
        Target("thinning_lag transmat", testing.thinning_lag, bad_probabilities(K, K),
               "transmat"),
        Target("check_sample symbols", lambda v: testing.check_sample(TRUTH, STATES, v),
               bad_symbols(V, SYMBOLS, "rectangular"), "symbols"),
        Target("assert_sample_matches alpha",
               lambda v: testing.assert_sample_matches(TRUTH, STATES, SYMBOLS, v),
               bad_reals(high=1.0), "alpha"),
        Target("assert_passed results", lambda v: testing.assert_passed(v),
               st.sampled_from([None, "passed", 1, True, [testing.CheckResult("a", 0, 0, 1, .1)]]),
               "results"),
    ]


def rnn_targets(tmp: Path) -> list[Target]:
    fit_counts_ = ("epochs", "batch_size")
    return [
        Target("RNN n_inputs", lambda v: RNN(v, 4, 3), bad_counts(huge=True), "n_inputs"),
        Target("RNN n_hidden", lambda v: RNN(3, v, 3), bad_counts(huge=True), "n_hidden"),
        Target("RNN n_outputs", lambda v: RNN(3, 4, v), bad_counts(huge=True), "n_outputs"),
        Target("ElmanRNN n_hidden", lambda v: ElmanRNN(8, v, 8), bad_counts(huge=True),
               "n_hidden"),
        Target("RNN cell", lambda v: RNN(3, 4, 3, v), not_one_of("elman", "gru", "lstm"),
               "cell"),
        Target("RNN activation", lambda v: RNN(3, 4, 3, activation=v),
               not_one_of("tanh", "linear"), "activation"),
        Target("RNN output", lambda v: RNN(3, 4, 3, output=v), not_one_of("softmax", "linear"),
               "output"),
        Target("RNN seed", lambda v: RNN(3, 4, 3, seed=v), bad_seeds(), "seed"),
        Target("RNN dtype", lambda v: RNN(3, 4, 3, dtype=v),
               st.sampled_from([None, "float16", np.int64, int, "x", bool, complex]), "dtype"),
        *[Target(f"RNN.{method} symbols", lambda v, m=method: getattr(NET, m)(v),
                 bad_symbols(3, NET_SYMBOLS), "symbols")
          for method in ("predictive", "hidden_states", "score")],
        Target("RNN.fit symbols", lambda v: RNN(3, 4, 3).fit(v, progress=False),
               bad_symbols(3, NET_SYMBOLS), "symbols"),
        Target("RNN.fit labels", lambda v: RNN(3, 4, 2).fit(NET_SYMBOLS, v, progress=False),
               st.one_of(bad_symbols(2, NET_SYMBOLS % 2).filter(lambda v: v is not None),
                         st.just(NET_SYMBOLS[:, :2] % 2)),  # None means no labels: valid
               "labels"),
        *[Target(f"RNN.fit {name}", lambda v, n=name: RNN(3, 4, 3).fit(NET_SYMBOLS,
                                                                       progress=False, **{n: v}),
                 bad_counts(), name) for name in fit_counts_],
        Target("RNN.fit bptt", lambda v: RNN(3, 4, 3).fit(NET_SYMBOLS, bptt=v, progress=False),
               bad_counts(none_ok=True), "bptt"),
        Target("RNN.fit lr", lambda v: RNN(3, 4, 3).fit(NET_SYMBOLS, lr=v, progress=False),
               bad_reals(), r"\blr\b"),
        Target("RNN.fit clip", lambda v: RNN(3, 4, 3).fit(NET_SYMBOLS, clip=v, progress=False),
               bad_reals(none_ok=True), "clip"),
        Target("RNN.fit validation",
               lambda v: RNN(3, 4, 3).fit(NET_SYMBOLS, validation=v, progress=False),
               st.one_of(bad_reals(high=1.0, low_ok=True), st.floats(0.9, 0.99)), "validation"),
        Target("RNN.fit schedule",
               lambda v: RNN(3, 4, 3).fit(NET_SYMBOLS, schedule=v, progress=False),
               st.sampled_from([0.1, "0.1", [0.1, -1], [np.nan], [None], {"a": 1}]),
               "schedule"),
        Target("RNN.fit seed", lambda v: RNN(3, 4, 3).fit(NET_SYMBOLS, seed=v, progress=False),
               bad_seeds(), "seed"),
        Target("RNN.sample n_sequences", lambda v: NET.sample(v, 5), bad_counts(huge=True),
               "n_sequences"),
        Target("RNN.sample length", lambda v: NET.sample(5, v), bad_counts(huge=True), "length"),
        Target("RNN.sample temperature", lambda v: NET.sample(2, 3, temperature=v), bad_reals(),
               "temperature"),
        Target("RNN.save path", NET.save, bad_paths_to_write(tmp / "rnn_save"),
               "path|" + re.escape(str(tmp))),
        Target("RNN.load path", RNN.load,
               bad_paths_to_read(tmp / "rnn_load").filter(lambda p: not str(p).endswith(
                   "other.npz")), "path|" + re.escape(str(tmp))),
        Target("RNN.from_parameters parameters", RNN.from_parameters,
               st.sampled_from([None, "W", [1, 2], {"W_input": np.ones((3, 4))},
                                {**NET.parameters, "W_output": np.full((4, 3), np.nan)},
                                {**NET.parameters, "W_state": np.ones((5, 5))},
                                {**NET.parameters, "extra": np.ones(2)}]),
               "parameters|W_|extra|b"),
        Target("ElmanRNN.from_params W_state",
               lambda v: ElmanRNN.from_params(v, ELMAN.W_input, ELMAN.b, ELMAN.W_output,
                                              ELMAN.b_output),
               st.sampled_from([None, "W", np.ones((5, 5)), np.full((4, 4), np.inf),
                                masked(np.ones((4, 4))), np.ones((4, 4), dtype=bool)]),
               "W_state"),
        Target("ElmanRNN.forward inputs", ELMAN.forward,
               st.one_of(bad_symbols(3, NET_SYMBOLS, "rectangular"),
                         st.just(np.ones((2, 3, 4))), st.just(np.full((2, 3), np.nan))),
               "inputs"),
        Target("ElmanRNN.forward state0", lambda v: ELMAN.forward(NET_SYMBOLS, v),
               st.sampled_from(["s", np.ones(5), np.full(4, np.nan), np.ones((2, 4)),
                                masked(np.ones(4))]), "state0"),
    ]


def compare_targets(tmp: Path) -> list[Target]:
    counts = ("n_train", "n_test", "length", "hidden", "epochs", "restarts", "em_finalists",
              "decoder_epochs", "rnn_batch_size", "rnn_patience", "implied_sequences",
              "implied_restarts", "implied_length", "trace_steps")
    sizes = ("n_train", "n_test", "length", "hidden", "implied_sequences", "implied_length")
    train = GOLDEN_SAMPLE.states, GOLDEN_SAMPLE.symbols
    return [
        *[Target(f"ComparisonConfig {name}", lambda v, n=name: ComparisonConfig(**{n: v}),
                 bad_counts(huge=name in sizes), name) for name in counts],
        Target("ComparisonConfig huge sizes are refused by the memory guard",
               lambda v: ComparisonConfig(n_train=v), HUGE, "n_train", MEMORY),
        Target("ComparisonConfig preset", lambda v: ComparisonConfig(preset=v),
               not_one_of(*seqmodels.PRESETS), "preset"),
        Target("ComparisonConfig cells", lambda v: ComparisonConfig(cells=v),
               st.sampled_from([(), ("rnn",), ("elman", "elman"), None, 3, [None]]), "cells"),
        Target("ComparisonConfig em_states", lambda v: ComparisonConfig(em_states=v),
               bad_counts(none_ok=True, huge=True), "em_states"),
        Target("ComparisonConfig seed", lambda v: ComparisonConfig(seed=v),
               bad_counts(minimum=0), "seed"),
        Target("ComparisonConfig rnn_lr", lambda v: ComparisonConfig(rnn_lr=v), bad_reals(),
               "rnn_lr"),
        Target("ComparisonConfig rnn_schedule", lambda v: ComparisonConfig(rnn_schedule=v),
               st.sampled_from([None, 0.1, [0.1, 0.0], [np.inf], ["a"]]), "rnn_schedule"),
        Target("ComparisonConfig rnn_validation", lambda v: ComparisonConfig(rnn_validation=v),
               st.one_of(bad_reals(high=1.0)), "rnn_validation"),
        Target("ComparisonConfig rnn_validation leaves no training sequence",
               lambda v: ComparisonConfig.quick(n_train=v[0], rnn_validation=v[1]),
               st.sampled_from([(1, 0.1), (2, 0.8), (10, 0.96)]), "n_train|rnn_validation"),
        Target("ComparisonConfig rnn_dtype", lambda v: ComparisonConfig(rnn_dtype=v),
               not_one_of("float32", "float64"), "rnn_dtype"),
        Target("ComparisonConfig.for_preset preset", ComparisonConfig.for_preset,
               not_one_of(*seqmodels.PRESETS), "preset"),
        Target("ComparisonConfig.for_preset overrides",
               lambda v: ComparisonConfig.for_preset("mess3", **v),
               st.sampled_from([{"n_trains": 3}, {"hidden": 0}, {"hidden": 10**12},
                                {"rnn_lr": np.nan}]), "n_trains|hidden|rnn_lr"),
        Target("ComparisonConfig.from_dict settings", ComparisonConfig.from_dict,
               st.sampled_from([None, "n_train=3", [("n_train", 3)], {"n_trains": 3}]),
               "settings|keys"),
        Target("run_comparison config", run_comparison,
               st.sampled_from(["quick", {"n_train": 3}, 3, CONFIG.to_dict()]), "config"),
        Target("run_comparison executor", lambda v: run_comparison(CONFIG, executor=v),
               st.sampled_from(["inline", 2, object()]), "executor"),
        Target("run_on_samples train",
               lambda v: run_on_samples(CONFIG, GOLDEN, v, train, models=["iid"]),
               st.sampled_from([None, train[1], (train[0],), (train[0], train[1][:, :3]),
                                (train[0] + 5, train[1]), (train[0], train[1] + 2),
                                (train[0], masked(train[1]))]), "train"),
        Target("run_on_samples test",
               lambda v: run_on_samples(CONFIG, GOLDEN, train, v, models=["iid"]),
               st.sampled_from([None, "test", (train[0][:, :1], train[1][:, :1]),
                                (train[0], train[1].astype(float) + 0.5)]), "test"),
        Target("run_on_samples process",
               lambda v: run_on_samples(CONFIG, v, train, train, models=["iid"]),
               not_models(), "process|model"),
        Target("run_on_samples models",
               lambda v: run_on_samples(CONFIG, GOLDEN, train, train, models=v),
               st.sampled_from(["iid", [], ["nope"], [1]]), "models"),
        Target("write_report result", lambda v: write_report(v, tmp / "report"),
               st.sampled_from([None, CONFIG, {"metrics": []}]), "result"),
        Target("write_report out_dir", lambda v: write_report(EMPTY_RESULT, v),
               bad_folders_to_write(tmp / "report_dir"), "out_dir|" + re.escape(str(tmp))),
        Target("registry config", lambda v: registry(v, TRUTH),
               st.sampled_from([None, {"n_train": 3}]), "config"),
        Target("registry truth", lambda v: registry(CONFIG, v), not_models(), "truth"),
        Target("IIDBaseline.fit symbols", lambda v: IIDBaseline.fit(v, 8),
               bad_symbols(8, SYMBOLS, "rectangular"), "symbols"),
        Target("MarkovBaseline.fit n_symbols", lambda v: MarkovBaseline.fit(SYMBOLS, v),
               st.one_of(bad_counts(huge=True), st.integers(1, 7)), "n_symbols|symbols"),
        Target("MarkovBaseline transmat", lambda v: MarkovBaseline(_uniform(3), v),
               bad_probabilities(3, 3), "transmat"),
        *[Target(f"{kind.__name__}.predictive symbols",
                 lambda v, k=kind: k.fit(SYMBOLS, 8).predictive(v),
                 bad_symbols(8, SYMBOLS, "rectangular"), "symbols")
          for kind in (IIDBaseline, MarkovBaseline)],
        Target("IIDBaseline probs", IIDBaseline, bad_probabilities(3, free_size=True), "probs"),
        Target("process_pool n_workers", lambda v: process_pool(v).__enter__(), bad_counts(),
               "n_workers"),
    ]


def sweep_targets(tmp: Path) -> list[Target]:
    axes = {"preset": not_one_of(*seqmodels.PRESETS).map(lambda v: (v,)),
            "n_train": bad_counts(huge=True).map(lambda v: (v,)),
            "hidden": bad_counts(huge=True).map(lambda v: (v,)),
            "cell": not_one_of("elman", "gru", "lstm").map(lambda v: (v,)),
            "em_states": bad_counts().map(lambda v: (v,)),
            "seed": bad_counts(minimum=0).map(lambda v: (v,))}
    return [
        *[Target(f"SweepGrid {axis}", lambda v, a=axis: SweepGrid(**{a: v}),
                 st.one_of(values, st.just(()) if axis != "em_states" else st.just((3, 3)),
                           st.just((1, 1)) if axis in ("n_train", "hidden") else st.nothing()),
                 axis) for axis, values in axes.items()],
        Target("SweepGrid settings", lambda v: SweepGrid(settings=v),
               st.sampled_from([None, {"length": 10}, "quick"]), "settings"),
        Target("SweepGrid.from_dict data", SweepGrid.from_dict,
               st.sampled_from([None, "grid", {"grids": {}}, {"grid": {"sizes": [1]}},
                                {"grid": [1]}, {"settings": {"n_train": 3}},
                                {"grid": {"n_train": 0}}, {"grid": {"n_train": None}}]),
               "grid|settings|sweep|n_train"),
        Target("SweepGrid.from_file path", SweepGrid.from_file,
               st.sampled_from([str(tmp / "missing.toml"), str(tmp),
                                str(ROOT / "pyproject.toml"), str(ROOT / "README.md")]),
               "sweep file|TOML|grid|settings|" + re.escape(str(ROOT))),
        Target("run_sweep grid", lambda v: run_sweep(v, tmp / "sweep"),
               st.sampled_from([None, GRID.to_dict(), "grid"]), "grid"),
        Target("run_sweep out", lambda v: run_sweep(GRID, v, progress=False),
               bad_folders_to_write(tmp / "sweep_out"), "out|folder|" + re.escape(str(tmp))),
        Target("run_sweep executor", lambda v: run_sweep(GRID, tmp / "s2", executor=v),
               st.sampled_from(["local", 2, object()]), "executor"),
        Target("run_cell point", lambda v: run_cell(v, CONFIG),
               st.sampled_from([None, "rnn-golden_mean", ("rnn", "golden_mean"),
                                GridCell("svm", "golden_mean", 25, 4, "elman", None, 0),
                                GridCell("rnn", "nope", 25, 4, "elman", None, 0),
                                GridCell("rnn", "golden_mean", 0, 4, "elman", None, 0),
                                GridCell("rnn", "golden_mean", 25, 10**12, "elman", None, 0)]),
               "point|kind|preset|n_train|hidden"),
        Target("run_cell settings",
               lambda v: run_cell(GridCell("rnn", "golden_mean", 25, 4, "elman", None, 0), v),
               st.sampled_from([None, {"length": 10}]), "settings"),
        Target("load_results folder", load_results,
               st.sampled_from([None, "", str(tmp / "no-sweep"), str(ROOT / "README.md")]),
               "folder|" + re.escape(str(tmp)) + "|" + re.escape(str(ROOT))),
        Target("local_engine n_workers", lambda v: local_engine(v).__enter__(), bad_counts(),
               "workers"),
        Target("dask_engine arguments", lambda v: dask_engine(*v).__enter__(),
               st.sampled_from([(None, None), ("tcp://x:1", 2)]), "scheduler|local_workers"),
    ]


def cli_targets(tmp: Path) -> list[Target]:
    compare = cli(COMPARE_CLI.main, "--quick", "--quiet", "--out", str(tmp / "compare"))
    sweep = cli(SWEEP_CLI.main, "--quiet", "--out", str(tmp / "sweep"))
    size_flags = ("--n-train", "--n-test", "--length", "--hidden")
    return [
        *[Target(f"compare.py {flag}", compare, flag_values(flag, NOT_POSITIVE_INT_TEXT),
                 flag) for flag in (*size_flags, "--epochs", "--restarts", "--em-states",
                                    "--jobs")],
        *[Target(f"compare.py {flag} huge", compare, flag_values(flag, HUGE_TEXT), flag)
          for flag in size_flags],
        Target("compare.py --length 1", compare, st.just(["--length", "1"]), "--length"),
        Target("compare.py --n-test below the probe's folds", compare,
               st.sampled_from([["--n-test", "9"], ["--n-test", "1"]]), "--n-test"),
        Target("compare.py --seed", compare,
               flag_values("--seed", st.sampled_from(["-1", "x", "1.5", ""])), "--seed"),
        Target("compare.py --preset", compare,
               flag_values("--preset", st.sampled_from(["nope", "", "LOADED_DICE"])),
               "--preset"),
        Target("compare.py --cells", compare,
               flag_values("--cells", st.sampled_from(["rnn", "elman,", "elman,elman", ""])),
               "--cells"),
        Target("compare.py --out", compare,
               flag_values("--out", bad_folders_to_write(tmp / "compare_out").filter(
                   lambda v: isinstance(v, str)).map(str)), "--out"),
        Target("compare.py unknown flag", compare,
               st.sampled_from([["--n_train", "3"], ["--lengths", "3"], ["extra"]]),
               "unrecognized|--"),
        *[Target(f"sweep.py {flag}", sweep,
                 flag_values(flag, st.one_of(NOT_POSITIVE_INT_TEXT, st.just("1,,2"),
                                             st.just("3,3"))),
                 flag) for flag in ("--n-train", "--hidden", "--em-states")],
        *[Target(f"sweep.py {flag} huge", sweep, flag_values(flag, HUGE_TEXT), flag)
          for flag in ("--n-train", "--hidden", "--length")],
        *[Target(f"sweep.py {flag}", sweep, flag_values(flag, NOT_POSITIVE_INT_TEXT), flag)
          for flag in ("--length", "--n-test", "--epochs", "--restarts", "--workers",
                       "--dask-local")],
        Target("sweep.py --preset", sweep,
               flag_values("--preset", st.sampled_from(["nope", ",", "casino,nope"])),
               "--preset"),
        Target("sweep.py --cell", sweep,
               flag_values("--cell", st.sampled_from(["rnn", "elman,rnn", "elman,elman"])),
               "--cell"),
        Target("sweep.py --seed", sweep, flag_values("--seed", st.sampled_from(["-1", "x"])),
               "--seed"),
        Target("sweep.py --config", sweep,
               flag_values("--config", st.sampled_from([str(tmp / "missing.toml"),
                                                        str(ROOT / "README.md"), str(tmp)])),
               "--config"),
        Target("sweep.py --out", sweep,
               flag_values("--out", bad_folders_to_write(tmp / "sweep_cli_out").filter(
                   lambda v: isinstance(v, str)).map(str)), "--out"),
    ]


#: Where the path targets make their files (removed at the end of the module).
TMP = Path(tempfile.mkdtemp(prefix="seqmodels-bad-input-"))
TARGETS: list[Target] = [
    *hmm_targets(), *fit_targets(), *dice_targets(TMP), *process_targets(),
    *information_targets(), *stat_check_targets(), *rnn_targets(TMP), *compare_targets(TMP),
    *sweep_targets(TMP), *cli_targets(TMP),
]


# --------------------------------------------------------------------------- the check


class TooSlow(Exception):
    """An example ran past :data:`TIME_LIMIT`: work was started, or something hangs."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`TooSlow` in this (the main) thread after ``seconds``."""
    def alarm(signum, frame):
        raise TooSlow(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def assert_refused(target: Target, value) -> None:
    """``target.call(value)`` raises a ValueError naming the argument, within the time limit."""
    start = time.perf_counter()
    with time_limit(TIME_LIMIT):
        try:
            result = target.call(value)
        except ValueError as err:
            message = str(err)
        else:
            raise AssertionError(f"{target.name}: {value!r} was accepted silently "
                                 f"(returned {type(result).__name__})")
    seconds = time.perf_counter() - start
    assert re.search(target.names, message), (
        f"{target.name}: the message for {value!r} does not name {target.names!r}: {message}")
    if target.also:
        assert re.search(target.also, message), (
            f"{target.name}: the message for {value!r} lacks {target.also!r}: {message}")
    assert seconds < TIME_LIMIT, f"{target.name}: {value!r} took {seconds:.2f} s to refuse"


def run_target(target: Target) -> None:
    @settings(max_examples=target.examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(value=target.values)
    def refuses(value) -> None:
        EXAMPLES_RUN[target.name] += 1
        assert_refused(target, value)

    refuses()


# --------------------------------------------------------------------------- the issue's cases

#: Each bad input of issue 12, as its text writes it: refused with these words.
ISSUE_CASES = {
    "sample_chain with startprob summing to 0.4": (
        lambda: sample_chain(np.array([.2, .2]), np.eye(2), np.eye(2), 10000, 1, 0),
        "startprob sums to 0.4"),
    "sample_chain with a NaN": (
        lambda: sample_chain([np.nan, 1.0], np.eye(2), np.eye(2), 10, 1, 0), "startprob"),
    "sample_chain with a negative probability": (
        lambda: sample_chain([1.5, -0.5], np.eye(2), np.eye(2), 10, 1, 0), "negative"),
    "sample_chain with lists of the wrong shape": (
        lambda: sample_chain([0.5, 0.5], [[1, 0], [0, 1]], [[1, 0]], 10, 1, 0),
        "emissionprob must have 2 rows"),
    "ComparisonConfig(n_train=10**8)": (
        lambda: ComparisonConfig(n_train=10**8), "n_train=100000000.* needs .* of memory"),
    "ComparisonConfig(n_train=3*10**8)": (
        lambda: ComparisonConfig(n_train=3 * 10**8), "n_train=300000000.* needs .* of memory"),
    "DiceHMM.sample(10**6, 10**6)": (
        lambda: DICE.sample(10**6, 10**6), "n_sequences=1000000 x length=1000000 needs"),
    "ElmanRNN(8, 10**6, 8)": (
        lambda: ElmanRNN(8, 10**6, 8), "n_hidden=1000000 .* needs .* of memory"),
    "compare.py --length 1000000000": (
        lambda: cli(COMPARE_CLI.main, "--out", str(TMP / "issue"))(["--length", "1000000000"]),
        "length=1000000000.* needs .* of memory"),
    "compare.py --hidden 100000": (
        lambda: cli(COMPARE_CLI.main, "--out", str(TMP / "issue"))(["--hidden", "100000"]),
        "hidden=100000 needs .* of memory"),
    "compare.py --quick --length 1": (
        lambda: cli(COMPARE_CLI.main, "--quick", "--out", str(TMP / "issue"))(
            ["--length", "1"]), "length must be at least 2"),
    "compare.py --out ''": (
        lambda: cli(COMPARE_CLI.main, "--quick")(["--out", ""]), "--out: must name a folder"),
    "save(None)": (lambda: SAMPLE.save(None), "path must be a str or os.PathLike"),
    "save('missing/dir/x.npz')": (
        lambda: SAMPLE.save(TMP / "missing" / "dir" / "x.npz"), "does not exist"),
    "load() of a folder": (lambda: DiceSample.load(TMP), "is a folder"),
    "a masked array to filter": (
        lambda: TRUTH.filter(masked(SYMBOLS)), "symbols is a masked array"),
    "a masked array to log_likelihood": (
        lambda: TRUTH.log_likelihood(masked(SYMBOLS)), "symbols is a masked array"),
    "HMM.to_hmmlearn(n_components=2)": (
        lambda: TRUTH.to_hmmlearn(n_components=2), "n_components is fixed by the model"),
}


@pytest.mark.parametrize("case", list(ISSUE_CASES))
def test_the_issues_bad_inputs_are_refused(case):
    call, words = ISSUE_CASES[case]
    with time_limit(TIME_LIMIT), pytest.raises(ValueError, match=words):
        call()


def test_the_issues_equalities_hold_by_value():
    """``Die(6) == Die(6)`` and ``hmm == hmm`` raised; ``hash(Die(6))`` was a TypeError."""
    assert Die(6) == Die(6) and hash(Die(6)) == hash(Die(6))
    assert TRUTH == seqmodels.loaded_dice().to_hmm() and hash(TRUTH) == hash(TRUTH)
    assert Die(6) != Die(4) and TRUTH != DICE.to_hmm()


def test_compare_quick_length_3_runs(tmp_path):
    """``--quick --length 3`` ended in a traceback (a zero probability in the counted
    HMM); the counted HMM's pseudocount now gives a model, and the run exits 0."""
    argv = ["--quick", "--quiet", "--no-plots", "--length", "3", "--out", str(tmp_path)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert COMPARE_CLI.main(argv) == 0
    assert (tmp_path / "report.md").exists()


# --------------------------------------------------------------------------- the memory audit

#: Every entry point that allocates from sizes its caller chose, called with small
#: valid sizes: with almost no memory available, each must be refused by the guard.
ALLOCATING = {
    "Die": lambda: Die(100),
    "DiceHMM": lambda: DiceHMM([Die(6), Die(4)], np.eye(2)),
    "HMM.sample": lambda: TRUTH.sample(10, 10),
    "sample_chain": lambda: sample_chain(TRUTH.startprob, TRUTH.transmat, TRUTH.emissionprob,
                                         10, 10),
    "DiceHMM.sample": lambda: DICE.sample(10, 10),
    "LabelledProcess.sample": lambda: GOLDEN.sample(10, 10),
    "HMM.entropy_rate": lambda: TRUTH.entropy_rate(1000),
    "symbols padded to the longest sequence": lambda: TRUTH.log_likelihood([[0] * 10, [1]]),
    "int32 symbols copied to int64": lambda: TRUTH.log_likelihood(SYMBOLS.astype(np.int32)),
    "HMM.filter": lambda: TRUTH.filter(SYMBOLS),
    "HMM.smooth": lambda: TRUTH.smooth(SYMBOLS),
    "HMM.viterbi": lambda: TRUTH.viterbi(SYMBOLS),
    "HMM.predictive": lambda: TRUTH.predictive(SYMBOLS),
    "fit_counts": lambda: fit_counts(STATES, SYMBOLS, 4, 8, 1.0),
    "fit_em": lambda: fit_em(SYMBOLS, 4, 8, progress=False),
    "window_init": lambda: window_init(SYMBOLS, 4, 8, window=2),
    "random_hmm": lambda: random_hmm(4, 4),
    "block_entropy": lambda: information.block_entropy(TRUTH, 4),
    "word_probabilities": lambda: information.word_probabilities(TRUTH, 4),
    "entropy_rate": lambda: information.entropy_rate(TRUTH, 1000),
    "sampled_myopic_entropy": lambda: information.sampled_myopic_entropy(TRUTH, 10, 10),
    "path_probabilities": lambda: testing.path_probabilities(TRUTH, 4),
    "emission_counts": lambda: testing.emission_counts(STATES, SYMBOLS, 4, 8),
    "transition_counts": lambda: testing.transition_counts(STATES, 4),
    "check_step_pairs": lambda: testing.check_step_pairs(TRUTH, STATES),
    "IIDBaseline.fit": lambda: IIDBaseline.fit(SYMBOLS, 100),
    "MarkovBaseline.fit": lambda: MarkovBaseline.fit(SYMBOLS, 8),
    "RNN": lambda: RNN(3, 4, 3),
    "RNN.fit": lambda: NET.fit(NET_SYMBOLS, epochs=1, progress=False),
    "RNN.predictive": lambda: NET.predictive(NET_SYMBOLS),
    "RNN.hidden_states": lambda: NET.hidden_states(NET_SYMBOLS),
    "RNN.sample": lambda: NET.sample(10, 10),
    "ComparisonConfig": lambda: ComparisonConfig.quick(),
    "SweepGrid": lambda: SweepGrid(n_train=(25,), seed=(0,), settings=CONFIG),
}


@pytest.mark.parametrize("entry", list(ALLOCATING))
def test_every_allocating_entry_point_consults_the_memory_guard(entry, monkeypatch):
    from seqmodels import _checks

    monkeypatch.setattr(_checks, "available_memory", lambda: 64)
    with time_limit(TIME_LIMIT), pytest.raises(ValueError, match=r"needs .* of memory; 64 B"):
        ALLOCATING[entry]()


@pytest.fixture(scope="module", autouse=True)
def remove_files():
    yield
    shutil.rmtree(TMP, ignore_errors=True)


@pytest.mark.parametrize("target", [
    pytest.param(target, id=target.name, marks=() if target.known_failure is None else
                 pytest.mark.xfail(strict=True, reason=target.known_failure))
    for target in TARGETS])
def test_bad_input_is_refused(target):
    run_target(target)


def test_enough_bad_inputs_ran():
    """The count over the whole file (run it whole: ``pytest tests/test_bad_input.py``)."""
    if len(EXAMPLES_RUN) < len(TARGETS):
        pytest.skip(f"{len(TARGETS) - len(EXAMPLES_RUN)} targets did not run in this session")
    total = sum(EXAMPLES_RUN.values())
    assert total >= MIN_EXAMPLES, f"only {total} bad inputs ran"
