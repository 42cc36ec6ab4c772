"""seqmodels: a hidden Markov model and a recurrent network side by side on dice sequences.

The public API is re-exported here::

    from seqmodels import loaded_dice, mess3, fit_em, ElmanRNN

:data:`PRESETS` holds every preset, dice and processes. The modules
``seqmodels.information`` (exact block entropies) and ``seqmodels.testing``
(statistical checks for your test suites) are imported by name.
"""

from seqmodels.dice import (
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
from seqmodels.processes import (
    PRESETS,
    LabelledProcess,
    ProcessSample,
    even,
    golden_mean,
    mess3,
    random_hmm,
    rrxor,
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
    "LabelledProcess",
    "ProcessSample",
    "TrainingDivergedError",
    "align_states",
    "casino",
    "even",
    "fit_counts",
    "fit_em",
    "golden_mean",
    "loaded_dice",
    "mess3",
    "random_hmm",
    "rrxor",
    "run_comparison",
    "sample_chain",
    "stationary_distribution",
    "sticky_three_dice",
    "three_dice",
    "write_report",
]
