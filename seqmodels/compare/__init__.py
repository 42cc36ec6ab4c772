"""The comparison: every model on the same held-out sequences, measured against the truth.

``run_comparison(config) -> ComparisonResult`` does the work and returns tidy
pandas frames; ``write_report(result, out_dir)`` writes the report folder.
Submodules: :mod:`~seqmodels.compare.config`, :mod:`~seqmodels.compare.models`
(the model registry and the measurements), :mod:`~seqmodels.compare.baselines`,
:mod:`~seqmodels.compare.metrics` (pure array functions),
:mod:`~seqmodels.compare.executors`, ``run`` and ``report``.
"""

from seqmodels.compare.baselines import IIDBaseline, MarkovBaseline
from seqmodels.compare.config import TARGETS, ComparisonConfig
from seqmodels.compare.executors import InlineExecutor, process_pool
from seqmodels.compare.models import MEASUREMENTS, ModelEntry, registry
from seqmodels.compare.report import write_report
from seqmodels.compare.run import ComparisonResult, run_comparison, run_on_samples

__all__ = [
    "MEASUREMENTS",
    "TARGETS",
    "ComparisonConfig",
    "ComparisonResult",
    "IIDBaseline",
    "InlineExecutor",
    "MarkovBaseline",
    "ModelEntry",
    "process_pool",
    "registry",
    "run_comparison",
    "run_on_samples",
    "write_report",
]
