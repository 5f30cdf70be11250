"""The `provider "kubernetes"` block, read once into `KubeSettings`, and its checks.

The block's schema (`mlp.config.schema.PROVIDERS["kubernetes"]`) decides what a user may
write. Every setting here is read when the block has it and otherwise takes the default
below, so the schema can grow without this module changing (`docs/kubernetes.md` lists
them). `service_account_annotations` and `pod_labels` come from the block, and from the cloud
providers' hand-over (`mlp_cloud.handoff`), which adds what ties the workloads to a cloud identity.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from mlp_kubernetes.metadata import MetaKind, problems, string_map
from mlp_kubernetes.quantity import Memory, parse_memory

if TYPE_CHECKING:
    from mlp.config.blocks import ProviderConfig
    from mlp.diagnostics import Diagnostics

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# [registry[:port]/]path[:tag][@sha256:digest], the path in lower case
IMAGE_REF = re.compile(r"^([a-zA-Z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._/-][a-z0-9]+)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
                       r"(@sha256:[0-9a-f]{64})?$")
GPU_RESOURCE = "nvidia.com/gpu"
CONTEXT = 'in provider "kubernetes"'
ANNOTATIONS = "service_account_annotations"
POD_LABELS = "pod_labels"


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    LOAD_BALANCER = "LoadBalancer"


def default_image() -> str:
    """The image `runtime/Dockerfile` tags by default (docs/kubernetes.md)."""
    from mlp import __version__

    return f"mlp-runtime:{__version__}"


@dataclass(frozen=True)
class Pool:
    """Where GPU workloads go: the node labels they select, and the taint they tolerate."""

    node_selector: Mapping[str, str] = field(default_factory=lambda: {"nvidia.com/gpu.present": "true"})
    taint: str = GPU_RESOURCE


@dataclass(frozen=True)
class KubeSettings:
    """A provider block's settings with every default filled in.

    `executors` = 0 runs each data unit's Spark inside its driver pod (`local[N]`, N its
    cores); more starts that many executor pods, which needs `cache_claim`: a
    ReadWriteMany claim the driver and its executors share, because the data engine
    writes tables into the artifact cache's folders before they go to the bucket.
    """

    kubeconfig: str = ""
    context: str = ""
    namespace: str = "default"
    image: str = ""
    parallelism: int = 2
    service_type: ServiceType = ServiceType.CLUSTER_IP
    executors: int = 0
    executor_cores: int = 1
    executor_memory: Memory = field(default_factory=lambda: parse_memory("2Gi"))
    cache_claim: str = ""
    driver_cpu: float = 2.0
    driver_memory: Memory = field(default_factory=lambda: parse_memory("4Gi"))
    api_cpu: float = 0.5
    api_memory: Memory = field(default_factory=lambda: parse_memory("1Gi"))
    train_cpu: float = 1.0
    train_memory: Memory = field(default_factory=lambda: parse_memory("2Gi"))
    gpu_pool: Pool = field(default_factory=Pool)
    job_ttl_seconds: int = 86400
    service_account_annotations: Mapping[str, str] = field(default_factory=dict)  # on <app>-workload
    pod_labels: Mapping[str, str] = field(default_factory=dict)  # on every pod, beside mlp's own

    @property
    def runtime_image(self) -> str:
        return self.image or default_image()

    @classmethod
    def from_settings(cls, s: Mapping[str, Any]) -> KubeSettings:
        """The settings of a provider block; a value that does not parse raises ValueError
        (`check` reports it first, at the block)."""
        base = cls()
        pool = s.get("gpu_node_selector")
        return cls(
            kubeconfig=str(s.get("kubeconfig") or ""), context=str(s.get("context") or ""),
            namespace=str(s.get("namespace") or base.namespace), image=str(s.get("image") or ""),
            parallelism=int(s.get("parallelism") or base.parallelism),
            service_type=ServiceType(s.get("service_type") or base.service_type),
            executors=int(s.get("executors") or 0), executor_cores=int(s.get("executor_cores") or 1),
            executor_memory=_memory(s, "executor_memory", base.executor_memory),
            cache_claim=str(s.get("cache_claim") or ""),
            driver_cpu=float(s.get("driver_cpu") or base.driver_cpu),
            driver_memory=_memory(s, "driver_memory", base.driver_memory),
            api_cpu=float(s.get("api_cpu") or base.api_cpu), api_memory=_memory(s, "api_memory", base.api_memory),
            train_cpu=base.train_cpu, train_memory=base.train_memory,
            gpu_pool=Pool({str(k): str(v) for k, v in pool.items()}) if isinstance(pool, Mapping) else base.gpu_pool,
            job_ttl_seconds=int(s.get("job_ttl_seconds") or base.job_ttl_seconds),
            service_account_annotations=string_map(ANNOTATIONS, s.get(ANNOTATIONS), MetaKind.ANNOTATION),
            pod_labels=string_map(POD_LABELS, s.get(POD_LABELS), MetaKind.LABEL))


def _memory(s: Mapping[str, Any], name: str, default: Memory) -> Memory:
    value = s.get(name)
    return parse_memory(str(value)) if value else default


def check_workloads(config: ProviderConfig, diags: Diagnostics, where: str) -> None:
    """The checks a cloud block's hand-over settings share with this block's: the metadata maps,
    and executors with no shared cache claim."""
    s = config.settings
    for setting, kind in ((ANNOTATIONS, MetaKind.ANNOTATION), (POD_LABELS, MetaKind.LABEL)):
        for p in problems(setting, s.get(setting), kind):
            diags.error(p.summary, config.pos, p.detail, p.fix, where)
    if int(s.get("executors") or 0) > 0 and not s.get("cache_claim"):
        diags.error("Spark executors need a shared cache_claim", config.pos,
                    "The data engine writes each table into the artifact cache's folder, which the driver "
                    "and every executor must see.",
                    "Set cache_claim to a ReadWriteMany PersistentVolumeClaim, or executors = 0", where)


def check_settings(config: ProviderConfig, diags: Diagnostics) -> KubeSettings | None:
    """Report what is wrong with the block at its position; the settings when nothing is."""
    before = len(diags.errors())
    s = config.settings
    namespace = str(s.get("namespace") or "default")
    if not DNS_LABEL.match(namespace) or len(namespace) > 63:
        diags.error(f'The namespace "{namespace}" is not a Kubernetes namespace name', config.pos,
                    "A namespace name is at most 63 lower-case letters, digits and '-', starting and ending "
                    "with a letter or digit.", 'Use e.g. namespace = "ml-apps"', CONTEXT)
    image = str(s.get("image") or "")
    if image and not IMAGE_REF.match(image):
        diags.error(f'The image "{image}" is not an image reference', config.pos,
                    "An image is [REGISTRY/]PATH[:TAG][@sha256:DIGEST], the path in lower case.",
                    'Use e.g. image = "registry.example.com/ml/mlp-runtime:0.1.0"', CONTEXT)
    elif not image:
        diags.warning(f'No image set: the workloads run "{default_image()}"', config.pos,
                      "Build it from runtime/Dockerfile and push it where the cluster pulls images from "
                      "(docs/kubernetes.md).", 'Set image = "REGISTRY/mlp-runtime:TAG"', CONTEXT)
    _check_extras(config, diags)
    if len(diags.errors()) > before:
        return None
    return KubeSettings.from_settings(s)


def _check_extras(config: ProviderConfig, diags: Diagnostics) -> None:
    """The settings beyond the schema's, when a block has them."""
    s = config.settings
    kind = s.get("service_type")
    if kind is not None and kind not in tuple(ServiceType):
        diags.error(f'service_type "{kind}" is not one mlp makes', config.pos,
                    "An api's Service is a ClusterIP (reached inside the cluster) or a LoadBalancer.",
                    'Use service_type = "ClusterIP" or "LoadBalancer"', CONTEXT)
    for name in ("executor_memory", "driver_memory", "api_memory"):
        try:
            _memory(s, name, parse_memory("1Gi"))
        except ValueError as e:
            diags.error(f"{name}: {e}", config.pos, "", 'Use a size like "2Gi"', CONTEXT)
    check_workloads(config, diags, CONTEXT)
