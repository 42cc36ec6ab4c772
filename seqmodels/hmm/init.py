"""Where Baum-Welch starts: clustered window histograms (:func:`window_init`), or a flat
Dirichlet draw.

:func:`~seqmodels.hmm.fit.fit_em` draws one start per restart from here.
"""

from __future__ import annotations

import numpy as np

from seqmodels._checks import (
    SymbolBatch,
    as_generator,
    as_sequences,
    check_count,
    check_memory,
    check_real,
)
from seqmodels.hmm.model import HMM
from seqmodels.hmm.sampling import Seed


def parameter_bytes(n_states: int, n_symbols: int) -> float:
    """Bytes of one model's parameters or counts: ``K (1 + K + V)`` floats."""
    return 8.0 * n_states * (1.0 + n_states + n_symbols)


def random_start(n_states: int, n_symbols: int, rng: np.random.Generator) -> HMM:
    """Start and every row of ``transmat`` and ``emissionprob`` from a flat Dirichlet."""
    start = rng.dirichlet(np.ones(n_states))
    transmat = rng.dirichlet(np.ones(n_states), size=n_states)
    emissionprob = rng.dirichlet(np.ones(n_symbols), size=n_states)
    return HMM(start, transmat, emissionprob)


def window_init(
    symbols, n_states: int, n_symbols: int, window: int = 10, seed: Seed = None,
    smoothing: float = 0.1, kmeans_iter: int = 100, lengths=None,
) -> HMM:
    """Starting parameters for Baum-Welch from clustered window histograms.

    Each training sequence is cut into non-overlapping windows of ``window``
    steps (a shorter tail is dropped); each window's symbol histogram is a point
    on the simplex, and k-means (k-means++ seeding, Lloyd iterations) groups the
    points into ``K = n_states`` clusters. In a sticky chain most windows are
    dominated by one state, so the centroids lie near the emission rows.

    Parameters
    ----------
    symbols : array_like of int
        Training sequences in any layout (see :func:`fit_em`), values in
        ``[0, n_symbols)``; the longest at least ``window`` steps. Sequences
        shorter than ``window`` give no window.
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
    lengths : array_like of int, optional
        hmmlearn's ``lengths`` for ``symbols`` in its layout.

    Returns
    -------
    HMM
        ``emissionprob[k] = (1 - smoothing) c_k + smoothing f`` for centroid
        ``c_k`` and add-one smoothed overall frequencies ``f``; ``transmat`` sticky at
        the window scale, diagonal ``1 - 1/window``, the rest spread evenly;
        ``startprob`` the cluster frequencies of the first windows, add-one smoothed.
    """
    n_symbols = check_count("n_symbols", n_symbols)
    batch = as_sequences(symbols, n_symbols, lengths=lengths)
    n_states = check_count("n_states", n_states)
    window = check_count("window", window)
    kmeans_iter = check_count("kmeans_iter", kmeans_iter)
    if batch.lengths.max() < window:
        raise ValueError(f"window must be at most the sequence length {batch.lengths.max()}, "
                         f"got {window}")
    smoothing = check_real("smoothing", smoothing)
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    check_memory(parameter_bytes(n_states, n_symbols)
                 + window_bytes(batch, n_states, n_symbols, window),
                 f"window_init with n_states={n_states} and n_symbols={n_symbols} on "
                 f"{len(batch.lengths)} sequences")
    return windows_start(batch, n_states, n_symbols, window, as_generator(seed), smoothing,
                          kmeans_iter)


def windows_start(batch: SymbolBatch, n_states: int, n_symbols: int, window: int,
                   rng: np.random.Generator, smoothing: float = 0.1,
                   kmeans_iter: int = 100) -> HMM:
    """:func:`window_init` on validated sequences."""
    histograms, whole = _window_histograms(batch, n_symbols, window)
    centroids, labels = _kmeans(histograms[whole], n_states, rng, kmeans_iter)
    symbol_counts = np.bincount(batch.symbols[batch.mask()], minlength=n_symbols)
    frequencies = (symbol_counts + 1.0) / (symbol_counts.sum() + n_symbols)
    emissionprob = (1.0 - smoothing) * centroids + smoothing * frequencies
    window_labels = np.full(whole.shape, -1)
    window_labels[whole] = labels
    first = window_labels[:, 0][whole[:, 0]]  # sequences with at least one window
    start = np.bincount(first, minlength=n_states) + 1.0
    transmat = np.full((n_states, n_states), 1.0 / (window * max(n_states - 1, 1)))
    np.fill_diagonal(transmat, 1.0 - 1.0 / window if n_states > 1 else 1.0)
    return HMM(start / start.sum(), transmat, emissionprob / emissionprob.sum(1, keepdims=True))


def window_bytes(batch: SymbolBatch, n_states: int, n_symbols: int, window: int) -> float:
    """Bytes of :func:`_window_histograms` and of k-means on them: a bool one-hot per step,
    two float histograms per window, and per window its differences to ``K`` centroids."""
    windows = float(batch.symbols.size) / window
    return windows * n_symbols * (window + 16.0 + 8.0 * n_states)


def _window_histograms(batch: SymbolBatch, n_symbols: int,
                       window: int) -> tuple[np.ndarray, np.ndarray]:
    """Symbol frequencies of each non-overlapping window, (B, T // window, V), and which
    windows lie wholly inside their sequence, (B, T // window) bool."""
    n_seq, n_steps = batch.symbols.shape
    n_windows = n_steps // window
    windows = batch.symbols[:, : n_windows * window].reshape(n_seq, n_windows, window)
    one_hot = windows[..., None] == np.arange(n_symbols)
    whole = (np.arange(1, n_windows + 1) * window) <= batch.lengths[:, None]
    return one_hot.mean(axis=2), whole


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
