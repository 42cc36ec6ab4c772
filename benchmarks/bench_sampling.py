"""Claim: the dice sampler throws at least 100x more dice per second than hmmlearn.

Ours: ``loaded_dice().sample(B, T)`` at B=1000, T=1000 (plus B=1, T=10**6 and
B=10**4, T=100, the two shapes the issue names). Baseline: hmmlearn's
``CategoricalHMM.sample`` (a Python loop over steps) on one 10**5-step
sequence with the same matrices, measured in the same run. Timings are the
best of several repeats (other work shares the cores). The last line prints
the ratio of steps per second at B=1000, T=1000.

Run: ``.venv/bin/python benchmarks/bench_sampling.py``
"""

from __future__ import annotations

import numpy as np
from _timing import best_time

from seqmodels.dice import DiceHMM, loaded_dice

REPEATS = 7
BASELINE_REPEATS = 3
BASELINE_STEPS = 10**5


def ours_steps_per_second(spec: DiceHMM, n_sequences: int, length: int) -> float:
    rng = np.random.default_rng(0)
    seconds = best_time(lambda: spec.sample(n_sequences, length, seed=rng), REPEATS)
    return n_sequences * length / seconds


def hmmlearn_steps_per_second(spec: DiceHMM) -> float:
    model, random_state = spec.to_hmm().to_hmmlearn(), np.random.RandomState(0)
    seconds = best_time(
        lambda: model.sample(BASELINE_STEPS, random_state=random_state), BASELINE_REPEATS
    )
    return BASELINE_STEPS / seconds


def main() -> None:
    spec = loaded_dice()
    baseline = hmmlearn_steps_per_second(spec)
    print(f"hmmlearn CategoricalHMM.sample, 1 x {BASELINE_STEPS:,}: {baseline:,.0f} steps/s")
    for n_sequences, length in ((1, 10**6), (10**4, 100)):
        rate = ours_steps_per_second(spec, n_sequences, length)
        print(f"seqmodels B={n_sequences:,}, T={length:,}: {rate:,.0f} steps/s "
              f"({rate / baseline:.0f}x)")
    main_rate = ours_steps_per_second(spec, 1000, 1000)
    print(f"seqmodels B=1,000, T=1,000: {main_rate:,.0f} steps/s")
    print(f"ratio (seqmodels B=1000 x T=1000 / hmmlearn): {main_rate / baseline:.1f}x")


if __name__ == "__main__":
    main()
