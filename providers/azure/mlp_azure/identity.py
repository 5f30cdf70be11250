"""The app's container and the one identity that reaches it (Azure Workload Identity).

The storage account: no public blob access, HTTPS only (TLS 1.2 at least), no shared-key
access (every request is signed by an Entra identity), blobs encrypted with Microsoft-managed
keys. The container: private.

The identity: a user-assigned managed identity whose only federated credentials are the
cluster's OIDC issuer for the app's two service accounts (`APP-workload` and, for a Spark
driver with executors, `APP-spark`), one credential each, and whose only role is
Storage Blob Data Contributor on the container and, when the app's backend is azurerm and
the block names its resource group (`backend_resource_group`), on the backend's container,
limited by a condition to the blobs under the backend's prefix.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_azure_native as az

from mlp_cloud.infra import BackendGrant, Infra

BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
TOKEN_AUDIENCE = "api://AzureADTokenExchange"
BLOB_ACTIONS = ("read", "write", "delete", "add/action", "move/action")


def role(subscription: pulumi.Input[str], definition: str) -> pulumi.Output[str]:
    return pulumi.Output.concat("/subscriptions/", subscription, "/providers/Microsoft.Authorization/roleDefinitions/",
                                definition)


def storage(name: str, group: az.resources.ResourceGroup, location: str, tags: Mapping[str, str],
            parent: pulumi.Resource) -> tuple[az.storage.StorageAccount, az.storage.BlobContainer]:
    account = az.storage.StorageAccount(
        f"{name.replace('-', '')[:12]}data", resource_group_name=group.name, location=location, kind="StorageV2",
        sku={"name": "Standard_LRS"}, allow_blob_public_access=False, enable_https_traffic_only=True,
        minimum_tls_version="TLS1_2", allow_shared_key_access=False, public_network_access="Enabled",
        encryption={"key_source": "Microsoft.Storage", "services": {"blob": {"enabled": True, "key_type": "Account"}}},
        tags=dict(tags), opts=pulumi.ResourceOptions(parent=parent))
    container = az.storage.BlobContainer(f"{name}-data", account_name=account.name, resource_group_name=group.name,
                                         container_name="mlp", public_access=az.storage.PublicAccess.NONE,
                                         opts=pulumi.ResourceOptions(parent=account))
    return account, container


def workload_identity(name: str, infra: Infra, group: az.resources.ResourceGroup, location: str,
                      issuer: pulumi.Input[str], container: az.storage.BlobContainer, subscription: pulumi.Input[str],
                      backend_group: str, tags: Mapping[str, str],
                      parent: pulumi.Resource) -> az.managedidentity.UserAssignedIdentity:
    uai = az.managedidentity.UserAssignedIdentity(f"{name}-workload", resource_group_name=group.name,
                                                  location=location, tags=dict(tags),
                                                  opts=pulumi.ResourceOptions(parent=parent))
    under = pulumi.ResourceOptions(parent=uai)
    federate(name, infra, group, uai, issuer)
    az.authorization.RoleAssignment(f"{name}-workload-data", principal_id=uai.principal_id,
                                    principal_type="ServicePrincipal", scope=container.id,
                                    role_definition_id=role(subscription, BLOB_CONTRIBUTOR), opts=under)
    if infra.backend is not None and infra.backend.kind == "azurerm" and backend_group:
        az.authorization.RoleAssignment(
            f"{name}-workload-backend", principal_id=uai.principal_id, principal_type="ServicePrincipal",
            scope=pulumi.Output.concat("/subscriptions/", subscription, backend_scope(infra.backend, backend_group)),
            role_definition_id=role(subscription, BLOB_CONTRIBUTOR), opts=under,
            **prefix_condition(infra.backend))
    return uai


def federate(name: str, infra: Infra, group: az.resources.ResourceGroup,
             uai: az.managedidentity.UserAssignedIdentity, issuer: pulumi.Input[str]) -> None:
    """One federated credential per service account, written one after the other: Azure refuses
    concurrent credential writes under one identity
    (`ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity`)."""
    previous: list[pulumi.Resource] = []
    for account in infra.service_accounts:
        fic = az.managedidentity.FederatedIdentityCredential(
            f"{name}-{account.role}", resource_group_name=group.name, resource_name_=uai.name, issuer=issuer,
            subject=account.subject, audiences=[TOKEN_AUDIENCE],
            opts=pulumi.ResourceOptions(parent=uai, depends_on=previous))
        previous = [fic]


def backend_scope(backend: BackendGrant, group: str) -> str:
    return (f"/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{backend.account}"
            f"/blobServices/default/containers/{backend.bucket}")


def prefix_condition(backend: BackendGrant) -> dict[str, str]:
    """An ABAC condition: the blob actions only on paths under the prefix."""
    if not backend.prefix:
        return {}
    blobs = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
    actions = " AND ".join(f"!(ActionMatches{{'{blobs}/{a}'}})" for a in BLOB_ACTIONS)
    return {"condition": f"(({actions}) OR (@Resource[{blobs}:path] StringStartsWith '{backend.prefix}/'))",
            "condition_version": "2.0"}
