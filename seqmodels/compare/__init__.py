"""The comparison: every model on the same held-out dice, measured against the truth.

``run_comparison(config) -> ComparisonResult`` does the work and returns tidy
pandas frames; ``write_report(result, out_dir)`` writes the report folder.
Submodules: :mod:`~seqmodels.compare.config`, :mod:`~seqmodels.compare.baselines`,
:mod:`~seqmodels.compare.metrics` (pure array functions), ``run`` and ``report``.
"""

from seqmodels.compare.baselines import IIDBaseline, MarkovBaseline
from seqmodels.compare.config import TARGETS, ComparisonConfig
from seqmodels.compare.report import write_report
from seqmodels.compare.run import MODELS, ComparisonResult, run_comparison

__all__ = [
    "MODELS",
    "TARGETS",
    "ComparisonConfig",
    "ComparisonResult",
    "IIDBaseline",
    "MarkovBaseline",
    "run_comparison",
    "write_report",
]
