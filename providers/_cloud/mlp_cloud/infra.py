"""`Infra`: everything a cloud's Pulumi program is built from, taken from the app once.

A program reads nothing else (no Pulumi config, no environment), so a test builds the same
resources from the same `Infra` every time, and the stack's config holds only what the
cloud's provider package reads (its region or location).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlp_cloud.settings import ClusterSize
from mlp_kubernetes.names import dns_name

if TYPE_CHECKING:
    from mlp.config.blocks import App

NAMESPACE = "default"

# The roles of the Kubernetes service accounts an app's pods run as, named `<app>-<role>` as
# mlp_kubernetes.rbac names them (`workload_account`, `spark_account`: `AppSpec.object_name`):
# `<app>-workload` runs every pod but one; with executors, a data unit's Spark driver runs as
# `<app>-spark`. The workloads' cloud identity trusts exactly these two.
ACCOUNT_ROLES = ("workload", "spark")


@dataclass(frozen=True)
class BackendGrant:
    """The app's backend, when it is this cloud's: the workloads read and write the app's
    artifacts there (under `prefix`), so their identity reaches that prefix too."""

    kind: str                  # s3 | gcs | azurerm
    bucket: str                # the bucket, or the azurerm container
    prefix: str = ""
    account: str = ""          # azurerm: the storage account


@dataclass(frozen=True)
class ServiceAccount:
    """A Kubernetes service account of the app's pods, which its cloud identity trusts."""

    role: str                  # one of ACCOUNT_ROLES; the cloud resources that trust it are named by it
    name: str                  # <app>-<role>, as mlp_kubernetes names it
    namespace: str

    @property
    def subject(self) -> str:
        """The account as the cluster's token issuer names it (a token's `sub`)."""
        return f"system:serviceaccount:{self.namespace}:{self.name}"


@dataclass(frozen=True)
class Infra:
    """Invariants: `name` is a lower-case DNS label of at most 20 characters (every cloud's
    resource names are built from it); `gpu` is true exactly when some model of the app sets
    `compute.gpu` above 0."""

    app: str                   # the app's own name, as its labels and tags carry it
    name: str                  # the base of every resource name
    stack: str                 # <app>-<kind>
    size: ClusterSize
    gpu: bool
    namespace: str = NAMESPACE
    backend: BackendGrant | None = None

    @property
    def service_accounts(self) -> tuple[ServiceAccount, ...]:
        """The accounts the app's pods run as, in ACCOUNT_ROLES' order: all the identity trusts."""
        return tuple(ServiceAccount(role, dns_name(self.app, role), self.namespace) for role in ACCOUNT_ROLES)

    @classmethod
    def of(cls, app: App, kind: str, size: ClusterSize, backend_kind: str) -> Infra:
        """`backend_kind`: this cloud's backend kind, whose bucket the identity reaches too."""
        s = app.provider.settings
        return cls(app.name, resource_name(app.name), f"{app.name}-{kind}", size, wants_gpu(app),
                   str(s.get("namespace") or NAMESPACE), backend_grant(app, backend_kind))


def wants_gpu(app: App) -> bool:
    from mlp.config.blocks import Model

    return any(isinstance(b, Model) and _gpus(b.compute) > 0 for b in app.blocks.values())


def _gpus(compute: Mapping[str, Any]) -> int:
    try:
        return int(compute.get("gpu") or 0)
    except (TypeError, ValueError):
        return 0


def backend_grant(app: App, kind: str) -> BackendGrant | None:
    b = app.backend
    if b.kind != kind:
        return None
    s = b.settings
    prefix = str(s.get("prefix") or "").strip("/")
    if kind == "azurerm":
        return BackendGrant(kind, str(s.get("container") or ""), prefix, str(s.get("account") or ""))
    return BackendGrant(kind, str(s.get("bucket") or ""), prefix)


def resource_name(app: str) -> str:
    """The app's name as a DNS label of at most 20 characters: `Churn_Model` -> `churn-model`."""
    slug = re.sub(r"[^a-z0-9]+", "-", app.lower()).strip("-")[:20].strip("-")
    return slug or "app"
