"""Edge-emitting processes as state-emitting HMMs: labelled transition matrices.

Many processes of computational mechanics emit the symbol *with* the
transition: one labelled matrix per symbol,

.. math::

    T^{(x)}_{ij} = P(x_t = x,\\ s_{t+1} = j \\mid s_t = i),

so that a word has probability :math:`P(x_0 .. x_{L-1}) = \\pi T^{(x_0)} \\cdots
T^{(x_{L-1})} \\mathbf{1}` for the start law :math:`\\pi` of :math:`s_0`.
:class:`~seqmodels.hmm.HMM` emits from states instead. :func:`from_labelled_transitions`
builds the state-emitting HMM with exactly the same law over symbol
sequences, and says which original state each new state stands for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqmodels._checks import SUM_TOL, by_value, check_probabilities, float_array, readonly
from seqmodels.hmm.model import HMM, stationary_distribution

#: Largest deviation from ``T[x, i, j] = A[i, j] B[j, x]`` still taken as a factorisation.
FACTOR_TOL = 1e-12


@by_value
@dataclass(frozen=True)
class ConvertedHMM:
    """A state-emitting HMM made from labelled transitions, and the way back.

    Attributes
    ----------
    hmm : HMM
        ``K'`` states; its law over symbol sequences is the labelled process's.
    state_map : numpy.ndarray of int64, shape (K',)
        ``state_map[k]`` is the original state that new state ``k`` stands for:
        at step ``t`` the HMM is in ``k`` exactly when the original process,
        having emitted :math:`x_t`, has moved to :math:`s_{t+1}` = ``state_map[k]``.
    original_states : int
        ``K``, the number of original states.
    emitted : numpy.ndarray of int64, shape (K',)
        The symbol a new state always emits, or -1 for a state that emits
        several (one kept whole, see :func:`from_labelled_transitions`).
    """

    hmm: HMM
    state_map: np.ndarray
    original_states: int
    emitted: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_map", readonly(self.state_map, np.int64))
        object.__setattr__(self, "emitted", readonly(self.emitted, np.int64))

    @property
    def adds_states(self) -> bool:
        """True when the HMM has more states than the original process."""
        return self.hmm.n_states > self.original_states

    def original_beliefs(self, beliefs) -> np.ndarray:
        """Beliefs over the original states: the new states' beliefs summed by ``state_map``.

        Parameters
        ----------
        beliefs : array_like, shape (..., K')
            For example ``hmm.filter(symbols).beliefs``, :math:`P(z_t \\mid x_0..x_t)`.

        Returns
        -------
        numpy.ndarray, shape (..., K)
            :math:`P(s_{t+1} = j \\mid x_0..x_t)`: the mixed state of computational
            mechanics (the belief Shai et al. 2024 probe for), the distribution of
            the state the process is in after emitting :math:`x_t`. NaN padding
            stays NaN.
        """
        beliefs = float_array("beliefs", beliefs)
        if beliefs.shape[-1:] != self.state_map.shape:
            raise ValueError(f"beliefs must end in an axis of {self.state_map.size} states, "
                             f"got shape {beliefs.shape}")
        merge = np.zeros((self.state_map.size, self.original_states))
        merge[np.arange(self.state_map.size), self.state_map] = 1.0
        return beliefs @ merge


def check_labelled_transitions(T) -> np.ndarray:
    """Validate labelled transitions ``T[x, i, j]``; a read-only float64 copy.

    Raises
    ------
    ValueError
        Naming ``T``: not a (V, K, K) array of finite non-negative numbers, or
        a state ``i`` whose outgoing mass :math:`\\sum_{x, j} T_{x i j}` is not
        1 within 1e-8 (the message gives the state and the sum).
    """
    array = float_array("T", T)
    if array.ndim != 3 or array.shape[1] != array.shape[2] or 0 in array.shape:
        raise ValueError(f"T must have shape (V, K, K) with V, K >= 1, got {array.shape}")
    if not np.all(np.isfinite(array)):
        x, i, j = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"T[{x}, {i}, {j}] is not finite: {array[x, i, j]}")
    if np.any(array < 0):
        x, i, j = np.argwhere(array < 0)[0]
        raise ValueError(f"T[{x}, {i}, {j}] is negative: {array[x, i, j]}")
    outgoing = array.sum(axis=(0, 2))
    bad = np.flatnonzero(np.abs(outgoing - 1.0) > SUM_TOL)
    if bad.size:
        i = bad[0]
        raise ValueError(f"T from state {i} sums to {outgoing[i]:.12g} over (x, j), not 1")
    return readonly(array)


def _factorised_states(transitions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which destinations ``j`` emit independently of where they were entered from.

    Destination ``j`` factorises when :math:`T_{xij} = A_{ij} B_{jx}` for every
    ``i`` and ``x``, with :math:`A = \\sum_x T^{(x)}` and :math:`B_{j\\cdot}` the
    symbol law of the transitions into ``j``.

    Returns
    -------
    factorises : numpy.ndarray of bool, shape (K,)
    emission : numpy.ndarray, shape (K, V)
        :math:`B`; uniform for a state no transition enters (it is never
        occupied after step 0, so its row is never used).
    """
    into = transitions.sum(axis=1).T  # (K, V): mass entering j with symbol x
    totals = into.sum(axis=1, keepdims=True)
    emission = np.divide(into, totals, out=np.full_like(into, 1.0 / into.shape[1]),
                         where=totals > 0)
    joint = transitions.sum(axis=0)[None, :, :] * emission.T[:, None, :]  # A[i, j] B[j, x]
    factorises = np.all(np.abs(transitions - joint) <= FACTOR_TOL, axis=(0, 1))
    return factorises, emission


def from_labelled_transitions(T, startprob=None) -> ConvertedHMM:
    """The state-emitting HMM with the law over symbol sequences of labelled transitions.

    Parameters
    ----------
    T : array_like, shape (V, K, K)
        ``T[x, i, j]`` :math:`= P(x_t = x, s_{t+1} = j \\mid s_t = i)`:
        non-negative, summing over ``(x, j)`` to 1 for every ``i``.
    startprob : array_like, shape (K,), optional
        The law :math:`\\pi` of :math:`s_0`. Omitted: the stationary distribution
        of the state chain :math:`A = \\sum_x T^{(x)}` (one of several if that
        chain is reducible), so the symbol process is stationary.

    Returns
    -------
    ConvertedHMM
        The HMM, ``state_map``, ``original_states`` and ``emitted``.

    Notes
    -----
    **Construction.** The new state at step ``t`` records the transition just
    made: the destination :math:`s_{t+1} = j` and, where needed, the symbol
    emitted on the way. A destination ``j`` *factorises* when the symbol
    emitted on entering it does not depend on the source,
    :math:`T_{xij} = A_{ij} B_{jx}`; then ``j`` stays one state emitting
    :math:`B_{j\\cdot}`. Otherwise ``j`` becomes one state ``(x, j)`` per symbol
    ``x`` that can enter it, emitting ``x`` with probability 1. So Mess3 and
    the Golden Mean (every destination factorises) keep their ``K`` states, the
    Even process gets 3, and a generic ``T`` at most ``V K``. Let ``into[i, v]``
    be the probability that a transition from ``i`` lands in new state ``v``:
    :math:`A_{ij}` for a kept ``v = j``, :math:`T_{xij}` for ``v = (x, j)``. Then

    .. math::

        \\text{startprob} = \\pi \\, \\text{into}, \\qquad
        \\text{transmat}_{uv} = \\text{into}[\\text{state\\_map}[u], v].

    **Proof that the laws agree.** Write :math:`E_{vx}` for the new emission
    matrix and note :math:`\\text{into}[i, v] E_{vx} = T_{xij}` summed over the
    new states ``v`` of destination ``j`` (kept: :math:`A_{ij} B_{jx} = T_{xij}`;
    split: only ``v = (x, j)`` emits ``x``). Let :math:`\\alpha_t(v) = P(x_0..x_t,
    z_t = v)` be the new HMM's forward variable and :math:`\\beta_t(j) =
    P(x_0..x_t, s_{t+1} = j) = (\\pi T^{(x_0)} \\cdots T^{(x_t)})_j` the original
    one. Claim: :math:`\\sum_{v \\to j} \\alpha_t(v) = \\beta_t(j)`, the sum over
    the new states with ``state_map[v] = j``. At ``t = 0``,
    :math:`\\sum_{v \\to j} \\sum_i \\pi_i \\text{into}[i, v] E_{v x_0} = \\sum_i
    \\pi_i T_{x_0 i j} = \\beta_0(j)`. If it holds at ``t``, since every row of
    the transition matrix depends on ``u`` only through ``state_map[u]``,

    .. math::

        \\sum_{v \\to k} \\alpha_{t+1}(v)
        = \\sum_{v \\to k} \\sum_j \\beta_t(j)\\, \\text{into}[j, v]\\, E_{v x_{t+1}}
        = \\sum_j \\beta_t(j)\\, T_{x_{t+1} j k} = \\beta_{t+1}(k).

    Summing over ``k`` gives :math:`P_{new}(x_0..x_t) = P_{orig}(x_0..x_t)` for
    every word, start included; dividing by it shows that the HMM's filtered
    beliefs summed by ``state_map`` are :math:`P(s_{t+1} \\mid x_0..x_t)`
    (:meth:`ConvertedHMM.original_beliefs`). If :math:`\\pi` is stationary for
    :math:`A`, ``startprob`` is stationary for ``transmat`` (the states of
    destination ``j`` carry :math:`(\\pi A)_j = \\pi_j` between them).
    States that can never be entered (``into`` column 0) are dropped.

    Raises
    ------
    ValueError
        Naming ``T`` or ``startprob`` (see :func:`check_labelled_transitions`).
    """
    transitions = check_labelled_transitions(T)
    n_symbols, n_states, _ = transitions.shape
    if startprob is None:
        startprob = stationary_distribution(transitions.sum(axis=0))
    startprob = check_probabilities("startprob", startprob, ndim=1)
    if startprob.shape != (n_states,):
        raise ValueError(f"startprob must have one entry per state of T ({n_states}), "
                         f"got shape {startprob.shape}")
    factorises, emission = _factorised_states(transitions)
    into_columns, emission_rows, state_map, emitted = [], [], [], []
    for j in range(n_states):
        column = transitions[:, :, j]  # (V, K): T[x, i, j]
        if factorises[j]:
            into_columns.append(column.sum(axis=0))
            emission_rows.append(emission[j])
            state_map.append(j)
            emitted.append(-1 if np.count_nonzero(emission[j]) > 1 else emission[j].argmax())
            continue
        for x in np.flatnonzero(column.sum(axis=1) > 0):
            into_columns.append(column[x])
            emission_rows.append(np.eye(n_symbols)[x])
            state_map.append(j)
            emitted.append(x)
    into = np.stack(into_columns, axis=1)  # (K, K')
    entered = into.sum(axis=0) > 0
    into, state_map = into[:, entered], np.asarray(state_map)[entered]
    hmm = HMM(startprob @ into, into[state_map], np.stack(emission_rows)[entered])
    return ConvertedHMM(hmm, state_map, n_states, np.asarray(emitted)[entered])
