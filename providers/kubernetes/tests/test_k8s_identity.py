"""Workload identity: `service_account_annotations` on the `<app>-workload` account and
`pod_labels` on every pod template, checked at the block and valid for the pinned Kubernetes
version; and the cloud hand-over (`mlp_cloud.handoff.kube_block`) that sets them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from k8s_support import IMAGE, churn_api, churn_model, shop
from mlp.config.blocks import ProviderConfig
from mlp.diagnostics import Diagnostics, SourcePos
from mlp.errors import UsageError
from mlp_kubernetes.manifest import Kind
from mlp_kubernetes.manifests import render_manifests
from mlp_kubernetes.provider import KubernetesProvider
from mlp_kubernetes.settings import KubeSettings

Validate = Callable[[Mapping[str, Any]], None]
ROLE = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/iris-workload"}
TEAM = {"example.com/team": "ml", "azure.workload.identity/use": "true"}
MLP_LABELS = {"app.kubernetes.io/managed-by": "mlp", "mlp.dev/app": "shop"}


def pod_templates(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The pod templates of a Job or Deployment, and the executors' (a ConfigMap's file)."""
    if doc["kind"] in ("Job", "Deployment"):
        return [doc["spec"]["template"]]
    if doc["kind"] == "ConfigMap" and "executor.yaml" in doc["data"]:
        return [yaml.safe_load(doc["data"]["executor.yaml"])]
    return []


def test_both_accounts_carry_the_identity_annotation(validate: Validate) -> None:
    manifests = render_manifests(shop(service_account_annotations=ROLE, executors=2, cache_claim="c"))
    accounts = {m.name: dict(m.doc) for m in manifests if m.kind is Kind.SERVICE_ACCOUNT}
    for doc in accounts.values():
        validate(doc)
    for name in ("shop-workload", "shop-spark"):  # the Spark driver reads the bucket too: both are trusted
        notes = accounts[name]["metadata"]["annotations"]
        assert {k: notes[k] for k in (*ROLE, "mlp.dev/address")} == {**ROLE, "mlp.dev/address": "app"}, name


def test_every_pod_template_carries_the_pod_labels_beside_mlps(validate: Validate) -> None:
    spec = shop((churn_model(),), (churn_api(),), pod_labels=TEAM, executors=2, cache_claim="shop-cache")
    manifests = render_manifests(spec)
    templates = {(m.kind.value, m.name): pod_templates(m.doc) for m in manifests}
    assert sorted(k for k, t in templates.items() if t) == [
        ("ConfigMap", "shop-data-orders"), ("Deployment", "shop-api-churn"), ("Job", "shop-data-orders"),
        ("Job", "shop-train-churn")]
    for m in manifests:
        validate(m.doc)
        for template in pod_templates(m.doc):
            labels = template["metadata"]["labels"]
            assert {k: labels[k] for k in (*TEAM, *MLP_LABELS)} == {**TEAM, **MLP_LABELS}, m.name
        # the objects themselves keep mlp's labels only: the pods are what an identity selects
        assert set(m.doc["metadata"]["labels"]).isdisjoint(TEAM), m.name


def test_without_them_the_manifests_are_what_they_were() -> None:
    plain = render_manifests(shop((churn_model(),), (churn_api(),)))
    empty = render_manifests(shop((churn_model(),), (churn_api(),), pod_labels={}, service_account_annotations={}))
    assert [m.doc for m in plain] == [m.doc for m in empty]


def test_the_settings_are_read_from_the_block_as_maps_of_strings() -> None:
    s = KubeSettings.from_settings({"service_account_annotations": ROLE, "pod_labels": TEAM})
    assert (dict(s.service_account_annotations), dict(s.pod_labels)) == (ROLE, dict(sorted(TEAM.items())))


@pytest.mark.parametrize(("settings", "summary"), [
    ({"service_account_annotations": {"bad key!": "x"}},
     'service_account_annotations: "bad key!" is not a Kubernetes annotation key'),
    ({"service_account_annotations": {"Example.com/role": "x"}},
     'service_account_annotations: "Example.com/role" is not a Kubernetes annotation key'),
    ({"service_account_annotations": {"mlp.dev/digest": "x"}},
     'service_account_annotations: "mlp.dev/digest" is a key mlp or Kubernetes sets itself'),
    ({"service_account_annotations": "role"}, "service_account_annotations is a map of strings, not a str"),
    ({"pod_labels": {"example.com/team": "a b"}}, 'pod_labels: "a b" (of "example.com/team") is not a Kubernetes '
                                                  "label value"),
    ({"pod_labels": {"azure.workload.identity/use": True}},
     'pod_labels: the value of "azure.workload.identity/use" is a bool, not a string'),
    ({"pod_labels": {"mlp.dev/app": "other"}}, 'pod_labels: "mlp.dev/app" is a key mlp or Kubernetes sets itself'),
    ({"pod_labels": {"app.kubernetes.io/managed-by": "helm"}},
     'pod_labels: "app.kubernetes.io/managed-by" is a key mlp or Kubernetes sets itself'),
    ({"pod_labels": {"job-name": "x"}}, 'pod_labels: "job-name" is a key mlp or Kubernetes sets itself'),
    ({"pod_labels": {"x" * 64: "y"}}, f'pod_labels: "{"x" * 64}" is not a Kubernetes label key'),
], ids=["annotation key", "upper-case prefix", "mlp's annotation", "not a map", "label value", "not a string",
        "mlp's label", "managed-by", "the Job controller's label", "name too long"])
def test_a_bad_key_or_value_is_an_error_at_the_block(settings: dict[str, Any], summary: str) -> None:
    config = ProviderConfig("kubernetes", SourcePos("app.hcl", 8, 1), {"namespace": "ml", "image": IMAGE, **settings})
    diags = Diagnostics()
    KubernetesProvider(config).check(config, diags)
    assert [(d.summary, str(d.pos), d.context) for d in diags.errors()] == [
        (summary, "app.hcl:8:1", 'in provider "kubernetes"')]
    with pytest.raises(UsageError) as err:  # and a provider made from it refuses to work
        _ = KubernetesProvider(config).settings
    assert err.value.summary == f'The provider "kubernetes" block at app.hcl:8:1 is invalid: {summary}'


def test_a_bool_value_is_told_to_be_quoted_as_hcl_writes_it() -> None:
    config = ProviderConfig("kubernetes", SourcePos("app.hcl", 8, 1),
                            {"image": IMAGE, "pod_labels": {"azure.workload.identity/use": True}})
    diags = Diagnostics()
    KubernetesProvider(config).check(config, diags)
    assert [d.hint for d in diags.errors()] == ['Quote it: "azure.workload.identity/use" = "true"']


# -- the cloud hand-over ----------------------------------------------------------------------


def cluster_outputs(annotation: str, identity: str) -> Any:
    from mlp_cloud.handoff import ClusterOutputs

    return ClusterOutputs("c", "apiVersion: v1", "ctx", "bucket", "registry.example.com/ml", "ml", identity, annotation)


@pytest.mark.parametrize(("annotation", "identity", "labels"), [
    ("eks.amazonaws.com/role-arn", "arn:aws:iam::123456789012:role/iris", {}),
    ("iam.gke.io/gcp-service-account", "iris@proj.iam.gserviceaccount.com", {}),
    ("azure.workload.identity/client-id", "00000000-0000-0000-0000-000000000001",
     {"azure.workload.identity/use": "true"}),
], ids=["aws", "gcp", "azure"])
def test_the_hand_over_ties_the_workloads_to_the_clouds_identity(
        annotation: str, identity: str, labels: dict[str, str], tmp_path: Path, validate: Validate) -> None:
    from mlp_cloud.handoff import kube_block

    block = kube_block(ProviderConfig("aws", SourcePos("app.hcl", 3, 1), {}), cluster_outputs(annotation, identity),
                       tmp_path / "kubeconfig")
    diags = Diagnostics()
    KubernetesProvider(block).check(block, diags)
    assert diags.errors() == []
    settings = KubernetesProvider(block).settings
    assert (dict(settings.service_account_annotations), dict(settings.pod_labels)) == ({annotation: identity}, labels)
    spec = shop((churn_model(),), (churn_api(),), service_account_annotations=settings.service_account_annotations,
                pod_labels=settings.pod_labels)
    for m in render_manifests(spec):
        validate(m.doc)
        for template in pod_templates(m.doc):
            assert labels.items() <= template["metadata"]["labels"].items(), m.name
    [account] = [m for m in render_manifests(spec) if m.name == "shop-workload"]
    assert account.doc["metadata"]["annotations"][annotation] == identity


def test_the_azure_label_follows_the_annotation_the_azure_program_exports() -> None:
    from mlp_cloud.handoff import IDENTITY_POD_LABELS

    program = pytest.importorskip("mlp_azure.program")  # the azure plugin, when it is installed
    assert IDENTITY_POD_LABELS[program.WI_ANNOTATION] == {"azure.workload.identity/use": "true"}


def test_the_hand_over_keeps_a_blocks_own_entries_and_adds_the_identitys(tmp_path: Path) -> None:
    from mlp_cloud.handoff import kube_block

    own = {"pod_labels": {"example.com/team": "ml"}, "service_account_annotations": {"example.com/owner": "me"}}
    block = kube_block(ProviderConfig("azure", SourcePos("app.hcl", 3, 1), own),
                       cluster_outputs("azure.workload.identity/client-id", "id-1"), tmp_path / "kubeconfig")
    assert (block.settings["pod_labels"], block.settings["service_account_annotations"]) == (
        {"example.com/team": "ml", "azure.workload.identity/use": "true"},
        {"example.com/owner": "me", "azure.workload.identity/client-id": "id-1"})
    bare = kube_block(ProviderConfig("aws", SourcePos("app.hcl", 3, 1), {}), cluster_outputs("", ""),
                      tmp_path / "kubeconfig")
    assert {"pod_labels", "service_account_annotations"}.isdisjoint(bare.settings)
