"""Run units as their needs finish, up to `parallelism` at once; a failure skips what
depends on it and everything else goes on (the way dvc's reproduce does).

Failures are kept per block, one message per cause: a unit marks failed only the block
that failed (`fail_block`); its other blocks that did not finish are skipped because of
that block (`Outcome.skipped_blocks`), and a unit whose blocks need a failed or skipped
block does not run. A unit whose needed units failed still runs when none of its blocks
needs what failed. A StateError (the backend cannot be written) is not a block's failure:
no new unit starts, and it is raised once the running ones have finished.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

from mlp.engine.context import RunContext
from mlp.engine.events import BlockEvent, Status
from mlp.engine.units import Unit
from mlp.errors import MlpError, StateError, UserCodeError
from mlp.graph.address import Address
from mlp.plan.model import Action

SHOWN_LINES = 3  # of an unexpected error's text (a JVM error's text holds its whole stack)


@dataclass(frozen=True)
class Outcome:
    failed: dict[str, str]       # unit name -> the message of its first failed block
    skipped: dict[str, str]      # unit name -> the unit holding the failed block it needed (it did not run)
    skipped_blocks: dict[str, str] = field(default_factory=dict)  # address -> the failed block it needed


def run_units(ctx: RunContext, units: list[Unit], run: Callable[[RunContext, Unit], None]) -> Outcome:
    return _Scheduler(ctx, units, run).run()


class _Scheduler:
    def __init__(self, ctx: RunContext, units: list[Unit], run: Callable[[RunContext, Unit], None]) -> None:
        self.ctx, self.run_unit = ctx, run
        self.by_name = {u.name: u for u in units}
        self.pending = set(self.by_name)
        self.finished: set[str] = set()
        self.failed: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.skipped_blocks: dict[str, str] = {}
        self.stop: StateError | None = None

    def run(self) -> Outcome:
        width = max(1, self.ctx.parallelism)
        running: dict[Future[StateError | None], str] = {}
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="mlp-unit") as pool:
            while (self.pending and self.stop is None) or running:
                for name in sorted(self.pending):
                    if self.stop is not None or len(running) >= width:
                        break
                    if self._start(name):
                        self.pending.discard(name)
                        running[pool.submit(_guarded, self.ctx, self.by_name[name], self.run_unit)] = name
                if not running:
                    if self.pending and self.stop is None and not self._progress():
                        raise RuntimeError("units wait on each other: " + ", ".join(sorted(self.pending)))
                    continue
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    self._finish(self.by_name[running.pop(fut)], fut.result())
        if self.stop is not None:
            raise self.stop
        return Outcome(self.failed, self.skipped, self.skipped_blocks)

    def _start(self, name: str) -> bool:
        """Whether the unit can start now; a unit that needs a failed block is skipped instead."""
        unit = self.by_name[name]
        if not all(n in self.finished for n in unit.needs if n in self.by_name):
            return False
        cause = self._blocker(unit)
        if cause is None:
            return True
        self.pending.discard(name)
        self.skipped[name] = self._unit_of(cause)
        for a in unit.blocks:
            if _has_work(self.ctx, a):
                self._skip(a, cause)
        self.finished.add(name)
        return False

    def _progress(self) -> bool:
        """Mark what can be marked when nothing runs; False when nothing could be."""
        before = len(self.pending)
        for name in sorted(self.pending):
            if self._start(name):
                return True
        return len(self.pending) < before

    def _blocker(self, unit: Unit) -> str | None:
        """The failed block that one of the unit's blocks needs, if any."""
        for a in unit.blocks:
            for d in self.ctx.analysis.graph.deps.get(a, ()):
                cause = self._failure_of(str(d))
                if cause is not None and _has_work(self.ctx, a):
                    return cause
        return None

    def _failure_of(self, addr: str) -> str | None:
        if addr in self.ctx.failed:
            return addr
        return self.skipped_blocks.get(addr)

    def _finish(self, unit: Unit, stop: StateError | None) -> None:
        """Settle a unit that ran: its blocks that did not finish, nor fail, are skipped
        because of the failed block they need (or the unit's first failure)."""
        self.finished.add(unit.name)
        self.stop = self.stop or stop
        left = [a for a in unit.blocks if _has_work(self.ctx, a) and str(a) not in self.ctx.records]
        failed = [str(a) for a in left if str(a) in self.ctx.failed]
        unfinished = [a for a in left if str(a) not in self.ctx.failed]
        if stop is None and unfinished:
            if not failed:  # a unit that left blocks undone without saying why: a bug, told once
                fail_block(self.ctx, unfinished[0], RuntimeError(f"{unit.name} finished without building it"))
                failed, unfinished = [str(unfinished[0])], unfinished[1:]
            for a in unfinished:
                self._skip(a, self._cause(a, failed[0]))
        if failed:
            self.failed[unit.name] = self.ctx.failed[failed[0]]

    def _cause(self, a: Address, fallback: str) -> str:
        """The nearest failed block that `a` depends on, else `fallback`."""
        seen: set[Address] = set()
        queue = deque(self.ctx.analysis.graph.deps.get(a, ()))
        while queue:
            d = queue.popleft()
            cause = self._failure_of(str(d))
            if cause is not None:
                return cause
            if d not in seen:
                seen.add(d)
                queue.extend(self.ctx.analysis.graph.deps.get(d, ()))
        return fallback

    def _skip(self, a: Address, cause: str) -> None:
        if str(a) in self.ctx.failed or str(a) == cause:
            return
        self.skipped_blocks[str(a)] = cause
        with contextlib.suppress(MlpError, OSError):
            self.ctx.log(a, f"SKIPPED: {cause} failed", echo=False)
        self.ctx.hooks.block(BlockEvent(str(a), Status.SKIPPED, info=f"because {cause} failed", cause=cause))

    def _unit_of(self, addr: str) -> str:
        return next((u.name for u in self.by_name.values() if any(str(a) == addr for a in u.blocks)), f"block:{addr}")


def _has_work(ctx: RunContext, addr: Address) -> bool:
    return ctx.action(addr) not in (Action.NOOP, Action.DESTROY)


def _guarded(ctx: RunContext, unit: Unit, run: Callable[[RunContext, Unit], None]) -> StateError | None:
    """Run one unit. What it raises is reported on one block (the first that did not
    finish); a StateError is returned for the scheduler to stop on."""
    start = time.monotonic()
    try:
        run(ctx, unit)
    except StateError as e:
        return e
    except Exception as e:  # noqa: BLE001 - a job's failure must not stop the other jobs
        blame = next((a for a in unit.blocks if _has_work(ctx, a) and str(a) not in ctx.records
                      and str(a) not in ctx.failed), None)
        if blame is not None:
            fail_block(ctx, blame, e, time.monotonic() - start)
    return None


def fail_block(ctx: RunContext, addr: Address, error: BaseException, seconds: float = 0.0) -> None:
    """Report `error` as the failure of one block: its message (a user's error as it is,
    anything else as its first lines) to the hooks and the state of the apply, and the
    full story (the user's traceback, or the whole traceback) to the block's log."""
    if isinstance(error, UserCodeError):
        error = error.relative_to(ctx.analysis.app.dir)
    if isinstance(error, MlpError):
        message = error.render()
        trace = error.trace if isinstance(error, UserCodeError) else ""
    else:
        message = _short_error(error, addr)
        trace = "".join(traceback.format_exception(error))
    with contextlib.suppress(MlpError, OSError):  # the message still reaches the terminal
        ctx.log(addr, "FAILED: " + message, echo=False)
        if trace:
            ctx.log(addr, trace, echo=False)
    ctx.fail(addr, message, seconds)


def _short_error(e: BaseException, addr: Address) -> str:
    """The first lines of an unexpected error; the full traceback goes to the block's log."""
    lines = [ln for ln in str(e).splitlines() if ln.strip() and not ln.lstrip().startswith("at ")][:SHOWN_LINES]
    text = "\n".join(ln[:300] for ln in lines)
    return f"{type(e).__name__}: {text}\nThe full error is in the log: mlp logs {addr}"
