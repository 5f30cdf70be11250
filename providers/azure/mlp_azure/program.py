"""The Azure program: one `AzureCluster` component holding everything an app runs on.

    group       a resource group of its own, so destroy leaves nothing behind
    network     a virtual network and the nodes' subnet (Azure CNI overlay: pods get
                addresses outside it); nodes have no public address
    cluster     AKS (free tier), OIDC issuer and Workload Identity on, its system pool the
                CPU pool: `node_type`, autoscaled from 1 to `max_nodes` nodes
    gpu pool    only when a model sets compute.gpu: a user pool of `gpu_node_type`, 0 to
                `max_nodes` nodes, tainted nvidia.com/gpu=present:NoSchedule and labelled
                nvidia.com/gpu.present
    storage, identity   (`identity`)
    registry    ACR (Basic, no admin user); the nodes' kubelet identity may pull from it

The kubeconfig comes from the cluster's user credentials: it holds a client certificate, so
it is a secret output, kept encrypted in the stack's state. Its outputs are the names
`mlp_cloud.handoff.OUTPUTS`.
"""

from __future__ import annotations

import base64
import re

import pulumi
import pulumi_azure_native as az

from mlp_azure.identity import role, storage, workload_identity
from mlp_cloud.handoff import GPU_LABEL, GPU_TAINT
from mlp_cloud.infra import Infra

TYPE = "mlp:azure:Cluster"
VNET, NODES = "10.42.0.0/16", "10.42.0.0/20"
PODS, SERVICES, DNS = "10.244.0.0/16", "10.0.0.0/16", "10.0.0.10"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
WI_ANNOTATION = "azure.workload.identity/client-id"


def tags(infra: Infra) -> dict[str, str]:
    """Azure tag names may not hold '/': the app's tags are mlp-app, mlp-stack, managed-by."""
    return {"mlp-app": infra.app, "mlp-stack": f"{infra.name}-azure", "managed-by": "mlp"}


def node_labels(infra: Infra, pool: str) -> dict[str, str]:
    from mlp_kubernetes.names import label_value

    return {"mlp.dev/app": label_value(infra.app), "mlp.dev/pool": pool}


class AzureCluster(pulumi.ComponentResource):
    def __init__(self, infra: Infra, location: str, backend_group: str = "",
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, infra.name, None, opts)
        name, t = infra.name, tags(infra)
        child = pulumi.ResourceOptions(parent=self)
        subscription = az.authorization.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(parent=self)).subscription_id
        self.group = az.resources.ResourceGroup(f"mlp-{name}", location=location, tags=t, opts=child)
        vnet = az.network.VirtualNetwork(f"{name}-vnet", resource_group_name=self.group.name, location=location,
                                         address_space={"address_prefixes": [VNET]}, tags=t, opts=child)
        subnet = az.network.Subnet(f"{name}-nodes", resource_group_name=self.group.name,
                                   virtual_network_name=vnet.name, address_prefix=NODES,
                                   opts=pulumi.ResourceOptions(parent=vnet))
        self.cluster = _cluster(name, infra, self.group, location, subnet, t, self)
        az.authorization.RoleAssignment(
            f"{name}-aks-network", principal_id=self.cluster.identity.apply(lambda i: i.principal_id if i else ""),
            principal_type="ServicePrincipal", scope=subnet.id,
            role_definition_id=role(subscription, NETWORK_CONTRIBUTOR), opts=pulumi.ResourceOptions(parent=self.cluster))
        self.gpu = az.containerservice.AgentPool(
            f"{name}-gpu", agent_pool_name="gpu", resource_group_name=self.group.name, resource_name_=self.cluster.name,
            mode="User", vm_size=infra.size.gpu_node_type, count=0, min_count=0, max_count=infra.size.max_nodes,
            enable_auto_scaling=True, os_type="Linux", type="VirtualMachineScaleSets", vnet_subnet_id=subnet.id,
            node_taints=[f"{GPU_TAINT}=present:NoSchedule"], node_labels={**node_labels(infra, "gpu"), **GPU_LABEL},
            tags=t, opts=pulumi.ResourceOptions(parent=self.cluster, ignore_changes=["count"])) if infra.gpu else None
        self.account, self.container = storage(name, self.group, location, t, self)
        issuer = self.cluster.oidc_issuer_profile.apply(lambda p: (p.issuer_url or "") if p else "")
        self.identity = workload_identity(name, infra, self.group, location, issuer, self.container, subscription,
                                          backend_group, t, self)
        self.registry = az.containerregistry.Registry(
            f"{re.sub('[^a-z0-9]', '', name)[:12]}acr", resource_group_name=self.group.name, location=location,
            sku={"name": "Basic"}, admin_user_enabled=False, tags=t, opts=child)
        az.authorization.RoleAssignment(
            f"{name}-acr-pull", principal_id=self.cluster.identity_profile.apply(_kubelet), principal_type="ServicePrincipal",
            scope=self.registry.id, role_definition_id=role(subscription, ACR_PULL),
            opts=pulumi.ResourceOptions(parent=self.registry))
        creds = az.containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=self.group.name, resource_name=self.cluster.name,
            opts=pulumi.InvokeOutputOptions(parent=self))
        self.kubeconfig: pulumi.Output[str] = pulumi.Output.secret(creds.kubeconfigs.apply(
            lambda ks: base64.b64decode(ks[0].value).decode() if ks else ""))
        self.register_outputs({"cluster": self.cluster.name})


def _cluster(name: str, infra: Infra, group: az.resources.ResourceGroup, location: str, subnet: az.network.Subnet,
             t: dict[str, str], parent: pulumi.Resource) -> az.containerservice.ManagedCluster:
    pool: az.containerservice.ManagedClusterAgentPoolProfileArgsDict = {
        "name": "system", "mode": "System", "vm_size": infra.size.node_type, "count": 1, "min_count": 1,
        "max_count": infra.size.max_nodes, "enable_auto_scaling": True, "os_type": "Linux",
        "type": "VirtualMachineScaleSets", "vnet_subnet_id": subnet.id, "enable_node_public_ip": False,
        "node_labels": node_labels(infra, "cpu"), "tags": t}
    network: az.containerservice.ContainerServiceNetworkProfileArgsDict = {
        "network_plugin": "azure", "network_plugin_mode": "overlay", "pod_cidr": PODS, "service_cidr": SERVICES,
        "dns_service_ip": DNS, "load_balancer_sku": "standard"}
    return az.containerservice.ManagedCluster(
        f"{name}-aks", resource_group_name=group.name, location=location, dns_prefix=f"mlp-{name}",
        identity={"type": az.containerservice.ResourceIdentityType.SYSTEM_ASSIGNED}, enable_rbac=True,
        sku={"name": "Base", "tier": "Free"}, agent_pool_profiles=[pool], network_profile=network,
        oidc_issuer_profile={"enabled": True}, security_profile={"workload_identity": {"enabled": True}},
        tags=t, opts=pulumi.ResourceOptions(parent=parent, ignore_changes=["agentPoolProfiles[0].count"]))


def _kubelet(profile: object) -> str:
    identity = profile.get("kubeletidentity") if isinstance(profile, dict) else None
    return str(getattr(identity, "object_id", "") or "")


def program(infra: Infra, location: str, backend_group: str = "") -> None:
    """The inline program: the component and the outputs the Kubernetes layer takes."""
    c = AzureCluster(infra, location, backend_group)
    pulumi.export("cluster", c.cluster.name)
    pulumi.export("context", c.cluster.name)
    pulumi.export("kubeconfig", c.kubeconfig)
    pulumi.export("bucket", pulumi.Output.concat(c.container.name, "@", c.account.name))
    pulumi.export("registry", c.registry.login_server)
    pulumi.export("namespace", infra.namespace)
    pulumi.export("identity", c.identity.client_id)
    pulumi.export("identity_annotation", WI_ANNOTATION)
    pulumi.export("gpu_pool", "yes" if c.gpu is not None else "no")
