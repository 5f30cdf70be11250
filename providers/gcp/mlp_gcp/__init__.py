"""mlp's GCP provider: an app on GKE, its bucket in Cloud Storage, its image in Artifact Registry.

    provider "gcp" {
      project = "my-project"
      region  = "europe-west1"
      cluster { node_type = "e2-standard-4", max_nodes = 5, gpu_node_type = "nvidia-tesla-t4" }
    }

    provider    `GcpProvider`: mlp's provider interface (`mlp_cloud.provider.CloudProvider`)
    program     the Pulumi program: the `GcpCluster` component and its outputs
    network     the VPC, its subnet with the pods' and services' ranges, Cloud NAT
    identity    the bucket, and the Workload Identity service account that alone reaches it

Importing the package or its provider module imports no Pulumi package.
"""
