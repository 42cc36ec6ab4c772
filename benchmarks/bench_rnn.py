"""Claim: one ElmanRNN training step is no slower than PyTorch CPU at H <= 32, within 1.5x at 128.

One step = forward, backward (full BPTT), gradient-norm clipping and an Adam
update, on B=100 sequences of T=500 one-hot symbols (V=8) with softmax outputs.
The baseline is ``nn.RNN`` + ``nn.Linear`` + ``CrossEntropyLoss`` +
``clip_grad_norm_`` + ``torch.optim.Adam`` in float32 on the same shapes, with
both sides on one thread: ``ElmanRNN`` always runs BLAS single-threaded (see
``seqmodels.rnn.cells.single_blas_thread``), so torch gets
``set_num_threads(1)``. Ours runs float32 through the
same code path as :meth:`ElmanRNN.fit`. Timings are the best of several repeats
(the machine is shared). Prints one line per H and the ratios on the last line.
"""

from __future__ import annotations

import sys

import numpy as np
from _timing import best_time

from seqmodels.rnn import ElmanRNN
from seqmodels.rnn.cells import single_blas_thread
from seqmodels.rnn.train import FitSettings, _Trainer

B, T, V = 100, 500, 8
HIDDEN = (8, 32, 128)
REPEATS = 7


def best_ms(step) -> float:
    """Best wall time of ``step()`` in ms, after one warm-up call."""
    return 1e3 * best_time(step, REPEATS, warmup=True)


def numpy_step(n_hidden: int, symbols: np.ndarray, dtype=np.float32):
    model = ElmanRNN(V, n_hidden, V, seed=0, dtype=dtype)
    settings = FitSettings(epochs=1, batch_size=B, lr=1e-2, clip=5.0, bptt=None,
                           validation=0.0, patience=None, progress=False)
    trainer = _Trainer(model._params, model.activation, "next", settings)

    def step():
        with single_blas_thread():
            trainer.train_batch(symbols, symbols)

    return step


def torch_step(torch, n_hidden: int, symbols: np.ndarray):
    rnn = torch.nn.RNN(V, n_hidden, batch_first=True)
    head = torch.nn.Linear(n_hidden, V)
    params = [*rnn.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss()
    inputs = torch.nn.functional.one_hot(torch.from_numpy(symbols), V).float()
    targets = torch.from_numpy(symbols).reshape(-1)

    def step():
        optimizer.zero_grad()
        states, _ = rnn(inputs)
        loss = loss_fn(head(states).reshape(-1, V), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        optimizer.step()

    return step


def main() -> int:
    try:
        import torch
    except ImportError:
        print("bench_rnn: torch is not installed; skipped (pip install -e '.[bench]')")
        return 0
    threads = 1
    torch.set_num_threads(threads)
    symbols = np.random.default_rng(0).integers(0, V, (B, T))
    print(f"one training step, B={B} T={T} V={V}, float32, {threads} thread(s), "
          f"best of {REPEATS}")
    ratios = []
    for n_hidden in HIDDEN:
        ours = best_ms(numpy_step(n_hidden, symbols))
        ours64 = best_ms(numpy_step(n_hidden, symbols, np.float64))
        theirs = best_ms(torch_step(torch, n_hidden, symbols))
        ratios.append(ours / theirs)
        print(f"H={n_hidden:4d}: numpy {ours:7.1f} ms (float64 {ours64:7.1f} ms), "
              f"torch {theirs:7.1f} ms, ratio {ours / theirs:.2f}")
    print("ratio numpy/torch " + ", ".join(
        f"H={h}: {r:.2f}" for h, r in zip(HIDDEN, ratios, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
