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
from seqmodels.hmm import (
    HMM,
    EMFit,
    FilterResult,
    align_states,
    fit_counts,
    fit_em,
    sample_chain,
    stationary_distribution,
)
from seqmodels.rnn import RNN, ElmanRNN, ForwardResult, TrainingDivergedError

__version__ = "0.1.0"

# The comparison pulls in pandas; load it on first use so `import seqmodels` stays quick.
_LAZY = {name: "seqmodels.compare" for name in
         ("ComparisonConfig", "ComparisonResult", "run_comparison", "write_report")}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seqmodels' has no attribute {name!r}")


__all__ = [
    "HMM",
    "PRESETS",
    "RNN",
    "ComparisonConfig",
    "ComparisonResult",
    "DiceHMM",
    "DiceSample",
    "Die",
    "EMFit",
    "ElmanRNN",
    "FilterResult",
    "ForwardResult",
    "TrainingDivergedError",
    "align_states",
    "casino",
    "fit_counts",
    "fit_em",
    "loaded_dice",
    "run_comparison",
    "sample_chain",
    "stationary_distribution",
    "sticky_three_dice",
    "three_dice",
    "write_report",
]
