"""Apply a plan: run its units, record each finished block at once, compact at the end.

An apply that fails or is killed keeps every block it recorded (each is a journal entry
in the backend); the next plan sees them as done and picks up where this one stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mlp.engine.context import RunContext
from mlp.engine.events import BlockEvent, Hooks, Status
from mlp.engine.scheduler import Outcome, run_units
from mlp.engine.units import Unit, build_units
from mlp.graph.address import Address, Kind
from mlp.graph.analysis import Analysis
from mlp.plan.model import Action, Plan
from mlp.state.backend import Backend


@dataclass(frozen=True)
class ModelReport:
    """How a model trained in this apply did, against the one it replaces."""

    address: str
    metrics: dict[str, float]           # evaluation metrics (numbers only)
    best_epoch: int | None
    epochs: int | None
    previous: dict[str, float] | None   # the replaced model's evaluation metrics

    @property
    def main(self) -> str | None:
        return next((m for m in ("accuracy", "r2") if m in self.metrics), None)


@dataclass(frozen=True)
class EndpointReport:
    address: str
    url: str
    model: str
    fingerprint: str


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    built: tuple[str, ...]        # run in this apply (carried-over blocks are not)
    reused: tuple[str, ...]
    destroyed: tuple[str, ...]
    failed: dict[str, str]       # address -> message
    skipped: dict[str, str]      # address -> the failed block it needed
    seconds: float
    spark_started: bool
    carried: tuple[str, ...] = ()       # rebuilt by the plan, carried over by early cut-off
    models: tuple[ModelReport, ...] = ()
    endpoints: tuple[EndpointReport, ...] = ()
    copied: tuple[str, ...] = ()        # outputs brought over from the old backend (a move)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


def run_unit(ctx: RunContext, unit: Unit) -> None:
    if unit.kind == "data":
        from mlp.engine.datarun import DataRun

        ctx.provider.run_data(DataRun(ctx, unit))
    elif unit.kind in ("model", "model_column"):
        from mlp.engine.training import run_model_unit

        run_model_unit(ctx, unit)
    elif unit.kind == "api":
        from mlp.engine.serving import run_api_unit

        run_api_unit(ctx, unit)


def apply_plan(analysis: Analysis, plan: Plan, backend: Backend, hooks: Hooks, parallelism: int) -> ApplyResult:
    start = time.monotonic()
    backend.artifacts().sweep()  # what a killed apply was building; we hold the lock
    state = backend.read_state()
    ctx = RunContext(analysis, plan, backend, state, hooks, parallelism)
    in_plan = {c.address for c in plan.changes}
    for c in plan.changes:
        if c.action is not Action.NOOP:
            hooks.block(BlockEvent(str(c.address), Status.PENDING))
    units = [u for u in build_units(analysis, in_plan) if _has_work(ctx, u)]
    if units:
        ctx.provider.provision()  # the cluster and bucket the units run on, before any of them
    outcome = run_units(ctx, units, run_unit) if units else Outcome({}, {})
    destroyed = _destroy_removed(ctx, plan)
    if _spark_started():
        backend.logs().flush("spark")  # the session's own log, kept with the blocks' logs
    if state.provider != analysis.app.provider.kind and not outcome.failed:
        final = backend.read_state().with_provider(analysis.app.provider.kind)
        backend.write_state(final)
    elif ctx.records or destroyed:
        backend.write_state(backend.read_state())  # compaction: one whole write per apply
    return _result(ctx, plan, units, outcome, destroyed, time.monotonic() - start)


def _has_work(ctx: RunContext, unit: Unit) -> bool:
    return any(ctx.action(a) is not Action.NOOP for a in unit.blocks)


def _destroy_removed(ctx: RunContext, plan: Plan) -> tuple[str, ...]:
    from mlp.engine.serving import stop_api

    out = []
    for c in plan.changes:
        if c.action is not Action.DESTROY:
            continue
        if c.address.kind is Kind.API:
            stop_api(ctx.backend, str(c.address), ctx.provider)
        ctx.backend.remove_block(str(c.address))
        ctx.hooks.block(BlockEvent(str(c.address), Status.DONE, info="destroyed"))
        out.append(str(c.address))
    return tuple(out)


def _result(ctx: RunContext, plan: Plan, units: list[Unit], outcome: Outcome, destroyed: tuple[str, ...],
            seconds: float) -> ApplyResult:
    failed: dict[str, str] = dict(ctx.failed)
    skipped: dict[str, str] = dict(outcome.skipped_blocks)
    ran = sorted(a for a in ctx.records if ctx.action(Address.parse(a)) in (Action.CREATE, Action.REBUILD, Action.UPDATE))
    built = tuple(a for a in ran if a not in ctx.carried)
    reused = tuple(sorted(a for a in ctx.records if ctx.action(Address.parse(a)) is Action.REUSE))
    return ApplyResult(plan, built, reused, destroyed, failed, skipped, seconds, _spark_started(),
                       tuple(a for a in ran if a in ctx.carried), _models(ctx, built), _endpoints(ctx))


def _numbers(metrics: object) -> dict[str, float]:
    if not isinstance(metrics, dict):
        return {}
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _models(ctx: RunContext, built: tuple[str, ...]) -> tuple[ModelReport, ...]:
    out = []
    for a in built:
        rec = ctx.records[a]
        if rec.kind != "model" or ctx.action(Address.parse(a)) is Action.UPDATE:
            continue
        old = ctx.state.blocks.get(a)
        best, epochs = rec.metrics.get("best_epoch"), rec.metrics.get("epochs")
        out.append(ModelReport(a, _numbers(rec.metrics.get("eval")), best if isinstance(best, int) else None,
                               epochs if isinstance(epochs, int) else None,
                               _numbers(old.metrics.get("eval")) if old is not None and old.status == "done" else None))
    return tuple(out)


def _endpoints(ctx: RunContext) -> tuple[EndpointReport, ...]:
    outputs = ctx.backend.read_state().outputs
    out = []
    for addr in sorted(a for a in ctx.analysis.app.blocks if a.kind is Kind.API):
        value = outputs.get(str(addr))
        if isinstance(value, dict) and isinstance(value.get("url"), str):
            out.append(EndpointReport(str(addr), value["url"], str(value.get("model", "")),
                                      str(value.get("model_fingerprint", ""))))
    return tuple(out)


def _spark_started() -> bool:
    import sys

    mod = sys.modules.get("runtime.sparkenv")
    return bool(mod and getattr(mod, "_session", None) is not None)
