"""`AzureProvider`: an app on AKS, through its Pulumi stack and the Kubernetes layer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlp_cloud.driver import Program
from mlp_cloud.infra import Infra
from mlp_cloud.provider import Cloud, CloudProvider
from mlp_cloud.settings import ClusterSize, Shape

if TYPE_CHECKING:
    from mlp.config.blocks import ProviderConfig
    from mlp.diagnostics import Diagnostics

LOCATION = re.compile(r"^[a-z]+[a-z0-9]*$")
VM_SIZE = re.compile(r"^Standard_[A-Za-z0-9_]+$")
CLOUD = Cloud("azure", "azurerm", ClusterSize("Standard_D4s_v3", 5, "Standard_NC4as_T4_v3"),
              Shape(VM_SIZE, "Standard_D4s_v3"), Shape(VM_SIZE, "Standard_NC4as_T4_v3"),
              {"azure-native": "pulumi-azure-native"})
WHERE = 'in provider "azure"'


class AzureProvider(CloudProvider):
    cloud = CLOUD

    @property
    def location(self) -> str:
        return str(self.config.settings.get("location") or "")

    @property
    def backend_group(self) -> str:
        """The resource group of the azurerm backend's storage account (a setting beyond the
        schema's): the workload identity reaches the backend's container only with it."""
        return str(self.config.settings.get("backend_resource_group") or "")

    def stack_config(self) -> Mapping[str, str]:
        return {"azure-native:location": self.location}

    def program(self, infra: Infra) -> Program:
        location, group = self.location, self.backend_group

        def run() -> None:
            from mlp_azure.program import program

            program(infra, location, group)

        return run

    def check_place(self, config: ProviderConfig, diags: Diagnostics) -> None:
        location = str(config.settings.get("location") or "")
        if not LOCATION.match(location):
            diags.error(f'"{location}" is not an Azure location', config.pos,
                        "The cluster, its storage and its registry are made there (a name, not a display name).",
                        'Use e.g. location = "westeurope"', WHERE)
        if self.app is not None and self.app.backend.kind == "azurerm" and not self.backend_group:
            diags.warning("The workloads' identity cannot reach the azurerm backend's container", config.pos,
                          "Its role is scoped by the container's resource ID, which needs the storage account's "
                          "resource group; without it the pods reach the container only with the <app>-storage "
                          "Secret's credentials (docs/kubernetes.md).",
                          'Set backend_resource_group = "<the storage account\'s resource group>", or create the '
                          f"Secret {self.app.name}-storage in the cluster's namespace", WHERE)


__all__ = ["AzureProvider"]
