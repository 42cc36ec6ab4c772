"""Claim: one RNN training step of every cell is no slower than PyTorch CPU at H <= 32, and
within 1.5x at H = 128.

First, equality (float64, before anything is timed): each cell given a PyTorch
module's weights (``RNN.from_parameters`` with ``CELLS[name].torch_parameters``)
must give the module's states, softmax outputs and, for one window, every
parameter's gradient of the mean log-loss, to 1e-10: ``elman`` against
``nn.RNN``, ``gru`` against ``nn.GRU``, ``lstm`` against ``nn.LSTM``. Any
difference stops the script with exit status 1.

Then speed. One step = forward, backward (full BPTT), gradient-norm clipping
and an Adam update, on B=100 sequences of T=500 one-hot symbols (V=8) with
softmax outputs, float32 on both sides, one thread each: ``RNN`` always runs
BLAS single-threaded (``seqmodels.rnn.cells.single_blas_thread``) and torch
gets ``set_num_threads(1)``. Ours runs the code path of ``RNN.fit``; the peer
is the module + ``nn.Linear`` + ``CrossEntropyLoss`` + ``clip_grad_norm_`` +
``torch.optim.Adam``. The two are timed interleaved (ours, torch, ours, torch,
...) so that load from other processes falls on both; each line prints both
minimum times, the ratio of the minima and the median of the per-pair ratios
(ours / torch: below 1 means ours is faster), and ours in float64.

Both sides reuse their memory from step to step: the script fixes glibc's
malloc thresholds first (:func:`steady_allocator`). By default glibc hands out
large blocks as fresh pages and moves that threshold as blocks are freed, so
whether a step's temporaries cost page faults depended on what ran before in
the process: torch's LSTM step at H=32 measured 34 or 60 ms (14,000 page faults
per step), at H=128 165 or 340 ms. Ours allocates almost nothing per step.

Where this flatters us: the peer pays for autograd's graph, which a
hand-written backward pass does not need. Where it does not: torch's LSTM runs
oneDNN's fused AVX-512 kernels, and NumPy's OpenBLAS here runs with
``OPENBLAS_CORETYPE=Haswell`` (set on this machine), AVX2 kernels that reach
about 118 GFLOP/s in float32 against 212 GFLOP/s for its native (SkylakeX)
ones on this processor; at H=128 the products are three quarters of our step.
"""

from __future__ import annotations

import argparse
import ctypes
import sys

import numpy as np
from _timing import best_time, interleaved

from seqmodels.rnn import CELLS, RNN
from seqmodels.rnn.cells import single_blas_thread
from seqmodels.rnn.output import window_workspace
from seqmodels.rnn.train import FitSettings, Sequences, _Trainer, loss_and_gradient

B, T, V = 100, 500, 8
HIDDEN = (8, 32, 128)
REPEATS = 7
TOLERANCE = 1e-10
TORCH_MODULES = {"elman": "RNN", "gru": "GRU", "lstm": "LSTM"}


# ---------------------------------------------------------------------- equality


def steady_allocator() -> bool:
    """Fix glibc's mmap and trim thresholds at 1 GiB (module docstring); False if not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 2**30) and libc.mallopt(m_trim_threshold, 2**30))


def twin_models(torch, cell: str, n_hidden: int, seed: int):
    """A float64 torch module + head with random weights, and our RNN holding the same."""
    torch.manual_seed(seed)
    module = getattr(torch.nn, TORCH_MODULES[cell])(V, n_hidden, batch_first=True).double()
    head = torch.nn.Linear(n_hidden, V).double()
    with torch.no_grad():
        for weight in (*module.parameters(), *head.parameters()):
            weight.uniform_(-0.7, 0.7)
    weights = {name: value.detach().numpy() for name, value in module.state_dict().items()}
    parameters = CELLS[cell].torch_parameters(weights["weight_ih_l0"], weights["weight_hh_l0"],
                                              weights["bias_ih_l0"], weights["bias_hh_l0"])
    parameters["W_output"] = head.weight.detach().numpy().T
    parameters["b_output"] = head.bias.detach().numpy()
    return module, head, RNN.from_parameters(parameters, cell)


def torch_gradients(torch, cell: str, module, head, symbols: np.ndarray) -> dict[str, np.ndarray]:
    """Torch's gradient of the mean next-symbol log-loss, mapped to our parameter names."""
    module.zero_grad()
    head.zero_grad()
    inputs = torch.nn.functional.one_hot(torch.from_numpy(symbols), V).double()
    states, _ = module(inputs)
    zero = torch.zeros(states.shape[0], 1, states.shape[2], dtype=states.dtype)
    read = torch.cat([zero, states[:, :-1]], dim=1)  # output t reads the state after x_{t-1}
    loss = torch.nn.functional.cross_entropy(head(read).reshape(-1, V),
                                             torch.from_numpy(symbols).reshape(-1))
    loss.backward()
    grad = {name: value.grad.numpy() for name, value in module.named_parameters()}
    mapped = CELLS[cell].torch_parameters(grad["weight_ih_l0"], grad["weight_hh_l0"],
                                          grad["bias_ih_l0"], grad["bias_hh_l0"])
    mapped["b"] = grad["bias_ih_l0"]  # b holds bias_ih (plus parts of bias_hh): the same gradient
    mapped["W_output"] = head.weight.grad.numpy().T
    mapped["b_output"] = head.bias.grad.numpy()
    return mapped


def our_gradients(model: RNN, symbols: np.ndarray) -> dict[str, np.ndarray]:
    params, cell = model._params, model._cell
    grads = params.zeros_like()
    ws = window_workspace(cell, symbols.shape[1], symbols.shape[0], V, params.flat.dtype, True)
    loss_and_gradient(cell, params, grads, ws, np.ascontiguousarray(symbols.T),
                      np.ascontiguousarray(symbols.T), cell.zero_state(symbols.shape[0],
                                                                       params.flat.dtype), "next")
    return {name: grads[name] for name in params.shapes}


def check_equality(torch, cell: str) -> float:
    """Largest absolute difference of states, forecasts and gradients; raises above TOLERANCE."""
    module, head, model = twin_models(torch, cell, n_hidden=16, seed=1)
    symbols = np.random.default_rng(2).integers(0, V, (20, 100))
    with torch.no_grad():
        states, _ = module(torch.nn.functional.one_hot(torch.from_numpy(symbols), V).double())
        logits = head(states).numpy()
    states = states.numpy()
    read = np.concatenate([np.zeros_like(logits[:, :1]), logits[:, :-1]], axis=1)
    read[:, 0] = head.bias.detach().numpy()  # step 0 reads the zero state: logits = b_output
    forecast = np.exp(read - read.max(-1, keepdims=True))
    forecast /= forecast.sum(-1, keepdims=True)
    differences = {"states": np.abs(model.hidden_states(symbols) - states).max(),
                   "predictive": np.abs(model.predictive(symbols) - forecast).max()}
    theirs, ours = torch_gradients(torch, cell, module, head, symbols), our_gradients(model,
                                                                                      symbols)
    for name, value in ours.items():
        differences[f"d{name}"] = np.abs(value - theirs[name]).max()
    worst = max(differences, key=differences.get)
    print(f"equality {cell:5s} vs nn.{TORCH_MODULES[cell]:4s} (float64, H=16, 20 x 100): "
          f"largest difference {differences[worst]:.1e} ({worst})")
    if differences[worst] > TOLERANCE:
        raise AssertionError(f"{cell}: {worst} differs from torch by {differences[worst]:.3g}")
    return differences[worst]


# ---------------------------------------------------------------------- speed


def our_step(cell: str, n_hidden: int, symbols: np.ndarray, dtype=np.float32):
    model = RNN(V, n_hidden, V, cell, seed=0, dtype=dtype)
    settings = FitSettings(epochs=1, batch_size=B, rates=(1e-2,), clip=5.0, bptt=None,
                           validation=0.0, patience=None, progress=False)
    trainer = _Trainer(model._cell, model._params, "next", settings)
    data = Sequences(symbols, symbols, np.full(symbols.shape[0], symbols.shape[1]))

    def step():
        with single_blas_thread():
            trainer.train_batch(data)

    return step


def torch_step(torch, cell: str, n_hidden: int, symbols: np.ndarray):
    module = getattr(torch.nn, TORCH_MODULES[cell])(V, n_hidden, batch_first=True)
    head = torch.nn.Linear(n_hidden, V)
    params = [*module.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss()
    inputs = torch.nn.functional.one_hot(torch.from_numpy(symbols), V).float()
    targets = torch.from_numpy(symbols).reshape(-1)

    def step():
        optimizer.zero_grad()
        states, _ = module(inputs)
        loss = loss_fn(head(states).reshape(-1, V), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        optimizer.step()

    return step


def compare_speed(torch, cell: str, n_hidden: int, symbols: np.ndarray) -> tuple[float, float]:
    """Print one line; return (ratio of minima, median per-pair ratio), ours / torch."""
    result = interleaved(our_step(cell, n_hidden, symbols),
                         torch_step(torch, cell, n_hidden, symbols), REPEATS)
    ours64 = best_time(our_step(cell, n_hidden, symbols, np.float64), 3, warmup=True)
    # Comparison's ratios are torch / ours; REPEATS is odd, so the reciprocal of the
    # median per-pair ratio is the median of ours / torch.
    ratio_min, ratio_median = 1.0 / result.ratio_min, 1.0 / result.ratio_median
    print(f"{cell:5s} H={n_hidden:4d}: ours {1e3 * result.ours:7.1f} ms (float64 "
          f"{1e3 * ours64:7.1f}), torch {1e3 * result.peer:7.1f} ms; ours/torch min "
          f"{ratio_min:.2f}, median {ratio_median:.2f}")
    return ratio_min, ratio_median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default=",".join(CELLS),
                        help="comma-separated cells to time (default: all)")
    parser.add_argument("--hidden", default=",".join(map(str, HIDDEN)),
                        help="comma-separated hidden sizes (default: %(default)s)")
    args = parser.parse_args(argv)
    cells = args.cells.split(",")
    hidden_sizes = [int(size) for size in args.hidden.split(",")]
    try:
        import torch
    except ImportError:
        print("bench_rnn: torch is not installed; skipped (pip install -e '.[bench]')")
        return 0
    torch.set_num_threads(1)
    if not steady_allocator():
        print("bench_rnn: not glibc; malloc thresholds left as they are")
    try:
        for cell in CELLS:
            check_equality(torch, cell)
    except AssertionError as err:
        print(f"bench_rnn: not equal to torch, nothing timed: {err}")
        return 1
    symbols = np.random.default_rng(0).integers(0, V, (B, T))
    print(f"one training step, B={B} T={T} V={V}, float32, 1 thread each, {REPEATS} "
          "interleaved repeats")
    summary = []
    for cell in cells:
        for n_hidden in hidden_sizes:
            ratio_min, ratio_median = compare_speed(torch, cell, n_hidden, symbols)
            summary.append(f"{cell} H={n_hidden}: {ratio_min:.2f} / {ratio_median:.2f}")
    print("ratio ours/torch (min / median): " + ", ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
