"""The recurrent cell interface, the buffers a cell works in, and the Elman cell.

A cell runs over a *window* of ``L`` steps of ``B`` sequences:

* :meth:`Cell.read_symbols` takes the window's one-hot inputs, (L, B) symbols;
* :meth:`Cell.forward` reads them and the initial state (row 0 of the state
  buffers, :meth:`Cell.set_state`) and fills ``ws.h`` (L + 1, B, H): row ``t + 1``
  the state after step ``t``;
* :meth:`Cell.backward` reads dLoss/dh in ``ws.grad_h`` rows ``1..L`` and fills
  the gradient of every cell parameter;
* :meth:`Cell.step` is one step (sampling, streaming): ``forward`` on a window
  of length one.

``ws.h`` and ``ws.grad_h`` are time-major, ``(L + 1, B, H)``: that is where the
output layer (``h_t @ W_output + b_output``, softmax), which belongs to no cell,
reads and writes (:mod:`seqmodels.rnn.output`). Inside, a cell lays out its
buffers as its recurrence runs fastest. Adding a cell is a subclass of
:class:`Cell` and one entry in :data:`seqmodels.rnn.model.CELLS`.

The Elman and GRU cells (:class:`DriveCell`) read their input through one affine
map, the *drive*::

    drive_t = x_t @ W_input + b          (B, G * H): G blocks of H columns, one per gate

so one-hot symbols are a row gather over the whole window, and hold it
gate-major, ``(G, L, B, H)``: each step reads and writes contiguous ``(B, H)``
blocks and each gate's values over the window are one contiguous ``(L, B, H)``
block (element-wise calls on column slices of a ``(B, G*H)`` row measured 3 to 5
times slower). Parameters keep the documented ``(., G*H)`` layout;
:func:`gate_blocks` views them per gate. Only the recurrence is a Python loop of a
few NumPy calls per step into preallocated buffers; the input gather, the output
layer and every parameter gradient are single operations over all ``L * B``
steps. The LSTM (:mod:`seqmodels.rnn.lstm`) lays its steps out feature-major
instead, so that each step is one matrix product over all its gates.

The Elman cell, in the worked example's row-vector form::

    pre_t    = h_{t-1} @ W_state + x_t @ W_input + b        (B, H)
    h_t      = act(pre_t)                                   (B, H)
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import ClassVar

import numpy as np

from seqmodels._checks import check_memory


@functools.cache
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # an optional speed-up: without it BLAS keeps its own thread count
        return None
    return ThreadpoolController()


def single_blas_thread() -> AbstractContextManager:
    """A context in which BLAS uses one thread.

    The recurrence is hundreds of small matrix products; splitting each across
    threads gains nothing, and on a shared machine every hand-off can wait a
    whole scheduler slice (an epoch measured 10x slower with two BLAS threads
    while another process was busy).
    """
    controller = _blas_controller()
    return nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


def array_bytes(shapes: Iterable[tuple[int, ...]], dtype: np.dtype) -> float:
    """Bytes that arrays of ``shapes`` take; a float, so huge requests cannot overflow."""
    return float(sum(float(np.prod(shape, dtype=float)) for shape in shapes)
                 * np.dtype(dtype).itemsize)


class FlatParameters:
    """Named arrays that are views into one flat vector.

    Adam and gradient-norm clipping then act on the whole vector in a handful of
    NumPy calls, whatever the number of parameter arrays.
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], dtype: np.dtype) -> None:
        self.shapes = dict(shapes)
        sizes = [int(np.prod(shape)) for shape in self.shapes.values()]
        self.flat = np.zeros(sum(sizes), dtype=dtype)
        self.views: dict[str, np.ndarray] = {}
        self.offsets: dict[str, int] = {}
        offset = 0
        for (name, shape), size in zip(self.shapes.items(), sizes, strict=True):
            self.views[name] = self.flat[offset: offset + size].reshape(shape)
            self.offsets[name] = offset
            offset += size

    def __getitem__(self, name: str) -> np.ndarray:
        return self.views[name]

    def zeros_like(self) -> FlatParameters:
        """A new buffer with the same layout, all zeros (for gradients and Adam moments)."""
        return FlatParameters(self.shapes, self.flat.dtype)

    def stacked(self, names: tuple[str, ...]) -> np.ndarray:
        """The arrays ``names``, adjacent in storage and all as wide as the first (a 1-D
        one is one row), as one (rows, width) view: ``W_state``, ``W_input`` and ``b``
        make the (H + V + 1, G*H) matrix that multiplies ``[h_{t-1}, x_t, 1]``."""
        width, order = self.shapes[names[0]][-1], list(self.shapes)
        first = order.index(names[0])
        if (tuple(order[first: first + len(names)]) != tuple(names)
                or any(self.shapes[name][-1] != width for name in names)):
            raise ValueError(f"{names} are not adjacent arrays {width} wide")
        start = self.offsets[names[0]]
        end = start + sum(self.views[name].size for name in names)
        return self.flat[start:end].reshape(-1, width)


class Workspace:
    """Preallocated arrays for one window, one attribute per entry of ``shapes``.

    Which arrays exist is decided by :meth:`Cell.buffer_shapes` (the cell's
    own) and :func:`seqmodels.rnn.output.output_buffer_shapes` (the output
    layer's). ``what`` names the request for :func:`check_memory`, which
    refuses it before anything is allocated when it cannot fit. ``training``
    says whether the backward pass's buffers are there.
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], dtype: np.dtype, what: str,
                 training: bool = False) -> None:
        check_memory(array_bytes(shapes.values(), dtype), what)
        for name, shape in shapes.items():
            setattr(self, name, np.empty(shape, dtype))
        self.training = training
        self._steps: dict[str, list] = {}

    def steps(self, name: str) -> list[np.ndarray]:
        """Step ``t``'s view of buffer ``name`` at index ``t``: ``array[t]`` of a (L, ...)
        array, ``array[:, t]`` (G, B, H) of a gate-major (G, L, B, H) one.

        Made once per workspace (training reuses a workspace for every window of
        its shape): creating the views inside the time loop cost about an eighth
        of a step at small H.
        """
        if name not in self._steps:
            array = getattr(self, name)
            self._steps[name] = list(array if array.ndim == 3 else array.transpose(1, 0, 2, 3))
        return self._steps[name]

    def gate_steps(self, name: str) -> list[tuple[np.ndarray, ...]]:
        """Step ``t``'s gates of a gate-major buffer, one (B, H) view each."""
        key = f"{name} by gate"
        if key not in self._steps:
            self._steps[key] = [tuple(step) for step in self.steps(name)]
        return self._steps[key]

    def cached(self, key: str, make: Callable[[], list]) -> list:
        """Per-step views a cell builds itself (``make()``), made once per workspace."""
        if key not in self._steps:
            self._steps[key] = make()
        return self._steps[key]

    # The buffers every cell has (see Cell.buffer_shapes); cells add their own.
    h: np.ndarray
    grad_h: np.ndarray


def sigmoid_(x: np.ndarray) -> np.ndarray:
    """In place: ``x`` becomes ``1 / (1 + exp(-x))``. Returns it.

    Written ``0.5 * tanh(x / 2) + 0.5``: NumPy's tanh is vectorized, never
    overflows, and four calls on it beat ``scipy.special.expit`` (measured 2x
    to 7x for H = 8 to 128).
    """
    x *= 0.5
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


def fill_onehot(symbols: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[:, n] = e_{symbols[n]}`` for ``symbols`` of N entries; ``out`` is (V, N)."""
    np.equal(symbols.reshape(1, -1), np.arange(out.shape[0])[:, None], out=out)
    return out


class Cell(ABC):
    """A recurrent cell: parameter shapes, the forward pass over a window, BPTT, one step.

    Parameters
    ----------
    n_inputs, n_hidden : int
        Input size ``V`` and state size ``H`` (checked by the caller).
    activation : str
        One of :attr:`activations`; only the Elman cell has a choice.

    Notes
    -----
    Every cell has ``W_state`` (H, G*H), ``W_input`` (V, G*H) and ``b`` (G*H,),
    with ``G`` = :attr:`n_gates`; a cell may add parameters
    (:meth:`param_shapes`). The state is ``h`` (what the output layer reads),
    plus further arrays named in :attr:`state_names` (the LSTM's ``c``).
    """

    name: ClassVar[str]
    #: Blocks of H columns in ``W_input``, ``W_state`` and ``b``.
    n_gates: ClassVar[int] = 1
    #: The parts of the state, ``h`` first; each (B, H) to the outside.
    state_names: ClassVar[tuple[str, ...]] = ("h",)
    activations: ClassVar[tuple[str, ...]] = ("tanh",)

    def __init__(self, n_inputs: int, n_hidden: int, activation: str = "tanh") -> None:
        if activation not in self.activations:
            raise ValueError(f"activation must be one of {self.activations} for the "
                             f"{self.name!r} cell, got {activation!r}")
        self.n_inputs, self.n_hidden, self.activation = n_inputs, n_hidden, activation

    @property
    def width(self) -> int:
        """Columns of ``W_state`` and ``W_input``: ``n_gates * n_hidden``."""
        return self.n_gates * self.n_hidden

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """The cell's parameters and their shapes, in storage order."""
        return {"W_state": (self.n_hidden, self.width), "W_input": (self.n_inputs, self.width),
                "b": (self.width,)}

    @classmethod
    def torch_parameters(cls, weight_ih, weight_hh, bias_ih, bias_hh) -> dict[str, np.ndarray]:
        """This cell's parameters from a one-layer PyTorch module's (as NumPy arrays).

        ``weight_ih_l0`` (G*H, V), ``weight_hh_l0`` (G*H, H), ``bias_ih_l0`` and
        ``bias_hh_l0`` (G*H,) of ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM``: the
        weights transposed to row-vector form, the two biases summed (the GRU
        keeps ``b_hn`` apart, see :mod:`seqmodels.rnn.gru`).
        """
        weight_ih, weight_hh, bias_ih, bias_hh = (
            np.asarray(a, dtype=np.float64) for a in (weight_ih, weight_hh, bias_ih, bias_hh))
        return {"W_state": weight_hh.T.copy(), "W_input": weight_ih.T.copy(),
                "b": bias_ih + bias_hh}

    def initialize(self, params: FlatParameters, rng: np.random.Generator) -> None:
        """PyTorch's default: every parameter uniform in ``[-1/sqrt(H), 1/sqrt(H)]``, in order."""
        bound = 1.0 / np.sqrt(self.n_hidden)
        for name, shape in self.param_shapes().items():
            params[name][...] = rng.uniform(-bound, bound, shape)

    def buffer_shapes(self, length: int, batch: int, training: bool) -> dict[str, tuple[int, ...]]:
        """The workspace arrays of a window of ``length`` steps and ``batch`` sequences.

        ``h`` (L + 1, B, H); with ``training`` also ``grad_h`` (L + 1, B, H).
        Cells extend it with their own.
        """
        shapes = {"h": (length + 1, batch, self.n_hidden)}
        if training:
            shapes["grad_h"] = (length + 1, batch, self.n_hidden)
        return shapes

    def workspace(self, length: int, batch: int, dtype: np.dtype, training: bool = False,
                  extra: dict[str, tuple[int, ...]] | None = None) -> Workspace:
        """A :class:`Workspace` for a window, plus ``extra`` arrays (the output layer's)."""
        shapes = {**self.buffer_shapes(length, batch, training), **(extra or {})}
        what = (f"a window of {length} steps x {batch} sequences with n_hidden={self.n_hidden} "
                f"({self.name} cell)")
        return Workspace(shapes, dtype, what, training)

    # ------------------------------------------------------------------ state

    def zero_state(self, batch: int, dtype: np.dtype) -> tuple[np.ndarray, ...]:
        """The initial state of ``batch`` sequences: zeros, one (B, H) array per state name."""
        return tuple(np.zeros((batch, self.n_hidden), dtype) for _ in self.state_names)

    def state_rows(self, ws: Workspace, row: int) -> tuple[np.ndarray, ...]:
        """The state at ``row`` of the window (0: the initial state, -1: after the last
        step) as views, one (B, H) array per state name."""
        return tuple(getattr(ws, name)[row] for name in self.state_names)

    def set_state(self, ws: Workspace, state: tuple[np.ndarray, ...]) -> None:
        """Put ``state`` (one (B, H) array per state name) in as the initial state."""
        for view, value in zip(self.state_rows(ws, 0), state, strict=True):
            view[...] = value

    def final_state(self, ws: Workspace) -> tuple[np.ndarray, ...]:
        """A copy of the state after the window's last step, one (B, H) array per name."""
        return tuple(view.copy() for view in self.state_rows(ws, -1))

    def step(self, params: FlatParameters, ws: Workspace) -> np.ndarray:
        """One step in a one-step workspace, the new state moved to row 0.

        The step's input is read (:meth:`read_symbols`) and row 0 of the state
        buffers holds the current state. Returns ``ws.h[0]``, the new ``h``
        (B, H) (a view).
        """
        self.forward(params, ws)
        for first, last in zip(self.state_rows(ws, 0), self.state_rows(ws, -1), strict=True):
            first[...] = last
        return ws.h[0]

    # ------------------------------------------------------------------ the passes

    @abstractmethod
    def read_symbols(self, params: FlatParameters, symbols_tm: np.ndarray,
                     ws: Workspace) -> None:
        """Take the window's inputs: one-hot symbols ``symbols_tm`` (L, B), time-major."""

    @abstractmethod
    def forward(self, params: FlatParameters, ws: Workspace) -> None:
        """Run the window: the inputs read and row 0 of the state buffers in, ``ws.h`` out."""

    @abstractmethod
    def backward(self, params: FlatParameters, ws: Workspace, grads: FlatParameters) -> None:
        """BPTT over the window after :meth:`forward` on the same workspace.

        ``ws.grad_h[t + 1]`` holds the direct gradient dLoss/dh_t from the
        output layer (it may be consumed). Fills ``grads`` of every cell
        parameter. Nothing flows into the initial state: it is a constant
        (zeros, or a state carried over from the previous truncated-BPTT window).
        """


class DriveCell(Cell):
    """A cell that reads its input as a gathered drive (module docstring): Elman and GRU.

    Its workspace adds ``drive`` (G, L, B, H), ``row`` (G, B, H) and ``scratch``
    (B, H); for training ``grad_drive`` (G, L, B, H), dLoss/d drive_t, which
    :meth:`backward` fills and from which :meth:`_input_weight_gradient` gives
    ``W_input``'s and ``b``'s gradients, and ``inputs_onehot`` (V, L * B).
    """

    def buffer_shapes(self, length: int, batch: int, training: bool) -> dict[str, tuple[int, ...]]:
        gates, hidden = self.n_gates, self.n_hidden
        shapes = {**super().buffer_shapes(length, batch, training),
                  "drive": (gates, length, batch, hidden), "row": (gates, batch, hidden),
                  "scratch": (batch, hidden)}
        shapes.update({name: (length + 1, batch, hidden) for name in self.state_names})
        if training:
            shapes.update(grad_drive=(gates, length, batch, hidden),
                          inputs_onehot=(self.n_inputs, length * batch))
        return shapes

    def input_table(self, params: FlatParameters) -> np.ndarray:
        """``W_input + b`` per gate, (G, V, H): ``[k, v]`` is gate ``k``'s drive of symbol ``v``."""
        return np.ascontiguousarray(gate_blocks(params["W_input"] + params["b"], self.n_gates))

    def gather_drive(self, params: FlatParameters, symbols_tm: np.ndarray,
                     out: np.ndarray) -> None:
        """One-hot inputs as a row gather: ``out[k, t, i]`` = gate ``k``'s block of
        ``W_input[symbols_tm[t, i]] + b``; ``symbols_tm`` (L, B), ``out`` (G, L, B, H)."""
        np.take(self.input_table(params), symbols_tm, axis=1, out=out)

    def read_symbols(self, params: FlatParameters, symbols_tm: np.ndarray,
                     ws: Workspace) -> None:
        """The drive, gathered; for training also the one-hot inputs (``W_input``'s gradient)."""
        self.gather_drive(params, symbols_tm, ws.drive)
        if ws.training:
            fill_onehot(symbols_tm, ws.inputs_onehot)

    def _state_blocks(self, params: FlatParameters, transpose: bool = False) -> np.ndarray:
        """``W_state``'s gate blocks ``W_k`` (G, H, H), contiguous; ``W_k^T`` with ``transpose``."""
        blocks = gate_blocks(params["W_state"], self.n_gates)
        return np.ascontiguousarray(blocks.transpose(0, 2, 1) if transpose else blocks)

    @staticmethod
    def _add_through_state_weights(grad_rows: np.ndarray, blocks_T: np.ndarray, ws: Workspace,
                                   grad_h: np.ndarray) -> None:
        """``grad_h += sum_k grad_rows[k] @ W_k^T``: what reaches ``h_{t-1}`` through
        ``h_{t-1} @ W_state``, from that product's gradient ``grad_rows`` (G, B, H)."""
        np.matmul(grad_rows, blocks_T, out=ws.row)
        np.add.reduce(ws.row, axis=0, out=ws.scratch)
        grad_h += ws.scratch

    def _state_weight_gradient(self, ws: Workspace, grad_rows: np.ndarray,
                               grads: FlatParameters) -> None:
        """``dW_state = sum_t h_{t-1}^T grad_rows_t``: one product over the window.

        ``grad_rows`` (G, L, B, H) is dLoss/d(h_{t-1} @ W_state), gate-major.
        """
        n_steps = grad_rows.shape[1] * grad_rows.shape[2]
        matmul_per_gate(ws.h[:-1].reshape(n_steps, self.n_hidden).T, grad_rows,
                        grads["W_state"])

    def _input_weight_gradient(self, ws: Workspace, grads: FlatParameters) -> None:
        """``W_input``'s and ``b``'s gradients from ``ws.grad_drive``: one product over the window.

        Each step has exactly one input symbol, so ``b``'s gradient, the sum
        over steps, is the sum of ``W_input``'s rows. Padded steps (past a
        sequence's end) have a zero drive gradient, so their symbols add nothing.
        """
        matmul_per_gate(ws.inputs_onehot, ws.grad_drive, grads["W_input"])
        np.add.reduce(grads["W_input"], axis=0, out=grads["b"])


def sum_rows(matrix: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = matrix.sum(axis=0)`` for a tall (N, H) matrix, as one BLAS product with a
    vector of ones (``np.sum`` over a short trailing axis measured 10x slower)."""
    return np.matmul(np.ones(matrix.shape[0], matrix.dtype), matrix, out=out)


def gate_blocks(matrix: np.ndarray, n_gates: int) -> np.ndarray:
    """A (R, G*H) parameter as G blocks of columns: a (G, R, H) view."""
    rows = matrix.shape[0]
    return matrix.reshape(rows, n_gates, -1).transpose(1, 0, 2)


def matmul_per_gate(left: np.ndarray, per_gate: np.ndarray, out: np.ndarray) -> None:
    """``out[:, block k] = left @ per_gate[k]`` for (R, N) ``left``, (G, ..., H) ``per_gate``
    (all but the first and last axes flattened to N) and (R, G*H) ``out``."""
    n_gates, hidden = per_gate.shape[0], per_gate.shape[-1]
    product = np.matmul(left, per_gate.reshape(n_gates, -1, hidden))
    np.copyto(gate_blocks(out, n_gates), product)


# ---------------------------------------------------------------------- the Elman cell


class ElmanCell(DriveCell):
    """The worked example's cell: ``h_t = act(h_{t-1} @ W_state + x_t @ W_input + b)``.

    ``act`` is tanh or the identity (``activation="linear"``). Parameters
    ``W_state`` (H, H), ``W_input`` (V, H), ``b`` (H,); PyTorch's ``nn.RNN`` with
    ``W_state = weight_hh_l0.T``, ``W_input = weight_ih_l0.T`` and
    ``b = bias_ih_l0 + bias_hh_l0``.
    """

    name = "elman"
    activations = ("tanh", "linear")

    def buffer_shapes(self, length: int, batch: int, training: bool) -> dict[str, tuple[int, ...]]:
        shapes = super().buffer_shapes(length, batch, training)
        if training:
            shapes["slope"] = (length, batch, self.n_hidden)  # act'(pre_t)
        return shapes

    def forward(self, params: FlatParameters, ws: Workspace) -> None:
        """``ws.drive`` becomes the pre-activations ``pre_t``; ``ws.h`` the states."""
        tanh = self.activation == "tanh"
        drive, h, row, W_state = ws.steps("drive"), ws.steps("h"), ws.row[0], params["W_state"]
        for t in range(len(drive)):
            pre = drive[t][0]
            np.matmul(h[t], W_state, out=row)
            np.add(pre, row, out=pre)
            if tanh:
                np.tanh(pre, out=h[t + 1])
            else:
                np.copyto(h[t + 1], pre)

    def backward(self, params: FlatParameters, ws: Workspace, grads: FlatParameters) -> None:
        """The recursion, with ``act' = 1 - h_t**2`` for tanh and 1 for linear::

            g_t        = direct_t + grad_pre_{t+1} @ W_state.T
            grad_pre_t = g_t * act'(pre_t)

        ``grad_pre`` is ``ws.grad_drive[0]``.
        """
        grad_pre, grad_h, slope = ws.gate_steps("grad_drive"), ws.steps("grad_h"), ws.steps("slope")
        row, length = ws.row[0], len(grad_pre)
        tanh = self.activation == "tanh"
        if tanh:
            np.multiply(ws.h[1:], ws.h[1:], out=ws.slope)
            np.subtract(1.0, ws.slope, out=ws.slope)
        W_state_T = np.ascontiguousarray(params["W_state"].T)
        for t in range(length - 1, -1, -1):
            direct, (grad_pre_t,) = grad_h[t + 1], grad_pre[t]
            if t < length - 1:
                np.matmul(grad_pre[t + 1][0], W_state_T, out=row)
                np.add(direct, row, out=direct)
            if tanh:
                np.multiply(direct, slope[t], out=grad_pre_t)
            else:
                np.copyto(grad_pre_t, direct)
        self._state_weight_gradient(ws, ws.grad_drive, grads)
        self._input_weight_gradient(ws, grads)
