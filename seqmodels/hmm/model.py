"""The :class:`HMM` parameters: a validated, frozen categorical hidden Markov model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqmodels._checks import as_symbol_batch, check_count, check_probabilities
from seqmodels.hmm import inference
from seqmodels.hmm.sampling import Seed, sample_chain

#: Independent sequences drawn by :meth:`HMM.entropy_rate` (at most).
_ENTROPY_SEQUENCES = 100


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
        :math:`\\log P(x_0..x_{T-1}) = \\sum_t \\log` ``predictive[:, t, x_t]``.

    For a single (T,) sequence the leading axis is dropped (``log_likelihood``
    is then a 0-d array).
    """

    beliefs: np.ndarray
    predictive: np.ndarray
    log_likelihood: np.ndarray

    def __post_init__(self) -> None:
        for array in (self.beliefs, self.predictive, self.log_likelihood):
            array.setflags(write=False)

    def first(self) -> FilterResult:
        """The result for the first sequence alone, without the batch axis."""
        return FilterResult(
            self.beliefs[0], self.predictive[0], np.asarray(self.log_likelihood[0])
        )


def _batch_major(time_major: np.ndarray) -> np.ndarray:
    """(T, B, ...) -> a C-contiguous (B, T, ...) copy."""
    return np.ascontiguousarray(np.swapaxes(time_major, 0, 1))


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

    def sample(
        self, n_sequences: int, length: int, seed: Seed = None
    ) -> tuple[np.ndarray, np.ndarray]:
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

    # ------------------------------------------------------------------ inference

    def filter(self, symbols) -> FilterResult:
        """Causal filtering: beliefs, one-step forecasts and the log-likelihood.

        Parameters
        ----------
        symbols : array_like of int, shape (B, T) or (T,)
            Values in ``[0, V)``.

        Returns
        -------
        FilterResult
            ``beliefs`` (B, T, K), ``predictive`` (B, T, V), ``log_likelihood``
            (B,); without the leading axis for a (T,) input.

        Raises
        ------
        ValueError
            For invalid symbols, or a sequence with probability 0 (naming the
            sequence and the step).
        """
        batch, single = as_symbol_batch(symbols, self.n_symbols)
        _, beliefs, predicted, scales = self._forward(batch)
        predictive = predicted @ self.emissionprob
        result = FilterResult(
            beliefs=_batch_major(beliefs), predictive=_batch_major(predictive),
            log_likelihood=np.log(scales).sum(axis=0),
        )
        return result.first() if single else result

    def _forward(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        """Emission likelihoods, then beliefs, predicted states and scales (all time-major).

        The shared first half of :meth:`filter` and :meth:`smooth`, on a validated batch.
        """
        likelihoods = inference.emission_likelihoods(self.emissionprob, batch)
        return likelihoods, *inference.forward(self.startprob, self.transmat, likelihoods, batch)

    def log_likelihood(self, symbols) -> np.ndarray:
        """:math:`\\log P(x_0..x_{T-1})` of each sequence, shape (B,) (0-d for a (T,) input).

        The fastest path: the forward pass without storing beliefs, renormalized
        every few steps. Same errors as :meth:`filter`.
        """
        batch, single = as_symbol_batch(symbols, self.n_symbols)
        total = inference.log_likelihood(self.startprob, self.transmat, self.emissionprob, batch)
        return total[0] if single else total

    def smooth(self, symbols) -> np.ndarray:
        """Posterior state probabilities :math:`P(z_t \\mid x_0..x_{T-1})`, shape (B, T, K).

        Uses the future, like hmmlearn's ``predict_proba``; (T, K) for a (T,)
        input. Same errors as :meth:`filter`.
        """
        batch, single = as_symbol_batch(symbols, self.n_symbols)
        likelihoods, beliefs, _, scales = self._forward(batch)
        posterior = _batch_major(inference.smooth(self.transmat, likelihoods, beliefs, scales))
        return posterior[0] if single else posterior

    def viterbi(self, symbols) -> tuple[np.ndarray, np.ndarray]:
        """Most probable hidden paths.

        Returns
        -------
        paths : numpy.ndarray of int64, shape (B, T)
            :math:`\\arg\\max_z P(z \\mid x)`, tie-broken as hmmlearn's ``decode``
            does: the lowest tied state at the last step, the highest tied
            predecessor in every back-pointer.
        log_prob : numpy.ndarray, shape (B,)
            :math:`\\log P(x, z^*)`. Both without the leading axis for a (T,) input.
        """
        batch, single = as_symbol_batch(symbols, self.n_symbols)
        paths, log_prob = inference.viterbi(
            self.startprob, self.transmat, self.emissionprob, batch
        )
        if not np.all(np.isfinite(log_prob)):
            self.log_likelihood(batch)  # raises, naming the sequence and the step
        return (paths[0], log_prob[0]) if single else (paths, log_prob)

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
        burn_in = length // 10
        stationary = self.stationary_distribution()
        _, batch = sample_chain(
            stationary, self.transmat, self.emissionprob, n_seq, length, seed
        )
        total = inference.log_likelihood(stationary, self.transmat, self.emissionprob, batch)
        if burn_in:
            total = total - inference.log_likelihood(
                stationary, self.transmat, self.emissionprob, batch[:, :burn_in]
            )
        per_sequence = -total / (length - burn_in)
        return float(per_sequence.mean()), float(per_sequence.std(ddof=1) / np.sqrt(n_seq))

    # ------------------------------------------------------------------ hmmlearn

    def to_hmmlearn(self, **kwargs):
        """A ``hmmlearn.hmm.CategoricalHMM`` with these parameters.

        ``n_features`` is set (so an unseen symbol cannot change the alphabet),
        ``implementation="scaling"``, ``params="ste"`` and ``init_params=""`` (so
        ``fit`` starts from these values); ``kwargs`` go to the constructor.
        """
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
        ``state_map``, ``original_states``); see
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


def hmmlearn_input(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A ``(B, T)`` batch in hmmlearn's layout.

    Returns
    -------
    X : numpy.ndarray, shape (B * T, 1)
        The rows concatenated.
    lengths : numpy.ndarray of int, shape (B,)
        Every entry ``T``.
    """
    return batch.reshape(-1, 1), np.full(batch.shape[0], batch.shape[1])


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
