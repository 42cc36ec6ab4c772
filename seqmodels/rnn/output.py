"""The output layer every cell shares, and running a cell over symbol batches.

The output layer reads a state and gives the outputs::

    logits_t = h @ W_output + b_output                      (B, n_outputs)
    P(. | ...) = softmax(logits_t)

Which state output ``t`` reads depends on the task:

* ``"next"`` (next-symbol prediction): the state after ``x_0..x_{t-1}`` (the
  initial state for ``t = 0``), so ``[:, t]`` is P(x_t | x_0..x_{t-1});
* ``"labels"`` (supervised decoding): the state after ``x_0..x_t``, so
  ``[:, t]`` is P(z_t | x_0..x_t).

Logits are held class-major, ``(n_outputs, L * B)``, so that softmax's max and
sum reduce over the leading axis (element-wise across rows, fast) instead of a
short trailing one.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from seqmodels._checks import check_memory
from seqmodels.rnn.cells import Cell, FlatParameters, Workspace, array_bytes

TASKS = ("next", "labels")


def output_param_shapes(n_hidden: int, n_outputs: int) -> dict[str, tuple[int, ...]]:
    """``W_output`` (H, n_outputs) and ``b_output`` (n_outputs,)."""
    return {"W_output": (n_hidden, n_outputs), "b_output": (n_outputs,)}


def output_buffer_shapes(length: int, batch: int, n_outputs: int,
                         training: bool) -> dict[str, tuple[int, ...]]:
    """The output layer's workspace arrays: ``logits`` (n_outputs, L * B); for training
    also ``targets_onehot`` (n_outputs, L * B)."""
    steps = length * batch
    shapes = {"logits": (n_outputs, steps)}
    if training:
        shapes["targets_onehot"] = (n_outputs, steps)
    return shapes


def window_workspace(cell: Cell, length: int, batch: int, n_outputs: int, dtype: np.dtype,
                     training: bool) -> Workspace:
    """The cell's and the output layer's arrays for a window of ``length`` x ``batch``."""
    extra = output_buffer_shapes(length, batch, n_outputs, training)
    return cell.workspace(length, batch, dtype, training, extra)


def forward_symbols(cell: Cell, params: FlatParameters, symbols_tm: np.ndarray,
                    state0: tuple[np.ndarray, ...], ws: Workspace) -> None:
    """Run ``cell`` over one-hot ``symbols_tm`` (L, B) from ``state0`` into ``ws``."""
    cell.read_symbols(params, symbols_tm, ws)
    cell.set_state(ws, state0)
    cell.forward(params, ws)


def output_states(ws: Workspace, task: str) -> np.ndarray:
    """The states the outputs read (module docstring), flattened to (L * B, H)."""
    rows = ws.h[:-1] if task == "next" else ws.h[1:]
    return rows.reshape(-1, rows.shape[-1])


def linear_outputs(states_flat: np.ndarray, params: FlatParameters, out: np.ndarray) -> None:
    """All outputs at once, class-major: ``out = (states_flat @ W_output + b_output).T``.

    ``states_flat`` is (N, H), ``out`` (n_outputs, N).
    """
    np.matmul(params["W_output"].T, states_flat.T, out=out)
    out += params["b_output"][:, None]


def log_softmax_columns(logits: np.ndarray) -> np.ndarray:
    """In place: ``logits`` (V, N) becomes ``log softmax`` of each column. Returns it."""
    logits -= logits.max(axis=0)
    norm = np.exp(logits).sum(axis=0)
    logits -= np.log(norm)
    return logits


def mean_log_loss(logp: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean of ``-logp[b, t, targets[b, t]]`` over the steps where ``mask`` (B, T) is
    True (all when None): nats per symbol."""
    picked = np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    if mask is not None:
        picked = picked[mask]
    return float(-picked.mean(dtype=np.float64))


# ---------------------------------------------------------------------- whole batches


def _groups(cell: Cell, params: FlatParameters, symbols: np.ndarray, n_outputs: int,
            max_elements: int) -> Iterator[tuple[slice, Workspace]]:
    """Run the cell over ``symbols`` (B, T) from the zero state, a group of sequences at
    a time so that no buffer holds much more than ``max_elements`` numbers, whatever B.

    Yields the rows of each group and its workspace after the forward pass.
    """
    n_seq, length = symbols.shape
    dtype = params.flat.dtype
    group = max(1, max_elements // (length * max(cell.width, n_outputs)))
    for start in range(0, n_seq, group):
        part = symbols[start: start + group]
        ws = window_workspace(cell, length, part.shape[0], n_outputs, dtype, training=False)
        forward_symbols(cell, params, np.ascontiguousarray(part.T),
                        cell.zero_state(part.shape[0], dtype), ws)
        yield slice(start, start + part.shape[0]), ws


def _result(shape: tuple[int, ...], dtype: np.dtype, what: str) -> np.ndarray:
    check_memory(array_bytes([shape], dtype), what)
    return np.empty(shape, dtype)


def log_proba(cell: Cell, params: FlatParameters, task: str, symbols: np.ndarray,
              max_elements: int = 2**21) -> np.ndarray:
    """Log-probabilities of the softmax outputs, (B, T, n_outputs), for a (B, T) int batch."""
    n_seq, length = symbols.shape
    n_outputs = params.shapes["b_output"][0]
    result = _result((n_seq, length, n_outputs), params.flat.dtype,
                     f"outputs of {n_seq} sequences x {length} steps x {n_outputs} outputs")
    for rows, ws in _groups(cell, params, symbols, n_outputs, max_elements):
        linear_outputs(output_states(ws, task), params, ws.logits)
        logp = log_softmax_columns(ws.logits).reshape(n_outputs, length, -1)
        result[rows] = logp.transpose(2, 1, 0)
    return result


def hidden_states(cell: Cell, params: FlatParameters, symbols: np.ndarray,
                  max_elements: int = 2**21) -> np.ndarray:
    """``h`` after reading ``x_0..x_t`` from the zero state, (B, T, H), for a (B, T) batch."""
    n_seq, length = symbols.shape
    n_outputs = params.shapes["b_output"][0]
    result = _result((n_seq, length, cell.n_hidden), params.flat.dtype,
                     f"states of {n_seq} sequences x {length} steps x n_hidden={cell.n_hidden}")
    for rows, ws in _groups(cell, params, symbols, n_outputs, max_elements):
        result[rows] = ws.h[1:].transpose(1, 0, 2)
    return result
