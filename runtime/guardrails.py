"""Guardrails: warnings about the data and the training that a user should act on.

Each warning names the model, the columns or classes involved, and the fix. None of them
stops training. The thresholds:

    code                 fires when                                             constant
    class_imbalance      largest class >= 3x the smallest (training share,      IMBALANCE_RATIO
                         only when balance = "none")
    correlated_features  two numeric features with |Pearson r| > 0.95           CORRELATION_MAX
    unscaled_feature     a numeric feature with max(|mean|, stddev) > 10        SCALE_MAX
    overfitting          training accuracy (R² for regression) above the        OVERFIT_GAP
                         evaluation one by more than 0.10
    no_convergence       the best training loss is >= 98% of the loss of a      NO_CONVERGENCE_RATIO
                         constant prediction (class shares, or the mean); for
                         a custom estimator: the loss fell by < 1% after the    MIN_LOSS_DROP
                         first epoch (needs 3 epochs)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlp.coltypes import ColumnType
from runtime.tfdata import Column, Profile

IMBALANCE_RATIO = 3.0
CORRELATION_MAX = 0.95
SCALE_MAX = 10.0
OVERFIT_GAP = 0.10
NO_CONVERGENCE_RATIO = 0.98
MIN_LOSS_DROP = 0.01


@dataclass(frozen=True)
class TrainWarning:
    code: str
    message: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "fix": self.fix}


def check_data(model: str, features: Sequence[Column], profile: Profile, balance: str
               ) -> list[TrainWarning]:
    """Warnings known before training starts."""
    out = _imbalance(model, profile) if balance == "none" else []
    return out + _correlated(model, profile) + _unscaled(model, features, profile)


def check_training(model: str, history: Sequence[dict[str, float]],
                   eval_metrics: dict[str, Any], train_metrics: dict[str, Any],
                   baseline_loss: float | None) -> list[TrainWarning]:
    """Warnings known once training has finished."""
    return _overfitting(model, eval_metrics, train_metrics) + _no_convergence(
        model, history, baseline_loss)


def _imbalance(model: str, profile: Profile) -> list[TrainWarning]:
    counts = {k: v for k, v in profile.train_classes.items() if v > 0}
    if len(counts) < 2:
        return []
    big = max(counts, key=lambda k: counts[k])
    small = min(counts, key=lambda k: counts[k])
    ratio = counts[big] / counts[small]
    if ratio < IMBALANCE_RATIO:
        return []
    return [TrainWarning(
        "class_imbalance",
        f"{model}: the classes are imbalanced: {big!r} has {counts[big]} training rows, "
        f"{small!r} has {counts[small]} ({ratio:.1f}x fewer)",
        f'set balance = "upsample" (or "downsample") in {model}')]


def _correlated(model: str, profile: Profile) -> list[TrainWarning]:
    stats, out = profile.numeric, []
    names = stats.names
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            r = float(stats.corr[i, j])
            if abs(r) > CORRELATION_MAX and stats.std[i] > 0 and stats.std[j] > 0:
                out.append(TrainWarning(
                    "correlated_features",
                    f"{model}: features {names[i]!r} and {names[j]!r} are almost "
                    f"collinear (r = {r:.3f})",
                    f"drop {names[i]!r} or {names[j]!r} from the features of {model}"))
    return out


def _unscaled(model: str, features: Sequence[Column], profile: Profile) -> list[TrainWarning]:
    stats, out = profile.numeric, []
    kinds = {f.name: f.type for f in features}
    for i, name in enumerate(stats.names):
        if kinds.get(name) not in (ColumnType.FLOAT, ColumnType.INT):
            continue
        mean, std = float(stats.mean[i]), float(stats.std[i])
        if max(abs(mean), std) > SCALE_MAX:
            out.append(TrainWarning(
                "unscaled_feature",
                f"{model}: feature {name!r} is used raw with a large spread "
                f"(mean {mean:.4g}, stddev {std:.4g})",
                f'feed {model} a transformed_column of {name!r} with transformer = '
                f'"normalize" (inputs: the column and its mean and stddev aggregates)'))
    return out


def _overfitting(model: str, eval_metrics: dict[str, Any], train_metrics: dict[str, Any]
                 ) -> list[TrainWarning]:
    key = "accuracy" if "accuracy" in eval_metrics else "r2"
    tr, ev = train_metrics.get(key), eval_metrics.get(key)
    if tr is None or ev is None or tr - ev <= OVERFIT_GAP:
        return []
    return [TrainWarning(
        "overfitting",
        f"{model}: {key} is {tr:.3f} on the training share but {ev:.3f} on the "
        "evaluation share",
        f"regularise {model}: fewer epochs or training.early_stopping, hparams.dropout, "
        "fewer hidden_units, or more rows")]


def _no_convergence(model: str, history: Sequence[dict[str, float]],
                    baseline_loss: float | None) -> list[TrainWarning]:
    losses = [h["loss"] for h in history if math.isfinite(h.get("loss", math.nan))]
    if not losses:
        return []
    if baseline_loss is not None and baseline_loss > 0:
        stuck = min(losses) >= NO_CONVERGENCE_RATIO * baseline_loss
        detail = (f"the best training loss {min(losses):.4g} is no better than a constant "
                  f"prediction's {baseline_loss:.4g}")
    else:
        stuck = len(losses) >= 3 and min(losses[1:]) >= (1 - MIN_LOSS_DROP) * losses[0]
        detail = f"the training loss stayed at {losses[0]:.4g} for {len(losses)} epochs"
    if not stuck:
        return []
    return [TrainWarning(
        "no_convergence", f"{model} did not learn: {detail}",
        f"check that the features of {model} relate to its target; raise "
        "training.learning_rate or training.epochs; normalize raw numeric features")]
