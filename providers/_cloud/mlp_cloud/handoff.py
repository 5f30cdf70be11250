"""From a stack's outputs to the Kubernetes workload layer on the cluster it made.

Every cloud's program exports the same names (`OUTPUTS`); `ClusterOutputs` reads them.
The kubeconfig goes to `<app>/.mlp/<kind>/kubeconfig` (mode 600: on AKS it holds a client
certificate), never into mlp's state or a plan; what `provision` reports (`public`) is the
rest. The `KubernetesProvider` gets a `provider "kubernetes"` block made from these:

    kubeconfig, context   the file above and its one context
    namespace             the block's `namespace` ("default")
    image                 the block's `image`, else REGISTRY/mlp-runtime:VERSION
    gpu_node_selector     the label every cloud's GPU pool carries
    service_account_annotations   what ties the workloads' account to the cloud identity
    pod_labels            what the identity needs on the pods (Azure's `azure.workload.identity/use`)

and the block's other Kubernetes settings when it has them (`service_type`, `executors`...).
A block's own `service_account_annotations` and `pod_labels` are kept; the identity's entries
are added to them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlp.errors import UsageError

if TYPE_CHECKING:
    from mlp.config.blocks import App, ProviderConfig
    from mlp_cloud.provider import Seams
    from mlp_kubernetes.provider import KubernetesProvider

OUTPUTS = ("cluster", "kubeconfig", "context", "bucket", "registry", "namespace", "identity")
GPU_LABEL = {"nvidia.com/gpu.present": "true"}  # on every cloud's GPU pool, and its taint's key
GPU_TAINT = "nvidia.com/gpu"
# The pod labels a workload identity needs besides its service-account annotation, by that
# annotation (the clouds' programs export it as `identity_annotation`: mlp_azure.program's
# WI_ANNOTATION). Azure's webhook injects the identity's token only into pods labelled so;
# IRSA's and GKE's need the annotation alone.
IDENTITY_POD_LABELS: Mapping[str, Mapping[str, str]] = {
    "azure.workload.identity/client-id": {"azure.workload.identity/use": "true"},
}
# The block's Kubernetes settings passed on as they are (docs/kubernetes.md).
KUBE_SETTINGS = ("service_type", "executors", "executor_cores", "executor_memory", "cache_claim", "driver_cpu",
                 "driver_memory", "api_cpu", "api_memory", "job_ttl_seconds")


@dataclass(frozen=True)
class ClusterOutputs:
    cluster: str
    kubeconfig: str       # the file's text
    context: str
    bucket: str
    registry: str
    namespace: str
    identity: str         # the cloud identity the workloads' account stands for
    identity_annotation: str = ""   # the service-account annotation that says so

    @classmethod
    def of(cls, outputs: Mapping[str, str]) -> ClusterOutputs | None:
        """None when the stack has no cluster (never applied, or destroyed)."""
        if not outputs.get("kubeconfig"):
            return None
        def get(name: str) -> str:
            return str(outputs.get(name) or "")

        return cls(get("cluster"), get("kubeconfig"), get("context"), get("bucket"), get("registry"),
                   get("namespace"), get("identity"), get("identity_annotation"))

    def public(self, kubeconfig_path: Path) -> dict[str, str]:
        """What provision reports: every output but the kubeconfig's text."""
        out = {k: v for k, v in asdict(self).items() if k != "kubeconfig" and v}
        return {**out, "kubeconfig": str(kubeconfig_path)}

    def image(self) -> str:
        from mlp import __version__

        return f"{self.registry}/mlp-runtime:{__version__}"


def kubeconfig_path(app: App, kind: str) -> Path:
    return Path(app.dir) / ".mlp" / kind / "kubeconfig"


def write_kubeconfig(path: Path, text: str) -> Path:
    """The file, readable by this user only, replaced whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def kube_block(config: ProviderConfig, out: ClusterOutputs, path: Path) -> ProviderConfig:
    """The `provider "kubernetes"` block the workload layer runs with."""
    from mlp.config.blocks import ProviderConfig

    s = config.settings
    settings: dict[str, Any] = {
        "kubeconfig": str(path), "context": out.context, "namespace": out.namespace or "default",
        "image": str(s.get("image") or out.image()), "parallelism": int(s.get("parallelism") or 2),
        "gpu_node_selector": dict(GPU_LABEL)}
    settings |= {k: s[k] for k in KUBE_SETTINGS if s.get(k) is not None}
    settings |= identity_settings(s, out)
    return ProviderConfig("kubernetes", config.pos, settings)


def identity_settings(s: Mapping[str, Any], out: ClusterOutputs) -> dict[str, Any]:
    """`service_account_annotations` and `pod_labels`: the block's own (when it has them), with
    what the stack's workload identity needs added."""
    notes, labels = dict(s.get("service_account_annotations") or {}), dict(s.get("pod_labels") or {})
    if out.identity_annotation and out.identity:
        notes[out.identity_annotation] = out.identity
        labels |= IDENTITY_POD_LABELS.get(out.identity_annotation, {})
    return {k: v for k, v in (("service_account_annotations", notes), ("pod_labels", labels)) if v}


def kubernetes_provider(config: ProviderConfig, app: App, outputs: Mapping[str, str],
                        seams: Seams) -> KubernetesProvider:
    """The workload layer on the stack's cluster; a stack without one is an error saying so."""
    from mlp_kubernetes.provider import KubernetesProvider

    out = ClusterOutputs.of(outputs)
    if out is None:
        raise UsageError(f"The {config.kind} stack {app.name}-{config.kind} has no cluster yet",
                         "The workloads run on the cluster that apply makes; the stack has none (it was never "
                         "applied, or it was destroyed).", "Run mlp apply")
    path = write_kubeconfig(kubeconfig_path(app, config.kind), out.kubeconfig)
    return KubernetesProvider(kube_block(config, out, path), api=seams.kube_api, app=app, store=seams.store,
                              clock=seams.clock)
