"""Compare the explicit HMM matrices with the RNN's learned state on dice sequences.

Fits the counted and EM HMMs, two Elman RNNs (faces only; dice as labels) and
two baselines on one dice sample, measures them all on held-out sequences
against the true model and writes a report folder (report.md, metrics.csv,
metrics.json, config.json, PNG figures). Examples:

    python experiments/compare.py                    # the default run, ~1 minute
    python experiments/compare.py --quick --out /tmp/smoke
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from seqmodels._io import FileProblemError, check_replaceable, folder_lock
from seqmodels.compare import ComparisonConfig, run_comparison, write_report
from seqmodels.compare.report import REPORT_FILES, markdown_table, metrics_table, target_table
from seqmodels.dice import PRESETS

DEFAULTS, QUICK = ComparisonConfig(), ComparisonConfig.quick()
SIZE_FLAGS = {
    "n_train": "training sequences",
    "n_test": "held-out sequences (at least 2: the belief probe fits on one half, scores on "
              "the other)",
    "length": "throws per sequence",
    "hidden": "hidden units of both RNNs",
    "epochs": "training epochs of the faces-only RNN (early stopping may end sooner)",
    "restarts": "Baum-Welch restarts of the EM HMM fit",
}
SUMMARY_METRICS = ("log_loss", "excess", "accuracy_causal", "accuracy_viterbi", "belief_r2")


def int_at_least(minimum: int, what: str):
    """An argparse type: an integer >= ``minimum``, else a message saying ``what`` it must be."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
        return value

    return parse


positive_int = int_at_least(1, "a positive integer")
non_negative_int = int_at_least(0, "an integer >= 0")


def folder(text: str) -> Path:
    """An argparse type: a non-empty path (``Path('')`` would silently mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a folder, got an empty string")
    return Path(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULTS.preset,
                        help=f"the true dice model (default {DEFAULTS.preset})")
    for name, text in SIZE_FLAGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=positive_int, default=None,
                            metavar="N", help=f"{text} (default {getattr(DEFAULTS, name)}; "
                                              f"{getattr(QUICK, name)} with --quick)")
    parser.add_argument("--seed", type=non_negative_int, default=DEFAULTS.seed, metavar="N",
                        help="root seed: the same seed gives the same metrics.json (default "
                             f"{DEFAULTS.seed})")
    parser.add_argument("--out", type=folder, default=Path("reports/compare"), metavar="DIR",
                        help="report folder: new, empty or a previous report, which is "
                             "replaced whole when the run ends (default reports/compare)")
    parser.add_argument("--quick", action="store_true",
                        help="a run of a few seconds on tiny data, for smoke tests; "
                             "explicit size flags still apply")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    parser.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                        help="processes: with 2 or more the EM HMM fit runs in a worker "
                             "alongside the RNNs (same results); default 2, 1 with --quick")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def writable_folder_problem(out: Path) -> str | None:
    """Why ``out`` cannot take the report, or None when it can.

    The report is built beside ``out`` and swapped in, so ``out`` must be new,
    empty or a previous report, and its parent (created if missing) must take
    new files.
    """
    try:
        check_replaceable(out, set(REPORT_FILES))
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent):  # as the staging folder will be
            pass
    except ValueError as err:
        return f"cannot write the report to {str(out)!r}: {err}"
    except OSError as err:
        return (f"cannot write the report to {str(out)!r}: cannot create files in "
                f"{str(out.parent)!r} ({err.strerror})")
    return None


@contextmanager
def interrupt_flag() -> Iterator[dict[str, bool]]:
    """Ctrl-C raises KeyboardInterrupt as usual and also sets ``flag["hit"]``.

    A KeyboardInterrupt that lands in a weakref or finalizer callback is
    printed and swallowed by Python, and the run would go on to exit 0; the flag
    remembers it.
    """
    flag = {"hit": False}

    def on_interrupt(signum, frame):
        flag["hit"] = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def config_from_args(args: argparse.Namespace) -> ComparisonConfig:
    sizes = {name: getattr(args, name) for name in SIZE_FLAGS if getattr(args, name) is not None}
    settings = dict(preset=args.preset, seed=args.seed, **sizes)
    return ComparisonConfig.quick(**settings) if args.quick else ComparisonConfig(**settings)


def summary(result) -> str:
    """The concise table printed to the terminal."""
    wide = metrics_table(result, result.metrics.model.unique(), SUMMARY_METRICS)
    return (markdown_table(wide) + "\n\n"
            + markdown_table(target_table(result)))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    problem = writable_folder_problem(args.out)
    if problem:
        parser.error(problem)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    jobs = args.jobs if args.jobs is not None else (1 if args.quick else 2)
    try:
        with interrupt_flag() as interrupted, folder_lock(args.out):
            result = run_comparison(config, progress=not args.quiet, n_jobs=jobs)
            if interrupted["hit"]:  # swallowed by a callback: still an interruption
                raise KeyboardInterrupt
            write_report(result, args.out, plots=not args.no_plots)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {str(args.out)!r} holds the previous report, or nothing",
              file=sys.stderr)
        return 130
    except FileProblemError as err:  # another run holds the folder, or the disk refused
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary(result))
    print(f"\nreport: {args.out / 'report.md'} ({time.perf_counter() - start:.1f} s)")
    return 0 if not interrupted["hit"] else 130


if __name__ == "__main__":
    sys.exit(main())
