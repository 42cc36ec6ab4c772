"""Fitting an :class:`HMM`: by counting (hidden chain known) and by Baum-Welch (hmmlearn).

:func:`fit_em` runs hmmlearn's ``CategoricalHMM`` with restarts chosen cheaply:
every restart gets a short screening run, and only the best few continue to
convergence. Label switching between fits is undone by
:func:`~seqmodels.hmm.align.align_states`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from seqmodels._checks import as_symbol_batch, check_count
from seqmodels.hmm.model import HMM
from seqmodels.hmm.sampling import Seed

_log = logging.getLogger(__name__)

#: Dirichlet pseudocount added to every emission count in the M-step, through
#: hmmlearn's ``emissionprob_prior = 1 + EMISSION_PSEUDOCOUNT`` (a MAP estimate).
#: No fitted emission is exactly 0, so a symbol unseen in training cannot make a
#: held-out score -inf; against ~1e5 training symbols the bias is ~1e-8.
EMISSION_PSEUDOCOUNT = 1e-3


def fit_counts(dice, symbols, n_states: int, n_symbols: int, pseudocount: float = 0.0) -> HMM:
    """Maximum-likelihood parameters by counting, when the hidden chain is known.

    Parameters
    ----------
    dice : array_like of int, shape (B, T) or (T,)
        Hidden states in ``[0, n_states)``.
    symbols : array_like of int, same shape as ``dice``
        Visible symbols in ``[0, n_symbols)``.
    n_states, n_symbols : int
        ``K`` and ``V``.
    pseudocount : float
        Added to every count (start, transition and emission) before normalizing.

    Returns
    -------
    HMM
        :math:`\\hat\\pi_k = n(z_0 = k) / B`, :math:`\\hat A_{ij} = n(i \\to j) /
        n(i \\to \\cdot)`, :math:`\\hat B_{kv} = n(z = k, x = v) / n(z = k)`.

    Raises
    ------
    ValueError
        If the shapes differ, values are out of range, or (with ``pseudocount=0``)
        a state is never visited or never left, so its row has no data.
    """
    n_states = check_count("n_states", n_states)
    n_symbols = check_count("n_symbols", n_symbols)
    if not (np.isfinite(pseudocount) and pseudocount >= 0):
        raise ValueError(f"pseudocount must be finite and >= 0, got {pseudocount}")
    states, _ = as_symbol_batch(dice, n_states, name="dice")
    visible, _ = as_symbol_batch(symbols, n_symbols, name="symbols")
    if states.shape != visible.shape:
        raise ValueError(
            f"dice and symbols must have the same shape, got {np.shape(dice)} and "
            f"{np.shape(symbols)}"
        )
    start = np.bincount(states[:, 0], minlength=n_states) + pseudocount
    pairs = states[:, :-1] * n_states + states[:, 1:]
    transitions = np.bincount(pairs.ravel(), minlength=n_states**2).reshape(n_states, n_states)
    emitted = states * n_symbols + visible
    emissions = np.bincount(emitted.ravel(), minlength=n_states * n_symbols)
    emissions = emissions.reshape(n_states, n_symbols)
    transitions = transitions + pseudocount
    emissions = emissions + pseudocount
    _require_data("transmat", transitions, "never left (no transition out of it)")
    _require_data("emissionprob", emissions, "never visited")
    return HMM(
        start / start.sum(),
        transitions / transitions.sum(axis=1, keepdims=True),
        emissions / emissions.sum(axis=1, keepdims=True),
    )


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
    """

    model: HMM
    log_likelihood: float
    restarts: pd.DataFrame


@dataclass
class _Run:
    """One restart's hmmlearn model and its log-likelihood trace (last two values)."""

    model: object
    iterations: int = 0
    trace: tuple[float, ...] = ()

    def advance(self, X: np.ndarray, lengths: np.ndarray, n_iter: int, tol: float) -> None:
        # hmmlearn's monitor_ keeps the n_iter and tol it was built with: set both.
        self.model.n_iter = self.model.monitor_.n_iter = n_iter
        self.model.tol = self.model.monitor_.tol = tol
        self.model.fit(X, lengths)
        self.iterations += self.model.monitor_.iter
        self.trace = (*self.trace, *self.model.monitor_.history)[-2:]

    def converged(self, tol: float) -> bool:
        # hmmlearn's monitor_.converged is also true when n_iter is reached.
        return len(self.trace) == 2 and self.trace[1] - self.trace[0] < tol


def fit_em(
    symbols, n_states: int, n_symbols: int, n_restarts: int = 10, max_iter: int = 1000,
    tol: float = 1e-2, seed: Seed = None, progress: bool = True, *, screen_iter: int = 20,
    n_finalists: int = 3,
) -> EMFit:
    """Baum-Welch with restarts, through hmmlearn's ``CategoricalHMM``.

    Parameters
    ----------
    symbols : array_like of int, shape (B, T) or (T,)
        Training sequences, values in ``[0, n_symbols)``.
    n_states, n_symbols : int
        ``K`` and ``V``; ``n_features=V`` is fixed, never inferred from the data.
    n_restarts : int
        Random initializations: start and transition rows from a flat
        Dirichlet, emission rows from a flat Dirichlet, all drawn from ``seed``.
    max_iter : int
        Cap on EM iterations per restart (screening included).
    tol : float
        Convergence threshold on the improvement of the total training
        log-likelihood per iteration (hmmlearn's ``tol``, absolute, nats).
    seed : int, numpy.random.Generator or None
        Passed once to :func:`numpy.random.default_rng`.
    progress : bool
        Show a tqdm bar over the runs.
    screen_iter : int
        Iterations every restart gets before the ranking.
    n_finalists : int
        How many of the best-screened restarts continue to convergence.

    Returns
    -------
    EMFit

    Notes
    -----
    Single Baum-Welch runs often stop in a poorer optimum, so restarts matter,
    but running each to convergence costs hundreds of iterations. After
    ``screen_iter`` iterations the ranking by log-likelihood rarely changes, so
    only the top ``n_finalists`` go on. Emission counts get a Dirichlet
    pseudocount of ``EMISSION_PSEUDOCOUNT`` (hmmlearn's ``emissionprob_prior``).
    """
    batch, _ = as_symbol_batch(symbols, n_symbols)
    n_states = check_count("n_states", n_states)
    n_restarts = check_count("n_restarts", n_restarts)
    max_iter = check_count("max_iter", max_iter)
    screen_iter = min(check_count("screen_iter", screen_iter), max_iter)
    n_finalists = min(check_count("n_finalists", n_finalists), n_restarts)
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive number, got {tol}")
    rng = np.random.default_rng(seed)
    X, lengths = batch.reshape(-1, 1), np.full(batch.shape[0], batch.shape[1])
    runs = [_Run(_initial_model(n_states, n_symbols, rng)) for _ in range(n_restarts)]
    with tqdm(total=n_restarts + n_finalists, desc="EM restarts", disable=not progress) as bar:
        for run in runs:
            run.advance(X, lengths, screen_iter, tol)
            bar.update()
        ranking = np.argsort([-run.trace[-1] for run in runs], kind="stable")
        finalists = ranking[:n_finalists]
        for index in finalists:
            run = runs[index]
            if not run.converged(tol) and run.iterations < max_iter:
                run.advance(X, lengths, max_iter - run.iterations, tol)
            bar.update()
    models = [_to_hmm(run.model) for run in runs]
    scores = [float(model.log_likelihood(batch).sum()) for model in models]
    best = int(np.argmax(scores))
    table = pd.DataFrame({
        "restart": np.arange(n_restarts),
        "log_likelihood": scores,
        "iterations": [run.iterations for run in runs],
        "converged": [run.converged(tol) for run in runs],
        "finalist": np.isin(np.arange(n_restarts), finalists),
    })
    _log.info("fit_em: best restart %d of %d, log-likelihood %.4f", best, n_restarts, scores[best])
    return EMFit(model=models[best], log_likelihood=scores[best], restarts=table)


def _initial_model(n_states: int, n_symbols: int, rng: np.random.Generator):
    """A hmmlearn model with random parameters from ``rng`` that ``fit`` will not reset."""
    start = rng.dirichlet(np.ones(n_states))
    transmat = rng.dirichlet(np.ones(n_states), size=n_states)
    emissionprob = rng.dirichlet(np.ones(n_symbols), size=n_states)
    # random_state is unused (init_params=""), but a RandomState, never an int:
    # an int makes every sample() call of the fitted model identical.
    return HMM(start, transmat, emissionprob).to_hmmlearn(
        emissionprob_prior=1.0 + EMISSION_PSEUDOCOUNT,
        random_state=np.random.RandomState(rng.integers(2**32)),
    )


def _to_hmm(model) -> HMM:
    """An :class:`HMM` from a fitted hmmlearn model; a state never left gets a uniform row.

    hmmlearn leaves a transition row at 0 when a state is never left; such a
    row carries no information, and the model would not validate.
    """
    transmat = np.array(model.transmat_)
    empty = transmat.sum(axis=1) == 0
    if empty.any():
        _log.warning("EM left states %s without transitions; using uniform rows", empty.nonzero())
        transmat[empty] = 1.0 / transmat.shape[0]
    return HMM(model.startprob_, transmat, model.emissionprob_)
