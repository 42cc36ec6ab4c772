"""The one place the sweep reads the catalogue of true models.

Every other sweep module asks here for a preset's true HMM or a sample of it,
so switching the catalogue (to ``seqmodels.processes.PRESETS``) is an edit of
this file alone. The names come from the comparison's own list, the one its
``ComparisonConfig.preset`` check accepts.
"""

from __future__ import annotations

import numpy as np

from seqmodels.compare.config import PRESETS
from seqmodels.hmm import HMM


def truth(preset: str) -> tuple[HMM, tuple[str, ...]]:
    """The true model of ``preset`` and the names of its states."""
    spec = PRESETS[preset]()
    return spec.to_hmm(), tuple(spec.state_names)


def truth_states(preset: str) -> int:
    """The true model's number of hidden states, ``K``."""
    return truth(preset)[0].n_states


def draw(preset: str, n_sequences: int, length: int,
         seed: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """``n_sequences`` sequences of ``length`` steps: (states, symbols), each (B, T) int64."""
    sample = PRESETS[preset]().sample(n_sequences, length, seed)
    return sample.dice, sample.symbols
