"""The app's service accounts, with the least rights its pods need.

- `<app>-workload`: every pod that does not talk to the Kubernetes API (training, the apis,
  a data unit that runs Spark inside its driver pod, executors). No rights, and no token
  mounted. It carries the provider's `service_account_annotations`: what ties it to a cloud
  identity (IRSA's role, GKE's or Azure's workload identity), which the pods' SDKs then use.
- `<app>-spark`, only when data units start executor pods: a Role in the app's namespace
  (nothing cluster-wide) that lets a Spark driver do what Spark's Kubernetes scheduler does:
  create, watch and delete its executor pods and their config map. The driver runs inside
  the cluster with no driver Service to clean up
  (`spark.kubernetes.driver.service.deleteOnTermination=false`), so it gets no rights on
  Services. It carries the same annotations as `<app>-workload`: the driver reads and writes
  the bucket, and the clouds' identities trust both accounts.
"""

from __future__ import annotations

from mlp_kubernetes.manifest import Kind, Manifest
from mlp_kubernetes.names import Owner
from mlp_kubernetes.specs import AppSpec

SPARK_RULES = (
    ("pods", ("create", "get", "list", "watch", "delete", "deletecollection")),
    ("configmaps", ("create", "get", "list", "delete", "deletecollection")),
)


def workload_account(spec: AppSpec) -> str:
    return spec.object_name("workload")


def spark_account(spec: AppSpec) -> str:
    return spec.object_name("spark")


def uses_executors(spec: AppSpec) -> bool:
    return bool(spec.data) and spec.settings.executors > 0


def driver_account(spec: AppSpec) -> str:
    """The account a data unit's driver runs as."""
    return spark_account(spec) if uses_executors(spec) else workload_account(spec)


def rbac(spec: AppSpec) -> list[Manifest]:
    owner = Owner(spec.name, component="identity")
    out = [Manifest.build(Kind.SERVICE_ACCOUNT, spec.namespace, workload_account(spec), owner,
                          {"automountServiceAccountToken": False}, spec.settings.service_account_annotations)]
    if not uses_executors(spec):
        return out
    name = spark_account(spec)
    rules = [{"apiGroups": [""], "resources": [resource], "verbs": list(verbs)} for resource, verbs in SPARK_RULES]
    return out + [
        Manifest.build(Kind.SERVICE_ACCOUNT, spec.namespace, name, owner, {"automountServiceAccountToken": False},
                       spec.settings.service_account_annotations),  # the driver reads the bucket too
        Manifest.build(Kind.ROLE, spec.namespace, name, owner, {"rules": rules}),
        Manifest.build(Kind.ROLE_BINDING, spec.namespace, name, owner, {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": spec.namespace}]}),
    ]
