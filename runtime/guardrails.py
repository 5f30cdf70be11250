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
    large_target         a regression target with stddev > 1e9: Adam squares   TARGET_STD_MAX
                         gradients of the order of stddev², which overflows
                         32-bit floats (from about 5e9 the loss becomes NaN)

A feature named in `scaled` (the output of a `normalize` or `min_max_scale` transformer, which
the trainer spec lists) is never told to be normalized. `diverged` words the error of a loss
that became NaN or infinite: it blames the target when the target is what overflows.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
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
TARGET_STD_MAX = 1e9


@dataclass(frozen=True)
class TrainWarning:
    code: str
    message: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "fix": self.fix}


def check_data(model: str, features: Sequence[Column], profile: Profile, balance: str,
               scaled: Collection[str] = (), target: str = "") -> list[TrainWarning]:
    """Warnings known before training starts. `scaled`: the features that are outputs of
    normalize or min_max_scale; `target`: the target's name, for the messages."""
    out = _imbalance(model, profile) if balance == "none" else []
    return (out + _correlated(model, profile) + _unscaled(model, features, profile, scaled)
            + _large_target(model, profile, target))


def diverged(model: str, epoch: int, loss: float, learning_rate: float, features: Sequence[Column],
             profile: Profile, scaled: Collection[str] = (), target: str = "") -> tuple[str, str]:
    """The message and the fix of a training loss that became NaN or infinite in `epoch`."""
    what = "NaN" if math.isnan(loss) else "infinite"
    message = f"{model}: the training loss became {what} in epoch {epoch}"
    if _target_too_large(profile):
        return (f"{message}: the values of its target{_named(target)} are too large "
                f"(stddev {profile.target_std:.4g}) for 32-bit training", _scale_target_fix(model, target))
    raw = _unscaled_names(features, profile, scaled)
    fix = f"lower training.learning_rate (now {learning_rate:g}) in {model}"
    if raw:
        fix += f', or normalize its raw numeric features ({", ".join(raw)}) with transformer = "normalize"'
    return message, fix


def _named(target: str) -> str:
    return f" {target!r}" if target else ""


def _target_too_large(profile: Profile) -> bool:
    return profile.labels is None and profile.target_std > TARGET_STD_MAX


def _scale_target_fix(model: str, target: str) -> str:
    of = repr(target) if target else "the target"
    return (f"train {model} on a scaled target: a transformed_column of {of} with transformer = "
            '"min_max_scale" (or "log" for positive values) as its target; a smaller '
            "training.learning_rate does not help here")


def _large_target(model: str, profile: Profile, target: str) -> list[TrainWarning]:
    if not _target_too_large(profile):
        return []
    return [TrainWarning(
        "large_target",
        f"{model}: the regression target{_named(target)} has a very large spread (mean "
        f"{profile.target_mean:.4g}, stddev {profile.target_std:.4g}); training in 32-bit floats "
        "overflows", _scale_target_fix(model, target))]


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


def _unscaled(model: str, features: Sequence[Column], profile: Profile,
              scaled: Collection[str] = ()) -> list[TrainWarning]:
    stats = profile.numeric
    index = {name: i for i, name in enumerate(stats.names)}
    out = []
    for name in _unscaled_names(features, profile, scaled):
        mean, std = float(stats.mean[index[name]]), float(stats.std[index[name]])
        out.append(TrainWarning(
            "unscaled_feature",
            f"{model}: feature {name!r} is used raw with a large spread "
            f"(mean {mean:.4g}, stddev {std:.4g})",
            f'feed {model} a transformed_column of {name!r} with transformer = '
            f'"normalize" (inputs: the column and its mean and stddev aggregates)'))
    return out


def _unscaled_names(features: Sequence[Column], profile: Profile, scaled: Collection[str]) -> list[str]:
    """Numeric features used raw with a large spread, in the profile's order; never one that a
    normalize or min_max_scale transformer made (its spread is the data's, not the scale's)."""
    stats = profile.numeric
    kinds = {f.name: f.type for f in features}
    return [name for i, name in enumerate(stats.names)
            if kinds.get(name) in (ColumnType.FLOAT, ColumnType.INT) and name not in scaled
            and max(abs(float(stats.mean[i])), float(stats.std[i])) > SCALE_MAX]


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
