"""Claim: seqmodels.hmm's batched NumPy inference beats hmmlearn's compiled code on batches.

Measured in one run on the same data (``loaded_dice``: K=4 states, V=8 symbols):

* ``HMM.viterbi`` against ``CategoricalHMM.decode`` (``algorithm="viterbi"``,
  sequences concatenated with ``lengths``) at T=500, B=100 and B=1000; the
  paths must be identical and the log-probabilities agree to 1e-9 relative.
* ``HMM.log_likelihood`` against ``CategoricalHMM.score`` at the same sizes;
  totals must agree to 1e-9 relative. Target: >= 2x at B=1000, no slower at B=100.
* ``fit_em`` (10 restarts: 20 screening iterations each, the best 3 to
  convergence), from its window starts and from flat Dirichlet starts,
  against 10 plain sequential hmmlearn restarts, each run to convergence,
  all with tol=1e-2 and max_iter=1000, on the issue's 200 sequences x 500
  steps of ``loaded_dice``. Timed once each: the plain
  restarts alone take minutes on a shared 2-core machine. ``--quick`` fits
  50 x 500 instead and repeats the inference timings less; ``--skip-fit``
  leaves the fit out.

Inference timings are the best (min) of several repeats. The last line is the
headline ratio, hmmlearn time / seqmodels time for ``log_likelihood`` at B=1000.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from _timing import best_time
from hmmlearn.hmm import CategoricalHMM

from seqmodels.dice import loaded_dice
from seqmodels.hmm import HMM, fit_em
from seqmodels.hmm.model import hmmlearn_input

LENGTH = 500
FIT_SHAPE, QUICK_FIT_SHAPE = (200, 500), (50, 500)
N_RESTARTS = 10
TOL, MAX_ITER = 1e-2, 1000


def compare_likelihood(model: HMM, symbols: np.ndarray, repeats: int) -> float:
    reference = model.to_hmmlearn()
    X, lengths = hmmlearn_input(symbols)
    ours, theirs = model.log_likelihood(symbols).sum(), reference.score(X, lengths)
    if abs(ours - theirs) > 1e-9 * abs(theirs):
        raise AssertionError(f"log-likelihoods differ: {ours!r} vs {theirs!r}")
    mine = best_time(lambda: model.log_likelihood(symbols), repeats)
    base = best_time(lambda: reference.score(X, lengths), repeats)
    print(f"log_likelihood B={symbols.shape[0]:5d} T={LENGTH}: seqmodels {mine * 1e3:7.2f} ms, "
          f"hmmlearn score {base * 1e3:7.2f} ms, ratio {base / mine:.2f}x "
          f"(relative difference {abs(ours / theirs - 1):.1e})")
    return base / mine


def compare_viterbi(model: HMM, symbols: np.ndarray, repeats: int) -> float:
    reference = model.to_hmmlearn()
    X, lengths = hmmlearn_input(symbols)
    (paths, log_prob), (theirs, their_paths) = model.viterbi(symbols), reference.decode(X, lengths)
    if not np.array_equal(paths.ravel(), their_paths):
        raise AssertionError("Viterbi paths differ from hmmlearn's")
    ours = log_prob.sum()
    if abs(ours - theirs) > 1e-9 * abs(theirs):
        raise AssertionError(f"Viterbi log-probabilities differ: {ours!r} vs {theirs!r}")
    mine = best_time(lambda: model.viterbi(symbols), repeats)
    base = best_time(lambda: reference.decode(X, lengths), repeats)
    print(f"viterbi        B={symbols.shape[0]:5d} T={LENGTH}: seqmodels {mine * 1e3:7.2f} ms, "
          f"hmmlearn decode {base * 1e3:7.2f} ms, ratio {base / mine:.2f}x (identical paths)")
    return base / mine


def plain_restarts(symbols: np.ndarray, n_states: int, n_symbols: int) -> tuple[float, int]:
    """Best total log-likelihood of plain hmmlearn restarts run to convergence, and iterations."""
    X, lengths = hmmlearn_input(symbols)
    best, iterations = -np.inf, 0
    for restart in range(N_RESTARTS):
        model = CategoricalHMM(
            n_components=n_states, n_features=n_symbols, implementation="scaling",
            n_iter=MAX_ITER, tol=TOL, random_state=np.random.RandomState(restart),
        )
        model.fit(X, lengths)
        best, iterations = max(best, model.score(X, lengths)), iterations + model.monitor_.iter
    return best, iterations


def timed_fit(symbols: np.ndarray, n_states: int, n_symbols: int, init: str):
    """``fit_em`` with the benchmark's restarts from ``init`` starts, and its wall time."""
    start = time.perf_counter()
    fit = fit_em(symbols, n_states, n_symbols, n_restarts=N_RESTARTS, max_iter=MAX_ITER,
                 tol=TOL, seed=0, progress=False, init=init)
    return fit, time.perf_counter() - start


def compare_fit(spec, symbols: np.ndarray) -> float:
    start = time.perf_counter()
    baseline, plain_iterations = plain_restarts(symbols, spec.n_states, spec.n_symbols)
    base = time.perf_counter() - start
    shape = "x".join(map(str, symbols.shape))
    ratios = {}
    for init in ("random", "windows"):
        fit, mine = timed_fit(symbols, spec.n_states, spec.n_symbols, init)
        ratios[init] = base / mine
        print(f"fit_em {N_RESTARTS} restarts ({init} starts) on {shape} loaded_dice: "
              f"seqmodels {mine:.1f} s (best log-likelihood {fit.log_likelihood:.2f}, "
              f"{int(fit.restarts.iterations.sum())} EM iterations), plain hmmlearn {base:.1f} s "
              f"(best log-likelihood {baseline:.2f}, {plain_iterations} EM iterations), "
              f"ratio {base / mine:.2f}x, "
              f"best log-likelihood gap {fit.log_likelihood - baseline:+.2f}")
    print(f"fit_em window starts vs flat Dirichlet starts: "
          f"{ratios['windows'] / ratios['random']:.2f}x faster")
    return ratios["windows"]


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    spec = loaded_dice()
    model = spec.to_hmm()
    if "--skip-fit" not in argv:
        compare_fit(spec, spec.sample(*(QUICK_FIT_SHAPE if quick else FIT_SHAPE), seed=1).symbols)
    small = spec.sample(100, LENGTH, seed=2).symbols
    large = spec.sample(1000, LENGTH, seed=3).symbols
    small_repeats, large_repeats = (10, 4) if quick else (30, 10)
    compare_viterbi(model, small, repeats=small_repeats)
    compare_viterbi(model, large, repeats=large_repeats)
    compare_likelihood(model, small, repeats=small_repeats)
    headline = compare_likelihood(model, large, repeats=large_repeats)
    print(f"headline: log_likelihood at B=1000, T=500 is {headline:.2f}x hmmlearn score")


if __name__ == "__main__":
    main(sys.argv[1:])
