"""seqmodels: a hidden Markov model and a recurrent network side by side on dice sequences.

The public API is re-exported here::

    from seqmodels import loaded_dice, fit_em, ElmanRNN
"""

from seqmodels.dice import (
    PRESETS,
    DiceHMM,
    DiceSample,
    Die,
    casino,
    loaded_dice,
    sticky_three_dice,
    three_dice,
)
from seqmodels.hmm import HMM

__version__ = "0.1.0"

__all__ = [
    "HMM",
    "PRESETS",
    "DiceHMM",
    "DiceSample",
    "Die",
    "casino",
    "loaded_dice",
    "sticky_three_dice",
    "three_dice",
]
