"""The public model :class:`RNN`, for every cell (the Elman one by name: :mod:`.elman`)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import numpy as np

from seqmodels._checks import (
    Seed,
    SymbolBatch,
    as_generator,
    as_sequences,
    check_count,
    check_memory,
    float_array,
    positive_real,
    readonly,
)
from seqmodels._io import load_npz, save_npz
from seqmodels.rnn import output as out
from seqmodels.rnn.cells import Cell, ElmanCell, FlatParameters, array_bytes, single_blas_thread
from seqmodels.rnn.gru import GRUCell
from seqmodels.rnn.lstm import LSTMCell
from seqmodels.rnn.train import (
    HISTORY_COLUMNS,
    FitSettings,
    Sequences,
    TrainingDivergedError,
    history_frame,
    split_validation,
    train,
)

#: The cells by name; adding a cell is one entry here (a :class:`~seqmodels.rnn.cells.Cell`).
CELLS: dict[str, type[Cell]] = {"elman": ElmanCell, "gru": GRUCell, "lstm": LSTMCell}
OUTPUTS = ("softmax", "linear")
TASKS = out.TASKS
#: The ``kind`` tag of saved models (``save_npz``); files written before the cell
#: choice carry :data:`LEGACY_KIND` and always hold an Elman cell.
FILE_KIND = "RNN"
LEGACY_KIND = "ElmanRNN"


def single_threaded(method: Callable) -> Callable:
    """Run ``method`` with BLAS on one thread (see :func:`single_blas_thread`)."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with single_blas_thread():
            return method(*args, **kwargs)

    return wrapper


class RNN:
    """A recurrent network over symbols: a cell, a shared softmax output layer, BPTT with Adam.

    .. math::

        h_t = \\mathrm{cell}(h_{t-1}, x_t), \\qquad
        o_t = h_t W_{output} + b_{output}

    with one-hot inputs ``x_t``, states ``h_t`` of size ``H`` (the LSTM also
    carries a cell state ``c_t``) and outputs read through a softmax or left
    raw. The initial state is zero.

    Parameters
    ----------
    n_inputs, n_hidden, n_outputs : int
        Input size ``V`` (alphabet size), state size ``H`` (at least 1) and output
        size (``V`` for next-symbol prediction, ``K`` for hidden labels).
    cell : str, default "elman"
        A name in :data:`CELLS`: ``"elman"`` (the worked example's cell),
        ``"gru"`` or ``"lstm"`` (PyTorch's equations and gate order; see
        :mod:`seqmodels.rnn.gru` and :mod:`seqmodels.rnn.lstm`).
    activation : {"tanh", "linear"}, default "tanh"
        The Elman cell's nonlinearity. The GRU and LSTM have theirs by
        definition (sigmoid gates, tanh candidate) and accept only ``"tanh"``.
    output : {"softmax", "linear"}, default "softmax"
        Training and probabilities need ``"softmax"``.
    seed : int, numpy.random.Generator or None
        Initialization, as PyTorch's: every cell parameter and ``W_output``
        uniform in ``[-1/sqrt(H), 1/sqrt(H)]``, ``b_output`` zero (the LSTM's
        forget-gate bias starts at 1).
    dtype : numpy.float64 (default) or numpy.float32
        Precision of parameters and arithmetic. float32 trains about twice as
        fast (the speed benchmark uses it) and is ample for training; float64
        is the default so that results and gradient checks are exact to
        ~1e-12.

    Attributes
    ----------
    task : {"next", "labels"}
        What the softmax outputs mean; set by :meth:`fit`, ``"next"`` until then.
    history : pandas.DataFrame
        One row per epoch of the last :meth:`fit`: epoch, train_loss, val_loss
        (nats per symbol), seconds, lr (the rate that epoch used).
    validation_rows : numpy.ndarray of int64
        Which sequences the last :meth:`fit` held out for validation and early
        stopping; empty before fitting or with ``validation=0``.

    Notes
    -----
    Every method accepts symbols in the package's layouts (through
    :func:`seqmodels._checks.as_sequences`): a ``(T,)`` sequence (results
    without the batch axis), a ``(B, T)`` batch, a list of 1-D sequences of
    different lengths, or hmmlearn's ``X`` of shape (N,) or (N, 1) with
    ``lengths=``. Per-step results of sequences of different lengths are
    padded to the longest with NaN past each sequence's end; training masks
    the padded steps out of the loss.
    """

    #: Subclasses bound to one cell set it (``ElmanRNN``: "elman").
    only_cell: ClassVar[str | None] = None

    def __init__(self, n_inputs: int, n_hidden: int, n_outputs: int, cell: str = "elman", *,
                 activation: str = "tanh", output: str = "softmax", seed: Seed = None,
                 dtype=np.float64) -> None:
        sizes = (check_count("n_inputs", n_inputs), check_count("n_hidden", n_hidden),
                 check_count("n_outputs", n_outputs))
        cell_class = CELLS[_choice("cell", cell, tuple(CELLS))]
        if self.only_cell not in (None, cell):
            raise ValueError(f"{type(self).__name__} holds the {self.only_cell!r} cell, got "
                             f"cell={cell!r}: use RNN")
        self._cell = cell_class(sizes[0], sizes[1], activation)
        self.output = _choice("output", output, OUTPUTS)
        dtype = _float_dtype(dtype)
        rng = as_generator(seed)
        shapes = {**self._cell.param_shapes(), **out.output_param_shapes(sizes[1], sizes[2])}
        check_memory(array_bytes(shapes.values(), dtype),
                     f"n_inputs={n_inputs} x n_hidden={n_hidden} x n_outputs={n_outputs} "
                     f"({cell} cell parameters)")
        self._params = FlatParameters(shapes, dtype)
        self._cell.initialize(self._params, rng)
        bound = 1.0 / np.sqrt(n_hidden)
        self._params["W_output"][...] = rng.uniform(-bound, bound, shapes["W_output"])
        self.task = "next"
        self.history = history_frame([])
        self.validation_rows = np.arange(0)

    @classmethod
    def from_parameters(cls, parameters: Mapping, cell: str = "elman", *,
                        activation: str = "tanh", output: str = "softmax",
                        dtype=np.float64) -> RNN:
        """A network with the given parameters, by name (see :attr:`parameters`).

        Sizes are read from ``W_input`` (V, G*H) and ``W_output`` (H, n_outputs);
        biases may be scalars when their size is 1. ``ValueError`` if a name is
        missing or unknown, a shape disagrees or a value is not finite.
        """
        if not isinstance(parameters, Mapping):
            raise ValueError(f"parameters must be a mapping of names to arrays (see "
                             f"RNN.parameters), got {type(parameters).__name__}")
        arrays = {name: finite_array(name, value) for name, value in parameters.items()}
        for name in ("W_input", "W_output"):
            if name not in arrays or arrays[name].ndim != 2:
                raise ValueError(f"{name} must be given as a 2-D array: W_input (n_inputs, "
                                 "G*H) and W_output (H, n_outputs)")
        (n_inputs, _), (n_hidden, n_outputs) = arrays["W_input"].shape, arrays["W_output"].shape
        model = cls.__new__(cls)
        RNN.__init__(model, n_inputs, n_hidden, n_outputs, cell, activation=activation,
                     output=output, seed=0, dtype=dtype)
        shapes = model._params.shapes
        unknown, missing = sorted(set(arrays) - set(shapes)), sorted(set(shapes) - set(arrays))
        if unknown or missing:
            raise ValueError(f"the {cell!r} cell's parameters are {list(shapes)}; missing "
                             f"{missing}, unknown {unknown}")
        for name, shape in shapes.items():
            value = arrays[name] if len(shape) > 1 else np.atleast_1d(arrays[name])
            if value.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {value.shape}")
            model._params[name][...] = value
        return model

    # ------------------------------------------------------------------ description

    @property
    def cell(self) -> str:
        """The cell's name, a key of :data:`CELLS`."""
        return self._cell.name

    @property
    def activation(self) -> str:
        """The cell's nonlinearity ("tanh" or, for the Elman cell, "linear")."""
        return self._cell.activation

    @property
    def n_inputs(self) -> int:
        """Input size ``V``."""
        return self._cell.n_inputs

    @property
    def n_hidden(self) -> int:
        """State size ``H``."""
        return self._cell.n_hidden

    @property
    def n_outputs(self) -> int:
        """Output size."""
        return self._params.shapes["b_output"][0]

    @property
    def dtype(self) -> np.dtype:
        """Precision of the parameters and the arithmetic."""
        return self._params.flat.dtype

    @property
    def parameters(self) -> dict[str, np.ndarray]:
        """Every parameter by name, as read-only copies: the cell's (``W_state``,
        ``W_input``, ``b``, and the GRU's ``b_state``), then ``W_output``, ``b_output``."""
        return {name: readonly(self._params[name], self.dtype) for name in self._params.shapes}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n_inputs={self.n_inputs}, n_hidden={self.n_hidden}, "
                f"n_outputs={self.n_outputs}, {self._describe()}activation={self.activation!r}, "
                f"output={self.output!r}, dtype={self.dtype.name}, task={self.task!r})")

    def _describe(self) -> str:
        return f"cell={self.cell!r}, "

    # ------------------------------------------------------------------ predictions

    @single_threaded
    def predictive(self, symbols, lengths=None) -> np.ndarray:
        """The next-symbol forecast, as every forecaster in the package.

        Returns
        -------
        numpy.ndarray, shape (B, T, V) or (T, V), in the model's dtype
            ``[:, t]`` = P(x_t | x_0..x_{t-1}); step 0 is read from the zero
            initial state alone. NaN past each sequence's end.

        Raises
        ------
        ValueError
            If the model decodes labels (``task="labels"``: use
            :meth:`label_proba`), has no softmax output, or ``n_outputs`` differs
            from ``n_inputs``.
        """
        self._require_task("next", "label_proba")
        self._require_next_symbol_outputs()
        return self._proba(symbols, lengths)

    @single_threaded
    def label_proba(self, symbols, lengths=None) -> np.ndarray:
        """The supervised decoder's forecast of the hidden labels.

        Returns
        -------
        numpy.ndarray, shape (B, T, K) or (T, K), in the model's dtype
            ``[:, t]`` = P(z_t | x_0..x_t). NaN past each sequence's end.

        Raises
        ------
        ValueError
            If the model was not fitted with labels (``task="next"``: use
            :meth:`predictive`) or has no softmax output.
        """
        self._require_task("labels", "predictive")
        return self._proba(symbols, lengths)

    @single_threaded
    def hidden_states(self, symbols, lengths=None) -> np.ndarray:
        """States ``h`` after reading ``x_0..x_t`` from the zero state (the LSTM's h, not c).

        Returns
        -------
        numpy.ndarray, shape (B, T, H) or (T, H)
            NaN past each sequence's end.
        """
        batch = as_sequences(symbols, self.n_inputs, lengths=lengths)
        states = out.hidden_states(self._cell, self._params, batch.symbols)
        return _unbatched(batch, batch.fill_padding(states, np.nan))

    @single_threaded
    def score(self, symbols, labels=None, lengths=None) -> float:
        """Mean log-loss, nats per symbol, over the existing steps: ``-mean log P(target_t|...)``.

        The targets are the symbols themselves for ``task="next"`` (``labels``
        must then be omitted) and ``labels`` (in ``[0, n_outputs)``, the same
        lengths as ``symbols``) for ``task="labels"``.
        """
        self._require_softmax()
        batch = as_sequences(symbols, self.n_inputs, lengths=lengths)
        targets = self._targets_of(self.task, batch, labels, lengths)
        logp = out.log_proba(self._cell, self._params, self.task, batch.symbols)
        return out.mean_log_loss(logp, targets, batch.mask() if batch.ragged else None)

    def _proba(self, symbols, lengths) -> np.ndarray:
        self._require_softmax()
        batch = as_sequences(symbols, self.n_inputs, lengths=lengths)
        probs = np.exp(out.log_proba(self._cell, self._params, self.task, batch.symbols))
        return _unbatched(batch, batch.fill_padding(probs, np.nan))

    def _require_softmax(self) -> None:
        if self.output != "softmax":
            raise ValueError('probabilities need output="softmax", this model has "linear"')

    def _require_task(self, task: str, other_method: str) -> None:
        if self.task != task:
            raise ValueError(f"the model's task is {self.task!r}, not {task!r}: use "
                             f"{other_method} (fit with labels for 'labels', without for 'next')")

    def _require_next_symbol_outputs(self) -> None:
        if self.n_outputs != self.n_inputs:
            raise ValueError(f"next-symbol prediction needs n_outputs == n_inputs, got "
                             f"{self.n_outputs} outputs for {self.n_inputs} inputs")

    def _targets_of(self, task: str, batch: SymbolBatch, labels, lengths=None) -> np.ndarray:
        """The targets of ``task`` for ``batch`` (B, T); ValueError on a mismatch."""
        if task == "next":
            if labels is not None:
                raise ValueError('labels were given but the model predicts the next symbol '
                                 '(task="next"); fit it with labels first')
            self._require_next_symbol_outputs()
            return batch.symbols
        if labels is None:
            raise ValueError('the model decodes labels (task="labels"): pass labels')
        targets = as_sequences(labels, self.n_outputs, "labels", lengths=lengths)
        if targets.symbols.shape[0] != batch.symbols.shape[0]:
            raise ValueError(f"labels must have the shape of symbols: {targets.symbols.shape[0]}"
                             f" sequence(s) of labels for {batch.symbols.shape[0]} of symbols")
        differ = np.flatnonzero(targets.lengths != batch.lengths)
        if differ.size:
            b = int(differ[0])
            raise ValueError(f"labels must have the shape of symbols: sequence {b} has "
                             f"{targets.lengths[b]} labels for {batch.lengths[b]} symbols")
        return targets.symbols

    # ------------------------------------------------------------------ training

    @single_threaded
    def fit(self, symbols, labels=None, *, lengths=None, epochs: int = 20, batch_size: int = 32,
            lr: float = 1e-2, clip: float | None = 5.0, bptt: int | None = None,
            validation: float = 0.1, patience: int | None = 5,
            schedule: Sequence[float] | None = None, seed: Seed = None,
            progress: bool = True) -> RNN:
        """Train by backpropagation through time with Adam, from the current parameters.

        Parameters
        ----------
        symbols : array_like of int
            Training sequences in ``[0, n_inputs)``, in any layout of the class
            notes; sequences of different lengths are padded and masked.
        labels : array_like of int, optional
            Hidden labels in ``[0, n_outputs)``, in the layout of ``symbols``.
            Without them the task is next-symbol prediction (``task="next"``:
            output ``t`` reads the state after ``x_0..x_{t-1}``, the zero initial
            state for ``t = 0``, and its target is ``x_t``); with them it is
            decoding (``task="labels"``: output ``t`` reads the state after
            ``x_0..x_t``, target ``z_t``).
        lengths : array_like of int, optional
            hmmlearn's layout: ``symbols`` (and ``labels``) concatenated, shape
            (N,) or (N, 1), and the sequences' lengths.
        epochs : int, default 20
            Most passes over the training sequences, all stages together.
        batch_size : int, default 32
            Whole sequences per mini-batch.
        lr : float, default 1e-2
            Adam's step size (betas 0.9, 0.999, eps 1e-8) in the first stage.
        clip : float or None, default 5.0
            Largest Euclidean norm of the full gradient; None turns clipping off.
        bptt : int or None, default None
            None: full BPTT, one update per batch. ``k``: each batch is cut into
            windows of ``k`` steps; the state carries over between windows,
            gradients stop at their borders, each window is one update.
        validation : float, default 0.1
            Fraction of sequences (at least one) held out and watched for early
            stopping; 0 watches the epoch's training loss instead.
        patience : int or None, default 5
            A stage ends after this many epochs without a better watched loss;
            None never ends one (and allows no ``schedule``).
        schedule : sequence of float, optional
            The learning rates of the stages after the first. When a stage ends
            the best parameters so far are restored and training goes on at the
            next rate with fresh Adam moments; after the last stage it stops.
            ``lr=0.01, schedule=(0.002,)`` is the two-stage drop.
        seed : int, numpy.random.Generator or None
            The validation split and the batch order.
        progress : bool, default True
            A tqdm bar over epochs.

        Returns
        -------
        RNN
            ``self``, with ``task``, ``history`` and ``validation_rows`` set and the
            best parameters seen (the starting ones count).

        Raises
        ------
        ValueError
            On bad symbols, labels or settings (a non-positive rate in
            ``schedule`` is named by its index).
        TrainingDivergedError
            (a ``ValueError`` and a ``RuntimeError``) when a window's loss or
            gradient turns NaN or inf, or the epoch's mean training loss so far
            or the validation loss grows past ``2 * start + 1`` nats (``start``:
            the starting parameters' watched loss); the best parameters so far
            are kept.
        KeyboardInterrupt
            Re-raised after restoring the best parameters; ``history`` holds the
            finished epochs.
        """
        self._require_softmax()
        batch = as_sequences(symbols, self.n_inputs, lengths=lengths)
        task = "next" if labels is None else "labels"
        targets = self._targets_of(task, batch, labels, lengths)
        settings = FitSettings.checked(epochs, batch_size, lr, clip, bptt, validation, patience,
                                       schedule, progress)
        rng = as_generator(seed)  # before any change to the model: a bad seed changes nothing
        validation_rows = split_validation(batch.symbols.shape[0], settings.validation, rng)[1]
        self.validation_rows, self.task = validation_rows, task
        records: list = []
        try:
            train(self._cell, self._params, task,
                  Sequences(batch.symbols, targets, batch.lengths), settings, validation_rows,
                  rng, records)
        except TrainingDivergedError as err:
            err.history = history_frame(records)
            raise
        finally:
            self.history = history_frame(records)
        return self

    # ------------------------------------------------------------------ generation

    @single_threaded
    def sample(self, n_sequences: int, length: int, seed: Seed = None,
               temperature: float = 1.0) -> np.ndarray:
        """Generate sequences by feeding each drawn symbol back in.

        ``x_t`` is drawn from ``softmax(logits_t / temperature)`` with
        ``logits_t = h_{t-1} @ W_output + b_output`` (zero initial state): at
        ``temperature=1`` the distribution of :meth:`predictive`, lower is
        greedier, higher flatter. All sequences step together.

        Returns
        -------
        numpy.ndarray of int64, shape (n_sequences, length)
        """
        n_sequences = check_count("n_sequences", n_sequences)
        length = check_count("length", length)
        temperature = positive_real("temperature", temperature)
        if self.output != "softmax" or self.task != "next":
            raise ValueError('sampling needs a next-symbol model (output="softmax", task="next")')
        self._require_next_symbol_outputs()
        # The uniforms, the drawn symbols and their transposed copy: 8 bytes each per step.
        check_memory(3.0 * 8 * n_sequences * length,
                     f"n_sequences={n_sequences} x length={length}")
        rng = as_generator(seed)
        uniforms = rng.random((length, n_sequences, 1))
        params, cell = self._params, self._cell
        ws = cell.workspace(1, n_sequences, self.dtype)
        cell.set_state(ws, cell.zero_state(n_sequences, self.dtype))
        h = ws.h[0]
        drawn = np.empty((length, n_sequences), np.int64)
        for t in range(length):
            logits = h @ params["W_output"] + params["b_output"]
            if temperature != 1.0:
                logits /= temperature
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            cdf = np.cumsum(probs, axis=1)
            cdf /= cdf[:, -1:]
            # Inverse CDF: the symbol is the number of CDF entries at or below u < 1.
            drawn[t] = np.count_nonzero(cdf <= uniforms[t], axis=1)
            cell.read_symbols(params, drawn[t: t + 1], ws)
            h = cell.step(params, ws)
        return drawn.T.copy()

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike) -> os.PathLike:
        """Save cell, parameters, settings, task, history (.npz + JSON, atomic); return the path."""
        arrays = {name: self._params[name] for name in self._params.shapes}
        arrays["validation_rows"] = self.validation_rows
        history = {column: self.history[column].tolist() for column in HISTORY_COLUMNS}
        metadata = {"cell": self.cell, "activation": self.activation, "output": self.output,
                    "dtype": self.dtype.name, "task": self.task, "history": history}
        return save_npz(path, FILE_KIND, arrays, metadata)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RNN:
        """Load a model written by :meth:`save` (any cell), or by ``ElmanRNN.save``
        before cells could be chosen. ``ValueError`` if the file is not one."""
        arrays, meta = _read_model_file(path)
        cell = meta.get("cell")
        if cls.only_cell not in (None, cell):
            raise ValueError(f"{path} holds a {cell!r} RNN, not an {cls.__name__}: load it "
                             "with RNN.load")
        try:
            parameters = {name: value for name, value in arrays.items()
                          if name != "validation_rows"}
            model = cls.from_parameters(parameters, cell,
                                        activation=meta["activation"], output=meta["output"],
                                        dtype=meta["dtype"])
            model.task = _choice("task", meta["task"], TASKS)
            model.history = history_frame(meta["history"])
            model.validation_rows = np.asarray(arrays.get("validation_rows", np.arange(0)),
                                               dtype=np.int64)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path} is a corrupt {FILE_KIND}: {err}") from None
        return model


def _read_model_file(path) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and metadata of a saved model; files of the legacy kind get ``cell="elman"``."""
    try:
        return load_npz(path, FILE_KIND, ())
    except ValueError as error:
        try:
            arrays, meta = load_npz(path, LEGACY_KIND, ())
        except ValueError:
            raise error from None
        return arrays, {**meta, "cell": "elman"}


# ---------------------------------------------------------------------- argument checks


def _unbatched(batch: SymbolBatch, per_step: np.ndarray) -> np.ndarray:
    return per_step[0] if batch.single else per_step


def _choice(name: str, value, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def _float_dtype(dtype) -> np.dtype:
    """float32 or float64; anything else (including None, which NumPy reads as float64,
    and names NumPy does not know) is a ValueError."""
    try:
        resolved = None if dtype is None else np.dtype(dtype)
    except TypeError:
        resolved = None
    # Test by name: a dtype compares equal to None (np.dtype(None) is float64).
    if resolved is None or resolved.name not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return resolved


def finite_array(name: str, value) -> np.ndarray:
    array = float_array(name, value)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf")
    return array
