"""The :class:`HMM` parameters: a validated, frozen categorical hidden Markov model.

Its inference methods run the compiled passes of :mod:`seqmodels.hmm.kernels`
on sequences in any of the package's layouts (see
:func:`seqmodels._checks.as_sequences`): a ``(B, T)`` batch, a ``(T,)``
sequence, a list of 1-D arrays of different lengths, or hmmlearn's ``X`` with
``lengths=``. Per-sequence results are ``(B,)``; per-step results are ``(B,
T_max, ...)``, padded past each sequence's end with NaN (probabilities) or -1
(Viterbi states).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from seqmodels._checks import (
    SymbolBatch,
    as_sequences,
    by_value,
    check_count,
    check_lengths,
    check_memory,
    check_probabilities,
)
from seqmodels.hmm import kernels
from seqmodels.hmm.sampling import Seed, draw_chain, sampling_bytes

#: Independent sequences drawn by :meth:`HMM.entropy_rate` (at most).
_ENTROPY_SEQUENCES = 100

#: What hmmlearn's ``CategoricalHMM`` would otherwise take from ``to_hmmlearn``'s kwargs.
_FIXED_BY_THE_MODEL = ("n_components", "n_features")


@by_value
@dataclass(frozen=True)
class FilterResult:
    """What causal filtering knows at each step; arrays are read-only.

    Attributes
    ----------
    beliefs : numpy.ndarray, shape (B, T, K)
        :math:`P(z_t \\mid x_0..x_t)`.
    predictive : numpy.ndarray, shape (B, T, V)
        :math:`P(x_t \\mid x_0..x_{t-1})`, the forecast made before seeing
        :math:`x_t`; ``predictive[:, 0] = startprob @ emissionprob``.
    log_likelihood : numpy.ndarray, shape (B,)
        :math:`\\log P(x_0..x_{L-1}) = \\sum_t \\log` ``predictive[:, t, x_t]``.
    lengths : numpy.ndarray of int64, shape (B,)
        Each sequence's length ``L``. ``T`` is the longest; for shorter
        sequences ``beliefs`` and ``predictive`` hold NaN from step ``L`` on.

    For a single (T,) sequence the leading axis is dropped (``log_likelihood``
    and ``lengths`` are then 0-d arrays).
    """

    beliefs: np.ndarray
    predictive: np.ndarray
    log_likelihood: np.ndarray
    lengths: np.ndarray

    def __post_init__(self) -> None:
        for array in (self.beliefs, self.predictive, self.log_likelihood, self.lengths):
            array.setflags(write=False)

    def first(self) -> FilterResult:
        """The result for the first sequence alone, without the batch axis (or padding)."""
        n = int(self.lengths[0])
        return FilterResult(self.beliefs[0, :n], self.predictive[0, :n],
                            np.asarray(self.log_likelihood[0]), np.asarray(self.lengths[0]))


def _refuse_impossible(batch: SymbolBatch, bad_step: np.ndarray) -> None:
    """Raise for the first sequence with a step of probability 0 (``bad_step >= 0``)."""
    bad = np.flatnonzero(bad_step >= 0)
    if bad.size:
        sequence, step = int(bad[0]), int(bad_step[bad[0]])
        raise ValueError(
            f"sequence {sequence} has zero probability under the model: symbol "
            f"{int(batch.symbols[sequence, step])} at step {step} cannot be emitted by any "
            "state reachable there"
        )


def _check_outputs(batch: SymbolBatch, values_per_step: int, what: str, scratch: int = 0) -> None:
    """Refuse ``values_per_step`` 8-byte outputs per step, plus the kernel's scratch of
    ``scratch`` floats per lane-step (:func:`kernels.scratch_bytes`), when they cannot fit."""
    n_seq, n_steps = batch.symbols.shape
    check_memory(8.0 * n_seq * n_steps * values_per_step
                 + kernels.scratch_bytes(n_seq, n_steps, scratch),
                 f"{what} of n_sequences={n_seq} x length={n_steps}")


def _lane_groups(batch: SymbolBatch, lanes: int = kernels.LANES) -> tuple:
    """The kernels' arguments for ``batch``: C-contiguous symbols, the lengths, and the
    lane groups (longest first, up to ``lanes`` wide) and chunks."""
    n_seq = len(batch.lengths)
    return (np.ascontiguousarray(batch.symbols), batch.lengths,
            kernels.longest_first(batch.lengths), kernels.lane_width(n_seq, lanes),
            kernels.chunk_count(n_seq, lanes))


@by_value
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

    Notes
    -----
    Two models are equal (and hash alike) when their arrays are equal.
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

    @cached_property
    def _transposed(self) -> tuple[np.ndarray, np.ndarray]:
        """``transmat.T`` and ``emissionprob.T``, C-contiguous, as the kernels read them."""
        return (np.ascontiguousarray(self.transmat.T),
                np.ascontiguousarray(self.emissionprob.T))

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

    def sample(self, n_sequences: int, length, seed: Seed = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n_sequences`` independent sequences.

        Parameters
        ----------
        n_sequences : int
            ``B >= 1``.
        length : int or array_like of int, shape (B,)
            Steps per sequence: one length for all, or one per sequence.
        seed : int, numpy.random.Generator or None
            Passed once to :func:`numpy.random.default_rng`.

        Returns
        -------
        states : numpy.ndarray of int64, shape (B, T)
        symbols : numpy.ndarray of int64, shape (B, T)
            ``T`` is the longest length; with lengths per sequence both hold -1
            past each sequence's end (drop it with ``row[:n]`` before inference).

        Raises
        ------
        ValueError
            For a bad size, or arrays that cannot fit in memory (before allocating).
        """
        n_sequences = check_count("n_sequences", n_sequences)
        lengths = _sample_lengths(n_sequences, length, self.n_states)
        return draw_chain(self.startprob, self.transmat, self.emissionprob, lengths, seed)

    # ------------------------------------------------------------------ inference

    def _sequences(self, symbols, lengths) -> SymbolBatch:
        return as_sequences(symbols, self.n_symbols, lengths=lengths)

    def filter(self, symbols, lengths=None) -> FilterResult:
        """Causal filtering: beliefs, one-step forecasts and the log-likelihood.

        Parameters
        ----------
        symbols : array_like of int
            A ``(B, T)`` batch, a ``(T,)`` sequence, a list of 1-D sequences of
            different lengths, or hmmlearn's ``X`` (``(N,)`` or ``(N, 1)``) with
            ``lengths``. Values in ``[0, V)``.
        lengths : array_like of int, optional
            hmmlearn's ``lengths``, summing to ``N``.

        Returns
        -------
        FilterResult
            ``beliefs`` (B, T, K), ``predictive`` (B, T, V) (NaN past each end),
            ``log_likelihood`` (B,), ``lengths`` (B,); without the leading axis
            for a (T,) input.

        Raises
        ------
        ValueError
            For invalid symbols or lengths, outputs that cannot fit in memory, or
            a sequence with probability 0 (naming the sequence and the step).
        """
        batch = self._sequences(symbols, lengths)
        _check_outputs(batch, self.n_states + self.n_symbols, "filter")
        beliefs, predictive, log_likelihood = self._forward(batch, beliefs=True)
        result = FilterResult(beliefs, predictive, log_likelihood, batch.lengths.copy())
        return result.first() if batch.single else result

    def predictive(self, symbols, lengths=None) -> np.ndarray:
        """One-step forecasts :math:`P(x_t \\mid x_0..x_{t-1})`, shape (B, T, V).

        The package's one forecaster call (the RNN and the baselines answer it
        too): :meth:`filter`'s ``predictive``, without storing the beliefs.
        NaN past each sequence's end; (T, V) for a (T,) input. Same input and
        errors as :meth:`filter`.
        """
        batch = self._sequences(symbols, lengths)
        _check_outputs(batch, self.n_symbols, "predictive")
        _, predictive, _ = self._forward(batch, beliefs=False)
        return predictive[0] if batch.single else predictive

    def _forward(self, batch: SymbolBatch, beliefs: bool):
        """The filter kernel on ``batch``: beliefs (or None), predictive, log P."""
        n_seq, n_steps = batch.symbols.shape
        transmat_t, emission_t = self._transposed
        belief_out = np.empty((n_seq if beliefs else 0, n_steps, self.n_states))
        predictive = np.empty((n_seq, n_steps, self.n_symbols))
        log_likelihood, bad_step = np.empty(n_seq), np.empty(n_seq, dtype=np.int64)
        kernels.filter_pass(self.startprob, transmat_t, emission_t,
                            *_lane_groups(batch, kernels.FORWARD_LANES), belief_out, predictive,
                            log_likelihood, bad_step)
        _refuse_impossible(batch, bad_step)
        return belief_out if beliefs else None, predictive, log_likelihood

    def log_likelihood(self, symbols, lengths=None) -> np.ndarray:
        """:math:`\\log P(x_0..x_{L-1})` of each sequence, shape (B,) (0-d for a (T,) input).

        The fastest pass: the forward recursion alone, normalized only when the
        forward vector gets small, with ``O(B K)`` memory beyond the input. A
        sequence of probability 0 gets ``-inf`` (the others are unaffected).
        Same input as :meth:`filter`.
        """
        batch = self._sequences(symbols, lengths)
        total = self._log_likelihood(self.startprob, batch)
        return total[0] if batch.single else total

    def _log_likelihood(self, startprob: np.ndarray, batch: SymbolBatch) -> np.ndarray:
        transmat_t, emission_t = self._transposed
        return kernels.log_likelihood(startprob, transmat_t, emission_t,
                                      *_lane_groups(batch, kernels.FORWARD_LANES))

    def smooth(self, symbols, lengths=None) -> np.ndarray:
        """Posterior state probabilities :math:`P(z_t \\mid x_0..x_{L-1})`, shape (B, T, K).

        Uses the future, like hmmlearn's ``predict_proba``. NaN past each
        sequence's end (so ``~numpy.isnan(posterior[..., 0])`` marks the steps
        that exist); (T, K) for a (T,) input. Same input and errors as :meth:`filter`.
        """
        batch = self._sequences(symbols, lengths)
        _check_outputs(batch, self.n_states, "smooth", scratch=self.n_states + 2)
        n_seq = len(batch.lengths)
        transmat_t, emission_t = self._transposed
        posterior = np.empty((*batch.symbols.shape, self.n_states))
        log_likelihood, bad_step = np.empty(n_seq), np.empty(n_seq, dtype=np.int64)
        kernels.forward_backward(self.startprob, self.transmat, transmat_t, emission_t,
                                 *_lane_groups(batch), posterior, np.empty((0, self.n_states, 0)),
                                 log_likelihood, bad_step)
        _refuse_impossible(batch, bad_step)
        return posterior[0] if batch.single else posterior

    def viterbi(self, symbols, lengths=None) -> tuple[np.ndarray, np.ndarray]:
        """Most probable hidden paths.

        Parameters
        ----------
        symbols, lengths
            As in :meth:`filter`.

        Returns
        -------
        paths : numpy.ndarray of int64, shape (B, T)
            :math:`\\arg\\max_z P(z \\mid x)`, tie-broken as hmmlearn's ``decode``
            does: the lowest tied state at the last step, the highest tied
            predecessor in every back-pointer. -1 past each sequence's end (so
            ``(paths >= 0).sum(axis=1)`` are the lengths).
        log_prob : numpy.ndarray, shape (B,)
            :math:`\\log P(x, z^*)`. Both without the leading axis for a (T,) input.

        Raises
        ------
        ValueError
            As :meth:`filter`.
        """
        batch = self._sequences(symbols, lengths)
        _check_outputs(batch, 1, "viterbi", scratch=self.n_states + 1)
        n_seq = len(batch.lengths)
        paths = np.empty(batch.symbols.shape, dtype=np.int64)
        log_prob, bad_step = np.empty(n_seq), np.empty(n_seq, dtype=np.int64)
        with np.errstate(divide="ignore"):
            logs = [np.log(array) for array in (self.startprob, *self._transposed)]
        kernels.viterbi_pass(*logs, *_lane_groups(batch), paths, log_prob, bad_step)
        _refuse_impossible(batch, bad_step)
        return (paths[0], log_prob[0]) if batch.single else (paths, log_prob)

    def next_given_state(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Forecast one step ahead from a known state: given :math:`z_t = k`.

        Returns
        -------
        p_next_state : numpy.ndarray, shape (K,)
            :math:`P(z_{t+1} = j \\mid z_t = k) = A_{kj}`.
        p_next_symbol : numpy.ndarray, shape (V,)
            :math:`P(x_{t+1} = v \\mid z_t = k) = \\sum_j A_{kj} B_{jv}`.
        """
        k = self._check_state(k)
        p_state = np.array(self.transmat[k])
        return p_state, p_state @ self.emissionprob

    def previous_given_state(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Look one step back from a known state, under the stationary chain.

        Bayes' rule with the stationary distribution :math:`p`:
        :math:`P(z_{t-1} = i \\mid z_t = k) = p_i A_{ik} / p_k`.

        Returns
        -------
        p_prev_state : numpy.ndarray, shape (K,)
        p_prev_symbol : numpy.ndarray, shape (V,)
            :math:`P(x_{t-1} = v \\mid z_t = k) = \\sum_i P(z_{t-1} = i \\mid z_t = k) B_{iv}`.

        Raises
        ------
        ValueError
            If state ``k`` has stationary probability 0 (it is never visited).
        """
        k = self._check_state(k)
        stationary = self.stationary_distribution()
        joint = stationary * self.transmat[:, k]
        if joint.sum() <= 0:
            raise ValueError(f"state {k} has stationary probability 0: it has no past")
        p_state = joint / joint.sum()
        return p_state, p_state @ self.emissionprob

    def entropy_rate(self, n_steps: int = 10**6, seed: Seed = None) -> tuple[float, float]:
        """Monte Carlo entropy rate: the Bayes-optimal log loss, nats per symbol.

        Draws ``S = clip(n_steps // 1000, 2, 100)`` independent sequences of
        ``L = n_steps // S`` steps from the stationary chain, filters them with
        the stationary distribution as prior, and averages :math:`-\\log
        P(x_t \\mid x_{<t})` over steps ``t >= L // 10`` (the first tenth is
        burn-in, whose forecasts know less than the long-run ones).

        Returns
        -------
        estimate : float
            Mean of the per-sequence averages.
        standard_error : float
            Their standard deviation over :math:`\\sqrt S`: the sequences are
            independent, so no batch-means correction for autocorrelation is needed.
        """
        n_steps = check_count("n_steps", n_steps, minimum=20)
        n_seq = max(2, min(_ENTROPY_SEQUENCES, n_steps // 1000))
        length = n_steps // n_seq
        check_memory(sampling_bytes(n_seq, length, self.n_states),
                     f"entropy_rate with n_steps={n_steps}")
        burn_in = length // 10
        stationary = self.stationary_distribution()
        _, symbols = draw_chain(stationary, self.transmat, self.emissionprob,
                                np.full(n_seq, length), seed)
        total = self._log_likelihood(stationary, SymbolBatch(symbols, np.full(n_seq, length)))
        if burn_in:
            total = total - self._log_likelihood(
                stationary, SymbolBatch(symbols, np.full(n_seq, burn_in)))
        per_sequence = -total / (length - burn_in)
        return float(per_sequence.mean()), float(per_sequence.std(ddof=1) / np.sqrt(n_seq))

    # ------------------------------------------------------------------ hmmlearn

    def to_hmmlearn(self, **kwargs):
        """A ``hmmlearn.hmm.CategoricalHMM`` with these parameters.

        ``n_features`` is set (so an unseen symbol cannot change the alphabet),
        ``implementation="scaling"``, ``params="ste"`` and ``init_params=""`` (so
        ``fit`` starts from these values); ``kwargs`` go to the constructor.

        Raises
        ------
        ValueError
            For ``n_components`` or ``n_features`` in ``kwargs``: the model fixes both.
        """
        fixed = [name for name in _FIXED_BY_THE_MODEL if name in kwargs]
        if fixed:
            raise ValueError(
                f"{fixed[0]} is fixed by the model (n_components={self.n_states}, "
                f"n_features={self.n_symbols}); do not pass it to to_hmmlearn"
            )
        from hmmlearn.hmm import CategoricalHMM

        options = {"implementation": "scaling", "params": "ste", "init_params": ""} | kwargs
        model = CategoricalHMM(n_components=self.n_states, n_features=self.n_symbols, **options)
        model.startprob_ = np.array(self.startprob)
        model.transmat_ = np.array(self.transmat)
        model.emissionprob_ = np.array(self.emissionprob)
        return model

    @classmethod
    def from_labelled_transitions(cls, T, startprob=None):
        """The state-emitting HMM of labelled transitions ``T[x, i, j]``, and the state map.

        ``T[x, i, j] = P(emit x, go to j | in i)``, shape (V, K, K); the process
        starts in ``startprob`` (the stationary distribution when omitted).
        Returns a :class:`~seqmodels.hmm.labelled.ConvertedHMM` (``hmm``,
        ``state_map``, ``original_states``, ``emitted``); see
        :func:`seqmodels.hmm.labelled.from_labelled_transitions` for the
        construction and the proof that the laws agree.
        """
        from seqmodels.hmm.labelled import from_labelled_transitions  # imports this module

        return from_labelled_transitions(T, startprob)

    @classmethod
    def from_hmmlearn(cls, model) -> HMM:
        """The parameters of a fitted ``hmmlearn.hmm.CategoricalHMM`` (validated)."""
        try:
            arrays = (model.startprob_, model.transmat_, model.emissionprob_)
        except AttributeError as err:
            raise ValueError(f"model is not a fitted CategoricalHMM: {err}") from None
        return cls(*arrays)

    def _check_state(self, k) -> int:
        k = check_count("k", k, minimum=0)
        if k >= self.n_states:
            raise ValueError(f"k must be a state in [0, {self.n_states}), got {k}")
        return k


def _sample_lengths(n_sequences: int, length, n_states: int) -> np.ndarray:
    """``length`` (an int, or one per sequence) as a validated (B,) int64 array.

    ``ValueError`` naming the sizes when the sample of ``n_states`` states cannot
    fit in memory (:func:`sampling_bytes`), before anything of that size exists.
    """
    if np.ndim(length) == 0:
        longest = check_count("length", length)
    else:
        length = check_lengths(length, name="length")
        if length.shape != (n_sequences,):
            raise ValueError(f"length must be an int or one length per sequence "
                             f"({n_sequences}), got {length.size} lengths")
        longest = int(length.max())
    check_memory(sampling_bytes(n_sequences, longest, n_states),
                 f"sampling n_sequences={n_sequences} x length={longest}")
    return np.full(n_sequences, length, dtype=np.int64) if np.ndim(length) == 0 else length


def hmmlearn_input(batch: SymbolBatch) -> tuple[np.ndarray, np.ndarray]:
    """Sequences in hmmlearn's layout.

    Returns
    -------
    X : numpy.ndarray of int64, shape (N, 1)
        The sequences concatenated, padding dropped (``N = lengths.sum()``).
    lengths : numpy.ndarray of int64, shape (B,)
    """
    return batch.symbols[batch.mask()].reshape(-1, 1), batch.lengths.copy()


def stationary_distribution(transmat) -> np.ndarray:
    """Stationary distribution ``p`` of a row-stochastic ``transmat`` (K, K): ``p A = p``.

    The least-squares solution of :math:`(A^T - I) p = 0` with :math:`\\sum_k p_k = 1`
    appended, clipped at 0 and renormalized; for a reducible chain, one of several.
    ``ValueError`` if ``transmat`` is not a square row-stochastic matrix.
    """
    transmat = check_probabilities("transmat", transmat, ndim=2)
    n = transmat.shape[0]
    if transmat.shape != (n, n):
        raise ValueError(f"transmat must be square, got shape {transmat.shape}")
    system = np.vstack([transmat.T - np.eye(n), np.ones((1, n))])
    target = np.zeros(n + 1)
    target[-1] = 1.0
    p = np.linalg.lstsq(system, target, rcond=None)[0]
    p = np.clip(p, 0.0, None)
    return p / p.sum()
