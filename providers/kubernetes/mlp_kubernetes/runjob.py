"""A runtime job as a Kubernetes Job: training, a model's predictions, the rollout gate.

    stage (init)   python -m mlp_kubernetes.stage pull k8s/runs/ROLE/BLOCK/in/ /work/run
    main           python -m mlp_kubernetes.stage run --push /work/out k8s/runs/ROLE/BLOCK/out/ \\
                       -- python -m runtime.train /work/run/job.json

The main container's command after `--` is the runtime's, exactly as the local provider runs
it; `stage run` runs it as a child and, once it succeeded, uploads what it wrote to /work/out.
The job file (`runtime.jobs.TrainJob`, written by the provider when the block runs) names
the pod's own paths: data under /work/run, output in /work/out.

A model with `compute.gpu` gets the GPUs as requests and limits, the GPU pool's node
selector and a toleration of its taint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlp_kubernetes import pods
from mlp_kubernetes.manifest import Kind, Manifest
from mlp_kubernetes.names import Owner, label_value
from mlp_kubernetes.rbac import workload_account
from mlp_kubernetes.specs import AppSpec, Resources, Training
from mlp_kubernetes.storage import run_in, run_out

RUN_DIR = pods.WORK + "/run"
OUT_DIR = pods.WORK + "/out"
JOB_FILE = RUN_DIR + "/job.json"
TRAIN_ARGV = ("python", "-m", "runtime.train", JOB_FILE)


@dataclass(frozen=True)
class RunJob:
    """One run of a runtime job for a block. `argv` is the runtime's command; with `push`, what
    it leaves in /work/out goes to the run's `out/` folder in the bucket."""

    block: str          # the block it runs for: "model.dnn"
    role: str           # train | predict | gate
    name: str           # the block's name, for the Job's name
    argv: tuple[str, ...]
    resources: Resources
    push: bool = True

    @property
    def folder(self) -> str:
        return label_value(self.block)

    @property
    def inputs(self) -> str:
        return run_in(self.role, self.folder)

    @property
    def outputs(self) -> str:
        return run_out(self.role, self.folder)


def training_run(training: Training) -> RunJob:
    return RunJob(training.model, "train", training.name, TRAIN_ARGV, training.resources)


def job_name(spec: AppSpec, run: RunJob) -> str:
    return spec.object_name(run.role, run.name)


def run_manifest(spec: AppSpec, run: RunJob) -> Manifest:
    owner = Owner(spec.name, run.block, run.role)
    return Manifest.build(Kind.JOB, spec.namespace, job_name(spec, run), owner, _body(spec, run, owner))


def command(run: RunJob) -> list[str]:
    if not run.push:
        return list(run.argv)
    return [*pods.STAGE, "run", "--push", OUT_DIR, run.outputs, "--", *run.argv]


def _body(spec: AppSpec, run: RunJob, owner: Owner) -> dict[str, Any]:
    main = {"name": run.role, "image": spec.image, "command": command(run), "env": pods.env(spec),
            "envFrom": pods.env_from(spec), "resources": run.resources.to_doc(),
            "securityContext": pods.container_security(), "volumeMounts": pods.work_mounts()}
    stage = pods.stage_container(spec, (pods.Pull(run.inputs, RUN_DIR),))
    pod = pods.pod_spec(spec, workload_account(spec), [main], [stage], "Never",
                        **pods.gpu_placement(spec, run.resources))
    return {"spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": spec.settings.job_ttl_seconds,
                     "template": {"metadata": {"labels": owner.labels()}, "spec": pod}}}
