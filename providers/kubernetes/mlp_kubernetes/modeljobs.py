"""A model's predictions as a column, and an api's rollout gate, each run as a Kubernetes Job.

Both go as training does (`mlp_kubernetes.training`): the engine's job, with this machine's
paths, has its inputs put in the bucket (`k8s/runs/<role>/<block>/in/`) and rewritten to the
pod's paths; the Job runs the runtime's own command, the one the local provider runs; what it
made comes back from `out/`.

    predict   in/: bundle/, data/<i>/      python -m runtime.train --predict /work/run/bundle
                                             TABLES COLUMN /work/out
              out/: the table with the column added, into the job's `out_dir`
    gate      in/: job.json, old/, new/, source/, data/<i>/
                                           python -m runtime.gate /work/run/job.json
              out/: stdout.txt, whose last line is the `GateScore`
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from mlp.errors import ApplyError
from mlp.state.backends.objects import ObjectStore
from mlp_kubernetes.kubeapi import KubeApi
from mlp_kubernetes.podruns import follow, stage
from mlp_kubernetes.runjob import JOB_FILE, OUT_DIR, RUN_DIR, STDOUT_FILE, RunJob, predict_run
from mlp_kubernetes.runs import Clock
from mlp_kubernetes.specs import AppSpec, ModelColumn, Training
from mlp_kubernetes.training import copy_tables, pod_tables
from mlp_kubernetes.transfer import pull

if TYPE_CHECKING:
    from mlp.providers import JobLog
    from runtime.jobs import GateJob, GateScore, PredictJob

GATE_FIX = 'Fix what the log says, or set promote = "always" to swap without the gate.'


def predict_argv(job: PredictJob) -> tuple[str, ...]:
    """`runtime.train`'s arguments for the job, as the pod sees it."""
    from runtime.jobs import PredictJob

    return tuple(PredictJob(f"{RUN_DIR}/bundle", pod_tables(job.data), job.column, OUT_DIR).argv())


def predict_on_cluster(api: KubeApi, store: ObjectStore, spec: AppSpec, column: ModelColumn, training: Training,
                       job: PredictJob, log: JobLog, clock: Clock | None = None) -> None:
    """The column's predictions, the table they were added to left in the job's `out_dir`."""
    from runtime.jobs import local_path

    run = predict_run(column.column, column.name, training, predict_argv(job))
    with tempfile.TemporaryDirectory(prefix="mlp-k8s-") as tmp:
        folder = Path(tmp)
        shutil.copytree(local_path(job.model_bundle), folder / "bundle")
        copy_tables(job.data, folder)
        stage(store, run, folder)
    ended = follow(api, spec, run, log, clock)
    if not ended.succeeded:
        raise ApplyError(f"{column.column}: {ended.message or 'the prediction Job failed'}",
                         f"See the log: mlp logs {log.block}", ended.hint)
    pull(store, run.outputs, local_path(job.out_dir))


def pod_gate(job: GateJob) -> GateJob:
    """The job as the pod sees it: both bundles, the source table and the dataset under /work/run."""
    return replace(job, old_bundle=f"file://{RUN_DIR}/old", new_bundle=f"file://{RUN_DIR}/new",
                   dataset=pod_tables(job.dataset), source_table=f"file://{RUN_DIR}/source")


def gate_on_cluster(api: KubeApi, store: ObjectStore, spec: AppSpec, run: RunJob, job: GateJob,
                    log: JobLog, clock: Clock | None = None) -> GateScore:
    from runtime.jobs import local_path

    with tempfile.TemporaryDirectory(prefix="mlp-k8s-") as tmp:
        folder = Path(tmp)
        for name, where in (("old", job.old_bundle), ("new", job.new_bundle), ("source", job.source_table)):
            shutil.copytree(local_path(where), folder / name)
        copy_tables(job.dataset, folder)
        (folder / Path(JOB_FILE).name).write_text(json.dumps(pod_gate(job).to_json(), indent=1))
        stage(store, run, folder)
    ended = follow(api, spec, run, log, clock)
    if not ended.succeeded:
        said = f"{ended.message}. " if ended.message else ""
        raise ApplyError(f"{run.block}: the rollout gate could not score the models",
                         f"{said}See the log: mlp logs {log.block}", GATE_FIX)
    return read_score(store, run)


def read_score(store: ObjectStore, run: RunJob) -> GateScore:
    """The gate's answer, the last line of its stdout as the pod uploaded it."""
    from runtime.jobs import GateScore

    name = run.outputs + Path(STDOUT_FILE).name
    data = store.get(name)
    lines = data.decode("utf-8", "replace").strip().splitlines() if data is not None else []
    if not lines:
        raise ApplyError(f"{run.block}: the rollout gate left no answer", f"Nothing at {store.url(name)}.", GATE_FIX)
    try:
        return GateScore.from_json(json.loads(lines[-1]))
    except (KeyError, TypeError, ValueError) as e:
        raise ApplyError(f"{run.block}: the rollout gate answered {lines[-1][:200]!r}", str(e), GATE_FIX) from None
