"""Compare explicit HMM matrices with the recurrent state RNNs learn, on the same sequences.

Fits HMMs (by counting with the hidden states visible; by Baum-Welch on the
symbols alone), one RNN per cell on the symbols alone, a supervised decoder and
baselines on one sample of a process, measures them all on held-out sequences
against the true model, and writes a report folder (report.md, metrics.csv,
metrics.json, config.json, PNG figures). Examples:

    python experiments/compare.py                    # the default run
    python experiments/compare.py --cells elman,gru,lstm
    python experiments/compare.py --quick --out /tmp/smoke
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from seqmodels._io import FileProblemError, check_writable_folder, folder_lock
from seqmodels.compare import ComparisonConfig, run_comparison, write_report
from seqmodels.compare.config import FLAG_FIELDS, PRESET_SETTINGS, flag_error, flag_text
from seqmodels.compare.executors import InlineExecutor, process_pool
from seqmodels.compare.report import (
    REPORT_FILES,
    markdown_table,
    metrics_table,
    target_table,
    targets_note,
)
from seqmodels.processes import PRESETS
from seqmodels.rnn import CELLS

DEFAULTS, QUICK = ComparisonConfig(), ComparisonConfig.quick()
#: The default run's wall time as measured, and where (README and --help say the same).
DEFAULT_RUN_TIME = ("13-15 s on a quiet 2-core machine (plus about 14 s once, to compile the "
                    "HMM kernels)")
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


def cell_list(text: str) -> tuple[str, ...]:
    """An argparse type: comma-separated cell names, each known."""
    names = tuple(name.strip() for name in text.split(","))
    unknown = [repr(name) for name in names if name not in CELLS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown cell {', '.join(unknown)}; choose from "
                                         f"{', '.join(CELLS)}")
    return names


#: Help and argparse type of each flagged config field (FLAG_FIELDS gives the order).
FLAGS = {
    "preset": ("the true model", str),
    "n_train": ("training sequences", positive_int),
    "n_test": ("held-out sequences (at least 10: the belief probe is cross-validated over "
               "5 folds of them)", positive_int),
    "length": ("steps per sequence", positive_int),
    "hidden": ("hidden units of every RNN", positive_int),
    "cells": (f"RNN cells, comma-separated, one next-symbol RNN each ({', '.join(CELLS)})",
              cell_list),
    "epochs": ("training epochs of the next-symbol RNNs (early stopping may end sooner)",
               positive_int),
    "restarts": ("Baum-Welch restarts of the EM HMM fit", positive_int),
    "em_states": ("hidden states of the EM HMM (default: the true model's)", positive_int),
    "seed": ("root seed: the same seed gives the same metrics.json", non_negative_int),
}


def _default_text(name: str) -> str:
    default, quick = flag_text(getattr(DEFAULTS, name)), flag_text(getattr(QUICK, name))
    return f"default {default}" + ("" if quick == default else f"; {quick} with --quick")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"The default run takes {DEFAULT_RUN_TIME}. Presets whose reference run "
               "differs from these defaults: " + "; ".join(
                   f"{name} ({', '.join(f'{k} {flag_text(v)}' for k, v in settings.items())})"
                   for name, settings in PRESET_SETTINGS.items()) + ".",
    )
    for name in FLAG_FIELDS:
        text, kind = FLAGS[name]
        options = {"choices": sorted(PRESETS)} if name == "preset" else {"metavar": (
            "A,B" if name == "cells" else "N")}
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None,
                            help=f"{text} ({_default_text(name)})", **options)
    parser.add_argument("--out", type=folder, default=Path("reports/compare"), metavar="DIR",
                        help="report folder: new, empty or a previous report, which is "
                             "replaced whole when the run ends (default reports/compare)")
    parser.add_argument("--quick", action="store_true",
                        help="a run of a few seconds on tiny data, for smoke tests; "
                             "explicit size flags still apply")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    parser.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                        help="processes: with N >= 2 the EM HMM fit runs in one of N - 1 "
                             "worker processes alongside the RNNs (same results); default 2, "
                             "1 with --quick")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def writable_folder_problem(out: Path) -> str | None:
    """Why ``out`` cannot take the report, or None when it can.

    The report is built beside ``out`` and swapped in, so ``out`` must be new,
    empty or a previous report, and its parent (created if missing) must take
    new files.
    """
    try:
        check_writable_folder(out, set(REPORT_FILES))
    except ValueError as err:
        return f"cannot write the report to {str(out)!r}: {err}"
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


def given_fields(args: argparse.Namespace) -> dict:
    """The config fields set by a flag on the command line, with their values."""
    return {name: getattr(args, name) for name in FLAG_FIELDS if getattr(args, name) is not None}


def config_from_args(args: argparse.Namespace) -> ComparisonConfig:
    given = given_fields(args)
    if args.quick:
        return ComparisonConfig.quick(**given)
    return ComparisonConfig.for_preset(given.pop("preset", DEFAULTS.preset), **given)


def summary(result) -> str:
    """The concise tables printed to the terminal: the main metrics, then the targets."""
    wide = metrics_table(result, result.metrics.model.unique(), SUMMARY_METRICS)
    return "\n\n".join([markdown_table(wide), targets_note(result),
                         markdown_table(target_table(result))])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as err:
        parser.error(flag_error(str(err), given_fields(args)))
    problem = writable_folder_problem(args.out)
    if problem:
        parser.error(f"argument --out: {problem}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    jobs = args.jobs if args.jobs is not None else (1 if args.quick else 2)
    try:
        with interrupt_flag() as interrupted, folder_lock(args.out), ExitStack() as stack:
            executor = (InlineExecutor() if jobs == 1
                        else stack.enter_context(process_pool(jobs - 1)))
            result = run_comparison(config, progress=not args.quiet, executor=executor)
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
