"""Golden plans of examples/iris under `provider "azure"`, its state in Blob Storage
(azurite on 127.0.0.1): the golden plans every cloud checks (`mlp_cloud.goldens`),
golden/plan.txt and golden/plan-previewed.txt.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_azure_program import COMPUTED, INVOKES

from mlp_cloud.driver import Operation
from mlp_cloud.goldens import *  # noqa: F403 - the golden plans' tests, run here for azure
from mlp_cloud.goldens import GoldenCase
from mlp_cloud.recording import Call

ACCOUNT = "devstoreaccount1"  # azurite's


@pytest.fixture
def golden() -> GoldenCase:
    from mlp_azure.provider import AzureProvider

    return GoldenCase(
        AzureProvider, Path(__file__).resolve().parent / "golden", "azurerm", "azurite",
        {"account": ACCOUNT, "container": "mlp-state", "prefix": "apps/iris"},
        Call(Operation.PREVIEW, "iris-azure", f"azblob://mlp-state/apps/iris/pulumi?storage_account={ACCOUNT}",
             {"azure-native:location": "westeurope"}),
        frozenset({"azure-native:containerservice:ManagedCluster::iris-aks",
                   "azure-native:storage:BlobContainer::iris-data", "mlp:azure:Cluster::iris"}),
        COMPUTED, INVOKES)
