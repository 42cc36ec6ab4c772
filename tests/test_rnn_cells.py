"""Tests of every RNN cell: gradients, PyTorch's equations, sequences of different lengths,
sampling, training (stages, divergence, Ctrl-C), files and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from seqmodels.dice import loaded_dice
from seqmodels.rnn import CELLS, RNN, ElmanRNN, TrainingDivergedError, lstm
from seqmodels.rnn.output import window_workspace
from seqmodels.rnn.train import _Trainer, loss_and_gradient

ALL_CELLS = sorted(CELLS)


def _window_loss(model, symbols, targets, task, lengths=None, grads=None):
    """The training loss of one full-BPTT window (and its gradient into ``grads``)."""
    params, cell = model._params, model._cell
    n_seq, length = symbols.shape
    grads = params.zeros_like() if grads is None else grads
    ws = window_workspace(cell, length, n_seq, model.n_outputs, params.flat.dtype, True)
    mask = None if lengths is None else np.ascontiguousarray(
        (np.arange(length) < lengths[:, None]).T)
    loss, _ = loss_and_gradient(cell, params, grads, ws, np.ascontiguousarray(symbols.T),
                                np.ascontiguousarray(targets.T),
                                cell.zero_state(n_seq, params.flat.dtype), task, mask)
    return loss


def _task_data(rng, task, n_symbols=5, n_labels=3, shape=(3, 6)):
    symbols = rng.integers(0, n_symbols, shape)
    targets = symbols if task == "next" else rng.integers(0, n_labels, shape)
    return symbols, targets, (n_symbols if task == "next" else n_labels)


# ---------------------------------------------------------------------- gradients


CASES = [(cell, "tanh") for cell in ALL_CELLS] + [("elman", "linear")]


@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("task", ["next", "labels"])
@pytest.mark.parametrize(("cell", "activation"), CASES)
def test_gradient_matches_central_differences(cell, activation, task, ragged):
    """float64, every parameter: relative error (norm of the difference over the sum of the
    norms) below 1e-6; central differences with step 1e-5 err by ~1e-10 here."""
    rng = np.random.default_rng(7)
    symbols, targets, n_outputs = _task_data(rng, task)
    lengths = np.array([6, 3, 1]) if ragged else None
    model = RNN(5, 4, n_outputs, cell, activation=activation, seed=1)
    grads = model._params.zeros_like()
    _window_loss(model, symbols, targets, task, lengths, grads)

    flat, step = model._params.flat, 1e-5
    numeric = model._params.zeros_like()
    for i in range(flat.size):
        kept = flat[i]
        flat[i] = kept + step
        above = _window_loss(model, symbols, targets, task, lengths)
        flat[i] = kept - step
        below = _window_loss(model, symbols, targets, task, lengths)
        flat[i] = kept
        numeric.flat[i] = (above - below) / (2 * step)
    for name in model._params.shapes:
        exact, approx = grads[name], numeric[name]
        error = np.linalg.norm(exact - approx) / (np.linalg.norm(exact) + np.linalg.norm(approx))
        assert error < 1e-6, f"{cell} {name}: relative error {error:.2e}"


@pytest.mark.parametrize("task", ["next", "labels"])
def test_lstm_backward_in_blocks_equals_one_block(monkeypatch, task):
    """The LSTM walks a window back in blocks (a short one first in time): any block
    size gives the one-block gradient, to rounding (float64)."""
    rng = np.random.default_rng(9)
    symbols, targets, n_outputs = _task_data(rng, task, shape=(4, 11))
    model = RNN(5, 3, n_outputs, "lstm", seed=4)
    whole = model._params.zeros_like()
    _window_loss(model, symbols, targets, task, np.array([11, 7, 2, 11]), whole)
    for block in (1, 3, 10):
        per_step = 13 * 3 * 4 + 4 * 3 * model._cell.n_stacked
        monkeypatch.setattr(lstm, "BACKWARD_BLOCK_ELEMENTS", block * per_step)
        assert lstm.backward_block(11, 4, 3, model._cell.n_stacked) == block
        blocked = model._params.zeros_like()
        _window_loss(model, symbols, targets, task, np.array([11, 7, 2, 11]), blocked)
        np.testing.assert_allclose(blocked.flat, whole.flat, rtol=0, atol=1e-14)


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_padding_never_reaches_the_loss_or_the_gradient(cell):
    """What sits past a sequence's end (the padding symbol, or anything else) changes nothing."""
    rng = np.random.default_rng(8)
    lengths = np.array([7, 2, 4])
    symbols = rng.integers(0, 5, (3, 7))
    other = symbols.copy()
    past_end = np.arange(7) >= lengths[:, None]
    other[past_end] = rng.integers(0, 5, past_end.sum())
    model = RNN(5, 3, 5, cell, seed=2)
    grads, other_grads = model._params.zeros_like(), model._params.zeros_like()
    loss = _window_loss(model, symbols, symbols, "next", lengths, grads)
    other_loss = _window_loss(model, other, other, "next", lengths, other_grads)
    assert loss == pytest.approx(other_loss, abs=1e-14)
    np.testing.assert_allclose(grads.flat, other_grads.flat, atol=1e-14)
    # ... and the masked loss is the mean over the steps that exist.
    per_sequence = [model.score(row[:n]) * n for row, n in zip(symbols, lengths, strict=True)]
    assert loss == pytest.approx(sum(per_sequence) / lengths.sum(), abs=1e-12)


# ---------------------------------------------------------------------- PyTorch's equations


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _reference_step(cell, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step of PyTorch's documented equations, column-vector form, one sequence."""
    gates_x, gates_h = w_ih @ x + b_ih, w_hh @ h + b_hh
    if cell == "elman":
        return np.tanh(gates_x + gates_h), c
    if cell == "gru":
        (xr, xz, xn), (hr, hz, hn) = np.split(gates_x, 3), np.split(gates_h, 3)
        r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
        n = np.tanh(xn + r * hn)
        return (1 - z) * n + z * h, c
    i, f, g, o = np.split(gates_x + gates_h, 4)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_forward_follows_pytorch_equations_with_pytorch_weights(cell):
    """Weights in PyTorch's layout, mapped by ``torch_parameters``; states and forecasts
    equal a step-by-step reference of PyTorch's equations to 1e-12 (float64)."""
    rng = np.random.default_rng(3)
    n_symbols, n_hidden, gates = 6, 5, CELLS[cell].n_gates
    w_ih, w_hh = rng.normal(0, 0.6, (gates * n_hidden, n_symbols)), rng.normal(
        0, 0.6, (gates * n_hidden, n_hidden))
    b_ih, b_hh = rng.normal(0, 0.6, gates * n_hidden), rng.normal(0, 0.6, gates * n_hidden)
    W_output, b_output = rng.normal(0, 1, (n_hidden, n_symbols)), rng.normal(0, 1, n_symbols)
    parameters = CELLS[cell].torch_parameters(w_ih, w_hh, b_ih, b_hh)
    model = RNN.from_parameters({**parameters, "W_output": W_output, "b_output": b_output}, cell)
    symbols = rng.integers(0, n_symbols, (3, 8))

    states = np.zeros((3, 8, n_hidden))
    for b, row in enumerate(symbols):
        h = c = np.zeros(n_hidden)
        for t, symbol in enumerate(row):
            h, c = _reference_step(cell, np.eye(n_symbols)[symbol], h, c, w_ih, w_hh, b_ih, b_hh)
            states[b, t] = h
    np.testing.assert_allclose(model.hidden_states(symbols), states, rtol=0, atol=1e-12)
    read = np.concatenate([np.zeros((3, 1, n_hidden)), states[:, :-1]], axis=1)
    logits = read @ W_output + b_output
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(model.predictive(symbols), expected, rtol=0, atol=1e-12)


def test_initialization_is_pytorch_s_with_the_lstm_forget_bias_at_one():
    n_hidden = 400
    bound = 1 / np.sqrt(n_hidden)
    for cell in ALL_CELLS:
        parameters = RNN(3, n_hidden, 3, cell, seed=0).parameters
        assert not np.any(parameters["b_output"])
        for name, value in parameters.items():
            if cell == "lstm" and name == "b":
                forget = value[n_hidden: 2 * n_hidden]
                np.testing.assert_array_equal(forget, 1.0)
                value = np.delete(value, np.s_[n_hidden: 2 * n_hidden])
            if name != "b_output":
                assert np.abs(value).max() <= bound
                # Uniform on [-bound, bound]: Kolmogorov-Smirnov at the 0.1% level.
                assert stats.kstest(value.ravel(), "uniform", (-bound, 2 * bound)).pvalue > 1e-3


# ---------------------------------------------------------------------- sequences of any length


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_sequences_of_different_lengths_give_each_sequence_alone(cell):
    rng = np.random.default_rng(4)
    rows = [rng.integers(0, 6, n) for n in (9, 4, 1, 7)]
    model = RNN(6, 5, 6, cell, seed=3)
    proba, states = model.predictive(rows), model.hidden_states(rows)
    assert proba.shape == (4, 9, 6) and states.shape == (4, 9, 5)
    for b, row in enumerate(rows):
        n = row.size
        np.testing.assert_allclose(proba[b, :n], model.predictive(row), atol=1e-14)
        np.testing.assert_allclose(states[b, :n], model.hidden_states(row), atol=1e-14)
        assert np.isnan(proba[b, n:]).all() and np.isnan(states[b, n:]).all()
    # hmmlearn's layout: the same sequences concatenated, with their lengths.
    flat, lengths = np.concatenate(rows), [row.size for row in rows]
    np.testing.assert_array_equal(model.predictive(flat[:, None], lengths=lengths), proba)
    np.testing.assert_array_equal(model.hidden_states(flat, lengths), states)
    expected = sum(model.score(row) * row.size for row in rows) / flat.size
    assert model.score(rows) == pytest.approx(expected, abs=1e-12)
    assert model.score(flat, lengths=lengths) == model.score(rows)


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_training_on_sequences_of_different_lengths(cell):
    sample = loaded_dice().sample(30, 80, seed=5)
    rows = [row[: 20 + 2 * b] for b, row in enumerate(sample.symbols)]
    labels = [row[: 20 + 2 * b] for b, row in enumerate(sample.dice)]
    model = RNN(8, 4, 8, cell, seed=0)
    before = model.score(rows)
    model.fit(rows, epochs=3, batch_size=8, bptt=16, validation=0.2, seed=0, progress=False)
    assert model.score(rows) < before
    assert model.score(rows[:3]) == pytest.approx(
        sum(model.score(r) * r.size for r in rows[:3]) / sum(r.size for r in rows[:3]))
    decoder = RNN(8, 4, 4, cell, seed=0).fit(rows, labels, epochs=2, batch_size=8,
                                             progress=False, seed=0)
    assert decoder.label_proba(rows).shape == (30, 78, 4)
    with pytest.raises(ValueError, match="sequence 2 has 23 labels for 24 symbols"):
        decoder.score(rows, [*labels[:2], labels[2][:-1], *labels[3:]])


# ---------------------------------------------------------------------- sampling


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
@pytest.mark.parametrize("cell", ALL_CELLS)
def test_sample_follows_predictive_at_its_temperature(cell, temperature):
    """Counts of each symbol minus the summed forecasts are martingale sums.

    With the model's own forecasts ``q_bt`` on its samples (``predictive`` sharpened or
    flattened: ``q ~ p**(1/temperature)``), ``sum(1[x_bt = v] - q_bt(v))`` has mean 0 and
    variance ``sum q_bt(v)(1 - q_bt(v))`` if ``sample`` draws from ``q``; each symbol's
    z-score is held to a Bonferroni normal bound at the 0.1% level.
    """
    model = RNN(4, 6, 4, cell, seed=5)
    model._params["W_output"][...] *= 15.0  # sharper, state-dependent forecasts
    samples = model.sample(3000, 4, seed=11, temperature=temperature)
    assert samples.shape == (3000, 4) and samples.dtype == np.int64
    np.testing.assert_array_equal(samples, model.sample(3000, 4, seed=11,
                                                        temperature=temperature))
    proba = model.predictive(samples) ** (1 / temperature)
    proba /= proba.sum(-1, keepdims=True)
    observed = np.eye(4)[samples].sum(axis=(0, 1))
    expected = proba.sum(axis=(0, 1))
    spread = np.sqrt((proba * (1 - proba)).sum(axis=(0, 1)))
    bound = stats.norm.ppf(1 - 0.001 / (2 * 4))
    assert np.all(np.abs(observed - expected) / spread < bound), (observed, expected)
    # The forecasts must differ between steps for the check to test the time alignment.
    assert np.ptp(proba[:, 1:], axis=(0, 1)).max() > 0.2


def test_step_continues_the_window():
    """Streaming: one step at a time from a window's final state equals the window."""
    rng = np.random.default_rng(6)
    symbols = rng.integers(0, 5, (2, 6))
    for cell in ALL_CELLS:
        model = RNN(5, 3, 5, cell, seed=1)
        params, cell_ = model._params, model._cell
        ws = cell_.workspace(1, 2, params.flat.dtype)
        cell_.set_state(ws, cell_.zero_state(2, params.flat.dtype))
        for t in range(6):
            cell_.read_symbols(params, symbols[None, :, t], ws)
            h = cell_.step(params, ws)
            np.testing.assert_allclose(h, model.hidden_states(symbols)[:, t], atol=1e-14)


# ---------------------------------------------------------------------- training


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gated_cells_learn_towards_the_bayes_floor(cell):
    """Trained on 100 x 300 faces, held-out loss within 0.02 nats of the true filter.

    For scale: the floor is ~1.87 nats/symbol and the best memoryless forecast ~1.90,
    so the net must learn much of what the hidden die tells about the next face.
    """
    spec = loaded_dice()
    train = spec.sample(100, 300, seed=10).symbols
    test = spec.sample(50, 500, seed=2).symbols
    floor = -spec.to_hmm().log_likelihood(test).sum() / test.size
    model = RNN(8, 8, 8, cell, seed=0, dtype=np.float32).fit(
        train, epochs=12, batch_size=10, lr=0.02, bptt=100, seed=0, progress=False)
    gap = model.score(test) - floor
    assert 0 <= gap < 0.02, f"{gap:.4f} nats/symbol above the floor {floor:.4f}"


def test_a_two_stage_schedule_drops_the_rate_at_a_plateau():
    symbols = loaded_dice().sample(30, 80, seed=4).symbols
    model = RNN(8, 6, 8, "gru", seed=0).fit(symbols, epochs=14, batch_size=5, lr=0.2,
                                            schedule=(0.01,), patience=2, validation=0.2,
                                            seed=9, progress=False)
    history = model.history
    assert set(history.lr) == {0.2, 0.01}, history
    first_low = int(np.argmax(history.lr.to_numpy() == 0.01))
    # The drop came after `patience` epochs without a better validation loss ...
    best_before = min(history.val_loss[: first_low - 2].min(), np.inf)
    assert history.val_loss[first_low - 2: first_low].min() >= best_before
    assert (history.lr[first_low:] == 0.01).all()
    # ... and the model keeps the best parameters seen over both stages.
    assert model.score(symbols[model.validation_rows]) == pytest.approx(
        history.val_loss.min(), abs=1e-12)


def test_ctrl_c_in_fit_keeps_the_best_parameters_and_finished_epochs(monkeypatch):
    symbols = loaded_dice().sample(20, 60, seed=3).symbols
    run_epoch = _Trainer.run_epoch
    calls = []

    def interrupted_third_epoch(self, data, rng):
        calls.append(1)
        if len(calls) == 3:
            self.params.flat[...] += 1.0  # a half-done epoch leaves parameters off the path
            raise KeyboardInterrupt
        return run_epoch(self, data, rng)

    monkeypatch.setattr(_Trainer, "run_epoch", interrupted_third_epoch)
    model = RNN(8, 5, 8, "lstm", seed=0)
    with pytest.raises(KeyboardInterrupt):
        model.fit(symbols, epochs=10, batch_size=5, validation=0.2, seed=1, progress=False)
    assert list(model.history.epoch) == [1, 2]
    best = min(model.history.val_loss.min(), np.inf)
    assert model.score(symbols[model.validation_rows]) <= best + 1e-12


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("cell", ALL_CELLS)
def test_non_finite_loss_raises_and_keeps_the_best(cell):
    symbols = loaded_dice().sample(8, 40, seed=7).symbols
    model = RNN(8, 4, 8, cell, seed=0)
    start = model._params.flat.copy()
    model._params["W_output"][0, 0] = 1e308  # the softmax overflows to NaN
    start[...] = model._params.flat
    with pytest.raises(TrainingDivergedError, match=r"nan|inf"):
        model.fit(symbols, epochs=2, validation=0, progress=False)
    np.testing.assert_array_equal(model._params.flat, start)


# ---------------------------------------------------------------------- files


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", ALL_CELLS)
def test_save_load_round_trip(tmp_path, cell, dtype):
    sample = loaded_dice().sample(10, 30, seed=9)
    model = RNN(8, 5, 8, cell, seed=1, dtype=dtype).fit(
        sample.symbols, epochs=2, batch_size=5, seed=0, progress=False)
    loaded = RNN.load(model.save(tmp_path / "rnn"))
    assert repr(loaded) == repr(model) and loaded.cell == cell
    for name, value in model.parameters.items():
        np.testing.assert_array_equal(loaded.parameters[name], value)
    np.testing.assert_array_equal(loaded.predictive(sample.symbols),
                                  model.predictive(sample.symbols))
    np.testing.assert_array_equal(loaded.history.to_numpy(), model.history.to_numpy())
    np.testing.assert_array_equal(loaded.validation_rows, model.validation_rows)
    if cell != "elman":
        with pytest.raises(ValueError, match=f"holds a '{cell}' RNN, not an ElmanRNN"):
            ElmanRNN.load(tmp_path / "rnn.npz")


# ---------------------------------------------------------------------- bad input


def test_bad_settings_raise_value_errors_naming_the_value():
    with pytest.raises(ValueError, match=r"cell must be one of \('elman', 'gru', 'lstm'\), "
                                         r"got 'transformer'"):
        RNN(8, 4, 8, "transformer")
    with pytest.raises(ValueError, match="n_hidden must be at least 1, got 0"):
        RNN(8, 0, 8, "gru")
    with pytest.raises(ValueError, match="activation must be one of \\('tanh',\\) for the "
                                         "'lstm' cell, got 'linear'"):
        RNN(8, 4, 8, "lstm", activation="linear")
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got 'banana'"):
        RNN(8, 4, 8, "gru", dtype="banana")
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got None"):
        RNN(8, 4, 8, dtype=None)
    with pytest.raises(ValueError, match=r"n_hidden=1000000 .* needs .* of memory"):
        RNN(8, 10**6, 8)
    model, symbols = RNN(8, 3, 8, "lstm", seed=0), [[0, 1, 2, 3]]
    with pytest.raises(ValueError, match=r"schedule\[1\] must be a positive number, got -0.1"):
        model.fit(symbols, schedule=(0.01, -0.1), progress=False)
    with pytest.raises(ValueError, match=r"schedule\[0\] must be a positive number, got 0"):
        model.fit(symbols, schedule=[0], progress=False)
    with pytest.raises(ValueError, match="schedule must be a sequence"):
        model.fit(symbols, schedule=0.002, progress=False)
    with pytest.raises(ValueError, match="patience=None never does"):
        model.fit(symbols, schedule=(0.002,), patience=None, progress=False)
    with pytest.raises(ValueError, match="temperature must be a positive number, got 0"):
        model.sample(2, 3, temperature=0)
    with pytest.raises(ValueError, match="use label_proba"):
        RNN(8, 3, 2, "gru", seed=0).fit(symbols, [[0, 1, 1, 0]], validation=0,
                                        progress=False).predictive(symbols)
    with pytest.raises(ValueError, match="use predictive"):
        model.label_proba(symbols)
    with pytest.raises(ValueError, match="missing \\['b_state'\\]"):
        RNN.from_parameters({k: v for k, v in RNN(3, 2, 3, "gru").parameters.items()
                             if k != "b_state"}, "gru")
