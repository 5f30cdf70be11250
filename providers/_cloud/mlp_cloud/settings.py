"""A cloud provider block's `cluster { node_type, max_nodes, gpu_node_type }`, read once.

The schema (`mlp.config.schema.PROVIDERS`) fills in each cloud's defaults; a block read
outside the loader (a provider made from a state's kind) takes them from `ClusterSize`
given by the cloud. Settings beyond the schema's are read when a block has them
(`namespace`, `image`), as the Kubernetes provider does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlp.config.blocks import ProviderConfig
    from mlp.diagnostics import Diagnostics

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class ClusterSize:
    """The node pools: CPU nodes of `node_type`, up to `max_nodes`; GPU nodes of
    `gpu_node_type` (a VM size, or on GCP an accelerator type), made only when a model asks."""

    node_type: str
    max_nodes: int
    gpu_node_type: str

    @classmethod
    def of(cls, settings: Mapping[str, Any], defaults: ClusterSize) -> ClusterSize:
        block = settings.get("cluster")
        c: Mapping[str, Any] = block if isinstance(block, Mapping) else {}
        return cls(str(c.get("node_type") or defaults.node_type), int(c.get("max_nodes") or defaults.max_nodes),
                   str(c.get("gpu_node_type") or defaults.gpu_node_type))


@dataclass(frozen=True)
class Shape:
    """What a cloud accepts as a machine type: the pattern, and an example for the fix."""

    pattern: re.Pattern[str]
    example: str


def check_cluster(config: ProviderConfig, diags: Diagnostics, node: Shape, gpu: Shape,
                  defaults: ClusterSize) -> ClusterSize:
    """Report a machine type the cloud would refuse, at the block."""
    size = ClusterSize.of(config.settings, defaults)
    where = f'in provider "{config.kind}"'
    for name, value, shape in (("node_type", size.node_type, node), ("gpu_node_type", size.gpu_node_type, gpu)):
        if not shape.pattern.match(value):
            diags.error(f'cluster.{name} "{value}" is not a valid {config.kind} machine type', config.pos,
                        f"The {config.kind} provider makes its node pools of this type.",
                        f'Use e.g. {name} = "{shape.example}"', where)
    if size.max_nodes < 1:
        diags.error(f"cluster.max_nodes is {size.max_nodes}", config.pos, "A cluster needs at least one node.",
                    "Set max_nodes = 1 or more", where)
    namespace = str(config.settings.get("namespace") or "default")
    if not DNS_LABEL.match(namespace) or len(namespace) > 63:
        diags.error(f'The namespace "{namespace}" is not a Kubernetes namespace name', config.pos,
                    "A namespace name is at most 63 lower-case letters, digits and '-'.",
                    'Use e.g. namespace = "ml"', where)
    from mlp_kubernetes.settings import check_workloads

    check_workloads(config, diags, where)  # what the Kubernetes layer would refuse of the hand-over
    return size
