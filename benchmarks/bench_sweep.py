"""Claim: a sweep runs 8 equal cells >= 1.7x faster on 2 workers than on 1, locally and on Dask.

Ours is the 2-worker engine, the peer the same engine with 1 worker: local
"spawn" process pools (``process_engine``, what ``--workers 2`` uses; ``--workers
1`` runs in-process instead) and Dask ``LocalCluster``s of 2 and 1 single-threaded worker
processes on 127.0.0.1. Every cell runs BLAS (and numba) on one thread on
both sides. The 8 cells are RNN cells of one size and different seeds
(equal work); each timing submits all 8 and waits for the last. Engines are
started once and warmed up (imports, first fits) before timing, so the
figures leave out start-up, which is printed separately: on a short sweep it
is not negligible. The four engines are timed interleaved, REPEATS times;
the ratios are of the minima and the median of the per-repeat ratios.

Then Dask's overhead per cell: TINY_CELLS cells of a few milliseconds on a
1-worker cluster, against the same cells run in this process.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from concurrent.futures import Executor, wait
from contextlib import ExitStack

from seqmodels.compare.executors import InlineExecutor
from seqmodels.sweep import SWEEP_SETTINGS, GridCell, dask_engine, run_cell
from seqmodels.sweep.engines import process_engine

REPEATS = 5
N_CELLS = 8
N_TRAIN, LENGTH, HIDDEN = 100, 500, 32
SETTINGS = dataclasses.replace(SWEEP_SETTINGS, length=LENGTH, epochs=20)
CELLS = [GridCell("rnn", "loaded_dice", N_TRAIN, HIDDEN, "elman", None, seed)
         for seed in range(N_CELLS)]
TINY_CELLS = 40
TINY_SETTINGS = dataclasses.replace(SWEEP_SETTINGS, length=20, n_test=10, epochs=1)
TINY = [GridCell("rnn", "loaded_dice", 10, 4, "elman", None, seed) for seed in range(TINY_CELLS)]


def run_all(executor: Executor, cells, settings) -> float:
    """Wall seconds to run ``cells`` on ``executor``, all submitted at once."""
    start = time.perf_counter()
    futures = [executor.submit(run_cell, cell, settings) for cell in cells]
    wait(futures)
    for future in futures:
        future.result()  # raise, if a cell failed
    return time.perf_counter() - start


def start(stack: ExitStack, name: str, engine) -> Executor:
    """Enter ``engine`` and warm it up with four tiny cells; print the start-up seconds."""
    began = time.perf_counter()
    executor = stack.enter_context(engine)
    run_all(executor, TINY[:4], TINY_SETTINGS)
    print(f"  {name}: started and warmed up in {time.perf_counter() - began:.1f} s")
    return executor


def report(name: str, one: list[float], two: list[float]) -> float:
    ratios = [a / b for a, b in zip(one, two, strict=True)]
    print(f"{name}: per repeat, 1 worker " + " ".join(f"{s:.2f}" for s in one)
          + " s; 2 workers " + " ".join(f"{s:.2f}" for s in two) + " s")
    print(f"{name}: 1 worker min {min(one):.2f} s, median {statistics.median(one):.2f} s; "
          f"2 workers min {min(two):.2f} s, median {statistics.median(two):.2f} s; "
          f"speedup {min(one) / min(two):.2f}x (min), {statistics.median(ratios):.2f}x "
          "(median ratio)")
    return min(one) / min(two)


def main() -> int:
    print(f"{N_CELLS} equal cells: elman RNN, n_train={N_TRAIN}, length={LENGTH}, "
          f"hidden={HIDDEN}, {SETTINGS.epochs} epochs at most, {SETTINGS.rnn_dtype}, 1 thread "
          f"per worker; {REPEATS} repeats interleaved")
    times: dict[str, list[float]] = {"local 1": [], "local 2": [], "dask 1": [], "dask 2": []}
    with ExitStack() as stack:
        engines = {
            "local 1": start(stack, "local, 1 worker process", process_engine(1)),
            "local 2": start(stack, "local, 2 worker processes", process_engine(2)),
            "dask 1": start(stack, "Dask LocalCluster, 1 worker", dask_engine(local_workers=1)),
            "dask 2": start(stack, "Dask LocalCluster, 2 workers", dask_engine(local_workers=2)),
        }
        for _ in range(REPEATS):
            for name, executor in engines.items():
                times[name].append(run_all(executor, CELLS, SETTINGS))
        tiny = {"here": InlineExecutor(), "dask": engines["dask 1"], "pool": engines["local 1"]}
        tiny_times: dict[str, list[float]] = {name: [] for name in tiny}
        for _ in range(REPEATS):
            for name, executor in tiny.items():
                tiny_times[name].append(run_all(executor, TINY, TINY_SETTINGS) / TINY_CELLS)
    local = report("local", times["local 1"], times["local 2"])
    dask = report("dask ", times["dask 1"], times["dask 2"])
    here, on_dask, in_pool = (1e3 * min(tiny_times[name]) for name in tiny)
    print(f"tiny cells ({TINY_CELLS} per run, {here:.1f} ms each in this process): on a "
          f"1-worker Dask cluster {on_dask:.1f} ms, so {on_dask - here:.1f} ms of Dask overhead "
          f"per cell; in a 1-process local pool {in_pool:.1f} ms ({in_pool - here:.1f} ms)")
    print(f"speedup on 2 workers (target >= 1.7): local {local:.2f}x, Dask {dask:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
