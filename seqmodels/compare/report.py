"""Write a comparison's report folder: report.md, metrics.csv/.json, config.json, timings, PNGs.

The folder is written whole or not at all (:func:`seqmodels._io.write_folder`:
built beside it, then swapped in), so a crash, a Ctrl-C or a second run never
leaves files of two runs together. ``metrics.json`` holds no timings, so the
same config gives the same bytes. The tables follow the run's model registry
(``result.models``): a model appears in every section its measurements feed.
"""

from __future__ import annotations

import json
import operator
import os
from pathlib import Path

import numpy as np
import pandas as pd

import seqmodels
from seqmodels._io import check_writable_folder, write_folder
from seqmodels.compare.config import FLAG_FIELDS, TARGETS, ComparisonConfig, flag_text
from seqmodels.compare.models import MEASUREMENTS
from seqmodels.compare.run import EXACT_MYOPIC, ComparisonResult

FIGURES = {"matrices": "matrices.png", "belief": "belief_trace.png",
           "geometry": "belief_geometry.png", "synchronization": "synchronization.png",
           "learning": "learning_curve.png"}
#: Every file a report folder may hold: a folder holding only these may be replaced.
REPORT_FILES = frozenset({"report.md", "metrics.csv", "metrics.json", "config.json",
                          "timings.csv", "matrices.csv", "step_losses.csv",
                          *FIGURES.values()})

_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}

#: What the report's words mean, printed before any table uses them.
GLOSSARY = """\
- **log-loss**: the mean of -log P(x_t | x_0..x_{t-1}) over the held-out symbols, in nats
  per symbol (natural logarithm; divide by ln 2 = 0.693 for bits).
- **excess**: a model's log-loss minus the true model's on the same sequences. Its
  expectation is the KL divergence of the model's forecasts from the true ones, so it
  is >= 0 on average; on a finite sample a model can come out slightly below 0 by
  chance. `excess_se` is its standard error over held-out sequences: an excess within
  about two standard errors of 0 cannot be told apart from the truth.
- **perplexity**: exp(log-loss), the number of equally likely symbols that would be as
  hard to predict.
- **kl**: the mean KL(true forecast || model's forecast) over held-out steps, in nats per
  symbol: the excess without the noise of which symbols happened to come.
- **accuracy**: the fraction of held-out steps where a model's guess of the hidden state
  equals the state that made the symbol, shown as value ± standard error over
  sequences. Causal guesses read x_0..x_t; smoothed and Viterbi guesses read the whole
  sequence. The true model's filter is the best causal decoder on average, but on a
  finite sample another model can score higher by chance. `majority_state` (always
  the most frequent state) is the chance level.
- **belief_kl**: the mean KL(true belief || model's belief) over held-out steps, in nats,
  where a belief is P(z_t | x_0..x_t).
- **belief_r2**, **belief_mse**: how well an affine map of a network's hidden state (a
  linear probe) reproduces the true belief: R^2 pooled over states (1 is perfect, 0 no
  better than the average belief) and the mean squared error per belief entry. The map
  is unconstrained, so probed beliefs can stray slightly below 0 or above 1.
- **h(t)**: the myopic entropy H(x_t | x_0..x_{t-1}), the true model's expected loss at
  step t: high at the start, when nothing is known of the hidden state, falling to the
  entropy rate as the observer synchronizes.
"""


def rerun_command(config: ComparisonConfig) -> str | None:
    """The ``experiments/compare.py`` command that reproduces ``config``, or None.

    The CLI starts from the preset's reference run (``--quick``: the quick
    settings), so the flags are the preset (unless the default one) and the
    flagged fields that differ from that start. None when a setting without a
    flag (:data:`FLAG_FIELDS`) differs (then rerun from ``config.json`` with
    ``ComparisonConfig.from_dict``).
    """
    settings = config.to_dict()
    defaults = ComparisonConfig.for_preset(config.preset).to_dict()
    quick = ComparisonConfig.quick(preset=config.preset).to_dict()
    defaults["preset"] = quick["preset"] = ComparisonConfig().preset  # --preset when another
    for base, prefix in ((defaults, []), (quick, ["--quick"])):
        if all(settings[k] == base[k] for k in settings if k not in FLAG_FIELDS):
            flags = [f"--{k.replace('_', '-')} {flag_text(settings[k])}" for k in FLAG_FIELDS
                     if settings[k] != base[k]]
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


def _with_errors(wide: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Fold each ``X_se`` column into ``X`` as text ``value ± se``."""
    out = wide.copy()
    for column in [c for c in wide.columns if f"{c}_se" in wide.columns]:
        out[column] = [("-" if pd.isna(v) else f"{v:.{digits}f} ± {e:.{digits}f}")
                       for v, e in zip(wide[column], wide[f"{column}_se"], strict=True)]
        out = out.drop(columns=f"{column}_se")
    return out


def target_table(result: ComparisonResult) -> pd.DataFrame:
    """The quality targets of the run's preset, the values reached, and whether each was met."""
    rows = []
    for (model, metric), (sign, bound) in TARGETS.get(result.config.preset, {}).items():
        try:
            value = result.metric(model, metric)
        except KeyError:  # a run without that model (other cells)
            value = float("nan")
        met = "-" if np.isnan(value) else ("yes" if _COMPARE[sign](value, bound) else "no")
        rows.append({"model": model, "metric": metric, "target": f"{sign} {bound:g}",
                     "achieved": value, "met": met})
    return pd.DataFrame(rows, columns=["model", "metric", "target", "achieved", "met"])


def targets_note(result: ComparisonResult) -> str:
    """One sentence saying whose targets these are and how this run fared."""
    preset = result.config.preset
    if preset not in TARGETS:
        return f"No quality targets are set for `{preset}`; the reference runs are " + (
            ", ".join(f"`{name}`" for name in TARGETS) + ".")
    targets = target_table(result)
    if result.config.is_reference:
        return (f"Quality targets of `{preset}`'s reference run (its default settings); this "
                f"run met {(targets.met == 'yes').sum()} of {len(targets)}.")
    return (f"Quality targets of `{preset}`'s reference run (its default settings). This run "
            "has other settings, so the targets do not apply; they are shown for reference.")


def _section(title: str, text: str, table: pd.DataFrame | None = None) -> list[str]:
    lines = [f"## {title}", "", text, ""]
    return [*lines, markdown_table(table), ""] if table is not None else lines


def _iid_note(result: ComparisonResult) -> str:
    """A warning when the true hidden chain forgets its past, where decoding says little."""
    transmat = result.matrices[(result.matrices.model == "true")
                               & (result.matrices.matrix == "transmat")]
    rows = transmat.pivot(index="row", columns="col", values="value").to_numpy()
    if not np.allclose(rows, rows[0]):
        return ""
    return (" Here every row of the true transition matrix is the same: the hidden chain "
            "is i.i.d., so the past carries no information about the present state. Causal, "
            "smoothed and Viterbi decoding then all reduce to guessing from the current "
            "symbol, and EM's transition matrix is not identifiable from the symbols "
            "(its matrices below mean little).")


def _decoding_models(result: ComparisonResult) -> list[str]:
    kinds = ("state_decoding", "label_decoding", "belief_probe", "chance")
    return [name for name, entry in result.models.items()
            if any(kind in entry.measurements for kind in kinds)]


def _learning_note(result: ComparisonResult) -> str:
    refs = result.learning_references
    truth = refs[refs.model == "true"].set_index("rows").log_loss
    return ("Each RNN's loss per epoch, drawn as excess over the true model's loss on the "
            "same sequences (symmetric log scale), so the truth is the line at 0: the "
            "validation curve can cross it only by chance, the training curve also when the "
            "network overfits its training sequences. Validation is against the truth on the "
            "validation sequences "
            f"({truth.get('validation', float('nan')):.5f} nats per symbol), the training "
            "curve (a running mean while the weights change) against the truth on the "
            f"training sequences ({truth.get('training', float('nan')):.5f}). The dashed "
            "line is the EM HMM's excess on the validation sequences (EM was fitted on "
            "them too).")


def binned_step_losses(step_losses: pd.DataFrame) -> pd.DataFrame:
    """Mean loss over doubling bins of steps (t = 0, 1, 2-3, 4-7, ...), one row per model and bin.

    Held-out losses at one step are noisy (one symbol per sequence); a bin
    averages more steps the later it is, where the losses change slowly. A bin
    of the exact h(t + 1) is shown only where it is complete.
    """
    last_step = int(step_losses.t.max())
    edges = [0, 1, *[2**k for k in range(1, last_step.bit_length() + 1)]]
    rows = []
    for first, stop in zip(edges, [*edges[1:], last_step + 1], strict=False):
        stop = min(stop, last_step + 1)
        if first >= stop:
            continue
        part = step_losses[(step_losses.t >= first) & (step_losses.t < stop)]
        for model, losses in part.groupby("model", sort=False):
            if len(losses) == stop - first:
                rows.append((model, first, stop - 1, float(losses.log_loss.mean())))
    return pd.DataFrame(rows, columns=["model", "first", "last", "log_loss"])


def _synchronization_table(result: ComparisonResult) -> pd.DataFrame:
    """Binned losses (:func:`binned_step_losses`), one row per model, the exact h first."""
    binned = binned_step_losses(result.step_losses)
    binned["bin"] = [f"t={a}" if a == b else f"t={a}-{b}"
                     for a, b in zip(binned["first"], binned["last"], strict=True)]
    wide = binned.pivot(index="model", columns="bin", values="log_loss")
    order = [*dict.fromkeys([EXACT_MYOPIC, *result.step_losses.model])]
    return wide.reindex(index=order, columns=list(dict.fromkeys(binned.bin))).reset_index()


def _sections(result: ComparisonResult, plots: bool) -> list[str]:
    models = result.models
    figure = (lambda key, alt: [f"![{alt}]({FIGURES[key]})", ""]) if plots else (
        lambda key, alt: [])
    return [
        *_section("How to read this report", GLOSSARY),
        *_section("Targets", targets_note(result), target_table(result)),
        *_section("Models", "\n".join(f"- `{name}`: {entry.description}."
                                      for name, entry in models.items())),
        *_section(
            "Prediction (held-out symbols)",
            "Lower is better in every column but none can beat the true model except by "
            "chance (see excess above).",
            metrics_table(result, result.with_measurement("prediction"),
                          MEASUREMENTS["prediction"])),
        *_section(
            "Hidden states",
            "Accuracy of each model's guess of the hidden state (± standard error over "
            "sequences). HMMs guess by their filter (causal), smoother and Viterbi path, "
            "states matched to the truth's; the decoder RNN by its output; each "
            "next-symbol RNN by a ridge probe from its state to the one-hot hidden state "
            "(argmax), cross-validated over 5 folds of held-out sequences as the belief "
            "probe below."
            + _iid_note(result),
            _with_errors(metrics_table(result, _decoding_models(result),
                                       MEASUREMENTS["state_decoding"]))),
        *_section(
            "Matrices",
            "Errors of each fitted HMM's matrices after matching its states to the truth's "
            "(Hungarian matching on emission rows): the largest absolute error of an entry, "
            "and the mean total variation distance between matching rows (0 = equal, "
            "1 = disjoint). The `_hmm` rows are EM fitted to sequences generated by an RNN: "
            "what the RNN learned, written as matrices.",
            metrics_table(result, result.with_measurement("matrices"),
                          MEASUREMENTS["matrices"])),
        *figure("matrices", "matrices"),
        *_section(
            "Belief probe",
            "A ridge probe from each next-symbol RNN's hidden state to the true belief over "
            f"the process's states ({', '.join(result.belief_state_names)}), scored by "
            "5-fold cross-validation over whole held-out sequences, its penalty chosen by an "
            "inner cross-validation inside each fold's training part: no step is scored by "
            "a probe that saw it. Controls through the same probe: shuffled targets (near "
            "0: the probe alone finds nothing); an untrained network of the same cell and "
            "size (a random recurrent state already remembers recent symbols); and "
            "`markov{k}`, the last k symbols one-hot (what a window of k symbols carries; "
            "the trained state's lead over these is what it keeps from further back).",
            metrics_table(result, result.with_measurement("belief_probe"),
                          [c for c in MEASUREMENTS["belief_probe"]
                           if not c.startswith("accuracy")])),
        *figure("geometry", "belief geometry"),
        *figure("belief", "belief trace"),
        *_section(
            "Synchronization",
            "Each model's held-out log-loss at step t, averaged over the sequences and over "
            "doubling bins of steps, beside h(t + 1), the truth's expected loss at those "
            "steps (enumerated exactly over the first steps; `-` beyond). The early bins "
            "show how fast a model learns where the hidden state is; a model below h in a "
            "bin is lucky on this sample, as the true model's own row shows.",
            _synchronization_table(result)),
        *figure("synchronization", "synchronization"),
        *_section("Learning curves", _learning_note(result)),
        *figure("learning", "learning curve"),
    ]


def _timing_note(result: ComparisonResult) -> str:
    timings = dict(zip(result.timings.stage, result.timings.seconds, strict=True))
    total = timings.get("total (wall)", result.timings.seconds.sum())
    return (f"seqmodels {seqmodels.__version__}. Seconds per stage, this run: {total:.1f} s in "
            "all, figures and files not included. The EM HMM is fitted on the run's "
            "executor (by default a worker process) while this process fits the rest, so "
            "its fit overlaps the other stages and `waiting for em_hmm` is what was left.")


def render_markdown(result: ComparisonResult, plots: bool = True) -> str:
    """The text of ``report.md``: readable on its own."""
    config = result.config
    command = rerun_command(config) or "see config.json (`ComparisonConfig.from_dict`)"
    lines = [
        f"# HMM vs RNN on `{config.preset}`", "",
        f"{config.n_train} training and {config.n_test} held-out sequences of {config.length} "
        f"steps; hidden states: {', '.join(result.state_names)}; seed {config.seed}; RNN "
        f"cells {', '.join(config.cells)} with {config.hidden} hidden units; EM restarts "
        f"{config.restarts}. Rerun: `{command}`.", "",
        *_sections(result, plots),
        *_section("Wall time", _timing_note(result), result.timings),
    ]
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

    titles = {name: result.models[name].title
              for name in ["true", *result.with_measurement("matrices")]}
    return {
        FIGURES["matrices"]: plots.matrices_png(result.matrices, result.state_names, titles),
        FIGURES["belief"]: plots.belief_trace_png(result.belief_trace,
                                                  result.belief_state_names),
        FIGURES["geometry"]: plots.belief_geometry_png(result.belief_points,
                                                       result.belief_state_names),
        FIGURES["synchronization"]: plots.synchronization_png(
            binned_step_losses(result.step_losses), EXACT_MYOPIC),
        FIGURES["learning"]: plots.learning_curve_png(
            result.learning_curve, result.learning_references,
            result.with_measurement("belief_probe")),
    }


def write_report(result: ComparisonResult, out_dir: str | os.PathLike,
                 plots: bool = True) -> list[Path]:
    """Write the report folder, replacing a previous report there whole; return the paths.

    Files: ``report.md``, ``metrics.csv`` (model, metric, value), ``metrics.json``,
    ``config.json``, ``timings.csv``, ``matrices.csv``, ``step_losses.csv``, and with
    ``plots`` the PNGs of :data:`FIGURES`.

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
    check_writable_folder(out_dir, set(REPORT_FILES), "out_dir")  # before the figures' seconds
    files: dict[str, bytes] = {
        "report.md": render_markdown(result, plots).encode(),
        "metrics.csv": result.metrics.to_csv(index=False, float_format="%.17g").encode(),
        "metrics.json": metrics_json(result).encode(),
        "config.json": config_json(result).encode(),
        "timings.csv": result.timings.to_csv(index=False, float_format="%.3f").encode(),
        "matrices.csv": result.matrices.to_csv(index=False, float_format="%.17g").encode(),
        "step_losses.csv": result.step_losses.to_csv(index=False,
                                                     float_format="%.17g").encode(),
    }
    if plots:
        files.update(_figures(result))
    return write_folder(out_dir, files, expected=set(REPORT_FILES))
