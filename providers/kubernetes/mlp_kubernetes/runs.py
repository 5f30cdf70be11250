"""One run of a Job on the cluster, followed to its end.

    run_job(api, spec, job, config, container, on_line) -> JobStatus

The app's service accounts are made first when they are missing. A Job of an earlier run
holds the name and cannot change its pod template, so it is deleted (and gone) before the
new one is created. Each line of the main container's log goes to `on_line` while it runs;
then the Job's final status is read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mlp.errors import ApplyError
from mlp_kubernetes.cluster import Desired, apply_manifests
from mlp_kubernetes.kubeapi import JobStatus, KubeApi, job_pods
from mlp_kubernetes.manifest import Manifest, ObjectRef
from mlp_kubernetes.names import APP_BLOCK
from mlp_kubernetes.rbac import rbac
from mlp_kubernetes.specs import AppSpec


@dataclass(frozen=True)
class Clock:
    """How long to wait and how: a test's clock never sleeps."""

    timeout: float = 120.0   # seconds for a deleted Job to go, or a finished one to say so
    interval: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], float] = time.monotonic


def ensure_accounts(api: KubeApi, spec: AppSpec) -> None:
    apply_manifests(Desired.block(spec, APP_BLOCK, rbac(spec)), api)


def run_job(api: KubeApi, spec: AppSpec, job: Manifest, config: Sequence[Manifest], container: str,
            on_line: Callable[[str], None], clock: Clock | None = None) -> JobStatus:
    """Run `job` (with the ConfigMaps in `config` written first); its final status."""
    clock = clock or Clock()
    ensure_accounts(api, spec)
    for m in config:
        api.patch(m)
    api.delete(job.ref)
    _wait(clock, lambda: api.read(job.ref) is None, f"{job.ref} of an earlier run to go", spec, job.ref)
    api.create(job)
    for line in api.logs(spec.namespace, job_pods(job.ref), container):
        on_line(line)
    return _finished(api, clock, spec, job.ref)


def _finished(api: KubeApi, clock: Clock, spec: AppSpec, ref: ObjectRef) -> JobStatus:
    status: list[JobStatus] = []

    def done() -> bool:
        seen = api.read(ref)
        if seen is None or seen.job is None:
            raise ApplyError(f"{ref} went away before it finished", "Something else deleted it.",
                             f"kubectl --context {api.context} -n {spec.namespace} get events")
        status[:] = [seen.job]
        return seen.job.finished

    _wait(clock, done, f"{ref} to finish", spec, ref)
    return status[0]


def _wait(clock: Clock, ready: Callable[[], bool], what: str, spec: AppSpec, ref: ObjectRef) -> None:
    deadline = clock.now() + clock.timeout
    while not ready():
        if clock.now() > deadline:
            raise ApplyError(f"Waited {clock.timeout:.0f}s for {what}", f'In namespace "{spec.namespace}".',
                             f"kubectl -n {spec.namespace} describe {ref.kind.value.lower()} {ref.name}")
        clock.sleep(clock.interval)
