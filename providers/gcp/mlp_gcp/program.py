"""The GCP program: one `GcpCluster` component holding everything an app runs on.

    services    the APIs it needs, enabled (and left enabled on destroy)
    network     a VPC, a subnet with the pods' and services' ranges, Cloud NAT (`network`)
    cluster     GKE, private nodes (a public control-plane endpoint), Workload Identity on,
                its default pool removed, in one zone of the region
    cpu pool    `node_type`, autoscaled from 1 to `max_nodes` nodes
    gpu pool    only when a model sets compute.gpu: n1-standard-4 nodes with one
                `gpu_node_type` accelerator and GKE's driver, 0 to `max_nodes`, tainted
                nvidia.com/gpu=present:NoSchedule and labelled nvidia.com/gpu.present
    nodes' account  a service account that may write logs and metrics and pull images only
    bucket, identity   (`identity`)
    registry    an Artifact Registry Docker repository

One zone, not three: a regional pool has its node count in each zone, three times the nodes.
Its outputs are the names `mlp_cloud.handoff.OUTPUTS`.
"""

from __future__ import annotations

import re
from typing import cast

import pulumi
import pulumi_gcp as gcp

from mlp_cloud.handoff import GPU_LABEL, GPU_TAINT
from mlp_cloud.infra import Infra
from mlp_cloud.kubeconfig import exec_kubeconfig
from mlp_gcp.identity import bucket, workload_account
from mlp_gcp.network import MASTER, PODS, SERVICES, network

TYPE = "mlp:gcp:Cluster"
SERVICES_ENABLED = ("compute.googleapis.com", "container.googleapis.com", "artifactregistry.googleapis.com",
                    "iam.googleapis.com")
NODE_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/artifactregistry.reader")
GPU_MACHINE = "n1-standard-4"  # the machine family GKE attaches T4, P4, V100 and P100 accelerators to
WI_ANNOTATION = "iam.gke.io/gcp-service-account"


def labels(infra: Infra) -> dict[str, str]:
    """Google labels: lower-case letters, digits, '_' and '-' only."""
    value = re.sub(r"[^a-z0-9_-]", "-", infra.app.lower())[:63]
    return {"mlp-app": value, "mlp-stack": f"{infra.name}-gcp", "managed-by": "mlp"}


def _labels(infra: Infra) -> dict[str, str]:
    """The nodes' Kubernetes labels."""
    from mlp_kubernetes.names import label_value

    return {"mlp.dev/app": label_value(infra.app)}


class GcpCluster(pulumi.ComponentResource):
    def __init__(self, infra: Infra, project: str, region: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, infra.name, None, opts)
        name, tags = infra.name, labels(infra)
        child = pulumi.ResourceOptions(parent=self)
        apis: list[pulumi.Resource] = [gcp.projects.Service(f"{name}-{s.split('.')[0]}", project=project, service=s,
                                                            disable_on_destroy=False, opts=child)
                                       for s in SERVICES_ENABLED]
        net = network(name, region, self, apis)
        zone = gcp.compute.get_zones_output(project=project, region=region, status="UP",
                                            opts=pulumi.InvokeOutputOptions(parent=self)).names[0]
        self.cluster = gcp.container.Cluster(
            f"{name}-cluster", name=f"mlp-{name}", project=project, location=region, node_locations=[zone],
            network=net.network.id, subnetwork=net.subnet.id, networking_mode="VPC_NATIVE",
            remove_default_node_pool=True, initial_node_count=1, deletion_protection=False,
            ip_allocation_policy={"cluster_secondary_range_name": PODS[0],
                                  "services_secondary_range_name": SERVICES[0]},
            private_cluster_config={"enable_private_nodes": True, "enable_private_endpoint": False,
                                    "master_ipv4_cidr_block": MASTER},
            workload_identity_config={"workload_pool": f"{project}.svc.id.goog"},
            release_channel={"channel": "REGULAR"}, resource_labels=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=apis))
        nodes = self._node_account(name, project)
        self.cpu = _pool(f"{name}-cpu", self.cluster, region, zone, nodes, infra, 1,
                         {"machine_type": infra.size.node_type, "labels": {**_labels(infra), "mlp.dev/pool": "cpu"}},
                         tags, self)
        self.gpu = _pool(f"{name}-gpu", self.cluster, region, zone, nodes, infra, 0, {
            "machine_type": GPU_MACHINE,
            "guest_accelerators": [{"type": infra.size.gpu_node_type, "count": 1,
                                    "gpu_driver_installation_config": {"gpu_driver_version": "DEFAULT"}}],
            "labels": {**_labels(infra), **GPU_LABEL, "mlp.dev/pool": "gpu"},
            "taints": [{"key": GPU_TAINT, "value": "present", "effect": "NO_SCHEDULE"}]}, tags, self) \
            if infra.gpu else None
        self.bucket = bucket(name, region, tags, self)
        self.identity = workload_account(name, project, infra, self.bucket, self)
        self.registry = gcp.artifactregistry.Repository(
            f"{name}-runtime", project=project, location=region, repository_id=f"{name}-mlp", format="DOCKER",
            labels=tags, opts=pulumi.ResourceOptions(parent=self, depends_on=apis))
        self.kubeconfig = pulumi.Output.all(self.cluster.name, self.cluster.endpoint,
                                            self.cluster.master_auth.cluster_ca_certificate) \
            .apply(lambda a: _kubeconfig(str(a[0]), str(a[1]), str(a[2] or "")))
        self.register_outputs({"cluster": self.cluster.name, "bucket": self.bucket.name})

    def _node_account(self, name: str, project: str) -> gcp.serviceaccount.Account:
        nodes = gcp.serviceaccount.Account(f"{name}-nodes", account_id=f"{name}-nodes", project=project,
                                           display_name="mlp cluster nodes", opts=pulumi.ResourceOptions(parent=self))
        for role in NODE_ROLES:
            gcp.projects.IAMMember(f"{name}-nodes-{role.split('/')[1]}", project=project, role=role,
                                   member=nodes.email.apply(lambda e: f"serviceAccount:{e}"),
                                   opts=pulumi.ResourceOptions(parent=nodes))
        return nodes


def _pool(name: str, cluster: gcp.container.Cluster, region: str, zone: pulumi.Input[str],
          nodes: gcp.serviceaccount.Account, infra: Infra, min_nodes: int, config: dict[str, object],
          tags: dict[str, str], parent: pulumi.Resource) -> gcp.container.NodePool:
    node_config = {**config, "service_account": nodes.email, "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                   "workload_metadata_config": {"mode": "GKE_METADATA"}, "resource_labels": tags,
                   "shielded_instance_config": {"enable_secure_boot": True}}
    return gcp.container.NodePool(
        name, cluster=cluster.id, location=region, node_locations=[zone], initial_node_count=min_nodes or 0,
        autoscaling={"min_node_count": min_nodes, "max_node_count": infra.size.max_nodes},
        management={"auto_repair": True, "auto_upgrade": True},
        node_config=cast("gcp.container.NodePoolNodeConfigArgsDict", node_config),
        opts=pulumi.ResourceOptions(parent=parent, ignore_changes=["initialNodeCount"]))


def _kubeconfig(cluster: str, endpoint: str, ca: str) -> str:
    return exec_kubeconfig(cluster, f"https://{endpoint}", ca, "gke-gcloud-auth-plugin", provide_cluster_info=True,
                           hint="Install it: gcloud components install gke-gcloud-auth-plugin")


def program(infra: Infra, project: str, region: str) -> None:
    """The inline program: the component and the outputs the Kubernetes layer takes."""
    c = GcpCluster(infra, project, region)
    pulumi.export("cluster", c.cluster.name)
    pulumi.export("context", c.cluster.name)
    pulumi.export("kubeconfig", c.kubeconfig)
    pulumi.export("bucket", c.bucket.name)
    pulumi.export("registry", c.registry.repository_id.apply(lambda r: f"{region}-docker.pkg.dev/{project}/{r}"))
    pulumi.export("namespace", infra.namespace)
    pulumi.export("identity", c.identity.email)
    pulumi.export("identity_annotation", WI_ANNOTATION)
    pulumi.export("gpu_pool", "yes" if c.gpu is not None else "no")
