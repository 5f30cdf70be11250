"""`RecordingKubeApi`: a cluster in memory that records every call made to it.

It keeps the objects it is given and answers like an API server where everything works at
once: a Deployment is rolled out as soon as it is written (its replicas the autoscaler's
minimum), a Job has succeeded (or ends as `outcomes` says), a LoadBalancer Service has an
address. `logs` answers the lines given for a Job's name. Tests replay a plan through it and
read `calls`; `seed` puts objects there without a call (another app's, or someone else's).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlp_kubernetes.errors import ClusterError
from mlp_kubernetes.kubeapi import JOB_NAME, JobStatus, Observed
from mlp_kubernetes.manifest import Kind, Manifest, ObjectRef
from mlp_kubernetes.names import Selector

READS = ("list", "read", "logs")


@dataclass(frozen=True)
class Call:
    """One call: its verb, the object's kind, its name (or the selector), and the document sent."""

    verb: str
    kind: Kind | None
    target: str
    doc: Mapping[str, Any] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.verb} {self.kind.value if self.kind else ''}/{self.target}"


class RecordingKubeApi:
    def __init__(self, context: str = "recording", outcomes: Mapping[str, JobStatus] | None = None,
                 logs: Mapping[str, Sequence[str]] | None = None) -> None:
        self.context = context
        self.objects: dict[ObjectRef, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.outcomes = dict(outcomes or {})
        self.log_lines = {k: list(v) for k, v in (logs or {}).items()}

    # -- what tests read ---------------------------------------------------------------

    def writes(self) -> list[Call]:
        """The calls that changed something, in order."""
        return [c for c in self.calls if c.verb not in READS]

    def seed(self, doc: Mapping[str, Any]) -> ObjectRef:
        body = copy.deepcopy(dict(doc))
        ref = Observed.of(body).ref
        self.objects[ref] = self._settle(body)
        return ref

    def doc(self, ref: ObjectRef) -> dict[str, Any]:
        return self.objects[ref]

    # -- KubeApi ------------------------------------------------------------------------

    def create(self, manifest: Manifest) -> None:
        self._call("create", manifest.kind, manifest.name, manifest.doc)
        if manifest.ref in self.objects:
            raise ClusterError(f'{manifest.ref} already exists in namespace "{manifest.ref.namespace}"',
                               context=self.context, status=409)
        self.objects[manifest.ref] = self._settle(copy.deepcopy(dict(manifest.doc)))

    def replace(self, manifest: Manifest) -> None:
        self._call("replace", manifest.kind, manifest.name, manifest.doc)
        if manifest.ref not in self.objects:
            raise ClusterError(f"{manifest.ref} does not exist", context=self.context, status=404)
        self._write(manifest)

    def patch(self, manifest: Manifest) -> None:
        self._call("patch", manifest.kind, manifest.name, manifest.doc)
        self._write(manifest)

    def delete(self, ref: ObjectRef) -> None:
        self._call("delete", ref.kind, ref.name)
        self.objects.pop(ref, None)

    def delete_by_label(self, kind: Kind, namespace: str, selector: Selector) -> None:
        self._call("delete_by_label", kind, str(selector))
        for ref in [r for r in self.objects if r.kind is kind and r.namespace == namespace]:
            if selector.matches(self.objects[ref]["metadata"].get("labels") or {}):
                del self.objects[ref]

    def list(self, kind: Kind, namespace: str, selector: Selector) -> tuple[Observed, ...]:
        self._call("list", kind, str(selector))
        return tuple(Observed.of(self._settle(d)) for r, d in sorted(self.objects.items())
                     if r.kind is kind and r.namespace == namespace
                     and selector.matches(d["metadata"].get("labels") or {}))

    def read(self, ref: ObjectRef) -> Observed | None:
        self._call("read", ref.kind, ref.name)
        doc = self.objects.get(ref)
        return Observed.of(self._settle(doc)) if doc is not None else None

    def logs(self, namespace: str, pods: Selector, container: str) -> Iterator[str]:
        self._call("logs", None, str(pods))
        job = dict(pods.labels).get(JOB_NAME, "")
        yield from self.log_lines.get(job, ())

    # -- the cluster's side ----------------------------------------------------------------

    def _call(self, verb: str, kind: Kind | None, target: str, doc: Mapping[str, Any] | None = None) -> None:
        self.calls.append(Call(verb, kind, target, copy.deepcopy(dict(doc)) if doc is not None else None))

    def _write(self, manifest: Manifest) -> None:
        old = self.objects.get(manifest.ref)
        doc = copy.deepcopy(dict(manifest.doc))
        if old is not None:
            generation = int(old["metadata"].get("generation") or 1)
            changed = old.get("spec") != doc.get("spec")
            doc["metadata"] = {**doc["metadata"], "generation": generation + 1 if changed else generation}
        self.objects[manifest.ref] = self._settle(doc)

    def _settle(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The status the object has once the cluster has done what it asks."""
        kind, meta = doc["kind"], doc["metadata"]
        meta.setdefault("generation", 1)
        if kind == Kind.DEPLOYMENT.value:
            n = self._min_replicas(meta["namespace"], meta["name"])
            doc["status"] = {"observedGeneration": meta["generation"], "replicas": n, "updatedReplicas": n,
                             "readyReplicas": n, "availableReplicas": n}
        elif kind == Kind.JOB.value:
            s = self.outcomes.get(meta["name"], JobStatus(succeeded=1))
            doc.setdefault("status", {"active": s.active, "succeeded": s.succeeded, "failed": s.failed})
        elif kind == Kind.SERVICE.value:
            doc.setdefault("spec", {})["clusterIP"] = "10.96.0.10"
            if doc["spec"].get("type") == "LoadBalancer":
                doc["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}
        return doc

    def _min_replicas(self, namespace: str, name: str) -> int:
        hpa = self.objects.get(ObjectRef.of(Kind.HORIZONTAL_POD_AUTOSCALER, namespace, name))
        return int(hpa["spec"]["minReplicas"]) if hpa else 1
