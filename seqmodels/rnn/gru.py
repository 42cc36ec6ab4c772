"""The gated recurrent unit (GRU), with PyTorch's equations and gate order.

In row-vector form, gates in PyTorch's order (r, z, n)::

    r_t = sigmoid(x_t W_ir + b_ir + h_{t-1} W_hr + b_hr)             reset gate
    z_t = sigmoid(x_t W_iz + b_iz + h_{t-1} W_hz + b_hz)             update gate
    n_t = tanh(x_t W_in + b_in + r_t * (h_{t-1} W_hn + b_hn))        candidate
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

The parameters, and how PyTorch's ``nn.GRU`` (one layer) maps onto them:

========  ==========  ==================================================
name      shape       from ``torch.nn.GRU``
========  ==========  ==================================================
W_input   (V, 3H)     ``weight_ih_l0.T``: columns [W_ir | W_iz | W_in]
W_state   (H, 3H)     ``weight_hh_l0.T``: columns [W_hr | W_hz | W_hn]
b         (3H,)       ``bias_ih_l0 + [b_hr, b_hz, 0]``
b_state   (H,)        ``b_hn``: inside the reset product, so it cannot join ``b``
========  ==========  ==================================================
"""

from __future__ import annotations

import numpy as np

from seqmodels.rnn.cells import DriveCell, FlatParameters, Workspace, sigmoid_, sum_rows


class GRUCell(DriveCell):
    """PyTorch's GRU cell (module docstring): state ``h``, gates (r, z, n).

    Takes no ``activation`` choice: its nonlinearities (sigmoid gates, tanh
    candidate) are part of its definition, so only ``"tanh"`` is accepted.
    """

    name = "gru"
    n_gates = 3

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {**super().param_shapes(), "b_state": (self.n_hidden,)}

    @classmethod
    def torch_parameters(cls, weight_ih, weight_hh, bias_ih, bias_hh) -> dict[str, np.ndarray]:
        """As :meth:`Cell.torch_parameters`, with ``b_hn`` (the last H entries of
        ``bias_hh_l0``) kept apart as ``b_state``."""
        bias_hh = np.asarray(bias_hh, dtype=np.float64)
        two = 2 * bias_hh.size // 3
        joined = np.concatenate([bias_hh[:two], np.zeros(bias_hh.size - two)])
        return {**super().torch_parameters(weight_ih, weight_hh, bias_ih, joined),
                "b_state": bias_hh[two:].copy()}

    def buffer_shapes(self, length: int, batch: int, training: bool) -> dict[str, tuple[int, ...]]:
        """Adds ``gates`` (3, L, B, H): r, z, n after their nonlinearities; ``hidden_n``
        (L, B, H): ``h_{t-1} W_hn + b_hn``; for training the backward coefficients
        ``coef`` (3, L, B, H) and ``slope_n`` (L, B, H), and ``grad_row`` (3, L, B, H)."""
        hidden, gated = self.n_hidden, (3, length, batch, self.n_hidden)
        shapes = {**super().buffer_shapes(length, batch, training),
                  "gates": gated, "hidden_n": (length, batch, hidden)}
        if training:
            shapes.update(coef=gated, slope_n=(length, batch, hidden), grad_row=gated)
        return shapes

    def forward(self, params: FlatParameters, ws: Workspace) -> None:
        W_blocks = self._state_blocks(params)   # (3, H, H)
        b_state, row, row_n = params["b_state"], ws.row, ws.row[2]
        h, hidden_n, drive = ws.steps("h"), ws.steps("hidden_n"), ws.steps("drive")
        reset_update = [step[:2] for step in ws.steps("gates")]
        gates, drive_n = ws.gate_steps("gates"), [blocks[2] for blocks in ws.gate_steps("drive")]
        for t in range(len(drive)):
            reset, update, candidate = gates[t]
            np.matmul(h[t], W_blocks, out=row)
            np.add(drive[t][:2], row[:2], out=reset_update[t])
            sigmoid_(reset_update[t])
            np.add(row_n, b_state, out=hidden_n[t])
            np.multiply(reset, hidden_n[t], out=candidate)
            candidate += drive_n[t]
            np.tanh(candidate, out=candidate)
            # h_t = n + z * (h_{t-1} - n)
            np.subtract(h[t], candidate, out=h[t + 1])
            h[t + 1] *= update
            h[t + 1] += candidate

    def backward(self, params: FlatParameters, ws: Workspace, grads: FlatParameters) -> None:
        """BPTT. With ``dh_t`` the total gradient on ``h_t``::

            d n_pre   = dh_t (1 - z_t)(1 - n_t^2)                 =: dh_t A_t
            d z_pre   = dh_t (h_{t-1} - n_t) z_t (1 - z_t)
            d r_pre   = d n_pre (h_{t-1} W_hn + b_hn) r_t (1 - r_t)
            d(h_{t-1} W_state) = [d r_pre, d z_pre, d n_pre r_t]      (the "row" gradient)
            dh_{t-1}  = direct_{t-1} + dh_t z_t + d(row)_t @ W_state.T

        All three blocks of the row gradient are ``dh_t`` times a coefficient
        known after the forward pass (``coef``, computed once over the window),
        so each step is one batched product and a few element-wise calls. The
        drive's gradient is the row gradient with ``d n_pre`` in the n block.
        """
        length = ws.drive.shape[1]
        self._coefficients(ws)
        coef, grad_row, grad_h = ws.steps("coef"), ws.steps("grad_row"), ws.steps("grad_h")
        update, scratch = [blocks[1] for blocks in ws.gate_steps("gates")], ws.scratch
        blocks_T = self._state_blocks(params, transpose=True)
        for t in range(length - 1, -1, -1):
            grad = grad_h[t + 1]
            if t < length - 1:
                self._add_through_state_weights(grad_row[t + 1], blocks_T, ws, grad)
                np.multiply(grad_h[t + 2], update[t + 1], out=scratch)
                grad += scratch
            np.multiply(grad, coef[t], out=grad_row[t])
        self._state_weight_gradient(ws, ws.grad_row, grads)
        sum_rows(ws.grad_row[2].reshape(-1, self.n_hidden), out=grads["b_state"])
        np.copyto(ws.grad_drive[:2], ws.grad_row[:2])
        np.multiply(ws.grad_h[1:], ws.slope_n, out=ws.grad_drive[2])
        self._input_weight_gradient(ws, grads)

    def _coefficients(self, ws: Workspace) -> None:
        """``coef`` = [A hidden_n r(1-r), (h_{t-1} - n) z(1-z), A r] and ``slope_n`` = A,
        with ``A = (1 - z)(1 - n^2)``, over the whole window."""
        reset, update, candidate = ws.gates
        coef_r, coef_z, coef_n = ws.coef
        slope = ws.slope_n
        np.multiply(candidate, candidate, out=slope)
        np.subtract(1.0, slope, out=slope)
        np.subtract(1.0, update, out=coef_z)
        slope *= coef_z                                   # A
        coef_z *= update                                  # z (1 - z)
        np.subtract(ws.h[:-1], candidate, out=coef_r)     # scratch: h_{t-1} - n
        coef_z *= coef_r
        np.multiply(slope, reset, out=coef_n)
        np.subtract(1.0, reset, out=coef_r)
        coef_r *= reset
        coef_r *= ws.hidden_n
        coef_r *= slope
