"""Sweep the comparison over a grid: learning curves, capacity curves, model selection over K.

The grid spans presets, training sizes, RNN hidden sizes and cells, the EM
HMM's number of states (the truth's always, plus --em-states) and replicate
seeds. Each cell's rows are stored in --out as it finishes; --resume continues
an interrupted sweep of the same grid. The report (sweep.md and figures) is
written at the end. Examples:

    python experiments/sweep.py                                 # the default learning curve
    python experiments/sweep.py --hidden 4,8,16,32 --cell elman,gru,lstm --n-train 200,800
    python experiments/sweep.py --config sweep.toml --dask-local 4
    python experiments/sweep.py --config sweep.toml --scheduler tcp://HOST:8786 --resume

A TOML file has a [grid] table (axis = [values]) and a [settings] table
(ComparisonConfig fields: length, n_test, epochs, restarts, ...); flags given
on the command line replace its values. A sweep folder's config.json works
as --config too.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from seqmodels._io import FileProblemError
from seqmodels.compare.config import flag_error
from seqmodels.sweep import (
    SweepError,
    SweepGrid,
    dask_engine,
    load_results,
    local_engine,
    run_sweep,
)
from seqmodels.sweep.engines import default_workers
from seqmodels.sweep.grid import AXES
from seqmodels.sweep.report import reach_lines, write_sweep_report
from seqmodels.sweep.store import RESULTS_FILE, SweepStore, check_folder

#: The default sweep's measured wall time, and where (README and --help say the same).
DEFAULT_RUN_TIME = "41 s on a quiet 2-core machine"
#: Settings with their own flag (any other goes in the TOML file's [settings]), and their help.
SETTING_FLAGS = {"length": "steps per sequence", "n_test": "held-out sequences per seed",
                 "epochs": "RNN epochs at most (early stopping ends sooner)",
                 "restarts": "Baum-Welch restarts"}


def positive(text: str) -> int:
    """An argparse type: an integer >= 1 (worker counts; grid values are checked by the grid)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def comma_list(kind):
    """An argparse type: comma-separated values, each converted by ``kind`` (int or str).

    Only the syntax is checked here; the grid checks the values (unknown
    names, sizes below 1) and its message becomes the argparse error.
    """
    def parse(text: str) -> list:
        items = [item.strip() for item in text.split(",")]
        try:
            if not all(items):
                raise ValueError
            return [kind(item) for item in items]
        except ValueError:
            what = "integers" if kind is int else "names"
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got "
                                             f"{text!r}") from None

    return parse


AXIS_FLAGS = {
    "preset": (comma_list(str), "true models"),
    "n_train": (comma_list(int), "training sizes (sequences), nested per seed"),
    "hidden": (comma_list(int), "RNN hidden units"),
    "cell": (comma_list(str), "RNN cells (elman, gru, lstm)"),
    "em_states": (comma_list(int), "numbers of EM states besides each preset's own"),
    "seed": (comma_list(int), "replicate seeds"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"The default sweep takes {DEFAULT_RUN_TIME}.")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="the grid and settings from a TOML file or a sweep's config.json")
    defaults = SweepGrid()
    for axis, (kind, text) in AXIS_FLAGS.items():
        names = [f"--{axis.replace('_', '-')}"] + (["--cells"] if axis == "cell" else [])
        shown = ",".join(map(str, getattr(defaults, axis))) or "none"
        parser.add_argument(*names, dest=axis, type=kind, metavar="A,B",
                            help=f"{text} (default {shown})")
    for name, text in SETTING_FLAGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, metavar="N",
                            help=f"{text} (default {getattr(defaults.settings, name)})")
    parser.add_argument("--out", default="reports/sweep", metavar="DIR",
                        help="results folder: new or empty, or with --resume the same grid's "
                             "(default reports/sweep)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the cells already in --out and run the others")
    engine = parser.add_mutually_exclusive_group()
    engine.add_argument("--workers", type=positive, metavar="N",
                        help=f"local worker processes (default {default_workers()}, the cores "
                             "here; 1 runs the cells in this process)")
    engine.add_argument("--scheduler", metavar="tcp://HOST:8786",
                        help="run the cells on the Dask cluster at this address")
    engine.add_argument("--dask-local", type=positive, metavar="N",
                        help="start a Dask LocalCluster of N worker processes on 127.0.0.1 "
                             "for this sweep")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def grid_from_args(args: argparse.Namespace, base: SweepGrid) -> SweepGrid:
    """``base`` (the --config file's grid, or the defaults) with the flags given replacing
    its values."""
    data = base.to_dict()
    data["grid"].update({axis: getattr(args, axis) for axis in AXES
                         if getattr(args, axis) is not None})
    data["settings"].update({name: getattr(args, name) for name in SETTING_FLAGS
                             if getattr(args, name) is not None})
    return SweepGrid.from_dict(data)


def engine_description(args: argparse.Namespace) -> str:
    if args.scheduler:
        return f"the Dask cluster at {args.scheduler}"
    if args.dask_local:
        return f"a Dask LocalCluster of {args.dask_local} worker processes"
    workers = args.workers or default_workers()
    return "this process" if workers == 1 else f"{workers} local worker processes"


def open_engine(args: argparse.Namespace, stack: ExitStack):
    if args.scheduler or args.dask_local:
        return stack.enter_context(dask_engine(args.scheduler, args.dask_local))
    return stack.enter_context(local_engine(args.workers or default_workers()))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        base = SweepGrid.from_file(args.config) if args.config else SweepGrid()
    except ValueError as err:
        parser.error(f"argument --config: {err}")
    try:
        grid = grid_from_args(args, base)
    except ValueError as err:
        given = [name for name in (*AXES, *SETTING_FLAGS) if getattr(args, name) is not None]
        parser.error(flag_error(str(err), given))
    try:
        check_folder(args.out, grid, args.resume)
    except ValueError as err:
        parser.error(f"argument --out: {err}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    out = Path(args.out)
    stored_before = len(SweepStore(out, grid).finished()) if args.resume else 0
    failed = None
    try:
        with ExitStack() as stack:
            rows = run_sweep(grid, out, executor=open_engine(args, stack), resume=args.resume,
                             progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the finished cells are in {str(out)!r}; run the same command "
              "with --resume to finish", file=sys.stderr)
        return 130
    except FileProblemError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except SweepError as err:  # the other cells are stored: report them
        failed, rows = err, load_results(out)[1]
    seconds = time.perf_counter() - start
    ran = rows[["kind", *AXES]].drop_duplicates().shape[0] - stored_before
    note = (f"This run took {seconds:.0f} s of wall time for {ran} cells on "
            f"{engine_description(args)}" + (f"; {stored_before} cells were stored before it."
                                              if stored_before else "."))
    report = write_sweep_report(out, grid, rows, plots=not args.no_plots, note=note)
    print("\n".join(reach_lines(rows)))
    print(f"\nreport: {report}; rows: {out / RESULTS_FILE} ({seconds:.1f} s)")
    if failed is not None:
        print(f"error: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
