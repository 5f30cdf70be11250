"""mlp's Azure provider: an app on AKS, its blobs in a storage account, its image in ACR.

    provider "azure" {
      location = "westeurope"
      cluster { node_type = "Standard_D4s_v3", max_nodes = 5, gpu_node_type = "Standard_NC4as_T4_v3" }
    }

    provider    `AzureProvider`: mlp's provider interface (`mlp_cloud.provider.CloudProvider`)
    program     the Pulumi program: the `AzureCluster` component and its outputs
    identity    the storage account and container, and the managed identity that alone
                reaches the container

Importing the package or its provider module imports no Pulumi package.
"""
