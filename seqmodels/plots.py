"""Figures of a comparison run (matplotlib, Agg canvas; imported only by report code).

Each function takes tidy frames from :class:`seqmodels.compare.ComparisonResult`
and returns the PNG as bytes, so the caller decides where and how (atomically)
to write it. No pyplot: figures are built on an Agg canvas, so nothing touches
global backend state or opens a window.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _matrix(frame: pd.DataFrame, model: str, matrix: str) -> np.ndarray:
    part = frame[(frame.model == model) & (frame.matrix == matrix)]
    return part.pivot(index="row", columns="col", values="value").to_numpy()


def _heatmap(axes, values: np.ndarray, title: str, row_labels, col_labels) -> object:
    image = axes.imshow(values, vmin=0.0, vmax=1.0, cmap="viridis")
    for (i, j), value in np.ndenumerate(values):
        axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                  color="white" if value < 0.5 else "black")
    axes.set_title(title, fontsize=8)
    axes.set_xticks(range(len(col_labels)), col_labels, fontsize=6, rotation=30 if len(
        col_labels) < 6 else 0)
    axes.set_yticks(range(values.shape[0]), row_labels or [""] * values.shape[0], fontsize=6)
    return image


def matrices_png(matrices: pd.DataFrame, state_names, titles: dict[str, str]) -> bytes:
    """Transition (top) and emission (bottom) heatmaps, one column per model of ``titles``.

    ``titles`` maps model names in ``matrices`` to column titles, in column order.
    """
    models = [name for name in titles if name in set(matrices.model)]
    figure = Figure(figsize=(3.2 * len(models), 5.2), layout="constrained")
    grid = figure.subplots(2, len(models), squeeze=False)
    image = None
    for column, model in enumerate(models):
        transmat, emission = _matrix(matrices, model, "transmat"), _matrix(matrices, model,
                                                                            "emission")
        symbols = [str(v) for v in range(emission.shape[1])]
        rows = state_names if column == 0 else None  # state names once, at the left
        _heatmap(grid[0, column], transmat, f"{titles[model]}\ntransition (to state)",
                 rows, state_names)
        image = _heatmap(grid[1, column], emission, "emission (symbol)", rows, symbols)
    figure.colorbar(image, ax=grid.ravel().tolist(), shrink=0.6, label="probability")
    return _png(figure)


def belief_trace_png(trace: pd.DataFrame, state_names) -> bytes:
    """One panel per state: true filtered belief, RNN-probed belief, the true state shaded."""
    n_states = len(state_names)
    figure = Figure(figsize=(10, 1.5 * n_states + 0.6))
    panels = figure.subplots(n_states, 1, sharex=True, squeeze=False)[:, 0]
    for state, axes in enumerate(panels):
        part = trace[trace.state == state].sort_values("t")
        t = part.t.to_numpy()
        axes.fill_between(t, 0, 1, where=part.state_thrown.to_numpy() == state, step="mid",
                          color="0.85", label="true state")
        axes.plot(t, part.true_belief, color="C0", lw=1.2, label="true belief (filter)")
        axes.plot(t, part.probed_belief, color="C3", lw=1.0, ls="--",
                  label="RNN state, linear probe (may leave [0, 1])")
        axes.set_ylim(-0.15, 1.15)
        axes.set_ylabel(state_names[state], fontsize=8)
    panels[0].legend(loc="upper right", fontsize=7, ncol=3)
    panels[-1].set_xlabel("step t (held-out sequence)")
    figure.suptitle("P(z_t | x_0..x_t): Bayesian filter vs the RNN's probed state", fontsize=9)
    return _png(figure)


def learning_curve_png(curve: pd.DataFrame, references: pd.DataFrame, models) -> bytes:
    """Each model's validation and training loss per epoch, as excess over the truth.

    ``references`` (columns model, rows, log_loss) gives the true model's loss on
    the validation and training sequences, and the EM HMM's on the validation
    ones. Subtracting the truth's loss on the same sequences puts the optimum at
    0 for both curves; a symmetric-log axis shows the first epoch and the last
    together, and an excess that chance makes negative.
    """
    truth = references[references.model == "true"].set_index("rows").log_loss
    figure = Figure(figsize=(6.5, 4))
    axes = figure.subplots()
    for index, model in enumerate(models):
        part = curve[curve.model == model]
        color = f"C{index}"
        axes.plot(part.epoch, part.val_loss - truth["validation"], color=color, marker="o",
                  ms=3, label=f"{model}, validation")
        if "training" in truth:
            axes.plot(part.epoch, part.train_loss - truth["training"], color=color, lw=1,
                      alpha=0.5, label=f"{model}, training (running mean)")
    em = references[(references.model == "em_hmm") & (references.rows == "validation")]
    if len(em):
        excess = float(em.log_loss.iloc[0] - truth["validation"])
        axes.axhline(excess, color="k", ls="--", lw=1, label=f"EM HMM: {excess:.5f}")
    axes.axhline(0.0, color="k", lw=0.6)
    axes.set_yscale("symlog", linthresh=1e-4)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel("excess over the true model (nats per symbol)")
    axes.legend(fontsize=7)
    return _png(figure)
