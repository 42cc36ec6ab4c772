"""The worked example's model: :class:`ElmanRNN`, an :class:`~seqmodels.rnn.model.RNN` with
the Elman cell, its parameters by name, and a forward pass that also takes real inputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqmodels._checks import Seed, as_symbol_batch, plain_array, readonly
from seqmodels.rnn.model import RNN, finite_array, single_threaded


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


def _parameter(name: str) -> property:
    def read(self: ElmanRNN) -> np.ndarray:
        return readonly(self._params[name], self.dtype)

    return property(read, doc=f"The parameter ``{name}``: a read-only copy (shapes in the "
                              "class docstring).")


class ElmanRNN(RNN):
    """An Elman recurrent network in the worked example's row-vector form.

    .. math::

        s_t = \\mathrm{act}(s_{t-1} W_{state} + x_t W_{input} + b), \\qquad
        o_t = s_t W_{output} + b_{output}

    ``RNN(..., cell="elman")`` with the parameters as attributes, a constructor
    from them (:meth:`from_params`) and a :meth:`forward` pass that also takes
    real inputs. Everything else is :class:`RNN`'s.

    Parameters
    ----------
    n_inputs, n_hidden, n_outputs : int
    activation : {"tanh", "linear"}
    output : {"softmax", "linear"}
    seed : int, numpy.random.Generator or None
    dtype : numpy.float64 (default) or numpy.float32
        As for :class:`RNN`.

    Attributes
    ----------
    W_state (H, H), W_input (n_inputs, H), b (H,), W_output (H, n_outputs), b_output (n_outputs,)
        The parameters (read-only copies).
    """

    only_cell = "elman"
    W_state = _parameter("W_state")
    W_input = _parameter("W_input")
    b = _parameter("b")
    W_output = _parameter("W_output")
    b_output = _parameter("b_output")

    def __init__(self, n_inputs: int, n_hidden: int, n_outputs: int, activation: str = "tanh",
                 output: str = "softmax", seed: Seed = None, dtype=np.float64) -> None:
        super().__init__(n_inputs, n_hidden, n_outputs, "elman", activation=activation,
                         output=output, seed=seed, dtype=dtype)

    @classmethod
    def from_params(cls, W_state, W_input, b, W_output, b_output, activation: str = "tanh",
                    output: str = "softmax", dtype=np.float64) -> ElmanRNN:
        """A network with the given parameters (shapes as in the class docstring).

        ``b`` and ``b_output`` may be scalars when ``H`` or ``n_outputs`` is 1.
        ``ValueError`` if a shape disagrees or a value is not finite.
        """
        parameters = {"W_state": W_state, "W_input": W_input, "b": b, "W_output": W_output,
                      "b_output": b_output}
        return cls.from_parameters(parameters, "elman", activation=activation, output=output,
                                   dtype=dtype)

    def _describe(self) -> str:
        return ""

    @single_threaded
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
        length, n_seq, _ = drive_tm.shape
        ws = self._cell.workspace(length, n_seq, self.dtype)
        ws.drive[0] = drive_tm
        self._cell.set_state(ws, (self._initial_state(state0, n_seq),))
        self._cell.forward(self._params, ws)
        states = ws.h[1:]
        outputs = states @ self._params["W_output"] + self._params["b_output"]
        result = [np.ascontiguousarray(a.transpose(1, 0, 2))
                  for a in (ws.drive[0], states, outputs)]
        return ForwardResult(*(a[0] if single else a for a in result))

    def _drive(self, inputs) -> tuple[np.ndarray, bool]:
        """``x_t @ W_input + b``, time-major (T, B, H), and whether one sequence was given."""
        array = plain_array("inputs", inputs)
        if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
            batch, single = as_symbol_batch(array, self.n_inputs, "inputs")
            drive = np.empty((1, batch.shape[1], batch.shape[0], self.n_hidden), self.dtype)
            self._cell.gather_drive(self._params, batch.T, drive)
            return drive[0], single
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

    def _initial_state(self, state0, n_seq: int) -> np.ndarray:
        if state0 is None:
            return np.zeros((n_seq, self.n_hidden), self.dtype)
        state = finite_array("state0", state0)
        if state.shape not in ((self.n_hidden,), (n_seq, self.n_hidden)):
            raise ValueError(f"state0 must have shape ({self.n_hidden},) or "
                             f"({n_seq}, {self.n_hidden}), got {state.shape}")
        return np.broadcast_to(state, (n_seq, self.n_hidden))
