"""The Elman cell's arithmetic: flat parameters, the forward recurrence and BPTT.

Row-vector form, as in the worked example::

    pre_t    = state_{t-1} @ W_state + x_t @ W_input + b        (B, H)
    state_t  = act(pre_t)                                       (B, H)
    output_t = state_t @ W_output + b_output                    (B, n_outputs)

Everything here is time-major: a window of ``L`` steps is held as ``(L, B, H)``
arrays so each step reads and writes one contiguous ``(B, H)`` block, and
``states`` has ``L + 1`` rows with the initial state in row 0. Only the
recurrence is a Python loop (one matrix product and two element-wise calls per
step, all into preallocated buffers); the input gather, the output layer and
every parameter gradient are single operations over all ``L * B`` steps.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager, nullcontext

import numpy as np

PARAM_NAMES = ("W_state", "W_input", "b", "W_output", "b_output")
ACTIVATIONS = ("tanh", "linear")
OUTPUTS = ("softmax", "linear")


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


def param_shapes(n_inputs: int, n_hidden: int, n_outputs: int) -> dict[str, tuple[int, ...]]:
    """Shapes of the five parameters, in :data:`PARAM_NAMES` order."""
    return {
        "W_state": (n_hidden, n_hidden),
        "W_input": (n_inputs, n_hidden),
        "b": (n_hidden,),
        "W_output": (n_hidden, n_outputs),
        "b_output": (n_outputs,),
    }


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
        offset = 0
        for (name, shape), size in zip(self.shapes.items(), sizes, strict=True):
            self.views[name] = self.flat[offset: offset + size].reshape(shape)
            offset += size

    def __getitem__(self, name: str) -> np.ndarray:
        return self.views[name]

    def zeros_like(self) -> FlatParameters:
        """A new buffer with the same layout, all zeros (for gradients and Adam moments)."""
        return FlatParameters(self.shapes, self.flat.dtype)


class Workspace:
    """Preallocated time-major buffers for one window of ``L`` steps and ``B`` sequences.

    Attributes
    ----------
    drive : (L, B, H)
        ``x_t @ W_input + b`` on entry to :func:`run_recurrence`, pre-activations after.
    states : (L + 1, B, H)
        Row 0 the initial state, row ``t + 1`` the state after step ``t``.
    slope, grad_pre : (L, B, H)
        ``act'(pre_t)`` and dLoss/dpre_t during backpropagation.
    grad_states : (L + 1, B, H)
        dLoss/dstate, the output layer's part on entry to :func:`backprop_through_time`.
    logits, targets_onehot : (n_outputs, L * B)
    inputs_onehot : (n_inputs, L * B)
        Class-major, so that softmax's max and sum reduce over the leading axis
        (fast, element-wise across rows) instead of a short trailing one.
    row : (B, H)
        Scratch for one step's matrix product.
    """

    def __init__(self, length: int, batch: int, shapes: dict[str, tuple[int, ...]],
                 dtype: np.dtype) -> None:
        n_inputs, n_hidden = shapes["W_input"]
        n_outputs = shapes["b_output"][0]
        steps = length * batch
        self.drive = np.empty((length, batch, n_hidden), dtype)
        self.states = np.empty((length + 1, batch, n_hidden), dtype)
        self.slope = np.empty((length, batch, n_hidden), dtype)
        self.grad_pre = np.empty((length, batch, n_hidden), dtype)
        self.grad_states = np.empty((length + 1, batch, n_hidden), dtype)
        self.logits = np.empty((n_outputs, steps), dtype)
        self.targets_onehot = np.empty((n_outputs, steps), dtype)
        self.inputs_onehot = np.empty((n_inputs, steps), dtype)
        self.row = np.empty((batch, n_hidden), dtype)


def input_table(params: FlatParameters) -> np.ndarray:
    """``W_input + b``, (V, H): row ``v`` is ``e_v @ W_input + b``, the drive of symbol ``v``."""
    return params["W_input"] + params["b"]


def gather_drive(params: FlatParameters, symbols_tm: np.ndarray, out: np.ndarray) -> None:
    """One-hot inputs as a row gather: ``out[t, i] = W_input[symbols_tm[t, i]] + b``."""
    np.take(input_table(params), symbols_tm, axis=0, out=out)


def run_recurrence(drive: np.ndarray, W_state: np.ndarray, states: np.ndarray,
                   activation: str, row: np.ndarray) -> None:
    """The forward loop over time.

    Parameters
    ----------
    drive : numpy.ndarray, shape (L, B, H)
        ``x_t @ W_input + b``; overwritten with the pre-activations ``pre_t``.
    W_state : numpy.ndarray, shape (H, H)
    states : numpy.ndarray, shape (L + 1, B, H)
        ``states[0]`` is the initial state; rows ``1..L`` are filled.
    activation : {"tanh", "linear"}
    row : numpy.ndarray, shape (B, H)
        Scratch space.
    """
    tanh = activation == "tanh"
    for t in range(drive.shape[0]):
        pre = drive[t]
        np.matmul(states[t], W_state, out=row)
        np.add(pre, row, out=pre)
        if tanh:
            np.tanh(pre, out=states[t + 1])
        else:
            np.copyto(states[t + 1], pre)


def backprop_through_time(ws: Workspace, W_state: np.ndarray, activation: str) -> np.ndarray:
    """Backward loop over time: dLoss/dpre_t for every step of the window.

    ``ws.grad_states[1:]`` holds the direct gradient dLoss/dstate_t from the
    output layer; it is consumed (overwritten). The recursion is::

        g_t      = direct_t + grad_pre_{t+1} @ W_state.T
        grad_pre_t = g_t * act'(pre_t),   act' = 1 - state_t**2 for tanh, 1 for linear

    Nothing flows into the initial state: it is a constant (zeros or a state
    carried over from the previous truncated-BPTT window).

    Returns
    -------
    numpy.ndarray, shape (L, B, H)
        ``ws.grad_pre`` filled.
    """
    grad_pre, grad_states, row, slope = ws.grad_pre, ws.grad_states, ws.row, ws.slope
    length = grad_pre.shape[0]
    tanh = activation == "tanh"
    if tanh:
        np.multiply(ws.states[1:], ws.states[1:], out=slope)
        np.subtract(1.0, slope, out=slope)
    W_state_T = np.ascontiguousarray(W_state.T)
    for t in range(length - 1, -1, -1):
        direct = grad_states[t + 1]
        if t < length - 1:
            np.matmul(grad_pre[t + 1], W_state_T, out=row)
            np.add(direct, row, out=direct)
        if tanh:
            np.multiply(direct, slope[t], out=grad_pre[t])
        else:
            np.copyto(grad_pre[t], direct)
    return grad_pre


def fill_onehot(symbols: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[:, n] = e_{symbols[n]}`` for ``symbols`` of N entries; ``out`` is (V, N)."""
    out.fill(0.0)
    out[symbols.ravel(), np.arange(symbols.size)] = 1.0
    return out


def log_softmax_columns(logits: np.ndarray) -> np.ndarray:
    """In place: ``logits`` (V, N) becomes ``log softmax`` of each column. Returns it."""
    logits -= logits.max(axis=0)
    norm = np.exp(logits).sum(axis=0)
    logits -= np.log(norm)
    return logits


def forward_symbols(params: FlatParameters, symbols_tm: np.ndarray, state0: np.ndarray,
                    activation: str, ws: Workspace) -> None:
    """Run the cell over one-hot ``symbols_tm`` (L, B) from ``state0`` (B, H) into ``ws``."""
    gather_drive(params, symbols_tm, ws.drive)
    ws.states[0] = state0
    run_recurrence(ws.drive, params["W_state"], ws.states, activation, ws.row)


def output_states(ws: Workspace, task: str) -> np.ndarray:
    """The states the outputs read, flattened to (L * B, H).

    ``"labels"``: output ``t`` reads the state after ``x_t`` (rows ``1..L``).
    ``"next"``: output ``t`` reads the state after ``x_{t-1}`` (rows ``0..L-1``),
    so step 0 is predicted from the initial state alone: the inputs are in
    effect shifted right by one step.
    """
    rows = ws.states[:-1] if task == "next" else ws.states[1:]
    return rows.reshape(-1, rows.shape[-1])


def log_proba(params: FlatParameters, activation: str, task: str, symbols: np.ndarray,
              max_elements: int = 2**21) -> np.ndarray:
    """Log-probabilities of the softmax outputs, (B, T, n_outputs), for a (B, T) int batch.

    Sequences are processed in groups so that no buffer holds much more than
    ``max_elements`` numbers, whatever ``B``.
    """
    n_seq, length = symbols.shape
    n_hidden = params.shapes["W_state"][0]
    n_outputs = params.shapes["b_output"][0]
    group = max(1, max_elements // (length * max(n_hidden, n_outputs)))
    result = np.empty((n_seq, length, n_outputs), params.flat.dtype)
    for start in range(0, n_seq, group):
        part = symbols[start: start + group]
        ws = Workspace(length, part.shape[0], params.shapes, params.flat.dtype)
        state0 = np.zeros((part.shape[0], n_hidden), params.flat.dtype)
        forward_symbols(params, np.ascontiguousarray(part.T), state0, activation, ws)
        linear_outputs(output_states(ws, task), params, ws.logits)
        logp = log_softmax_columns(ws.logits).reshape(n_outputs, length, part.shape[0])
        result[start: start + part.shape[0]] = logp.transpose(2, 1, 0)
    return result


def mean_log_loss(logp: np.ndarray, targets: np.ndarray) -> float:
    """Mean of ``-logp[b, t, targets[b, t]]`` over all steps: nats per symbol."""
    picked = np.take_along_axis(logp, targets[..., None], axis=-1)
    return float(-picked.mean(dtype=np.float64))


def linear_outputs(states_flat: np.ndarray, params: FlatParameters, out: np.ndarray) -> None:
    """All (L * B) outputs at once, class-major: ``out = (states_flat @ W_output + b_output).T``.

    ``states_flat`` is (N, H), ``out`` (n_outputs, N).
    """
    np.matmul(params["W_output"].T, states_flat.T, out=out)
    out += params["b_output"][:, None]
