"""Compiled inference passes (numba): forward, filter, smoother, Viterbi, E-step.

Every kernel reads the padded ``(B, T)`` int64 symbols and the ``(B,)`` lengths of
a :class:`~seqmodels._checks.SymbolBatch` and the parameters directly: no
``T x B x K`` likelihood array is ever built. Chunks of sequences run on
parallel threads and, within a thread, side by side in SIMD lanes
(:mod:`._lanes`). Callers in :mod:`seqmodels.hmm.model` and
:mod:`seqmodels.hmm.fit` validate the input and pass C-contiguous float64 /
int64 arrays only, so each kernel compiles one signature, once per machine:
``cache=True`` stores it next to its module and later processes load it.

Modules: :mod:`.forward` (log-likelihood and filter), :mod:`.forward_backward`
(smoother and the E-step's expected counts), :mod:`.viterbi`. The recursions
are Rabiner's (1989) scaled ones.

Threads: numba's pool has ``NUMBA_NUM_THREADS`` threads (all cores by
default); :func:`limit_threads` lowers the count for the calling thread, e.g.
to one per worker process in a sweep.
"""

from seqmodels.hmm.kernels._lanes import (
    FORWARD_LANES,
    LANES,
    chunk_count,
    lane_width,
    limit_threads,
    longest_first,
    thread_count,
)
from seqmodels.hmm.kernels.forward import RESCALE_BELOW, filter_pass, log_likelihood
from seqmodels.hmm.kernels.forward_backward import forward_backward
from seqmodels.hmm.kernels.viterbi import viterbi_pass

__all__ = ["FORWARD_LANES", "LANES", "RESCALE_BELOW", "chunk_count", "filter_pass",
           "forward_backward", "lane_width", "limit_threads", "log_likelihood", "longest_first",
           "scratch_bytes", "thread_count", "viterbi_pass"]


def scratch_bytes(n_sequences: int, n_steps: int, floats_per_step: int) -> float:
    """Bytes of the kernels' per-thread scratch of ``floats_per_step`` floats per lane-step."""
    return 8.0 * chunk_count(n_sequences) * lane_width(n_sequences) * n_steps * floats_per_step
