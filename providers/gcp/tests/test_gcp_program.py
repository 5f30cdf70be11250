"""The GCP program under Pulumi's mocks: the real SDK and pulumi-gcp's resource classes,
every resource it registers and the outputs it exports."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from mlp.config.blocks import App
from mlp_cloud.mocks import ProgramRun, run_program
from mlp_gcp.provider import GcpProvider
from mlp_kubernetes.rbac import driver_account, workload_account

POOL = "gcp:container/nodePool:NodePool"
MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"

COMPUTED: Mapping[str, Callable[[str, Mapping[str, Any]], Mapping[str, Any]]] = {
    "gcp:container/cluster:Cluster": lambda name, i: {
        "endpoint": "34.78.1.2", "masterAuth": {"clusterCaCertificate": "Q0EtREFUQQ=="}},
    "gcp:storage/bucket:Bucket": lambda name, i: {"name": f"{name}-5d6e7f8"},
    "gcp:serviceaccount/account:Account": lambda name, i: {
        "email": f"{i['accountId']}@ml-platform-123.iam.gserviceaccount.com",
        "name": f"projects/ml-platform-123/serviceAccounts/{i['accountId']}@ml-platform-123.iam.gserviceaccount.com"},
}
INVOKES = {"gcp:compute/getZones:getZones": {"names": ["europe-west1-b", "europe-west1-c", "europe-west1-d"]}}
GSA = "serviceAccount:iris-workload@ml-platform-123.iam.gserviceaccount.com"
WORKLOAD_GSA = "projects/ml-platform-123/serviceAccounts/iris-workload@ml-platform-123.iam.gserviceaccount.com"
IDENTITY_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"


def run(app: App) -> ProgramRun:
    provider = GcpProvider(app.provider, app)
    return run_program(provider.program(provider.infra(app)), COMPUTED, INVOKES, stack="iris-gcp")


@pytest.fixture(scope="module")
def cpu_only(iris_once: Path, loaded: Callable[[Path], App]) -> ProgramRun:
    return run(loaded(iris_once))


def test_the_cluster_is_gke_with_private_nodes_workload_identity_and_no_default_pool(cpu_only: ProgramRun) -> None:
    c = cpu_only.one("gcp:container/cluster:Cluster").inputs
    assert (c["name"], c["location"], c["nodeLocations"]) == ("mlp-iris", "europe-west1", ["europe-west1-b"])
    assert c["removeDefaultNodePool"] is True and c["deletionProtection"] is False
    assert c["privateClusterConfig"]["enablePrivateNodes"] is True
    assert c["workloadIdentityConfig"] == {"workloadPool": "ml-platform-123.svc.id.goog"}
    assert c["ipAllocationPolicy"] == {"clusterSecondaryRangeName": "pods", "servicesSecondaryRangeName": "services"}


def test_one_cpu_pool_sized_from_the_block(cpu_only: ProgramRun) -> None:
    [pool] = cpu_only.of_type(POOL)
    assert pool.name == "iris-cpu"
    assert pool.inputs["autoscaling"] == {"minNodeCount": 1, "maxNodeCount": 3}
    config = pool.inputs["nodeConfig"]
    assert config["machineType"] == "e2-standard-8"
    assert config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert config["labels"] == {"mlp.dev/app": "iris", "mlp.dev/pool": "cpu"}
    assert "taints" not in config and "guestAccelerators" not in config
    assert config["serviceAccount"] == "iris-nodes@ml-platform-123.iam.gserviceaccount.com"


def test_no_gpu_pool_unless_a_model_asks_for_one(cpu_only: ProgramRun, iris_gpu: Path,
                                                 loaded: Callable[[Path], App]) -> None:
    assert cpu_only.outputs["gpu_pool"] == "no"
    with_gpu = run(loaded(iris_gpu))
    gpu = with_gpu.one(POOL, "iris-gpu").inputs
    assert gpu["autoscaling"] == {"minNodeCount": 0, "maxNodeCount": 3}
    config = gpu["nodeConfig"]
    assert config["machineType"] == "n1-standard-4"
    assert config["guestAccelerators"] == [{"type": "nvidia-tesla-t4", "count": 1,
                                            "gpuDriverInstallationConfig": {"gpuDriverVersion": "DEFAULT"}}]
    assert config["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert config["labels"] == {"mlp.dev/app": "iris", "nvidia.com/gpu.present": "true", "mlp.dev/pool": "gpu"}


def test_the_bucket_is_private_and_uniform(cpu_only: ProgramRun) -> None:
    b = cpu_only.one("gcp:storage/bucket:Bucket").inputs
    assert (b["uniformBucketLevelAccess"], b["publicAccessPrevention"], b["location"]) == (
        True, "enforced", "europe-west1")
    assert not cpu_only.of_type("gcp:storage/bucketACL:BucketACL")


def test_the_workload_identity_reaches_the_bucket_and_the_backend_prefix_only(cpu_only: ProgramRun) -> None:
    bindings = {m.name: m.inputs for m in cpu_only.of_type(IDENTITY_MEMBER)}
    assert {name: (m["serviceAccountId"], m["role"], m["member"]) for name, m in bindings.items()} == {
        "iris-workload-identity": (WORKLOAD_GSA, "roles/iam.workloadIdentityUser",
                                   "serviceAccount:ml-platform-123.svc.id.goog[default/iris-workload]"),
        "iris-spark-identity": (WORKLOAD_GSA, "roles/iam.workloadIdentityUser",
                                "serviceAccount:ml-platform-123.svc.id.goog[default/iris-spark]")}
    grants = {(m.inputs["bucket"], m.inputs["role"], m.inputs["member"]) for m in cpu_only.of_type(MEMBER)}
    assert grants == {("iris-data-5d6e7f8", "roles/storage.objectAdmin", GSA),
                      ("mlp-state", "roles/storage.objectAdmin", GSA)}
    backend = next(m for m in cpu_only.of_type(MEMBER) if m.inputs["bucket"] == "mlp-state")
    assert backend.inputs["condition"]["expression"] == (
        'resource.name == "projects/_/buckets/mlp-state" || '
        'resource.name.startsWith("projects/_/buckets/mlp-state/objects/apps/iris/")')
    project_roles = {m.inputs["member"] for m in cpu_only.of_type("gcp:projects/iAMMember:IAMMember")}
    assert GSA not in project_roles


def test_the_identity_trusts_the_accounts_mlp_kubernetes_runs_pods_as_and_no_other(
        iris: Path, loaded: Callable[[Path], App]) -> None:
    app = with_settings(loaded(iris), namespace="ml", executors=2, cache_claim="spark-cache")
    program = run(app)
    members = sorted(m.inputs["member"] for m in program.of_type(IDENTITY_MEMBER))
    assert members == ["serviceAccount:ml-platform-123.svc.id.goog[ml/iris-spark]",
                       "serviceAccount:ml-platform-123.svc.id.goog[ml/iris-workload]"]
    spec = kube_spec(app)
    assert members == sorted(f"serviceAccount:ml-platform-123.svc.id.goog[{spec.namespace}/{account}]"
                             for account in (workload_account(spec), driver_account(spec)))
    assert {m.inputs["serviceAccountId"] for m in program.of_type(IDENTITY_MEMBER)} == {WORKLOAD_GSA}
    assert {m.inputs["role"] for m in program.of_type(IDENTITY_MEMBER)} == {"roles/iam.workloadIdentityUser"}
    assert {m.inputs["member"] for m in program.of_type(MEMBER)} == {GSA}  # the grants unchanged


def with_settings(app: App, **settings: Any) -> App:
    """`app` as if its provider block also set `settings`."""
    from dataclasses import replace

    from mlp.config.blocks import ProviderConfig

    block = app.provider
    return replace(app, provider=ProviderConfig(block.kind, block.pos, {**block.settings, **settings}))


def kube_spec(app: App) -> Any:
    """The app as the Kubernetes layer renders it, with the block's workload settings."""
    from mlp_kubernetes.appspec import jobs_spec
    from mlp_kubernetes.settings import KubeSettings

    return jobs_spec(app, KubeSettings.from_settings(app.provider.settings))


def test_the_outputs_are_what_the_kubernetes_layer_takes(cpu_only: ProgramRun) -> None:
    out = cpu_only.outputs
    assert {k: out[k] for k in ("cluster", "bucket", "registry", "namespace", "identity", "identity_annotation")} == {
        "cluster": "mlp-iris", "bucket": "iris-data-5d6e7f8",
        "registry": "europe-west1-docker.pkg.dev/ml-platform-123/iris-mlp", "namespace": "default",
        "identity": "iris-workload@ml-platform-123.iam.gserviceaccount.com",
        "identity_annotation": "iam.gke.io/gcp-service-account"}
    kubeconfig = json.loads(out["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://34.78.1.2"
    assert kubeconfig["users"][0]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert cpu_only.one("gcp:artifactregistry/repository:Repository").inputs["format"] == "DOCKER"


def test_every_resource_that_takes_labels_names_the_app(cpu_only: ProgramRun) -> None:
    for r in cpu_only.resources:
        for key in ("labels", "resourceLabels"):
            if key in r.inputs:
                assert r.inputs[key]["mlp-app"] == "iris", r.name
    assert cpu_only.one("gcp:container/cluster:Cluster").inputs["resourceLabels"] == {
        "mlp-app": "iris", "mlp-stack": "iris-gcp", "managed-by": "mlp"}
