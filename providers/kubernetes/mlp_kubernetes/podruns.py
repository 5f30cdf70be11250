"""What every runtime job on the cluster does around its Job: its inputs into the bucket, its
pod's log into the block's log while it runs, and how it ended.

    stage(store, run, folder)              the folder to the run's `in/`; the old `out/` cleared
    follow(api, spec, run, log, clock)     the Job run to its end -> Ended

The runtime's JSON events are read from the log as the local provider reads them: epochs and
warnings go to the block's log for the user, an `error` event is the run's own message, any
other line goes to the log file as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlp.state.backends.objects import ObjectStore
from mlp_kubernetes.kubeapi import KubeApi
from mlp_kubernetes.runjob import RunJob, run_manifest
from mlp_kubernetes.runs import Clock, run_job
from mlp_kubernetes.specs import AppSpec
from mlp_kubernetes.transfer import push

if TYPE_CHECKING:
    from mlp.providers import JobLog


@dataclass(frozen=True)
class Ended:
    """How a run ended: whether its Job succeeded, and the runtime's error event if it sent one."""

    succeeded: bool
    message: str = ""
    hint: str = ""


def stage(store: ObjectStore, run: RunJob, folder: Path) -> None:
    """Put the run's inputs in the bucket, and clear what an earlier run left."""
    push(store, folder, run.inputs)
    store.delete_many(store.list(run.outputs))


def follow(api: KubeApi, spec: AppSpec, run: RunJob, log: JobLog, clock: Clock | None = None) -> Ended:
    from mlp.providers.localjobs import epoch_line, event

    failure: dict[str, str] = {}

    def line(text: str) -> None:
        ev = event(text)
        kind = ev.get("event") if ev is not None else None
        if ev is None:
            log.write(text, False)
        elif kind == "epoch":
            log.write(epoch_line(ev), True)
        elif kind == "warning":
            log.write(f"warning: {ev.get('message')} Fix: {ev.get('fix')}", True)
        elif kind == "error":
            failure.update(message=str(ev.get("message") or ""), hint=str(ev.get("hint") or ""))

    manifest = run_manifest(spec, run)
    log.write(f"{run.role}: Job {manifest.name} in namespace {spec.namespace} (context {api.context})", False)
    status = run_job(api, spec, manifest, (), run.role, line, clock)
    return Ended(bool(status.succeeded) and not failure, failure.get("message", ""), failure.get("hint", ""))
