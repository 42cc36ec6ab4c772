"""Rebuild the original worked example's Elman cell and print every step.

Two hidden units, one real input, one raw output::

    W_state = [[0.1, 0.2], [0.3, 0.4]]   W_input = [[0.5, 0.6]]   b = [0.1, -0.1]
    W_output = [[1.0], [2.0]]            b_output = [0.1]
    inputs 1 then 2, state starting at zero

For each step it prints the value before the activation, the state and the
output, with tanh and with the linear (identity) activation. Run:
``python experiments/seed_example.py``.
"""

from __future__ import annotations

import numpy as np

from seqmodels.rnn import ElmanRNN, ForwardResult

PARAMS = {
    "W_state": [[0.1, 0.2], [0.3, 0.4]],
    "W_input": [[0.5, 0.6]],
    "b": [0.1, -0.1],
    "W_output": [[1.0], [2.0]],
    "b_output": [0.1],
}
INPUTS = np.array([[1.0], [2.0]])  # one sequence, T=2, n_inputs=1


def worked_example(activation: str) -> ForwardResult:
    """The example's forward pass for ``activation`` "tanh" or "linear"; arrays (T, .)."""
    model = ElmanRNN.from_params(**PARAMS, activation=activation, output="linear")
    return model.forward(INPUTS)


def main() -> None:
    for activation in ("tanh", "linear"):
        result = worked_example(activation)
        print(f"{activation}:")
        for t, x in enumerate(INPUTS[:, 0]):
            print(f"  step {t + 1}, input {x:g}: before activation {result.preactivations[t]}"
                  f" -> state {result.states[t]} -> output {result.outputs[t]}")


if __name__ == "__main__":
    main()
