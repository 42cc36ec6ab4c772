"""What a sweep's rows say: curves over seeds, the RNN against EM, model selection over K.

Pure functions from the tidy rows of :func:`~seqmodels.sweep.run_sweep`
(columns :data:`~seqmodels.sweep.cell.COLUMNS`) to small frames; the report
prints and draws them. Spread over seeds is the standard error of the mean,
``sd / sqrt(n)`` with ``sd`` the sample standard deviation (ddof 1) of the
``n`` replicates: each replicate has its own training sample, held-out set and
fit seeds, so it captures all three sources of noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from seqmodels.sweep.presets import truth_states

#: The critical multiple of the standard error in :func:`rnn_reaches_em`.
REACH_SE = 2.0


def over_seeds(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean, standard error, min, max and count of ``value`` over seeds, per group ``by``."""
    groups = rows.groupby(by, sort=False, dropna=False).value
    out = groups.agg(mean="mean", sd="std", low="min", high="max", n="count").reset_index()
    out["se"] = out.sd / np.sqrt(out.n)
    return out.drop(columns="sd")


def _metric(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    return rows[rows.metric == metric]


def _true_states(presets: pd.Series) -> pd.Series:
    """Each preset's true number of states, ``K``: the truth built once per preset, not per row."""
    return presets.map({preset: truth_states(preset) for preset in presets.unique()})


def em_at_truth(rows: pd.DataFrame) -> pd.DataFrame:
    """The EM HMM's rows of the hmm cells at each preset's true number of states."""
    em = rows[(rows.kind == "hmm") & (rows.model == "em_hmm")]
    return em[em.em_states == _true_states(em.preset)]


def curve_rows(rows: pd.DataFrame, metric: str = "excess") -> pd.DataFrame:
    """Rows of the learning curves: one ``curve`` label per line, ``metric`` only.

    Lines: the counted HMM, the EM HMM at the true K, and one per (RNN cell,
    hidden size).
    """
    counted = rows[rows.model == "counted_hmm"].assign(curve="counted HMM (sees states)")
    em = em_at_truth(rows)
    em = em.assign(curve=[f"EM HMM, K={k}" for k in em.em_states])
    rnn = rows[rows.kind == "rnn"]
    rnn = rnn[rnn.model.str.startswith("rnn_")]
    rnn = rnn.assign(curve=[f"{cell} RNN, H={h}" for cell, h in zip(rnn.cell, rnn.hidden,
                                                                     strict=True)])
    return _metric(pd.concat([counted, em, rnn], ignore_index=True), metric)


def learning_curves(rows: pd.DataFrame, metric: str = "excess") -> pd.DataFrame:
    """``metric`` over seeds for each (preset, curve, n_train), sizes ascending."""
    summary = over_seeds(curve_rows(rows, metric), ["preset", "curve", "n_train"])
    return summary.sort_values(["preset", "curve", "n_train"], kind="stable",
                               ignore_index=True)


def rnn_vs_em(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (preset, cell, hidden, n_train): the RNN's excess minus EM's, paired by seed.

    Both are scored on the same held-out set of each seed, so the difference
    per seed removes the held-out noise they share. Columns ``preset, cell,
    hidden, n_train, rnn, em, difference, se, n, reached``: means over seeds,
    the standard error of the mean difference and ``reached`` when the mean
    difference is at most :data:`REACH_SE` standard errors (the RNN's excess
    is not significantly above EM's; one-sided). NaN ``se`` (one seed) never
    reaches.
    """
    em = em_at_truth(_metric(rows, "excess"))[["preset", "n_train", "seed", "value"]]
    rnn = _metric(rows, "excess")
    rnn = rnn[(rnn.kind == "rnn") & rnn.model.str.startswith("rnn_")]
    paired = rnn.merge(em, on=["preset", "n_train", "seed"], suffixes=("_rnn", "_em"))
    paired = paired.assign(difference=paired.value_rnn - paired.value_em)
    groups = paired.groupby(["preset", "cell", "hidden", "n_train"], sort=True)
    out = groups.agg(rnn=("value_rnn", "mean"), em=("value_em", "mean"),
                     difference=("difference", "mean"), sd=("difference", "std"),
                     n=("difference", "count")).reset_index()
    out["se"] = out.sd / np.sqrt(out.n)
    out["reached"] = out.difference <= REACH_SE * out.se
    return out.drop(columns="sd")


def smallest_reaching(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per (preset, cell, hidden): the smallest n_train that reached EM, and whether all larger did.

    Columns ``preset, cell, hidden, n_train`` (NA when none reached),
    ``stays`` (every larger size on the grid reached too) and ``largest`` (the
    largest n_train compared).
    """
    records = []
    for (preset, cell, hidden), part in comparison.groupby(["preset", "cell", "hidden"],
                                                           sort=True):
        part = part.sort_values("n_train")
        reached = part.n_train[part.reached]
        first = int(reached.iloc[0]) if len(reached) else None
        stays = first is not None and bool(part.reached[part.n_train >= first].all())
        records.append((preset, cell, hidden, first, stays, int(part.n_train.max())))
    out = pd.DataFrame(records, columns=["preset", "cell", "hidden", "n_train", "stays",
                                         "largest"])
    return out.astype({"n_train": "Int64"})


def capacity(rows: pd.DataFrame) -> pd.DataFrame:
    """Excess and belief R^2 of each RNN over seeds, per (preset, cell, hidden, n_train)."""
    rnn = rows[(rows.kind == "rnn") & rows.model.str.startswith("rnn_")
               & rows.metric.isin(["excess", "belief_r2"])]
    summary = over_seeds(rnn, ["preset", "cell", "hidden", "n_train", "metric"])
    return summary.sort_values(["preset", "cell", "n_train", "metric", "hidden"],
                               kind="stable", ignore_index=True)


def model_selection(rows: pd.DataFrame) -> pd.DataFrame:
    """The EM HMM's held-out excess and BIC per (preset, n_train, em_states), over seeds.

    Held-out excess is the held-out log-loss minus the truth's on the same
    sequences: per seed it orders the K exactly as the held-out log-likelihood
    does, without the spread of the held-out sets between seeds. ``delta_bic``
    is BIC minus the lowest BIC over K of the same seed (0 for that seed's
    pick), for the same reason.

    Returns
    -------
    pandas.DataFrame
        Columns ``preset, n_train, em_states``; ``excess``, ``excess_se``,
        ``delta_bic``, ``delta_bic_se`` (means over seeds and their standard
        errors); ``true_K``; ``picked_by_excess`` / ``picked_by_bic`` (this K
        has the lowest mean in its (preset, n_train)); ``seeds_excess`` /
        ``seeds_bic`` (how many seeds pick this K on their own).
    """
    em = rows[(rows.kind == "hmm") & (rows.model == "em_hmm")
              & rows.metric.isin(["excess", "bic"])].copy()
    em["best"] = em.groupby(["preset", "n_train", "seed", "metric"]).value.transform("min")
    em["is_pick"] = em.value == em.best
    bic = em.metric == "bic"
    em.loc[bic, "value"] = em.value[bic] - em.best[bic]
    em["metric"] = em.metric.replace({"bic": "delta_bic"})
    keys = ["preset", "n_train", "em_states"]
    wide = over_seeds(em, [*keys, "metric"]).pivot(index=keys, columns="metric",
                                                   values=["mean", "se"])
    wide = wide.reindex(columns=pd.MultiIndex.from_product([["mean", "se"],
                                                            ["excess", "delta_bic"]]))
    out = pd.DataFrame({name: wide[(stat, metric)] for name, stat, metric in (
        ("excess", "mean", "excess"), ("excess_se", "se", "excess"),
        ("delta_bic", "mean", "delta_bic"), ("delta_bic_se", "se", "delta_bic"))})
    out = out.reset_index().sort_values(keys, ignore_index=True)
    out["true_K"] = _true_states(out.preset)
    votes = em[em.is_pick].groupby([*keys, "metric"]).size()
    for metric, name in (("excess", "excess"), ("delta_bic", "bic")):
        best = out.groupby(["preset", "n_train"])[metric].transform("min")
        out[f"picked_by_{name}"] = out[metric] == best
        out[f"seeds_{name}"] = [int(votes.get((*key, metric), 0)) for key in
                                zip(out.preset, out.n_train, out.em_states, strict=True)]
    return out


def cell_seconds(rows: pd.DataFrame) -> pd.DataFrame:
    """Wall seconds of each cell: its coordinates and ``seconds``."""
    cells = rows[(rows.model == "cell") & (rows.metric == "seconds")]
    return cells.drop(columns=["model", "metric"]).rename(columns={"value": "seconds"})
