"""Figures of a comparison run (matplotlib, Agg canvas; imported only by report code).

Each function takes tidy frames from :class:`seqmodels.compare.ComparisonResult`
and returns the PNG as bytes, so the caller decides where and how (atomically)
to write it. No pyplot: figures are built on an Agg canvas, so nothing touches
global backend state or opens a window. :func:`png_bytes` renders a figure;
the sweep's figures (:mod:`seqmodels.sweep.figures`) use it too.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes (Agg canvas, 110 dpi, tight bounding box)."""
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
    return png_bytes(figure)


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
    return png_bytes(figure)


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
    return png_bytes(figure)


def _simplex_coordinates(beliefs: np.ndarray, basis: np.ndarray | None) -> np.ndarray:
    """2-D coordinates of beliefs (N, K): the triangle for K = 3, else the ``basis`` projection."""
    if beliefs.shape[1] == 3:
        corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
        return beliefs @ corners
    return beliefs @ basis


def belief_geometry_png(points: pd.DataFrame, state_names) -> bytes:
    """The true beliefs and the RNN probe's predictions, side by side, as points in the simplex.

    For three states the simplex is a triangle with the states at its corners;
    for more (or two), both panels show the first two principal components of
    the true beliefs, the same axes for both.
    """
    true = points.pivot(index="point", columns="state", values="true_belief").to_numpy()
    probed = points.pivot(index="point", columns="state", values="probed_belief").to_numpy()
    basis = None
    if true.shape[1] != 3:
        centered = true - true.mean(axis=0)
        basis = np.linalg.svd(centered, full_matrices=False)[2][:2].T
        basis = np.pad(basis, ((0, 0), (0, 2 - basis.shape[1])))  # two states: one component
    figure = Figure(figsize=(9, 4.3), layout="constrained")
    panels = figure.subplots(1, 2, sharex=True, sharey=True)
    colors = true.argmax(axis=1)
    for axes, beliefs, title in ((panels[0], true, "true belief (Bayesian filter)"),
                                 (panels[1], probed, "RNN state through the belief probe")):
        xy = _simplex_coordinates(beliefs, basis)
        axes.scatter(xy[:, 0], xy[:, 1], c=colors, cmap="viridis", s=3, alpha=0.6,
                     linewidths=0, vmin=0, vmax=max(true.shape[1] - 1, 1))
        axes.set_title(title, fontsize=9)
        axes.set_aspect("equal")
        if basis is None:
            corners = _simplex_coordinates(np.eye(3), None)
            axes.plot(*np.vstack([corners, corners[:1]]).T, color="0.5", lw=0.8)
            for (x, y), name in zip(corners, state_names, strict=True):
                axes.annotate(name, (x, y), fontsize=8, ha="center",
                              va="top" if y == 0 else "bottom")
        else:
            axes.set_xlabel("first principal component", fontsize=8)
    if basis is not None:
        panels[0].set_ylabel("second principal component", fontsize=8)
    figure.suptitle(f"Belief geometry over {', '.join(state_names)}: {len(true)} held-out "
                    "steps, colored by the most likely state", fontsize=9)
    return png_bytes(figure)


def synchronization_png(binned: pd.DataFrame, exact_label: str) -> bytes:
    """Each model's log-loss over bins of steps (log axis), beside the exact h(t + 1).

    ``binned`` has columns model, first, last, log_loss (steps ``first..last``).
    A model that has learned the process approaches the myopic-entropy curve,
    the truth's expected loss at each step; how many steps it takes to get
    close is how fast it synchronizes to the hidden state.
    """
    figure = Figure(figsize=(6.5, 4))
    axes = figure.subplots()
    for index, (model, part) in enumerate(binned.groupby("model", sort=False)):
        middle = (part["first"] + part["last"]) / 2 + 1
        style = dict(color="k", lw=2, ls="--") if model == exact_label else dict(
            color=f"C{index}", lw=1, marker="o", ms=3)
        axes.plot(middle, part.log_loss, label=model, **style)
    axes.set_xscale("log")
    axes.set_xlabel("step t + 1 (bins doubling in width)")
    axes.set_ylabel("mean log-loss in the bin (nats per symbol)")
    axes.legend(fontsize=7)
    return png_bytes(figure)
