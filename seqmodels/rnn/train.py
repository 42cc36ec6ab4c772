"""Training the Elman cell: the loss and its gradient by BPTT, Adam, clipping, the epoch loop.

The loss is the mean categorical log-loss (nats per symbol) of the softmax
outputs against their targets:

* ``task="next"``: output ``t`` reads the state after ``x_0..x_{t-1}`` (the
  initial state for ``t = 0``) and its target is ``x_t``;
* ``task="labels"``: output ``t`` reads the state after ``x_0..x_t`` and its
  target is the label ``z_t``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from seqmodels.rnn.cells import (
    FlatParameters,
    Workspace,
    backprop_through_time,
    fill_onehot,
    forward_symbols,
    linear_outputs,
    log_proba,
    log_softmax_columns,
    mean_log_loss,
    output_states,
)

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "seconds")


class TrainingDivergedError(ValueError, RuntimeError):
    """The loss or the gradient became NaN or inf during :meth:`ElmanRNN.fit`.

    A ``ValueError`` and a ``RuntimeError``, so either ``except`` catches it.
    When it is raised the model holds the best parameters seen before the
    divergence (the initial ones if no epoch finished); the exception's
    ``history`` attribute and the model's ``history`` list the completed epochs.
    """

    history: pd.DataFrame


def loss_and_gradient(params: FlatParameters, grads: FlatParameters, ws: Workspace,
                      inputs_tm: np.ndarray, targets_tm: np.ndarray, state0: np.ndarray,
                      task: str, activation: str) -> float:
    """Mean log-loss of one window and its gradient with respect to every parameter.

    Parameters
    ----------
    params : FlatParameters
        The current parameters.
    grads : FlatParameters
        Filled with dLoss/dparameter (same layout as ``params``).
    ws : Workspace
        Buffers for this window's ``(L, B)``.
    inputs_tm : numpy.ndarray of int, shape (L, B)
        Input symbols, time-major.
    targets_tm : numpy.ndarray of int, shape (L, B)
        The symbols themselves for ``"next"``, the labels for ``"labels"``.
    state0 : numpy.ndarray, shape (B, H)
        Initial state, treated as a constant.
    task : {"next", "labels"}
    activation : {"tanh", "linear"}

    Returns
    -------
    float
        The mean loss in nats per step. The softmax gradient is
        ``dL/dlogits = (softmax(logits) - onehot(target)) / (L * B)``; everything
        but the recurrence is one matrix product over all ``L * B`` steps.
    """
    n_steps = inputs_tm.size
    n_hidden = state0.shape[1]
    forward_symbols(params, inputs_tm, state0, activation, ws)
    out_flat = output_states(ws, task)
    linear_outputs(out_flat, params, ws.logits)
    logp = log_softmax_columns(ws.logits)
    inputs_onehot = fill_onehot(inputs_tm, ws.inputs_onehot)
    targets_onehot = (inputs_onehot if task == "next"
                      else fill_onehot(targets_tm, ws.targets_onehot))
    loss = -float(np.vdot(logp, targets_onehot)) / n_steps

    d_logits = np.exp(logp, out=logp)
    d_logits -= targets_onehot
    d_logits *= 1.0 / n_steps
    np.matmul(out_flat.T, d_logits.T, out=grads["W_output"])
    np.sum(d_logits, axis=1, out=grads["b_output"])
    if task == "next":
        direct, unused = ws.grad_states[:-1], ws.grad_states[-1]
    else:
        direct, unused = ws.grad_states[1:], ws.grad_states[0]
    np.matmul(d_logits.T, params["W_output"].T, out=direct.reshape(n_steps, n_hidden))
    unused.fill(0.0)

    grad_pre = backprop_through_time(ws, params["W_state"], activation).reshape(n_steps, n_hidden)
    np.matmul(ws.states[:-1].reshape(n_steps, n_hidden).T, grad_pre, out=grads["W_state"])
    np.matmul(inputs_onehot, grad_pre, out=grads["W_input"])
    np.sum(grad_pre, axis=0, out=grads["b"])
    return loss


def clip_gradient_norm(grad: np.ndarray, max_norm: float | None) -> float:
    """Scale ``grad`` in place to Euclidean norm at most ``max_norm``; return the norm before."""
    norm = float(np.sqrt(np.vdot(grad, grad)))
    if max_norm is not None and norm > max_norm:
        grad *= max_norm / norm
    return norm


class Adam:
    """Adam (Kingma & Ba 2015) on a flat parameter vector, updated in place.

    ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with bias-corrected first and
    second moments, written as PyTorch does, in the parameters' dtype.
    """

    def __init__(self, params: np.ndarray, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)
        self.scratch = np.empty_like(params)
        self.steps = 0

    def step(self, grad: np.ndarray) -> None:
        """One update from the gradient ``grad`` (same shape as the parameters)."""
        beta1, beta2 = self.betas
        m, v, scratch = self.m, self.v, self.scratch
        self.steps += 1
        m *= beta1
        np.multiply(grad, 1.0 - beta1, out=scratch)
        m += scratch
        v *= beta2
        np.multiply(grad, grad, out=scratch)
        scratch *= 1.0 - beta2
        v += scratch
        correction2 = np.sqrt(1.0 - beta2**self.steps)
        step_size = self.lr * correction2 / (1.0 - beta1**self.steps)
        np.sqrt(v, out=scratch)
        scratch += self.eps * correction2
        np.divide(m, scratch, out=scratch)
        scratch *= step_size
        self.params -= scratch


@dataclass(frozen=True)
class FitSettings:
    """The knobs of :meth:`ElmanRNN.fit`, validated there."""

    epochs: int
    batch_size: int
    lr: float
    clip: float | None
    bptt: int | None
    validation: float
    patience: int | None
    progress: bool


def split_validation(n_sequences: int, fraction: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random whole-sequence split: (train rows, validation rows); at least one of each if used."""
    if fraction == 0.0:
        return np.arange(n_sequences), np.arange(0)
    n_val = max(1, round(fraction * n_sequences))
    if n_val >= n_sequences:
        raise ValueError(
            f"validation={fraction} of {n_sequences} sequence(s) leaves no training sequence; "
            "pass more sequences or validation=0"
        )
    order = rng.permutation(n_sequences)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class _Trainer:
    """One training run: buffers per window shape, Adam state, the best parameters so far."""

    def __init__(self, params: FlatParameters, activation: str, task: str,
                 settings: FitSettings) -> None:
        self.params, self.activation, self.task, self.settings = params, activation, task, settings
        self.grads = params.zeros_like()
        self.adam = Adam(params.flat, settings.lr)
        self.workspaces: dict[tuple[int, int], Workspace] = {}
        self.best_flat = params.flat.copy()
        self.best_loss = np.inf

    def workspace(self, length: int, batch: int) -> Workspace:
        key = (length, batch)
        if key not in self.workspaces:
            self.workspaces[key] = Workspace(length, batch, self.params.shapes,
                                             self.params.flat.dtype)
        return self.workspaces[key]

    def train_batch(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        """Adam steps on one batch of whole sequences (B, T); returns the summed step loss.

        With ``bptt=k`` the sequences are cut into windows of ``k`` steps; the
        state carries over between windows but gradients stop at their borders,
        and every window is one update.
        """
        n_seq, length = inputs.shape
        window = self.settings.bptt or length
        state = np.zeros((n_seq, self.params.shapes["W_state"][0]), self.params.flat.dtype)
        inputs_tm, targets_tm = np.ascontiguousarray(inputs.T), np.ascontiguousarray(targets.T)
        total = 0.0
        for start in range(0, length, window):
            part = slice(start, start + window)
            ws = self.workspace(inputs_tm[part].shape[0], n_seq)
            loss = loss_and_gradient(self.params, self.grads, ws, inputs_tm[part],
                                     targets_tm[part], state, self.task, self.activation)
            norm = clip_gradient_norm(self.grads.flat, self.settings.clip)
            if not (np.isfinite(loss) and np.isfinite(norm)):
                raise TrainingDivergedError(
                    f"loss {loss} with gradient norm {norm}: training diverged "
                    f"(try a smaller lr, clip or bptt)"
                )
            self.adam.step(self.grads.flat)
            state = ws.states[-1].copy()
            total += loss * inputs_tm[part].size
        return total

    def run_epoch(self, inputs: np.ndarray, targets: np.ndarray,
                  rng: np.random.Generator) -> float:
        """One pass over the training sequences in a random order; mean loss per symbol."""
        order = rng.permutation(inputs.shape[0])
        total = 0.0
        for start in range(0, order.size, self.settings.batch_size):
            rows = np.sort(order[start: start + self.settings.batch_size])
            total += self.train_batch(inputs[rows], targets[rows])
        return total / inputs.size

    def validation_loss(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        if inputs.size == 0:
            return np.nan
        return mean_log_loss(log_proba(self.params, self.activation, self.task, inputs), targets)

    def keep_if_best(self, loss: float) -> bool:
        """Snapshot the parameters when ``loss`` beats the best so far; True if it did."""
        if loss < self.best_loss:
            self.best_loss = loss
            self.best_flat[...] = self.params.flat
            return True
        return False

    def restore_best(self) -> None:
        self.params.flat[...] = self.best_flat


def train(params: FlatParameters, activation: str, task: str, symbols: np.ndarray,
          targets: np.ndarray, settings: FitSettings, val_rows: np.ndarray,
          rng: np.random.Generator) -> pd.DataFrame:
    """Fit ``params`` in place; return the history (epoch, train_loss, val_loss, seconds).

    ``val_rows`` are the sequences held out for validation (from
    :func:`split_validation`), the rest are trained on. Early stopping watches
    the validation loss (the training loss when there are no validation rows):
    after ``patience`` epochs without a new best, training stops. In every case
    the best parameters seen are restored at the end.
    """
    train_rows = np.setdiff1d(np.arange(symbols.shape[0]), val_rows)
    train_inputs, train_targets = symbols[train_rows], targets[train_rows]
    val_inputs, val_targets = symbols[val_rows], targets[val_rows]
    trainer = _Trainer(params, activation, task, settings)
    records: list[tuple[int, float, float, float]] = []
    since_best = 0
    bar = tqdm(range(1, settings.epochs + 1), desc="ElmanRNN.fit", unit="epoch",
               disable=not settings.progress)
    try:
        for epoch in bar:
            began = time.perf_counter()
            train_loss = trainer.run_epoch(train_inputs, train_targets, rng)
            val_loss = trainer.validation_loss(val_inputs, val_targets)
            records.append((epoch, train_loss, val_loss, time.perf_counter() - began))
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
            monitored = val_loss if val_rows.size else train_loss
            since_best = 0 if trainer.keep_if_best(monitored) else since_best + 1
            if settings.patience is not None and since_best >= settings.patience:
                logger.info("early stop after epoch %d: no better loss in %d epochs",
                            epoch, since_best)
                break
    except TrainingDivergedError as err:
        trainer.restore_best()
        error = TrainingDivergedError(f"epoch {len(records) + 1}: {err}; the best parameters "
                                      "so far are kept")
        error.history = history_frame(records)
        raise error from None
    finally:
        bar.close()
    trainer.restore_best()
    return history_frame(records)


def history_frame(records: list[tuple[int, float, float, float]]) -> pd.DataFrame:
    """The training history: one row (epoch, train_loss, val_loss, seconds) per record."""
    import pandas as pd  # deferred: importing pandas costs a few tenths of a second

    frame = pd.DataFrame(records, columns=list(HISTORY_COLUMNS))
    return frame.astype({"epoch": np.int64})
