"""Training any cell: the loss and its gradient by BPTT, Adam, clipping, stages, the epoch loop.

The loss is the mean categorical log-loss (nats per symbol) of the softmax
outputs against their targets, over the steps that exist (sequences of
different lengths are padded; the padded steps are masked out of the loss and
so receive no gradient):

* ``task="next"``: output ``t`` reads the state after ``x_0..x_{t-1}`` (the
  initial state for ``t = 0``) and its target is ``x_t``;
* ``task="labels"``: output ``t`` reads the state after ``x_0..x_t`` and its
  target is the label ``z_t``.

Failures: a loss or gradient that turns NaN or inf, or a mean loss (the epoch's
so far, the validation loss) that grows past :func:`divergence_limit` of the
starting loss, raises :class:`TrainingDivergedError`; the model then
holds the best parameters seen, the starting ones included. Any other
interruption (Ctrl-C) leaves the best parameters too, and is re-raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from seqmodels._checks import check_count, check_memory, check_real, positive_real
from seqmodels.rnn.cells import Cell, FlatParameters, Workspace, fill_onehot
from seqmodels.rnn.output import (
    forward_symbols,
    linear_outputs,
    log_proba,
    log_softmax_columns,
    mean_log_loss,
    output_states,
    window_workspace,
)

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "seconds", "lr")


class TrainingDivergedError(ValueError, RuntimeError):
    """The loss became NaN or inf, or grew far past its starting value, during ``fit``.

    A ``ValueError`` and a ``RuntimeError``, so either ``except`` catches it.
    When it is raised the model holds the best parameters seen (the starting
    ones count); the exception's ``history`` attribute and the model's
    ``history`` list the completed epochs.
    """

    history: pd.DataFrame


def divergence_limit(start_loss: float) -> float:
    """The loss past which training counts as diverged: ``2 * start_loss + 1`` nats.

    Far beyond any noise between mini-batches (a log-loss of an unchanged model
    does not double from one window to the next), and met by every real
    blow-up: ``lr=1e6`` goes from 2.07 to millions.
    """
    return 2.0 * start_loss + 1.0


def loss_and_gradient(cell: Cell, params: FlatParameters, grads: FlatParameters, ws: Workspace,
                      inputs_tm: np.ndarray, targets_tm: np.ndarray,
                      state0: tuple[np.ndarray, ...], task: str,
                      mask_tm: np.ndarray | None = None) -> tuple[float, int]:
    """Mean log-loss of one window and its gradient with respect to every parameter.

    Parameters
    ----------
    cell : Cell
    params : FlatParameters
        The current parameters.
    grads : FlatParameters
        Filled with dLoss/dparameter (same layout as ``params``).
    ws : Workspace
        Training buffers for this window's ``(L, B)`` (:func:`window_workspace`).
    inputs_tm : numpy.ndarray of int, shape (L, B)
        Input symbols, time-major.
    targets_tm : numpy.ndarray of int, shape (L, B)
        The symbols themselves for ``"next"``, the labels for ``"labels"``.
    state0 : tuple of numpy.ndarray, each (B, H)
        Initial state, treated as a constant.
    task : {"next", "labels"}
    mask_tm : numpy.ndarray of bool, shape (L, B), optional
        The steps that exist; None when all do.

    Returns
    -------
    loss : float
        Mean loss in nats over the ``n`` counted steps. The softmax gradient is
        ``dL/dlogits = mask * (softmax(logits) - onehot(target)) / n``; everything
        but the recurrence is one matrix product over all ``L * B`` steps.
    n : int
        The number of counted steps.
    """
    n_hidden = cell.n_hidden
    n_steps = inputs_tm.size
    forward_symbols(cell, params, inputs_tm, state0, ws)
    out_flat = output_states(ws, task)
    linear_outputs(out_flat, params, ws.logits)
    logp = log_softmax_columns(ws.logits)
    targets_onehot = fill_onehot(targets_tm, ws.targets_onehot)
    mask = None if mask_tm is None else mask_tm.reshape(1, n_steps)
    if mask is None:
        n_counted = n_steps
    else:
        # Padded steps (past each sequence's end) get zero gradient; as the padding
        # sits at the end, BPTT carries nothing through them into any parameter.
        n_counted = int(np.count_nonzero(mask))
        targets_onehot *= mask
    loss = -float(np.vdot(logp, targets_onehot)) / n_counted
    d_logits = np.exp(logp, out=logp)
    if mask is not None:
        d_logits *= mask
    d_logits -= targets_onehot
    d_logits *= 1.0 / n_counted
    np.matmul(out_flat.T, d_logits.T, out=grads["W_output"])
    np.sum(d_logits, axis=1, out=grads["b_output"])
    if task == "next":
        direct, unused = ws.grad_h[:-1], ws.grad_h[-1]
    else:
        direct, unused = ws.grad_h[1:], ws.grad_h[0]
    np.matmul(d_logits.T, params["W_output"].T, out=direct.reshape(n_steps, n_hidden))
    unused.fill(0.0)
    cell.backward(params, ws, grads)
    return loss, n_counted


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
    """The knobs of ``fit``; :meth:`checked` validates ``fit``'s arguments into one.

    ``rates`` are the learning rates of the stages: ``(lr, *schedule)``.
    """

    epochs: int
    batch_size: int
    rates: tuple[float, ...]
    clip: float | None
    bptt: int | None
    validation: float
    patience: int | None
    progress: bool

    @classmethod
    def checked(cls, epochs, batch_size, lr, clip, bptt, validation, patience, schedule,
                progress) -> FitSettings:
        """``ValueError`` naming the argument (and a schedule's index) for a bad value."""
        if not 0.0 <= check_real("validation", validation) < 1.0:
            raise ValueError(f"validation must be a fraction in [0, 1), got {validation!r}")
        patience = None if patience is None else check_count("patience", patience)
        return cls(
            epochs=check_count("epochs", epochs),
            batch_size=check_count("batch_size", batch_size),
            rates=(positive_real("lr", lr), *_later_rates(schedule, patience)),
            clip=positive_real("clip", clip, allow_none=True),
            bptt=None if bptt is None else check_count("bptt", bptt),
            validation=float(validation),
            patience=patience,
            progress=bool(progress),
        )


def _later_rates(schedule, patience: int | None) -> tuple[float, ...]:
    """The rates of the stages after the first, each positive and finite."""
    if schedule is None:
        return ()
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, (Sequence, np.ndarray)):
        raise ValueError(f"schedule must be a sequence of learning rates (the stages after "
                         f"the first, e.g. (0.002,)), got {schedule!r}")
    rates = tuple(positive_real(f"schedule[{i}]", rate) for i, rate in enumerate(schedule))
    if rates and patience is None:
        raise ValueError("schedule moves to the next rate when the watched loss has not "
                         "improved for `patience` epochs; patience=None never does")
    return rates


def validation_count(n_sequences: int, fraction: float) -> int:
    """How many of ``n_sequences`` sequences ``fraction`` holds out: none for 0, else
    ``round(fraction * n)`` and at least one; ``ValueError`` if no training one is left."""
    if fraction == 0.0:
        return 0
    n_val = max(1, round(fraction * n_sequences))
    if n_val >= n_sequences:
        raise ValueError(
            f"validation={fraction} of {n_sequences} sequence(s) leaves no training sequence; "
            "pass more sequences or validation=0"
        )
    return n_val


def split_validation(n_sequences: int, fraction: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random whole-sequence split: (train rows, validation rows); at least one of each if used."""
    n_val = validation_count(n_sequences, fraction)
    if n_val == 0:
        return np.arange(n_sequences), np.arange(0)
    order = rng.permutation(n_sequences)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@dataclass(frozen=True)
class Sequences:
    """Padded sequences for training: inputs and targets (B, T), lengths (B,)."""

    inputs: np.ndarray
    targets: np.ndarray
    lengths: np.ndarray

    def rows(self, rows: np.ndarray) -> Sequences:
        """The sequences ``rows``, trimmed to the longest of them."""
        longest = int(self.lengths[rows].max()) if rows.size else 0
        return Sequences(self.inputs[rows, :longest], self.targets[rows, :longest],
                         self.lengths[rows])

    def mask(self) -> np.ndarray | None:
        """(B, T) bool, True at the steps that exist; None when every sequence is full."""
        if self.lengths.size == 0 or self.lengths.min() == self.inputs.shape[1]:
            return None
        return np.arange(self.inputs.shape[1]) < self.lengths[:, None]


class _Trainer:
    """One training run: buffers per window shape, Adam state, the best parameters so far."""

    def __init__(self, cell: Cell, params: FlatParameters, task: str,
                 settings: FitSettings) -> None:
        self.cell, self.params, self.task, self.settings = cell, params, task, settings
        # The gradient, Adam's two moments and scratch, the best parameters.
        check_memory(5.0 * params.flat.nbytes,
                     f"training {params.flat.size} parameters ({cell.name} cell)")
        self.grads = params.zeros_like()
        self.adam = Adam(params.flat, settings.rates[0])
        self.workspaces: dict[tuple[int, int], Workspace] = {}
        self.best_flat = params.flat.copy()
        self.best_loss = np.inf
        self.start_loss = np.inf

    def workspace(self, length: int, batch: int) -> Workspace:
        key = (length, batch)
        if key not in self.workspaces:
            self.workspaces[key] = window_workspace(
                self.cell, length, batch, self.params.shapes["b_output"][0],
                self.params.flat.dtype, training=True)
        return self.workspaces[key]

    def new_stage(self, lr: float) -> None:
        """Go on from the best parameters at rate ``lr``, with fresh Adam moments."""
        self.restore_best()
        self.adam = Adam(self.params.flat, lr)

    def check_finite(self, loss: float, norm: float) -> None:
        """Raise :class:`TrainingDivergedError` on a NaN or inf loss or gradient norm."""
        if not (np.isfinite(loss) and np.isfinite(norm)):
            raise TrainingDivergedError(f"loss {loss} with gradient norm {norm}: training "
                                        "diverged (try a smaller lr, clip or bptt)")

    def check_runaway(self, loss: float) -> None:
        """Raise :class:`TrainingDivergedError` when a mean loss passes :func:`divergence_limit`.

        Applied to means over many steps (the epoch so far, the validation set),
        never to one window, which may hold a single step of a ragged batch.
        """
        self.check_finite(loss, 0.0)
        if loss > divergence_limit(self.start_loss):
            raise TrainingDivergedError(
                f"loss {loss:.4g} grew past {divergence_limit(self.start_loss):.4g} (twice the "
                f"starting {self.start_loss:.4g}, plus 1): training diverged (try a smaller lr)")

    def start(self, watched: Sequences) -> None:
        """The starting parameters: the first candidate for the best, and the loss that
        :func:`divergence_limit` measures from."""
        loss = self.loss_on(watched)
        self.check_finite(loss, 0.0)
        self.start_loss = loss
        self.keep_if_best(loss)

    def train_batch(self, batch: Sequences) -> tuple[float, int]:
        """Adam steps on one batch of whole sequences; returns (summed step loss, steps).

        With ``bptt=k`` the sequences are cut into windows of ``k`` steps; the
        state carries over between windows but gradients stop at their borders,
        and every window is one update.
        """
        n_seq, length = batch.inputs.shape
        window = self.settings.bptt or length
        state = self.cell.zero_state(n_seq, self.params.flat.dtype)
        inputs_tm = np.ascontiguousarray(batch.inputs.T)
        targets_tm = np.ascontiguousarray(batch.targets.T)
        mask = batch.mask()
        mask_tm = None if mask is None else np.ascontiguousarray(mask.T)
        total, counted = 0.0, 0
        for start in range(0, length, window):
            part = slice(start, start + window)
            ws = self.workspace(inputs_tm[part].shape[0], n_seq)
            loss, n = loss_and_gradient(self.cell, self.params, self.grads, ws, inputs_tm[part],
                                        targets_tm[part], state, self.task,
                                        None if mask_tm is None else mask_tm[part])
            self.check_finite(loss, clip_gradient_norm(self.grads.flat, self.settings.clip))
            self.adam.step(self.grads.flat)
            state = self.cell.final_state(ws)
            total += loss * n
            counted += n
        return total, counted

    def run_epoch(self, data: Sequences, rng: np.random.Generator) -> float:
        """One pass over the training sequences in a random order; mean loss per symbol."""
        order = rng.permutation(data.inputs.shape[0])
        total, counted = 0.0, 0
        for start in range(0, order.size, self.settings.batch_size):
            rows = np.sort(order[start: start + self.settings.batch_size])
            loss, n = self.train_batch(data.rows(rows))
            total += loss
            counted += n
            self.check_runaway(total / counted)
        return total / counted

    def loss_on(self, data: Sequences) -> float:
        """Mean loss per symbol of the current parameters on ``data``; NaN when empty."""
        if data.inputs.shape[0] == 0:
            return np.nan
        logp = log_proba(self.cell, self.params, self.task, data.inputs)
        return mean_log_loss(logp, data.targets, data.mask())

    def keep_if_best(self, loss: float) -> bool:
        """Snapshot the parameters when ``loss`` beats the best so far; True if it did."""
        if loss < self.best_loss:
            self.best_loss = loss
            self.best_flat[...] = self.params.flat
            return True
        return False

    def restore_best(self) -> None:
        self.params.flat[...] = self.best_flat


Record = tuple[int, float, float, float, float]


def train(cell: Cell, params: FlatParameters, task: str, data: Sequences,
          settings: FitSettings, val_rows: np.ndarray, rng: np.random.Generator,
          records: list[Record]) -> None:
    """Fit ``params`` in place; append one (epoch, train_loss, val_loss, seconds, lr) per epoch.

    ``val_rows`` are the sequences held out for validation (from
    :func:`split_validation`), the rest are trained on. The watched loss is the
    validation loss (the epoch's training loss when nothing is held out); the
    starting parameters' loss on the same sequences is the first candidate for
    the best. A stage ends after ``patience`` epochs without a new best: the
    best parameters are restored and the next stage's rate taken (fresh Adam
    moments), or training stops after the last. Whatever ends training (the
    epochs run out, early stopping, divergence, Ctrl-C), the best parameters
    seen are restored; an exception is then re-raised.
    """
    train_data = data.rows(np.setdiff1d(np.arange(data.inputs.shape[0]), val_rows))
    val_data = data.rows(val_rows)
    trainer = _Trainer(cell, params, task, settings)
    trainer.start(val_data if val_rows.size else train_data)
    stage, since_best = 0, 0
    bar = tqdm(range(1, settings.epochs + 1), desc=f"RNN.fit ({cell.name})", unit="epoch",
               disable=not settings.progress)
    try:
        for epoch in bar:
            began = time.perf_counter()
            try:
                train_loss = trainer.run_epoch(train_data, rng)
                val_loss = trainer.loss_on(val_data)
                watched = val_loss if val_rows.size else train_loss
                trainer.check_runaway(watched)
            except TrainingDivergedError as err:
                raise TrainingDivergedError(f"epoch {epoch}: {err}; the best parameters so far "
                                            "are kept") from None
            records.append((epoch, train_loss, val_loss, time.perf_counter() - began,
                            settings.rates[stage]))
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}",
                            lr=f"{settings.rates[stage]:.2g}")
            since_best = 0 if trainer.keep_if_best(watched) else since_best + 1
            if settings.patience is None or since_best < settings.patience:
                continue
            if stage + 1 == len(settings.rates):
                logger.info("early stop after epoch %d: no better loss in %d epochs",
                            epoch, since_best)
                break
            stage, since_best = stage + 1, 0
            trainer.new_stage(settings.rates[stage])
            logger.info("after epoch %d: stage %d at lr %g from the best parameters",
                        epoch, stage + 1, settings.rates[stage])
    finally:
        bar.close()
        trainer.restore_best()


def history_frame(records) -> pd.DataFrame:
    """The training history: one row per epoch, columns :data:`HISTORY_COLUMNS`.

    ``records`` is a list of tuples in column order, or a dict of columns (a
    saved history; files written before the ``lr`` column get NaN there).
    """
    import pandas as pd  # deferred: importing pandas costs a few tenths of a second

    if isinstance(records, dict):
        n_rows = len(records.get("epoch", []))
        records = {column: records.get(column, [np.nan] * n_rows) for column in HISTORY_COLUMNS}
    frame = pd.DataFrame(records, columns=list(HISTORY_COLUMNS))
    return frame.astype({"epoch": np.int64, "lr": np.float64})
