"""One source's data unit of a saved plan, run wherever the job is (a child process, a
driver pod):

    python -m runtime.data JOB.json

JOB is a `runtime.jobs.DataJob`. The job loads the app and the saved plan, checks that the
app's fingerprints are still the plan's, opens the backend's artifact store, and runs the
same code as an in-process apply (`mlp.engine.data.run_data_unit`). It reads the state but
never writes it: every finished block, failure and log line is a JSON line on stdout,

    {"event": "block", "block": ADDRESS, "status": "running"}
    {"event": "record", "record": {...}, "status": "done"|"cached", "seconds", "info", "details"}
    {"event": "failed", "block": ADDRESS, "message": TEXT, "seconds": S}
    {"event": "log", "block": ADDRESS, "line": TEXT, "echo": BOOL}
    {"event": "done"} | {"event": "error", "message", "detail", "hint"}

which the apply that holds the state lock replays (`mlp.engine.datarun.DataRun.replay`).
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlp.engine.context import RunContext
from mlp.engine.events import BlockEvent, Status
from mlp.errors import MlpError
from mlp.graph.address import Address
from mlp.state.model import BlockRecord
from runtime.jobs import DataJob, local_path

Emit = Callable[[dict[str, Any]], None]


class _EmitHooks:
    def __init__(self, emit: Emit) -> None:
        self.emit = emit

    def block(self, event: BlockEvent) -> None:
        if event.status is Status.RUNNING:
            self.emit({"event": "block", "block": event.address, "status": event.status.value})

    def log(self, address: str, line: str) -> None:
        """Lines reach the apply through `_JobContext.log`, which says whether to echo them."""


class _Driver:
    """The job's only provider duty: the Spark session, on the job's master."""

    kind = "driver"

    def __init__(self, master: str) -> None:
        self.master = master

    def source_path(self, uri: str, app: Any) -> str:
        """A driver reads object storage where it is (through Spark's connectors)."""
        return uri

    def data_session(self, log: str) -> Any:
        from runtime.sparkenv import get_spark

        return get_spark(self.master, Path(log))


@dataclass
class _JobContext(RunContext):
    """A RunContext whose records, failures and log lines become events."""

    emit: Emit = field(default=lambda ev: None)

    def adopt(self, rec: BlockRecord, status: Status = Status.DONE, seconds: float = 0.0, info: str = "",
              details: tuple[str, ...] = ()) -> BlockRecord:
        self.note(rec, status)
        self.emit({"event": "record", "record": rec.to_json(), "status": status.value, "seconds": seconds,
                   "info": info, "details": list(details)})
        return rec

    def fail(self, addr: Address, message: str, seconds: float = 0.0) -> None:
        with self._lock:
            self.failed[str(addr)] = message
        self.emit({"event": "failed", "block": str(addr), "message": message, "seconds": seconds})

    def log(self, addr: Address | str, line: str, echo: bool = True) -> None:
        self.emit({"event": "log", "block": str(addr), "line": line, "echo": echo})


def run(job: DataJob, emit: Emit) -> None:
    from mlp.engine.data import run_data_unit
    from mlp.engine.units import build_units
    from mlp.errors import DiagnosticsError, PlanFileError
    from mlp.graph.analysis import analyse
    from mlp.plan.planfile import read_plan
    from mlp.state.backends import open_backend

    app_dir = local_path(job.app_dir)
    plan = read_plan(local_path(job.plan))
    analysis, diags = analyse(app_dir, dict(plan.variables), plan.sample)
    if analysis is None:
        raise DiagnosticsError(diags)
    unit = next((u for u in build_units(analysis, {c.address for c in plan.changes}) if u.name == job.unit), None)
    if unit is None:
        raise PlanFileError(f"The plan has no unit {job.unit}", "", "Make a new plan with: mlp plan --out FILE")
    moved = [str(a) for a in unit.blocks if (c := plan.change(a)) is not None and c.fingerprint_after
             and c.fingerprint_after != analysis.fingerprints[a].value]
    if moved:
        raise PlanFileError("The app changed since the plan was made",
                            "The fingerprints of " + ", ".join(moved) + " are not the plan's.",
                            "Make a new plan with: mlp plan --out FILE")
    backend = open_backend(app_dir, job.backend.kind, job.backend.settings)
    ctx = _JobContext(analysis, plan, backend, backend.read_state(), _EmitHooks(emit), emit=emit)
    ctx._provider = _Driver(job.spark_master)  # type: ignore[assignment]
    run_data_unit(ctx, unit)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    lock = threading.Lock()

    def emit(event: dict[str, Any]) -> None:
        with lock:  # units run their blocks in threads
            sys.stdout.write(json.dumps(event, default=str) + "\n")
            sys.stdout.flush()

    if len(args) != 1:
        print("usage: python -m runtime.data JOB_JSON", file=sys.stderr)
        return 2
    try:
        run(DataJob.from_json(json.loads(Path(args[0]).read_text())), emit)
        emit({"event": "done"})
        return 0
    except MlpError as e:
        emit({"event": "error", "message": e.summary, "detail": e.detail, "hint": e.hint})
    except (OSError, ValueError, KeyError) as e:
        emit({"event": "error", "message": f"cannot read the job {args[0]}: {type(e).__name__}: {e}"})
    except Exception as e:  # noqa: BLE001 - reported as an event; the traceback goes to stderr
        traceback.print_exc()
        emit({"event": "error", "message": f"{type(e).__name__}: {e}",
              "hint": "an unexpected failure; the traceback is on the job's stderr"})
    return 1


if __name__ == "__main__":
    sys.exit(main())
