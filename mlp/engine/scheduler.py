"""Run units as their needs finish, up to `parallelism` at once; a failed unit skips
what depends on it and everything else goes on (the way dvc's reproduce does)."""

from __future__ import annotations

import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable

from mlp.engine.context import RunContext
from mlp.engine.events import BlockEvent, Status
from mlp.engine.units import Unit
from mlp.errors import MlpError


@dataclass(frozen=True)
class Outcome:
    failed: dict[str, str]       # unit name -> message
    skipped: dict[str, str]      # unit name -> the failed unit it waited for


def run_units(ctx: RunContext, units: list[Unit], run: Callable[[RunContext, Unit], None]) -> Outcome:
    by_name = {u.name: u for u in units}
    pending = {u.name for u in units}
    done: set[str] = set()
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    running: dict[Future[str], str] = {}
    with ThreadPoolExecutor(max_workers=max(1, ctx.parallelism), thread_name_prefix="mlp-unit") as pool:
        while pending or running:
            for name in sorted(pending):
                unit = by_name[name]
                needs = [n for n in unit.needs if n in by_name]
                bad = next((n for n in needs if n in failed or n in skipped), None)
                if bad is not None:
                    pending.discard(name)
                    skipped[name] = bad
                    for a in unit.blocks:
                        ctx.hooks.block(BlockEvent(str(a), Status.SKIPPED, info=f"skipped: {bad} failed"))
                    continue
                if all(n in done for n in needs) and len(running) < max(1, ctx.parallelism):
                    pending.discard(name)
                    running[pool.submit(_guarded, ctx, unit, run)] = name
            if not running:
                if pending:  # only units waiting on skipped ones remain; loop marks them
                    continue
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                name = running.pop(fut)
                err = fut.result()
                if err:
                    failed[name] = err
                else:
                    done.add(name)
    return Outcome(failed, skipped)


def _short_error(e: Exception, unit: Unit) -> str:
    """The first lines of an unexpected error (a JVM error's text holds its whole stack);
    the full traceback goes to the blocks' logs."""
    lines = [ln for ln in str(e).splitlines() if ln.strip() and not ln.lstrip().startswith("at ")][:3]
    text = "\n".join(ln[:300] for ln in lines)
    return f"{type(e).__name__}: {text}\nThe full error is in the log: mlp logs {unit.blocks[0]}"


def _guarded(ctx: RunContext, unit: Unit, run: Callable[[RunContext, Unit], None]) -> str:
    """Run one unit; return '' or the error message. Blocks not recorded are marked failed."""
    start = time.monotonic()
    try:
        run(ctx, unit)
        return ""
    except MlpError as e:
        msg = e.summary + (f"\n{e.detail}" if e.detail else "") + (f"\nFix: {e.hint}" if e.hint else "")
    except Exception as e:  # noqa: BLE001 - a job's failure must not stop the other jobs
        msg = _short_error(e, unit)
        for a in unit.blocks:
            ctx.log(a, traceback.format_exc(), echo=False)
    elapsed = time.monotonic() - start
    for a in unit.blocks:
        if str(a) not in ctx.records:
            ctx.log(a, "FAILED: " + msg, echo=False)
            ctx.fail(a, msg, elapsed)
    return msg
