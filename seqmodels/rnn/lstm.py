"""The long short-term memory cell (LSTM), with PyTorch's equations and gate order.

In row-vector form, gates in PyTorch's order (i, f, g, o)::

    i_t = sigmoid(x_t W_ii + h_{t-1} W_hi + b_i)          input gate
    f_t = sigmoid(x_t W_if + h_{t-1} W_hf + b_f)          forget gate
    g_t = tanh(x_t W_ig + h_{t-1} W_hg + b_g)             candidate
    o_t = sigmoid(x_t W_io + h_{t-1} W_ho + b_o)          output gate
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

The state is the pair ``(h, c)``; the output layer and ``hidden_states`` read
``h``. The parameters, and how PyTorch's ``nn.LSTM`` (one layer) maps onto them:

========  ==========  ==================================================
name      shape       from ``torch.nn.LSTM``
========  ==========  ==================================================
W_input   (V, 4H)     ``weight_ih_l0.T``: columns [W_ii | W_if | W_ig | W_io]
W_state   (H, 4H)     ``weight_hh_l0.T``
b         (4H,)       ``bias_ih_l0 + bias_hh_l0``
========  ==========  ==================================================

Initialization as PyTorch's (uniform in ``[-1/sqrt(H), 1/sqrt(H)]``) except the
forget gate's bias, which starts at 1 so that early in training the cell
remembers rather than forgets (Jozefowicz, Zaremba & Sutskever 2015).
"""

from __future__ import annotations

import numpy as np

from seqmodels.rnn.cells import DriveCell, FlatParameters, Workspace


class LSTMCell(DriveCell):
    """PyTorch's LSTM cell (module docstring): state ``(h, c)``, gates (i, f, g, o).

    Takes no ``activation`` choice: its nonlinearities (sigmoid gates, tanh
    candidate and output) are part of its definition, so only ``"tanh"`` is
    accepted.
    """

    name = "lstm"
    n_gates = 4
    state_names = ("h", "c")

    def initialize(self, params: FlatParameters, rng: np.random.Generator) -> None:
        super().initialize(params, rng)
        params["b"][self.n_hidden: 2 * self.n_hidden] = 1.0

    def buffer_shapes(self, length: int, batch: int, training: bool) -> dict[str, tuple[int, ...]]:
        """Adds ``gates`` (4, L, B, H): i, f, g, o after their nonlinearities;
        ``tanh_c`` (L, B, H); for training the backward
        coefficients ``coef`` (4, L, B, H) and ``slope_c`` (L, B, H), and ``grad_c``
        and ``carry_c`` (B, H)."""
        hidden, gated = self.n_hidden, (4, length, batch, self.n_hidden)
        shapes = {**super().buffer_shapes(length, batch, training),
                  "gates": gated, "tanh_c": (length, batch, hidden)}
        if training:
            shapes.update(coef=gated, slope_c=(length, batch, hidden),
                          grad_c=(batch, hidden), carry_c=(batch, hidden))
        return shapes

    @staticmethod
    def _gate_scale(dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """``(scale, shift)``, each (4, 1, 1), with ``tanh(pre * scale) * scale + shift``
        the four gates' nonlinearities at once: ``sigmoid(x) = tanh(x / 2) / 2 + 1/2``
        for i, f, o and tanh for g."""
        scale = np.array([0.5, 0.5, 1.0, 0.5], dtype).reshape(4, 1, 1)
        shift = np.array([0.5, 0.5, 0.0, 0.5], dtype).reshape(4, 1, 1)
        return scale, shift

    def input_table(self, params: FlatParameters) -> np.ndarray:
        """The drive as :meth:`forward` reads it: ``W_input + b`` per gate, (4, V, H),
        pre-scaled like ``W_state`` there (one multiply per window, not per step)."""
        scale, _ = self._gate_scale(params.flat.dtype)
        return super().input_table(params) * scale

    def forward(self, params: FlatParameters, ws: Workspace) -> None:
        """``ws.drive`` holds the scaled drive (:meth:`input_table`)."""
        scale, shift = self._gate_scale(ws.drive.dtype)
        W_blocks = self._state_blocks(params) * scale   # (4, H, H), scaled like the drive
        row, scratch = ws.row, ws.scratch
        h, c, tanh_c, drive = ws.steps("h"), ws.steps("c"), ws.steps("tanh_c"), ws.steps("drive")
        gates, blocks = ws.steps("gates"), ws.gate_steps("gates")
        for t in range(len(drive)):
            np.matmul(h[t], W_blocks, out=row)
            np.add(drive[t], row, out=gates[t])             # pre * scale
            np.tanh(gates[t], out=gates[t])
            gates[t] *= scale
            gates[t] += shift
            input_gate, forget, candidate, output_gate = blocks[t]
            np.multiply(forget, c[t], out=c[t + 1])
            np.multiply(input_gate, candidate, out=scratch)
            c[t + 1] += scratch
            np.tanh(c[t + 1], out=tanh_c[t])
            np.multiply(output_gate, tanh_c[t], out=h[t + 1])

    def backward(self, params: FlatParameters, ws: Workspace, grads: FlatParameters) -> None:
        """BPTT. With ``dh_t`` the total gradient on ``h_t`` and ``dc_t`` on ``c_t``::

            dh_t   = direct_t + d pre_{t+1} @ W_state.T
            dc_t   = dh_t o_t (1 - tanh(c_t)^2) + dc_{t+1} f_{t+1}
            d pre  = [dc_t g_t i'_t, dc_t c_{t-1} f'_t, dc_t i_t (1 - g_t^2), dh_t tanh(c_t) o'_t]

        with ``a' = a (1 - a)`` for a sigmoid gate. The factors after ``dc_t`` and
        ``dh_t`` are known after the forward pass (``coef``, ``slope_c``), so each
        step is one batched product and a few element-wise calls. The
        pre-activations' gradient is the drive's, ``ws.grad_drive``.
        """
        length = ws.drive.shape[1]
        self._coefficients(ws)
        coef, coef_o = ws.steps("coef"), [blocks[3] for blocks in ws.gate_steps("coef")]
        grad_pre, slope_c, grad_h = ws.steps("grad_drive"), ws.steps("slope_c"), ws.steps("grad_h")
        forget = [blocks[1] for blocks in ws.gate_steps("gates")]
        grad_c, carry_c = ws.grad_c, ws.carry_c
        blocks_T = self._state_blocks(params, transpose=True)
        for t in range(length - 1, -1, -1):
            if t < length - 1:
                self._add_through_state_weights(grad_pre[t + 1], blocks_T, ws, grad_h[t + 1])
            np.multiply(grad_h[t + 1], slope_c[t], out=grad_c)
            if t < length - 1:
                grad_c += carry_c
            np.multiply(grad_c, coef[t], out=grad_pre[t])             # i, f, g blocks ...
            np.multiply(grad_h[t + 1], coef_o[t], out=grad_pre[t][3])  # ... o from dh
            np.multiply(grad_c, forget[t], out=carry_c)
        self._state_weight_gradient(ws, ws.grad_drive, grads)
        self._input_weight_gradient(ws, grads)

    def _coefficients(self, ws: Workspace) -> None:
        """Over the whole window: ``coef`` = [g i', c_{t-1} f', i (1 - g^2), tanh(c) o']
        and ``slope_c`` = ``o (1 - tanh(c)^2)``."""
        gates, coef = ws.gates, ws.coef
        input_gate, _, candidate, output_gate = gates
        coef_i, coef_f, coef_g, coef_o = coef
        np.subtract(1.0, gates, out=coef)
        coef *= gates                                   # a (1 - a), every block
        np.multiply(candidate, candidate, out=coef_g)
        np.subtract(1.0, coef_g, out=coef_g)            # 1 - g^2 in the g block
        coef_i *= candidate
        coef_f *= ws.c[:-1]
        coef_g *= input_gate
        coef_o *= ws.tanh_c
        slope = ws.slope_c
        np.multiply(ws.tanh_c, ws.tanh_c, out=slope)
        np.subtract(1.0, slope, out=slope)
        slope *= output_gate
