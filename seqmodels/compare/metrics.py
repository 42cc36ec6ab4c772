"""Metric functions on plain arrays: prediction loss, decoding, matrix error, belief probe.

Every function here is pure NumPy on arrays with the package's shapes
(``(B, T)`` symbols, ``(B, T, V)`` forecasts, ``(B, T, K)`` beliefs), so each
can be checked on synthetic inputs whose answer is known.
"""

from __future__ import annotations

import numpy as np

from seqmodels._checks import as_symbol_batch

#: Floor applied to a model's probability before taking a log, so a forecast
#: that rounds to 0 gives a large finite loss instead of ``inf``.
PROB_FLOOR = 1e-300


def symbol_log_probs(predictive: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    """Log-probability each forecast gave to the symbol that came.

    Parameters
    ----------
    predictive : numpy.ndarray, shape (B, T, V) or (T, V)
        ``predictive[b, t] = P(x_t | x_0..x_{t-1})``.
    symbols : numpy.ndarray of int, shape (B, T) or (T,)
        In ``[0, V)``.

    Returns
    -------
    numpy.ndarray, shape (B, T) or (T,)
        :math:`\\log p_{b,t}(x_{b,t})`.
    """
    return _log_probs_of(*_forecasts_and_symbols(predictive, symbols))


def _log_probs_of(predictive: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    """:func:`symbol_log_probs` on arrays already checked by :func:`_forecasts_and_symbols`."""
    chosen = np.take_along_axis(predictive, symbols[..., None], axis=-1)[..., 0]
    return np.log(np.maximum(chosen, PROB_FLOOR))


def _forecasts_and_symbols(predictive, symbols) -> tuple[np.ndarray, np.ndarray]:
    """Check that ``predictive`` holds one forecast over ``V`` symbols per entry of ``symbols``."""
    predictive = np.asarray(predictive, dtype=np.float64)
    if predictive.ndim not in (2, 3):
        raise ValueError(f"predictive must have shape (T, V) or (B, T, V), got {predictive.shape}")
    batch, single = as_symbol_batch(symbols, predictive.shape[-1])
    symbols = batch[0] if single else batch
    if predictive.shape[:-1] != symbols.shape:
        raise ValueError(f"predictive has shape {predictive.shape}; for symbols of shape "
                         f"{symbols.shape} it must be {(*symbols.shape, predictive.shape[-1])}")
    return predictive, symbols


def sequence_log_loss(predictive: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    """Mean negative log-probability per symbol of each sequence, in nats.

    Shapes as in :func:`symbol_log_probs`; returns shape (B,), or a 0-d array
    for one ``(T,)`` sequence.
    """
    return -symbol_log_probs(predictive, symbols).mean(axis=-1)


def excess_with_error(model_loss: np.ndarray, floor_loss: np.ndarray) -> tuple[float, float]:
    """Excess log-loss over the floor and its standard error.

    Parameters
    ----------
    model_loss, floor_loss : numpy.ndarray, shape (B,)
        Per-sequence log-loss (nats per symbol) of a model and of the true
        model on the same ``B`` independent sequences of equal length.

    Returns
    -------
    excess : float
        ``mean(model_loss - floor_loss)``, the same as the difference of the
        pooled losses; exactly 0 when the two agree.
    standard_error : float
        ``std(d, ddof=1) / sqrt(B)`` of the paired per-sequence differences
        ``d`` (sequences are independent, steps within one are not); 0 for B=1.
    """
    model_loss = np.atleast_1d(np.asarray(model_loss, dtype=np.float64))
    floor_loss = np.atleast_1d(np.asarray(floor_loss, dtype=np.float64))
    if model_loss.shape != floor_loss.shape or model_loss.ndim != 1:
        raise ValueError(f"model_loss {model_loss.shape} and floor_loss {floor_loss.shape} must "
                         "be per-sequence losses of the same shape (B,)")
    diff = model_loss - floor_loss
    error = float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0
    return float(model_loss.mean() - floor_loss.mean()), error


def mean_kl(p: np.ndarray, q: np.ndarray) -> float:
    """Mean Kullback-Leibler divergence KL(p || q) over all leading axes, in nats.

    Parameters
    ----------
    p, q : numpy.ndarray, shape (..., V)
        Distributions along the last axis; ``0 log 0 = 0``, and ``q`` is floored
        at :data:`PROB_FLOOR` where ``p > 0``.

    Returns
    -------
    float
        :math:`\\operatorname{mean} \\sum_v p_v \\log(p_v / q_v)`.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.maximum(np.asarray(q, dtype=np.float64), PROB_FLOOR)
    positive = p > 0
    terms = np.zeros(np.broadcast_shapes(p.shape, q.shape))
    ratio = np.divide(p, q, out=np.ones_like(terms), where=positive)
    np.multiply(p, np.log(ratio), out=terms, where=positive)
    return float(terms.sum(axis=-1).mean())


def prediction_metrics(predictive: np.ndarray, symbols: np.ndarray,
                       floor_predictive: np.ndarray) -> dict[str, float]:
    """Log-loss, excess over the floor (and its standard error), perplexity and mean KL.

    Parameters
    ----------
    predictive, floor_predictive : numpy.ndarray, shape (B, T, V) or (T, V)
        A model's forecasts and the true model's (the Bayes-optimal floor).
    symbols : numpy.ndarray of int, shape (B, T) or (T,)
        The held-out symbols, in ``[0, V)``.

    Returns
    -------
    dict
        ``log_loss`` (nats per symbol), ``excess`` (over the floor), ``excess_se``,
        ``perplexity`` (``exp(log_loss)``), ``kl`` (mean KL from the true
        forecast to the model's, the part of the excess the data cannot blur).
    """
    predictive, symbols = _forecasts_and_symbols(predictive, symbols)
    floor_predictive = np.asarray(floor_predictive, dtype=np.float64)
    if floor_predictive.shape != predictive.shape:
        raise ValueError(f"floor_predictive {floor_predictive.shape} and predictive "
                         f"{predictive.shape} differ in shape")
    # Checked once above: the per-sequence losses skip the public functions' checks.
    loss = -_log_probs_of(predictive, symbols).mean(axis=-1)
    floor_loss = -_log_probs_of(floor_predictive, symbols).mean(axis=-1)
    excess, error = excess_with_error(loss, floor_loss)
    log_loss = float(loss.mean())
    return {"log_loss": log_loss, "excess": excess, "excess_se": error,
            "perplexity": float(np.exp(log_loss)), "kl": mean_kl(floor_predictive, predictive)}


def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of positions where two integer label arrays of one shape agree."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if predicted.shape != truth.shape:
        raise ValueError(f"predicted {predicted.shape} and truth {truth.shape} differ in shape")
    return float(np.mean(predicted == truth))


def accuracy_with_error(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Accuracy over all positions and its standard error over sequences.

    Parameters
    ----------
    predicted, truth : numpy.ndarray of int, shape (B, T)
        Labels of ``B`` independent sequences of equal length.

    Returns
    -------
    accuracy : float
        The fraction of the ``B * T`` positions where the two agree.
    standard_error : float
        ``std(a_b, ddof=1) / sqrt(B)`` of the per-sequence accuracies ``a_b``
        (steps within a sequence are correlated, sequences are not); 0 for B=1.
    """
    per_sequence = np.atleast_2d(np.asarray(predicted) == np.asarray(truth)).mean(axis=-1)
    value = accuracy(predicted, truth)
    if per_sequence.size < 2:
        return value, 0.0
    return value, float(per_sequence.std(ddof=1) / np.sqrt(per_sequence.size))


def row_total_variation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Total variation distance between matching rows, ``0.5 * sum_j |a_ij - b_ij|``, shape (n,)."""
    return 0.5 * np.abs(np.asarray(a) - np.asarray(b)).sum(axis=-1)


def matrix_errors(model, reference) -> dict[str, float]:
    """Errors of a model's matrices against a reference with the same state order.

    ``model`` and ``reference`` are HMMs (anything with ``transmat`` (K, K) and
    ``emissionprob`` (K, V)); align the model's states first
    (``seqmodels.hmm.align_states``).

    Returns
    -------
    dict
        ``transmat_max_abs``, ``transmat_tv`` (mean total variation per row),
        ``emission_max_abs`` and ``emission_tv``.
    """
    out = {}
    for name, attribute in (("transmat", "transmat"), ("emission", "emissionprob")):
        ours, theirs = getattr(model, attribute), getattr(reference, attribute)
        out[f"{name}_max_abs"] = float(np.max(np.abs(ours - theirs)))
        out[f"{name}_tv"] = float(row_total_variation(ours, theirs).mean())
    return out


# --------------------------------------------------------------------------- linear probes


def _with_bias(features: np.ndarray) -> np.ndarray:
    return np.hstack([features, np.ones((features.shape[0], 1))])


def fit_affine_probe(features: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Least-squares affine map from features (N, H) to targets (N, K).

    Returns
    -------
    numpy.ndarray, shape (H + 1, K)
        ``W`` minimizing :math:`\\| [X, 1] W - Y \\|_F^2` (the last row is the bias).
    """
    return np.linalg.lstsq(_with_bias(features), targets, rcond=None)[0]


def apply_affine_probe(weights: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Probe outputs ``[X, 1] @ W``, shape (N, K)."""
    return _with_bias(features) @ weights


def r_squared(targets: np.ndarray, predictions: np.ndarray) -> float:
    """Coefficient of determination pooled over all outputs.

    :math:`R^2 = 1 - \\sum (y - \\hat y)^2 / \\sum (y - \\bar y)^2`, with
    :math:`\\bar y` each output column's mean; 1 is a perfect fit, 0 is no
    better than the column means, and it is negative when worse.
    """
    targets = np.asarray(targets, dtype=np.float64)
    residual = np.sum((targets - predictions) ** 2)
    total = np.sum((targets - targets.mean(axis=0)) ** 2)
    return float(1.0 - residual / total)


def probe_r2(fit_features: np.ndarray, fit_targets: np.ndarray,
             score_features: np.ndarray, score_targets: np.ndarray) -> float:
    """Fit an affine probe on one set of rows and return its R^2 on another."""
    weights = fit_affine_probe(fit_features, fit_targets)
    return r_squared(score_targets, apply_affine_probe(weights, score_features))


def probe_labels(fit_features: np.ndarray, fit_labels: np.ndarray,
                 score_features: np.ndarray, n_classes: int) -> np.ndarray:
    """A linear least-squares classifier: an affine probe to one-hot labels, then argmax.

    Fitted on ``fit_features`` (N1, H) with ``fit_labels`` (N1,) in
    ``[0, n_classes)``; returns the labels it gives ``score_features`` (N2, H).
    """
    fit_labels = as_symbol_batch(fit_labels, n_classes, "fit_labels")[0].ravel()
    weights = fit_affine_probe(fit_features, np.eye(n_classes)[fit_labels])
    return apply_affine_probe(weights, score_features).argmax(axis=-1)


def probe_accuracy(fit_features: np.ndarray, fit_labels: np.ndarray,
                   score_features: np.ndarray, score_labels: np.ndarray,
                   n_classes: int) -> float:
    """Accuracy of :func:`probe_labels` on ``score_labels`` (N2,)."""
    return accuracy(probe_labels(fit_features, fit_labels, score_features, n_classes),
                    score_labels)
