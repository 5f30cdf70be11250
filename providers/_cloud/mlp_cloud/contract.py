"""The orchestration contract every cloud provider's tests run, through the recording seams.

A plugin's test module imports these tests (`from mlp_cloud.contract import *`) and its
conftest gives the `cloud` fixture, a `CloudCase`: the provider class, an app under it, and
the stack it expects. Everything goes through a `RecordingDriver` (what would be sent to
Pulumi) and a `RecordingKubeApi` (what would be sent to the cluster); the Pulumi CLI is the
machine's own (absent here) unless a test says it is there.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlp.config.blocks import App
from mlp.config.loader import load_app
from mlp.diagnostics import Diagnostics
from mlp.errors import UsageError
from mlp.plan.model import Action, Change, Plan, Reason
from mlp.providers import ApiDeployment, Endpoint, InfraChange
from mlp_cloud.driver import NEEDS_CLI, Operation, Program, PulumiError
from mlp_cloud.provider import CloudProvider, Seams
from mlp_cloud.recording import Call, RecordingDriver
from mlp_cloud.stack import StackRef
from mlp_cloud.testing import step_event, summary_event, urn
from mlp_kubernetes.recording import RecordingKubeApi
from mlp_kubernetes.runs import Clock

NOW = Clock(timeout=0.0, interval=0.0, sleep=lambda s: None)
KUBE_VERSION = "1.30"  # the Kubernetes minor version the manifests are validated against (as mlp_kubernetes' tests)
PULUMI = "/usr/local/bin/pulumi"


@dataclass(frozen=True)
class CloudCase:
    """One cloud's side of the contract."""

    provider: type[CloudProvider]
    app_dir: Path                       # examples/iris under the cloud's block and backend
    stack: StackRef                     # what the stack must be: name, backend URL, config
    cluster_type: str                   # the cluster's Pulumi type token
    pool_type: str                      # a node pool's
    bucket_type: str                    # the bucket's
    outputs: Mapping[str, str] = field(default_factory=dict)   # an up's outputs
    bad: Mapping[str, Any] = field(default_factory=dict)      # settings check refuses -> summary

    def app(self) -> App:
        app, diags = load_app(self.app_dir)
        assert app is not None and not diags.has_errors(), diags.items
        return app


def make(case: CloudCase, driver: RecordingDriver, api: RecordingKubeApi | None = None,
         cli: Callable[[], str | None] = lambda: PULUMI) -> CloudProvider:
    return case.provider(case.app().provider, case.app(), Seams(driver, api or RecordingKubeApi(), None, NOW, cli))


def fresh_plan(app_dir: Path, provider: str) -> Plan:
    from mlp.graph.analysis import analyse

    analysis, _ = analyse(app_dir)
    assert analysis is not None
    changes = tuple(Change(a, Action.CREATE, Reason.NEW, fingerprint_after=f.value)
                    for a, f in sorted(analysis.fingerprints.items()))
    return Plan("iris", str(app_dir), changes, "lineage", 0, provider)


def _kind(case: CloudCase) -> str:
    return case.provider.cloud.kind


# -- the stack -------------------------------------------------------------------------


def test_the_stack_is_named_for_the_app_and_kept_in_its_backend(cloud: CloudCase) -> None:
    driver = RecordingDriver(outputs=cloud.outputs)
    make(cloud, driver).provision()
    assert driver.calls == [Call(Operation.UP, cloud.stack.name, cloud.stack.backend_url, dict(cloud.stack.config))]
    assert cloud.stack.name == f"iris-{_kind(cloud)}"


def test_the_plugin_is_found_by_its_entry_point_and_checks_its_block(cloud: CloudCase) -> None:
    from mlp.providers import provider_for

    app = cloud.app()
    found = provider_for(app.provider, app)
    assert type(found) is cloud.provider and found.kind == _kind(cloud)
    diags = Diagnostics()
    found.check(app.provider, diags)
    assert diags.errors() == []


def test_a_bad_setting_is_an_error_at_the_block(cloud: CloudCase) -> None:
    from mlp.config.blocks import ProviderConfig

    base = cloud.app().provider
    for settings, summary in cloud.bad.items():
        config = ProviderConfig(base.kind, base.pos, {**base.settings, **json.loads(settings)})
        diags = Diagnostics()
        cloud.provider(config).check(config, diags)
        assert [(d.summary, str(d.pos)) for d in diags.errors()] == [(summary, str(base.pos))], settings


# -- plan ----------------------------------------------------------------------------------


def test_preview_lists_the_engine_steps_and_leaves_out_what_stays(cloud: CloudCase) -> None:
    stack, parent = cloud.stack.name, f"mlp:{_kind(cloud)}:Cluster"
    events = [
        step_event("same", urn(stack, "pulumi:pulumi:Stack", f"mlp-{stack}"), seq=1),
        step_event("create", urn(stack, cloud.cluster_type, "iris-cluster", parent), seq=2),
        step_event("update", urn(stack, cloud.pool_type, "iris-cpu", parent), diffs=("scaling", "labels"), seq=3),
        step_event("replace", urn(stack, cloud.bucket_type, "iris-data", parent), keys=("location",), seq=4),
        step_event("create-replacement", urn(stack, cloud.bucket_type, "iris-data", parent), seq=5),
        step_event("delete-replaced", urn(stack, cloud.bucket_type, "iris-data", parent), seq=6),
        step_event("delete", urn(stack, cloud.pool_type, "iris-gpu", parent), seq=7),
        step_event("same", urn(stack, cloud.pool_type, "iris-spare", parent), seq=8),
        summary_event(),
    ]
    driver = RecordingDriver(events)
    preview = make(cloud, driver).preview(fresh_plan(cloud.app_dir, _kind(cloud)))
    assert preview.changes == tuple(sorted([
        InfraChange(f"{cloud.cluster_type}::iris-cluster", "create", "new"),
        InfraChange(f"{cloud.pool_type}::iris-cpu", "update", "changed (labels, scaling)"),
        InfraChange(f"{cloud.bucket_type}::iris-data", "replace", "replace_needed (location)"),
        InfraChange(f"{cloud.pool_type}::iris-gpu", "delete", "removed"),
    ], key=lambda c: c.address))
    assert preview.note == ""
    assert [c.operation for c in driver.calls] == [Operation.PREVIEW, Operation.OUTPUTS]
    assert {(c.stack, c.backend_url) for c in driver.calls} == {(cloud.stack.name, cloud.stack.backend_url)}


def test_preview_of_an_applied_stack_adds_the_kubernetes_objects(cloud: CloudCase) -> None:
    driver = RecordingDriver([], cloud.outputs, exists=True)
    preview = make(cloud, driver).preview(fresh_plan(cloud.app_dir, _kind(cloud)))
    assert preview.changes[:2] == (InfraChange("ServiceAccount/default/iris-workload", "create", "new"),
                                   InfraChange("ConfigMap/default/iris-data-iris", "create", "new"))
    assert ("Job/default/iris-train-dnn", "create") in [(c.address, c.action) for c in preview.changes]


def test_without_the_pulumi_cli_preview_says_how_to_install_it_and_calls_nothing(cloud: CloudCase) -> None:
    from mlp_cloud.driver import pulumi_cli

    assert pulumi_cli() is None, "these tests expect a machine without the Pulumi CLI"
    driver = RecordingDriver()
    provider = cloud.provider(cloud.app().provider, cloud.app(), Seams(driver, RecordingKubeApi(), clock=NOW))
    preview = provider.preview(fresh_plan(cloud.app_dir, _kind(cloud)))
    assert preview.changes == () and preview.note == NEEDS_CLI
    assert "curl -fsSL https://get.pulumi.com | sh" in preview.note
    assert driver.calls == []


def test_a_failed_preview_is_a_note_not_a_failed_plan(cloud: CloudCase) -> None:
    class Refusing(RecordingDriver):
        def preview(self, stack: StackRef, program: Program) -> tuple[Any, ...]:
            raise PulumiError("Pulumi's preview of the stack failed", "error: no credentials")

    preview = make(cloud, Refusing()).preview(fresh_plan(cloud.app_dir, _kind(cloud)))
    assert preview.changes == ()
    assert preview.note == (f"The {_kind(cloud)} infrastructure is not previewed: Pulumi's preview of the stack "
                            "failed. error: no credentials")


# -- apply -----------------------------------------------------------------------------------


def test_apply_runs_up_then_hands_the_outputs_to_the_kubernetes_layer(cloud: CloudCase) -> None:
    driver, api = RecordingDriver(outputs=cloud.outputs), RecordingKubeApi()
    provisioned = make(cloud, driver, api).provision()
    assert driver.operations == [Operation.UP]
    assert [str(c) for c in api.writes()] == ["create ServiceAccount/iris-workload"]
    path = cloud.app_dir / ".mlp" / _kind(cloud) / "kubeconfig"
    assert path.read_text() == cloud.outputs["kubeconfig"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dict(provisioned.outputs) == {**{k: v for k, v in cloud.outputs.items() if k != "kubeconfig" and v},
                                         "kubeconfig": str(path)}


def test_the_workloads_run_the_registry_image_in_the_stack_namespace(cloud: CloudCase) -> None:
    provider = make(cloud, RecordingDriver(outputs=cloud.outputs))
    provider.provision()
    settings = provider.kube.settings
    assert settings.image == f"{cloud.outputs['registry']}/mlp-runtime:0.1.0"
    assert (settings.namespace, settings.context) == ("default", cloud.outputs["context"])
    assert dict(settings.gpu_pool.node_selector) == {"nvidia.com/gpu.present": "true"}
    assert settings.kubeconfig == str(cloud.app_dir / ".mlp" / _kind(cloud) / "kubeconfig")


def test_an_api_is_deployed_by_the_kubernetes_layer_on_the_stack_cluster(cloud: CloudCase) -> None:
    api = RecordingKubeApi()
    provider = make(cloud, RecordingDriver(outputs=cloud.outputs, exists=True), api)
    endpoint = provider.deploy_api(ApiDeployment("api.iris", "model.dnn", "ab" * 32, "/nowhere", 1, None, "",
                                                 4194304), None)
    assert endpoint.url == "http://iris-api-iris.default.svc.cluster.local:80"
    assert "create Deployment/iris-api-iris" in [str(c) for c in api.writes()]


def test_without_the_pulumi_cli_apply_stops_before_touching_anything(cloud: CloudCase) -> None:
    driver, api = RecordingDriver(outputs=cloud.outputs), RecordingKubeApi()
    provider = cloud.provider(cloud.app().provider, cloud.app(), Seams(driver, api, clock=NOW))
    with pytest.raises(UsageError) as err:
        provider.provision()
    assert err.value.summary == f"The {_kind(cloud)} provider cannot apply without the Pulumi CLI"
    assert err.value.hint.startswith("Install it: curl -fsSL https://get.pulumi.com | sh")
    with pytest.raises(UsageError):
        provider.teardown()
    assert driver.calls == [] and api.calls == []
    assert not (cloud.app_dir / ".mlp" / _kind(cloud)).exists()


def test_a_stack_never_applied_has_no_cluster_to_run_on(cloud: CloudCase) -> None:
    provider = make(cloud, RecordingDriver(outputs=cloud.outputs))
    with pytest.raises(UsageError) as err:
        provider.stop_api(Endpoint("http://x", 80, 0, "model.dnn", ""), "")
    assert err.value.summary == f"The {_kind(cloud)} stack iris-{_kind(cloud)} has no cluster yet"


def test_a_local_backend_stops_apply_before_up(cloud: CloudCase) -> None:
    import re

    hcl = cloud.app_dir / "app.hcl"
    hcl.write_text(re.sub(r'backend "[a-z0-9]+" \{[^}]*\}', "", hcl.read_text()))
    driver = RecordingDriver(outputs=cloud.outputs)
    provider = make(cloud, driver)
    assert provider.stack(cloud.app()).backend_url == f"file://{cloud.app_dir.resolve()}/.mlp/pulumi"
    with pytest.raises(UsageError) as err:
        provider.provision()
    assert err.value.summary == f"The {_kind(cloud)} provider needs a remote backend"
    assert driver.calls == []


def test_a_provider_made_from_its_block_alone_says_it_needs_the_app(cloud: CloudCase) -> None:
    driver = RecordingDriver()
    provider = cloud.provider(cloud.app().provider, None, Seams(driver, RecordingKubeApi(), clock=NOW,
                                                                pulumi_cli=lambda: PULUMI))
    with pytest.raises(UsageError) as err:
        provider.teardown()
    assert err.value.summary == f"The {_kind(cloud)} provider cannot tear down without its app"
    assert driver.calls == []


# -- destroy ---------------------------------------------------------------------------------


def test_destroy_removes_the_workloads_then_the_stack(cloud: CloudCase) -> None:
    api = RecordingKubeApi()
    seen: list[list[str]] = []

    class Watching(RecordingDriver):
        def destroy(self, stack: StackRef, program: Program) -> None:
            seen.append([str(c) for c in api.writes()])
            super().destroy(stack, program)

    driver = Watching(outputs=cloud.outputs)
    provider = make(cloud, driver, api)
    provider.provision()
    provider.teardown()
    assert driver.operations == [Operation.UP, Operation.OUTPUTS, Operation.DESTROY]
    assert seen == [["create ServiceAccount/iris-workload", "delete_by_label ServiceAccount/app.kubernetes.io/managed-by=mlp,mlp.dev/app=iris"]]
    assert not (cloud.app_dir / ".mlp" / _kind(cloud) / "kubeconfig").exists()


def test_destroy_of_a_stack_without_a_cluster_only_destroys_the_stack(cloud: CloudCase) -> None:
    driver, api = RecordingDriver(), RecordingKubeApi()
    make(cloud, driver, api).teardown()
    assert driver.operations == [Operation.OUTPUTS, Operation.DESTROY]
    assert api.calls == []


# -- the workloads on this cloud's cluster -----------------------------------------------


def test_the_workloads_manifests_on_this_cloud_pass_the_schemas_and_carry_its_identity(cloud: CloudCase,
                                                                                       tmp_path: Path) -> None:
    """Every object the Kubernetes layer renders for the app on this cloud's cluster, with what
    the hand-over gives it, is valid for the pinned Kubernetes version (strict: no unknown
    field), and the workloads' account names the stack's identity."""
    import kubernetes_validate

    from mlp.graph.analysis import analyse
    from mlp_cloud.handoff import ClusterOutputs, kube_block
    from mlp_kubernetes.appspec import app_spec
    from mlp_kubernetes.manifests import render_manifests
    from mlp_kubernetes.settings import KubeSettings

    analysis, _ = analyse(cloud.app_dir)
    assert analysis is not None
    out = ClusterOutputs.of(cloud.outputs)
    assert out is not None
    block = kube_block(analysis.app.provider, out, tmp_path / "kubeconfig")
    fingerprints = {a: f.value for a, f in analysis.fingerprints.items()}
    manifests = render_manifests(app_spec(analysis.app, fingerprints, KubeSettings.from_settings(block.settings)))
    assert {m.kind.value for m in manifests} >= {"ServiceAccount", "Deployment", "Service"}
    for m in manifests:
        kubernetes_validate.validate(dict(m.doc), KUBE_VERSION, strict=True)
    [account] = [m.doc for m in manifests if m.kind.value == "ServiceAccount" and m.name == "iris-workload"]
    assert account["metadata"]["annotations"][out.identity_annotation] == out.identity
    for m in manifests:
        pod = m.doc.get("spec", {}).get("template", {}).get("metadata", {})
        if pod:
            assert dict(block.settings.get("pod_labels", {})).items() <= pod.get("labels", {}).items(), m.name
            assert pod["labels"]["mlp.dev/app"] == "iris", m.name


def test_leaving_this_cloud_names_what_its_stack_still_holds_and_how_to_destroy_it(cloud: CloudCase) -> None:
    from mlp.providers import leftovers

    app = cloud.app()
    note = leftovers(_kind(cloud), app)  # as the plan asks when the state's provider was this cloud
    assert note.startswith(f'The {_kind(cloud)} stack "{cloud.stack.name}" still holds the cluster')
    assert f"pulumi login '{cloud.stack.backend_url}'" in note
    assert f"pulumi destroy --stack {cloud.stack.name} --cwd .mlp/{_kind(cloud)}/workspace" in note
    from mlp.state.moves import BackendSpec

    old = BackendSpec("local", {"path": ".mlp"})  # the stack's state went with the old backend
    assert f"pulumi login 'file://{(cloud.app_dir / '.mlp').resolve()}/pulumi'" in leftovers(_kind(cloud), app, old)
