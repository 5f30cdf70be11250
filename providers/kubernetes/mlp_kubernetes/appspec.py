"""An analysed app's blocks as the `AppSpec` the manifests are rendered from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mlp.config import blocks as B
from mlp.graph.address import Address
from mlp_kubernetes.quantity import parse_memory
from mlp_kubernetes.settings import KubeSettings
from mlp_kubernetes.specs import AppSpec, DataUnit, ModelColumn, Replicas, Resources, Serving, Training
from mlp_kubernetes.storage import Storage

DEFAULT_SERVICE_PORT = 80


def app_spec(app: B.App, fingerprints: Mapping[Address, str], settings: KubeSettings) -> AppSpec:
    """The workloads of `app`; `fingerprints` are the blocks' (an api serves its model's)."""
    apis = [serving(address, block, fingerprints[block.model]) for address, block in sorted(app.blocks.items())
            if isinstance(block, B.Api) and block.model is not None]
    return replace(jobs_spec(app, settings), apis=tuple(apis))


def jobs_spec(app: B.App, settings: KubeSettings) -> AppSpec:
    """The app's data units and trainings, without its apis (whose models are known only once
    planned or built)."""
    data, models, columns = [], [], []
    for address, block in sorted(app.blocks.items()):
        if isinstance(block, B.Source):
            data.append(DataUnit(str(address), address.name))
        elif isinstance(block, B.Model):
            models.append(Training(str(address), address.name, resources(block.compute, settings)))
        elif isinstance(block, B.TransformedColumn) and block.model is not None:
            columns.append(ModelColumn(str(address), address.name, str(block.model)))
    return AppSpec(app.name, settings, Storage.of(app.backend), tuple(data), tuple(models), (),
                   tuple(columns))


def serving(address: Address, api: B.Api, model_fingerprint: str) -> Serving:
    return Serving(str(address), address.name, str(api.model), model_fingerprint, Replicas.of(api.replicas),
                   api.port or DEFAULT_SERVICE_PORT, api.max_body_bytes)


def resources(compute: Mapping[str, Any], settings: KubeSettings) -> Resources:
    """A model's `compute { cpu, memory, gpu }`, the provider's defaults for what it leaves out."""
    memory = compute.get("memory")
    return Resources(float(compute.get("cpu") or settings.train_cpu),
                     parse_memory(str(memory)) if memory else settings.train_memory,
                     int(compute.get("gpu") or 0))
