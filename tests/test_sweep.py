"""Tests of seqmodels.sweep and experiments/sweep.py on tiny grids (local engines).

Every grid here has cells of a few hundredths of a second (sequences of 40
steps, 2 epochs, one EM restart): the tests check the plumbing (every row
present and tidy, seeds keyed by coordinates, resume, refusals), not the
quality of the fits, which test_compare covers. The Dask engine is tested in
test_sweep_dask.py.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import signal
import subprocess
import sys
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqmodels.compare import run_on_samples
from seqmodels.compare.executors import InlineExecutor
from seqmodels.compare.models import MEASUREMENTS
from seqmodels.sweep import (
    COLUMNS,
    TIMING_METRICS,
    SweepError,
    SweepGrid,
    analysis,
    load_results,
    local_engine,
    run_sweep,
)
from seqmodels.sweep.cell import held_out_sample, hmm_parameters, run_cell, training_sample
from seqmodels.sweep.presets import process
from seqmodels.sweep.report import FIGURES, figures, render_markdown
from seqmodels.sweep.store import CELLS_FOLDER, RESULTS_FILE, read_rows

ROOT = Path(__file__).resolve().parents[1]

#: Only settings with a flag differ from the defaults, so the CLI can ask for the same grid.
TINY_SETTINGS = dataclasses.replace(SweepGrid().settings, length=40, n_test=10, epochs=2,
                                    restarts=1)
#: 8 Baum-Welch cells (2 sizes x K in {4 (the truth's), 2} x 2 seeds) and 8 RNN cells.
TINY = SweepGrid(preset=("loaded_dice",), n_train=(10, 20), hidden=(4,), cell=("elman", "gru"),
                 em_states=(2,), seed=(0, 1), settings=TINY_SETTINGS)
TINY_FLAGS = ["--preset", "loaded_dice", "--n-train", "10,20", "--hidden", "4", "--cell",
              "elman,gru", "--em-states", "2", "--seed", "0,1", "--length", "40", "--n-test",
              "10", "--epochs", "2", "--restarts", "1"]


def deterministic(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows without wall times, in a canonical order."""
    kept = rows[~rows.metric.isin(TIMING_METRICS)]
    return kept.sort_values(["kind", "preset", "n_train", "hidden", "cell", "em_states", "seed",
                             "model", "metric"], ignore_index=True)


def load_cli():
    spec = importlib.util.spec_from_file_location("sweep_cli", ROOT / "experiments/sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    """The tiny grid run once, uninterrupted, in this process."""
    out = tmp_path_factory.mktemp("sweep") / "reference"
    return run_sweep(TINY, out, executor=InlineExecutor(), progress=False)


# --------------------------------------------------------------------------- the grid


def test_grid_spans_every_combination_once_and_the_true_k_always():
    cells = list(TINY.cells())
    hmm = [c for c in cells if c.kind == "hmm"]
    rnn = [c for c in cells if c.kind == "rnn"]
    assert len(hmm) == 2 * 2 * 2 and len(rnn) == 2 * 1 * 2 * 2
    assert {(c.n_train, c.em_states, c.seed) for c in hmm} == {
        (n, k, s) for n in (10, 20) for k in (4, 2) for s in (0, 1)}
    assert {(c.n_train, c.hidden, c.cell, c.seed) for c in rnn} == {
        (n, 4, cell, s) for n in (10, 20) for cell in ("elman", "gru") for s in (0, 1)}
    assert len({c.key for c in cells}) == len(cells)
    assert {c.fit_seed() for c in cells}.__len__() == len(cells)  # no two cells share a stream


def test_the_default_grid_is_the_make_sweep_grid():
    grid = SweepGrid()
    assert grid.n_train == (25, 50, 100, 200, 400, 800, 1600)
    assert (grid.preset, grid.hidden, grid.cell, grid.em_states, grid.seed) == (
        ("loaded_dice",), (32,), ("elman",), (), (0, 1, 2))


def test_cell_models_are_what_the_sweep_reports():
    hmm_true, hmm_other = (next(c for c in TINY.cells() if c.kind == "hmm" and c.em_states == k)
                           for k in (4, 2))
    assert hmm_true.models() == ("true", "counted_hmm", "em_hmm")
    assert hmm_other.models() == ("em_hmm",)
    gru = next(c for c in TINY.cells() if c.cell == "gru")
    assert gru.models() == ("rnn_gru",)
    config = gru.config(TINY.settings)
    assert (config.cells, config.hidden, config.n_train) == (("gru",), 4, gru.n_train)


def test_grid_round_trips_through_dict_json_and_toml(tmp_path):
    assert SweepGrid.from_dict(TINY.to_dict()) == TINY
    (tmp_path / "config.json").write_text(json.dumps(TINY.to_dict()))
    assert SweepGrid.from_file(tmp_path / "config.json") == TINY
    (tmp_path / "sweep.toml").write_text(
        '[grid]\nn_train = [10, 20]\nhidden = [4]\ncell = ["elman", "gru"]\nem_states = [2]\n'
        'seed = [0, 1]\n[settings]\nlength = 40\nn_test = 10\nepochs = 2\nrestarts = 1\n')
    assert SweepGrid.from_file(tmp_path / "sweep.toml") == TINY


def test_differences_name_each_changed_value():
    other = dataclasses.replace(TINY, n_train=(10, 40),
                                settings=dataclasses.replace(TINY.settings, epochs=3))
    assert TINY.differences(TINY) == []
    assert TINY.differences(other) == ["grid.n_train: [10, 20] vs [10, 40]",
                                       "settings.epochs: 2 vs 3"]


@pytest.mark.parametrize(("change", "named"), [
    ({"preset": ("loaded_dice", "nope")}, "preset value 'nope'"),
    ({"cell": ("elman", "rnn9")}, "cell value 'rnn9'"),
    ({"n_train": (10, 0)}, "n_train value 0"),
    ({"hidden": (0,)}, "hidden value 0"),
    ({"em_states": (0,)}, "em_states value 0"),
    ({"seed": (-1,)}, "seed value -1"),
    ({"n_train": ()}, "n_train is empty"),
    ({"cell": ()}, "cell is empty"),
    ({"hidden": (4, 4)}, "hidden repeats 4"),
    ({"n_train": (1,)}, "n_train value 1"),  # no sequence left once one is held out
])
def test_bad_grids_are_refused_naming_the_value(change, named):
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        dataclasses.replace(TINY, **change)


def test_unknown_keys_in_a_sweep_file_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\[grid\] has unknown keys \['sizes'\]"):
        SweepGrid.from_dict({"grid": {"sizes": [1]}})
    with pytest.raises(ValueError, match=r"\[settings\] has unknown keys \['n_train'\]"):
        SweepGrid.from_dict({"settings": {"n_train": 5}})  # an axis is not a setting
    (tmp_path / "bad.toml").write_text("[grid\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        SweepGrid.from_file(tmp_path / "bad.toml")


# --------------------------------------------------------------------------- one cell


def test_training_sets_are_nested_prefixes_and_the_held_out_set_is_shared():
    small = training_sample("loaded_dice", 3, 30, 40)
    large = training_sample("loaded_dice", 3, 60, 40)
    for a, b in zip(small, large, strict=True):
        assert a.shape == (30, 40) and np.array_equal(a, b[:30])
    other_seed = training_sample("loaded_dice", 4, 30, 40)
    assert not np.array_equal(small[1], other_seed[1])
    test = held_out_sample("loaded_dice", 3, 8, 40)
    assert np.array_equal(test[1], held_out_sample("loaded_dice", 3, 8, 40)[1])
    assert not any(np.array_equal(test[1][0], row) for row in large[1])


def test_a_cell_gives_tidy_rows_one_per_model_and_metric():
    point = next(c for c in TINY.cells() if c.kind == "hmm" and c.em_states == 4)
    rows = run_cell(point, TINY.settings)
    assert tuple(rows.columns) == COLUMNS
    assert not rows.duplicated(["model", "metric"]).any()
    assert (rows[["kind", "preset", "n_train", "em_states", "seed"]].drop_duplicates()
            .shape[0]) == 1
    assert rows.hidden.isna().all() and rows.cell.isna().all()
    assert np.isfinite(rows.value).all()
    em = rows[rows.model == "em_hmm"].set_index("metric").value
    expected = {*MEASUREMENTS["prediction"], *MEASUREMENTS["state_decoding"],
                *MEASUREMENTS["matrices"], "train_log_likelihood", "n_parameters", "bic",
                "fit_seconds"}
    assert set(em.index) == expected
    # BIC by hand for K=4 states and V=8 symbols: 3 + 12 + 28 = 43 free parameters.
    assert hmm_parameters(4, 8) == 43 and em["n_parameters"] == 43
    n_symbols = point.n_train * TINY.settings.length
    assert em["bic"] == pytest.approx(-2 * em["train_log_likelihood"] + 43 * math.log(n_symbols),
                                      rel=1e-12)
    assert set(rows.model) == {"true", "counted_hmm", "em_hmm", "cell"}


def test_run_on_samples_fits_only_the_models_named():
    train = training_sample("loaded_dice", 0, 10, 40)
    test = held_out_sample("loaded_dice", 0, 10, 40)
    config = TINY.settings
    result = run_on_samples(config, process("loaded_dice"), train, test,
                            executor=InlineExecutor(), models=["markov1", "iid"])
    assert list(result.models) == ["iid", "markov1"]  # registry order
    assert set(result.metrics.model) == {"iid", "markov1"}
    assert result.belief_trace.empty and result.learning_references.empty
    with pytest.raises(ValueError, match=r"models must name one or more of .*got \['rnn9'\]"):
        run_on_samples(config, process("loaded_dice"), train, test, executor=InlineExecutor(),
                       models=["rnn9"])


def test_a_cell_does_not_depend_on_the_process_state():
    point = next(c for c in TINY.cells() if c.kind == "rnn")
    first = run_cell(point, TINY.settings)
    np.random.seed(123)  # noqa: NPY002 - the legacy global stream must not matter
    second = run_cell(point, TINY.settings)
    pd.testing.assert_frame_equal(deterministic(first), deterministic(second))


# --------------------------------------------------------------------------- a whole sweep


def expected_pairs(point) -> set[tuple[str, str]]:
    """The (model, metric) pairs a cell of the tiny grid must report."""
    if point.kind == "rnn":
        metrics = {*MEASUREMENTS["prediction"], *MEASUREMENTS["belief_probe"], "epochs",
                   "fit_seconds"}
        return {(f"rnn_{point.cell}", m) for m in metrics} | {("cell", "seconds")}
    em = {*MEASUREMENTS["prediction"], "train_log_likelihood", "n_parameters", "bic",
          "fit_seconds"}
    if point.em_states != 4:
        return {("em_hmm", m) for m in em} | {("cell", "seconds")}
    hmm = {*MEASUREMENTS["prediction"], *MEASUREMENTS["state_decoding"], "fit_seconds"}
    return ({("em_hmm", m) for m in em | set(MEASUREMENTS["state_decoding"])
             | set(MEASUREMENTS["matrices"])}
            | {("counted_hmm", m) for m in hmm | set(MEASUREMENTS["matrices"])}
            | {("true", m) for m in hmm} | {("cell", "seconds")})


def test_every_cell_has_its_rows(reference):
    for point in TINY.cells():
        part = reference[(reference.kind == point.kind) & (reference.n_train == point.n_train)
                         & (reference.seed == point.seed)]
        part = part[(part.em_states == point.em_states).fillna(False) if point.kind == "hmm"
                    else (part.hidden == point.hidden).fillna(False)
                    & (part.cell == point.cell).fillna(False)]
        assert set(zip(part.model, part.metric, strict=True)) == expected_pairs(point), point.key
        assert len(part) == len(expected_pairs(point))
    assert len(reference) == sum(len(expected_pairs(p)) for p in TINY.cells())
    assert list(reference.columns) == list(COLUMNS)
    assert np.isfinite(reference.value).all()


def test_stored_rows_reload_bit_for_bit(tmp_path):
    out = tmp_path / "run"
    rows = run_sweep(dataclasses.replace(TINY, n_train=(10,), seed=(0,)), out,
                     executor=InlineExecutor(), progress=False)
    grid, stored = load_results(out)
    pd.testing.assert_frame_equal(stored, rows)
    pd.testing.assert_frame_equal(read_rows(out / RESULTS_FILE), rows)
    assert grid.to_dict() == json.loads((out / "config.json").read_text())


def test_one_and_two_local_workers_give_identical_rows(reference, tmp_path):
    with local_engine(2) as pool:
        rows = run_sweep(TINY, tmp_path / "two", executor=pool, progress=False)
    pd.testing.assert_frame_equal(deterministic(rows), deterministic(reference))


class InterruptAfter(InlineExecutor):
    """Runs cells in this process and raises KeyboardInterrupt at the submit after ``n`` cells."""

    def __init__(self, n: int) -> None:
        self.n, self.submitted = n, 0

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if self.submitted == self.n:
            raise KeyboardInterrupt
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_resume_after_an_interruption_gives_the_uninterrupted_table(reference, tmp_path):
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(TINY, out, executor=InterruptAfter(5), progress=False)
    assert len(list((out / CELLS_FOLDER).glob("*.csv"))) == 5
    assert not (out / RESULTS_FILE).exists()
    counting = InterruptAfter(-1)  # never interrupts; counts the cells it is given
    rows = run_sweep(TINY, out, executor=counting, resume=True, progress=False)
    assert counting.submitted == len(list(TINY.cells())) - 5
    pd.testing.assert_frame_equal(deterministic(rows), deterministic(reference))


def test_a_changed_grid_is_refused_on_resume_naming_the_difference(reference, tmp_path):
    out = tmp_path / "changed"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(TINY, out, executor=InterruptAfter(2), progress=False)
    changed = dataclasses.replace(TINY, hidden=(4, 8))
    with pytest.raises(ValueError, match=r"grid.hidden: \[4, 8\] vs \[4\]"):
        run_sweep(changed, out, executor=InlineExecutor(), resume=True, progress=False)
    with pytest.raises(ValueError, match="holds a sweep: resume it"):
        run_sweep(TINY, out, executor=InlineExecutor(), progress=False)
    assert len(list((out / CELLS_FOLDER).glob("*.csv"))) == 2  # nothing touched


def test_a_failing_cell_is_named_and_the_others_are_stored(tmp_path, monkeypatch):
    import seqmodels.sweep.run as sweep_run

    def flaky(point, settings):
        if point.key == "rnn-loaded_dice-n10-h4-gru-s1":
            raise RuntimeError("diverged")
        return run_cell(point, settings)

    monkeypatch.setattr(sweep_run, "run_cell", flaky)
    with pytest.raises(SweepError, match="rnn-loaded_dice-n10-h4-gru-s1: RuntimeError: diverged"):
        run_sweep(TINY, tmp_path / "flaky", executor=InlineExecutor(), progress=False)
    assert len(list((tmp_path / "flaky" / CELLS_FOLDER).glob("*.csv"))) == 15


def test_a_grid_too_large_for_memory_is_refused_before_any_cell(tmp_path):
    with pytest.raises(ValueError, match=r"n_train=10000000, .* and hidden=48 needs"):
        huge = dataclasses.replace(TINY, n_train=(10**7,))
        run_sweep(huge, tmp_path / "huge", executor=InlineExecutor(), progress=False)
    assert not (tmp_path / "huge").exists()


# --------------------------------------------------------------------------- analysis


def synthetic(records) -> pd.DataFrame:
    """Sweep rows from (kind, n_train, em_states, cell, seed, model, metric, value) tuples."""
    frame = pd.DataFrame(records, columns=["kind", "n_train", "em_states", "cell", "seed",
                                           "model", "metric", "value"])
    frame = frame.assign(preset="loaded_dice",
                         hidden=[4 if kind == "rnn" else None for kind in frame.kind])
    from seqmodels.sweep.cell import tidy_types
    return tidy_types(frame[list(COLUMNS)])


def test_over_seeds_is_the_mean_and_its_standard_error():
    rows = synthetic([("rnn", 10, None, "elman", s, "rnn_elman", "excess", v)
                      for s, v in enumerate([0.1, 0.4, 0.2])])
    summary = analysis.over_seeds(rows, ["n_train"]).iloc[0]
    assert summary["mean"] == pytest.approx(0.7 / 3)
    assert summary.se == pytest.approx(np.std([0.1, 0.4, 0.2], ddof=1) / np.sqrt(3))
    assert (summary.low, summary.high, summary.n) == (0.1, 0.4, 3)


def test_the_rnn_reaches_em_when_the_paired_difference_is_within_two_standard_errors():
    differences = {10: [0.4, 0.5, 0.6], 20: [0.01, 0.02, -0.01], 40: [0.05, 0.06, 0.04]}
    records = []
    for n, diffs in differences.items():
        for seed, d in enumerate(diffs):
            em = 0.1 + 0.01 * seed  # shared per seed: the pairing removes it
            records += [("hmm", n, 4, None, seed, "em_hmm", "excess", em),
                        ("hmm", n, 2, None, seed, "em_hmm", "excess", 9.0),  # not the true K
                        ("rnn", n, None, "elman", seed, "rnn_elman", "excess", em + d)]
    comparison = analysis.rnn_vs_em(synthetic(records))
    assert list(comparison.n_train) == [10, 20, 40]
    for row, diffs in zip(comparison.itertuples(), differences.values(), strict=True):
        assert row.difference == pytest.approx(np.mean(diffs))
        assert row.se == pytest.approx(np.std(diffs, ddof=1) / np.sqrt(3))
    assert list(comparison.reached) == [False, True, False]
    first = analysis.smallest_reaching(comparison).iloc[0]
    assert (first.n_train, first.stays) == (20, False)


def test_model_selection_marks_the_k_each_criterion_picks():
    # Held-out excess prefers K=4 on every seed. BIC prefers K=2 on seeds 0 and 1 and K=4,
    # by more, on seed 2: the mean picks K=4 (205 < 210), the seeds' votes say 2 to 1.
    excess = {2: [0.03, 0.03, 0.03], 4: [0.01, 0.02, 0.01], 6: [0.02, 0.025, 0.015]}
    bic = {2: [100.0, 200.0, 330.0], 4: [110.0, 205.0, 300.0], 6: [150.0, 260.0, 350.0]}
    records = [("hmm", 50, k, None, s, "em_hmm", metric, table[k][s])
               for metric, table in (("excess", excess), ("bic", bic))
               for k in (2, 4, 6) for s in range(3)]
    selection = analysis.model_selection(synthetic(records)).set_index("em_states")
    assert list(selection.index[selection.picked_by_excess]) == [4]
    assert list(selection.seeds_excess) == [0, 3, 0]
    assert list(selection.index[selection.picked_by_bic]) == [4]
    assert list(selection.seeds_bic) == [2, 1, 0]
    # BIC above each seed's lowest: K=2 is (0, 0, 30), K=4 (10, 5, 0), K=6 (50, 60, 50).
    assert list(selection.delta_bic) == pytest.approx([10.0, 5.0, 160 / 3])
    assert (selection.true_K == 4).all()


def test_a_report_of_some_cells_says_which_sections_lack_data(reference):
    text = render_markdown(TINY, reference[reference.kind == "rnn"], plots=True)
    assert "8 of 16 cells (incomplete: resume to finish)" in text
    model_selection = text.split("## Model selection")[1].split("##")[0]
    assert "No finished cell gives this section data yet." in model_selection
    assert "capacity.png" in text and "model_selection.png" not in text
    assert set(figures(reference[reference.kind == "rnn"])) == {
        FIGURES["learning"], FIGURES["capacity"], FIGURES["seconds"]}


# --------------------------------------------------------------------------- the command line


def test_cli_runs_a_sweep_and_writes_the_report(reference, tmp_path, capsys):
    out = tmp_path / "cli"
    assert load_cli().main([*TINY_FLAGS, "--out", str(out), "--workers", "1", "--quiet"]) == 0
    grid, rows = load_results(out)
    assert grid == TINY
    pd.testing.assert_frame_equal(deterministic(rows), deterministic(reference))
    text = (out / "sweep.md").read_text()
    for section in ("## Learning curves", "## When does the RNN reach the EM HMM?",
                    "## Capacity: hidden size", "## Model selection", "## Seconds per cell"):
        assert section in text
    assert "elman RNN with 4 hidden units" in text and "16 of 16 cells" in text
    for name in FIGURES.values():
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "report:" in capsys.readouterr().out


@pytest.mark.parametrize(("flags", "named"), [
    (["--preset", "nope"], "preset value 'nope'"),
    (["--cell", "elman,rnn9"], "cell value 'rnn9'"),
    (["--n-train", "0"], "n_train value 0"),
    (["--hidden", "8,0"], "hidden value 0"),
    (["--n-train", ""], "expected comma-separated integers, got ''"),
    (["--length", "0"], "length must be at least 1, got 0"),
    (["--workers", "0"], "must be a positive integer, got 0"),
    (["--workers", "2", "--dask-local", "2"], "not allowed with argument"),
])
def test_cli_refuses_bad_input_with_an_argparse_error(flags, named, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_cli().main([*flags, "--out", str(tmp_path / "bad"), "--quiet"])
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_cli_refuses_to_resume_a_changed_grid(tmp_path, capsys):
    out = tmp_path / "resume"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(TINY, out, executor=InterruptAfter(1), progress=False)
    flags = [*TINY_FLAGS, "--out", str(out), "--workers", "1", "--quiet", "--resume"]
    with pytest.raises(SystemExit):
        load_cli().main([*flags, "--epochs", "3"])
    assert "settings.epochs: 3 vs 2" in capsys.readouterr().err


def test_ctrl_c_loses_only_the_cells_in_flight_and_resume_finishes(reference, tmp_path):
    """SIGINT to the CLI on 2 local workers, then --resume: complete and equal to one run.

    More seeds than the reference, so cells are still running when the signal
    arrives; the rows of seeds 0 and 1 must equal the reference's (a cell's
    rows do not depend on the grid around it).
    """
    out = tmp_path / "sigint"
    flags = [*TINY_FLAGS[:TINY_FLAGS.index("--seed")], "--seed", "0,1,2,3,4,5",
             *TINY_FLAGS[TINY_FLAGS.index("--seed") + 2:], "--out", str(out), "--quiet"]
    process = subprocess.Popen([sys.executable, str(ROOT / "experiments/sweep.py"), *flags,
                                "--workers", "2", "--no-plots"],
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not list((out / CELLS_FOLDER).glob("*.csv")) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "--resume" in stderr
    stored = sorted((out / CELLS_FOLDER).iterdir())
    assert 1 <= len(stored) < 48
    assert all(path.suffix == ".csv" for path in stored)  # no half-written file left
    for path in stored:
        assert len(read_rows(path)) > 0
    assert load_cli().main([*flags, "--workers", "1", "--resume", "--no-plots"]) == 0
    _, rows = load_results(out)
    assert rows[["kind", "n_train", "hidden", "cell", "em_states", "seed"]].drop_duplicates() \
        .shape[0] == 48
    first_two = rows[rows.seed.isin([0, 1])]
    pd.testing.assert_frame_equal(deterministic(first_two), deterministic(reference))
