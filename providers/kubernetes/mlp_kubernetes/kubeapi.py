"""The seam between mlp and a cluster: `KubeApi`, and what it reports as typed values.

Everything the provider does to a cluster goes through a `KubeApi`: `mlp_kubernetes.client`
implements it on the official `kubernetes` client, `mlp_kubernetes.recording` in memory,
recording every call. `Observed.of` is the one place a live object's document is read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlp_kubernetes.manifest import Kind, Manifest, ObjectRef
from mlp_kubernetes.names import BLOCK, DIGEST, MODEL_FINGERPRINT, Selector

JOB_NAME = "job-name"  # the label the Job controller puts on its pods


@dataclass(frozen=True)
class DeploymentStatus:
    """How far a Deployment is. `rolled_out`: the controller has seen its latest spec and
    every replica runs it and is available."""

    generation: int = 0
    observed_generation: int = 0
    replicas: int = 0
    updated: int = 0
    available: int = 0
    image: str = ""
    model_fingerprint: str = ""  # the pod template's annotation: what its pods serve

    @property
    def rolled_out(self) -> bool:
        return (self.observed_generation >= self.generation and self.replicas > 0
                and self.updated == self.replicas and self.available == self.replicas)


@dataclass(frozen=True)
class JobStatus:
    active: int = 0
    succeeded: int = 0
    failed: int = 0

    @property
    def finished(self) -> bool:
        return self.succeeded > 0 or self.failed > 0


@dataclass(frozen=True)
class ServiceStatus:
    cluster_ip: str = ""
    ingress: tuple[str, ...] = ()  # a load balancer's addresses, once it has them


@dataclass(frozen=True)
class Observed:
    """An object as the cluster has it: its labels, annotations and the status of its kind."""

    ref: ObjectRef
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    deployment: DeploymentStatus | None = None
    job: JobStatus | None = None
    service: ServiceStatus | None = None

    @property
    def digest(self) -> str:
        return self.annotations.get(DIGEST, "")

    @property
    def block(self) -> str:
        return self.labels.get(BLOCK, "")

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Observed:
        """A document from the API server (or the recording cluster)."""
        meta = doc.get("metadata") or {}
        kind = Kind(doc["kind"])
        ref = ObjectRef.of(kind, str(meta.get("namespace") or ""), str(meta["name"]))
        status = doc.get("status") or {}
        return cls(ref, dict(meta.get("labels") or {}), dict(meta.get("annotations") or {}),
                   _deployment(doc, meta, status) if kind is Kind.DEPLOYMENT else None,
                   JobStatus(int(status.get("active") or 0), int(status.get("succeeded") or 0),
                             int(status.get("failed") or 0)) if kind is Kind.JOB else None,
                   _service(doc, status) if kind is Kind.SERVICE else None)


def _deployment(doc: Mapping[str, Any], meta: Mapping[str, Any], status: Mapping[str, Any]) -> DeploymentStatus:
    template = (doc.get("spec") or {}).get("template") or {}
    containers = (template.get("spec") or {}).get("containers") or [{}]
    notes = (template.get("metadata") or {}).get("annotations") or {}
    return DeploymentStatus(int(meta.get("generation") or 0), int(status.get("observedGeneration") or 0),
                            int(status.get("replicas") or 0), int(status.get("updatedReplicas") or 0),
                            int(status.get("availableReplicas") or 0), str(containers[0].get("image") or ""),
                            str(notes.get(MODEL_FINGERPRINT) or ""))


def _service(doc: Mapping[str, Any], status: Mapping[str, Any]) -> ServiceStatus:
    ingress = ((status.get("loadBalancer") or {}).get("ingress")) or []
    found = tuple(str(i.get("ip") or i.get("hostname")) for i in ingress if i.get("ip") or i.get("hostname"))
    return ServiceStatus(str((doc.get("spec") or {}).get("clusterIP") or ""), found)


class KubeApi(Protocol):
    """One cluster context. Every call raises `mlp_kubernetes.errors.ClusterError` (naming
    the context) when the cluster cannot be reached or refuses it."""

    context: str

    def create(self, manifest: Manifest) -> None: ...

    def replace(self, manifest: Manifest) -> None:
        """PUT the whole object (it must exist)."""
        ...

    def patch(self, manifest: Manifest) -> None:
        """Server-side apply as mlp's field manager: fields mlp stopped setting go too."""
        ...

    def delete(self, ref: ObjectRef) -> None:
        """Delete the object and, in the background, what it owns (a Job's pods)."""
        ...

    def delete_by_label(self, kind: Kind, namespace: str, selector: Selector) -> None: ...

    def list(self, kind: Kind, namespace: str, selector: Selector) -> tuple[Observed, ...]: ...

    def read(self, ref: ObjectRef) -> Observed | None: ...

    def logs(self, namespace: str, pods: Selector, container: str) -> Iterator[str]:
        """The lines of `container` in the newest pod `pods` selects, followed until it ends."""
        ...


def job_pods(job: ObjectRef) -> Selector:
    return Selector.of({JOB_NAME: job.name})
