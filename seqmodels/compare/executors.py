"""Where slow fits run: any ``concurrent.futures.Executor``; two are provided.

:func:`~seqmodels.compare.run.run_comparison` submits its slow fits (the EM
HMMs) to an executor and fits the rest in this process meanwhile. Results never
depend on where a fit ran: each draws from its own named seed.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager

from tqdm.auto import tqdm

from seqmodels._checks import check_count


def check_executor(executor) -> Executor | None:
    """``executor`` if it is a ``concurrent.futures.Executor`` or None, else ``ValueError``."""
    if executor is not None and not isinstance(executor, Executor):
        raise ValueError(f"executor must be a concurrent.futures.Executor or None, got "
                         f"{type(executor).__name__}")
    return executor


class InlineExecutor(Executor):
    """Runs each submitted call at once, in this process; its future is already done.

    For one core, for tests, and inside a worker of a larger pool (no nested
    process pools).
    """

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as err:  # a KeyboardInterrupt is not the call's result: let it go
            future.set_exception(err)
        return future


@contextmanager
def process_pool(n_workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``n_workers`` "spawn" processes, closed when the block ends.

    "spawn", not "fork": the parent may already run BLAS or tqdm threads. On a
    clean exit the pool waits for its work; on an error or a Ctrl-C its workers
    are terminated at once, so nobody waits for a fit whose result is lost.
    """
    n_workers = check_count("n_workers", n_workers)
    pool = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    except BaseException:
        _terminate(pool)
        raise
    else:
        pool.shutdown(wait=True)


def _terminate(pool: ProcessPoolExecutor) -> None:
    if hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join()


def result_with_progress(future: Future, description: str, progress: bool):
    """``future.result()``, with a ticking elapsed-time bar while it is not done."""
    if not future.done():
        with tqdm(desc=description, disable=not progress, bar_format="{desc}: {elapsed}") as bar:
            while not wait_for([future], timeout=0.5).done:
                bar.refresh()
    return future.result()
