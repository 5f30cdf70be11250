"""What the manifests are rendered from: an app's workloads as typed values.

`AppSpec` holds one `DataUnit` per source, one `Training` per model, one `Serving` per
api and one `ModelColumn` per transformed column of a model, sorted by address, with the provider's settings and the bucket. `mlp_kubernetes.appspec`
makes one from an analysed app; the manifest builders read nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlp_kubernetes.names import dns_name
from mlp_kubernetes.quantity import Memory, cpu
from mlp_kubernetes.settings import GPU_RESOURCE, KubeSettings
from mlp_kubernetes.storage import Storage


@dataclass(frozen=True)
class Resources:
    """A container's size. Requests equal limits for memory (no overcommit of a job that
    may be killed for it) and for GPUs (Kubernetes wants them equal); CPU is requested only,
    so an idle node's spare cores speed a job up."""

    cpu: float
    memory: Memory
    gpu: int = 0

    def to_doc(self) -> dict[str, Any]:
        requests: dict[str, Any] = {"cpu": cpu(self.cpu), "memory": self.memory.text}
        limits: dict[str, Any] = {"memory": self.memory.text}
        if self.gpu:
            requests[GPU_RESOURCE] = self.gpu
            limits[GPU_RESOURCE] = self.gpu
        return {"requests": requests, "limits": limits}


@dataclass(frozen=True)
class Replicas:
    """An api's replicas: a number is min = max; `{ min, max }` lets the autoscaler choose."""

    min: int
    max: int

    @classmethod
    def of(cls, value: int | Mapping[str, int]) -> Replicas:
        if isinstance(value, Mapping):
            return cls(int(value["min"]), int(value["max"]))
        return cls(int(value), int(value))


@dataclass(frozen=True)
class DataUnit:
    """One source's data unit: its ingest, aggregates and transformed columns, in Spark."""

    source: str            # "source.iris"
    name: str              # the source block's name

    @property
    def unit(self) -> str:
        return f"data:{self.source}"


@dataclass(frozen=True)
class Training:
    """One model's training job."""

    model: str             # "model.dnn"
    name: str
    resources: Resources


@dataclass(frozen=True)
class ModelColumn:
    """A transformed column of a model's predictions: its run is a Job of its own."""

    column: str            # "transformed_column.predicted"
    name: str
    model: str             # "model.dnn"


@dataclass(frozen=True)
class Serving:
    """One api: the model it serves (the fingerprint decides the bundle) and its shape."""

    api: str               # "api.iris"
    name: str
    model: str             # "model.dnn"
    model_fingerprint: str
    replicas: Replicas
    port: int              # the Service's port
    max_body_bytes: int


@dataclass(frozen=True)
class AppSpec:
    """An app's workloads. Invariant: `data`, `models`, `apis` and `columns` are sorted by
    address."""

    name: str
    settings: KubeSettings
    storage: Storage
    data: tuple[DataUnit, ...] = ()
    models: tuple[Training, ...] = ()
    apis: tuple[Serving, ...] = ()
    columns: tuple[ModelColumn, ...] = ()

    def training(self, model: str) -> Training | None:
        return next((t for t in self.models if t.model == model), None)

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    @property
    def image(self) -> str:
        return self.settings.runtime_image

    def object_name(self, role: str, block_name: str = "") -> str:
        """The name of an object of this app: "iris-train-dnn", "iris-jobs"."""
        return dns_name(self.name, role, block_name) if block_name else dns_name(self.name, role)
