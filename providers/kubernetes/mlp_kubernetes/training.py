"""A model's training on the cluster: the engine's `TrainJob` run as a Kubernetes Job.

The engine gives a job with this machine's paths. The run's inputs go to the bucket
(`k8s/runs/train/<model>/in/`: job.json, data/<i>/ for the job's i-th table, code/), the job
file rewritten to the pod's paths; the Job runs `python -m runtime.train /work/run/job.json`,
which joins the tables on `__row` in the pod, and uploads /work/out; what it made comes back
into the job's `out_dir` (TensorBoard's events into its own folder), and its result.json is
the answer.
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
from mlp_kubernetes.runjob import JOB_FILE, OUT_DIR, RUN_DIR, RunJob
from mlp_kubernetes.runs import Clock
from mlp_kubernetes.specs import AppSpec
from mlp_kubernetes.transfer import pull

if TYPE_CHECKING:
    from mlp.providers import JobLog
    from runtime.jobs import TableRef, TrainJob, TrainResult

TENSORBOARD = "tensorboard"
DATA = "data"  # the job's tables, data/<i> in the order the job names them


def pod_job(job: TrainJob) -> TrainJob:
    """The job as the pod sees it: its inputs under /work/run, its output in /work/out."""
    from runtime.jobs import local_path

    custom = f"file://{RUN_DIR}/code/{local_path(job.custom_path).name}" if job.custom_path else None
    return replace(job, data=pod_tables(job.data), out_dir=f"file://{OUT_DIR}", custom_path=custom,
                   tensorboard_dir=f"file://{OUT_DIR}/{TENSORBOARD}" if job.tensorboard_dir else None)


def stage_inputs(store: ObjectStore, run: RunJob, job: TrainJob) -> None:
    """Put the run's inputs in the bucket, and clear what an earlier run left."""
    from runtime.jobs import local_path

    with tempfile.TemporaryDirectory(prefix="mlp-k8s-") as tmp:
        folder = Path(tmp)
        copy_tables(job.data, folder)
        if job.custom_path:
            code = local_path(job.custom_path)
            (folder / "code").mkdir()
            shutil.copy2(code, folder / "code" / code.name)
        (folder / Path(JOB_FILE).name).write_text(json.dumps(pod_job(job).to_json(), indent=1))
        stage(store, run, folder)


def copy_tables(tables: tuple[TableRef, ...], folder: Path) -> None:
    """Each table into its own folder: data/0, data/1, ... (as `pod_tables` names them)."""
    from runtime.jobs import local_path

    for i, table in enumerate(tables):
        shutil.copytree(local_path(table.uri), folder / DATA / str(i))


def pod_tables(tables: tuple[TableRef, ...]) -> tuple[TableRef, ...]:
    from runtime.jobs import TableRef

    return tuple(TableRef(f"file://{RUN_DIR}/{DATA}/{i}", t.columns) for i, t in enumerate(tables))


def collect(store: ObjectStore, run: RunJob, job: TrainJob) -> TrainResult:
    """What the run made, into the job's own folders; its result."""
    from runtime.jobs import TrainResult, local_path

    out = local_path(job.out_dir)
    pull(store, run.outputs, out)
    if job.tensorboard_dir and (out / TENSORBOARD).is_dir():
        target = local_path(job.tensorboard_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out / TENSORBOARD), str(target))
    try:
        return TrainResult.from_json(json.loads((out / "result.json").read_text()))
    except (OSError, ValueError) as e:
        raise ApplyError(f"{job.model}: the training Job left no readable result", str(e)) from None


def train_on_cluster(api: KubeApi, store: ObjectStore, spec: AppSpec, run: RunJob, job: TrainJob,
                     log: JobLog, clock: Clock | None = None) -> TrainResult:
    stage_inputs(store, run, job)
    ended = follow(api, spec, run, log, clock)
    if not ended.succeeded:
        raise ApplyError(f"{job.model}: {ended.message or 'the training Job failed'}",
                         f"See the log: mlp logs {log.block}", ended.hint)
    return collect(store, run, job)
