"""Claim: the dice sampler draws many more steps per second than hmmlearn and a plain NumPy loop.

Ours: ``loaded_dice().sample(B, T)`` at B=1000 x T=1000, B=1 x T=10**6 and
B=10**4 x T=100. Peers, timed interleaved with ours (``_timing.interleaved``,
5 repeats, the ratio is per step sampled):

* hmmlearn's ``CategoricalHMM.sample`` (a Python loop over steps) on one
  10**5-step sequence with the same matrices;
* a plain NumPy loop over time, vectorized across the B sequences (inverse-CDF
  draws by comparison with the cumulative rows), the obvious NumPy sampler.
  At B=1 it is a Python loop over 10**6 steps; it runs 10**5 of them.

The hmmlearn ratio flatters us: hmmlearn pays Python per step whatever the
shape. The NumPy-loop ratio at B=10**4 is the honest one for large batches.

Run: ``.venv/bin/python benchmarks/bench_sampling.py``
"""

from __future__ import annotations

import numpy as np
from _timing import interleaved

from seqmodels.dice import DiceHMM, loaded_dice

REPEATS = 5
HMMLEARN_STEPS = 10**5
SHAPES = ((1000, 1000), (1, 10**6), (10**4, 100))


def numpy_loop(spec: DiceHMM, n_sequences: int, length: int, rng: np.random.Generator):
    """States and symbols (T, B): one vectorized inverse-CDF draw per step."""
    start, transitions = np.cumsum(spec.startprob), np.cumsum(spec.transmat, axis=1)
    emissions = np.cumsum(spec.emissionprob, axis=1)
    uniforms = rng.random((length, n_sequences))
    states = np.empty((length, n_sequences), dtype=np.int64)
    states[0] = (uniforms[0, :, None] >= start).sum(axis=1)
    for t in range(1, length):
        states[t] = (uniforms[t, :, None] >= transitions[states[t - 1]]).sum(axis=1)
    symbols = (rng.random((length, n_sequences, 1)) >= emissions[states]).sum(axis=-1)
    return states, np.minimum(symbols, spec.n_symbols - 1)


def compare_shape(spec: DiceHMM, n_sequences: int, length: int, reference,
                  rng: np.random.Generator) -> None:
    """Both comparisons at one shape."""
    steps = n_sequences * length
    random_state = np.random.RandomState(0)

    def ours():
        spec.sample(n_sequences, length, seed=rng)

    label = f"sampling B={n_sequences:,} x T={length:,}"
    result = interleaved(ours, lambda: reference.sample(HMMLEARN_STEPS, random_state=random_state),
                         REPEATS, work=(steps, HMMLEARN_STEPS))
    print(result.line(f"{label} vs hmmlearn sample (1 x {HMMLEARN_STEPS:,}), per step") +
          f"; ours {steps / result.ours / 1e6:.1f}M steps/s, hmmlearn "
          f"{HMMLEARN_STEPS / result.peer / 1e3:.0f}k steps/s")
    loop_length = min(length, HMMLEARN_STEPS)
    result = interleaved(ours, lambda: numpy_loop(spec, n_sequences, loop_length, rng), REPEATS,
                         work=(steps, n_sequences * loop_length))
    print(result.line(f"{label} vs a NumPy loop over time (B x {loop_length:,}), per step") +
          f"; NumPy loop {n_sequences * loop_length / result.peer / 1e6:.2f}M steps/s")


def main() -> None:
    spec = loaded_dice()
    rng = np.random.default_rng(0)
    reference = spec.to_hmm().to_hmmlearn()
    for n_sequences, length in SHAPES:
        compare_shape(spec, n_sequences, length, reference, rng)


if __name__ == "__main__":
    main()
