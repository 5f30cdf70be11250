"""One Kubernetes object as mlp renders it: `Manifest`, its `Kind` and its `ObjectRef`.

A manifest's `doc` is the plain document that goes to YAML and to the API server; nothing
else reads inside it. Its `mlp.dev/digest` annotation is a digest of the document without
that annotation: what mlp asked for, so that comparing a live object with a rendered one
never depends on the defaults and status the server adds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlp_kubernetes.names import ADDRESS, DIGEST, Owner


class Kind(StrEnum):
    """The kinds mlp makes, in the order they are created (deleted in reverse)."""

    SERVICE_ACCOUNT = "ServiceAccount"
    ROLE = "Role"
    ROLE_BINDING = "RoleBinding"
    CONFIG_MAP = "ConfigMap"
    SERVICE = "Service"
    DEPLOYMENT = "Deployment"
    HORIZONTAL_POD_AUTOSCALER = "HorizontalPodAutoscaler"
    JOB = "Job"

    @property
    def api_version(self) -> str:
        return _API_VERSIONS[self]

    @property
    def order(self) -> int:
        return list(Kind).index(self)

    @property
    def immutable(self) -> bool:
        """A Job's pod template cannot change: a different Job is a delete and a create."""
        return self is Kind.JOB

    @property
    def per_run(self) -> bool:
        """Objects made for one run of a block (a finished Job stays until its TTL), not kept
        in step with the app: pruning leaves those of blocks that still exist."""
        return self is Kind.JOB


_API_VERSIONS = {Kind.SERVICE_ACCOUNT: "v1", Kind.ROLE: "rbac.authorization.k8s.io/v1",
                 Kind.ROLE_BINDING: "rbac.authorization.k8s.io/v1", Kind.CONFIG_MAP: "v1",
                 Kind.SERVICE: "v1", Kind.DEPLOYMENT: "apps/v1",
                 Kind.HORIZONTAL_POD_AUTOSCALER: "autoscaling/v2", Kind.JOB: "batch/v1"}


@dataclass(frozen=True, order=True)
class ObjectRef:
    """Which object: its kind, namespace and name. Orders in creation order."""

    order: int
    kind: Kind
    namespace: str
    name: str

    @classmethod
    def of(cls, kind: Kind, namespace: str, name: str) -> ObjectRef:
        return cls(kind.order, kind, namespace, name)

    def __str__(self) -> str:
        return f"{self.kind.value}/{self.name}"


@dataclass(frozen=True)
class Manifest:
    """A rendered object. Invariants: `doc` has `ref`'s kind, name and namespace, `owner`'s
    labels, and `digest` as its `mlp.dev/digest` annotation."""

    ref: ObjectRef
    owner: Owner
    digest: str
    doc: Mapping[str, Any]

    @classmethod
    def build(cls, kind: Kind, namespace: str, name: str, owner: Owner, body: Mapping[str, Any],
              annotations: Mapping[str, str] | None = None) -> Manifest:
        """The object `kind`/`name` with `body` (its spec, data, rules...) under its metadata."""
        notes = {ADDRESS: owner.block, **(annotations or {})}
        meta = {"name": name, "namespace": namespace, "labels": owner.labels(), "annotations": notes}
        doc: dict[str, Any] = {"apiVersion": kind.api_version, "kind": kind.value, "metadata": meta, **body}
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
        doc["metadata"] = {**meta, "annotations": {**notes, DIGEST: digest}}
        return cls(ObjectRef.of(kind, namespace, name), owner, digest, doc)

    @property
    def kind(self) -> Kind:
        return self.ref.kind

    @property
    def name(self) -> str:
        return self.ref.name
