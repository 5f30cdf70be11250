"""mlp's AWS provider: an app on EKS, its bucket in S3, its image in ECR.

    provider "aws" {
      region = "eu-west-1"
      cluster { node_type = "m5.xlarge", max_nodes = 5, gpu_node_type = "g4dn.xlarge" }
    }

    provider    `AwsProvider`: mlp's provider interface (`mlp_cloud.provider.CloudProvider`)
    program     the Pulumi program: the `AwsCluster` component and its outputs
    network     the VPC, subnets and NAT gateway
    identity    the bucket, and the IRSA role that alone reaches it

Importing the package or its provider module imports no Pulumi package.
"""
