"""Write a comparison's report folder: report.md, metrics.csv/.json, config.json, timings, PNGs.

The folder is written whole or not at all (:func:`seqmodels._io.write_folder`:
built beside it, then swapped in), so a crash, a Ctrl-C or a second run never
leaves files of two runs together. ``metrics.json`` holds no timings, so the
same config gives the same bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

import seqmodels
from seqmodels._io import write_folder
from seqmodels.compare.config import TARGETS, ComparisonConfig
from seqmodels.compare.run import (
    HMM_MODELS,
    MATRIX_METRICS,
    MODELS,
    PREDICTION_METRICS,
    PROBE_METRICS,
    ComparisonResult,
)

FIGURES = {"matrices": "matrices.png", "belief": "belief_trace.png",
           "learning": "learning_curve.png"}
#: Every file a report folder may hold: a folder holding only these may be replaced.
REPORT_FILES = frozenset({"report.md", "metrics.csv", "metrics.json", "config.json",
                          "timings.csv", "matrices.csv", *FIGURES.values()})
_FLAGS = {"preset": "--preset", "n_train": "--n-train", "n_test": "--n-test",
          "length": "--length", "hidden": "--hidden", "epochs": "--epochs",
          "restarts": "--restarts", "seed": "--seed"}


def rerun_command(config: ComparisonConfig) -> str | None:
    """The ``experiments/compare.py`` command that reproduces ``config``, or None.

    None when a setting without a flag differs from its default (then rerun
    from ``config.json`` with ``ComparisonConfig.from_dict``).
    """
    settings = config.to_dict()
    defaults, quick = ComparisonConfig().to_dict(), ComparisonConfig.quick().to_dict()
    for base, prefix in ((defaults, []), (quick, ["--quick"])):
        hidden = [k for k in settings if k not in _FLAGS and settings[k] != base[k]]
        if not hidden:
            flags = [f"{_FLAGS[k]} {settings[k]}" for k in _FLAGS if settings[k] != base[k]]
            return " ".join(["python experiments/compare.py", *prefix, *flags])
    return None


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub markdown table; floats to ``digits`` significant figures, NaN as a dash."""
    def cell(value) -> str:
        if isinstance(value, float):
            return "-" if pd.isna(value) else f"{value:.{digits}g}"
        return str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def metrics_table(result: ComparisonResult, models, columns) -> pd.DataFrame:
    """The metrics frame made wide: one row per model, one column per metric.

    Rows follow ``models`` and columns ``columns``, each limited to what was
    measured; a metric a model lacks is NaN.
    """
    table = result.metrics[result.metrics.metric.isin(columns)
                           & result.metrics.model.isin(models)]
    wide = table.pivot(index="model", columns="metric", values="value")
    wide = wide.reindex(index=[x for x in models if x in wide.index],
                        columns=[c for c in columns if c in wide.columns])
    return wide.reset_index()


def target_table(result: ComparisonResult) -> pd.DataFrame:
    """Each quality target, the value reached and whether it was met."""
    rows = []
    for (model, metric), (sign, bound) in TARGETS.items():
        value = result.metric(model, metric)
        met = value < bound if sign == "<" else value > bound
        rows.append({"model": model, "metric": metric, "target": f"{sign} {bound:g}",
                     "achieved": value, "met": "yes" if met else "NO"})
    return pd.DataFrame(rows)


def _section(title: str, text: str, table: pd.DataFrame | None = None) -> list[str]:
    lines = [f"## {title}", "", text, ""]
    return [*lines, markdown_table(table), ""] if table is not None else lines


def _target_note(result: ComparisonResult, targets: pd.DataFrame) -> str:
    met = (targets.met == "yes").sum()
    note = (f"Set for `loaded_dice` at the default settings (issue 5). This run met {met} of "
            f"{len(TARGETS)}.")
    if result.config != ComparisonConfig():
        note += " This run is not the default run, so they are for reference only."
    return note


def _sections(result: ComparisonResult) -> list[str]:
    metrics = result.metrics
    decoding = ("accuracy_causal", "accuracy_smoothed", "accuracy_viterbi", "belief_kl")
    decoders = [*HMM_MODELS, "rnn_dice", "rnn_faces"]
    targets = target_table(result)
    return [
        *_section("Targets", _target_note(result, targets), targets),
        *_section(
            "Prediction (held-out faces)",
            "Log-loss in nats per symbol; `excess` = model minus true model on the same "
            "sequences (`excess_se`: its standard error over sequences); `kl` = mean "
            "KL(true forecast || model forecast). The supervised RNN forecasts dice, "
            "not faces, so it has no row here.",
            metrics_table(result, [x for x in MODELS if x != "rnn_dice"], PREDICTION_METRICS)),
        *_section(
            "Hidden dice",
            "Decoding accuracy. Causal: filter argmax (HMMs), the supervised RNN's argmax, "
            "and for `rnn_faces` a linear least-squares probe from its state to the die "
            "(fitted on the first half of the held-out sequences, scored on the second). "
            "Non-causal: smoothing argmax and Viterbi. `belief_kl` = mean KL(true belief "
            "|| model's belief). The true model is the ceiling of each column.",
            metrics_table(result, decoders, decoding)),
        *_section(
            "Matrices",
            "Errors after `align_states` (Hungarian matching to the truth): max abs entry "
            "and mean total variation per row. `rnn_implied_hmm` is EM fitted to sequences "
            "sampled from the faces-only RNN: what the RNN learned, written as matrices.",
            metrics_table(result, ["counted_hmm", "em_hmm", "rnn_implied_hmm"], MATRIX_METRICS)),
        f"![matrices]({FIGURES['matrices']})", "",
        *_section(
            "Belief probe",
            "R^2 of an affine least-squares map from the faces-only RNN's hidden state to "
            "the true filtered belief P(die_t | faces_0..t), fitted on half the held-out "
            "sequences and scored on the other half. Controls: the same probe fitted to "
            "shuffled targets (should be near 0), and on an untrained RNN of the same size "
            "(a random recurrent state already remembers recent faces).",
            metrics[metrics.metric.isin(PROBE_METRICS)].drop(columns="model")),
        f"![belief trace]({FIGURES['belief']})", "",
        f"![learning curve]({FIGURES['learning']})", "",
        "Learning curve: the faces-only RNN's loss per epoch. Horizontal lines: "
        + "; ".join(f"{row.label} {row.log_loss:.5f}"
                    for row in result.learning_references.itertuples(index=False))
        + " nats per symbol (the EM HMM was fitted on all training sequences, these included).",
        "",
    ]


def _timing_note(result: ComparisonResult) -> str:
    timings = dict(zip(result.timings.stage, result.timings.seconds, strict=True))
    total = timings.get("total (wall)", result.timings.seconds.sum())
    return (f"seqmodels {seqmodels.__version__}. Seconds per stage, this run: {total:.1f} s in "
            "all, figures and files not included. When the EM HMM fit ran in a worker process "
            "(`n_jobs=2`, the CLI's default) its time overlaps the RNN stages; the main "
            "process then only waits for what is left of it.")


def render_markdown(result: ComparisonResult, plots: bool = True) -> str:
    """The text of ``report.md``: readable on its own."""
    config = result.config
    command = rerun_command(config) or "see config.json (`ComparisonConfig.from_dict`)"
    lines = [
        f"# HMM vs RNN on `{config.preset}`", "",
        f"{config.n_train} training and {config.n_test} held-out sequences of {config.length} "
        f"throws; dice: {', '.join(result.state_names)}; seed {config.seed}; RNN hidden size "
        f"{config.hidden}; EM restarts {config.restarts}. Rerun: `{command}`.", "",
        "Models: " + "; ".join(f"`{name}`: {text}" for name, text in MODELS.items()) + ".", "",
        *_sections(result),
        *_section("Wall time", _timing_note(result), result.timings),
    ]
    if not plots:
        lines = [line for line in lines if not line.startswith("![")]
    return "\n".join(lines) + "\n"


def metrics_json(result: ComparisonResult) -> str:
    """``{model: {metric: value}}`` as JSON; floats written exactly (repr), no timings."""
    return json.dumps(result.metrics_dict(), indent=2) + "\n"


def config_json(result: ComparisonResult) -> str:
    """The config, the command that reruns it and the package version, as JSON."""
    return json.dumps({"config": result.config.to_dict(),
                       "command": rerun_command(result.config),
                       "seqmodels_version": seqmodels.__version__}, indent=2) + "\n"


def _figures(result: ComparisonResult) -> dict[str, bytes]:
    from seqmodels import plots  # matplotlib only when figures are asked for

    references = dict(zip(result.learning_references.label,
                          result.learning_references.log_loss, strict=True))
    return {
        FIGURES["matrices"]: plots.matrices_png(result.matrices, result.state_names),
        FIGURES["belief"]: plots.belief_trace_png(result.belief_trace, result.state_names),
        FIGURES["learning"]: plots.learning_curve_png(result.learning_curve, references),
    }


def write_report(result: ComparisonResult, out_dir: str | os.PathLike,
                 plots: bool = True) -> list[Path]:
    """Write the report folder, replacing a previous report there whole; return the paths.

    Files: ``report.md``, ``metrics.csv`` (model, metric, value), ``metrics.json``,
    ``config.json``, ``timings.csv``, ``matrices.csv``, and with ``plots`` the PNGs
    ``matrices.png``, ``belief_trace.png``, ``learning_curve.png``.

    Raises
    ------
    ValueError
        If ``result`` is not a :class:`ComparisonResult`; if ``out_dir`` holds
        files that are not a report's (they would be lost), cannot be written,
        or another live run is writing it.
    """
    if not isinstance(result, ComparisonResult):
        raise ValueError(f"result must be the ComparisonResult of run_comparison, got "
                         f"{type(result).__name__}")
    files: dict[str, bytes] = {
        "report.md": render_markdown(result, plots).encode(),
        "metrics.csv": result.metrics.to_csv(index=False, float_format="%.17g").encode(),
        "metrics.json": metrics_json(result).encode(),
        "config.json": config_json(result).encode(),
        "timings.csv": result.timings.to_csv(index=False, float_format="%.3f").encode(),
        "matrices.csv": result.matrices.to_csv(index=False, float_format="%.17g").encode(),
    }
    if plots:
        files.update(_figures(result))
    return write_folder(out_dir, files, expected=set(REPORT_FILES))
