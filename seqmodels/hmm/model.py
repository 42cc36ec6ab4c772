"""The :class:`HMM` parameters: a validated, frozen categorical hidden Markov model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqmodels._checks import check_probabilities
from seqmodels.hmm.sampling import Seed, sample_chain


@dataclass(frozen=True)
class HMM:
    """A categorical hidden Markov model with validated, read-only parameters.

    Parameters
    ----------
    startprob : array_like, shape (K,)
        :math:`\\pi_k = P(z_0 = k)`.
    transmat : array_like, shape (K, K)
        :math:`A_{ij} = P(z_t = j \\mid z_{t-1} = i)`; rows sum to 1.
    emissionprob : array_like, shape (K, V)
        :math:`B_{kv} = P(x_t = v \\mid z_t = k)`; rows sum to 1.

    Raises
    ------
    ValueError
        If a matrix is not finite, has a negative entry, a row that does not sum
        to 1 within 1e-8, or shapes that do not agree.
    """

    startprob: np.ndarray
    transmat: np.ndarray
    emissionprob: np.ndarray

    def __post_init__(self) -> None:
        startprob = check_probabilities("startprob", self.startprob, ndim=1)
        transmat = check_probabilities("transmat", self.transmat, ndim=2)
        emissionprob = check_probabilities("emissionprob", self.emissionprob, ndim=2)
        n_states = startprob.shape[0]
        if transmat.shape != (n_states, n_states):
            raise ValueError(
                f"transmat must have shape ({n_states}, {n_states}) to match startprob, "
                f"got {transmat.shape}"
            )
        if emissionprob.shape[0] != n_states:
            raise ValueError(
                f"emissionprob must have {n_states} rows to match startprob, "
                f"got shape {emissionprob.shape}"
            )
        object.__setattr__(self, "startprob", startprob)
        object.__setattr__(self, "transmat", transmat)
        object.__setattr__(self, "emissionprob", emissionprob)

    @property
    def n_states(self) -> int:
        """Number of hidden states ``K``."""
        return self.transmat.shape[0]

    @property
    def n_symbols(self) -> int:
        """Number of visible symbols ``V``."""
        return self.emissionprob.shape[1]

    def stationary_distribution(self) -> np.ndarray:
        """Stationary distribution of the hidden chain.

        Returns
        -------
        numpy.ndarray, shape (K,)
            The :math:`p` with :math:`p A = p`, :math:`\\sum_k p_k = 1`, found as
            the least-squares solution of :math:`(A^T - I) p = 0` with the sum
            constraint appended. For a reducible chain this is one of several.
        """
        return stationary_distribution(self.transmat)

    def sample(self, n_sequences: int, length: int, seed: Seed = None):
        """Draw ``n_sequences`` independent sequences of ``length`` steps.

        Returns
        -------
        states : numpy.ndarray of int64, shape (n_sequences, length)
        symbols : numpy.ndarray of int64, shape (n_sequences, length)

        See Also
        --------
        sample_chain : the sampler, shared with :mod:`seqmodels.dice`.
        """
        return sample_chain(
            self.startprob, self.transmat, self.emissionprob, n_sequences, length, seed
        )


def stationary_distribution(transmat: np.ndarray) -> np.ndarray:
    """Stationary distribution ``p`` of a row-stochastic ``transmat`` (K, K): ``p A = p``."""
    n = transmat.shape[0]
    system = np.vstack([transmat.T - np.eye(n), np.ones((1, n))])
    target = np.zeros(n + 1)
    target[-1] = 1.0
    p = np.linalg.lstsq(system, target, rcond=None)[0]
    p = np.clip(p, 0.0, None)
    return p / p.sum()
