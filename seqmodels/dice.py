"""Dice that make sequences: the hidden chain picks a die, the die shows a face.

A :class:`DiceHMM` is a named, validated :class:`~seqmodels.hmm.HMM`: state
``k`` is die ``k``, symbol ``v`` is face ``v + 1``. Its :meth:`DiceHMM.sample`
is the HMM's vectorized sampler (:func:`~seqmodels.hmm.sample_chain`). The
presets reproduce the worked example and the occasionally dishonest casino.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from seqmodels._checks import (
    as_generator,
    by_value,
    check_count,
    check_lengths,
    check_memory,
    check_probabilities,
    check_real,
    integer_array,
    readonly,
)
from seqmodels._io import load_npz, save_npz
from seqmodels.hmm import HMM, Seed, stationary_distribution

if TYPE_CHECKING:
    import pandas as pd


@by_value
@dataclass(frozen=True)
class Die:
    """A die with faces ``1..faces`` showing face ``f`` with probability ``probs[f - 1]``.

    Parameters
    ----------
    faces : int
        Number of faces, at least 1.
    probs : array_like, shape (faces,), optional
        Face probabilities; fair (``1 / faces`` each) when omitted.
    name : str, optional
        Display name; ``"D{faces}"`` for a fair die, ``"loaded D{faces}"`` otherwise.

    Dice compare and hash by value.
    """

    faces: int
    probs: np.ndarray | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        faces = _checked_faces(self.faces)
        if self.probs is None:
            probs = readonly(np.full(faces, 1.0 / faces))
        else:
            probs = check_probabilities(f"probs of a D{faces}", self.probs, ndim=1)
            if probs.shape != (faces,):
                raise ValueError(
                    f"probs of a D{faces} must have {faces} entries, got {probs.shape[0]}"
                )
        name = self.name
        if name is None:
            name = f"D{faces}" if np.allclose(probs, 1.0 / faces) else f"loaded D{faces}"
        object.__setattr__(self, "faces", faces)
        object.__setattr__(self, "probs", probs)
        object.__setattr__(self, "name", str(name))

    @classmethod
    def loaded(cls, faces: int, face: int, p: float, name: str | None = None) -> Die:
        """A die on which ``face`` comes up with probability ``p``, the others equally.

        ``Die.loaded(6, face=1, p=0.5)`` is the worked example's tampered die:
        1 with 1/2, 2..6 with 1/10 each.
        """
        faces = _checked_faces(faces)
        face = check_count("face", face)
        if face > faces:
            raise ValueError(f"face must be in 1..{faces}, got {face}")
        p = check_real("p", p)
        if not 0.0 <= p <= 1.0:  # NaN fails too
            raise ValueError(f"p must be a probability in [0, 1], got {p}")
        if faces == 1 and p != 1.0:
            raise ValueError(f"a D1 shows its only face with probability 1, not p={p}")
        rest = (1.0 - p) / (faces - 1) if faces > 1 else 0.0
        probs = np.full(faces, rest)
        probs[face - 1] = p
        return cls(faces, probs, name)


def _checked_faces(faces) -> int:
    """``faces`` as an int ``>= 1`` whose probabilities fit in memory."""
    faces = check_count("faces", faces)
    check_memory(8.0 * faces, f"a die with faces={faces}")
    return faces


@by_value
@dataclass(frozen=True)
class DiceHMM:
    """A Markov chain over dice: the hidden chain picks a die, the die shows a face.

    Parameters
    ----------
    dice : sequence of Die
        The hidden states, ``K = len(dice)``.
    transmat : array_like, shape (K, K)
        ``transmat[i, j] = P(die_t = j | die_{t-1} = i)``.
    startprob : array_like, shape (K,), optional
        ``P(die_0 = k)``; uniform when omitted.

    Two chains are equal (and hash alike) when their dice and matrices are.
    """

    dice: tuple[Die, ...]
    transmat: np.ndarray
    startprob: np.ndarray | None = None

    def __post_init__(self) -> None:
        # A lone Die, None or a number is not a sequence of dice: say so, not TypeError.
        dice = tuple(self.dice) if isinstance(self.dice, Iterable) else ()
        if not dice or not all(isinstance(die, Die) for die in dice):
            raise ValueError("dice must be a non-empty sequence of Die objects")
        transmat = check_probabilities("transmat", self.transmat, ndim=2)
        if transmat.shape != (len(dice), len(dice)):
            raise ValueError(
                f"transmat must be square with one row per die ({len(dice)} x {len(dice)}), "
                f"got shape {transmat.shape}"
            )
        n_faces = max(die.faces for die in dice)
        # The emission matrix, its HMM's copy and the kernels' transposed copy.
        check_memory(3 * 8.0 * len(dice) * n_faces,
                     f"the emission matrix of {len(dice)} dice x {n_faces} faces")
        if self.startprob is None:
            startprob = readonly(np.full(len(dice), 1.0 / len(dice)))
        else:
            startprob = check_probabilities("startprob", self.startprob, ndim=1)
            if startprob.shape != (len(dice),):
                raise ValueError(
                    f"startprob must have one entry per die ({len(dice)}), "
                    f"got shape {startprob.shape}"
                )
        object.__setattr__(self, "dice", dice)
        object.__setattr__(self, "transmat", transmat)
        object.__setattr__(self, "startprob", startprob)

    @property
    def n_states(self) -> int:
        """Number of dice ``K``."""
        return len(self.dice)

    @property
    def n_symbols(self) -> int:
        """Number of symbols ``V``: the most faces of any die."""
        return max(die.faces for die in self.dice)

    @property
    def state_names(self) -> list[str]:
        """The dice's names, in state order."""
        return [die.name for die in self.dice]

    @cached_property
    def emissionprob(self) -> np.ndarray:
        """Emission matrix (K, V): ``[k, v] = P(face v + 1 | die k)``, 0 past a die's faces."""
        emission = np.zeros((self.n_states, self.n_symbols))
        for k, die in enumerate(self.dice):
            emission[k, : die.faces] = die.probs
        return readonly(emission)

    def to_hmm(self) -> HMM:
        """The true model as an :class:`~seqmodels.hmm.HMM`."""
        return self._hmm

    @cached_property
    def _hmm(self) -> HMM:
        return HMM(self.startprob, self.transmat, self.emissionprob)

    def stationary_distribution(self) -> np.ndarray:
        """Long-run die frequencies, shape (K,): ``p`` with ``p @ transmat = p``."""
        return stationary_distribution(self.transmat)

    def sample(self, n_sequences: int, length, seed: Seed = None) -> DiceSample:
        """Throw dice: ``n_sequences`` independent sequences.

        ``length`` is one number of throws for all, or one per sequence (then
        the sample holds sequences of different lengths). Vectorized across
        sequences; ``seed`` (int, Generator or None) makes it reproducible.
        ``ValueError`` for bad sizes or a sample that cannot fit in memory.
        """
        dice, symbols = self._hmm.sample(n_sequences, length, seed)
        return DiceSample(dice=dice, faces=symbols + 1, spec=self,
                          lengths=None if np.ndim(length) == 0 else length)


def check_sample_lengths(lengths, shape: tuple[int, int]) -> np.ndarray:
    """The (B,) int64 lengths of a sample of shape ``(B, T)``: ``T`` each when ``lengths``
    is None, else validated, one per sequence, each in ``1..T`` (``ValueError`` if not)."""
    if lengths is None:
        return np.full(shape[0], shape[1], dtype=np.int64)
    lengths = check_lengths(lengths)
    if lengths.shape != (shape[0],) or lengths.max() > shape[1]:
        raise ValueError(f"lengths must hold one length in 1..{shape[1]} per sequence "
                         f"({shape[0]}), got {lengths.tolist()[:10]}")
    return lengths


@by_value
@dataclass(frozen=True)
class DiceSample:
    """Sequences of thrown dice and the faces they showed.

    Attributes
    ----------
    dice : numpy.ndarray of int64, shape (B, T)
        Index of the die thrown at each step (the hidden chain); -1 past a
        sequence's end.
    faces : numpy.ndarray of int64, shape (B, T)
        The face shown, 1-based (the visible chain); 0 past a sequence's end.
    spec : DiceHMM
        The model that made them.
    lengths : numpy.ndarray of int64, shape (B,)
        Throws per sequence; ``T`` is the longest. Omitted: every sequence has
        ``T`` throws.

    Raises
    ------
    ValueError
        If the shapes differ, a length is outside ``1..T``, a die index is
        outside ``[0, K)``, or a face is outside its die's ``1..faces``.
    """

    dice: np.ndarray
    faces: np.ndarray
    spec: DiceHMM
    lengths: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.spec, DiceHMM):
            raise ValueError(f"spec must be a DiceHMM, got {type(self.spec).__name__}")
        dice, faces = integer_array("dice", self.dice), integer_array("faces", self.faces)
        if dice.ndim != 2 or dice.shape != faces.shape or dice.size == 0:
            raise ValueError(
                f"dice and faces must be non-empty (B, T) arrays of one shape, "
                f"got {dice.shape} and {faces.shape}"
            )
        lengths = check_sample_lengths(self.lengths, dice.shape)
        thrown = np.arange(dice.shape[1]) < lengths[:, None]
        if dice[thrown].min() < 0 or dice[thrown].max() >= self.spec.n_states:
            raise ValueError(f"dice must lie in [0, {self.spec.n_states})")
        if faces[thrown].min() < 1 or faces[thrown].max() > self.spec.n_symbols:
            raise ValueError(f"faces must lie in 1..{self.spec.n_symbols}")
        self._check_faces_fit_dice(np.where(thrown, dice, 0), np.where(thrown, faces, 1))
        object.__setattr__(self, "dice", readonly(np.where(thrown, dice, -1), np.int64))
        object.__setattr__(self, "faces", readonly(np.where(thrown, faces, 0), np.int64))
        object.__setattr__(self, "lengths", readonly(lengths, np.int64))

    def _check_faces_fit_dice(self, dice: np.ndarray, faces: np.ndarray) -> None:
        """Refuse a face past the thrown die's own faces (a 7 on a D6 in a D8 model)."""
        n_faces = np.array([die.faces for die in self.spec.dice])
        if n_faces.min() == self.spec.n_symbols:  # every face is on every die
            return
        impossible = faces > np.take(n_faces, dice)
        if impossible.any():
            b, t = np.argwhere(impossible)[0]
            die = self.spec.dice[dice[b, t]]
            raise ValueError(
                f"faces[{b}, {t}] = {faces[b, t]} was thrown with die {dice[b, t]} "
                f"({die.name}), which has only {die.faces} faces"
            )

    @property
    def states(self) -> np.ndarray:
        """The hidden states, shape (B, T): ``dice``, by the name every preset's sample uses."""
        return self.dice

    @property
    def symbols(self) -> np.ndarray:
        """0-based symbols, ``faces - 1``, shape (B, T); -1 past a sequence's end.

        With sequences of different lengths, pass :meth:`sequences` (or
        :meth:`to_hmmlearn`) to the models instead.
        """
        return self.faces - 1

    def sequences(self) -> list[np.ndarray]:
        """The symbols as a list of 1-D arrays, one per sequence, padding dropped."""
        return [row[:n] for row, n in zip(self.symbols, self.lengths, strict=True)]

    @property
    def n_sequences(self) -> int:
        """Number of sequences ``B``."""
        return self.faces.shape[0]

    @property
    def length(self) -> int:
        """Steps per sequence ``T`` (the longest, when lengths differ)."""
        return self.faces.shape[1]

    @property
    def ragged(self) -> bool:
        """True when some sequence is shorter than ``T``."""
        return bool(self.lengths.min() < self.length)

    def _thrown(self) -> np.ndarray:
        """``(B, T)`` bool: the steps that were thrown."""
        return np.arange(self.length) < self.lengths[:, None]

    def to_hmmlearn(self, with_states: bool = False) -> tuple[np.ndarray, ...]:
        """The sample in hmmlearn's layout (what ``fit``, ``score`` and ``decode`` read).

        Returns
        -------
        X : numpy.ndarray of int64, shape (N, 1)
            The sequences' symbols concatenated, ``N = lengths.sum()``.
        Z : numpy.ndarray of int64, shape (N,)
            The dice, concatenated the same way; only with ``with_states=True``
            (``(X, Z)`` is what hmmlearn's ``sample`` returns).
        lengths : numpy.ndarray of int64, shape (B,)
            Each sequence's length.
        """
        thrown = self._thrown()
        X, lengths = self.symbols[thrown].reshape(-1, 1), self.lengths.copy()
        return (X, self.dice[thrown], lengths) if with_states else (X, lengths)

    @classmethod
    def from_hmmlearn(cls, X, Z, lengths=None, *, spec: DiceHMM) -> DiceSample:
        """A sample from hmmlearn's layout: ``X`` (N, 1) symbols, ``Z`` (N,) dice, ``lengths``.

        ``lengths`` omitted: one sequence of ``N`` throws. The inverse of
        ``to_hmmlearn(with_states=True)``; also reads ``X, Z =
        CategoricalHMM.sample(n)``. ``ValueError`` if the shapes or lengths disagree.
        """
        X, Z = integer_array("X", X), integer_array("Z", Z)
        if X.ndim != 2 or X.shape[1] != 1 or Z.shape != (X.shape[0],):
            raise ValueError(f"X must have shape (N, 1) and Z shape (N,), got {X.shape} and "
                             f"{Z.shape}")
        lengths = (np.array([X.shape[0]]) if lengths is None
                   else check_lengths(lengths, total=X.shape[0]))
        thrown = np.arange(lengths.max()) < lengths[:, None]
        dice = np.full(thrown.shape, -1, dtype=np.int64)
        faces = np.zeros(thrown.shape, dtype=np.int64)
        dice[thrown], faces[thrown] = Z, X[:, 0] + 1
        return cls(dice=dice, faces=faces, spec=spec, lengths=lengths)

    def to_frame(self) -> pd.DataFrame:
        """A tidy frame, one row per throw: sequence, t, die, die_name, face."""
        import pandas as pd  # deferred: importing pandas costs a few tenths of a second
        thrown = self._thrown()
        sequence, t = np.nonzero(thrown)
        names = np.asarray(self.spec.state_names, dtype=object)
        return pd.DataFrame({
            "sequence": sequence,
            "t": t,
            "die": self.dice[thrown],
            "die_name": names[self.dice[thrown]],
            "face": self.faces[thrown],
        })

    def split(self, test_fraction: float = 0.2, seed: Seed = None) -> tuple[DiceSample, DiceSample]:
        """Split whole sequences at random into ``(train, test)``.

        ``round(test_fraction * B)`` sequences go to test; both parts must be non-empty.
        """
        test_fraction = check_real("test_fraction", test_fraction)
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        n_test = round(test_fraction * self.n_sequences)
        if not 0 < n_test < self.n_sequences:
            raise ValueError(
                f"test_fraction={test_fraction} of {self.n_sequences} sequences leaves "
                "an empty train or test part"
            )
        order = as_generator(seed).permutation(self.n_sequences)
        test, train = order[:n_test], order[n_test:]
        return self._subset(np.sort(train)), self._subset(np.sort(test))

    def _subset(self, rows: np.ndarray) -> DiceSample:
        steps = int(self.lengths[rows].max())
        return DiceSample(dice=self.dice[rows, :steps], faces=self.faces[rows, :steps],
                          spec=self.spec, lengths=self.lengths[rows])

    def save(self, path: str | os.PathLike) -> os.PathLike:
        """Save to ``path`` (``.npz`` plus JSON metadata, written atomically). Returns the path."""
        spec = self.spec
        return save_npz(
            path, "DiceSample",
            {"dice": self.dice, "faces": self.faces, "lengths": self.lengths,
             "transmat": spec.transmat,
             "startprob": spec.startprob, "emissionprob": spec.emissionprob},
            {"die_names": spec.state_names, "die_faces": [d.faces for d in spec.dice]},
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> DiceSample:
        """Load a sample written by :meth:`save`; ``ValueError`` if it is not one."""
        arrays, meta = load_npz(
            path, "DiceSample", ("dice", "faces", "transmat", "startprob", "emissionprob")
        )
        try:
            dice = [
                Die(int(n), arrays["emissionprob"][k, : int(n)], name)
                for k, (n, name) in enumerate(zip(meta["die_faces"], meta["die_names"],
                                                  strict=True))
            ]
            spec = DiceHMM(dice, arrays["transmat"], arrays["startprob"])
            # Files written before sequences could differ in length have no lengths.
            return cls(dice=arrays["dice"], faces=arrays["faces"], spec=spec,
                       lengths=arrays.get("lengths"))
        except (KeyError, TypeError, IndexError, ValueError) as err:
            raise ValueError(f"{path} is a corrupt DiceSample: {err}") from None


# --------------------------------------------------------------------------- presets


def _fair_dice() -> list[Die]:
    return [Die(4), Die(6), Die(8)]


def three_dice() -> DiceHMM:
    """D4, D6, D8; every transition 1/3; start uniform (the worked example's first chain)."""
    return DiceHMM(_fair_dice(), np.full((3, 3), 1.0 / 3.0))


def sticky_three_dice() -> DiceHMM:
    """D4, D6, D8; after a D6 never a D4, D6 -> D6 0.9, D6 -> D8 0.1; other rows 1/3."""
    third = 1.0 / 3.0
    transmat = [[third, third, third], [0.0, 0.9, 0.1], [third, third, third]]
    return DiceHMM(_fair_dice(), transmat)


def casino() -> DiceHMM:
    """The occasionally dishonest casino (Durbin et al. 1998).

    A fair D6 and a loaded D6 (six with 1/2, each other face 1/10);
    fair -> fair 0.95, loaded -> loaded 0.90; start (1/2, 1/2).
    """
    dice = [Die(6, name="fair D6"), Die.loaded(6, face=6, p=0.5, name="loaded D6")]
    return DiceHMM(dice, [[0.95, 0.05], [0.10, 0.90]], [0.5, 0.5])


def loaded_dice() -> DiceHMM:
    """D4, D6, D8 and the tampered D6 (1 with 1/2); stay 0.8, switch to each other 0.2/3.

    The default for experiments.
    """
    dice = [*_fair_dice(), Die.loaded(6, face=1, p=0.5, name="tampered D6")]
    switch = 0.2 / 3.0
    transmat = np.full((4, 4), switch)
    np.fill_diagonal(transmat, 0.8)
    return DiceHMM(dice, transmat)


PRESETS: dict[str, Callable[[], DiceHMM]] = {
    "three_dice": three_dice,
    "sticky_three_dice": sticky_three_dice,
    "casino": casino,
    "loaded_dice": loaded_dice,
}

__all__: Sequence[str] = [
    "PRESETS", "DiceHMM", "DiceSample", "Die", "casino", "loaded_dice", "sticky_three_dice",
    "three_dice",
]
