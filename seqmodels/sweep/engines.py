"""Where a sweep's cells run: a ``concurrent.futures.Executor`` from one of two engines.

- :func:`local_engine`: ``n_workers`` local processes (``"spawn"``,
  :func:`process_engine`), or this process alone for one worker.
- :func:`dask_engine`: a Dask ``distributed`` cluster, running at an address
  or started here as a ``LocalCluster`` on 127.0.0.1 and closed on exit.

Both hand out a plain ``Executor`` and run :func:`~seqmodels.sweep.cell.run_cell`
as one task per cell; the cell itself fits everything in its process (no
nested pools) with one thread (:func:`~seqmodels.sweep.cell.one_thread`).
Results do not depend on the engine: every cell draws from seeds keyed by
its coordinates.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import ExitStack, contextmanager

from seqmodels._checks import check_count
from seqmodels.compare.executors import InlineExecutor, process_pool
from seqmodels.sweep.cell import WORKER_ENVIRONMENT


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextmanager
def worker_environment() -> Iterator[None]:
    """:data:`WORKER_ENVIRONMENT` set in ``os.environ`` for the block, then restored.

    Processes started in the block (a pool's workers) inherit it, so numba and
    BLAS loaded there start with one thread.
    """
    previous = {name: os.environ.get(name) for name in WORKER_ENVIRONMENT}
    os.environ.update(WORKER_ENVIRONMENT)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def process_engine(n_workers: int) -> Iterator[Executor]:
    """``n_workers`` "spawn" worker processes with :data:`WORKER_ENVIRONMENT`, closed at the end.

    On an error or a Ctrl-C the workers are terminated at once
    (:func:`~seqmodels.compare.executors.process_pool`); cells that finished
    are already on disk.
    """
    with worker_environment(), process_pool(check_count("workers", n_workers)) as pool:
        yield pool


@contextmanager
def local_engine(n_workers: int) -> Iterator[Executor]:
    """The default engine: :func:`process_engine`, or this process alone for one worker."""
    if check_count("workers", n_workers) == 1:
        yield InlineExecutor()
        return
    with process_engine(n_workers) as pool:
        yield pool


@contextmanager
def dask_engine(scheduler: str | None = None, local_workers: int | None = None,
                ) -> Iterator[Executor]:
    """A Dask cluster's executor: at ``scheduler``, or a new ``LocalCluster``.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler, ``tcp://HOST:8786``. Its workers must
        have this package installed; give them one thread each
        (``dask worker --nthreads 1``) to run one cell per core, and start
        them without Dask's ``MALLOC_TRIM_THRESHOLD_`` (``dask worker
        --no-nanny``, or :data:`NO_MALLOC_TRIM` in their Dask config), or cells
        run about 1.4x slower.
    local_workers : int, optional
        Start a ``LocalCluster`` of this many single-threaded worker processes,
        listening on 127.0.0.1 only, and close it when the block ends.

    Dask reruns a task whose worker died (up to its ``allowed-failures``), so a
    killed worker costs the cells it was running, not the sweep.

    Raises
    ------
    ValueError
        Neither or both of ``scheduler`` and ``local_workers`` given, or Dask
        not installed.
    """
    if (scheduler is None) == (local_workers is None):
        raise ValueError("dask_engine needs exactly one of scheduler (an address) and "
                         f"local_workers (a count), got {scheduler!r} and {local_workers!r}")
    distributed = _distributed()
    with ExitStack() as stack:
        if local_workers is not None:
            scheduler = stack.enter_context(local_cluster(local_workers))
        client = stack.enter_context(distributed.Client(scheduler))
        # pure=False: every submission runs, even one equal to an earlier call.
        yield client.get_executor(pure=False)


#: Dask config that drops ``MALLOC_TRIM_THRESHOLD_`` from the environment Dask's
#: nannies give their workers. Setting it at all turns off glibc's adaptive mmap
#: threshold, so every large temporary array is mapped and page-faulted afresh:
#: a cell ran about 1.4x slower with it (measured, same cells in one process).
NO_MALLOC_TRIM = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def local_cluster(n_workers: int):
    """A Dask ``LocalCluster`` of ``n_workers`` single-threaded worker processes on 127.0.0.1.

    Everything listens on the loopback address only (the scheduler's HTTP
    server on a free port, no dashboard); workers get :data:`WORKER_ENVIRONMENT`
    and not Dask's default ``MALLOC_TRIM_THRESHOLD_=65536``
    (:data:`NO_MALLOC_TRIM`). Use it as a context manager: it closes its
    workers at the end.
    """
    distributed = _distributed()
    import dask

    with dask.config.set(NO_MALLOC_TRIM):  # read when the nannies are made
        return distributed.LocalCluster(
            n_workers=check_count("dask_local", n_workers), threads_per_worker=1,
            processes=True, host="127.0.0.1", dashboard_address=None, env=WORKER_ENVIRONMENT,
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.WARNING)


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ValueError("the Dask engine needs dask.distributed: pip install "
                         "'seqmodels[dask]'") from None
    return distributed
