"""The Azure program under Pulumi's mocks: the real SDK and pulumi-azure-native's resource
classes, every resource it registers and the outputs it exports."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from mlp.config.blocks import App
from mlp_azure.provider import AzureProvider
from mlp_cloud.mocks import ProgramRun, run_program
from mlp_kubernetes.rbac import driver_account, workload_account

AKS = "azure-native:containerservice:ManagedCluster"
POOL = "azure-native:containerservice:AgentPool"
ROLE = "azure-native:authorization:RoleAssignment"
FIC = "azure-native:managedidentity:FederatedIdentityCredential"
SUB = "11111111-2222-3333-4444-555555555555"
ISSUER = "https://westeurope.oic.prod-aks.azure.com/tenant/issuer/"
KUBECONFIG = "apiVersion: v1\nkind: Config\nusers: [{name: u, user: {client-key-data: S0VZ}}]\n"

COMPUTED: Mapping[str, Callable[[str, Mapping[str, Any]], Mapping[str, Any]]] = {
    AKS: lambda name, i: {"oidcIssuerProfile": {"enabled": True, "issuerURL": ISSUER},
                          "identity": {"type": "SystemAssigned", "principalId": "aks-principal"},
                          "identityProfile": {"kubeletidentity": {"objectId": "kubelet-object"}}},
    "azure-native:managedidentity:UserAssignedIdentity": lambda name, i: {
        "principalId": "workload-principal", "clientId": "workload-client"},
    "azure-native:containerregistry:Registry": lambda name, i: {"loginServer": f"{name}9f8e7d6c.azurecr.io"},
    "azure-native:storage:StorageAccount": lambda name, i: {"name": f"{name}1a2b3c4d"},
    "azure-native:storage:BlobContainer": lambda name, i: {"name": i["containerName"]},
}
INVOKES = {
    "azure-native:authorization:getClientConfig": {"subscriptionId": SUB, "tenantId": "t", "clientId": "c",
                                                   "objectId": "o"},
    "azure-native:containerservice:listManagedClusterUserCredentials": {
        "kubeconfigs": [{"name": "clusterUser", "value": base64.b64encode(KUBECONFIG.encode()).decode()}]},
}
BLOB_CONTRIBUTOR = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/" \
                   "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


def run(app: App) -> ProgramRun:
    provider = AzureProvider(app.provider, app)
    return run_program(provider.program(provider.infra(app)), COMPUTED, INVOKES, stack="iris-azure")


@pytest.fixture(scope="module")
def cpu_only(iris_once: Path, loaded: Callable[[Path], App]) -> ProgramRun:
    return run(loaded(iris_once))


def test_the_cluster_is_aks_with_workload_identity_and_a_cpu_pool_sized_from_the_block(cpu_only: ProgramRun) -> None:
    aks = cpu_only.one(AKS).inputs
    assert aks["oidcIssuerProfile"] == {"enabled": True}
    assert aks["securityProfile"] == {"workloadIdentity": {"enabled": True}}
    [pool] = aks["agentPoolProfiles"]
    assert {k: pool[k] for k in ("name", "mode", "vmSize", "count", "minCount", "maxCount", "enableAutoScaling",
                                 "enableNodePublicIP")} == {
        "name": "system", "mode": "System", "vmSize": "Standard_D8s_v3", "count": 1, "minCount": 1, "maxCount": 6,
        "enableAutoScaling": True, "enableNodePublicIP": False}
    assert pool["nodeLabels"] == {"mlp.dev/app": "iris", "mlp.dev/pool": "cpu"}
    assert pool["vnetSubnetID"] == "iris-nodes-id"
    assert not cpu_only.of_type(POOL)


def test_no_gpu_pool_unless_a_model_asks_for_one(cpu_only: ProgramRun, iris_gpu: Path,
                                                 loaded: Callable[[Path], App]) -> None:
    assert cpu_only.outputs["gpu_pool"] == "no"
    with_gpu = run(loaded(iris_gpu))
    gpu = with_gpu.one(POOL, "iris-gpu").inputs
    assert {k: gpu[k] for k in ("agentPoolName", "mode", "vmSize", "minCount", "maxCount", "enableAutoScaling")} == {
        "agentPoolName": "gpu", "mode": "User", "vmSize": "Standard_NC4as_T4_v3", "minCount": 0, "maxCount": 6,
        "enableAutoScaling": True}
    assert gpu["nodeTaints"] == ["nvidia.com/gpu=present:NoSchedule"]
    assert gpu["nodeLabels"] == {"mlp.dev/app": "iris", "mlp.dev/pool": "gpu", "nvidia.com/gpu.present": "true"}


def test_the_storage_is_private_encrypted_and_https_only(cpu_only: ProgramRun) -> None:
    account = cpu_only.one("azure-native:storage:StorageAccount").inputs
    assert {k: account[k] for k in ("allowBlobPublicAccess", "enableHttpsTrafficOnly", "minimumTlsVersion",
                                    "allowSharedKeyAccess")} == {
        "allowBlobPublicAccess": False, "enableHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2",
        "allowSharedKeyAccess": False}
    assert account["encryption"] == {"keySource": "Microsoft.Storage",
                                     "services": {"blob": {"enabled": True, "keyType": "Account"}}}
    container = cpu_only.one("azure-native:storage:BlobContainer").inputs
    assert (container["containerName"], container["publicAccess"]) == ("mlp", "None")


def test_the_workload_identity_reaches_the_container_and_nothing_else(cpu_only: ProgramRun) -> None:
    credentials = {r.name: r.inputs for r in cpu_only.of_type(FIC)}
    assert {name: (c["resourceName"], c["issuer"], c["subject"], c["audiences"])
            for name, c in credentials.items()} == {
        "iris-workload": ("iris-workload", ISSUER, "system:serviceaccount:default:iris-workload",
                          ["api://AzureADTokenExchange"]),
        "iris-spark": ("iris-workload", ISSUER, "system:serviceaccount:default:iris-spark",
                       ["api://AzureADTokenExchange"])}
    mine = [r.inputs for r in cpu_only.of_type(ROLE) if r.inputs["principalId"] == "workload-principal"]
    assert mine == [{"principalId": "workload-principal", "principalType": "ServicePrincipal",
                     "scope": "iris-data-id", "roleDefinitionId": BLOB_CONTRIBUTOR}]


def test_the_identity_trusts_the_accounts_mlp_kubernetes_runs_pods_as_and_no_other(
        iris: Path, loaded: Callable[[Path], App]) -> None:
    app = with_settings(loaded(iris), namespace="ml", executors=2, cache_claim="spark-cache")
    program = run(app)
    credentials = program.of_type(FIC)
    subjects = [c.inputs["subject"] for c in credentials]
    assert subjects == ["system:serviceaccount:ml:iris-workload", "system:serviceaccount:ml:iris-spark"]
    spec = kube_spec(app)
    assert subjects == [f"system:serviceaccount:{spec.namespace}:{account}"
                        for account in (workload_account(spec), driver_account(spec))]
    assert {(c.inputs["resourceName"], c.inputs["issuer"]) for c in credentials} == {("iris-workload", ISSUER)}
    assert [r.name for r in program.of_type("azure-native:managedidentity:UserAssignedIdentity")] == ["iris-workload"]


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


def test_with_the_backend_group_the_identity_reaches_the_backend_prefix_too(iris: Path,
                                                                            loaded: Callable[[Path], App]) -> None:
    app = with_settings(loaded(iris), backend_resource_group="state-rg")
    backend = next(r.inputs for r in run(app).of_type(ROLE) if r.name == "iris-workload-backend")
    assert backend["scope"] == (f"/subscriptions/{SUB}/resourceGroups/state-rg/providers/Microsoft.Storage/"
                                "storageAccounts/mlpstate/blobServices/default/containers/state")
    assert backend["conditionVersion"] == "2.0"
    assert backend["condition"].endswith(
        "OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] "
        "StringStartsWith 'apps/iris/'))")


def test_the_outputs_are_what_the_kubernetes_layer_takes(cpu_only: ProgramRun) -> None:
    out = cpu_only.outputs
    assert {k: out[k] for k in ("bucket", "registry", "namespace", "identity", "identity_annotation")} == {
        "bucket": "mlp@irisdata1a2b3c4d", "registry": "irisacr9f8e7d6c.azurecr.io", "namespace": "default",
        "identity": "workload-client", "identity_annotation": "azure.workload.identity/client-id"}
    assert out["kubeconfig"] == KUBECONFIG
    pulls = [r.inputs for r in cpu_only.of_type(ROLE) if r.name == "iris-acr-pull"]
    assert pulls[0]["principalId"] == "kubelet-object"
    registry = cpu_only.one("azure-native:containerregistry:Registry").inputs
    assert (registry["sku"], registry["adminUserEnabled"]) == ({"name": "Basic"}, False)


def test_every_resource_that_takes_tags_names_the_app(cpu_only: ProgramRun) -> None:
    tagged = [r for r in cpu_only.resources if "tags" in r.inputs]
    assert len(tagged) >= 6
    for r in tagged:
        assert r.inputs["tags"] == {"mlp-app": "iris", "mlp-stack": "iris-azure", "managed-by": "mlp"}, r.name
    assert AKS in {r.type for r in tagged}
