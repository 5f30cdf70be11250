"""Every manifest of an app, from its `AppSpec`: the service accounts, then per source its
Spark driver Job, per model its training Job, per api its Deployment, Service and autoscaler.

    render_manifests(spec) -> tuple[Manifest, ...]     sorted by kind (creation order), then name

Each kind's builder is its own module: `rbac`, `datajob`, `runjob`, `serving`.
"""

from __future__ import annotations

from mlp.errors import UsageError
from mlp_kubernetes.datajob import data_manifests
from mlp_kubernetes.manifest import Manifest
from mlp_kubernetes.rbac import rbac
from mlp_kubernetes.runjob import run_manifest, training_run
from mlp_kubernetes.serving import api_manifests
from mlp_kubernetes.specs import AppSpec


def render_manifests(spec: AppSpec) -> tuple[Manifest, ...]:
    out = rbac(spec)
    for unit in spec.data:
        out += data_manifests(spec, unit)
    for training in spec.models:
        out.append(run_manifest(spec, training_run(training)))
    for api in spec.apis:
        out += api_manifests(spec, api)
    names = [m.ref for m in out]
    if len(set(names)) != len(names):
        dup = sorted({str(r) for r in names if names.count(r) > 1})
        raise UsageError(f"Two of the app's Kubernetes objects would have one name: {', '.join(dup)}",
                         "Object names are made from the app's and the blocks' names.",
                         "Rename one of the blocks")
    return tuple(sorted(out, key=lambda m: m.ref))
