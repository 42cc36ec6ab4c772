"""Fitting an :class:`HMM`: by counting (hidden chain known) and by Baum-Welch.

:func:`fit_em` runs Baum-Welch from data-driven starts (:func:`window_init`,
k-means on window histograms) with restarts chosen cheaply: every restart gets
a short screening run, and only the best few continue to convergence. Its
default engine runs the E-step as one compiled pass over the whole batch
(:func:`seqmodels.hmm.kernels.forward_backward`); ``engine="hmmlearn"`` runs
hmmlearn's ``CategoricalHMM.fit``, the reference, with the same M-step. Label
switching between fits is undone by :func:`~seqmodels.hmm.align.align_states`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from seqmodels._checks import (
    SymbolBatch,
    as_generator,
    as_sequences,
    check_count,
    check_memory,
    non_negative_real,
    positive_real,
)
from seqmodels.hmm import kernels
from seqmodels.hmm.init import parameter_bytes, random_start, window_bytes, windows_start
from seqmodels.hmm.model import HMM, hmmlearn_input
from seqmodels.hmm.sampling import Seed

if TYPE_CHECKING:
    import pandas as pd

_log = logging.getLogger(__name__)

#: Dirichlet pseudocount added to every emission count in the M-step (a MAP
#: estimate; hmmlearn's ``emissionprob_prior = 1 + pseudocount``), the default
#: of :func:`fit_em`'s ``pseudocount``. No fitted emission is exactly 0, so a
#: symbol unseen in training cannot make a held-out score -inf; against ~1e5
#: training symbols the bias is ~1e-8.
EMISSION_PSEUDOCOUNT = 1e-3

#: Default convergence threshold of :func:`fit_em`, per training symbol: EM stops
#: when the total log-likelihood improves by less than this times the number of
#: symbols in one iteration, so the stopping point does not depend on data size.
TOL_PER_SYMBOL = 1e-7

#: Starting points :func:`fit_em` knows by name: ``"windows"`` (:func:`window_init`)
#: and ``"random"`` (flat Dirichlet draws); an :class:`HMM` is a start of its own.
INITS = ("windows", "random")

#: E-step implementations of :func:`fit_em`.
ENGINES = ("batched", "hmmlearn")


def fit_counts(dice, symbols, n_states: int, n_symbols: int, pseudocount: float = 0.0,
               lengths=None) -> HMM:
    """Maximum-likelihood parameters by counting, when the hidden chain is known.

    Parameters
    ----------
    dice : array_like of int
        Hidden states in ``[0, n_states)``: a ``(B, T)`` batch, a ``(T,)``
        sequence, a list of 1-D sequences, or hmmlearn's concatenation with
        ``lengths``.
    symbols : array_like of int, the same layout and lengths as ``dice``
        Visible symbols in ``[0, n_symbols)``.
    n_states, n_symbols : int
        ``K`` and ``V``.
    pseudocount : float
        Added to every count (start, transition and emission) before normalizing.
    lengths : array_like of int, optional
        hmmlearn's ``lengths``, for both ``dice`` and ``symbols``.

    Returns
    -------
    HMM
        :math:`\\hat\\pi_k = n(z_0 = k) / B`, :math:`\\hat A_{ij} = n(i \\to j) /
        n(i \\to \\cdot)`, :math:`\\hat B_{kv} = n(z = k, x = v) / n(z = k)`.

    Raises
    ------
    ValueError
        If the shapes or lengths differ, values are out of range, or (with
        ``pseudocount=0``) a state is never visited or never left, so its row
        has no data.
    """
    n_states = check_count("n_states", n_states)
    n_symbols = check_count("n_symbols", n_symbols)
    pseudocount = non_negative_real("pseudocount", pseudocount)
    check_memory(parameter_bytes(n_states, n_symbols),
                 f"the counts of n_states={n_states} x n_symbols={n_symbols}")
    states = as_sequences(dice, n_states, name="dice", lengths=lengths)
    visible = as_sequences(symbols, n_symbols, name="symbols", lengths=lengths)
    if states.symbols.shape != visible.symbols.shape or not np.array_equal(states.lengths,
                                                                           visible.lengths):
        raise ValueError(
            f"dice and symbols must have the same shape and lengths, got {np.shape(dice)} "
            f"and {np.shape(symbols)}"
        )
    steps = states.mask()
    moves = steps[:, 1:]  # a move into step t exists when step t does
    start = np.bincount(states.symbols[:, 0], minlength=n_states) + pseudocount
    transitions = pair_counts(states.symbols[:, :-1][moves], states.symbols[:, 1:][moves],
                              n_states, n_states) + pseudocount
    emissions = pair_counts(states.symbols[steps], visible.symbols[steps], n_states,
                            n_symbols) + pseudocount
    _require_data("transmat", transitions, "never left (no transition out of it)")
    _require_data("emissionprob", emissions, "never visited")
    return HMM(
        start / start.sum(),
        transitions / transitions.sum(axis=1, keepdims=True),
        emissions / emissions.sum(axis=1, keepdims=True),
    )


def pair_counts(rows: np.ndarray, columns: np.ndarray, n_rows: int, n_columns: int) -> np.ndarray:
    """Co-occurrence counts (n_rows, n_columns): ``[i, j] = #{rows == i and columns == j}``."""
    flat = np.bincount((rows * n_columns + columns).ravel(), minlength=n_rows * n_columns)
    return flat.reshape(n_rows, n_columns)


def _require_data(name: str, counts: np.ndarray, what: str) -> None:
    empty = np.flatnonzero(counts.sum(axis=1) == 0)
    if empty.size:
        raise ValueError(
            f"state {int(empty[0])} is {what}, so {name} row {int(empty[0])} has no data; "
            "pass pseudocount > 0 to fill it"
        )


@dataclass(frozen=True)
class EMFit:
    """The outcome of :func:`fit_em`.

    Attributes
    ----------
    model : HMM
        The restart with the highest training log-likelihood.
    log_likelihood : float
        Its total log-likelihood over the training data (nats), recomputed
        with :meth:`HMM.log_likelihood` on the final parameters.
    restarts : pandas.DataFrame
        One row per restart: ``restart``, ``log_likelihood`` (total, final
        parameters), ``iterations`` (EM iterations run), ``converged`` (the last
        improvement was below ``tol``; a run stopped by the screening budget or
        ``max_iter`` is not converged), ``finalist`` (continued after screening).
    histories : tuple of numpy.ndarray
        One per restart, shape (iterations,): the total training log-likelihood
        of the parameters each iteration started from (hmmlearn's
        ``monitor_.history``, kept whole).
    """

    model: HMM
    log_likelihood: float
    restarts: pd.DataFrame
    histories: tuple[np.ndarray, ...] = ()


@dataclass
class _Run:
    """One restart: its current parameters and its whole log-likelihood history."""

    model: HMM
    history: list[float] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return len(self.history)

    def converged(self, tol: float) -> bool:
        # hmmlearn's monitor_.converged is also true when n_iter is reached.
        return len(self.history) >= 2 and self.history[-1] - self.history[-2] < tol


@dataclass(frozen=True)
class _Batched:
    """The compiled E-step over the whole batch, then hmmlearn's M-step."""

    batch: SymbolBatch
    pseudocount: float

    def advance(self, run: _Run, n_iter: int, tol: float) -> None:
        """Up to ``n_iter`` iterations; stops when the last improvement is below ``tol``."""
        for _ in range(n_iter):
            run.model, log_likelihood = _em_step(run.model, self.batch, self.pseudocount)
            run.history.append(log_likelihood)
            if run.converged(tol):
                return


@dataclass(frozen=True)
class _Hmmlearn:
    """hmmlearn's ``CategoricalHMM.fit``, the reference engine."""

    batch: SymbolBatch
    pseudocount: float

    def advance(self, run: _Run, n_iter: int, tol: float) -> None:
        """``fit`` for up to ``n_iter`` iterations from ``run.model``."""
        X, lengths = hmmlearn_input(self.batch)
        # random_state is unused (init_params=""), but never an int: an int makes
        # every sample() call of the fitted model identical.
        model = run.model.to_hmmlearn(emissionprob_prior=1.0 + self.pseudocount, n_iter=n_iter,
                                      tol=tol, random_state=np.random.RandomState(0))
        model.fit(X, lengths)
        run.history.extend(model.monitor_.history)
        run.model = _to_hmm(model.startprob_, model.transmat_, model.emissionprob_)


def em_step(model: HMM, batch: SymbolBatch, pseudocount: float) -> tuple[HMM, float]:
    """One Baum-Welch iteration: the E-step on the kernels, then hmmlearn's M-step.

    Parameters
    ----------
    model : HMM
        The current parameters.
    batch : SymbolBatch
        The training sequences.
    pseudocount : float
        Added to every expected emission count.

    Returns
    -------
    HMM
        :math:`\\pi \\propto \\gamma_0`, :math:`A_{ij} \\propto \\sum_t \\xi_t(i, j)`,
        :math:`B_{kv} \\propto \\sum_{t: x_t = v} \\gamma_t(k) +` ``pseudocount``,
        summed over sequences; a start or transition probability that is 0 stays 0
        (as in hmmlearn), a row without counts becomes uniform.
    float
        The total log-likelihood of ``model`` (before the update).

    Raises
    ------
    ValueError
        If ``model`` is not an HMM, ``batch`` holds symbols outside ``[0, V)``,
        ``pseudocount`` is negative or not finite, or a sequence has probability
        0 under ``model``.
    """
    if not isinstance(model, HMM):
        raise ValueError(f"model must be an HMM, got {type(model).__name__}")
    if not isinstance(batch, SymbolBatch):
        raise ValueError(f"batch must be a SymbolBatch (seqmodels._checks.as_sequences), got "
                         f"{type(batch).__name__}")
    if batch.symbols.max() >= model.n_symbols:
        raise ValueError(f"batch has symbol {int(batch.symbols.max())}, outside the model's "
                         f"[0, {model.n_symbols})")
    return _em_step(model, batch, non_negative_real("pseudocount", pseudocount))


def _em_step(model: HMM, batch: SymbolBatch, pseudocount: float) -> tuple[HMM, float]:
    """:func:`em_step` on arguments already validated (the loop of :func:`fit_em`)."""
    start, transitions, emissions, log_likelihood = _expected_counts(model, batch)
    start = np.where(model.startprob == 0, 0.0, start)
    transitions = np.where(model.transmat == 0, 0.0, transitions)
    return _to_hmm(start, transitions, emissions + pseudocount), log_likelihood


def _expected_counts(model: HMM, batch: SymbolBatch) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray, float]:
    """Expected start (K,), transition (K, K) and emission (K, V) counts, and log P(data)."""
    n_seq, n_states = len(batch.lengths), model.n_states
    # Groups independent of the thread count, counts summed per group in group
    # order: a fit gives the same bits on any machine.
    width = kernels.lane_width(n_seq, threads=1)
    n_groups = _count_groups(n_seq)
    counts = np.empty((n_groups, n_states, 1 + n_states + model.n_symbols))
    log_likelihood, bad_step = np.empty(n_seq), np.empty(n_seq, dtype=np.int64)
    transmat_t, emission_t = model._transposed
    kernels.forward_backward(model.startprob, model.transmat, transmat_t, emission_t,
                             batch.symbols, batch.lengths, kernels.longest_first(batch.lengths),
                             width, min(n_groups, kernels.thread_count()),
                             np.empty((0, 0, n_states)), counts, log_likelihood, bad_step)
    if np.any(bad_step >= 0):
        sequence = int(np.flatnonzero(bad_step >= 0)[0])
        raise ValueError(f"sequence {sequence} has zero probability under the EM parameters "
                         f"(step {int(bad_step[sequence])}): start from another init")
    counts = counts.sum(axis=0)
    return (counts[:, 0], model.transmat * counts[:, 1: 1 + n_states],
            counts[:, 1 + n_states:], float(log_likelihood.sum()))


def _count_groups(n_sequences: int) -> int:
    """Lane groups of the E-step: how many per-group count arrays it fills."""
    return -(-n_sequences // kernels.lane_width(n_sequences, threads=1))


def fit_em(
    symbols, n_states: int, n_symbols: int, n_restarts: int = 10, max_iter: int = 1000,
    tol: float | None = None, seed: Seed = None, progress: bool = True, *, screen_iter: int = 20,
    n_finalists: int = 3, init: str | HMM = "windows", window: int = 10,
    engine: str = "batched", pseudocount: float = EMISSION_PSEUDOCOUNT, lengths=None,
) -> EMFit:
    """Baum-Welch with restarts.

    Parameters
    ----------
    symbols : array_like of int
        Training sequences, values in ``[0, n_symbols)``: a ``(B, T)`` batch, a
        ``(T,)`` sequence, a list of 1-D sequences of different lengths, or
        hmmlearn's ``X`` with ``lengths``.
    n_states, n_symbols : int
        ``K`` and ``V``; ``n_features=V`` is fixed, never inferred from the data.
    n_restarts : int
        Starting points, all drawn from ``seed`` (see ``init``).
    max_iter : int
        Cap on EM iterations per restart (screening included).
    tol : float or None
        Convergence threshold on the improvement of the total training
        log-likelihood per iteration (hmmlearn's ``tol``, absolute, nats).
        ``None`` (the default) means ``TOL_PER_SYMBOL`` times the number of
        training symbols (0.02 nats on 400 x 500), so the stopping point does
        not shift with the data size.
    seed : int, numpy.random.Generator or None
        Passed once to :func:`numpy.random.default_rng`.
    progress : bool
        Show a tqdm bar over the runs.
    screen_iter : int
        Iterations every restart gets before the ranking.
    n_finalists : int
        How many of the best-screened restarts continue to convergence.
    init : {"windows", "random"} or HMM
        ``"windows"`` (default): :func:`window_init`, k-means on the symbol
        histograms of ``window``-step windows, each restart with its own
        k-means++ seeding. ``"random"``: start and transition rows and emission
        rows from a flat Dirichlet. An :class:`HMM` with ``K`` states and ``V``
        symbols: one run from it (``n_restarts`` and ``n_finalists`` are then 1).
    window : int
        Window length of ``init="windows"`` (capped at the longest sequence).
    engine : {"batched", "hmmlearn"}
        ``"batched"`` (default): the E-step as one compiled pass over all
        sequences (:func:`em_step`). ``"hmmlearn"``: ``CategoricalHMM.fit``, the
        reference; from the same start both give the same parameters after
        every iteration (to rounding, ~1e-13).
    pseudocount : float
        Added to every expected emission count in the M-step (``>= 0``; 0 is
        plain Baum-Welch). The default ``EMISSION_PSEUDOCOUNT`` keeps every
        fitted emission above 0.
    lengths : array_like of int, optional
        hmmlearn's ``lengths`` for ``symbols`` in its layout.

    Returns
    -------
    EMFit

    Notes
    -----
    Single Baum-Welch runs often stop in a poorer optimum, so restarts matter,
    but running each to convergence costs hundreds of iterations, so every
    restart gets ``screen_iter`` iterations and only the top ``n_finalists`` by
    training log-likelihood go on. From flat Dirichlet starts that ranking can
    be wrong: on ``loaded_dice`` (overlapping D4/D6/D8 rows) a poor optimum led
    the ranking at 20, 40 and 80 iterations, and the good one needed ~1000
    iterations. Window starts begin near the emission rows of a sticky chain:
    on ``loaded_dice`` every one of them reached the good optimum, in ~200
    iterations.
    """
    n_symbols = check_count("n_symbols", n_symbols)
    batch = as_sequences(symbols, n_symbols, lengths=lengths)
    n_states = check_count("n_states", n_states)
    n_restarts = check_count("n_restarts", n_restarts)
    max_iter = check_count("max_iter", max_iter)
    screen_iter = min(check_count("screen_iter", screen_iter), max_iter)
    n_finalists = min(check_count("n_finalists", n_finalists), n_restarts)
    if isinstance(init, HMM):
        _check_start(init, n_states, n_symbols)
        n_restarts = n_finalists = 1
    elif init not in INITS:
        raise ValueError(f"init must be one of {INITS} or an HMM, got {init!r}")
    window = min(check_count("window", window), int(batch.lengths.max()))
    n_symbols_seen = int(batch.lengths.sum())
    tol = TOL_PER_SYMBOL * n_symbols_seen if tol is None else positive_real("tol", tol)
    pseudocount = non_negative_real("pseudocount", pseudocount)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    n_seq, n_steps = batch.symbols.shape
    check_memory(kernels.scratch_bytes(n_seq, n_steps, n_states + 2)
                 + (n_restarts + _count_groups(n_seq)) * parameter_bytes(n_states, n_symbols)
                 + window_bytes(batch, n_states, n_symbols, window),
                 f"fit_em with n_states={n_states}, n_symbols={n_symbols} and "
                 f"n_restarts={n_restarts} on n_sequences={n_seq} x length={n_steps}")
    rng = as_generator(seed)
    runs = [_Run(init if isinstance(init, HMM) else
                 _starting_model(batch, n_states, n_symbols, rng, init, window))
            for _ in range(n_restarts)]
    stepper = (_Batched if engine == "batched" else _Hmmlearn)(batch, pseudocount)
    finalists = _screen_then_finish(runs, stepper, screen_iter, n_finalists, max_iter, tol,
                                    progress)
    scores = [float(run.model._log_likelihood(run.model.startprob, batch).sum()) for run in runs]
    best = int(np.argmax(scores))
    table = _restarts_frame(runs, scores, finalists, tol)
    _log.info("fit_em: best restart %d of %d, log-likelihood %.4f", best, n_restarts, scores[best])
    return EMFit(model=runs[best].model, log_likelihood=scores[best], restarts=table,
                 histories=tuple(np.array(run.history) for run in runs))


def _check_start(init: HMM, n_states: int, n_symbols: int) -> None:
    if (init.n_states, init.n_symbols) != (n_states, n_symbols):
        raise ValueError(f"init has {init.n_states} states and {init.n_symbols} symbols, but "
                         f"n_states={n_states} and n_symbols={n_symbols}")


def _screen_then_finish(
    runs: list[_Run], stepper, screen_iter: int, n_finalists: int, max_iter: int, tol: float,
    progress: bool,
) -> np.ndarray:
    """Run every restart ``screen_iter`` iterations, then the best ``n_finalists`` to the end.

    Returns the finalists' indices, best screened first (ties keep restart order).
    """
    with tqdm(total=len(runs) + n_finalists, desc="EM restarts", disable=not progress) as bar:
        for run in runs:
            stepper.advance(run, screen_iter, tol)
            bar.update()
        ranking = np.argsort([-run.history[-1] for run in runs], kind="stable")
        finalists = ranking[:n_finalists]
        for index in finalists:
            run = runs[index]
            if not run.converged(tol) and run.iterations < max_iter:
                stepper.advance(run, max_iter - run.iterations, tol)
            bar.update()
    return finalists


def _restarts_frame(runs: list[_Run], scores: list[float], finalists: np.ndarray,
                    tol: float) -> pd.DataFrame:
    """The :attr:`EMFit.restarts` table, one row per restart."""
    import pandas as pd  # deferred: importing pandas costs a few tenths of a second

    restarts = np.arange(len(runs))
    return pd.DataFrame({
        "restart": restarts,
        "log_likelihood": scores,
        "iterations": [run.iterations for run in runs],
        "converged": [run.converged(tol) for run in runs],
        "finalist": np.isin(restarts, finalists),
    })


def _starting_model(batch: SymbolBatch, n_states: int, n_symbols: int,
                    rng: np.random.Generator, init: str, window: int) -> HMM:
    """One restart's start: clustered windows or flat Dirichlet draws from ``rng``."""
    if init == "random":
        initial = random_start(n_states, n_symbols, rng)
    else:
        initial = windows_start(batch, n_states, n_symbols, window, rng)
    rng.integers(2**32)  # the draw hmmlearn's random_state once took: same starts as before
    return initial


def _to_hmm(startprob: np.ndarray, transmat: np.ndarray, emissionprob: np.ndarray) -> HMM:
    """An :class:`HMM` from EM counts or hmmlearn's parameters: rows normalized as hmmlearn does.

    A row without counts stays 0 in hmmlearn (a state never left); it carries
    no information and would not validate, so it becomes uniform.
    """
    rows = []
    for name, counts in (("startprob", startprob), ("transmat", transmat),
                         ("emissionprob", emissionprob)):
        counts = np.array(counts, dtype=np.float64, ndmin=2)
        totals = counts.sum(axis=1, keepdims=True)
        empty = totals[:, 0] == 0
        if empty.any():
            _log.warning("EM left %s rows %s without counts; using uniform rows", name,
                         np.flatnonzero(empty))
            counts[empty], totals[empty] = 1.0, counts.shape[1]
        rows.append(counts / totals)
    return HMM(rows[0][0], rows[1], rows[2])
