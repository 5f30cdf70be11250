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
class ApplyResult:
    plan: Plan
    built: tuple[str, ...]
    reused: tuple[str, ...]
    destroyed: tuple[str, ...]
    failed: dict[str, str]       # address -> message
    skipped: dict[str, str]      # address -> the failed unit it needed
    seconds: float
    spark_started: bool

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


def run_unit(ctx: RunContext, unit: Unit) -> None:
    if unit.kind == "data":
        from mlp.engine.data import run_data_unit

        run_data_unit(ctx, unit)
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
    outcome = run_units(ctx, units, run_unit) if units else Outcome({}, {})
    destroyed = _destroy_removed(ctx, plan)
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
            stop_api(ctx.backend, str(c.address))
        ctx.backend.remove_block(str(c.address))
        ctx.hooks.block(BlockEvent(str(c.address), Status.DONE, info="destroyed"))
        out.append(str(c.address))
    return tuple(out)


def _result(ctx: RunContext, plan: Plan, units: list[Unit], outcome: Outcome, destroyed: tuple[str, ...],
            seconds: float) -> ApplyResult:
    failed: dict[str, str] = dict(ctx.failed)
    skipped: dict[str, str] = {}
    by_name = {u.name: u for u in units}
    for name, bad in outcome.skipped.items():
        for a in by_name[name].blocks:
            skipped[str(a)] = bad.split(":", 1)[1]
    built = tuple(sorted(a for a, r in ctx.records.items()
                         if ctx.action(Address.parse(a)) in (Action.CREATE, Action.REBUILD, Action.UPDATE)))
    reused = tuple(sorted(a for a in ctx.records if ctx.action(Address.parse(a)) is Action.REUSE))
    return ApplyResult(plan, built, reused, destroyed, failed, skipped, seconds, _spark_started())


def _spark_started() -> bool:
    import sys

    mod = sys.modules.get("runtime.sparkenv")
    return bool(mod and getattr(mod, "_session", None) is not None)
