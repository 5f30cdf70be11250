"""The rollout gate of an api (`promote`, `tolerance`): may it move to a retrained model?

With `promote = "if_not_worse"` (the default), before a running api swaps the model it
serves for another, both are scored on the new model's evaluation split by
`python -m runtime.gate` (a child process: TensorFlow is never imported here). The swap
is refused when the new model's main metric (accuracy, or R²) is below the serving one's
by more than `tolerance`: the api block fails with both numbers, the old model keeps
serving, and the state keeps saying so. `promote = "always"` swaps without asking.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlp.builtins.catalogue import TRAINING_DEFAULTS
from mlp.config import blocks as B
from mlp.engine.context import RunContext
from mlp.errors import ApplyError
from mlp.graph.address import Address
from mlp.state.backend import artifact_key

if TYPE_CHECKING:
    from runtime.jobs import GateJob


@dataclass(frozen=True)
class Verdict:
    metric: str
    serving: float
    candidate: float
    rows: int
    tolerance: float

    @property
    def promote(self) -> bool:
        return self.candidate >= self.serving - self.tolerance

    def line(self) -> str:
        return (f"{self.metric} {self.candidate:.4f} against {self.serving:.4f} for the model serving "
                f"({self.candidate - self.serving:+.4f}, tolerance {self.tolerance:g}; {self.rows} evaluation rows)")


class PromotionRefused(ApplyError):
    """A retrained model scored worse than the serving one by more than the tolerance."""


def gate(ctx: RunContext, api: B.Api, serving_fp: str, new_bundle: Path) -> Verdict | None:
    """Score the serving model and the candidate; None when there is nothing to compare
    (promote = "always", or the serving model's artifact is gone)."""
    if api.promote == "always" or api.model is None:
        return None
    old = artifact_key(serving_fp)
    if not ctx.store.has(old):
        ctx.log(api.address, f"promote: the serving model {serving_fp[:12]} is gone from the store; "
                             "swapping without comparing")
        return None
    job = _job(ctx, api.model, ctx.store.local_path(old) / "bundle", new_bundle)
    score = ctx.provider.evaluate(job, ctx.job_log(api.address))
    return Verdict(score.metric, score.old, score.new, score.rows, api.tolerance)


def check(ctx: RunContext, api: B.Api, verdict: Verdict | None, serving_fp: str) -> None:
    """Log the verdict; raise PromotionRefused when the candidate is worse."""
    if verdict is None:
        return
    ctx.log(api.address, "promote: " + verdict.line())
    if not verdict.promote:
        raise PromotionRefused(
            f"{api.address}: the retrained {api.model} is worse than the model serving",
            f"{verdict.line()}. Model {serving_fp[:12]} keeps serving.",
            f'To swap anyway, set promote = "always" (or a larger tolerance) in api "{api.name}".')


def _job(ctx: RunContext, model_addr: Address, old_bundle: Path, new_bundle: Path) -> GateJob:
    from mlp.engine.training import dataset
    from runtime.jobs import GateJob, file_uri

    model = ctx.cfg(model_addr)
    assert isinstance(model, B.Model) and model.target is not None
    training = {**TRAINING_DEFAULTS, **dict(ctx.analysis.fingerprints[model_addr].settings.get("training", {}))}
    sources = sorted(ctx.analysis.checked.types.sources.get(model_addr, frozenset()))
    source = ctx.current(sources[0]) if sources else None
    if source is None or source.artifact is None:
        raise ApplyError(f"{model_addr}: its source has not been built", "", "Run `mlp apply` again.")
    return GateJob(file_uri(old_bundle), file_uri(new_bundle), dataset(ctx, list(model.features) + [model.target]),
                   file_uri(ctx.store.local_path(source.artifact) / "table"),
                   model.target.name, float(training["split"]), int(training["seed"]),
                   model.type == "classification")
