"""Timing shared by the benchmark scripts (imported as a sibling module)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_time(run: Callable[[], object], repeats: int, warmup: bool = False) -> float:
    """Minimum wall time of ``repeats`` calls of ``run``, in seconds.

    The minimum, not the mean: on a shared machine other processes only ever
    add time, so the fastest run is the best estimate of the code's own cost.
    ``warmup`` makes one untimed call first (caches, lazy imports, allocations).
    """
    if warmup:
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)
