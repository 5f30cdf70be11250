"""`render(app_dir, out_dir)`: examples/iris under provider "kubernetes", file by file against
golden/iris/ (MLP_UPDATE_GOLDENS=1 rewrites them), every manifest valid for the pinned
Kubernetes version, every object and pod labelled."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from k8s_support import HERE, REPO
from mlp.errors import UsageError
from mlp_kubernetes.render import render

GOLDEN = HERE / "golden" / "iris"
LABELS = ("app.kubernetes.io/managed-by", "mlp.dev/app", "mlp.dev/block")


def docs(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(folder.glob("*.yaml"))}


def pod_templates(doc: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    template = (doc.get("spec") or {}).get("template")
    if template is not None:
        yield template


def test_the_iris_render_matches_its_golden_files(iris: Path, tmp_path: Path, update_goldens: bool) -> None:
    out = tmp_path / "manifests"
    written = render(iris, out)
    assert [p.name for p in written] == sorted(p.name for p in written)
    if update_goldens:
        shutil.rmtree(GOLDEN, ignore_errors=True)
        shutil.copytree(out, GOLDEN)
    expected = sorted(p.name for p in GOLDEN.glob("*.yaml"))
    assert [p.name for p in written] == expected, "MLP_UPDATE_GOLDENS=1 rewrites golden/iris/"
    for path in written:
        assert path.read_text() == (GOLDEN / path.name).read_text(), f"{path.name} differs from golden/iris/"


def test_the_files_are_the_objects_in_creation_order(iris: Path, tmp_path: Path) -> None:
    names = [p.name for p in render(iris, tmp_path / "out")]
    assert names == [
        "00-serviceaccount-iris-workload.yaml",
        "03-configmap-iris-data-iris.yaml",
        "04-service-iris-api-iris.yaml",
        "05-deployment-iris-api-iris.yaml",
        "06-horizontalpodautoscaler-iris-api-iris.yaml",
        "07-job-iris-data-iris.yaml",
        "07-job-iris-train-dnn.yaml",
    ]


def test_every_rendered_manifest_is_valid_for_the_pinned_kubernetes_version(
        iris: Path, tmp_path: Path, validate: Callable[[Mapping[str, Any]], None]) -> None:
    for doc in docs(render(iris, tmp_path / "out")[0].parent).values():
        validate(doc)


def test_every_object_and_every_pod_carries_mlps_labels(iris: Path, tmp_path: Path) -> None:
    for name, doc in docs(render(iris, tmp_path / "out")[0].parent).items():
        for labelled in (doc, *pod_templates(doc)):
            labels = labelled["metadata"]["labels"]
            assert [labels.get(k) for k in LABELS[:2]] == ["mlp", "iris"], name
            assert labels[LABELS[2]] in ("app", "source.iris", "model.dnn", "api.iris"), name


def test_two_renders_of_one_app_are_the_same_bytes_and_stale_files_go(iris: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = {p.name: p.read_text() for p in render(iris, out)}
    (out / "99-job-iris-train-old.yaml").write_text("# Rendered by mlp: Job/iris-train-old of model.old\n")
    (out / "notes.yaml").write_text("mine: true\n")
    again = {p.name: p.read_text() for p in render(iris, out)}
    assert again == first
    assert sorted(p.name for p in out.glob("*.yaml")) == sorted([*first, "notes.yaml"])


def test_the_api_deployment_rolls_out_with_no_unavailable_replica_and_probes_healthz(iris: Path, tmp_path: Path) -> None:
    doc = docs(render(iris, tmp_path / "out")[0].parent)["05-deployment-iris-api-iris.yaml"]
    assert doc["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    [server] = doc["spec"]["template"]["spec"]["containers"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert server[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert server["command"][:3] == ["python", "-m", "runtime.serve"]
    assert server["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    assert "replicas" not in doc["spec"]  # the autoscaler's


def test_the_data_driver_runs_the_runtimes_data_job(iris: Path, tmp_path: Path) -> None:
    found = docs(render(iris, tmp_path / "out")[0].parent)
    job = found["07-job-iris-data-iris.yaml"]["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] == ["python", "-m", "runtime.data", "/jobs/job.json"]
    from runtime.jobs import DataJob

    data = DataJob.from_json(yaml.safe_load(found["03-configmap-iris-data-iris.yaml"]["data"]["job.json"]))
    assert (data.unit, data.app_dir, data.backend.kind, dict(data.backend.settings)) == (
        "data:source.iris", "file:///work/app", "s3", {"bucket": "mlp-apps", "prefix": "iris", "region": "us-east-1"})


def test_a_local_backend_cannot_serve_a_cluster(iris: Path, tmp_path: Path) -> None:
    hcl = iris / "app.hcl"
    hcl.write_text(re.sub(r'backend "s3" \{[^}]*\}', "", hcl.read_text()))
    with pytest.raises(UsageError) as err:
        render(iris, tmp_path / "out")
    assert (err.value.summary, err.value.hint) == (
        "The kubernetes provider needs a remote backend", 'Add a backend block, e.g. backend "s3" { bucket = "my-bucket" }')


def test_render_is_for_kubernetes_apps(tmp_path: Path) -> None:
    app = tmp_path / "iris"
    shutil.copytree(REPO / "examples" / "iris", app, ignore=shutil.ignore_patterns(".mlp"))
    with pytest.raises(UsageError) as err:
        render(app, tmp_path / "out")
    assert err.value.summary == 'The app\'s provider is "local", not "kubernetes"'


def test_the_provider_block_sets_namespace_and_image(iris: Path, tmp_path: Path) -> None:
    hcl = iris / "app.hcl"
    hcl.write_text(hcl.read_text().replace('namespace = "ml"', 'namespace = "team-a"'))
    for doc in docs(render(iris, tmp_path / "out")[0].parent).values():
        assert doc["metadata"]["namespace"] == "team-a"
