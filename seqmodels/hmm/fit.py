"""Fitting an :class:`HMM`: by counting (hidden chain known) and by Baum-Welch (hmmlearn).

:func:`fit_em` runs hmmlearn's ``CategoricalHMM`` from data-driven starts (:func:`window_init`,
k-means on window histograms) with restarts chosen cheaply:
every restart gets a short screening run, and only the best few continue to
convergence. Label switching between fits is undone by
:func:`~seqmodels.hmm.align.align_states`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from seqmodels._checks import as_generator, as_symbol_batch, check_count, check_real
from seqmodels.hmm.model import HMM, hmmlearn_input
from seqmodels.hmm.sampling import Seed

if TYPE_CHECKING:
    import pandas as pd

_log = logging.getLogger(__name__)

#: Dirichlet pseudocount added to every emission count in the M-step, through
#: hmmlearn's ``emissionprob_prior = 1 + EMISSION_PSEUDOCOUNT`` (a MAP estimate).
#: No fitted emission is exactly 0, so a symbol unseen in training cannot make a
#: held-out score -inf; against ~1e5 training symbols the bias is ~1e-8.
EMISSION_PSEUDOCOUNT = 1e-3

#: Default convergence threshold of :func:`fit_em`, per training symbol: EM stops
#: when the total log-likelihood improves by less than this times the number of
#: symbols in one iteration, so the stopping point does not depend on data size.
TOL_PER_SYMBOL = 1e-7

#: Starting points :func:`fit_em` knows: ``"windows"`` (:func:`window_init`) and
#: ``"random"`` (flat Dirichlet draws).
INITS = ("windows", "random")


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
    pseudocount = check_real("pseudocount", pseudocount)
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
    transitions = _pair_counts(states[:, :-1], states[:, 1:], n_states, n_states) + pseudocount
    emissions = _pair_counts(states, visible, n_states, n_symbols) + pseudocount
    _require_data("transmat", transitions, "never left (no transition out of it)")
    _require_data("emissionprob", emissions, "never visited")
    return HMM(
        start / start.sum(),
        transitions / transitions.sum(axis=1, keepdims=True),
        emissions / emissions.sum(axis=1, keepdims=True),
    )


def _pair_counts(rows: np.ndarray, columns: np.ndarray, n_rows: int, n_columns: int) -> np.ndarray:
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
    tol: float | None = None, seed: Seed = None, progress: bool = True, *, screen_iter: int = 20,
    n_finalists: int = 3, init: str = "windows", window: int = 10,
) -> EMFit:
    """Baum-Welch with restarts, through hmmlearn's ``CategoricalHMM``.

    Parameters
    ----------
    symbols : array_like of int, shape (B, T) or (T,)
        Training sequences, values in ``[0, n_symbols)``.
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
        not shift with the data size; the default used to be an absolute 1e-2.
    seed : int, numpy.random.Generator or None
        Passed once to :func:`numpy.random.default_rng`.
    progress : bool
        Show a tqdm bar over the runs.
    screen_iter : int
        Iterations every restart gets before the ranking.
    n_finalists : int
        How many of the best-screened restarts continue to convergence.
    init : {"windows", "random"}
        ``"windows"`` (default): :func:`window_init`, k-means on the symbol
        histograms of ``window``-step windows, each restart with its own
        k-means++ seeding. ``"random"``: start and transition rows and emission
        rows from a flat Dirichlet (the default before window starts).
    window : int
        Window length of ``init="windows"`` (capped at the sequence length).

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
    iterations. Emission counts get a Dirichlet pseudocount of
    ``EMISSION_PSEUDOCOUNT`` (hmmlearn's ``emissionprob_prior``).
    """
    n_symbols = check_count("n_symbols", n_symbols)
    batch, _ = as_symbol_batch(symbols, n_symbols)
    n_states = check_count("n_states", n_states)
    n_restarts = check_count("n_restarts", n_restarts)
    max_iter = check_count("max_iter", max_iter)
    screen_iter = min(check_count("screen_iter", screen_iter), max_iter)
    n_finalists = min(check_count("n_finalists", n_finalists), n_restarts)
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    window = min(check_count("window", window), batch.shape[1])
    tol = TOL_PER_SYMBOL * batch.size if tol is None else check_real("tol", tol)
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive number, got {tol}")
    rng = as_generator(seed)
    X, lengths = hmmlearn_input(batch)
    runs = [_Run(_starting_model(batch, n_states, n_symbols, rng, init, window))
            for _ in range(n_restarts)]
    finalists = _screen_then_finish(runs, X, lengths, screen_iter, n_finalists, max_iter, tol,
                                    progress)
    models = [_to_hmm(run.model) for run in runs]
    scores = [float(model.log_likelihood(batch).sum()) for model in models]
    best = int(np.argmax(scores))
    table = _restarts_frame(runs, scores, finalists, tol)
    _log.info("fit_em: best restart %d of %d, log-likelihood %.4f", best, n_restarts, scores[best])
    return EMFit(model=models[best], log_likelihood=scores[best], restarts=table)


def _screen_then_finish(
    runs: list[_Run], X: np.ndarray, lengths: np.ndarray, screen_iter: int, n_finalists: int,
    max_iter: int, tol: float, progress: bool,
) -> np.ndarray:
    """Run every restart ``screen_iter`` iterations, then the best ``n_finalists`` to the end.

    Returns the finalists' indices, best screened first (ties keep restart order).
    """
    with tqdm(total=len(runs) + n_finalists, desc="EM restarts", disable=not progress) as bar:
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


def _starting_model(batch: np.ndarray, n_states: int, n_symbols: int, rng: np.random.Generator,
                    init: str, window: int):
    """One restart's hmmlearn model: clustered windows or flat Dirichlet draws from ``rng``."""
    if init == "random":
        initial = _dirichlet_model(n_states, n_symbols, rng)
    else:
        initial = window_init(batch, n_states, n_symbols, window, rng)
    return _to_hmmlearn(initial, rng)


def _dirichlet_model(n_states: int, n_symbols: int, rng: np.random.Generator) -> HMM:
    """Start and every row of ``transmat`` and ``emissionprob`` from a flat Dirichlet."""
    start = rng.dirichlet(np.ones(n_states))
    transmat = rng.dirichlet(np.ones(n_states), size=n_states)
    emissionprob = rng.dirichlet(np.ones(n_symbols), size=n_states)
    return HMM(start, transmat, emissionprob)


def _to_hmmlearn(initial: HMM, rng: np.random.Generator):
    """``initial`` as a hmmlearn model that ``fit`` starts from (it will not reset it)."""
    # random_state is unused (init_params=""), but a RandomState, never an int:
    # an int makes every sample() call of the fitted model identical.
    return initial.to_hmmlearn(
        emissionprob_prior=1.0 + EMISSION_PSEUDOCOUNT,
        random_state=np.random.RandomState(rng.integers(2**32)),
    )


def window_init(
    symbols, n_states: int, n_symbols: int, window: int = 10, seed: Seed = None,
    smoothing: float = 0.1, kmeans_iter: int = 100,
) -> HMM:
    """Starting parameters for Baum-Welch from clustered window histograms.

    Each training sequence is cut into non-overlapping windows of ``window``
    steps (a shorter tail is dropped); each window's symbol histogram is a point
    on the simplex, and k-means (k-means++ seeding, Lloyd iterations) groups the
    points into ``K = n_states`` clusters. In a sticky chain most windows are
    dominated by one state, so the centroids lie near the emission rows.

    Parameters
    ----------
    symbols : array_like of int, shape (B, T) or (T,)
        Training sequences, values in ``[0, n_symbols)``; ``T >= window``.
    n_states, n_symbols : int
        ``K`` and ``V``.
    window : int
        Steps per window.
    seed : int, numpy.random.Generator or None
        Drives the k-means++ seeding (the only randomness).
    smoothing : float
        Weight in ``[0, 1)`` of the overall symbol frequencies (add-one smoothed)
        mixed into every centroid, so that with ``smoothing > 0`` no emission
        starts at 0.
    kmeans_iter : int
        Cap on Lloyd iterations.

    Returns
    -------
    HMM
        ``emissionprob[k] = (1 - smoothing) c_k + smoothing f`` for centroid
        ``c_k`` and add-one smoothed overall frequencies ``f``; ``transmat`` sticky at the window
        scale, diagonal ``1 - 1/window``, the rest spread evenly; ``startprob``
        the cluster frequencies of the first windows, add-one smoothed.
    """
    n_symbols = check_count("n_symbols", n_symbols)
    batch, _ = as_symbol_batch(symbols, n_symbols)
    n_states = check_count("n_states", n_states)
    window = check_count("window", window)
    kmeans_iter = check_count("kmeans_iter", kmeans_iter)
    if batch.shape[1] < window:
        raise ValueError(f"window must be at most the sequence length {batch.shape[1]}, "
                         f"got {window}")
    smoothing = check_real("smoothing", smoothing)
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    rng = as_generator(seed)
    histograms = _window_histograms(batch, n_symbols, window)
    centroids, labels = _kmeans(histograms.reshape(-1, n_symbols), n_states, rng, kmeans_iter)
    frequencies = (np.bincount(batch.ravel(), minlength=n_symbols) + 1.0) / (batch.size + n_symbols)
    emissionprob = (1.0 - smoothing) * centroids + smoothing * frequencies
    first = labels.reshape(histograms.shape[:2])[:, 0]
    start = np.bincount(first, minlength=n_states) + 1.0
    transmat = np.full((n_states, n_states), 1.0 / (window * max(n_states - 1, 1)))
    np.fill_diagonal(transmat, 1.0 - 1.0 / window if n_states > 1 else 1.0)
    return HMM(start / start.sum(), transmat, emissionprob / emissionprob.sum(1, keepdims=True))


def _window_histograms(batch: np.ndarray, n_symbols: int, window: int) -> np.ndarray:
    """Symbol frequencies of each non-overlapping window, shape (B, T // window, V)."""
    n_windows = batch.shape[1] // window
    windows = batch[:, : n_windows * window].reshape(batch.shape[0], n_windows, window)
    one_hot = windows[..., None] == np.arange(n_symbols)
    return one_hot.mean(axis=2)


def _kmeans(
    points: np.ndarray, k: int, rng: np.random.Generator, max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding: centroids (k, D) and labels (N,).

    A cluster that empties keeps its previous centroid.
    """
    centroids = _kmeans_plus_plus(points, k, rng)
    labels = np.full(len(points), -1)
    for _ in range(max_iter):
        new_labels = _squared_distances(points, centroids).argmin(axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, points)
        counts = np.bincount(labels, minlength=k)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids, labels


def _kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeds: each next centroid drawn with probability proportional to D^2."""
    chosen = [int(rng.integers(len(points)))]
    nearest = _squared_distances(points, points[chosen]).min(axis=1)
    for _ in range(1, k):
        total = nearest.sum()
        # All points coincide with a seed: any point will do.
        index = int(rng.choice(len(points), p=nearest / total) if total > 0
                    else rng.integers(len(points)))
        chosen.append(index)
        nearest = np.minimum(nearest, _squared_distances(points, points[[index]])[:, 0])
    return points[chosen].astype(np.float64, copy=True)


def _squared_distances(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances, shape (N, k)."""
    return ((points[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)


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
