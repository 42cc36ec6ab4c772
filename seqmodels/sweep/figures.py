"""Figures of a sweep (matplotlib on an Agg canvas; imported only by the sweep report).

Each function takes a frame from :mod:`seqmodels.sweep.analysis` and returns
PNG bytes, one panel (or row of panels) per preset.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from seqmodels.plots import png_bytes

#: Below this, the excess axes are linear: finite held-out sets put a model
#: within about 1e-5 nats of the truth by chance, on either side of 0.
LINEAR_BELOW = 1e-5


def _panels(presets, rows: int = 1, width: float = 5.5, height: float = 3.8):
    figure = Figure(figsize=(width * len(presets), height * rows), layout="constrained")
    axes = figure.subplots(rows, len(presets), squeeze=False)
    return figure, axes


def _log_ticks(axes, values, base: int = 10) -> None:
    """A log x axis labelled at the grid's own values, in plain numbers."""
    values = sorted(set(int(v) for v in values))
    axes.set_xscale("log", base=base)
    axes.set_xticks(values, [str(v) for v in values])
    axes.tick_params(axis="x", which="minor", bottom=False, labelbottom=False)


def _excess_axis(axes, lowest: float, xlabel: str) -> None:
    """Symmetric-log excess axis, from 0 (or the lowest value, if negative) up."""
    axes.set_yscale("symlog", linthresh=LINEAR_BELOW)
    axes.axhline(0.0, color="k", lw=0.6)
    axes.set_ylim(bottom=min(0.0, 2.0 * lowest))
    axes.set_xlabel(xlabel)
    axes.set_ylabel("excess over the true model (nats/symbol)")


def learning_curves_png(curves: pd.DataFrame) -> bytes:
    """Excess vs n_train, log-log: mean over seeds, band from the lowest to the highest seed.

    ``curves`` is :func:`~seqmodels.sweep.analysis.learning_curves` output.
    """
    presets = list(dict.fromkeys(curves.preset))
    figure, axes = _panels(presets)
    for column, preset in enumerate(presets):
        panel = axes[0, column]
        for index, (curve, part) in enumerate(curves[curves.preset == preset].groupby(
                "curve", sort=False)):
            color = f"C{index}"
            panel.plot(part.n_train, part["mean"], color=color, marker="o", ms=3, label=curve)
            panel.fill_between(part.n_train, part.low, part.high, color=color, alpha=0.2, lw=0)
        _log_ticks(panel, curves.n_train)
        _excess_axis(panel, float(curves.low.min()), "training sequences (n_train)")
        panel.set_title(f"{preset}: learning curves (band: min..max over seeds)", fontsize=9)
        panel.legend(fontsize=7)
    return png_bytes(figure)


def capacity_png(capacity: pd.DataFrame, em_excess: pd.DataFrame) -> bytes:
    """Excess (top) and belief R^2 (bottom) vs hidden size, at each preset's largest n_train.

    ``capacity`` is :func:`~seqmodels.sweep.analysis.capacity` output;
    ``em_excess`` the learning curves' EM rows (a dashed reference line).
    """
    presets = list(dict.fromkeys(capacity.preset))
    figure, axes = _panels(presets, rows=2, height=3.2)
    for column, preset in enumerate(presets):
        part = capacity[capacity.preset == preset]
        largest = part.n_train.max()
        part = part[part.n_train == largest]
        for row, metric in enumerate(("excess", "belief_r2")):
            panel = axes[row, column]
            for index, (cell, line) in enumerate(part[part.metric == metric].groupby(
                    "cell", sort=False)):
                panel.errorbar(line.hidden, line["mean"], yerr=line.se, color=f"C{index}",
                               marker="o", ms=3, capsize=2, label=f"{cell} RNN")
            _log_ticks(panel, part.hidden, base=2)
            panel.set_xlabel("hidden units")
        reference = em_excess[(em_excess.preset == preset) & (em_excess.n_train == largest)]
        if len(reference):
            axes[0, column].axhline(float(reference["mean"].iloc[0]), color="k", ls="--", lw=1,
                                    label="EM HMM at the true K")
        excess = part[part.metric == "excess"]
        _excess_axis(axes[0, column], float((excess["mean"] - excess.se).min()), "hidden units")
        axes[0, column].set_title(f"{preset}, n_train={largest} (mean ± se over seeds)",
                                  fontsize=9)
        axes[0, column].legend(fontsize=7)
        axes[1, column].set_ylabel("belief probe R^2 (held out)")
    return png_bytes(figure)


def model_selection_png(selection: pd.DataFrame) -> bytes:
    """Held-out excess (top) and BIC above the lowest (bottom) vs K, a line per n_train.

    ``selection`` is :func:`~seqmodels.sweep.analysis.model_selection` output;
    the true K is dashed, each size's pick starred.
    """
    presets = list(dict.fromkeys(selection.preset))
    figure, axes = _panels(presets, rows=2, height=3.2)
    for column, preset in enumerate(presets):
        part = selection[selection.preset == preset]
        for row, (metric, pick) in enumerate((("excess", "excess"), ("delta_bic", "bic"))):
            panel = axes[row, column]
            for index, (n_train, line) in enumerate(part.groupby("n_train", sort=True)):
                panel.errorbar(line.em_states, line[metric], yerr=line[f"{metric}_se"],
                               color=f"C{index}", marker="o", ms=3, capsize=2,
                               label=f"n_train={n_train}")
                picked = line[line[f"picked_by_{pick}"]]
                panel.plot(picked.em_states, picked[metric], "k*", ms=9)
            panel.axvline(int(part.true_K.iloc[0]), color="k", ls="--", lw=1)
            panel.set_xticks(sorted(set(int(k) for k in part.em_states)))
            panel.set_xlabel("EM states K (dashed: the truth's; star: picked)")
        _excess_axis(axes[0, column], float((part.excess - part.excess_se).min()),
                     axes[0, column].get_xlabel())
        axes[0, column].set_ylabel("held-out excess (nats/symbol)")
        axes[1, column].set_ylabel("BIC minus the seed's lowest (nats)")
        axes[1, column].set_yscale("symlog", linthresh=1.0)
        axes[1, column].set_ylim(bottom=0.0)
        axes[0, column].set_title(preset, fontsize=9)
        axes[0, column].legend(fontsize=7)
    return png_bytes(figure)


def seconds_png(seconds: pd.DataFrame) -> bytes:
    """Wall seconds of every cell vs n_train, by kind, log-log."""
    figure = Figure(figsize=(5.5, 3.8), layout="constrained")
    panel = figure.subplots()
    for index, (kind, part) in enumerate(seconds.groupby("kind", sort=True)):
        panel.scatter(part.n_train, part.seconds, s=12, color=f"C{index}",
                      label=f"{kind} cells")
    _log_ticks(panel, seconds.n_train)
    panel.set_yscale("log")
    panel.set_xlabel("training sequences (n_train)")
    panel.set_ylabel("seconds per cell (wall, in its worker)")
    panel.legend(fontsize=7)
    return png_bytes(figure)
