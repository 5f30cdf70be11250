"""A source's data unit on the cluster: its driver Job, its events replayed into the apply.

The app folder (without .mlp/) goes to `k8s/app/` and the saved plan to `k8s/plan.json`;
the driver pod stages both and runs `python -m runtime.data /jobs/job.json`, which prints
each finished block, failure and log line as a JSON event. Each one is replayed into this
apply (`DataRun.replay`), which holds the state lock and records them, as if the unit had
run here; any other line goes to the source's log.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from mlp.errors import ApplyError
from mlp.state.backends.objects import ObjectStore
from mlp_kubernetes.datajob import data_manifests
from mlp_kubernetes.kubeapi import KubeApi
from mlp_kubernetes.manifest import Kind
from mlp_kubernetes.runs import Clock, run_job
from mlp_kubernetes.specs import AppSpec, DataUnit
from mlp_kubernetes.storage import APP, PLAN
from mlp_kubernetes.transfer import push

if TYPE_CHECKING:
    from mlp.engine.datarun import DataRun

SKIP = (".mlp",)  # the app's local state, caches and logs stay here


def stage_app(store: ObjectStore, run: DataRun) -> None:
    from mlp.plan.planfile import write_plan

    push(store, run.ctx.analysis.app.dir, APP, skip=SKIP)
    with tempfile.TemporaryDirectory(prefix="mlp-k8s-") as tmp:
        plan = Path(tmp) / "plan.json"
        write_plan(run.ctx.plan, plan)
        store.upload_file(PLAN, plan)


def run_unit(api: KubeApi, store: ObjectStore, spec: AppSpec, run: DataRun, clock: Clock | None = None) -> None:
    from mlp.providers.localjobs import event

    source = run.unit.name.removeprefix("data:")
    unit = unit_of(spec, source)
    if unit is None:
        raise ApplyError(f"{run.unit.name}: the app has no {source}")
    stage_app(store, run)
    ended: list[str] = []

    def line(text: str) -> None:
        ev = event(text)
        if ev is None:
            run.ctx.log(source, text, False)
            return
        if ev.get("event") in ("done", "error"):
            ended.append(str(ev["event"]))
        run.replay(ev)  # an error event raises ApplyError with the job's own message

    manifests = data_manifests(spec, unit)
    job = next(m for m in manifests if m.kind is Kind.JOB)
    status = run_job(api, spec, job, [m for m in manifests if m is not job], "driver", line, clock)
    if not ended or not status.succeeded:
        raise ApplyError(f"{run.unit.name}: the driver Job {job.name} ended without finishing the unit",
                         f"Its pod's log is in `mlp logs {source}`.",
                         f"kubectl -n {spec.namespace} describe job {job.name}")


def unit_of(spec: AppSpec, source: str) -> DataUnit | None:
    return next((u for u in spec.data if u.source == source), None)
