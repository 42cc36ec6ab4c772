"""Dice that make sequences: the hidden chain picks a die, the die shows a face.

A :class:`DiceHMM` is a named, validated :class:`~seqmodels.hmm.HMM`: state
``k`` is die ``k``, symbol ``v`` is face ``v + 1``. Its :meth:`DiceHMM.sample`
is the HMM's vectorized sampler. The presets reproduce the worked example and
the occasionally dishonest casino.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from seqmodels._checks import as_generator, check_count, check_probabilities, check_real, readonly
from seqmodels._io import load_npz, save_npz
from seqmodels.hmm import HMM, Seed, sample_chain, stationary_distribution
from seqmodels.hmm.model import hmmlearn_input

if TYPE_CHECKING:
    import pandas as pd


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
    """

    faces: int
    probs: np.ndarray | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        faces = check_count("faces", self.faces)
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
        faces = check_count("faces", faces)
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
        return HMM(self.startprob, self.transmat, self.emissionprob)

    def stationary_distribution(self) -> np.ndarray:
        """Long-run die frequencies, shape (K,): ``p`` with ``p @ transmat = p``."""
        return stationary_distribution(self.transmat)

    def sample(self, n_sequences: int, length: int, seed: Seed = None) -> DiceSample:
        """Throw dice: ``n_sequences`` independent sequences of ``length`` throws.

        Vectorized across sequences; ``seed`` (int, Generator or None) makes it
        reproducible.
        """
        dice, symbols = sample_chain(
            self.startprob, self.transmat, self.emissionprob, n_sequences, length, seed
        )
        return DiceSample(dice=dice, faces=symbols + 1, spec=self)


@dataclass(frozen=True)
class DiceSample:
    """Sequences of thrown dice and the faces they showed.

    Attributes
    ----------
    dice : numpy.ndarray of int64, shape (B, T)
        Index of the die thrown at each step (the hidden chain).
    faces : numpy.ndarray of int64, shape (B, T)
        The face shown, 1-based (the visible chain).
    spec : DiceHMM
        The model that made them.

    Raises
    ------
    ValueError
        If the shapes differ, a die index is outside ``[0, K)``, or a face is
        outside its die's ``1..faces``.
    """

    dice: np.ndarray
    faces: np.ndarray
    spec: DiceHMM

    def __post_init__(self) -> None:
        if not isinstance(self.spec, DiceHMM):
            raise ValueError(f"spec must be a DiceHMM, got {type(self.spec).__name__}")
        dice = np.asarray(self.dice)
        faces = np.asarray(self.faces)
        if dice.ndim != 2 or dice.shape != faces.shape or dice.size == 0:
            raise ValueError(
                f"dice and faces must be non-empty (B, T) arrays of one shape, "
                f"got {dice.shape} and {faces.shape}"
            )
        if not (np.issubdtype(dice.dtype, np.integer) and np.issubdtype(faces.dtype, np.integer)):
            raise ValueError("dice and faces must be integer arrays")
        if dice.min() < 0 or dice.max() >= self.spec.n_states:
            raise ValueError(f"dice must lie in [0, {self.spec.n_states})")
        if faces.min() < 1 or faces.max() > self.spec.n_symbols:
            raise ValueError(f"faces must lie in 1..{self.spec.n_symbols}")
        self._check_faces_fit_dice(dice, faces)
        object.__setattr__(self, "dice", readonly(dice, np.int64))
        object.__setattr__(self, "faces", readonly(faces, np.int64))

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
        """0-based symbols, ``faces - 1``, shape (B, T)."""
        return self.faces - 1

    @property
    def n_sequences(self) -> int:
        """Number of sequences ``B``."""
        return self.faces.shape[0]

    @property
    def length(self) -> int:
        """Steps per sequence ``T``."""
        return self.faces.shape[1]

    def to_hmmlearn(self) -> tuple[np.ndarray, np.ndarray]:
        """Symbols as hmmlearn expects them.

        Returns
        -------
        X : numpy.ndarray of int64, shape (B * T, 1)
            The sequences' symbols concatenated.
        lengths : numpy.ndarray of int64, shape (B,)
            Each sequence's length.
        """
        return hmmlearn_input(self.symbols)

    def to_frame(self) -> pd.DataFrame:
        """A tidy frame, one row per throw: sequence, t, die, die_name, face."""
        import pandas as pd  # deferred: importing pandas costs a few tenths of a second
        sequence, t = np.indices(self.faces.shape)
        names = np.asarray(self.spec.state_names, dtype=object)
        return pd.DataFrame({
            "sequence": sequence.ravel(),
            "t": t.ravel(),
            "die": self.dice.ravel(),
            "die_name": names[self.dice.ravel()],
            "face": self.faces.ravel(),
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
        return DiceSample(dice=self.dice[rows], faces=self.faces[rows], spec=self.spec)

    def save(self, path: str | os.PathLike) -> os.PathLike:
        """Save to ``path`` (``.npz`` plus JSON metadata, written atomically). Returns the path."""
        spec = self.spec
        return save_npz(
            path, "DiceSample",
            {"dice": self.dice, "faces": self.faces, "transmat": spec.transmat,
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
            return cls(dice=arrays["dice"], faces=arrays["faces"], spec=spec)
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
