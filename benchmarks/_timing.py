"""Timing shared by the benchmark scripts (imported as a sibling module).

A speed claim compares ours with a peer timed in the same run, interleaved
(ours, peer, ours, peer, ...) so that load from other processes on the shared
machine falls on both alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


def seconds(run: Callable[[], object]) -> float:
    """Wall time of one call of ``run``."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def best_time(run: Callable[[], object], repeats: int, warmup: bool = False) -> float:
    """Minimum wall time of ``repeats`` calls of ``run``, in seconds (no peer)."""
    if warmup:
        run()
    return min(seconds(run) for _ in range(repeats))


@dataclass(frozen=True)
class Comparison:
    """Interleaved timings of ours and a peer: minimum times and the ratios of peer to ours.

    ``ratio_min`` is the peer's minimum over ours; ``ratio_median`` the median of
    the per-pair ratios. Above 1 means we are faster.
    """

    ours: float
    peer: float
    ratio_min: float
    ratio_median: float
    repeats: int

    def line(self, label: str, unit: float = 1e-3, unit_name: str = "ms") -> str:
        return (f"{label}: ours {self.ours / unit:.3g} {unit_name}, peer {self.peer / unit:.3g} "
                f"{unit_name}; peer/ours min {self.ratio_min:.2f}x, median "
                f"{self.ratio_median:.2f}x ({self.repeats} interleaved repeats)")


def interleaved(ours: Callable[[], object], peer: Callable[[], object], repeats: int = 5,
                warmup: bool = True, work: tuple[float, float] = (1.0, 1.0)) -> Comparison:
    """Time ``ours`` and ``peer`` alternately ``repeats`` times each (after one untimed call
    of each when ``warmup``); see :class:`Comparison`.

    ``work`` is how much each call does (e.g. steps sampled), when the two differ:
    the ratios then compare time per unit of work.
    """
    if repeats < 5:
        raise ValueError(f"repeats must be at least 5, got {repeats}")
    if warmup:
        ours()
        peer()
    scale = work[0] / work[1]
    pairs = [(seconds(ours), seconds(peer)) for _ in range(repeats)]
    mine, theirs = zip(*pairs, strict=True)
    return Comparison(min(mine), min(theirs), scale * min(theirs) / min(mine),
                      statistics.median(scale * b / a for a, b in pairs), repeats)
