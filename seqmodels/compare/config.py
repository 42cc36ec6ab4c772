"""What a comparison run does: sizes, model settings and the seed, in one frozen record."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from seqmodels._checks import check_count, check_memory, check_real
from seqmodels.processes import PRESETS
from seqmodels.rnn import CELLS
from seqmodels.rnn.train import validation_count

#: Quality targets of each preset's reference run (:meth:`ComparisonConfig.for_preset`
#: with nothing overridden): a regression check, met or not in every such report.
TARGETS: dict[str, dict[tuple[str, str], tuple[str, float]]] = {
    "loaded_dice": {
        ("em_hmm", "excess"): ("<", 0.0005),
        ("rnn_elman", "excess"): ("<=", 0.001),
        ("rnn_elman", "belief_r2"): (">=", 0.98),
    },
    "mess3": {
        ("rnn_elman", "belief_mse"): ("<=", 0.0003),
        ("rnn_elman", "belief_r2"): (">=", 0.997),
    },
}

#: Where a preset's reference run differs from the field defaults (which are
#: ``loaded_dice``'s). Mess3's belief simplex is a fractal: a wider state and a
#: gentler learning rate place the beliefs more precisely (probe MSE 0.00016 to
#: 0.00028 over seeds 0-4, against 0.00014 to 0.0007 with the defaults).
PRESET_SETTINGS: dict[str, dict] = {
    "mess3": {"hidden": 64, "rnn_lr": 0.003, "rnn_schedule": (0.001, 0.0003)},
}

#: Config fields that have a command-line flag (``--n-train`` for ``n_train``),
#: in the order the CLI lists them and a rerun command writes them.
FLAG_FIELDS = ("preset", "n_train", "n_test", "length", "hidden", "cells", "epochs",
               "restarts", "em_states", "seed")


def flag_error(message: str, fields) -> str:
    """``message`` as a command-line error: led by the flags of the ``fields`` it names.

    ``fields`` are the settings the user gave as flags (``n_train`` for
    ``--n-train``); a refusal naming ``length=1000000000`` becomes ``argument
    --length: ...``, as argparse words its own errors.
    """
    named = [f"--{name.replace('_', '-')}" for name in fields
             if re.search(rf"\b{name}\b", message)]
    return f"argument {'/'.join(named)}: {message}" if named else message


def flag_text(value) -> str:
    """A config value as its command-line flag takes it: cells comma-separated."""
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


_COUNTS = ("n_train", "n_test", "length", "hidden", "epochs", "restarts", "em_finalists",
           "decoder_epochs", "rnn_batch_size", "rnn_patience", "implied_sequences",
           "implied_restarts", "implied_length", "trace_steps")
_POSITIVE_FLOATS = ("rnn_lr", "rnn_clip")
_DTYPES = ("float32", "float64")
#: Fewest held-out sequences: two per fold of the cross-validated belief probe.
MIN_TEST = 10


@dataclass(frozen=True)
class ComparisonConfig:
    """Settings of one comparison run; the defaults are the reported run.

    Parameters
    ----------
    preset : str
        A name from :data:`seqmodels.processes.PRESETS` (dice and processes): the
        true model.
    n_train, n_test, length : int
        Training and held-out sequences, each ``length`` steps.
    hidden : int
        Hidden units of every RNN.
    cells : tuple of str
        One next-symbol RNN per cell (names from :data:`seqmodels.rnn.CELLS`),
        each measured with its belief probe and its implied matrices; the
        supervised decoder uses the first.
    epochs : int
        Training epochs of the next-symbol RNNs (early stopping may end sooner).
    restarts, em_finalists : int
        Baum-Welch restarts of the EM HMM fit: ``fit_em`` screens them all for
        a few iterations and runs the best ``em_finalists`` to convergence.
    em_states : int or None
        Hidden states of the EM HMM; None means the true model's. With another
        number only prediction is measured (states cannot be matched).
    seed : int
        Root seed; every random stage draws from its own child stream, keyed by
        the stage's name.
    decoder_epochs : int
        Training epochs of the supervised decoder (hidden states as labels).
    rnn_batch_size, rnn_lr, rnn_clip, rnn_patience, rnn_bptt :
        Mini-batch size (whole sequences), Adam step size, gradient-norm clip,
        early-stopping patience (epochs) and truncated-BPTT window (steps; None
        for full BPTT) of every RNN.
    rnn_schedule : tuple of float
        The learning rates of the training stages after the first (``rnn_lr``):
        when the validation loss has not improved for ``rnn_patience`` epochs the
        best parameters come back and training goes on at the next rate.
    rnn_validation : float
        Fraction of training sequences held out for early stopping.
    rnn_dtype : {"float32", "float64"}
        Precision of RNN training (float32 is about twice as fast).
    implied_sequences, implied_length, implied_restarts : int
        Size of the sample drawn from each trained next-symbol RNN, and the EM
        restarts, to fit its implied matrices (one finalist: these matrices are
        read, not held to a target).
    trace_steps : int
        Steps of one held-out sequence shown in the belief figure.
    """

    preset: str = "loaded_dice"
    n_train: int = 1600
    n_test: int = 100
    length: int = 500
    hidden: int = 48
    cells: tuple[str, ...] = ("elman",)
    epochs: int = 80
    restarts: int = 4
    em_finalists: int = 2
    em_states: int | None = None
    seed: int = 0
    decoder_epochs: int = 10
    rnn_batch_size: int = 40
    rnn_lr: float = 0.01
    rnn_schedule: tuple[float, ...] = (0.002, 0.0005)
    rnn_clip: float = 5.0
    rnn_patience: int = 4
    rnn_bptt: int | None = 100
    rnn_validation: float = 0.1
    rnn_dtype: str = "float32"
    implied_sequences: int = 200
    implied_restarts: int = 2
    implied_length: int = 500
    trace_steps: int = 200

    def __post_init__(self) -> None:
        if not isinstance(self.preset, str) or self.preset not in PRESETS:
            raise ValueError(
                f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}"
            )
        object.__setattr__(self, "cells", _check_cells(self.cells))
        object.__setattr__(self, "rnn_schedule", _check_rates(self.rnn_schedule))
        for name in _COUNTS:
            check_count(name, getattr(self, name))
        for name in ("length", "implied_length"):  # (B, 1) would read as hmmlearn's layout
            check_count(name, getattr(self, name), minimum=2)
        for name in ("em_states", "rnn_bptt"):
            if getattr(self, name) is not None:
                check_count(name, getattr(self, name))
        check_count("seed", self.seed, minimum=0)
        for name in _POSITIVE_FLOATS:
            _positive_finite(name, getattr(self, name))
        if not 0.0 < check_real("rnn_validation", self.rnn_validation) < 1.0:
            raise ValueError(f"rnn_validation must be in (0, 1), got {self.rnn_validation!r}")
        if self.rnn_dtype not in _DTYPES:
            raise ValueError(f"rnn_dtype must be one of {_DTYPES}, got {self.rnn_dtype!r}")
        if self.n_test < MIN_TEST:
            raise ValueError(
                f"n_test must be at least {MIN_TEST} (the belief probe is cross-validated "
                f"over 5 folds of held-out sequences), got {self.n_test}"
            )
        check_memory(self.bytes_needed(), f"n_train={self.n_train}, n_test={self.n_test}, "
                     f"length={self.length}, em_states={self.em_states}, implied_sequences="
                     f"{self.implied_sequences}, implied_length={self.implied_length} and "
                     f"hidden={self.hidden}")
        self._check_validation_split()

    def _check_validation_split(self) -> None:
        """Fail now, not after minutes of fitting, if the RNNs' split leaves no training rows."""
        try:
            validation_count(self.n_train, self.rnn_validation)
        except ValueError:
            raise ValueError(
                f"n_train={self.n_train} leaves no training sequence once "
                f"rnn_validation={self.rnn_validation} of them are held out for early "
                "stopping; raise n_train or lower rnn_validation"
            ) from None

    def bytes_needed(self) -> float:
        """A lower bound on the memory a run takes, in bytes, from its largest arrays.

        The samples (states and symbols, int64); the EM fit's forward and
        backward quantities over the training set (``K_em`` floats per step
        each, ``K_em`` = ``em_states`` or the truth's K) and its parameters; per
        held-out step the filter's outputs (K + V), the forecasts of every model
        (V each) and the hidden states of the probed networks (3 H per cell:
        trained, untrained, the probe's predictions); per cell, the sample drawn
        from its RNN (its uniforms and symbols) and EM on it (2 K per step), and
        the network's parameters (6 copies in training: the weights, the
        gradient, Adam's moments and scratch, the best so far). A float: sizes
        from user input can overflow int64 when multiplied.
        """
        process = PRESETS[self.preset]()
        k, v = float(process.n_states), float(process.n_symbols)
        k_em = k if self.em_states is None else float(self.em_states)
        train = float(self.n_train) * self.length
        test = float(self.n_test) * self.length
        implied = float(self.implied_sequences) * self.implied_length * len(self.cells)
        n_models = 6 + 2 * len(self.cells)
        per_test_step = k + v + n_models * v + 3 * self.hidden * len(self.cells)
        weights = sum(6.0 * CELLS[cell].n_gates * self.hidden * (self.hidden + v + 1)
                      + 6.0 * self.hidden * v for cell in self.cells)
        return 8.0 * (2 * (train + test) + 2 * k_em * train + k_em * (1 + k_em + v)
                      + per_test_step * test + (5 + 2 * k) * implied + weights)

    @property
    def is_reference(self) -> bool:
        """True for a preset's reference run, the one its :data:`TARGETS` are set for."""
        return self.preset in TARGETS and self == ComparisonConfig.for_preset(self.preset)

    @classmethod
    def for_preset(cls, preset: str = "loaded_dice", **overrides) -> ComparisonConfig:
        """The reference run of ``preset`` (:data:`PRESET_SETTINGS` over the defaults), overridden.

        ``ComparisonConfig()`` is ``loaded_dice``'s reference run; the CLI starts
        every run from this.
        """
        if not isinstance(preset, str):
            raise ValueError(f"preset must be a preset name, got {preset!r}")
        return cls.from_dict({"preset": preset, **PRESET_SETTINGS.get(preset, {}), **overrides})

    @classmethod
    def quick(cls, **overrides) -> ComparisonConfig:
        """A run of a few seconds for smoke tests: tiny data, a small RNN, few epochs."""
        settings = dict(n_train=40, n_test=20, length=100, hidden=8, epochs=10, restarts=2,
                        decoder_epochs=5, rnn_batch_size=10, rnn_lr=0.03, rnn_bptt=None,
                        implied_sequences=20, implied_length=100, implied_restarts=2,
                        trace_steps=100)
        settings.update(overrides)
        return cls.from_dict(settings)

    def to_dict(self) -> dict:
        """The settings as a JSON-ready dict (``from_dict`` inverts it)."""
        settings = dataclasses.asdict(self)
        settings["cells"], settings["rnn_schedule"] = list(self.cells), list(self.rnn_schedule)
        return settings

    @classmethod
    def from_dict(cls, settings: dict) -> ComparisonConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys raise ``ValueError``."""
        if not isinstance(settings, Mapping):
            raise ValueError(f"settings must be a dict of config fields, got "
                             f"{type(settings).__name__}")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known: {sorted(known)}")
        return cls(**settings)


def _check_rates(rates) -> tuple[float, ...]:
    """``rates`` as a tuple of positive finite learning rates (possibly empty)."""
    try:
        values = tuple(rates)
    except TypeError:
        raise ValueError(f"rnn_schedule must be a sequence of learning rates, got "
                         f"{rates!r}") from None
    return tuple(_positive_finite(f"rnn_schedule[{index}]", value)
                 for index, value in enumerate(values))


def _positive_finite(name: str, value) -> float:
    """``value`` as a float if it is a real number in ``(0, inf)``; NaN fails too."""
    number = check_real(name, value)
    if not 0.0 < number < np.inf:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return number


def _check_cells(cells) -> tuple[str, ...]:
    """``cells`` as a tuple of known, distinct cell names (a comma-separated string works too)."""
    if isinstance(cells, str):
        cells = [name.strip() for name in cells.split(",")]
    try:
        names = tuple(cells)
    except TypeError:
        raise ValueError(f"cells must be a sequence of cell names, got {cells!r}") from None
    unknown = [name for name in names if not isinstance(name, str) or name not in CELLS]
    if not names or unknown:
        raise ValueError(f"cells must name one or more of {sorted(CELLS)}, got {cells!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"cells must not repeat a cell, got {cells!r}")
    return names
