"""The AWS program: one `AwsCluster` component holding everything an app runs on.

    network     a VPC, public and private subnets in two zones, a NAT gateway (`network`)
    cluster     EKS, its API endpoint public and private, access entries (the creator admin)
    cpu pool    a managed node group of `node_type`, 1 to `max_nodes` nodes, private subnets
    gpu pool    only when a model sets compute.gpu: `gpu_node_type` on the NVIDIA AMI,
                tainted nvidia.com/gpu=present:NoSchedule, labelled nvidia.com/gpu.present
    bucket      S3, every public access blocked, ACLs off, SSE-KMS by default, TLS only
    identity    IRSA: the cluster's OIDC provider, and a role only the app's two service
                accounts (<app>-workload, <app>-spark) can assume, reaching the bucket (and the app's prefix of
                its s3 backend) and nothing else
    registry    an ECR repository for the runtime image, scanned on push

Managed node groups do not scale by themselves: `max_nodes` is the groups' ceiling for the
Cluster Autoscaler (EKS tags their groups for its discovery); without it each group keeps
its desired size, one node, which later applies leave as the autoscaler set it. Its outputs are the names `mlp_cloud.handoff.OUTPUTS`.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from mlp_aws.identity import bucket, workload_role
from mlp_aws.network import network
from mlp_cloud.handoff import GPU_LABEL, GPU_TAINT
from mlp_cloud.infra import Infra
from mlp_cloud.kubeconfig import exec_kubeconfig

TYPE = "mlp:aws:Cluster"
EKS_POLICY = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"


def tags(infra: Infra) -> dict[str, str]:
    return {"mlp.dev/app": infra.app, "mlp.dev/stack": infra.stack, "app.kubernetes.io/managed-by": "mlp"}


class AwsCluster(pulumi.ComponentResource):
    def __init__(self, infra: Infra, region: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, infra.name, None, opts)
        name, t = infra.name, tags(infra)
        cluster_name = f"mlp-{name}"
        net = network(name, t, cluster_name, self)
        child = pulumi.ResourceOptions(parent=self)
        self.cluster = aws.eks.Cluster(
            f"{name}-cluster", name=cluster_name, role_arn=_role(f"{name}-cluster", "eks.amazonaws.com",
                                                                 [EKS_POLICY], t, self).arn,
            vpc_config={"subnet_ids": [s.id for s in net.private + net.public], "endpoint_private_access": True,
                        "endpoint_public_access": True},
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            tags=t, opts=child)
        nodes = _role(f"{name}-nodes", "ec2.amazonaws.com",
                      [f"arn:aws:iam::aws:policy/{p}" for p in NODE_POLICIES], t, self)
        private = [s.id for s in net.private]
        self.cpu = _pool(f"{name}-cpu", self.cluster, nodes, private, infra.size.node_type, "AL2023_x86_64_STANDARD",
                         1, infra.size.max_nodes, {**_labels(infra), "mlp.dev/pool": "cpu"}, [], t, self)
        self.gpu = (_pool(f"{name}-gpu", self.cluster, nodes, private, infra.size.gpu_node_type,
                          "AL2023_x86_64_NVIDIA", 0, infra.size.max_nodes,
                          {**_labels(infra), **GPU_LABEL, "mlp.dev/pool": "gpu"},
                          [{"key": GPU_TAINT, "value": "present", "effect": "NO_SCHEDULE"}], t, self)
                    if infra.gpu else None)
        issuer = self.cluster.identities.apply(lambda ids: (ids[0].oidcs[0].issuer or "") if ids and ids[0].oidcs else "")
        oidc = aws.iam.OpenIdConnectProvider(f"{name}-oidc", url=issuer, client_id_lists=["sts.amazonaws.com"],
                                             tags=t, opts=child)
        self.bucket = bucket(name, t, self)
        self.role = workload_role(name, infra, oidc, issuer, self.bucket, t, self)
        self.registry = aws.ecr.Repository(f"{name}-runtime", name=f"{name}/mlp-runtime", force_delete=True,
                                           image_scanning_configuration={"scan_on_push": True},
                                           image_tag_mutability="MUTABLE", tags=t, opts=child)
        self.kubeconfig = pulumi.Output.all(self.cluster.name, self.cluster.endpoint,
                                            self.cluster.certificate_authority.apply(lambda c: c.data or "")) \
            .apply(lambda a: _kubeconfig(str(a[0]), str(a[1]), str(a[2]), region))
        self.register_outputs({"cluster": self.cluster.name, "bucket": self.bucket.bucket})


def _labels(infra: Infra) -> dict[str, str]:
    from mlp_kubernetes.names import label_value

    return {"mlp.dev/app": label_value(infra.app)}


def _role(name: str, service: str, policies: list[str], tags: dict[str, str], parent: pulumi.Resource) -> aws.iam.Role:
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
    role = aws.iam.Role(name, assume_role_policy=json.dumps(trust), tags=tags,
                        opts=pulumi.ResourceOptions(parent=parent))
    for i, policy in enumerate(policies):
        aws.iam.RolePolicyAttachment(f"{name}-{i}", role=role.name, policy_arn=policy,
                                     opts=pulumi.ResourceOptions(parent=role))
    return role


def _pool(name: str, cluster: aws.eks.Cluster, role: aws.iam.Role, subnets: list[Any], instance: str, ami: str,
          min_size: int, max_size: int, labels: dict[str, str], taints: list[Any], tags: dict[str, str],
          parent: pulumi.Resource) -> aws.eks.NodeGroup:
    return aws.eks.NodeGroup(
        name, cluster_name=cluster.name, node_role_arn=role.arn, subnet_ids=subnets, instance_types=[instance],
        ami_type=ami, scaling_config={"min_size": min_size, "desired_size": 1, "max_size": max_size},
        labels=labels, taints=taints or None, tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, ignore_changes=["scalingConfig.desiredSize"]))


def _kubeconfig(cluster: str, endpoint: str, ca: str, region: str) -> str:
    return exec_kubeconfig(cluster, endpoint, ca, "aws", ["eks", "get-token", "--cluster-name", cluster,
                                                          "--region", region, "--output", "json"],
                           hint="The aws CLI gets the cluster's tokens: install it and log in")


def program(infra: Infra, region: str) -> None:
    """The inline program: the component and the outputs the Kubernetes layer takes."""
    c = AwsCluster(infra, region)
    pulumi.export("cluster", c.cluster.name)
    pulumi.export("context", c.cluster.name)
    pulumi.export("kubeconfig", c.kubeconfig)
    pulumi.export("bucket", c.bucket.bucket)
    pulumi.export("registry", c.registry.repository_url.apply(lambda url: url.rsplit("/", 1)[0]))
    pulumi.export("namespace", infra.namespace)
    pulumi.export("identity", c.role.arn)
    pulumi.export("identity_annotation", IRSA_ANNOTATION)
    pulumi.export("gpu_pool", "yes" if c.gpu is not None else "no")
