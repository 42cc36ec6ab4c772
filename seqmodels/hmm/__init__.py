"""Explicit hidden Markov models: parameters, the one sampler, inference and fitting.

A categorical HMM with ``K`` hidden states and ``V`` symbols is

.. math::

    z_0 \\sim \\pi, \\qquad z_t \\mid z_{t-1} \\sim A_{z_{t-1}, \\cdot}, \\qquad
    x_t \\mid z_t \\sim B_{z_t, \\cdot}

with ``startprob`` :math:`\\pi` (K,), ``transmat`` :math:`A` (K, K) and
``emissionprob`` :math:`B` (K, V). Sequences are a ``(B, T)`` int array, a list of
1-D arrays of different lengths, or hmmlearn's ``X`` with ``lengths=``. This
package knows nothing of dice.

Modules: ``model`` (the :class:`HMM` parameters and their inference methods),
``sampling`` (the one sampler), ``kernels`` (the compiled forward, backward,
Viterbi and E-step passes; :func:`~seqmodels.hmm.kernels.limit_threads`),
``fit`` (counting and Baum-Welch), ``align`` (label switching).
"""

from seqmodels.hmm.align import align_states
from seqmodels.hmm.fit import EMFit, em_step, fit_counts, fit_em
from seqmodels.hmm.init import window_init
from seqmodels.hmm.kernels import limit_threads
from seqmodels.hmm.model import HMM, FilterResult, stationary_distribution
from seqmodels.hmm.sampling import Seed, sample_chain

__all__ = [
    "HMM", "EMFit", "FilterResult", "Seed", "align_states", "em_step", "fit_counts", "fit_em",
    "limit_threads", "sample_chain", "stationary_distribution", "window_init",
]
