"""Claims: seqmodels.hmm's compiled inference against hmmlearn and dynamax, same thread count.

Every comparison runs ours and the peer interleaved (``_timing.interleaved``),
at least 5 repeats, on the same data and float64, and prints the minimum times
and the min and median of peer time / our time (above 1: we are faster).

Threads: hmmlearn is single-threaded C++, so numba runs on 1 thread
(``limit_threads(1)``) and JAX is pinned to one CPU thread (``XLA_FLAGS``,
set before jax is imported). ``--threads 2`` lets ours and JAX use both cores.

Sections (all by default; name some to run only those):

* ``inference``: ``loaded_dice`` (K=4, V=8), T=500, B=100 and B=1000:
  ``log_likelihood`` vs hmmlearn ``score`` and vs dynamax ``hmm_filter``'s
  ``marginal_loglik``; ``filter`` vs dynamax ``hmm_filter`` (ours returns the
  beliefs and the (B, T, V) symbol forecasts, 12 floats per step; dynamax the
  filtered and predicted state probabilities, 8), also in ns per
  sequence-step; ``smooth`` vs hmmlearn ``predict_proba``;
  ``viterbi`` vs hmmlearn ``decode`` and dynamax
  ``hmm_posterior_mode``. dynamax runs jitted and vmapped over sequences, the
  gather of the log-likelihoods inside the jit; compile time is excluded (the
  warm-up call). Results are checked equal before timing.
* ``long``: one sequence, B=1, T=10**6: ``log_likelihood``, ``viterbi``, ``smooth``
  and one EM iteration vs hmmlearn, in ns per step.
* ``k64``: ``viterbi`` at K=64 (random model, V=8), B=1000, T=500, vs hmmlearn.
* ``likelihood``, ``filter``: the ``log_likelihood`` or the ``filter`` part of
  ``inference`` alone.
* ``bound``: the arithmetic bound of ``log_likelihood`` at B=1000, T=500:
  ``2 K^2 + K`` flops per sequence-step at the peak one core reaches in a
  single-threaded float64 matrix product (measured here, interleaved with ours:
  ours right after it, with its input pushed out of the caches, and again warm).
* ``fit``: one EM iteration on 200 x 500 ``loaded_dice`` vs one iteration of
  hmmlearn's ``fit``; then the whole run to convergence from the same window
  start (tol = 1e-7 per symbol) with both engines of ``fit_em``.
* ``comparison``: the comparison's EM HMM stage as the issue measured it (400 x 500 ``loaded_dice``,
  10 restarts, 3 finalists, its seed), ``engine="batched"`` on one numba thread
  vs ``engine="hmmlearn"``, with both fits' held-out excess and matrix errors.
* ``memory``: peak resident memory (VmHWM) added by ``log_likelihood`` and
  ``filter`` at B=1000, T=20000, each in a fresh subprocess.
* ``jit``: what the first call of each kernel costs in a process with an
  empty cache (compilation), and in a later process that loads the cache.

Run: ``.venv/bin/python benchmarks/bench_inference.py [section ...] [--threads N]``
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time

THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1
# Before jax is imported: one intra-op thread, no Eigen thread pool.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1" if THREADS == 1 else "")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
from _timing import interleaved, seconds  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from seqmodels._checks import as_sequences  # noqa: E402
from seqmodels.dice import loaded_dice  # noqa: E402
from seqmodels.hmm import (  # noqa: E402
    HMM,
    align_states,
    em_step,
    fit_em,
    limit_threads,
    window_init,
)
from seqmodels.hmm.model import hmmlearn_input  # noqa: E402

LENGTH = 500
REPEATS = 7


def dynamax_functions(model: HMM):
    """Jitted, vmapped dynamax passes on int symbols (B, T): log P, filter, Viterbi."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    from dynamax.hidden_markov_model.inference import hmm_filter, hmm_posterior_mode

    start, transmat = jnp.asarray(model.startprob), jnp.asarray(model.transmat)
    with np.errstate(divide="ignore"):
        log_emission = jnp.asarray(np.log(model.emissionprob.T))  # (V, K)

    def filtered(symbols):
        return hmm_filter(start, transmat, log_emission[symbols])

    def loglik(symbols):
        return jax.vmap(filtered)(symbols).marginal_loglik

    def filter_all(symbols):
        post = jax.vmap(filtered)(symbols)
        return post.filtered_probs, post.predicted_probs, post.marginal_loglik

    def viterbi(symbols):
        return jax.vmap(lambda x: hmm_posterior_mode(start, transmat, log_emission[x]))(symbols)

    def blocking(function):
        compiled = jax.jit(function)

        def run(symbols):
            return jax.block_until_ready(compiled(symbols))
        return run

    return {"log_likelihood": blocking(loglik), "filter": blocking(filter_all),
            "viterbi": blocking(viterbi)}


def check_close(ours, theirs, what: str, rtol: float = 1e-9) -> None:
    if not np.allclose(ours, theirs, rtol=rtol, atol=0):
        raise AssertionError(f"{what}: results differ")


def section_inference() -> None:
    for part in (compare_likelihood, compare_filter, compare_decoding):
        batches(part)


def section_likelihood() -> None:
    batches(compare_likelihood)


def section_filter() -> None:
    batches(compare_filter)


def batches(part) -> None:
    """``part(model, dynamax, symbols, label)`` for ``loaded_dice`` at T=500, B=100 and 1000."""
    spec = loaded_dice()
    model = spec.to_hmm()
    dynamax = dynamax_functions(model)
    for n_seq in (100, 1000):
        part(model, dynamax, spec.sample(n_seq, LENGTH, seed=n_seq).symbols,
             f"B={n_seq} T={LENGTH} K=4 V=8")


def compare_likelihood(model: HMM, dynamax: dict, symbols: np.ndarray, label: str) -> None:
    reference = model.to_hmmlearn()
    X, lengths = hmmlearn_input(as_sequences(symbols, model.n_symbols))
    check_close(model.log_likelihood(symbols).sum(), reference.score(X, lengths),
                "log_likelihood vs hmmlearn")
    check_close(model.log_likelihood(symbols), dynamax["log_likelihood"](symbols),
                "log_likelihood vs dynamax")
    print(interleaved(lambda: model.log_likelihood(symbols),
                      lambda: reference.score(X, lengths), REPEATS)
          .line(f"log_likelihood {label} vs hmmlearn score"))
    print(interleaved(lambda: model.log_likelihood(symbols),
                      lambda: dynamax["log_likelihood"](symbols), REPEATS)
          .line(f"log_likelihood {label} vs dynamax hmm_filter (marginal_loglik)"))


def compare_filter(model: HMM, dynamax: dict, symbols: np.ndarray, label: str) -> None:
    """Ours returns beliefs (B, T, K) and symbol forecasts (B, T, V): 12 floats per step;
    dynamax's ``hmm_filter`` filtered and predicted state probabilities: 8."""
    ours, theirs = model.filter(symbols), dynamax["filter"](symbols)
    check_close(ours.beliefs, theirs[0], "filter beliefs vs dynamax", rtol=1e-7)
    check_close(ours.predictive, theirs[1] @ model.emissionprob, "filter forecasts vs dynamax",
                rtol=1e-7)
    check_close(ours.log_likelihood, theirs[2], "filter log-likelihood vs dynamax")
    print(per_step(interleaved(lambda: model.filter(symbols), lambda: dynamax["filter"](symbols),
                               REPEATS), f"filter {label} vs dynamax hmm_filter", symbols.size))


def compare_decoding(model: HMM, dynamax: dict, symbols: np.ndarray, label: str) -> None:
    reference = model.to_hmmlearn()
    X, lengths = hmmlearn_input(as_sequences(symbols, model.n_symbols))
    check_close(model.smooth(symbols).reshape(-1, model.n_states),
                reference.predict_proba(X, lengths), "smooth vs hmmlearn", rtol=1e-7)
    print(per_step(interleaved(lambda: model.smooth(symbols),
                               lambda: reference.predict_proba(X, lengths), REPEATS),
                   f"smooth {label} vs hmmlearn predict_proba", symbols.size))
    paths, _ = model.viterbi(symbols)
    if not np.array_equal(paths.ravel(), reference.decode(X, lengths)[1]):
        raise AssertionError("Viterbi paths differ from hmmlearn's")
    same = np.mean(paths == np.asarray(dynamax["viterbi"](symbols)))
    print(interleaved(lambda: model.viterbi(symbols), lambda: reference.decode(X, lengths),
                      REPEATS).line(f"viterbi {label} vs hmmlearn decode (identical paths)"))
    print(interleaved(lambda: model.viterbi(symbols), lambda: dynamax["viterbi"](symbols),
                      REPEATS).line(f"viterbi {label} vs dynamax hmm_posterior_mode "
                                    f"({same:.4%} of states equal: ties break differently)"))


def per_step(result, label: str, n_steps: int) -> str:
    """``result.line(label)`` with both sides' nanoseconds per sequence-step."""
    return (result.line(label) + f"; ours {result.ours / n_steps * 1e9:.1f} ns/step, peer "
            f"{result.peer / n_steps * 1e9:.1f} ns/step")


def section_long() -> None:
    spec = loaded_dice()
    model, reference = spec.to_hmm(), spec.to_hmm().to_hmmlearn()
    symbols = spec.sample(1, 10**6, seed=5).symbols[0]
    X = symbols.reshape(-1, 1)
    check_close(model.log_likelihood(symbols), reference.score(X), "long log_likelihood")
    batch = as_sequences(symbols, model.n_symbols)
    for name, ours, peer in (
            ("log_likelihood", lambda: model.log_likelihood(symbols), lambda: reference.score(X)),
            ("viterbi", lambda: model.viterbi(symbols), lambda: reference.decode(X)),
            ("smooth", lambda: model.smooth(symbols), lambda: reference.predict_proba(X)),
            ("EM iteration (E-step on the kernels, M-step)", lambda: em_step(model, batch, 1e-3),
             lambda: model.to_hmmlearn(n_iter=1, emissionprob_prior=1.001).fit(X))):
        print(per_step(interleaved(ours, peer, 5), f"{name} B=1 T=10^6 vs hmmlearn", 10**6))


def section_k64() -> None:
    rng = np.random.default_rng(64)
    model = HMM(rng.dirichlet(np.ones(64)), rng.dirichlet(np.ones(64), size=64),
                rng.dirichlet(np.ones(8), size=64))
    _, symbols = model.sample(1000, LENGTH, seed=65)
    reference = model.to_hmmlearn()
    X, lengths = hmmlearn_input(as_sequences(symbols, 8))
    if not np.array_equal(model.viterbi(symbols)[0].ravel(), reference.decode(X, lengths)[1]):
        raise AssertionError("K=64 Viterbi paths differ from hmmlearn's")
    print(interleaved(lambda: model.viterbi(symbols), lambda: reference.decode(X, lengths), 5,
                      warmup=False).line("viterbi K=64 B=1000 T=500 vs hmmlearn decode", 1, "s"))


def section_bound() -> None:
    """``log_likelihood`` against its arithmetic bound, each repeat timing the matrix product,
    then ours right after it (its 54 MB have pushed our input out of the caches), then ours
    again (warm: the input and the model in cache, as in a loop over batches)."""
    size = 1500
    a, b = np.random.default_rng(0).random((2, size, size))
    spec = loaded_dice()
    model = spec.to_hmm()
    symbols = spec.sample(1000, LENGTH, seed=7).symbols
    k = model.n_states
    flops = symbols.size * (2 * k * k + k)  # q = alpha A: 2K^2, times B[:, x]: K
    with threadpool_limits(limits=1), limit_threads(1):
        model.log_likelihood(symbols)
        times = np.array([(seconds(lambda: a @ b), seconds(lambda: model.log_likelihood(symbols)),
                           seconds(lambda: model.log_likelihood(symbols)))
                          for _ in range(REPEATS)])
    peak = 2 * size**3 / times[:, 0].min()
    bound = flops / peak
    # Per repeat, ours over the bound that repeat's matrix product gives.
    ratios = times[:, 1:] / (times[:, :1] * flops / (2 * size**3))
    print(f"arithmetic bound: one core reaches {peak / 1e9:.1f} GFLOP/s (float64 {size}^2 matrix "
          f"product, 1 thread, fastest of {REPEATS}); log_likelihood B=1000 T=500 K=4 does "
          f"2K^2+K = {2 * k * k + k} flops per sequence-step, bound {bound * 1e3:.3f} ms")
    for column, when in ((1, "right after the matrix product"), (2, "warm, called again")):
        print(f"  ours {when}: {times[:, column].min() * 1e3:.3f} ms on 1 thread = "
              f"{times[:, column].min() / bound:.1f}x the bound (median of {REPEATS} interleaved "
              f"repeats {np.median(ratios[:, column - 1]):.1f}x)")


def section_fit() -> None:
    spec = loaded_dice()
    symbols = spec.sample(200, LENGTH, seed=1).symbols
    batch = as_sequences(symbols, 8)
    X, lengths = hmmlearn_input(batch)
    start = window_init(symbols, 4, 8, seed=2)

    def hmmlearn_iteration():
        start.to_hmmlearn(n_iter=1, emissionprob_prior=1.001).fit(X, lengths)

    print(interleaved(lambda: em_step(start, batch, 1e-3), hmmlearn_iteration, REPEATS)
          .line("one EM iteration, 200 x 500 loaded_dice, vs one hmmlearn fit iteration"))
    fits = {}

    def run(engine):
        fits[engine] = fit_em(symbols, 4, 8, init=start, engine=engine, progress=False)

    result = interleaved(lambda: run("batched"), lambda: run("hmmlearn"), 5, warmup=False)
    ours, theirs = fits["batched"], fits["hmmlearn"]
    print(result.line("fit_em from the same window start to convergence (tol 1e-7/symbol), "
                      "engine batched vs hmmlearn", 1, "s") +
          f"; iterations {int(ours.restarts.iterations[0])} vs "
          f"{int(theirs.restarts.iterations[0])}, log-likelihood {ours.log_likelihood:.4f} vs "
          f"{theirs.log_likelihood:.4f}")


def section_comparison() -> None:
    """The EM HMM stage of the comparison as the issue measured it (400 x 500 ``loaded_dice``,
    10 restarts, 3 finalists; the comparison's named seeds): ``engine="batched"`` on one
    numba thread vs ``engine="hmmlearn"``, with the fits' quality."""
    from seqmodels._checks import named_seed
    from seqmodels.compare.config import ComparisonConfig

    config = ComparisonConfig(n_train=400, restarts=10, em_finalists=3)
    spec = loaded_dice()
    truth = spec.to_hmm()
    train = spec.sample(config.n_train, config.length, named_seed(config.seed, "train")).symbols
    test = spec.sample(config.n_test, config.length, named_seed(config.seed, "test")).symbols
    fits = {}

    def stage(engine):  # compare.models' EM fit, with a fresh named seed each time
        fits[engine] = fit_em(train, truth.n_states, truth.n_symbols, n_restarts=config.restarts,
                              n_finalists=config.em_finalists,
                              seed=np.random.default_rng(named_seed(config.seed, "em_hmm")),
                              engine=engine, progress=False)

    with limit_threads(1):
        result = interleaved(lambda: stage("batched"), lambda: stage("hmmlearn"), 5, warmup=False)
    print(result.line(f"comparison's EM stage ({config.n_train} x {config.length} "
                      f"{config.preset}, {config.restarts} restarts, {config.em_finalists} "
                      "finalists), engine batched on 1 thread vs hmmlearn", 1, "s"))
    for engine, fit in fits.items():
        model, _ = align_states(fit.model, truth)
        excess = (truth.log_likelihood(test).sum() - model.log_likelihood(test).sum()) / test.size
        print(f"  {engine}: train log-likelihood {fit.log_likelihood:.4f}, held-out excess "
              f"{excess:.6f} nats/symbol, max |transmat error| "
              f"{np.abs(model.transmat - truth.transmat).max():.4f}, max |emission error| "
              f"{np.abs(model.emissionprob - truth.emissionprob).max():.4f}, iterations "
              f"{int(fit.restarts.iterations.sum())}")


_MEMORY_PROBE = textwrap.dedent("""
    import sys, numpy as np
    from seqmodels.dice import loaded_dice
    def peak():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    spec = loaded_dice(); model = spec.to_hmm()
    warm = spec.sample(2, 50, seed=0).symbols
    model.log_likelihood(warm); model.filter(warm)            # compile / load kernels first
    symbols = np.random.default_rng(1).integers(0, 8, size=(1000, 20000))  # no sampler peak
    before = peak()
    result = getattr(model, sys.argv[1])(symbols)
    outputs = sum(getattr(result, name).nbytes for name in ("beliefs", "predictive")) \\
        if sys.argv[1] == "filter" else 0
    print(peak() - before, outputs)
""")


def section_memory() -> None:
    input_bytes = 1000 * 20000 * 8
    for method in ("log_likelihood", "filter"):
        out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, method], check=True,
                             capture_output=True, text=True).stdout.split()
        added, outputs = int(out[0]), int(out[1])
        print(f"memory {method} B=1000 T=20000: peak grows by {added / 2**20:.1f} MiB beyond "
              f"the {input_bytes / 2**20:.0f} MiB input (its outputs: {outputs / 2**20:.1f} MiB)")


_JIT_PROBE = textwrap.dedent("""
    import time
    t = time.perf_counter()
    from seqmodels.dice import loaded_dice
    from seqmodels.hmm import fit_em
    spec = loaded_dice(); model = spec.to_hmm(); symbols = spec.sample(2, 30, seed=0).symbols
    print(f"import {time.perf_counter() - t:.2f}")
    for name, call in (("log_likelihood", lambda: model.log_likelihood(symbols)),
                       ("filter", lambda: model.filter(symbols)),
                       ("smooth", lambda: model.smooth(symbols)),
                       ("viterbi", lambda: model.viterbi(symbols)),
                       ("fit_em", lambda: fit_em(symbols, 4, 8, n_restarts=1, max_iter=2,
                                                 window=5, progress=False))):
        t = time.perf_counter(); call(); print(f"{name} {time.perf_counter() - t:.2f}")
""")


def section_jit() -> None:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        runs = [subprocess.run([sys.executable, "-c", _JIT_PROBE], env=env, check=True,
                               capture_output=True, text=True).stdout.split("\n")
                for _ in range(2)]
    for first, later in zip(*runs, strict=True):
        if first:
            name, cold = first.split()
            print(f"jit {name}: first call {float(cold):.2f} s with an empty cache, "
                  f"{float(later.split()[1]):.3f} s in a later process (cache loaded)")


SECTIONS = {"inference": section_inference, "likelihood": section_likelihood,
            "filter": section_filter, "long": section_long, "k64": section_k64,
            "bound": section_bound, "fit": section_fit, "comparison": section_comparison,
            "memory": section_memory,
            "jit": section_jit}


def main(argv: list[str]) -> None:
    chosen = [name for name in argv if name in SECTIONS] or list(SECTIONS)
    print(f"threads: numba {THREADS}, XLA_FLAGS={os.environ['XLA_FLAGS']!r}; float64")
    with limit_threads(THREADS):
        for name in chosen:
            start = time.perf_counter()
            SECTIONS[name]()
            print(f"  ({name}: {time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
