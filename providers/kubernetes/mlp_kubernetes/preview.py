"""What apply would do to the cluster: the plan's Kubernetes objects against the live ones.

The desired objects are the app's manifests as the plan has it (its variables, its
fingerprints): the service accounts, the ConfigMaps and each api's objects always, and the
Job of each data unit and model that the plan runs. They are compared with what the cluster
holds under the app's labels (`mlp_kubernetes.cluster.changes`). A cluster that cannot be
read leaves the objects unpreviewed, with a note saying why and what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlp.errors import DiagnosticsError
from mlp.providers import InfraChange, Preview
from mlp_kubernetes.appspec import app_spec
from mlp_kubernetes.cluster import Desired, ObjectChange, Step, changes, observe
from mlp_kubernetes.errors import ClusterError
from mlp_kubernetes.manifest import Manifest
from mlp_kubernetes.manifests import render_manifests
from mlp_kubernetes.names import label_value

if TYPE_CHECKING:
    from mlp.graph.analysis import Analysis
    from mlp.plan.model import Plan
    from mlp_kubernetes.provider import KubernetesProvider

ACTIONS = {Step.CREATE: "create", Step.UPDATE: "update", Step.REPLACE: "replace", Step.DELETE: "delete"}


def preview(provider: KubernetesProvider, plan: Plan) -> Preview:
    from mlp.graph.analysis import analyse

    analysis, diags = analyse(Path(plan.app_dir), dict(plan.variables), plan.sample)
    if analysis is None:
        raise DiagnosticsError(diags)
    spec = app_spec(analysis.app, {a: f.value for a, f in analysis.fingerprints.items()}, provider.settings)
    running = _running_blocks(analysis, plan)
    desired = Desired.app(spec, (m for m in render_manifests(spec) if not m.kind.per_run or _runs(m, running)))
    try:
        live = observe(provider.api, desired.namespace, desired.scope)
    except ClusterError as e:
        return Preview((), f"The Kubernetes objects are not previewed: {e.summary}. Fix: {e.hint}")
    return Preview(tuple(infra_change(c) for c in changes(desired, live)))


def infra_change(c: ObjectChange) -> InfraChange:
    reason = c.why.value + (f" ({c.detail})" if c.detail else "")
    return InfraChange(f"{c.ref.kind.value}/{c.ref.namespace}/{c.ref.name}", ACTIONS[c.step], reason)


def _runs(m: Manifest, running: set[str]) -> bool:
    return label_value(m.owner.block) in running


def _running_blocks(analysis: Analysis, plan: Plan) -> set[str]:
    """The label values of the sources and models whose units the plan runs."""
    from mlp.engine.units import build_units

    units = build_units(analysis, {c.address for c in plan.changes if c.action.runs})
    return {label_value(u.name.partition(":")[2]) for u in units if u.kind in ("data", "model")}
