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

How it runs. Each step is one matrix product over the stacked parameters and a
few element-wise calls::

    u_t   = [h_{t-1}; e(x_t); 1]                     (K, B), K = H + V + 1
    pre_t = M^T u_t,   M = [W_state; W_input; b]     (4H, B); M (K, 4H) as stored

with ``e(x)`` the one-hot column of symbol ``x``. Steps are feature-major, one
column per sequence, so that every per-step array is a contiguous ``(rows, B)``
slab and the weights' gradients are one sum of products, ``sum_t u_t dpre_t^T``,
for ``W_state``, ``W_input`` and ``b`` at once. Within a slab the blocks of H
rows are ordered so that each element-wise call covers adjacent blocks:

* forward, ``gates[t]`` = [o, i, f, g, c_{t-1}]: one tanh covers the four gates
  (a sigmoid is ``tanh(x / 2) / 2 + 1/2``, the halving folded into ``M``'s
  sigmoid columns once per window), one affine map the sigmoids (o, i, f), and
  one product ``[i, f] * [g, c_{t-1}]`` both terms of ``c_t``;
* backward, ``grad[t]`` = [dc_{t+1} f_{t+1}, d i, d f, d g, d o, dc_t] (the
  gate gradients in PyTorch's order, as ``W_state`` multiplies them) and
  ``coef[t]`` = [f, g i', c_{t-1} f', i (1 - g^2), tanh(c) o', o (1 - tanh(c)^2)]:
  one product gives ``d o`` and ``dh``'s share of ``dc_t``, one more the other
  three gates and the carry to the step before.

The output layer reads ``h`` time-major; one transposing copy per window (0.5 ms,
1.5% of a training step at H = 32) writes it there, and one reads its gradient
back.
"""

from __future__ import annotations

import numpy as np

from seqmodels.rnn.cells import Cell, FlatParameters, Workspace

# The step loops call these with the output array positional: a few tenths of a
# microsecond less per call than ``np.multiply(a, b, out=c)``, a few percent of a step.
add, matmul, multiply, tanh = np.add, np.matmul, np.multiply, np.tanh

#: PyTorch's gate index of each forward block: (o, i, f, g) from (i, f, g, o).
FORWARD_ORDER = (3, 0, 1, 2)
#: The backward pass's per-block arrays hold about this many numbers (4 MB in float32):
#: measured best at H = 8 to 128, big enough that the per-block calls cost little and
#: small enough to stay in cache.
BACKWARD_BLOCK_ELEMENTS = 2**20


class LSTMCell(Cell):
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

    @property
    def n_stacked(self) -> int:
        """Rows of ``M`` and of the step input ``u_t``: ``K = H + V + 1``."""
        return self.n_hidden + self.n_inputs + 1

    def buffer_shapes(self, length: int, batch: int, training: bool) -> dict[str, tuple[int, ...]]:
        """Adds, feature-major (module docstring): ``inputs`` (L + 1, K, B), ``u_t`` at
        ``[t]`` (``h_L`` in the last one's first H rows); ``gates`` (L + 1, 5H, B), the
        last holding only ``c_L``; scratch ``tanh_c`` (H, B) and ``products`` (2, H, B). For
        training, per block of ``n`` steps (:func:`backward_block`): ``coef`` (n, 6H, B),
        ``grad`` (n + 1, 6H, B) (the last: the step after the block), ``grad_hT``
        (n, H, B) (``grad_h`` feature-major), ``weight_products`` (n, K, 4H),
        ``weight_part`` (K, 4H) and ``row`` (H, B)."""
        hidden, width, rows = self.n_hidden, self.width, self.n_stacked
        shapes = {**super().buffer_shapes(length, batch, training),
                  "inputs": (length + 1, rows, batch), "gates": (length + 1, 5 * hidden, batch),
                  "tanh_c": (hidden, batch), "products": (2, hidden, batch)}
        if training:
            block = backward_block(length, batch, hidden, rows)
            shapes.update(coef=(block, 6 * hidden, batch), grad=(block + 1, 6 * hidden, batch),
                          grad_hT=(block, hidden, batch), weight_products=(block, rows, width),
                          weight_part=(rows, width), row=(hidden, batch))
        return shapes

    # ------------------------------------------------------------------ state and inputs

    def state_rows(self, ws: Workspace, row: int) -> tuple[np.ndarray, ...]:
        """``h`` from ``ws.h``; ``c`` from the last H rows of ``ws.gates``, transposed."""
        return ws.h[row], ws.gates[row, 4 * self.n_hidden:].T

    def read_symbols(self, params: FlatParameters, symbols_tm: np.ndarray,
                     ws: Workspace) -> None:
        """The one-hot rows and the constant row of every ``u_t``."""
        hidden = self.n_hidden
        symbol_rows = np.arange(self.n_inputs)[:, None]
        np.equal(symbols_tm[:, None, :], symbol_rows,
                 out=ws.inputs[: symbols_tm.shape[0], hidden: hidden + self.n_inputs])
        ws.inputs[:, -1] = 1.0

    def _gate_weights(self, params: FlatParameters) -> np.ndarray:
        """``M^T`` (4H, K) with its rows in the forward order, the sigmoid rows halved."""
        stacked = params.stacked(("W_state", "W_input", "b"))
        forward = stacked.reshape(self.n_stacked, 4, self.n_hidden)[:, FORWARD_ORDER]
        forward[:, :3] *= 0.5
        return np.ascontiguousarray(forward.reshape(self.n_stacked, self.width).T)

    # ------------------------------------------------------------------ the passes

    def forward(self, params: FlatParameters, ws: Workspace) -> None:
        """The equations of the module docstring, step by step; ``h_t`` goes to the next
        ``u_{t+1}`` and, after the last step, to ``ws.h``."""
        hidden, weights = self.n_hidden, self._gate_weights(params)
        inputs, tanh_c = ws.steps("inputs"), ws.tanh_c
        views = ws.cached("lstm forward", lambda: self._forward_views(ws))
        products = ws.products
        np.copyto(ws.inputs[0, :hidden], ws.h[0].T)
        for t, (gates, sigmoids, output_gate, input_forget, candidate_c, c, h) in enumerate(
                views):
            matmul(weights, inputs[t], gates)
            tanh(gates, gates)
            multiply(sigmoids, 0.5, sigmoids)
            add(sigmoids, 0.5, sigmoids)
            multiply(input_forget, candidate_c, products)   # i g, f c_{t-1}
            add(products[0], products[1], c)
            tanh(c, tanh_c)
            multiply(output_gate, tanh_c, h)
        np.copyto(ws.h[1:], ws.inputs[1:, :hidden].transpose(0, 2, 1))

    def _forward_views(self, ws: Workspace) -> list[tuple[np.ndarray, ...]]:
        """Per step: the gates (4H, B), the sigmoids (3H, B), o, [i, f] and [g, c_{t-1}]
        (2, H, B), and where ``c_t`` and ``h_t`` go."""
        hidden, slabs = self.n_hidden, ws.steps("gates")
        return [(slab[: 4 * hidden], slab[: 3 * hidden], slab[:hidden],
                 slab[hidden: 3 * hidden].reshape(2, hidden, -1),
                 slab[3 * hidden:].reshape(2, hidden, -1), after[4 * hidden:], h[:hidden])
                for slab, after, h in zip(slabs, slabs[1:], ws.steps("inputs")[1:],
                                          strict=False)]

    def backward(self, params: FlatParameters, ws: Workspace, grads: FlatParameters) -> None:
        """BPTT. With ``dh_t`` the total gradient on ``h_t`` and ``dc_t`` on ``c_t``::

            dh_t   = direct_t + W_state d pre_{t+1}           (column form)
            dc_t   = dh_t o_t (1 - tanh(c_t)^2) + dc_{t+1} f_{t+1}
            d pre  = [dc_t g_t i'_t, dc_t c_{t-1} f'_t, dc_t i_t (1 - g_t^2), dh_t tanh(c_t) o'_t]

        with ``a' = a (1 - a)`` for a sigmoid gate. The factors after ``dc_t`` and
        ``dh_t`` are known after the forward pass (``coef``), so each step is one
        product and three element-wise calls. The window is walked back in
        blocks of a few steps: a block's coefficients, its steps and its share of
        the weights' gradients are computed while its arrays are in cache
        (whole-window passes, which stream every array through memory, measured
        39 against 32 ms per training step at H = 32).
        """
        length, block = ws.gates.shape[0] - 1, ws.coef.shape[0]
        weight_grads = grads.stacked(("W_state", "W_input", "b"))
        weight_grads.fill(0.0)
        for stop in range(length, 0, -block):
            start = max(0, stop - block)
            self._coefficients(ws, start, stop)
            np.copyto(ws.grad_hT[: stop - start], ws.grad_h[start + 1: stop + 1].transpose(0, 2, 1))
            self._backward_steps(params["W_state"], ws, start, stop)
            self._add_weight_gradients(ws, start, stop, weight_grads)
            np.copyto(ws.grad[min(block, start)], ws.grad[0])  # step start, for step start - 1

    def _backward_steps(self, W_state: np.ndarray, ws: Workspace, start: int, stop: int) -> None:
        """The recursion over steps ``stop - 1`` down to ``start``; block row ``j`` is step
        ``start + j``, and ``grad[stop - start]`` holds the step after the block."""
        hidden, last = self.n_hidden, ws.gates.shape[0] - 2
        grad_h, row = ws.steps("grad_hT"), ws.row
        coefs = ws.cached("lstm coef", lambda: [
            (coef[4 * hidden:].reshape(2, hidden, -1), coef[: 4 * hidden].reshape(4, hidden, -1))
            for coef in ws.steps("coef")])
        grads = ws.cached("lstm grad", lambda: [
            (slab[4 * hidden:].reshape(2, hidden, -1), slab[: 4 * hidden].reshape(4, hidden, -1),
             slab[5 * hidden:], slab[hidden: 5 * hidden], slab[:hidden])
            for slab in ws.steps("grad")])
        for t in range(stop - 1, start - 1, -1):
            j = t - start
            (coef_o_dh, coef_c), (grad_o_dh, grad_c, dc, _, _) = coefs[j], grads[j]
            dh = grad_h[j]
            if t < last:
                _, _, _, later_gates, later_carry = grads[j + 1]
                matmul(W_state, later_gates, row)
                add(dh, row, dh)
            multiply(dh, coef_o_dh, grad_o_dh)        # d o, dh's share of dc_t
            if t < last:
                add(dc, later_carry, dc)
            multiply(dc, coef_c, grad_c)              # the carry, d i, d f, d g

    def _coefficients(self, ws: Workspace, start: int, stop: int) -> None:
        """``coef`` (module docstring) for steps ``start..stop-1``."""
        hidden, gates = self.n_hidden, ws.gates[start:stop]
        output_gate, input_gate, forget, candidate = (
            gates[:, k * hidden: (k + 1) * hidden] for k in range(4))
        coef = ws.coef[: stop - start]
        coef_f, input_forget, coef_g, coef_o, slope = (
            coef[:, :hidden], coef[:, hidden: 3 * hidden], coef[:, 3 * hidden: 4 * hidden],
            coef[:, 4 * hidden: 5 * hidden], coef[:, 5 * hidden:])
        np.copyto(coef_f, forget)
        np.subtract(1.0, gates[:, hidden: 3 * hidden], out=input_forget)
        input_forget *= gates[:, hidden: 3 * hidden]       # i', f'
        input_forget *= gates[:, 3 * hidden:]              # [g i', c_{t-1} f']
        np.multiply(candidate, candidate, out=coef_g)
        np.subtract(1.0, coef_g, out=coef_g)
        coef_g *= input_gate                               # i (1 - g^2)
        np.subtract(1.0, output_gate, out=coef_o)
        coef_o *= output_gate
        tanh_c = np.tanh(ws.gates[start + 1: stop + 1, 4 * hidden:], out=slope)
        coef_o *= tanh_c                                   # tanh(c) o'
        np.multiply(tanh_c, tanh_c, out=slope)
        np.subtract(1.0, slope, out=slope)
        slope *= output_gate                               # o (1 - tanh(c)^2)

    def _add_weight_gradients(self, ws: Workspace, start: int, stop: int,
                              weight_grads: np.ndarray) -> None:
        """``weight_grads += sum_t u_t dpre_t^T`` over steps ``start..stop-1``: one batched
        product and its sum; over the window, ``[dW_state; dW_input; db]`` (K, 4H)."""
        hidden, products = self.n_hidden, ws.weight_products[: stop - start]
        gate_grads = ws.grad[: stop - start, hidden: 5 * hidden]
        np.matmul(ws.inputs[start:stop], gate_grads.transpose(0, 2, 1), out=products)
        np.add.reduce(products, axis=0, out=ws.weight_part)
        weight_grads += ws.weight_part


def backward_block(length: int, batch: int, hidden: int, rows: int) -> int:
    """Steps per block of the backward pass, so that its arrays (coefficients, gradients,
    weight products) hold about :data:`BACKWARD_BLOCK_ELEMENTS` numbers."""
    per_step = 13 * hidden * batch + 4 * hidden * rows
    return max(1, min(length, BACKWARD_BLOCK_ELEMENTS // per_step))
