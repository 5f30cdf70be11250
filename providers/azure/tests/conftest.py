"""Fixtures of the azure provider's tests: `.venv/bin/pytest providers/azure/tests`.

- `iris`: examples/iris under `provider "azure"` with an azurerm backend; `iris_gpu`: the same,
  its model asking for a GPU;
- `loaded`: an app folder loaded into mlp's `App`;
- `azurite`: azurite's blob service on 127.0.0.1, the one the backends' tests use
  (tests/state/conftest.py), for the golden plans' azurerm backend;
- `update_goldens`: rewrite golden files instead of comparing (MLP_UPDATE_GOLDENS=1).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.register_assert_rewrite("mlp_cloud.contract", "mlp_cloud.goldens", "mlp_cloud.mocks")

from mlp_cloud.testing import app_fixtures, updating_goldens  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:  # the repository's own tests, for their servers
    sys.path.append(str(REPO))

from tests.state.conftest import azurite  # noqa: E402, F401

PROVIDER = '''provider "azure" {
  location = "westeurope"
  cluster {
    node_type = "Standard_D8s_v3"
    max_nodes = 6
  }
}'''
BACKEND = '''backend "azurerm" {
  account   = "mlpstate"
  container = "state"
  prefix    = "apps/iris"
}'''


iris, iris_gpu, iris_once, loaded = app_fixtures(REPO, PROVIDER, BACKEND)


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return updating_goldens(request.config)


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_azure_native's own deprecated aliases warn when its modules are imported
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_azure_native")


OUTPUTS = {
    "cluster": "iris-aks5f3e2a1", "context": "iris-aks5f3e2a1", "kubeconfig": '{"kind": "Config"}\n',
    "bucket": "mlp@irisdata1a2b3c4d", "registry": "irisacr9f8e7d6c.azurecr.io", "namespace": "default",
    "identity": "00000000-0000-0000-0000-00000000c1d2", "identity_annotation": "azure.workload.identity/client-id"}


@pytest.fixture
def cloud(iris: Path):  # type: ignore[no-untyped-def]
    from mlp_azure.provider import AzureProvider
    from mlp_cloud.contract import CloudCase
    from mlp_cloud.stack import StackRef

    return CloudCase(
        AzureProvider, iris, StackRef("iris-azure", "azblob://state/apps/iris/pulumi?storage_account=mlpstate",
                                      {"azure-native:location": "westeurope"}),
        "azure-native:containerservice:ManagedCluster", "azure-native:containerservice:AgentPool",
        "azure-native:storage:BlobContainer", OUTPUTS,
        bad={'{"location": "West Europe"}': '"West Europe" is not an Azure location',
             '{"cluster": {"node_type": "D4s_v3", "max_nodes": 2, "gpu_node_type": "Standard_NC4as_T4_v3"}}':
                 'cluster.node_type "D4s_v3" is not a valid azure machine type'})
