"""The one place the sweep reads the catalogue of true models (:data:`seqmodels.processes.PRESETS`).

Every other sweep module asks here for a preset's process, its true HMM or a
sample of it.
"""

from __future__ import annotations

import numpy as np

from seqmodels.hmm import HMM
from seqmodels.processes import PRESETS


def process(preset: str):
    """The preset's process (a :class:`~seqmodels.dice.DiceHMM` or a labelled process)."""
    return PRESETS[preset]()


def truth(preset: str) -> HMM:
    """The preset's true (state-emitting) HMM."""
    return process(preset).to_hmm()


def truth_states(preset: str) -> int:
    """The true HMM's number of hidden states, ``K``."""
    return truth(preset).n_states


def draw(preset: str, n_sequences: int, length: int,
         seed: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """``n_sequences`` sequences of ``length`` steps: (states, symbols), each (B, T) int64."""
    sample = process(preset).sample(n_sequences, length, seed)
    return sample.states, sample.symbols
