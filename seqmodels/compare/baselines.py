"""Baselines on the faces alone: i.i.d. frequencies and a first-order Markov chain.

Both are fitted by counting with add-one (Laplace) smoothing, so no symbol ever
gets probability 0 and a held-out log-loss is always finite. Their forecasts use
the package's time alignment: ``predictive[:, t] = P(x_t | x_0..x_{t-1})``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqmodels._checks import (
    as_symbol_batch,
    by_value,
    check_count,
    check_memory,
    check_probabilities,
)


def laplace_frequencies(counts: np.ndarray) -> np.ndarray:
    """Add-one smoothed frequencies along the last axis: ``(n_v + 1) / (n + V)``."""
    counts = np.asarray(counts, dtype=np.float64) + 1.0
    return counts / counts.sum(axis=-1, keepdims=True)


@by_value
@dataclass(frozen=True)
class IIDBaseline:
    """Every throw independent with the training faces' frequencies.

    Attributes
    ----------
    probs : numpy.ndarray, shape (V,)
        :math:`p_v = (n_v + 1) / (N + V)` from ``N`` training symbols.
    """

    probs: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "probs", check_probabilities("probs", self.probs, ndim=1))

    @classmethod
    def fit(cls, symbols, n_symbols: int) -> IIDBaseline:
        """Count symbols (B, T) or (T,) in ``[0, n_symbols)``, add one to each count."""
        n_symbols = check_count("n_symbols", n_symbols)
        batch, _ = as_symbol_batch(symbols, n_symbols)
        check_memory(8.0 * n_symbols, f"counts of n_symbols={n_symbols}")
        counts = np.bincount(batch.ravel(), minlength=n_symbols)
        return cls(laplace_frequencies(counts))

    def predictive(self, symbols) -> np.ndarray:
        """Forecasts (B, T, V) (or (T, V)): the same ``probs`` at every step."""
        batch, single = as_symbol_batch(symbols, self.probs.shape[0])
        out = np.broadcast_to(self.probs, (*batch.shape, self.probs.shape[0])).copy()
        return out[0] if single else out


@by_value
@dataclass(frozen=True)
class MarkovBaseline:
    """A first-order Markov chain on the faces.

    Attributes
    ----------
    startprob : numpy.ndarray, shape (V,)
        Forecast of the first throw: the smoothed frequencies of all training
        symbols (there are too few first throws to count them alone).
    transmat : numpy.ndarray, shape (V, V)
        :math:`P(x_t = j \\mid x_{t-1} = i) = (n_{ij} + 1) / (n_i + V)`.
    """

    startprob: np.ndarray
    transmat: np.ndarray

    def __post_init__(self) -> None:
        startprob = check_probabilities("startprob", self.startprob, ndim=1)
        transmat = check_probabilities("transmat", self.transmat, ndim=2)
        if transmat.shape != (startprob.size, startprob.size):
            raise ValueError(f"transmat must have shape {(startprob.size, startprob.size)} to "
                             f"match startprob, got {transmat.shape}")
        object.__setattr__(self, "startprob", startprob)
        object.__setattr__(self, "transmat", transmat)

    @classmethod
    def fit(cls, symbols, n_symbols: int) -> MarkovBaseline:
        """Count symbol pairs within each sequence, add one to each count.

        The first throw's forecast is the i.i.d. baseline's.
        """
        start = IIDBaseline.fit(symbols, n_symbols).probs  # validates both arguments
        batch, _ = as_symbol_batch(symbols, n_symbols)
        check_memory(3 * 8.0 * n_symbols**2, f"pair counts of n_symbols={n_symbols}")
        pairs = batch[:, :-1].ravel() * n_symbols + batch[:, 1:].ravel()
        bigrams = np.bincount(pairs, minlength=n_symbols**2).reshape(n_symbols, n_symbols)
        return cls(start, laplace_frequencies(bigrams))

    def predictive(self, symbols) -> np.ndarray:
        """Forecasts (B, T, V) (or (T, V)): ``startprob`` at t=0, then the row of x_{t-1}."""
        batch, single = as_symbol_batch(symbols, self.startprob.shape[0])
        out = np.empty((*batch.shape, self.startprob.shape[0]))
        out[:, 0] = self.startprob
        out[:, 1:] = self.transmat[batch[:, :-1]]
        return out[0] if single else out
