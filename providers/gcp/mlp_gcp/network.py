"""The cluster's network: a VPC of its own with one subnet (its secondary ranges for the
pods and the services, Private Google Access on), and Cloud NAT so that nodes without public
addresses still reach the internet."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

SUBNET = "10.42.0.0/20"
PODS = ("pods", "10.64.0.0/14")
SERVICES = ("services", "10.68.0.0/20")
MASTER = "172.16.0.32/28"  # the control plane's peered range


@dataclass(frozen=True)
class Network:
    network: gcp.compute.Network
    subnet: gcp.compute.Subnetwork


def network(name: str, region: str, parent: pulumi.Resource, after: list[pulumi.Resource]) -> Network:
    opts = pulumi.ResourceOptions(parent=parent, depends_on=after)
    net = gcp.compute.Network(f"{name}-vpc", auto_create_subnetworks=False, opts=opts)
    subnet = gcp.compute.Subnetwork(
        f"{name}-nodes", region=region, network=net.id, ip_cidr_range=SUBNET, private_ip_google_access=True,
        secondary_ip_ranges=[{"range_name": PODS[0], "ip_cidr_range": PODS[1]},
                             {"range_name": SERVICES[0], "ip_cidr_range": SERVICES[1]}], opts=opts)
    router = gcp.compute.Router(f"{name}-router", region=region, network=net.id, opts=opts)
    gcp.compute.RouterNat(f"{name}-nat", router=router.name, region=region, nat_ip_allocate_option="AUTO_ONLY",
                          source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES", opts=opts)
    return Network(net, subnet)
