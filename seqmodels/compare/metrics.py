"""Metric functions on plain arrays: prediction loss, decoding, matrix error, belief probe.

Every function here is pure NumPy on arrays with the package's shapes
(``(B, T)`` symbols, ``(B, T, V)`` forecasts, ``(B, T, K)`` beliefs), so each
can be checked on synthetic inputs whose answer is known.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def probe_accuracy(fit_features: np.ndarray, fit_labels: np.ndarray,
                   score_features: np.ndarray, score_labels: np.ndarray,
                   n_classes: int) -> float:
    """Accuracy of a linear least-squares classifier: an affine probe to one-hot labels, argmax."""
    fit_labels = as_symbol_batch(fit_labels, n_classes, "fit_labels")[0].ravel()
    weights = fit_affine_probe(fit_features, np.eye(n_classes)[fit_labels])
    predicted = apply_affine_probe(weights, score_features).argmax(axis=-1)
    return accuracy(predicted, score_labels)


# --------------------------------------------------------------------------- cross-validated probe

#: Ridge penalties a probe chooses among, as multiples of the features' mean variance.
PROBE_PENALTIES = np.logspace(-8, 1, 10)


@dataclass(frozen=True)
class ProbeResult:
    """A cross-validated probe's out-of-fold predictions and their scores.

    Attributes
    ----------
    predictions : numpy.ndarray, shape (B, T, K)
        For each sequence, the prediction of the probe fitted on the folds it
        is not in.
    r2 : float
        :math:`1 - SSE / SST` pooled over all steps and outputs (SST around each
        output's mean).
    mse : float
        :math:`SSE / (N K)`: the mean squared error per output entry.
    penalties : numpy.ndarray, shape (n_folds,)
        The relative ridge penalty chosen inside each outer fold's training part.
    """

    predictions: np.ndarray
    r2: float
    mse: float
    penalties: np.ndarray


@dataclass(frozen=True)
class _Moments:
    """Sums over the steps of a set of sequences: what ridge fits and their errors need.

    ``n`` steps, ``sx`` (D,) and ``sy`` (K,) sums, ``gxx`` (D, D) = X^T X,
    ``gxy`` (D, K) = X^T Y and ``yy`` the sum of squared targets.
    """

    n: float
    sx: np.ndarray
    sy: np.ndarray
    gxx: np.ndarray
    gxy: np.ndarray
    yy: float


def _moments_per_sequence(features: np.ndarray, targets: np.ndarray) -> _Moments:
    """:class:`_Moments` with a leading axis: one entry per sequence."""
    return _Moments(n=np.full(features.shape[0], float(features.shape[1])),
                    sx=features.sum(axis=1), sy=targets.sum(axis=1),
                    gxx=np.einsum("btd,bte->bde", features, features),
                    gxy=np.einsum("btd,btk->bdk", features, targets),
                    yy=np.einsum("btk,btk->b", targets, targets))


def _total(moments: _Moments, rows: np.ndarray) -> _Moments:
    """The moments of the sequences ``rows``, summed."""
    return _Moments(*(np.asarray(getattr(moments, name))[rows].sum(axis=0)
                      for name in ("n", "sx", "sy", "gxx", "gxy", "yy")))


def _ridge(train: _Moments, penalty: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights (D, K) and intercept (K,) of ridge regression on centered data.

    Minimizes :math:`\\|Y - X W - 1 c^T\\|^2 + \\lambda s \\|W\\|^2` with ``s``
    the mean variance of the features, so ``penalty`` is scale-free and the
    intercept is not penalized.
    """
    mean_x, mean_y = train.sx / train.n, train.sy / train.n
    cxx = train.gxx - train.n * np.outer(mean_x, mean_x)
    cxy = train.gxy - train.n * np.outer(mean_x, mean_y)
    scale = max(np.trace(cxx) / cxx.shape[0], 1e-300)
    weights = np.linalg.solve(cxx + penalty * scale * np.eye(cxx.shape[0]), cxy)
    return weights, mean_y - mean_x @ weights


def _sse(weights: np.ndarray, intercept: np.ndarray, rows: _Moments) -> float:
    """:math:`\\|Y - X W - 1 c^T\\|^2` on the rows summarized by ``rows``, without the rows."""
    return float(rows.yy - 2 * np.sum(weights * rows.gxy) - 2 * intercept @ rows.sy
                 + np.sum(weights * (rows.gxx @ weights)) + 2 * intercept @ (weights.T @ rows.sx)
                 + rows.n * intercept @ intercept)


def _folds(n_sequences: int, n_folds: int) -> list[np.ndarray]:
    return [part for part in np.array_split(np.arange(n_sequences), n_folds) if part.size]


def _best_penalty(moments: _Moments, rows: np.ndarray, inner_folds: int,
                  penalties: np.ndarray) -> float:
    """The penalty with the least squared error over ``inner_folds`` folds of ``rows``."""
    errors = np.zeros(len(penalties))
    for held in _folds(rows.size, inner_folds):
        fit = _total(moments, np.delete(rows, held))
        scored = _total(moments, rows[held])
        errors += [_sse(*_ridge(fit, penalty), scored) for penalty in penalties]
    return float(penalties[int(np.argmin(errors))])


def cross_validated_probe(features: np.ndarray, targets: np.ndarray, n_folds: int = 5,
                          inner_folds: int = 4,
                          penalties: np.ndarray = PROBE_PENALTIES) -> ProbeResult:
    """A ridge probe from features to targets, scored out of fold, its penalty chosen inside.

    The ``B`` sequences are cut into ``n_folds`` folds of whole sequences. For
    each fold, a penalty is chosen from ``penalties`` by ``inner_folds``-fold
    cross-validation on the other folds alone, a ridge map (:func:`_ridge`) is
    fitted on all of them with it, and the fold is predicted. No step's
    prediction ever saw that step, through the weights or through the penalty.
    Everything is computed from per-sequence sums (D x D Gram matrices), so
    the inner search never revisits the rows.

    Parameters
    ----------
    features : numpy.ndarray, shape (B, T, D)
    targets : numpy.ndarray, shape (B, T, K)
    n_folds, inner_folds : int
        At least 2 each; ``B >= n_folds`` and each training part must hold at
        least ``inner_folds`` sequences.
    penalties : numpy.ndarray
        Relative penalties to choose from (see :func:`_ridge`).

    Returns
    -------
    ProbeResult
    """
    features = np.asarray(features, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if features.shape[:2] != targets.shape[:2] or features.ndim != 3 or targets.ndim != 3:
        raise ValueError(f"features {features.shape} and targets {targets.shape} must be "
                         "(B, T, D) and (B, T, K) over the same sequences and steps")
    if features.shape[0] < 2 * n_folds:
        raise ValueError(f"a {n_folds}-fold probe needs at least {2 * n_folds} sequences, got "
                         f"{features.shape[0]}")
    moments = _moments_per_sequence(features, targets)
    predictions = np.empty_like(targets)
    chosen = []
    everything = np.arange(features.shape[0])
    for held in _folds(features.shape[0], n_folds):
        rows = np.delete(everything, held)
        chosen.append(_best_penalty(moments, rows, inner_folds, penalties))
        weights, intercept = _ridge(_total(moments, rows), chosen[-1])
        predictions[held] = features[held] @ weights + intercept
    residual = float(np.sum((targets - predictions) ** 2))
    spread = float(np.sum((targets - targets.mean(axis=(0, 1))) ** 2))
    return ProbeResult(predictions, 1.0 - residual / spread, residual / targets.size,
                       np.array(chosen))


def markov_features(symbols: np.ndarray, n_symbols: int, order: int) -> np.ndarray:
    """The last ``order`` symbols, one-hot and side by side: (B, T, order * V) float64.

    Block ``j`` of step ``t`` is the one-hot of :math:`x_{t-j}` (zeros before
    the sequence starts), so a probe on these features sees exactly a window of
    ``order`` symbols ending at :math:`x_t`.
    """
    symbols = np.asarray(symbols)
    n_seq, length = symbols.shape
    out = np.zeros((n_seq, length, order * n_symbols))
    for lag in range(min(order, length)):
        block = out[:, lag:, lag * n_symbols:(lag + 1) * n_symbols]  # a view into out
        np.put_along_axis(block, symbols[:, : length - lag, None], 1.0, axis=-1)
    return out
