"""Tests of seqmodels.rnn: the worked example, gradients, batching, learning, files, bad input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from seqmodels._io import save_npz
from seqmodels.dice import loaded_dice
from seqmodels.rnn import ElmanRNN, TrainingDivergedError
from seqmodels.rnn.train import split_validation

ROOT = Path(__file__).resolve().parents[1]
PARAM_NAMES = ("W_state", "W_input", "b", "W_output", "b_output")


def _seed_example():
    spec = importlib.util.spec_from_file_location(
        "seed_example", ROOT / "experiments" / "seed_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The issue's numbers, per step: before activation, state, output.
WORKED_EXAMPLE = {
    "tanh": [([0.6, 0.5], [0.53704957, 0.46211716], [1.56128388]),
             ([1.2923401, 1.39225678], [0.85973818, 0.88366641], [2.72707101])],
    "linear": [([0.6, 0.5], [0.6, 0.5], [1.7]),
               ([1.31, 1.42], [1.31, 1.42], [4.25])],
}


@pytest.mark.parametrize("activation", ["tanh", "linear"])
def test_worked_example_reproduces_the_printed_numbers(activation):
    result = _seed_example().worked_example(activation)
    for t, (pre, state, output) in enumerate(WORKED_EXAMPLE[activation]):
        np.testing.assert_allclose(result.preactivations[t], pre, rtol=0, atol=1e-8)
        np.testing.assert_allclose(result.states[t], state, rtol=0, atol=1e-8)
        np.testing.assert_allclose(result.outputs[t], output, rtol=0, atol=1e-8)


def test_seed_example_script_prints_both_activations(capsys):
    _seed_example().main()
    printed = capsys.readouterr().out
    assert "[0.53704957 0.46211716]" in printed and "[2.72707101]" in printed
    assert "[1.31 1.42]" in printed and "[4.25]" in printed


# ---------------------------------------------------------------------- alignment, batching


def test_batch_gives_the_outputs_of_its_sequences_one_by_one():
    rng = np.random.default_rng(3)
    model = ElmanRNN(6, 5, 6, seed=2)
    symbols = rng.integers(0, 6, (4, 9))
    real = rng.normal(size=(4, 9, 6))
    batch, batch_real = model.forward(symbols), model.forward(real)
    proba = model.predictive(symbols)
    for i in range(symbols.shape[0]):
        single, single_real = model.forward(symbols[i]), model.forward(real[i])
        for name in ("preactivations", "states", "outputs"):
            np.testing.assert_allclose(getattr(single, name), getattr(batch, name)[i], atol=1e-13)
            np.testing.assert_allclose(getattr(single_real, name), getattr(batch_real, name)[i],
                                       atol=1e-13)
        assert single.states.shape == (9, 5) and single_real.outputs.shape == (9, 6)
        assert model.predictive(symbols[i]).shape == proba[i].shape == (9, 6)
        assert model.hidden_states(symbols[i]).shape == (9, 5)
        np.testing.assert_allclose(model.predictive(symbols[i]), proba[i], atol=1e-13)


def test_one_hot_symbols_equal_real_one_hot_inputs():
    model = ElmanRNN(4, 3, 2, seed=0)
    symbols = np.array([[0, 3, 1, 1, 2]])
    by_symbol, by_vector = model.forward(symbols), model.forward(np.eye(4)[symbols])
    np.testing.assert_allclose(by_symbol.outputs, by_vector.outputs, atol=1e-14)


def _softmax(logits):
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def test_time_alignment_of_both_tasks():
    model = ElmanRNN(5, 4, 5, seed=4)
    symbols = np.array([[1, 4, 0, 2, 2, 3]])
    states = model.hidden_states(symbols)
    np.testing.assert_allclose(states, model.forward(symbols).states)
    # "next": step 0 from the zero initial state, step t from the state after x_{t-1}.
    read = np.concatenate([np.zeros((1, 1, 4)), states[:, :-1]], axis=1)
    expected = _softmax(read @ model.W_output + model.b_output)
    np.testing.assert_allclose(model.predictive(symbols), expected, atol=1e-14)
    # "labels": step t from the state after x_t.
    model.task = "labels"
    expected = _softmax(states @ model.W_output + model.b_output)
    np.testing.assert_allclose(model.label_proba(symbols), expected, atol=1e-14)


# ---------------------------------------------------------------------- learning


def test_learning_reaches_the_bayes_floor():
    """Trained on 200 x 300 faces, held-out loss within 0.01 nats of the true filter.

    For scale: the floor is ~1.871 nats/symbol here and the best memoryless
    forecast (face frequencies) ~1.900, so the net must learn most of what the
    hidden die tells about the next face.
    """
    spec = loaded_dice()
    train = spec.sample(200, 300, seed=10).symbols
    test = spec.sample(100, 500, seed=2).symbols
    floor = -spec.to_hmm().log_likelihood(test).sum() / test.size
    model = ElmanRNN(8, 8, 8, seed=0).fit(train, epochs=15, batch_size=20, lr=0.02, seed=0,
                                          progress=False)
    gap = model.score(test) - floor
    assert 0 <= gap < 0.01, f"{gap:.4f} nats/symbol above the floor {floor:.4f}"


def test_fit_with_labels_decodes_better_than_the_label_frequencies():
    spec = loaded_dice()
    sample = spec.sample(60, 200, seed=3)
    model = ElmanRNN(8, 8, 4, seed=0).fit(sample.symbols, sample.dice, epochs=8, lr=0.02,
                                          batch_size=10, seed=0, progress=False)
    assert model.task == "labels"
    frequencies = np.bincount(sample.dice.ravel(), minlength=4) / sample.dice.size
    baseline = -np.log(frequencies[sample.dice]).mean()
    assert model.score(sample.symbols, sample.dice) < baseline - 0.1
    assert model.label_proba(sample.symbols).shape == (60, 200, 4)


def test_same_seed_gives_the_same_trained_parameters():
    symbols = loaded_dice().sample(20, 60, seed=1).symbols

    def trained(fit_seed):
        return ElmanRNN(8, 5, 8, seed=3).fit(symbols, epochs=3, batch_size=6, seed=fit_seed,
                                             progress=False)

    first, second, other = trained(0), trained(0), trained(1)
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert not np.array_equal(first.W_state, other.W_state)
    np.testing.assert_array_equal(first.history.train_loss, second.history.train_loss)


def test_early_stopping_keeps_the_best_validation_parameters():
    symbols = loaded_dice().sample(30, 80, seed=4).symbols
    model = ElmanRNN(8, 6, 8, seed=0).fit(symbols, epochs=12, batch_size=5, lr=0.2,
                                          validation=0.2, patience=3, seed=9, progress=False)
    _, val_rows = split_validation(30, 0.2, np.random.default_rng(9))
    np.testing.assert_array_equal(model.validation_rows, val_rows)
    assert list(model.history.columns) == ["epoch", "train_loss", "val_loss", "seconds", "lr"]
    assert model.score(symbols[model.validation_rows]) == pytest.approx(
        model.history.val_loss.min(), abs=1e-12)


def test_truncated_bptt_of_the_whole_length_is_full_bptt():
    symbols = loaded_dice().sample(12, 40, seed=5).symbols

    def trained(bptt):
        return ElmanRNN(8, 4, 8, seed=1).fit(symbols, epochs=2, batch_size=4, bptt=bptt,
                                             validation=0, seed=0, progress=False)

    np.testing.assert_array_equal(trained(None).W_state, trained(40).W_state)
    short = trained(10)
    assert not np.array_equal(short.W_state, trained(None).W_state)
    assert short.history.train_loss.iloc[-1] < np.log(8)


def test_float32_trains_and_agrees_with_float64():
    symbols = loaded_dice().sample(10, 50, seed=6).symbols
    model = ElmanRNN(8, 6, 8, seed=2, dtype=np.float32).fit(symbols, epochs=2, batch_size=5,
                                                           seed=0, progress=False)
    assert model.W_state.dtype == np.float32
    proba = model.predictive(symbols)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=-1), 1.0, atol=1e-5)
    as64 = ElmanRNN.from_params(*(getattr(model, name) for name in PARAM_NAMES))
    np.testing.assert_allclose(proba, as64.predictive(symbols), atol=1e-5)


def test_divergence_raises_and_keeps_the_best_parameters():
    symbols = loaded_dice().sample(8, 60, seed=7).symbols
    model = ElmanRNN(8, 4, 8, activation="linear", seed=0)
    initial = model._params.flat.copy()
    with pytest.raises(TrainingDivergedError, match="diverged") as caught:
        model.fit(symbols, epochs=3, lr=1e3, clip=None, batch_size=2, validation=0,
                  progress=False)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, RuntimeError)
    np.testing.assert_array_equal(model._params.flat, initial)
    assert len(model.history) == 0


def test_the_issue_runaway_learning_rate_raises_and_restores_the_start():
    """Issue 9: lr=1e6 ran from loss 2.07 to 6e6 in silence; the start must count as a candidate."""
    symbols = loaded_dice().sample(40, 100, seed=0).symbols
    model = ElmanRNN(8, 16, 8, seed=0)
    start = model._params.flat.copy()
    with pytest.raises(TrainingDivergedError, match="grew past") as caught:
        model.fit(symbols, lr=1e6, epochs=5, progress=False, seed=0)
    np.testing.assert_array_equal(model._params.flat, start)
    assert len(caught.value.history) == len(model.history) == 0


def test_progress_false_is_silent(capsys):
    symbols = loaded_dice().sample(4, 20, seed=8).symbols
    ElmanRNN(8, 3, 8, seed=0).fit(symbols, epochs=2, validation=0, progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ---------------------------------------------------------------------- files


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_save_load_round_trip(tmp_path, dtype):
    sample = loaded_dice().sample(10, 30, seed=9)
    model = ElmanRNN(8, 5, 4, seed=1, dtype=dtype).fit(
        sample.symbols, sample.dice, epochs=2, batch_size=5, seed=0, progress=False)
    path = model.save(tmp_path / "rnn")
    loaded = ElmanRNN.load(path)
    assert repr(loaded) == repr(model)
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    np.testing.assert_array_equal(loaded.label_proba(sample.symbols),
                                  model.label_proba(sample.symbols))
    np.testing.assert_array_equal(loaded.history.to_numpy(), model.history.to_numpy())
    assert model.validation_rows.size == 1  # validation=0.1 of 10 sequences
    np.testing.assert_array_equal(loaded.validation_rows, model.validation_rows)


def test_files_saved_before_cells_existed_still_load(tmp_path):
    """The format ElmanRNN.save wrote before this change: kind 'ElmanRNN', no cell, no lr."""
    model = ElmanRNN(4, 3, 4, seed=2)
    arrays = {name: getattr(model, name) for name in PARAM_NAMES}
    arrays["validation_rows"] = np.array([1])
    history = {"epoch": [1, 2], "train_loss": [2.0, 1.9], "val_loss": [2.1, 2.0],
               "seconds": [0.1, 0.1]}
    path = save_npz(tmp_path / "old", "ElmanRNN", arrays, {
        "activation": "linear", "output": "softmax", "dtype": "float64", "task": "next",
        "history": history})
    loaded = ElmanRNN.load(path)
    assert loaded.activation == "linear" and loaded.cell == "elman"
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(getattr(loaded, name), arrays[name])
    np.testing.assert_array_equal(loaded.history.train_loss, [2.0, 1.9])
    assert loaded.history.lr.isna().all()
    np.testing.assert_array_equal(loaded.validation_rows, [1])


# ---------------------------------------------------------------------- bad input


def test_bad_input_raises_value_errors_naming_the_problem(tmp_path):
    model = ElmanRNN(6, 3, 6, seed=0)
    with pytest.raises(ValueError, match=r"symbol 6, outside the allowed range \[0, 6\)"):
        model.predictive([[0, 6, 1]])
    with pytest.raises(ValueError, match="symbol -1"):
        model.fit([[0, -1, 1]], progress=False)
    with pytest.raises(ValueError, match="labels must have the shape"):
        model.fit([[0, 1, 2]], labels=[[0, 1]], progress=False)
    labeled = ElmanRNN(6, 3, 2, seed=0)
    with pytest.raises(ValueError, match=r"labels has symbol 2"):
        labeled.fit([[0, 1, 2]], labels=[[0, 1, 2]], progress=False)
    with pytest.raises(ValueError, match="NaN or inf"):
        model.forward(np.full((2, 6), np.nan))
    with pytest.raises(ValueError, match="shape"):
        model.forward(np.zeros((2, 3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="shape"):
        model.forward(np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="state0"):
        model.forward([0, 1], state0=np.zeros(4))
    with pytest.raises(ValueError, match="W_state must have shape"):
        ElmanRNN.from_params(np.eye(2), np.ones((1, 3)), np.zeros(3), np.ones((3, 1)), 0.0)
    with pytest.raises(ValueError, match="activation"):
        ElmanRNN(2, 2, 2, activation="relu")
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got 'banana'"):
        ElmanRNN(8, 4, 8, dtype="banana")
    with pytest.raises(ValueError, match="n_hidden must be at least 1, got 0"):
        ElmanRNN(8, 0, 8)
    with pytest.raises(ValueError, match="labels"):
        model.score([[0, 1]], labels=[[0, 1]])
    with pytest.raises(ValueError, match="validation"):
        model.fit([[0, 1]], validation=1.0, progress=False)


def test_loading_a_file_that_is_not_a_saved_rnn_fails_clearly(tmp_path):
    sample_path = loaded_dice().sample(2, 5, seed=0).save(tmp_path / "sample")
    with pytest.raises(ValueError, match=r"not a RNN"):
        ElmanRNN.load(sample_path)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"not an \.npz"):
        ElmanRNN.load(junk)


def test_a_refused_seed_raises_value_error_and_leaves_the_model_unchanged():
    with pytest.raises(ValueError, match="seed must be"):
        ElmanRNN(4, 3, 4, seed="abc")
    labeled = ElmanRNN(4, 3, 2, seed=0)
    with pytest.raises(ValueError, match="seed must be"):
        labeled.fit([[0, 1, 2, 3]], labels=[[0, 1, 0, 1]], validation=0, seed=1.5,
                    progress=False)
    assert labeled.task == "next"  # not switched to "labels" by the failed call
    with pytest.raises(ValueError, match="seed must be"):
        ElmanRNN(4, 3, 4, seed=0).sample(2, 3, seed=-1)
