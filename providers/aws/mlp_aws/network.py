"""The cluster's network: a VPC over two availability zones, a public and a private subnet
in each, one NAT gateway for the private subnets' way out.

The nodes run in the private subnets (no public address); load balancers of Services go in
the public ones (`kubernetes.io/role/elb`), internal ones in the private ones. One NAT
gateway, not one per zone: it is the cheaper default, at the price of losing the nodes' way
out if its zone goes down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

CIDR = "10.42.0.0/16"
PUBLIC = ("10.42.0.0/20", "10.42.16.0/20")
PRIVATE = ("10.42.128.0/18", "10.42.192.0/18")


@dataclass(frozen=True)
class Network:
    vpc: aws.ec2.Vpc
    public: tuple[aws.ec2.Subnet, ...]
    private: tuple[aws.ec2.Subnet, ...]


def network(name: str, tags: Mapping[str, str], cluster: str, parent: pulumi.Resource) -> Network:
    opts = pulumi.ResourceOptions(parent=parent)
    zones = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOutputOptions(parent=parent))
    vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=CIDR, enable_dns_hostnames=True, enable_dns_support=True,
                      tags={**tags, "Name": f"{name}-vpc"}, opts=opts)
    owned = {f"kubernetes.io/cluster/{cluster}": "shared"}
    public = tuple(aws.ec2.Subnet(f"{name}-public-{i}", vpc_id=vpc.id, cidr_block=cidr,
                                  availability_zone=zones.names[i], map_public_ip_on_launch=True,
                                  tags={**tags, **owned, "Name": f"{name}-public-{i}", "kubernetes.io/role/elb": "1"},
                                  opts=opts) for i, cidr in enumerate(PUBLIC))
    private = tuple(aws.ec2.Subnet(f"{name}-private-{i}", vpc_id=vpc.id, cidr_block=cidr,
                                   availability_zone=zones.names[i],
                                   tags={**tags, **owned, "Name": f"{name}-private-{i}",
                                         "kubernetes.io/role/internal-elb": "1"},
                                   opts=opts) for i, cidr in enumerate(PRIVATE))
    _routes(name, tags, vpc, public, private, opts)
    return Network(vpc, public, private)


def _routes(name: str, tags: Mapping[str, str], vpc: aws.ec2.Vpc, public: tuple[aws.ec2.Subnet, ...],
            private: tuple[aws.ec2.Subnet, ...], opts: pulumi.ResourceOptions) -> None:
    igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=dict(tags), opts=opts)
    eip = aws.ec2.Eip(f"{name}-nat", domain="vpc", tags=dict(tags), opts=opts)
    nat = aws.ec2.NatGateway(f"{name}-nat", allocation_id=eip.id, subnet_id=public[0].id, tags=dict(tags),
                             opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[igw])))
    out = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id, tags=dict(tags),
                             routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}], opts=opts)
    inside = aws.ec2.RouteTable(f"{name}-private", vpc_id=vpc.id, tags=dict(tags),
                                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}], opts=opts)
    for table, subnets, kind in ((out, public, "public"), (inside, private, "private")):
        for i, subnet in enumerate(subnets):
            aws.ec2.RouteTableAssociation(f"{name}-{kind}-{i}", subnet_id=subnet.id, route_table_id=table.id,
                                          opts=opts)
