"""The public model :class:`ElmanRNN`: forward pass, predictions, training, sampling, files."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from seqmodels._checks import Seed, as_generator, as_symbol_batch, check_count, check_real
from seqmodels._io import load_npz, save_npz
from seqmodels.rnn.cells import (
    ACTIVATIONS,
    OUTPUTS,
    PARAM_NAMES,
    FlatParameters,
    gather_drive,
    input_table,
    log_proba,
    mean_log_loss,
    param_shapes,
    run_recurrence,
    single_blas_thread,
)
from seqmodels.rnn.train import (
    HISTORY_COLUMNS,
    FitSettings,
    TrainingDivergedError,
    history_frame,
    split_validation,
    train,
)

TASKS = ("next", "labels")


@dataclass(frozen=True)
class ForwardResult:
    """What :meth:`ElmanRNN.forward` computed, per step.

    Attributes
    ----------
    preactivations : numpy.ndarray, shape (B, T, H) or (T, H)
        ``state_{t-1} @ W_state + x_t @ W_input + b``.
    states : numpy.ndarray, shape (B, T, H) or (T, H)
        ``act(preactivations)``: the state after reading ``x_t``.
    outputs : numpy.ndarray, shape (B, T, n_outputs) or (T, n_outputs)
        ``state_t @ W_output + b_output``: raw outputs (logits when ``output="softmax"``).
    """

    preactivations: np.ndarray
    states: np.ndarray
    outputs: np.ndarray


def _single_threaded(method: Callable) -> Callable:
    """Run ``method`` with BLAS on one thread (see :func:`single_blas_thread`)."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with single_blas_thread():
            return method(*args, **kwargs)

    return wrapper


def _parameter(name: str) -> property:
    def read(self: ElmanRNN) -> np.ndarray:
        value = self._params[name].copy()
        value.setflags(write=False)
        return value

    return property(read, doc=f"The parameter ``{name}``: a read-only copy (shapes in the "
                              "class docstring).")


class ElmanRNN:
    """An Elman recurrent network in the worked example's row-vector form.

    .. math::

        s_t = \\mathrm{act}(s_{t-1} W_{state} + x_t W_{input} + b), \\qquad
        o_t = s_t W_{output} + b_{output}

    with ``act`` tanh or the identity, states ``s_t`` of size ``H``, one-hot or
    real inputs ``x_t`` and outputs read through a softmax (categorical targets)
    or left raw. The initial state is zero unless given.

    Parameters
    ----------
    n_inputs, n_hidden, n_outputs : int
        Input size ``V`` (alphabet size for symbols), state size ``H`` and output
        size (``V`` for next-symbol prediction, ``K`` for hidden labels).
    activation : {"tanh", "linear"}
    output : {"softmax", "linear"}
        Training and probabilities need ``"softmax"``.
    seed : int, numpy.random.Generator or None
        Initialization, as PyTorch's ``nn.RNN``: ``W_state``, ``W_input``, ``b``
        and ``W_output`` uniform in ``[-1/sqrt(H), 1/sqrt(H)]``; ``b_output`` zero.
    dtype : numpy.float64 (default) or numpy.float32
        Precision of parameters and arithmetic; float32 is about twice as fast.

    Attributes
    ----------
    W_state (H, H), W_input (n_inputs, H), b (H,), W_output (H, n_outputs), b_output (n_outputs,)
        The parameters (read-only copies).
    task : {"next", "labels"}
        What the softmax outputs mean; set by :meth:`fit`, ``"next"`` until then.
    history : pandas.DataFrame
        Columns epoch, train_loss, val_loss, seconds of the last :meth:`fit`.
    validation_rows : numpy.ndarray of int64
        Which sequences (rows of the symbols) the last :meth:`fit` held out for
        validation and early stopping; empty before fitting or with ``validation=0``.
    """

    W_state = _parameter("W_state")
    W_input = _parameter("W_input")
    b = _parameter("b")
    W_output = _parameter("W_output")
    b_output = _parameter("b_output")

    def __init__(self, n_inputs: int, n_hidden: int, n_outputs: int, activation: str = "tanh",
                 output: str = "softmax", seed: Seed = None, dtype=np.float64) -> None:
        shapes = param_shapes(check_count("n_inputs", n_inputs), check_count("n_hidden", n_hidden),
                              check_count("n_outputs", n_outputs))
        self.activation = _choice("activation", activation, ACTIVATIONS)
        self.output = _choice("output", output, OUTPUTS)
        self._params = FlatParameters(shapes, _float_dtype(dtype))
        self.task = "next"
        self.history = history_frame([])
        self.validation_rows = np.arange(0)
        rng = as_generator(seed)
        bound = 1.0 / np.sqrt(n_hidden)
        for name in ("W_state", "W_input", "b", "W_output"):
            self._params[name][...] = rng.uniform(-bound, bound, shapes[name])

    @classmethod
    def from_params(cls, W_state, W_input, b, W_output, b_output, activation: str = "tanh",
                    output: str = "softmax", dtype=np.float64) -> ElmanRNN:
        """A network with the given parameters (shapes as in the class docstring).

        ``b`` and ``b_output`` may be scalars when ``H`` or ``n_outputs`` is 1.
        ``ValueError`` if a shape disagrees or a value is not finite.
        """
        given = dict(zip(PARAM_NAMES, (W_state, W_input, b, W_output, b_output), strict=True))
        arrays = {name: _finite_array(name, value) for name, value in given.items()}
        for name in ("b", "b_output"):
            arrays[name] = np.atleast_1d(arrays[name])
        if arrays["W_input"].ndim != 2 or arrays["W_output"].ndim != 2:
            raise ValueError("W_input and W_output must be 2-D: (n_inputs, H) and (H, n_outputs)")
        n_inputs, n_hidden = arrays["W_input"].shape
        model = cls(n_inputs, n_hidden, arrays["W_output"].shape[1], activation, output,
                    seed=0, dtype=dtype)
        for name, shape in model._params.shapes.items():
            if arrays[name].shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {arrays[name].shape}")
            model._params[name][...] = arrays[name]
        return model

    # ------------------------------------------------------------------ sizes

    @property
    def n_inputs(self) -> int:
        """Input size ``V``."""
        return self._params.shapes["W_input"][0]

    @property
    def n_hidden(self) -> int:
        """State size ``H``."""
        return self._params.shapes["W_state"][0]

    @property
    def n_outputs(self) -> int:
        """Output size."""
        return self._params.shapes["b_output"][0]

    @property
    def dtype(self) -> np.dtype:
        """Precision of the parameters and the arithmetic."""
        return self._params.flat.dtype

    def __repr__(self) -> str:
        return (f"ElmanRNN(n_inputs={self.n_inputs}, n_hidden={self.n_hidden}, "
                f"n_outputs={self.n_outputs}, activation={self.activation!r}, "
                f"output={self.output!r}, dtype={self.dtype.name}, task={self.task!r})")

    # ------------------------------------------------------------------ forward

    @_single_threaded
    def forward(self, inputs, state0=None) -> ForwardResult:
        """Run the cell over ``inputs`` as given, step ``t`` reading ``x_t`` (no shift).

        Parameters
        ----------
        inputs : array_like
            Integer symbols, shape (B, T) or (T,), read as one-hot vectors of size
            ``n_inputs``; or real inputs (any float dtype), shape (B, T, n_inputs)
            or (T, n_inputs). The dtype decides which: ``[[1.0], [2.0]]`` is one
            sequence of two real inputs.
        state0 : array_like, shape (H,) or (B, H), optional
            Initial state; zero when omitted.

        Returns
        -------
        ForwardResult
            Per-step pre-activations, states and raw outputs, with the rank of
            the input (a single sequence gives (T, H) and (T, n_outputs)).
        """
        drive_tm, single = self._drive(inputs)
        return self._forward_drive(drive_tm, single, state0)

    def _forward_drive(self, drive_tm: np.ndarray, single: bool, state0) -> ForwardResult:
        """:meth:`forward` from the time-major drive ``x_t @ W_input + b``, (T, B, H)."""
        length, n_seq, _ = drive_tm.shape
        states = np.empty((length + 1, n_seq, self.n_hidden), self.dtype)
        states[0] = self._initial_state(state0, n_seq)
        run_recurrence(drive_tm, self._params["W_state"], states, self.activation,
                       np.empty_like(states[0]))
        outputs = states[1:] @ self._params["W_output"] + self._params["b_output"]
        result = [np.ascontiguousarray(a.transpose(1, 0, 2)) for a in
                  (drive_tm, states[1:], outputs)]
        return ForwardResult(*(a[0] if single else a for a in result))

    def _drive(self, inputs) -> tuple[np.ndarray, bool]:
        """``x_t @ W_input + b``, time-major (T, B, H), and whether one sequence was given."""
        array = np.asarray(inputs)
        if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
            batch, single = as_symbol_batch(array, self.n_inputs, "inputs")
            return self._symbol_drive(batch), single
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"inputs must be integer symbols or real numbers, got {array.dtype}")
        if array.ndim not in (2, 3) or array.shape[-1] != self.n_inputs or array.size == 0:
            raise ValueError(f"real inputs must have shape (T, {self.n_inputs}) or "
                             f"(B, T, {self.n_inputs}), got {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError("inputs contain NaN or inf")
        single = array.ndim == 2
        batch = array[None] if single else array
        drive = batch.transpose(1, 0, 2).astype(self.dtype) @ self._params["W_input"]
        return drive + self._params["b"], single

    def _symbol_drive(self, batch: np.ndarray) -> np.ndarray:
        """The drive of a checked (B, T) symbol batch, time-major (T, B, H)."""
        drive = np.empty((batch.shape[1], batch.shape[0], self.n_hidden), self.dtype)
        gather_drive(self._params, batch.T, drive)
        return drive

    def _initial_state(self, state0, n_seq: int) -> np.ndarray:
        if state0 is None:
            return np.zeros((n_seq, self.n_hidden), self.dtype)
        state = _finite_array("state0", state0)
        if state.shape not in ((self.n_hidden,), (n_seq, self.n_hidden)):
            raise ValueError(f"state0 must have shape ({self.n_hidden},) or "
                             f"({n_seq}, {self.n_hidden}), got {state.shape}")
        return np.broadcast_to(state, (n_seq, self.n_hidden))

    # ------------------------------------------------------------------ predictions

    @_single_threaded
    def hidden_states(self, symbols) -> np.ndarray:
        """States after reading ``x_0..x_t`` from a zero state: (B, T, H) or (T, H)."""
        batch, single = as_symbol_batch(symbols, self.n_inputs)
        return self._forward_drive(self._symbol_drive(batch), single, None).states

    @_single_threaded
    def predict_proba(self, symbols) -> np.ndarray:
        """Per-step probabilities with ``seqmodels.hmm``'s time alignment.

        Returns
        -------
        numpy.ndarray, shape (B, T, n_outputs) or (T, n_outputs), in the model's dtype
            ``task="next"``: ``[:, t]`` = P(x_t | x_0..x_{t-1}), step 0 from the
            initial state alone. ``task="labels"``: ``[:, t]`` = P(z_t | x_0..x_t).
        """
        batch, single = self._symbol_batch(symbols)
        probs = np.exp(self._log_proba(batch))
        return probs[0] if single else probs

    @_single_threaded
    def score(self, symbols, labels=None) -> float:
        """Mean log-loss in nats per symbol: ``-mean log P(target_t | ...)``.

        The targets are the symbols themselves for ``task="next"`` (``labels``
        must then be omitted) and ``labels`` (same shape, in ``[0, n_outputs)``)
        for ``task="labels"``.
        """
        batch, _ = self._symbol_batch(symbols)
        targets = self._targets(batch, labels, self.task)
        return mean_log_loss(self._log_proba(batch), targets)

    def _symbol_batch(self, symbols) -> tuple[np.ndarray, bool]:
        if self.output != "softmax":
            raise ValueError('probabilities need output="softmax", this model has "linear"')
        return as_symbol_batch(symbols, self.n_inputs)

    def _log_proba(self, batch: np.ndarray) -> np.ndarray:
        return log_proba(self._params, self.activation, self.task, batch)

    def _targets(self, batch: np.ndarray, labels, task: str) -> np.ndarray:
        """The targets of ``task`` for ``batch``; ValueError on a mismatch."""
        if task == "next":
            if labels is not None:
                raise ValueError('labels were given but the model predicts the next symbol '
                                 '(task="next"); fit it with labels first')
            if self.n_outputs != self.n_inputs:
                raise ValueError(f"next-symbol prediction needs n_outputs == n_inputs, got "
                                 f"{self.n_outputs} outputs for {self.n_inputs} inputs")
            return batch
        if labels is None:
            raise ValueError('the model decodes labels (task="labels"): pass labels')
        targets, _ = as_symbol_batch(labels, self.n_outputs, "labels")
        if targets.shape != batch.shape:
            raise ValueError(f"labels must have the shape of symbols {batch.shape}, "
                             f"got {targets.shape}")
        return targets

    # ------------------------------------------------------------------ training

    @_single_threaded
    def fit(self, symbols, labels=None, *, epochs: int = 20, batch_size: int = 32,
            lr: float = 1e-2, clip: float | None = 5.0, bptt: int | None = None,
            validation: float = 0.1, patience: int | None = 5, seed: Seed = None,
            progress: bool = True) -> ElmanRNN:
        """Train by backpropagation through time with Adam, from the current parameters.

        Parameters
        ----------
        symbols : array_like of int, shape (B, T) or (T,)
            Training sequences in ``[0, n_inputs)``.
        labels : array_like of int, shape of ``symbols``, optional
            Hidden labels in ``[0, n_outputs)``. Without them the task is
            next-symbol prediction (``task="next"``: output ``t`` reads the state
            after ``x_0..x_{t-1}``, the zero initial state for ``t = 0``, i.e. the
            inputs shifted right by one step, and its target is ``x_t``); with
            them it is decoding (``task="labels"``: output ``t`` reads the state
            after ``x_0..x_t``, target ``z_t``).
        epochs : int, default 20
            Passes over the training sequences.
        batch_size : int, default 32
            Whole sequences per mini-batch.
        lr : float, default 1e-2
            Adam's step size (betas 0.9, 0.999, eps 1e-8).
        clip : float or None, default 5.0
            Largest Euclidean norm of the full gradient; None turns clipping off.
        bptt : int or None, default None
            None: full BPTT, one update per batch. ``k``: each batch is cut into
            windows of ``k`` steps; the state carries over between windows,
            gradients stop at their borders, each window is one update.
        validation : float, default 0.1
            Fraction of sequences (at least one) held out for early stopping;
            0 watches the training loss instead.
        patience : int or None, default 5
            Stop after this many epochs without a better watched loss; None
            never stops early. The best parameters seen are restored either way.
        seed : int, numpy.random.Generator or None
            The validation split and the batch order.
        progress : bool, default True
            A tqdm bar over epochs.

        Returns
        -------
        ElmanRNN
            ``self``, with ``task``, ``history`` and ``validation_rows`` set.

        Raises
        ------
        ValueError
            On bad symbols, labels or settings.
        TrainingDivergedError
            (a ``ValueError`` and a ``RuntimeError``) when the loss or gradient
            becomes NaN or inf; the best parameters so far are kept.
        """
        if self.output != "softmax":
            raise ValueError('fit needs output="softmax" (categorical targets)')
        batch, _ = as_symbol_batch(symbols, self.n_inputs)
        task = "next" if labels is None else "labels"
        targets = self._targets(batch, labels, task)
        settings = _fit_settings(epochs, batch_size, lr, clip, bptt, validation, patience,
                                 progress)
        rng = as_generator(seed)  # before any change to the model: a bad seed changes nothing
        self.validation_rows = split_validation(batch.shape[0], settings.validation, rng)[1]
        self.task = task
        try:
            self.history = train(self._params, self.activation, task, batch, targets, settings,
                                 self.validation_rows, rng)
        except TrainingDivergedError as err:
            self.history = err.history
            raise
        return self

    # ------------------------------------------------------------------ generation

    @_single_threaded
    def sample(self, n_sequences: int, length: int, seed: Seed = None) -> np.ndarray:
        """Generate sequences by feeding each drawn symbol back in.

        ``x_t`` is drawn from ``predict_proba``'s distribution at step ``t``
        (``softmax(state_{t-1} @ W_output + b_output)``, zero initial state),
        for all sequences at once.

        Returns
        -------
        numpy.ndarray of int64, shape (n_sequences, length)
        """
        n_sequences = check_count("n_sequences", n_sequences)
        length = check_count("length", length)
        if self.output != "softmax" or self.task != "next":
            raise ValueError('sampling needs a next-symbol model (output="softmax", task="next")')
        if self.n_outputs != self.n_inputs:
            raise ValueError("sampling needs n_outputs == n_inputs")
        rng = as_generator(seed)
        uniforms = rng.random((length, n_sequences, 1))
        params = self._params
        table = input_table(params)
        state = np.zeros((n_sequences, self.n_hidden), self.dtype)
        drawn = np.empty((length, n_sequences), np.int64)
        for t in range(length):
            logits = state @ params["W_output"] + params["b_output"]
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            cdf = np.cumsum(probs, axis=1)
            cdf /= cdf[:, -1:]
            # Inverse CDF: the symbol is the number of CDF entries at or below u < 1.
            drawn[t] = np.count_nonzero(cdf <= uniforms[t], axis=1)
            state = state @ params["W_state"] + table[drawn[t]]
            if self.activation == "tanh":
                np.tanh(state, out=state)
        return drawn.T.copy()

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike) -> os.PathLike:
        """Save parameters, settings, task and history (.npz + JSON, atomic); return the path."""
        arrays = {name: self._params[name] for name in PARAM_NAMES}
        arrays["validation_rows"] = self.validation_rows
        history = {column: self.history[column].tolist() for column in HISTORY_COLUMNS}
        metadata = {"activation": self.activation, "output": self.output,
                    "dtype": self.dtype.name, "task": self.task, "history": history}
        return save_npz(path, "ElmanRNN", arrays, metadata)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ElmanRNN:
        """Load a model written by :meth:`save`; ``ValueError`` if the file is not one."""
        arrays, meta = load_npz(path, "ElmanRNN", PARAM_NAMES)
        try:
            model = cls.from_params(*(arrays[name] for name in PARAM_NAMES),
                                    activation=meta["activation"], output=meta["output"],
                                    dtype=meta["dtype"])
            model.task = _choice("task", meta["task"], TASKS)
            model.history = history_frame(meta["history"])
            model.validation_rows = np.asarray(arrays.get("validation_rows", np.arange(0)),
                                               dtype=np.int64)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path} is a corrupt ElmanRNN: {err}") from None
        return model


# ---------------------------------------------------------------------- argument checks


def _choice(name: str, value, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def _float_dtype(dtype) -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return resolved


def _finite_array(name: str, value) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of numbers: {err}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf")
    return array


def _positive(name: str, value, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    number = check_real(name, value)
    if not 0.0 < number < np.inf:  # NaN fails too
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return number


def _fit_settings(epochs, batch_size, lr, clip, bptt, validation, patience,
                  progress) -> FitSettings:
    if not 0.0 <= check_real("validation", validation) < 1.0:
        raise ValueError(f"validation must be a fraction in [0, 1), got {validation!r}")
    return FitSettings(
        epochs=check_count("epochs", epochs),
        batch_size=check_count("batch_size", batch_size),
        lr=_positive("lr", lr),
        clip=_positive("clip", clip, allow_none=True),
        bptt=None if bptt is None else check_count("bptt", bptt),
        validation=float(validation),
        patience=None if patience is None else check_count("patience", patience),
        progress=bool(progress),
    )
