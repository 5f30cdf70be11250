"""The orchestration, replayed through the recording seam: what each apply asks the cluster."""

from __future__ import annotations

from typing import Any

from k8s_support import FP, FP2, churn_api, churn_model, shop
from mlp_kubernetes.cluster import Desired, Step, Why, apply_manifests, destroy
from mlp_kubernetes.manifest import Kind, ObjectRef
from mlp_kubernetes.manifests import render_manifests
from mlp_kubernetes.recording import RecordingKubeApi
from mlp_kubernetes.specs import AppSpec

API_SELECTOR = "app.kubernetes.io/managed-by=mlp,mlp.dev/app=shop,mlp.dev/block=api.churn"
APP_SELECTOR = "app.kubernetes.io/managed-by=mlp,mlp.dev/app=shop"


def desired(spec: AppSpec) -> Desired:
    return Desired.app(spec, render_manifests(spec))


def applied(api: RecordingKubeApi, spec: AppSpec) -> list[str]:
    """The writes one apply of `spec` makes."""
    before = len(api.writes())
    apply_manifests(desired(spec), api)
    return [str(c) for c in api.writes()[before:]]


def test_the_first_apply_creates_everything_in_order() -> None:
    api = RecordingKubeApi()
    assert applied(api, shop((churn_model(),), (churn_api(),))) == [
        "create ServiceAccount/shop-workload",
        "create ConfigMap/shop-data-orders",
        "create Service/shop-api-churn",
        "create Deployment/shop-api-churn",
        "create HorizontalPodAutoscaler/shop-api-churn",
        "create Job/shop-data-orders",
        "create Job/shop-train-churn",
    ]


def test_an_apply_of_what_is_there_writes_nothing() -> None:
    api = RecordingKubeApi()
    spec = shop((churn_model(),), (churn_api(),))
    applied(api, spec)
    assert applied(api, spec) == []


def test_a_new_model_is_a_rolling_update_of_the_deployment_with_no_unavailable_replica() -> None:
    api = RecordingKubeApi()
    applied(api, shop((churn_model(),), (churn_api(FP),)))
    changes = apply_manifests(desired(shop((churn_model(),), (churn_api(FP2),))), api)
    assert [(str(c.ref), c.step, c.why, c.detail) for c in changes] == [
        ("Deployment/shop-api-churn", Step.UPDATE, Why.MODEL_CHANGED, f"model {FP2[:12]}")]
    [patch] = [c for c in api.writes() if c.verb == "patch"]
    assert patch.doc is not None
    spec: dict[str, Any] = dict(patch.doc["spec"])
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["template"]["metadata"]["annotations"]["mlp.dev/model-fingerprint"] == FP2
    assert patch.doc["spec"]["template"]["spec"]["initContainers"][0]["command"][-2] == \
        f"artifacts/{FP2[:2]}/{FP2}/bundle/"


def test_a_job_whose_pod_template_changed_is_deleted_and_created_again() -> None:
    api = RecordingKubeApi()
    applied(api, shop((churn_model(cpu=1),)))
    assert applied(api, shop((churn_model(cpu=4),))) == ["delete Job/shop-train-churn", "create Job/shop-train-churn"]


def test_a_removed_api_is_deleted_by_its_labels() -> None:
    api = RecordingKubeApi()
    applied(api, shop((churn_model(),), (churn_api(),)))
    assert applied(api, shop((churn_model(),))) == [
        f"delete_by_label HorizontalPodAutoscaler/{API_SELECTOR}",
        f"delete_by_label Deployment/{API_SELECTOR}",
        f"delete_by_label Service/{API_SELECTOR}",
    ]
    assert sorted((r.kind for r in api.objects), key=lambda k: k.order) == [Kind.SERVICE_ACCOUNT, Kind.CONFIG_MAP, Kind.JOB, Kind.JOB]


def test_the_last_run_of_a_block_that_is_still_there_stays() -> None:
    api = RecordingKubeApi()
    spec = shop((churn_model(),))
    applied(api, spec)
    without_jobs = Desired.app(spec, [m for m in render_manifests(spec) if m.kind is not Kind.JOB])
    assert apply_manifests(without_jobs, api) == ()


def foreign(kind: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    version = {"Deployment": "apps/v1", "ConfigMap": "v1"}[kind]
    return {"apiVersion": version, "kind": kind, "metadata": {"name": name, "namespace": "ml", "labels": labels}}


def test_destroy_deletes_by_label_only_what_mlp_made_for_this_app() -> None:
    api = RecordingKubeApi()
    applied(api, shop((churn_model(),), (churn_api(),)))
    theirs = api.seed(foreign("Deployment", "shop-api-churn-copy", {"mlp.dev/app": "shop"}))  # not managed by mlp
    other = api.seed(foreign("ConfigMap", "other-data", {"app.kubernetes.io/managed-by": "mlp", "mlp.dev/app": "other"}))
    elsewhere = api.seed({**foreign("ConfigMap", "shop-data-orders", {}), "metadata": {
        "name": "shop-data-orders", "namespace": "prod", "labels": {"app.kubernetes.io/managed-by": "mlp",
                                                                    "mlp.dev/app": "shop"}}})
    before = len(api.writes())
    gone = destroy(shop(), api)
    assert [str(c) for c in api.writes()[before:]] == [
        f"delete_by_label Job/{APP_SELECTOR}",
        f"delete_by_label HorizontalPodAutoscaler/{APP_SELECTOR}",
        f"delete_by_label Deployment/{APP_SELECTOR}",
        f"delete_by_label Service/{APP_SELECTOR}",
        f"delete_by_label ConfigMap/{APP_SELECTOR}",
        f"delete_by_label ServiceAccount/{APP_SELECTOR}",
    ]
    assert len(gone) == 7
    assert set(api.objects) == {theirs, other, elsewhere}


def test_every_object_the_seam_was_given_carries_mlps_labels() -> None:
    api = RecordingKubeApi()
    applied(api, shop((churn_model(gpu=1),), (churn_api(replicas={"min": 2, "max": 5}),), executors=2,
                      cache_claim="c"))
    assert len(api.objects) == 10
    for ref, doc in api.objects.items():
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "mlp" and labels["mlp.dev/app"] == "shop", ref
        template = doc.get("spec", {}).get("template")
        if template is not None:
            assert template["metadata"]["labels"]["mlp.dev/block"] == labels["mlp.dev/block"], ref


def test_the_recording_cluster_rolls_a_deployment_out_to_the_autoscalers_minimum() -> None:
    api = RecordingKubeApi()
    applied(api, shop(apis=(churn_api(replicas={"min": 3, "max": 6}),)))
    seen = api.read(ObjectRef.of(Kind.DEPLOYMENT, "ml", "shop-api-churn"))
    assert seen is not None and seen.deployment is not None
    assert (seen.deployment.rolled_out, seen.deployment.available, seen.deployment.model_fingerprint) == (True, 3, FP)
