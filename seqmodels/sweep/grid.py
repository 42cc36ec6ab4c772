"""What a sweep runs: the grid's axes, the fixed per-cell settings, and the cells they span.

A :class:`SweepGrid` holds one tuple of values per axis (preset, n_train,
hidden, cell, em_states, seed) and a :class:`~seqmodels.compare.ComparisonConfig`
whose other fields (length, epochs, restarts, ...) every cell shares. It spans
two kinds of :class:`GridCell`, so no model is fitted twice for axes it does
not read:

- ``hmm`` cells, one per (preset, n_train, em_states, seed): Baum-Welch with
  ``em_states`` states; the cell at the true number of states also reports the
  counted HMM and the true model.
- ``rnn`` cells, one per (preset, n_train, hidden, cell, seed): one next-symbol
  RNN and its belief probe.

Every value is checked by building the cell's ``ComparisonConfig``, so the
preset, cell and size checks (and their messages) are the comparison's own.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NamedTuple

from seqmodels._checks import check_count, named_seed
from seqmodels.compare.config import ComparisonConfig
from seqmodels.sweep.presets import truth_states

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: The axes of a grid, in the order rows and file names list them.
AXES = ("preset", "n_train", "hidden", "cell", "em_states", "seed")

#: ComparisonConfig fields a cell's coordinates set (``cell`` sets ``cells``);
#: a grid's ``settings`` holds every other field.
COORDINATE_FIELDS = frozenset({"preset", "n_train", "hidden", "cells", "em_states", "seed"})

#: The per-cell settings of the default sweep (``make sweep``): the comparison's
#: defaults, but Baum-Welch runs only the best of its 4 restarts to convergence
#: (2 finalists in the comparison), and the RNN trains until early stopping
#: (``rnn_patience``) with a cap of 200 epochs (80 in the comparison), so a
#: small training set gets as many epochs as it needs.
SWEEP_SETTINGS = ComparisonConfig(restarts=4, em_finalists=1, epochs=200)

#: The kinds of grid cell: Baum-Welch fits and RNN fits.
KINDS = ("hmm", "rnn")


class GridCell(NamedTuple):
    """One unit of work: the coordinates of one fit (or group of fits) and its seed.

    ``kind`` is ``"hmm"`` or ``"rnn"``; the axes a kind does not read are None
    (``hidden`` and ``cell`` of an hmm cell, ``em_states`` of an rnn cell).
    ``cell`` names the RNN cell (``elman``, ``gru``, ``lstm``).
    """

    kind: str
    preset: str
    n_train: int
    hidden: int | None
    cell: str | None
    em_states: int | None
    seed: int

    @property
    def key(self) -> str:
        """A file-name-safe name, unique in a grid: ``rnn-loaded_dice-n25-h32-elman-s0``."""
        if self.kind == "hmm":
            middle = f"k{self.em_states}"
        else:
            middle = f"h{self.hidden}-{self.cell}"
        return f"{self.kind}-{self.preset}-n{self.n_train}-{middle}-s{self.seed}"

    def coordinates(self) -> dict[str, object]:
        """The axis values, in :data:`AXES` order (None where the kind does not read one)."""
        return {"kind": self.kind, **{axis: getattr(self, axis) for axis in AXES}}

    def fit_seed(self) -> int:
        """The root seed of this cell's fits: a SeedSequence keyed by every coordinate.

        The replicate ``seed`` is the root and the other coordinates name the
        child, so no two cells share a stream and none depends on which ran first.
        """
        keys = [str(value) for value in self.coordinates().values() if value is not None]
        return int(named_seed(self.seed, *keys).generate_state(1)[0])

    def config(self, settings: ComparisonConfig) -> ComparisonConfig:
        """``settings`` with this cell's coordinates and fit seed filled in."""
        coordinates = dict(preset=self.preset, n_train=self.n_train, seed=self.fit_seed())
        if self.kind == "hmm":
            coordinates["em_states"] = self.em_states
        else:
            coordinates.update(hidden=self.hidden, cells=(self.cell,))
        return dataclasses.replace(settings, **coordinates)

    def models(self) -> tuple[str, ...]:
        """The registry entries this cell fits and measures."""
        if self.kind == "rnn":
            return (f"rnn_{self.cell}",)
        if self.em_states == truth_states(self.preset):
            return ("true", "counted_hmm", "em_hmm")
        return ("em_hmm",)


@dataclass(frozen=True)
class SweepGrid:
    """The axes of a sweep and the settings every cell shares.

    Parameters
    ----------
    preset : tuple of str
        True models, names the comparison accepts (``ComparisonConfig.preset``).
    n_train : tuple of int
        Training sizes (sequences). For one (preset, seed) the training sets are
        nested: each is a prefix of the same sample.
    hidden : tuple of int
        Hidden units of the RNNs.
    cell : tuple of str
        RNN cells (``seqmodels.rnn.CELLS``).
    em_states : tuple of int
        Numbers of states of the Baum-Welch HMM besides the truth's own, which
        every grid fits (the learning curve and model selection need it). May
        be empty.
    seed : tuple of int
        Replicates: each has its own training sample, held-out set and fits.
    settings : ComparisonConfig
        Every other setting (length, n_test, epochs, restarts, ...); its own
        coordinate fields are ignored.

    Raises
    ------
    ValueError
        An axis that is empty (``em_states`` excepted), repeats a value, or holds
        a value the comparison refuses (unknown preset or cell, a size below 1,
        too few training sequences to hold out a validation one), named.
    """

    preset: tuple[str, ...] = ("loaded_dice",)
    n_train: tuple[int, ...] = (25, 50, 100, 200, 400, 800, 1600)
    hidden: tuple[int, ...] = (32,)
    cell: tuple[str, ...] = ("elman",)
    em_states: tuple[int, ...] = ()
    seed: tuple[int, ...] = (0, 1, 2)
    settings: ComparisonConfig = SWEEP_SETTINGS

    def __post_init__(self) -> None:
        if not isinstance(self.settings, ComparisonConfig):
            raise ValueError(f"settings must be a ComparisonConfig, got "
                             f"{type(self.settings).__name__}")
        # The coordinate fields of settings are replaced in every cell: reset them,
        # so equal grids compare equal however they were built.
        neutral = {name: getattr(ComparisonConfig(), name) for name in COORDINATE_FIELDS}
        object.__setattr__(self, "settings", dataclasses.replace(self.settings, **neutral))
        for axis in AXES:
            object.__setattr__(self, axis, _axis_values(axis, getattr(self, axis)))
        for axis in AXES:
            for value in getattr(self, axis):
                _check_value(self.settings, axis, value)

    def states(self, preset: str) -> tuple[int, ...]:
        """The numbers of states the EM HMM is fitted with on ``preset``: the truth's first."""
        own = truth_states(preset)
        return (own, *sorted(set(self.em_states) - {own}))

    def cells(self) -> Iterator[GridCell]:
        """Every cell of the grid, each once: hmm cells, then rnn cells."""
        for preset in self.preset:
            for n_train in self.n_train:
                for seed in self.seed:
                    for k in self.states(preset):
                        yield GridCell("hmm", preset, n_train, None, None, k, seed)
                    for hidden in self.hidden:
                        for cell in self.cell:
                            yield GridCell("rnn", preset, n_train, hidden, cell, None, seed)

    def to_dict(self) -> dict:
        """JSON-ready: ``{"grid": {axis: [values]}, "settings": {field: value}}``."""
        settings = {name: value for name, value in self.settings.to_dict().items()
                    if name not in COORDINATE_FIELDS}
        return {"grid": {axis: list(getattr(self, axis)) for axis in AXES},
                "settings": settings}

    @classmethod
    def from_dict(cls, data: Mapping) -> SweepGrid:
        """Rebuild a grid from :meth:`to_dict` output (or a parsed TOML file).

        Missing axes and settings take the defaults (``SWEEP_SETTINGS``);
        unknown keys raise ``ValueError`` naming them.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a sweep grid must be a table with 'grid' and 'settings', got "
                             f"{type(data).__name__}")
        _refuse_unknown("sweep file", data, {"grid", "settings"})
        grid, settings = data.get("grid", {}), data.get("settings", {})
        _refuse_unknown("[grid]", grid, set(AXES))
        _refuse_unknown("[settings]", settings,
                        {f.name for f in fields(ComparisonConfig)} - COORDINATE_FIELDS)
        merged = SWEEP_SETTINGS.to_dict() | dict(settings)
        return cls(**grid, settings=ComparisonConfig.from_dict(merged))

    @classmethod
    def from_file(cls, path: str | Path) -> SweepGrid:
        """A grid from a TOML file or a sweep's ``config.json``.

        Both hold the tables ``grid`` (axis -> list of values) and ``settings``
        (ComparisonConfig fields); see :meth:`from_dict`.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ValueError(f"cannot read the sweep file {str(path)!r}: {err.strerror}") \
                from None
        try:
            table = (json.loads(data) if path.suffix == ".json"
                     else tomllib.loads(data.decode()))
        except (ValueError, UnicodeDecodeError) as err:  # JSON and TOML errors are ValueErrors
            kind = "JSON" if path.suffix == ".json" else "TOML"
            raise ValueError(f"{str(path)!r} is not valid {kind}: {err}") from None
        return cls.from_dict(table)

    def differences(self, other: SweepGrid) -> list[str]:
        """What differs from ``other``, one ``"name: this vs other"`` line each."""
        mine, theirs = _flat(self.to_dict()), _flat(other.to_dict())
        return [f"{name}: {mine.get(name)!r} vs {theirs.get(name)!r}"
                for name in sorted(set(mine) | set(theirs)) if mine.get(name) != theirs.get(name)]


def _axis_values(axis: str, values) -> tuple:
    if isinstance(values, (str, int)):
        values = (values,)
    try:
        values = tuple(values)
    except TypeError:
        raise ValueError(f"{axis} must be a sequence of values, got {values!r}") from None
    if not values and axis != "em_states":
        raise ValueError(f"{axis} is empty: a grid needs at least one value on every axis")
    repeated = sorted({repr(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{axis} repeats {', '.join(repeated)}")
    return values


def _check_value(settings: ComparisonConfig, axis: str, value) -> None:
    """Refuse ``value`` on ``axis`` if the comparison refuses it in a cell's config."""
    field, setting = ("cells", (value,)) if axis == "cell" else (axis, value)
    try:
        if axis == "em_states":  # None means "the truth's K" in a config; the axis adds others
            check_count(axis, value)
        dataclasses.replace(settings, **{field: setting})
    except ValueError as err:
        raise ValueError(f"{axis} value {value!r} refused: {err}") from None


def _refuse_unknown(where: str, table, known: set[str]) -> None:
    if not isinstance(table, Mapping):
        raise ValueError(f"{where} must be a table, got {table!r}")
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"{where} has unknown keys {unknown}; known: {sorted(known)}")


def _flat(data: dict) -> dict[str, object]:
    return {f"{part}.{name}": value for part, table in data.items()
            for name, value in table.items()}
