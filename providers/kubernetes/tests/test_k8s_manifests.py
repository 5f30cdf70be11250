"""The manifests from typed specs: GPU training, autoscaling, executors and their rights,
label values and names. Every document built here is also validated against the schemas."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
import yaml

from k8s_support import IMAGE, churn_api, shop
from mlp_kubernetes.datajob import IN_CLUSTER_MASTER, executor_template, master
from mlp_kubernetes.manifest import Kind, Manifest
from mlp_kubernetes.manifests import render_manifests
from mlp_kubernetes.names import dns_name, label_value
from mlp_kubernetes.quantity import parse_memory
from mlp_kubernetes.settings import Pool, ServiceType
from mlp_kubernetes.specs import AppSpec, Replicas, Resources, Serving, Training

Validate = Callable[[Mapping[str, Any]], None]


def spec(models: tuple[Training, ...] = (), apis: tuple[Serving, ...] = (), **settings: Any) -> AppSpec:
    return shop(models, apis, **settings)


def api(replicas: Replicas = Replicas(1, 1)) -> Serving:
    return churn_api(replicas={"min": replicas.min, "max": replicas.max})


def one(manifests: tuple[Manifest, ...], kind: Kind, name: str = "") -> dict[str, Any]:
    [m] = [m for m in manifests if m.kind is kind and (not name or m.name == name)]
    return dict(m.doc)


def test_a_gpu_model_trains_on_the_gpu_pool_with_gpu_requests_and_limits(validate: Validate) -> None:
    gpu = Training("model.churn", "churn", Resources(4, parse_memory("16Gi"), gpu=2))
    job = one(render_manifests(spec((gpu,))), Kind.JOB, "shop-train-churn")
    validate(job)
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 2},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": 2}}
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_the_gpu_pool_is_the_providers_to_choose(validate: Validate) -> None:
    gpu = Training("model.churn", "churn", Resources(1, parse_memory("4Gi"), gpu=1))
    pool = Pool({"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}, "nvidia.com/gpu")
    pod = one(render_manifests(spec((gpu,), gpu_pool=pool)), Kind.JOB, "shop-train-churn")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}


def test_a_cpu_model_has_no_gpu_placement() -> None:
    cpu = Training("model.churn", "churn", Resources(0.5, parse_memory("512Mi")))
    pod = one(render_manifests(spec((cpu,))), Kind.JOB, "shop-train-churn")["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "500m", "memory": "512Mi"},
                                                 "limits": {"memory": "512Mi"}}
    assert pod["containers"][0]["command"][-4:] == ["python", "-m", "runtime.train", "/work/run/job.json"]


@pytest.mark.parametrize(("replicas", "bounds"), [
    (Replicas.of(3), (3, 3)),
    (Replicas.of({"min": 2, "max": 10}), (2, 10)),
], ids=["a number is min = max", "min and max"])
def test_the_autoscaler_comes_from_replicas(replicas: Replicas, bounds: tuple[int, int], validate: Validate) -> None:
    hpa = one(render_manifests(spec(apis=(api(replicas),))), Kind.HORIZONTAL_POD_AUTOSCALER)
    validate(hpa)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == bounds
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop-api-churn"}


@pytest.mark.parametrize("kind", list(ServiceType), ids=str)
def test_the_service_is_a_cluster_ip_or_a_load_balancer(kind: ServiceType, validate: Validate) -> None:
    service = one(render_manifests(spec(apis=(api(),), service_type=kind)), Kind.SERVICE)
    validate(service)
    assert service["spec"]["type"] == kind.value
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]


def test_without_executors_spark_runs_in_the_driver_pod_and_nothing_gets_rights() -> None:
    found = render_manifests(spec())
    assert [m.kind for m in found if m.kind in (Kind.ROLE, Kind.ROLE_BINDING)] == []
    assert master(spec()) == "local[2]"
    pod = one(found, Kind.JOB, "shop-data-orders")["spec"]["template"]["spec"]
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("shop-workload", False)


def test_executors_get_a_role_in_the_namespace_with_only_what_spark_needs(validate: Validate) -> None:
    s = spec(executors=3, executor_cores=2, executor_memory=parse_memory("4Gi"), cache_claim="shop-cache")
    found = render_manifests(s)
    for m in found:
        validate(m.doc)
    role = one(found, Kind.ROLE)
    assert role["metadata"]["namespace"] == "ml"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"],
         "verbs": ["create", "get", "list", "watch", "delete", "deletecollection"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "list", "delete", "deletecollection"]}]
    binding = one(found, Kind.ROLE_BINDING)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "shop-spark", "namespace": "ml"}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "shop-spark"}
    pod = one(found, Kind.JOB, "shop-data-orders")["spec"]["template"]["spec"]
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("shop-spark", True)
    assert master(s) == IN_CLUSTER_MASTER


def test_the_executors_are_sized_from_the_provider_block_and_share_the_cache(validate: Validate) -> None:
    s = spec(executors=3, executor_cores=2, executor_memory=parse_memory("4Gi"), cache_claim="shop-cache")
    config = one(render_manifests(s), Kind.CONFIG_MAP)
    conf = dict(line.split("=", 1) for line in config["data"]["spark-defaults.conf"].splitlines())
    assert {k: conf[k] for k in ("spark.executor.instances", "spark.executor.cores", "spark.executor.memory",
                                 "spark.kubernetes.executor.podTemplateFile", "spark.kubernetes.namespace",
                                 "spark.kubernetes.container.image")} == {
        "spark.executor.instances": "3", "spark.executor.cores": "2", "spark.executor.memory": "4096m",
        "spark.kubernetes.executor.podTemplateFile": "/jobs/executor.yaml", "spark.kubernetes.namespace": "ml",
        "spark.kubernetes.container.image": IMAGE}
    template = yaml.safe_load(config["data"]["executor.yaml"])
    assert template == executor_template(s, s.data[0])
    validate(template)
    assert template["metadata"]["labels"]["mlp.dev/block"] == "source.orders"
    assert {"name": "cache", "persistentVolumeClaim": {"claimName": "shop-cache"}} in template["spec"]["volumes"]


@pytest.mark.parametrize(("address", "value"), [
    ("model.dnn", "model.dnn"),
    ("api.churn", "api.churn"),
    ('transformed_column.norm["x"]', "transformed_column.norm-x-59e5ddbe"),
    ("model." + "m" * 70, "model." + "m" * 48 + "-01982be8"),
], ids=["plain", "api", "an instance", "too long"])
def test_a_blocks_label_value_is_its_address_or_a_slug_and_hash(address: str, value: str) -> None:
    import re

    got = label_value(address)
    assert re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", got) and len(got) <= 63
    assert got == value


@pytest.mark.parametrize(("parts", "name"), [
    (("iris", "train", "dnn"), "iris-train-dnn"),
    (("iris", "data", "sepal_length"), "iris-data-sepal-length"),
    (("My App", "api", "x"), None),
    (("a" * 40, "train", "b" * 40), None),
], ids=["plain", "underscores", "lossy", "too long"])
def test_object_names_are_dns_labels(parts: tuple[str, ...], name: str | None) -> None:
    import re

    got = dns_name(*parts)
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", got) and len(got) <= 63
    if name is not None:
        assert got == name
    else:
        assert got != dns_name(*parts, "other")


def test_two_blocks_never_share_a_label_value() -> None:
    a, b = label_value('transformed_column.norm["a b"]'), label_value('transformed_column.norm["a-b"]')
    assert a != b
