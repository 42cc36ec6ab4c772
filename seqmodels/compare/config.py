"""What a comparison run does: sizes, model settings and the seed, in one frozen record."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from seqmodels._checks import check_count, check_real
from seqmodels.dice import PRESETS
from seqmodels.rnn.train import split_validation

#: Quality targets the default run must meet on ``loaded_dice`` (issue 5).
TARGETS: dict[tuple[str, str], tuple[str, float]] = {
    ("em_hmm", "excess"): ("<", 0.0005),
    ("rnn_faces", "excess"): ("<", 0.003),
    ("rnn_faces", "belief_r2"): (">", 0.93),
}

_COUNTS = ("n_train", "n_test", "length", "hidden", "epochs", "restarts", "em_finalists",
           "dice_epochs", "rnn_batch_size", "rnn_patience", "implied_sequences",
           "implied_restarts", "implied_length", "trace_steps")
_POSITIVE_FLOATS = ("rnn_lr", "rnn_clip")


@dataclass(frozen=True)
class ComparisonConfig:
    """Settings of one comparison run; the defaults are the reported run.

    Parameters
    ----------
    preset : str
        A name from :data:`seqmodels.dice.PRESETS`: the true model.
    n_train, n_test, length : int
        Training and held-out sequences, each ``length`` throws.
    hidden : int
        Hidden units of both RNNs.
    epochs : int
        Training epochs of the faces-only RNN (early stopping may end sooner).
    restarts, em_finalists : int
        Baum-Welch restarts of the EM HMM fit: ``fit_em`` screens them all for
        a few iterations and runs the best ``em_finalists`` to convergence.
    seed : int
        Root seed; every random stage draws from its own child stream of it.
    dice_epochs : int
        Training epochs of the supervised RNN (dice labels are an easier target).
    rnn_batch_size, rnn_lr, rnn_clip, rnn_patience :
        Mini-batch size (whole sequences), Adam step size, gradient-norm clip and
        early-stopping patience (epochs) of both RNNs.
    rnn_validation : float
        Fraction of training sequences held out for early stopping.
    implied_sequences, implied_length, implied_restarts : int
        Size of the sample drawn from the trained faces-only RNN, and the EM
        restarts, to fit its implied matrices (one finalist: these matrices are
        read, not held to a target).
    trace_steps : int
        Steps of one held-out sequence shown in the belief figure.
    """

    preset: str = "loaded_dice"
    n_train: int = 400
    n_test: int = 100
    length: int = 500
    hidden: int = 32
    epochs: int = 50
    restarts: int = 10
    em_finalists: int = 3
    seed: int = 0
    dice_epochs: int = 20
    rnn_batch_size: int = 40
    rnn_lr: float = 0.01
    rnn_clip: float = 5.0
    rnn_patience: int = 10
    rnn_validation: float = 0.1
    implied_sequences: int = 200
    implied_restarts: int = 4
    implied_length: int = 500
    trace_steps: int = 200

    def __post_init__(self) -> None:
        if not isinstance(self.preset, str) or self.preset not in PRESETS:
            raise ValueError(
                f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}"
            )
        for name in _COUNTS:
            check_count(name, getattr(self, name))
        check_count("seed", self.seed, minimum=0)
        for name in _POSITIVE_FLOATS:
            value = check_real(name, getattr(self, name))
            if not 0.0 < value < np.inf:  # NaN fails too
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if not 0.0 < check_real("rnn_validation", self.rnn_validation) < 1.0:
            raise ValueError(f"rnn_validation must be in (0, 1), got {self.rnn_validation!r}")
        if self.n_test < 2:
            raise ValueError(
                f"n_test must be at least 2 (the belief probe fits on half the held-out "
                f"sequences and scores on the other half), got {self.n_test}"
            )
        self._check_validation_split()

    def _check_validation_split(self) -> None:
        """Fail now, not after minutes of fitting, if the RNNs' split leaves no training rows."""
        try:
            split_validation(self.n_train, self.rnn_validation, np.random.default_rng(0))
        except ValueError:
            raise ValueError(
                f"n_train={self.n_train} leaves no training sequence once "
                f"rnn_validation={self.rnn_validation} of them are held out for early "
                "stopping; raise n_train or lower rnn_validation"
            ) from None

    @classmethod
    def quick(cls, **overrides) -> ComparisonConfig:
        """A run of a few seconds for smoke tests: tiny data, a small RNN, few epochs."""
        settings = dict(n_train=40, n_test=20, length=100, hidden=8, epochs=10, restarts=2,
                        dice_epochs=5, rnn_batch_size=10, rnn_lr=0.03, implied_sequences=20,
                        implied_length=100, implied_restarts=2, trace_steps=100)
        settings.update(overrides)
        return cls.from_dict(settings)

    def to_dict(self) -> dict:
        """The settings as a JSON-ready dict (``from_dict`` inverts it)."""
        return dataclasses.asdict(self)

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
