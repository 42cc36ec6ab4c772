"""The standard processes of belief-state research, beside the dice.

Each process here is given as labelled transitions ``T[x, i, j] = P(emit x, go
to j | in i)`` (edge-emitting, as computational mechanics writes them) and
runs as the state-emitting :class:`~seqmodels.hmm.HMM` with the same law
(:func:`seqmodels.hmm.labelled.from_labelled_transitions`): sampling, filtering
and fitting go through that HMM, so there is one sampler and one filter for
dice and processes alike. Every process starts in the stationary distribution
of its state chain, so its symbol sequences are stationary.

:data:`PRESETS` holds every preset, dice included; each one answers the same
questions (``n_states``, ``n_symbols``, ``state_names``, ``to_hmm()``,
``sample(n_sequences, length, seed)`` with ``.states`` and ``.symbols``).

References
----------
.. [CF03] J. P. Crutchfield and D. P. Feldman, "Regularities unseen, randomness
   observed: Levels of entropy convergence", Chaos 13, 25 (2003): the Golden
   Mean, Even and RRXOR processes, their entropy rates and excess entropies.
.. [MC17] S. E. Marzen and J. P. Crutchfield, "Nearly maximally predictive
   features and their dimensions", Phys. Rev. E 95, 051301(R) (2017): Mess3.
.. [S24] A. S. Shai, S. E. Marzen, L. Teixeira, A. G. Oldenziel and P. M.
   Riechers, "Transformers represent belief state geometry in their residual
   stream", NeurIPS 2024 (arXiv:2405.15943): Mess3 at x = 0.05, alpha = 0.85,
   and RRXOR.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from seqmodels._checks import (
    as_generator,
    by_value,
    check_count,
    check_memory,
    check_real,
    float_array,
    integer_array,
    readonly,
)
from seqmodels.dice import PRESETS as DICE_PRESETS
from seqmodels.dice import DiceHMM, check_sample_lengths
from seqmodels.hmm import HMM, Seed
from seqmodels.hmm.labelled import ConvertedHMM, from_labelled_transitions


@by_value
@dataclass(frozen=True)
class LabelledProcess:
    """A process given by labelled transitions, run through its state-emitting HMM.

    Parameters
    ----------
    name : str
        How reports call it, parameters included: ``"mess3(x=0.05, alpha=0.85)"``.
    T : array_like, shape (V, K, K)
        ``T[x, i, j]`` :math:`= P(x_t = x, s_{t+1} = j \\mid s_t = i)`, validated
        by :func:`~seqmodels.hmm.labelled.check_labelled_transitions`.
    original_state_names : sequence of str, optional
        Names of the ``K`` original states; ``"0", "1", ...`` when omitted.

    Attributes
    ----------
    converted : ConvertedHMM
        The HMM, its ``state_map``, the number of original states and ``emitted``
        (the symbol each HMM state always emits, or -1); built once.

    Notes
    -----
    The process starts in the stationary distribution of :math:`\\sum_x T^{(x)}`.
    Its HMM (:meth:`to_hmm`) has ``n_states = K'`` states, ``K' = K`` when every
    state factorises; state ``k`` of the HMM at step ``t`` means the process
    moved to original state ``state_map[k]`` while emitting :math:`x_t`.
    """

    name: str
    T: np.ndarray
    original_state_names: tuple[str, ...] | None = None
    converted: ConvertedHMM = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        converted = from_labelled_transitions(self.T)  # validates T
        n_original = converted.original_states
        names = _state_names(self.original_state_names, n_original)
        object.__setattr__(self, "T", readonly(self.T))
        object.__setattr__(self, "original_state_names", names)
        object.__setattr__(self, "name", str(self.name))
        object.__setattr__(self, "converted", converted)

    @property
    def n_states(self) -> int:
        """States ``K'`` of the HMM (what ``sample().states`` holds)."""
        return self.converted.hmm.n_states

    @property
    def n_symbols(self) -> int:
        """Alphabet size ``V``."""
        return self.T.shape[0]

    @property
    def n_original_states(self) -> int:
        """States ``K`` of the labelled presentation."""
        return self.converted.original_states

    @property
    def state_map(self) -> np.ndarray:
        """(K',) int64: the original state each HMM state stands for."""
        return self.converted.state_map

    @property
    def state_names(self) -> list[str]:
        """Names of the HMM's states: the original name, ``"A/0"`` for "A entered on 0"."""
        names = []
        for original, symbol in zip(self.state_map, self.converted.emitted, strict=True):
            name = self.original_state_names[original]
            split = np.count_nonzero(self.state_map == original) > 1
            names.append(f"{name}/{symbol}" if split else name)
        return names

    def to_hmm(self) -> HMM:
        """The state-emitting HMM with this process's law over symbol sequences."""
        return self.converted.hmm

    def original_beliefs(self, beliefs) -> np.ndarray:
        """HMM beliefs (..., K') summed into beliefs over the original states (..., K).

        See :meth:`seqmodels.hmm.labelled.ConvertedHMM.original_beliefs`.
        """
        return self.converted.original_beliefs(beliefs)

    def sample(self, n_sequences: int, length, seed: Seed = None) -> ProcessSample:
        """Draw ``n_sequences`` independent sequences through the HMM's sampler.

        ``length`` and ``seed`` are passed to :meth:`HMM.sample` as they are.
        """
        states, symbols = self.to_hmm().sample(n_sequences, length, seed)
        return ProcessSample(states, symbols, self,
                             lengths=None if np.ndim(length) == 0 else length)


def _state_names(names, n_states: int) -> tuple[str, ...]:
    """``names`` as ``n_states`` strings; ``"0", "1", ...`` for None."""
    if names is None:
        return tuple(str(k) for k in range(n_states))
    if isinstance(names, str) or not isinstance(names, Sequence) or len(names) != n_states \
            or not all(isinstance(name, str) for name in names):
        raise ValueError(f"original_state_names must name the {n_states} states of T, one "
                         f"string each, got {names!r}")
    return tuple(names)


@by_value
@dataclass(frozen=True)
class ProcessSample:
    """Sequences of a :class:`LabelledProcess`: the HMM's states and the symbols.

    Attributes
    ----------
    states : numpy.ndarray of int64, shape (B, T)
        The HMM's state at each step, in ``[0, n_states)``; -1 past a
        sequence's end.
    symbols : numpy.ndarray of int64, shape (B, T)
        The symbols, in ``[0, n_symbols)``; -1 past a sequence's end.
    process : LabelledProcess
        What made them.
    lengths : numpy.ndarray of int64, shape (B,)
        Steps per sequence; every one ``T`` when omitted.

    Raises
    ------
    ValueError
        Shapes that differ, a state or symbol out of range, or a symbol its
        state cannot emit (naming the sequence and step).
    """

    states: np.ndarray
    symbols: np.ndarray
    process: LabelledProcess
    lengths: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.process, LabelledProcess):
            raise ValueError(f"process must be a LabelledProcess, got "
                             f"{type(self.process).__name__}")
        states = integer_array("states", self.states)
        symbols = integer_array("symbols", self.symbols)
        if states.ndim != 2 or states.shape != symbols.shape or states.size == 0:
            raise ValueError(f"states and symbols must be non-empty (B, T) arrays of one shape, "
                             f"got {states.shape} and {symbols.shape}")
        lengths = check_sample_lengths(self.lengths, states.shape)
        present = np.arange(states.shape[1]) < lengths[:, None]
        hmm = self.process.to_hmm()
        _check_range("states", states, present, hmm.n_states)
        _check_range("symbols", symbols, present, hmm.n_symbols)
        impossible = present & (hmm.emissionprob[np.where(present, states, 0),
                                                 np.where(present, symbols, 0)] == 0)
        if impossible.any():
            b, t = np.argwhere(impossible)[0]
            raise ValueError(f"symbols[{b}, {t}] = {symbols[b, t]} cannot be emitted by state "
                             f"{states[b, t]} ({self.process.state_names[states[b, t]]})")
        object.__setattr__(self, "states", readonly(np.where(present, states, -1), np.int64))
        object.__setattr__(self, "symbols", readonly(np.where(present, symbols, -1), np.int64))
        object.__setattr__(self, "lengths", readonly(lengths, np.int64))

    @property
    def original_states(self) -> np.ndarray:
        """(B, T): the original state after emitting ``symbols[:, t]``; -1 past the end."""
        mapped = self.process.state_map[np.maximum(self.states, 0)]
        return np.where(self.states >= 0, mapped, -1)

    @property
    def n_sequences(self) -> int:
        """Number of sequences ``B``."""
        return self.symbols.shape[0]

    @property
    def length(self) -> int:
        """Steps ``T`` of the longest sequence."""
        return self.symbols.shape[1]

    def sequences(self) -> list[np.ndarray]:
        """The symbols as a list of 1-D arrays, padding dropped."""
        return [row[:n] for row, n in zip(self.symbols, self.lengths, strict=True)]


def _check_range(name: str, values: np.ndarray, present: np.ndarray, bound: int) -> None:
    outside = present & ((values < 0) | (values >= bound))
    if outside.any():
        b, t = np.argwhere(outside)[0]
        raise ValueError(f"{name}[{b}, {t}] = {values[b, t]} is outside [0, {bound})")


# --------------------------------------------------------------------------- helpers


def as_hmm(model, name: str = "model") -> HMM:
    """The :class:`HMM` of ``model``: an HMM itself, or anything with ``to_hmm()`` (any preset).

    ``ValueError`` naming ``name`` (the caller's argument) for anything else.
    """
    if isinstance(model, HMM):
        return model
    to_hmm = getattr(model, "to_hmm", None)
    hmm = to_hmm() if callable(to_hmm) else None
    if not isinstance(hmm, HMM):
        raise ValueError(f"{name} must be an HMM or have a to_hmm() method (a DiceHMM, a "
                         f"LabelledProcess), got {type(model).__name__}")
    return hmm


def state_map(process) -> np.ndarray:
    """(n_states,) int64: the process's own state behind each HMM state.

    A :class:`LabelledProcess`'s ``state_map``; the identity for dice and any
    other model whose HMM states are its states.
    """
    n_states = as_hmm(process, "process").n_states
    mapping = getattr(process, "state_map", None)
    return np.arange(n_states) if mapping is None else mapping


def original_state_names(process) -> list[str]:
    """Names of the process's own states (what :func:`original_beliefs` returns beliefs over)."""
    n_states = as_hmm(process, "process").n_states
    names = getattr(process, "original_state_names", None)
    if names is None:
        names = getattr(process, "state_names", [str(k) for k in range(n_states)])
    return list(names)


def original_beliefs(process, beliefs) -> np.ndarray:
    """HMM beliefs (..., n_states) as beliefs over the process's own states (..., K).

    For a :class:`LabelledProcess` the beliefs of the HMM states standing for
    one original state are summed (:meth:`LabelledProcess.original_beliefs`);
    for dice and plain HMMs the beliefs are returned as they are (float64).
    """
    if isinstance(process, LabelledProcess):
        return process.original_beliefs(beliefs)
    n_states = as_hmm(process, "process").n_states
    beliefs = float_array("beliefs", beliefs)
    if beliefs.shape[-1:] != (n_states,):
        raise ValueError(f"beliefs must end in an axis of {n_states} states, got shape "
                         f"{beliefs.shape}")
    return beliefs


def _check_interval(name: str, value, high: float = 1.0, closed_high: bool = False) -> float:
    """``value`` as a float in ``(0, high)`` (``(0, high]`` if ``closed_high``), or ValueError."""
    value = check_real(name, value)
    if not (0.0 < value and (value <= high if closed_high else value < high)):  # NaN fails
        raise ValueError(f"{name} must be in (0, {high:g}{']' if closed_high else ')'}, "
                         f"got {value!r}")
    return value


def _labelled(transmat: np.ndarray, emission: np.ndarray) -> np.ndarray:
    """``T[x, i, j] = transmat[i, j] * emission[j, x]``: the symbol is drawn on entering ``j``."""
    return transmat[None, :, :] * emission.T[:, None, :]


# --------------------------------------------------------------------------- presets


def golden_mean(p: float = 0.5) -> LabelledProcess:
    """The Golden Mean process: binary sequences with no two consecutive 0s [CF03].

    States A, B. From A: emit 1 and stay with probability ``p``, emit 0 and go
    to B with ``1 - p``; from B: emit 1 and go to A. Every destination emits
    one symbol, so the HMM keeps the two states. Entropy rate at ``p = 1/2``:
    2/3 bit per symbol; Markov order 1; excess entropy
    :math:`\\log_2 3 - 4/3 \\approx 0.2516` bit.
    """
    p = _check_interval("p", p)
    T = np.zeros((2, 2, 2))
    T[1, 0, 0], T[0, 0, 1], T[1, 1, 0] = p, 1.0 - p, 1.0
    return LabelledProcess(f"golden_mean(p={p:g})", T, ("A", "B"))


def even(p: float = 0.5) -> LabelledProcess:
    """The Even process: 1s come in blocks of even length, bounded by 0s [CF03].

    States A, B. From A: emit 0 and stay with probability ``p``, emit 1 and go
    to B with ``1 - p``; from B: emit 1 and go to A. A is entered on 0 (from A)
    and on 1 (from B), so the HMM has 3 states (A/0, A/1, B). Entropy rate at
    ``p = 1/2``: 2/3 bit per symbol; infinite Markov order (a run of 1s of
    unknown parity never synchronises), finite excess entropy.
    """
    p = _check_interval("p", p)
    T = np.zeros((2, 2, 2))
    T[0, 0, 0], T[1, 0, 1], T[1, 1, 0] = p, 1.0 - p, 1.0
    return LabelledProcess(f"even(p={p:g})", T, ("A", "B"))


def mess3(x: float = 0.05, alpha: float = 0.85) -> LabelledProcess:
    """Mess3 [MC17], at the parameters of Shai et al. 2024 [S24] by default.

    Three states A, B, C and three symbols. The state moves with
    :math:`M_{ij} = 1 - 2x` on the diagonal, :math:`x` elsewhere; the state
    entered, ``j``, emits symbol ``j`` with probability ``alpha`` and each other
    with :math:`\\beta = (1 - \\alpha) / 2`:
    :math:`T^{(a)}_{ij} = M_{ij} \\, (\\alpha \\text{ if } j = a \\text{ else } \\beta)`,
    the matrices of [MC17] and the paper's notebook (at the defaults
    ``T[0, 0, 0] = 0.9 * 0.85 = 0.765``). It factorises, so the HMM keeps the
    three states and its beliefs are the paper's mixed states, whose set in the
    simplex is a fractal.

    Parameters
    ----------
    x : float
        In ``(0, 1/2]``: the probability of moving to each other state.
    alpha : float
        In ``(0, 1)``: the probability that a state emits its own symbol.
    """
    x = _check_interval("x", x, high=0.5, closed_high=True)
    alpha = _check_interval("alpha", alpha)
    beta = (1.0 - alpha) / 2.0
    transmat = np.where(np.eye(3, dtype=bool), 1.0 - 2.0 * x, x)
    emission = np.where(np.eye(3, dtype=bool), alpha, beta)
    return LabelledProcess(f"mess3(x={x:g}, alpha={alpha:g})", _labelled(transmat, emission),
                           ("A", "B", "C"))


def rrxor() -> LabelledProcess:
    """Random-random-XOR [CF03], as in Shai et al. 2024 [S24].

    Bits come in triples: two fair random bits, then their XOR. The five
    states of its epsilon-machine: S (a triple starts), 0 and 1 (the first bit
    was 0 / 1), T and F (the XOR to come is 1 / 0). The chain has period 3.
    Entropy rate 2/3 bit per symbol. S, T and F are each entered on both
    symbols, so the HMM has 8 states.
    """
    names = ("S", "0", "1", "T", "F")
    S, ZERO, ONE, TRUE, FALSE = range(5)
    T = np.zeros((2, 5, 5))
    T[0, S, ZERO] = T[1, S, ONE] = 0.5
    T[0, ZERO, FALSE] = T[1, ZERO, TRUE] = 0.5
    T[0, ONE, TRUE] = T[1, ONE, FALSE] = 0.5
    T[1, TRUE, S] = T[0, FALSE, S] = 1.0
    return LabelledProcess("rrxor", T, names)


def random_hmm(n_states: int = 3, n_symbols: int = 3, seed: Seed = 0,
               concentration: float = 1.0) -> LabelledProcess:
    """A random state-emitting HMM, started in its stationary distribution.

    Every row of the transition matrix is drawn from a symmetric Dirichlet
    with parameter ``concentration`` over ``n_states`` states, then every row
    of the emission matrix from one over ``n_symbols`` symbols (small
    ``concentration``: sparse, nearly deterministic rows; large: nearly
    uniform). As labelled transitions :math:`T_{xij} = A_{ij} B_{jx}` (the
    state entered emits), so the HMM has exactly ``n_states`` states, with
    ``transmat`` :math:`A` and ``emissionprob`` :math:`B`.

    Raises
    ------
    ValueError
        ``n_states`` or ``n_symbols`` below 1, ``concentration`` not positive
        and finite, or a bad ``seed``.
    """
    n_states = check_count("n_states", n_states)
    n_symbols = check_count("n_symbols", n_symbols)
    concentration = check_real("concentration", concentration)
    if not 0.0 < concentration < np.inf:
        raise ValueError(f"concentration must be positive and finite, got {concentration!r}")
    # The labelled transitions T (V, K, K) and their conversion hold a few copies of it.
    check_memory(4 * 8.0 * n_symbols * n_states * n_states,
                 f"random_hmm with n_states={n_states} and n_symbols={n_symbols}")
    rng = as_generator(seed)
    transmat = rng.dirichlet(np.full(n_states, concentration), size=n_states)
    emission = rng.dirichlet(np.full(n_symbols, concentration), size=n_states)
    name = (f"random_hmm(n_states={n_states}, n_symbols={n_symbols}, seed={seed!r}, "
            f"concentration={concentration:g})")
    return LabelledProcess(name, _labelled(transmat, emission))


#: Every preset by name, dice first (same names and outputs as
#: :data:`seqmodels.dice.PRESETS`); each is called with no arguments for its
#: default parameters.
PRESETS: dict[str, Callable[..., DiceHMM | LabelledProcess]] = {
    **DICE_PRESETS,
    "golden_mean": golden_mean,
    "even": even,
    "mess3": mess3,
    "rrxor": rrxor,
    "random_hmm": random_hmm,
}

__all__: Sequence[str] = [
    "PRESETS", "LabelledProcess", "ProcessSample", "as_hmm", "even", "golden_mean", "mess3",
    "original_beliefs", "original_state_names", "random_hmm", "rrxor", "state_map",
]
