"""A runtime job as a Kubernetes Job: training, a model's predictions, the rollout gate.

    stage (init)   python -m mlp_kubernetes.stage pull k8s/runs/ROLE/BLOCK/in/ /work/run
    main           python -m mlp_kubernetes.stage run --push /work/out k8s/runs/ROLE/BLOCK/out/ \\
                       -- python -m runtime.train /work/run/job.json

The main container's command after `--` is the runtime's, exactly as the local provider runs
it; `stage run` runs it as a child and, once it succeeded, uploads what it wrote to /work/out.
The job file (`runtime.jobs.TrainJob`, written by the provider when the block runs) names
the pod's own paths: data under /work/run, output in /work/out. The three runs:

    train     python -m runtime.train /work/run/job.json                 (a TrainJob)
    predict   python -m runtime.train --predict /work/run/bundle TABLES COLUMN /work/out
    gate      python -m runtime.gate /work/run/job.json                  (a GateJob)

The gate answers on stdout, so its `stage run` also copies the command's stdout into
/work/out (`--stdout`), and the answer comes back through the bucket with the rest.

A gate's labels name the model it scores, not its api: the api's Service and Deployment
select the api's pods by the api's labels, and a gate pod must never be one of them.

A model with `compute.gpu` gets the GPUs as requests and limits, the GPU pool's node
selector and a toleration of its taint.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
GATE_ARGV = ("python", "-m", "runtime.gate", JOB_FILE)
STDOUT_FILE = OUT_DIR + "/stdout.txt"  # a gate's stdout, its answer on the last line


@dataclass(frozen=True)
class RunJob:
    """One run of a runtime job for a block. `argv` is the runtime's command; with `push`, what
    it leaves in /work/out goes to the run's `out/` folder in the bucket, and with `stdout`
    the command's stdout goes into that file of /work/out too."""

    block: str          # the block it runs for: "model.dnn"; its folder in the bucket, its log
    role: str           # train | predict | gate
    name: str           # the block's name, for the Job's name
    argv: tuple[str, ...]
    resources: Resources
    push: bool = True
    stdout: str = ""
    labelled: str = ""  # the block the Job's labels name, when not `block` (a gate's model)

    @property
    def owner(self) -> str:
        return self.labelled or self.block

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


def predict_run(column: str, name: str, training: Training, argv: tuple[str, ...]) -> RunJob:
    """A model's predictions as the column `column`, sized as the model's training (GPUs too)."""
    return RunJob(column, "predict", name, ("python", "-m", "runtime.train", *argv), training.resources)


def gate_run(api: str, name: str, training: Training) -> RunJob:
    """The rollout gate of `api`, scoring `training`'s model: its CPU and memory, no GPU (it
    scores at most a few thousand rows through each bundle's predictor)."""
    size = replace(training.resources, gpu=0)
    return RunJob(api, "gate", name, GATE_ARGV, size, stdout=STDOUT_FILE, labelled=training.model)


def job_name(spec: AppSpec, run: RunJob) -> str:
    return spec.object_name(run.role, run.name)


def run_manifest(spec: AppSpec, run: RunJob) -> Manifest:
    owner = Owner(spec.name, run.owner, run.role)
    return Manifest.build(Kind.JOB, spec.namespace, job_name(spec, run), owner, _body(spec, run, owner))


def command(run: RunJob) -> list[str]:
    if not run.push:
        return list(run.argv)
    tee = ("--stdout", run.stdout) if run.stdout else ()
    return [*pods.STAGE, "run", "--push", OUT_DIR, run.outputs, *tee, "--", *run.argv]


def _body(spec: AppSpec, run: RunJob, owner: Owner) -> dict[str, Any]:
    main = {"name": run.role, "image": spec.image, "command": command(run), "env": pods.env(spec),
            "envFrom": pods.env_from(spec), "resources": run.resources.to_doc(),
            "securityContext": pods.container_security(), "volumeMounts": pods.work_mounts()}
    stage = pods.stage_container(spec, (pods.Pull(run.inputs, RUN_DIR),))
    pod = pods.pod_spec(spec, workload_account(spec), [main], [stage], "Never",
                        **pods.gpu_placement(spec, run.resources))
    return {"spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": spec.settings.job_ttl_seconds,
                     "template": {"metadata": {"labels": pods.pod_labels(spec, owner)}, "spec": pod}}}
