"""A source's data unit, handed to the provider: run here, or as a `runtime.jobs.DataJob`
elsewhere with its events replayed into this apply.

The local provider runs it in this process (`in_process`), on the Spark session it keeps,
since a JVM per unit would cost more than most units. A provider that runs it elsewhere
(a driver pod) gives the job to `python -m runtime.data JOB.json` there and feeds each
JSON event that process prints to `replay`: the process that holds the state lock records
every block, as if the unit had run here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlp.engine.context import RunContext
from mlp.engine.events import BlockEvent, Status
from mlp.engine.units import Unit
from mlp.errors import ApplyError
from mlp.graph.address import Address
from mlp.plan.model import Action
from mlp.state.model import BlockRecord


class DataRun:
    def __init__(self, ctx: RunContext, unit: Unit) -> None:
        self.ctx, self.unit = ctx, unit

    def in_process(self) -> None:
        from mlp.engine.data import run_data_unit

        run_data_unit(self.ctx, self.unit)

    def job(self, plan_file: Path, spark_master: str = "local[*]") -> Any:
        """The unit as a DataJob, reading the saved plan at `plan_file` (which the caller
        writes with `mlp.plan.planfile.write_plan`)."""
        from runtime.jobs import BackendRef, DataJob, file_uri

        backend = self.ctx.analysis.app.backend
        settings = dict(backend.settings)
        if backend.kind == "local":  # the job may run in another folder: give the store's place
            settings["path"] = str((self.ctx.analysis.app.dir / str(settings.get("path") or ".mlp")).resolve())
        return DataJob(file_uri(self.ctx.analysis.app.dir), file_uri(plan_file), BackendRef(backend.kind, settings),
                       self.unit.name, spark_master)

    def replay(self, event: dict[str, Any]) -> None:
        """One event of the job's stream; an `error` event raises ApplyError."""
        ctx, kind = self.ctx, event.get("event")
        if kind == "block":
            ctx.hooks.block(BlockEvent(str(event["block"]), Status(event["status"])))
        elif kind == "record":
            rec = BlockRecord.from_json(event["record"])
            status = Status(event.get("status", "done"))
            ctx.adopt(rec, status, float(event.get("seconds") or 0.0), str(event.get("info") or ""),
                      tuple(str(d) for d in event.get("details") or ()))
            if status is Status.CACHED and ctx.action(Address.parse(rec.address)) is not Action.REUSE:
                with ctx._lock:  # carried over by early cut-off
                    ctx.cut.add(rec.address)
                    ctx.carried.add(rec.address)
        elif kind == "failed":
            ctx.fail(Address.parse(str(event["block"])), str(event.get("message") or ""),
                     float(event.get("seconds") or 0.0))
        elif kind == "log":
            ctx.log(str(event["block"]), str(event.get("line", "")), bool(event.get("echo", False)))
        elif kind == "error":
            raise ApplyError(f"{self.unit.name}: {event.get('message') or 'the data job failed'}",
                             str(event.get("detail") or ""), str(event.get("hint") or ""))
