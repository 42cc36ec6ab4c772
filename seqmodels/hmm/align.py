"""Undo label switching: match a fitted model's states to a reference's."""

from __future__ import annotations

import numpy as np

from seqmodels.hmm.model import HMM


def align_states(model: HMM, reference: HMM) -> tuple[HMM, np.ndarray]:
    """Relabel ``model``'s states to line up with ``reference``'s (Hungarian matching).

    The cost of giving model state ``i`` the label of reference state ``j`` is
    the L1 distance between their emission rows plus the gap between their
    stationary probabilities (the second term only breaks ties between states
    that emit alike). :func:`scipy.optimize.linear_sum_assignment` finds the
    permutation of least total cost.

    Parameters
    ----------
    model, reference : HMM
        Same ``K`` and ``V``.

    Returns
    -------
    aligned : HMM
        ``model`` with its states reordered: ``aligned.startprob =
        model.startprob[permutation]``, ``aligned.transmat =
        model.transmat[permutation][:, permutation]``, ``aligned.emissionprob =
        model.emissionprob[permutation]``. It describes the same distribution
        over symbol sequences.
    permutation : numpy.ndarray of int64, shape (K,)
        ``permutation[j]`` is the state of ``model`` that plays reference
        state ``j``: aligned state ``j`` is model state ``permutation[j]``.
    """
    for name, value in (("model", model), ("reference", reference)):
        if not isinstance(value, HMM):
            raise ValueError(f"{name} must be an HMM, got {type(value).__name__}")
    if (model.n_states, model.n_symbols) != (reference.n_states, reference.n_symbols):
        raise ValueError(
            f"model has {model.n_states} states and {model.n_symbols} symbols but reference "
            f"has {reference.n_states} and {reference.n_symbols}: nothing to align"
        )
    emission_gap = np.abs(reference.emissionprob[:, None, :] - model.emissionprob[None, :, :])
    stationary_gap = np.abs(
        reference.stationary_distribution()[:, None] - model.stationary_distribution()[None, :]
    )
    from scipy.optimize import linear_sum_assignment  # deferred: a slow import

    _, permutation = linear_sum_assignment(emission_gap.sum(axis=2) + stationary_gap)
    permutation = permutation.astype(np.int64)
    aligned = HMM(
        model.startprob[permutation],
        model.transmat[np.ix_(permutation, permutation)],
        model.emissionprob[permutation],
    )
    return aligned, permutation
