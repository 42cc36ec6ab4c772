"""Tests of seqmodels.compare and experiments/compare.py.

Unit tests check the metric functions and baselines on inputs whose answer is
known exactly. The end-to-end tests run ``experiments/compare.py --quick``
(in-process through ``main(argv)``, a few seconds each) in a temporary folder.

Sampling tolerance of the excess
--------------------------------
The true model minimizes the expected log-loss, so every model's expected
excess is its KL divergence from the truth, >= 0. On a finite held-out set a
fitted model can still beat the truth by chance. The held-out sequences are
independent, so the excess (a mean of per-sequence paired differences) has a
standard error ``excess_se`` estimated from those differences, and a model
whose expected excess is 0 falls below ``-z * excess_se`` with probability
about ``1 - Phi(z)``. With ``z`` for ``ALPHA = 1e-3`` split over the models
(Bonferroni), a correct run fails this check with probability below 1e-3; the
seeds are fixed, so the outcome is deterministic.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from seqmodels.compare import (
    MEASUREMENTS,
    ComparisonConfig,
    IIDBaseline,
    InlineExecutor,
    MarkovBaseline,
    registry,
    run_comparison,
    write_report,
)
from seqmodels.compare import metrics as m
from seqmodels.compare.report import markdown_table, render_markdown, rerun_command
from seqmodels.dice import PRESETS

ROOT = Path(__file__).resolve().parents[1]
ALPHA = 1e-3
REPORT_FILES = ("report.md", "metrics.csv", "metrics.json", "config.json", "timings.csv",
                "matrices.csv", "step_losses.csv", "matrices.png", "belief_trace.png",
                "belief_geometry.png", "synchronization.png", "learning_curve.png")


def quick_registry(**overrides):
    config = ComparisonConfig.quick(**overrides)
    return registry(config, PRESETS[config.preset]().to_hmm())


def load_cli():
    spec = importlib.util.spec_from_file_location("compare_cli", ROOT / "experiments/compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- metric functions


def test_kl_of_identical_distributions_is_zero_and_known_value_matches():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5), size=(3, 4))
    assert m.mean_kl(p, p) == 0.0
    # KL([1/2, 1/2, 0] || [1/4, 1/2, 1/4]) = 1/2 log 2 + 0 + 0 (0 log 0 = 0).
    assert m.mean_kl(np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.5, 0.25])) == pytest.approx(
        0.5 * np.log(2.0), rel=1e-12)


def test_log_loss_of_uniform_forecasts_is_log_v():
    symbols = np.array([[0, 3, 2], [1, 1, 0]])
    uniform = np.full((2, 3, 4), 0.25)
    np.testing.assert_allclose(m.sequence_log_loss(uniform, symbols), np.log(4.0), rtol=1e-14)
    scores = m.prediction_metrics(uniform, symbols, uniform)
    assert scores["excess"] == 0.0 and scores["kl"] == 0.0
    assert scores["perplexity"] == pytest.approx(4.0, rel=1e-12)


def test_log_probs_pick_the_observed_symbol():
    predictive = np.array([[[0.1, 0.9], [0.6, 0.4]]])
    np.testing.assert_allclose(m.symbol_log_probs(predictive, np.array([[1, 0]])),
                               np.log([[0.9, 0.6]]), rtol=1e-14)


def test_excess_and_its_standard_error():
    model, floor = np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.0, 1.5])
    excess, error = m.excess_with_error(model, floor)
    assert excess == pytest.approx(1.0)
    assert error == pytest.approx(np.std([0.5, 1.0, 1.5], ddof=1) / np.sqrt(3))
    assert m.excess_with_error(floor, floor) == (0.0, 0.0)


def test_probe_r2_is_one_for_an_exact_affine_map_and_zero_for_the_mean():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, 6))
    targets = features @ rng.normal(size=(6, 3)) + np.array([0.5, -1.0, 2.0])
    assert m.probe_r2(features[:100], targets[:100], features[100:], targets[100:]) == (
        pytest.approx(1.0, abs=1e-12))
    assert m.r_squared(targets, np.broadcast_to(targets.mean(axis=0), targets.shape)) == (
        pytest.approx(0.0, abs=1e-12))


def test_probe_accuracy_on_separable_features_is_one():
    labels = np.arange(60) % 3
    features = np.eye(3)[labels] * 5.0 + np.random.default_rng(2).normal(0, 0.1, (60, 3))
    assert m.probe_accuracy(features[:30], labels[:30], features[30:], labels[30:], 3) == 1.0


def test_accuracy_and_total_variation():
    assert m.accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])) == 0.75
    with pytest.raises(ValueError, match="shape"):
        m.accuracy(np.zeros(3), np.zeros(4))
    np.testing.assert_allclose(m.row_total_variation([[1.0, 0.0], [0.5, 0.5]],
                                                     [[0.0, 1.0], [0.5, 0.5]]), [1.0, 0.0])


def test_matrix_errors_of_a_known_perturbation():
    from seqmodels.hmm import HMM

    truth = HMM([0.5, 0.5], [[0.9, 0.1], [0.2, 0.8]], [[0.5, 0.5, 0.0], [0.1, 0.1, 0.8]])
    model = HMM([0.5, 0.5], [[0.8, 0.2], [0.2, 0.8]], [[0.5, 0.5, 0.0], [0.1, 0.1, 0.8]])
    errors = m.matrix_errors(model, truth)
    assert errors["transmat_max_abs"] == pytest.approx(0.1)
    assert errors["transmat_tv"] == pytest.approx(0.05)  # rows: 0.1 and 0
    assert errors["emission_max_abs"] == 0.0 and errors["emission_tv"] == 0.0


def test_cross_validated_probe_recovers_an_affine_map_and_nothing_from_noise():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(20, 50, 4))
    targets = features @ rng.normal(size=(4, 2)) + 0.5
    exact = m.cross_validated_probe(features, targets)
    assert exact.r2 == pytest.approx(1.0, abs=1e-9) and exact.mse < 1e-12
    assert exact.predictions.shape == targets.shape and exact.penalties.shape == (5,)
    noise = m.cross_validated_probe(features, rng.normal(size=(20, 50, 2)))
    assert noise.r2 < 0.01


def test_the_probe_never_scores_a_sequence_it_was_fitted_on():
    """Features that name the sequence let a probe memorize it; out of fold that is worthless."""
    n_seq = 20
    features = np.repeat(np.eye(n_seq)[:, None, :], 10, axis=1)  # (B, T, B): which sequence
    targets = np.repeat(np.random.default_rng(4).normal(size=(n_seq, 1, 1)), 10, axis=1)
    assert m.cross_validated_probe(features, targets).r2 < 0.0


def test_probe_moments_give_the_squared_error_without_the_rows():
    rng = np.random.default_rng(5)
    features, targets = rng.normal(size=(6, 7, 3)), rng.normal(size=(6, 7, 2))
    moments = m._moments_per_sequence(features, targets)
    weights, intercept = m._ridge(m._total(moments, np.arange(3, 6)), 1e-2)
    direct = np.sum((targets[:3] - features[:3] @ weights - intercept) ** 2)
    assert m._sse(weights, intercept, m._total(moments, np.arange(3))) == pytest.approx(
        direct, rel=1e-10)


def test_markov_features_hold_the_last_k_symbols():
    features = m.markov_features(np.array([[0, 1, 2]]), 3, 2)[0]
    np.testing.assert_array_equal(features, [[1, 0, 0, 0, 0, 0],
                                             [0, 1, 0, 1, 0, 0],
                                             [0, 0, 1, 0, 1, 0]])
    with pytest.raises(ValueError, match="at least 10 sequences"):
        m.cross_validated_probe(np.zeros((4, 3, 2)), np.zeros((4, 3, 1)))


# --------------------------------------------------------------------------- baselines


def test_iid_baseline_is_add_one_smoothed():
    baseline = IIDBaseline.fit(np.array([[0, 0, 1, 0]]), n_symbols=3)
    np.testing.assert_allclose(baseline.probs, [4 / 7, 2 / 7, 1 / 7])  # (n_v + 1) / (N + V)
    forecast = baseline.predictive(np.array([[2, 1], [0, 0]]))
    assert forecast.shape == (2, 2, 3)
    np.testing.assert_array_equal(forecast[1, 1], baseline.probs)


def test_markov_baseline_alignment_and_smoothing():
    baseline = MarkovBaseline.fit(np.array([[0, 1, 0, 1]]), n_symbols=3)
    # Pairs: 0->1 twice, 1->0 once; row 0 = (0+1, 2+1, 0+1) / (2+3).
    np.testing.assert_allclose(baseline.transmat[0], [1 / 5, 3 / 5, 1 / 5])
    np.testing.assert_allclose(baseline.transmat[2], [1 / 3] * 3)  # unseen row: uniform
    assert np.all(baseline.transmat > 0) and np.all(baseline.startprob > 0)
    symbols = np.array([2, 0, 1])
    forecast = baseline.predictive(symbols)  # (T,) in, (T, V) out
    np.testing.assert_array_equal(forecast[0], baseline.startprob)  # before any symbol
    np.testing.assert_array_equal(forecast[1], baseline.transmat[2])  # P(x_1 | x_0 = 2)
    np.testing.assert_array_equal(forecast[2], baseline.transmat[0])


def test_baselines_reject_out_of_range_symbols():
    with pytest.raises(ValueError, match="outside"):
        IIDBaseline.fit(np.array([[0, 3]]), n_symbols=3)


# --------------------------------------------------------------------------- config and report


def test_config_validates_and_round_trips():
    config = ComparisonConfig.quick(seed=7)
    assert ComparisonConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="preset"):
        ComparisonConfig(preset="nope")
    with pytest.raises(ValueError, match="n_train"):
        ComparisonConfig(n_train=0)
    with pytest.raises(ValueError, match="unknown config keys"):
        ComparisonConfig.from_dict({"colour": 1})


@pytest.mark.parametrize(("settings", "message"), [
    ({"preset": ["loaded_dice"]}, "preset must be one of"),
    ({"n_test": 9}, "n_test must be at least 10"),
    ({"length": -3}, "length must be at least 1"),
    ({"rnn_lr": "0.1"}, "rnn_lr must be a real number"),
    ({"rnn_lr": float("inf")}, "rnn_lr must be a positive finite number"),
    ({"rnn_clip": True}, "rnn_clip must be a real number"),
    ({"rnn_validation": None}, "rnn_validation must be a real number"),
    ({"n_train": 1}, "n_train=1 leaves no training sequence"),
])
def test_config_rejects_nonsense_naming_the_field(settings, message):
    with pytest.raises(ValueError, match=message):
        ComparisonConfig(**settings)


@pytest.mark.parametrize("settings", [{"n_train": 10**8}, {"length": 10**9},
                                      {"hidden": 10**5, "n_test": 10**5}])
def test_a_config_that_cannot_fit_in_memory_is_refused_at_once(settings):
    import time

    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"needs [\d.]+ [KMGTP]iB of memory; .* is available"):
        ComparisonConfig(**settings)
    assert time.perf_counter() - start < 1.0  # refused before anything is built


def test_config_from_dict_and_quick_reject_what_is_not_a_field():
    with pytest.raises(ValueError, match="settings must be a dict"):
        ComparisonConfig.from_dict(None)
    with pytest.raises(ValueError, match="unknown config keys"):
        ComparisonConfig.quick(colour=1)


def test_run_and_write_report_reject_a_wrong_argument_type(tmp_path):
    with pytest.raises(ValueError, match=r"config must be a ComparisonConfig.*got dict"):
        run_comparison({"preset": "casino"}, progress=False)
    with pytest.raises(ValueError, match="config must be a ComparisonConfig"):
        run_comparison({}, progress=False)  # empty, yet not silently the default run
    with pytest.raises(ValueError, match=r"executor must be a concurrent\.futures\.Executor"):
        run_comparison(ComparisonConfig.quick(), progress=False, executor=2)
    with pytest.raises(ValueError, match="result must be the ComparisonResult"):
        write_report(None, tmp_path)


def test_each_preset_has_its_reference_run():
    mess3 = ComparisonConfig.for_preset("mess3")
    assert (mess3.hidden, mess3.rnn_lr, mess3.rnn_schedule) == (64, 0.003, (0.001, 0.0003))
    assert mess3.is_reference and ComparisonConfig().is_reference
    assert ComparisonConfig.for_preset("loaded_dice") == ComparisonConfig()
    assert not ComparisonConfig(preset="mess3").is_reference  # the dice's settings
    assert not ComparisonConfig.for_preset("even").is_reference  # no targets for even
    assert ComparisonConfig.for_preset("mess3", hidden=8).hidden == 8
    assert rerun_command(mess3) == "python experiments/compare.py --preset mess3"
    assert rerun_command(ComparisonConfig.for_preset("mess3", seed=2)) == (
        "python experiments/compare.py --preset mess3 --seed 2")


def test_rerun_command_reproduces_the_flags():
    assert rerun_command(ComparisonConfig()) == "python experiments/compare.py"
    assert rerun_command(ComparisonConfig.quick(seed=3)) == (
        "python experiments/compare.py --quick --seed 3")
    assert rerun_command(ComparisonConfig(rnn_lr=0.5)) is None  # no flag for it
    assert rerun_command(ComparisonConfig(cells=("elman", "gru"), em_states=3)) == (
        "python experiments/compare.py --cells elman,gru --em-states 3")


@pytest.mark.parametrize(("cells", "message"), [
    (("banana",), "cells must name one or more of"),
    ((), "cells must name one or more of"),
    (("elman", "elman"), "must not repeat"),
    (3, "cells must be a sequence"),
])
def test_config_rejects_bad_cells(cells, message):
    with pytest.raises(ValueError, match=message):
        ComparisonConfig(cells=cells)
    assert ComparisonConfig(cells="elman, gru").cells == ("elman", "gru")


def test_markdown_table():
    import pandas as pd

    text = markdown_table(pd.DataFrame({"model": ["a"], "value": [0.123456]}), digits=3)
    assert text.splitlines() == ["| model | value |", "| --- | --- |", "| a | 0.123 |"]


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    assert load_cli().main(["--quick", "--quiet", "--seed", "5", "--out", str(out)]) == 0
    return out, json.loads((out / "metrics.json").read_text())


def test_quick_run_writes_every_file(quick_run):
    out, _ = quick_run
    for name in REPORT_FILES:
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob(".*")), "temporary files left behind"
    report = (out / "report.md").read_text()
    for name in ("matrices.png", "belief_trace.png", "learning_curve.png", "Targets"):
        assert name in report
    # Every term is defined before the first table uses it; no internal references.
    glossary, tables = report.index("## How to read this report"), report.index("| model |")
    for term in ("**log-loss**", "**excess**", "**perplexity**", "**kl**", "**accuracy**",
                 "**belief_kl**", "**belief_r2**", "nats"):
        assert glossary < report.index(term) < tables, term
    assert "issue" not in report.lower()
    assert "do not apply; they are shown for reference" in report  # not the default run
    config = json.loads((out / "config.json").read_text())
    assert ComparisonConfig.from_dict(config["config"]) == ComparisonConfig.quick(seed=5)
    assert config["command"] == "python experiments/compare.py --quick --seed 5"


def test_quick_run_reports_every_model_and_metric(quick_run):
    _, metrics = quick_run
    entries = quick_registry(seed=5)
    assert list(metrics) == list(entries)  # report order is registry order
    assert {model: list(values) for model, values in metrics.items()} == {
        name: list(entry.metric_names()) for name, entry in entries.items()}
    assert all(np.isfinite(v) for values in metrics.values() for v in values.values())


def test_the_registry_has_one_rnn_and_one_implied_hmm_per_cell():
    entries = quick_registry(cells=("elman", "gru", "lstm"))
    for cell in ("elman", "gru", "lstm"):
        assert entries[f"rnn_{cell}"].measurements == ("prediction", "belief_probe")
        assert "matrices" in entries[f"rnn_{cell}_hmm"].measurements
    assert [name for name, entry in entries.items() if entry.remote] == ["em_hmm"]
    # Every measurement an entry names exists, and its metrics are listed once.
    for entry in entries.values():
        assert set(entry.measurements) <= set(MEASUREMENTS)
        assert len(set(entry.metric_names())) == len(entry.metric_names())


def test_an_em_hmm_with_another_number_of_states_is_only_scored_on_prediction():
    entries = quick_registry(em_states=2)
    assert entries["em_hmm"].measurements == ("prediction",)
    assert "2 states" in entries["em_hmm"].description
    assert "matrices" in quick_registry()["em_hmm"].measurements


def test_true_model_is_the_floor(quick_run):
    _, metrics = quick_run
    predictors = [name for name, entry in quick_registry(seed=5).items()
                  if "prediction" in entry.measurements]
    assert metrics["true"]["excess"] == 0.0
    assert metrics["true"]["kl"] == 0.0
    assert metrics["true"]["belief_kl"] == 0.0
    z = stats.norm.ppf(1 - ALPHA / len(predictors))
    for model in predictors:
        assert metrics[model]["kl"] >= 0.0, model
        assert metrics[model]["excess"] >= -z * metrics[model]["excess_se"], model


def test_the_report_warns_when_the_hidden_chain_is_iid():
    tiny = dict(n_train=10, n_test=10, length=30, epochs=1, decoder_epochs=1, restarts=1,
                em_finalists=1, implied_restarts=1, implied_sequences=4, implied_length=30)
    text = {preset: render_markdown(run_comparison(
        ComparisonConfig.quick(preset=preset, **tiny), progress=False,
        executor=InlineExecutor()), plots=False) for preset in ("three_dice", "casino")}
    assert "the hidden chain is i.i.d." in text["three_dice"]
    assert "the hidden chain is i.i.d." not in text["casino"]


def test_a_process_whose_hmm_splits_states_is_probed_on_its_own_states():
    """Even's HMM has states A/0, A/1, B; its belief probe targets beliefs over A and B."""
    tiny = dict(n_train=10, n_test=10, length=30, epochs=1, decoder_epochs=1, restarts=1,
                em_finalists=1, implied_restarts=1, implied_sequences=4, implied_length=30)
    result = run_comparison(ComparisonConfig.quick(preset="even", **tiny), progress=False,
                            executor=InlineExecutor())
    assert result.state_names == ("A/0", "A/1", "B")
    assert result.belief_state_names == ("A", "B")
    assert set(result.belief_points.state) == {0, 1}
    exact = result.step_losses[result.step_losses.model == "h(t+1) exact"]
    assert exact.log_loss.iloc[-1] == pytest.approx(np.log(2) * 2 / 3, abs=0.02)


def test_iid_baseline_is_worse_than_em(quick_run):
    _, metrics = quick_run
    assert metrics["iid"]["excess"] > metrics["em_hmm"]["excess"]


def test_decoding_beats_the_chance_level(quick_run):
    """The truth's causal accuracy exceeds always guessing the majority state.

    Both are means over the same 20 held-out sequences; the one-sided z-test on
    their difference uses the larger of the two standard errors times sqrt(2)
    (a bound on the standard error of a difference of positively correlated means).
    """
    _, metrics = quick_run
    truth, chance = metrics["true"], metrics["majority_state"]
    error = np.sqrt(2) * max(truth["accuracy_causal_se"], chance["accuracy_causal_se"])
    assert truth["accuracy_causal"] - chance["accuracy_causal"] > stats.norm.ppf(1 - ALPHA) * error


def test_same_seed_gives_identical_metrics_json(quick_run, tmp_path):
    """Run again with the EM fit in a worker process (--jobs 2): the same bytes."""
    first, _ = quick_run
    assert load_cli().main(["--quick", "--quiet", "--no-plots", "--seed", "5", "--jobs", "2",
                            "--out", str(tmp_path)]) == 0
    assert (tmp_path / "metrics.json").read_bytes() == (first / "metrics.json").read_bytes()
    assert not (tmp_path / "matrices.png").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--preset", "nope"], "invalid choice"),
    (["--n-train", "0"], "positive integer"),
    (["--length", "-5"], "positive integer"),
    (["--length", "1"], "length must be at least 2"),
    (["--hidden", "x"], "positive integer"),
    (["--quick", "--n-test", "1"], "n_test must be at least 10"),
    (["--seed", "-1"], ">= 0"),
    (["--jobs", "0"], "positive integer"),
    (["--cells", "elman,banana"], "unknown cell 'banana'"),
    (["--cells", "gru,gru"], "must not repeat"),
    (["--em-states", "0"], "positive integer"),
])
def test_bad_arguments_exit_2(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        load_cli().main([*argv, "--out", str(tmp_path)])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_unwritable_output_folder_exits_2(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as stop:
        load_cli().main(["--quick", "--out", str(blocker / "report")])
    assert stop.value.code == 2
    assert "cannot write the report" in capsys.readouterr().err


def test_output_folder_that_is_a_file_exits_2(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as stop:
        load_cli().main(["--quick", "--out", str(blocker)])
    assert stop.value.code == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_ctrl_c_during_the_run_exits_130_and_writes_nothing(tmp_path, monkeypatch, capsys):
    cli = load_cli()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run_comparison", interrupted)
    assert cli.main(["--quick", "--quiet", "--out", str(tmp_path)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_ctrl_c_swallowed_by_a_callback_still_stops_the_run(tmp_path, monkeypatch, capsys):
    """Python prints and drops a KeyboardInterrupt raised in a weakref or finalizer
    callback; the CLI remembers the signal and exits 130 without writing a report."""
    import os
    import signal

    cli = load_cli()

    def run_with_a_swallowed_interrupt(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)  # delivered here, as in a callback ...
        except KeyboardInterrupt:
            pass  # ... that swallows it
        return "a result nobody should write"

    monkeypatch.setattr(cli, "run_comparison", run_with_a_swallowed_interrupt)
    out = tmp_path / "report"
    assert cli.main(["--quick", "--quiet", "--out", str(out)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not out.exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_ctrl_c_while_writing_leaves_the_previous_report_whole(tmp_path, monkeypatch):
    """Interrupted after two files of a second report: the first report is there, unmixed."""
    tiny = ComparisonConfig.quick(n_train=10, n_test=10, length=30, epochs=2, decoder_epochs=1,
                                  restarts=1, em_finalists=1, implied_restarts=1,
                                  implied_sequences=4, implied_length=30, trace_steps=30)
    out = tmp_path / "report"
    first = run_comparison(tiny, progress=False, executor=InlineExecutor())
    write_report(first, out, plots=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    second = run_comparison(dataclasses.replace(tiny, seed=1), progress=False,
                            executor=InlineExecutor())
    written, real_write = [], Path.write_bytes

    def write_twice_then_interrupt(self, data):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(self.name)
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_twice_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_report(second, out, plots=False)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".report.lock", "report"]


def test_a_second_run_into_a_folder_being_written_is_refused(tmp_path, capsys):
    import subprocess
    import sys

    out = tmp_path / "report"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from seqmodels._io import folder_lock\n"
         f"with folder_lock({str(out)!r}):\n    print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert load_cli().main(["--quick", "--quiet", "--out", str(out)]) == 2
    finally:
        holder.communicate("", timeout=30)
    assert f"another run (pid {holder.pid}) is writing" in capsys.readouterr().err
    assert not out.exists()


def test_sequences_of_two_steps_run_end_to_end(tmp_path):
    argv = ["--quick", "--quiet", "--no-plots", "--length", "2", "--n-train", "20",
            "--restarts", "1", "--epochs", "1", "--out", str(tmp_path / "report")]
    assert load_cli().main(argv) == 0
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert all(np.isfinite(v) for values in metrics.values() for v in values.values())


@pytest.mark.parametrize(("out", "message"), [
    ("", "must name a folder"),
    (".", "holds files that this run did not write"),
])
def test_an_output_folder_that_is_not_a_report_exits_2(out, message, capsys):
    with pytest.raises(SystemExit) as stop:
        load_cli().main(["--quick", "--out", out])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_metric_functions_reject_symbols_that_do_not_match_the_forecasts():
    forecasts = np.full((2, 3, 4), 0.25)
    symbols = np.array([[0, 1, 2], [3, 0, 1]])
    with pytest.raises(ValueError, match="symbol -1"):  # would silently index from the end
        m.symbol_log_probs(forecasts, symbols - 1)
    with pytest.raises(ValueError, match="symbol 4"):
        m.prediction_metrics(forecasts, symbols + 1, forecasts)
    with pytest.raises(ValueError, match=r"must be \(2, 2, 4\)"):
        m.sequence_log_loss(forecasts, symbols[:, :2])
    with pytest.raises(ValueError, match="floor_predictive"):
        m.prediction_metrics(forecasts, symbols, forecasts[:1])  # would broadcast
    with pytest.raises(ValueError, match="same shape"):
        m.excess_with_error(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="fit_labels has symbol 5"):
        m.probe_accuracy(np.zeros((3, 2)), np.array([0, 1, 5]), np.zeros((3, 2)),
                         np.array([0, 1, 2]), n_classes=3)
    # One (T,) sequence keeps working, as everywhere else in the package.
    single = m.prediction_metrics(forecasts[0], symbols[0].tolist(), forecasts[0])
    assert single["log_loss"] == pytest.approx(np.log(4.0), rel=1e-14)


def test_baselines_built_directly_are_validated_and_read_only():
    with pytest.raises(ValueError, match=r"probs sums to 1\.1"):
        IIDBaseline([0.5, 0.6])
    with pytest.raises(ValueError, match="transmat must have shape"):
        MarkovBaseline([0.5, 0.5], np.full((3, 3), 1 / 3))
    baseline = IIDBaseline([0.25, 0.75])
    assert not baseline.probs.flags.writeable
    np.testing.assert_array_equal(baseline.predictive([1, 0]), [[0.25, 0.75]] * 2)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_output_folder_that_takes_no_files_exits_2(capsys):
    with pytest.raises(SystemExit) as stop:
        load_cli().main(["--quick", "--out", "/proc/report"])
    assert stop.value.code == 2
    assert "cannot write the report to '/proc/report': cannot create files in '/proc'" in (
        capsys.readouterr().err)
