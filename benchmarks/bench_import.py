"""Claim: ``import seqmodels`` stays fast with the process catalogue in it.

Ours: a fresh interpreter running ``import seqmodels`` (which now imports
``seqmodels.processes`` and ``seqmodels.hmm.labelled``), and the cumulative
import time of those modules and of ``seqmodels.information`` and
``seqmodels.testing`` (imported by name), read from ``python -X importtime``.
Peer: a fresh interpreter running ``import hmmlearn.hmm``, the library
seqmodels sits beside. Runs alternate ours, peer, ours, peer, ...; the script
prints the min and median wall time of each and the median ratio. Both start
from a warm file cache; the wall time includes the interpreter's own start
(about 20 ms), which flatters neither side.

Run: ``.venv/bin/python benchmarks/bench_import.py``
"""

from __future__ import annotations

import statistics
import subprocess
import sys

from _timing import seconds

REPEATS = 9
MODULES = ("seqmodels", "seqmodels.processes", "seqmodels.hmm.labelled",
           "seqmodels.information", "seqmodels.testing")


def wall_time(statement: str) -> float:
    """Seconds for a fresh interpreter to run ``statement`` and exit."""
    return seconds(lambda: subprocess.run([sys.executable, "-c", statement], check=True))


def module_times() -> dict[str, float]:
    """Cumulative import time (seconds) of each of ``MODULES``, from ``-X importtime``."""
    statement = "import seqmodels, seqmodels.information, seqmodels.testing"
    report = subprocess.run([sys.executable, "-X", "importtime", "-c", statement],
                            check=True, capture_output=True, text=True).stderr
    times = {}
    for line in report.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if len(parts) == 3 and parts[2] in MODULES:
            times[parts[2]] = int(parts[1]) / 1e6
    return times


def main() -> None:
    ours, peer, modules = [], [], []
    for _ in range(REPEATS):
        ours.append(wall_time("import seqmodels"))
        peer.append(wall_time("import hmmlearn.hmm"))
        modules.append(module_times())
    for name, times in (("import seqmodels", ours), ("import hmmlearn.hmm", peer)):
        print(f"{name:22s} min {min(times) * 1e3:7.1f} ms  median "
              f"{statistics.median(times) * 1e3:7.1f} ms")
    for name in MODULES:
        values = [times[name] for times in modules]
        print(f"  {name:26s} cumulative import: min {min(values) * 1e3:6.1f} ms  median "
              f"{statistics.median(values) * 1e3:6.1f} ms")
    ratios = [a / b for a, b in zip(ours, peer, strict=True)]
    print(f"import seqmodels / import hmmlearn.hmm: median ratio {statistics.median(ratios):.2f} "
          f"(min ratio {min(ours) / min(peer):.2f})")


if __name__ == "__main__":
    main()
