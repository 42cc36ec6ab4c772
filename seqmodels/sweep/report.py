"""A sweep's report: ``sweep.md`` and its figures, written into the sweep folder.

Built from the stored rows alone (:func:`~seqmodels.sweep.store.load_results`),
so a finished or partly finished sweep can be reported again at any time.
Each file is written atomically; the rows are never touched.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from seqmodels._io import atomic_write_bytes, check_path
from seqmodels.compare.report import markdown_table
from seqmodels.sweep import analysis
from seqmodels.sweep.grid import AXES, SweepGrid

FIGURES = {"learning": "learning_curves.png", "capacity": "capacity.png",
           "selection": "model_selection.png", "seconds": "seconds.png"}

TERMS = f"""\
- **excess**: a model's held-out log-loss minus the true model's on the same sequences
  (nats per symbol); its expectation is the KL divergence from the truth's forecasts.
  Every cell of one seed is scored on that seed's held-out set.
- **seeds**: replicates; each has its own training sample (the sizes are nested
  prefixes of it), held-out set and fit seeds. Tables give the mean over seeds ± its
  standard error (sample sd / sqrt(seeds)); figure bands span the lowest to the highest seed.
- **reaches EM**: the RNN's excess minus the EM HMM's (at the true K), paired by seed,
  is at most {analysis.REACH_SE:g} standard errors of that mean difference: the RNN is not
  significantly worse (one-sided). With 3 seeds the standard error is itself rough.
- **BIC**: -2 x training log-likelihood + p ln(N), with p = (K-1) + K(K-1) + K(V-1) free
  parameters and N training symbols; lower is better. Held-out log-loss picks K on new
  data; BIC on the training data with a penalty.
- The excess axes are logarithmic above {1e-5:g} and linear below (chance puts a near-exact
  model slightly below 0 on a finite held-out set).
"""


def _pm(mean: float, se: float) -> str:
    """``mean ± se`` to 3 significant figures, or the mean alone when se is undefined."""
    if pd.isna(mean):
        return "-"
    return f"{mean:.3g}" if pd.isna(se) else f"{mean:.3g} ± {se:.2g}"


def _grid_section(grid: SweepGrid, rows: pd.DataFrame, note: str) -> list[str]:
    cells = list(grid.cells())
    stored = rows[["kind", *AXES]].drop_duplicates()
    kinds = pd.Series([point.kind for point in cells]).value_counts()
    axes = pd.DataFrame({"axis": list(AXES), "values": [
        ", ".join(map(str, getattr(grid, axis))) or "-" for axis in AXES]})
    settings = grid.to_dict()["settings"]
    shown = ", ".join(f"{name}={settings[name]}" for name in (
        "length", "n_test", "epochs", "rnn_patience", "rnn_batch_size", "rnn_bptt",
        "rnn_dtype", "restarts", "em_finalists"))
    done = f"{len(stored)} of {len(cells)} cells" + ("" if len(stored) == len(cells) else
                                                     " (incomplete: resume to finish)")
    return [
        "# Sweep: learning and capacity curves", "", note, "",
        f"{done}: {kinds.get('hmm', 0)} Baum-Welch cells (one per preset, n_train, K, seed) "
        f"and {kinds.get('rnn', 0)} RNN cells (one per preset, n_train, hidden, cell, seed). "
        f"EM is fitted at each preset's true K plus the em_states listed. Settings of every "
        f"cell: {shown} (all in `config.json`).", "",
        markdown_table(axes), "", "## Terms", "", TERMS,
    ]


def _curves_table(curves: pd.DataFrame) -> pd.DataFrame:
    text = curves.assign(value=[_pm(m, s) for m, s in zip(curves["mean"], curves.se,
                                                            strict=True)])
    wide = text.pivot(index=["preset", "n_train"], columns="curve", values="value")
    return wide[list(dict.fromkeys(curves.curve))].reset_index()


def reach_lines(rows: pd.DataFrame) -> list[str]:
    """One sentence per RNN: the smallest n_train at which its excess reaches the EM HMM's."""
    lines = []
    for row in analysis.smallest_reaching(analysis.rnn_vs_em(rows)).itertuples(index=False):
        who = f"`{row.preset}`, {row.cell} RNN with {row.hidden} hidden units"
        if pd.isna(row.n_train):
            lines.append(f"- {who}: **no n_train of the grid** (up to {row.largest}) brings its "
                         f"excess within {analysis.REACH_SE:g} standard errors of the EM "
                         "HMM's.")
        else:
            after = ("and at every larger size" if row.stays
                     else "but not at every larger size")
            lines.append(f"- {who}: **n_train = {row.n_train}** is the smallest size at which "
                         f"its excess is within {analysis.REACH_SE:g} standard errors of the "
                         f"EM HMM's ({after}).")
    return lines or ["- No RNN and EM HMM of the same seed to compare."]


def _reach_table(comparison: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "preset": comparison.preset, "cell": comparison.cell, "hidden": comparison.hidden,
        "n_train": comparison.n_train, "RNN excess": comparison.rnn,
        "EM excess": comparison.em,
        "difference": [_pm(m, s) for m, s in zip(comparison.difference, comparison.se,
                                                 strict=True)],
        "reaches EM": np.where(comparison.reached, "yes", "no")})


def _capacity_table(capacity: pd.DataFrame) -> pd.DataFrame:
    largest = capacity.groupby("preset").n_train.transform("max")
    part = capacity[capacity.n_train == largest]
    text = part.assign(value=[_pm(m, s) for m, s in zip(part["mean"], part.se, strict=True)])
    wide = text.pivot(index=["preset", "n_train", "cell", "hidden"], columns="metric",
                      values="value")
    return wide.reset_index().rename(columns={"belief_r2": "belief R^2"})


def _selection_table(selection: pd.DataFrame, n_seeds: int) -> pd.DataFrame:
    def mark(picked: pd.Series, votes: pd.Series) -> list[str]:
        return [("**picked**, " if p else "") + f"{v}/{n_seeds} seeds"
                for p, v in zip(picked, votes, strict=True)]

    return pd.DataFrame({
        "preset": selection.preset, "n_train": selection.n_train, "K": selection.em_states,
        "held-out excess": [_pm(m, s) for m, s in zip(selection.excess, selection.excess_se,
                                                      strict=True)],
        "by held-out loss": mark(selection.picked_by_excess, selection.seeds_excess),
        "BIC - lowest": [_pm(m, s) for m, s in zip(selection.delta_bic, selection.delta_bic_se,
                                                   strict=True)],
        "by BIC": mark(selection.picked_by_bic, selection.seeds_bic)})


def _seconds_table(seconds: pd.DataFrame) -> pd.DataFrame:
    groups = seconds.groupby(["kind", "n_train"], sort=True).seconds
    return groups.agg(cells="count", median="median", max="max", total="sum").reset_index()


def _part(title: str, intro: str, table: pd.DataFrame, figure: str | None, plots: bool,
          digits: int = 4) -> list[str]:
    """One section: title, text, figure link and table; a note instead when it has no rows."""
    if table.empty:
        return [f"## {title}", "", "No finished cell gives this section data yet.", ""]
    link = [f"![{title}]({FIGURES[figure]})", ""] if plots and figure else []
    return [f"## {title}", "", intro, "", *link, markdown_table(table, digits), ""]


def _sources(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """What each figure draws (and each section tabulates), from the rows."""
    curves = analysis.learning_curves(rows)
    return {"learning": curves, "capacity": analysis.capacity(rows),
            "em_curves": curves[curves.curve.str.startswith("EM")],
            "comparison": analysis.rnn_vs_em(rows), "selection": analysis.model_selection(rows),
            "seconds": analysis.cell_seconds(rows)}


def render_markdown(grid: SweepGrid, rows: pd.DataFrame, plots: bool = True,
                    note: str = "") -> str:
    """The text of ``sweep.md`` for ``grid`` and its stored ``rows`` (complete or not)."""
    data = _sources(rows)
    selection, seconds = data["selection"], data["seconds"]
    true_k = ", ".join(f"`{preset}` {k}" for preset, k in
                       selection.groupby("preset").true_K.first().items())
    lines = _grid_section(grid, rows, note)
    lines += _part("Learning curves", "Excess over the true model against the number of "
                   "training sequences, for the HMM fitted by counting (it sees the hidden "
                   "states), Baum-Welch at the true number of states and each RNN.",
                   _curves_table(data["learning"]), "learning", plots)
    lines += _part("When does the RNN reach the EM HMM?", "\n".join(reach_lines(rows)),
                   _reach_table(data["comparison"]), None, plots, digits=3)
    lines += _part("Capacity: hidden size", "Excess and the belief probe's held-out R^2 "
                   "against the RNN's hidden units, at the largest n_train.",
                   _capacity_table(data["capacity"]), "capacity", plots)
    lines += _part("Model selection over the EM HMM's number of states",
                   "Per training size, the K with the lowest mean held-out excess (the held-out "
                   "log-likelihood's choice: per seed they differ by the truth's log-loss) and "
                   "the one with the lowest mean BIC are **picked**; 'n/m seeds' counts the "
                   "seeds whose own values pick that K. BIC is shown minus the lowest BIC of "
                   f"the same seed. Every preset's true K: {true_k}.",
                   _selection_table(selection, len(grid.seed)), "selection", plots)
    lines += _part("Seconds per cell", f"Wall time of each cell in its worker; "
                   f"{seconds.seconds.sum():.0f} cell-seconds in all.",
                   _seconds_table(seconds), "seconds", plots, digits=3)
    lines += ["## Files", "", "`config.json` (the grid), `cells/*.csv` (each cell's rows), "
              "`results.csv` (all rows: kind, preset, n_train, hidden, cell, em_states, seed, "
              "model, metric, value), this file and its figures.", ""]
    return "\n".join(lines)


def figures(rows: pd.DataFrame) -> dict[str, bytes]:
    """The report's PNGs by file name; a figure without data is left out."""
    from seqmodels.sweep import figures as draw  # matplotlib only when drawing

    data = _sources(rows)
    drawings = {
        "learning": lambda: draw.learning_curves_png(data["learning"]),
        "capacity": lambda: draw.capacity_png(data["capacity"], data["em_curves"]),
        "selection": lambda: draw.model_selection_png(data["selection"]),
        "seconds": lambda: draw.seconds_png(data["seconds"]),
    }
    return {FIGURES[name]: drawing() for name, drawing in drawings.items()
            if not data[name].empty}


def write_sweep_report(folder: str | os.PathLike, grid: SweepGrid, rows: pd.DataFrame,
                       plots: bool = True, note: str = "") -> Path:
    """Write ``sweep.md`` (and, with ``plots``, its PNGs) into the sweep ``folder``.

    ``note`` is a paragraph placed under the title (how and where it ran).
    Returns the path of ``sweep.md``.
    """
    folder = check_path(folder, "folder")
    if plots:
        for name, data in figures(rows).items():
            atomic_write_bytes(folder / name, data)
    return atomic_write_bytes(folder / "sweep.md",
                              render_markdown(grid, rows, plots, note).encode())
