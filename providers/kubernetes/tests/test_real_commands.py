"""The containers' commands are real: examples/iris under provider "kubernetes", applied by
mlp against moto's S3 server, every pod the provider creates run on this machine from the
document it sent (`local_pods.LocalPods`), and that document the rendered manifest.

In the order apply runs them, each pod's `stage` init container first pulling its inputs
from the bucket:

- the data unit's driver Job, `python -m runtime.data /jobs/job.json`, on the master its
  ConfigMap names: with no executors (the default) that is `local[N]`, Spark inside the
  driver pod, so it is the same here;
- the training Job, `stage run --push ... -- python -m runtime.train /work/run/job.json`;
- the api's Deployment, `python -m runtime.serve --bundle /work/bundle ...`;
- once the model is retrained, the api's rollout gate Job,
  `stage run --push ... --stdout /work/out/stdout.txt -- python -m runtime.gate /work/run/job.json`,
  scoring the serving and the new bundle before the Deployment moves to the new one.

A second test runs the data unit's driver Job alone with its job file naming a real
standalone `spark://` master and worker (started from the pyspark package) instead of
`local[N]`: Spark outside the driver's process, as with executors, on this machine.

What differs from a pod is what `local_pods` says: mount paths are folders here, the
container port a free one. No cluster-only variable needs replacing: the backend block names
moto's endpoint, so the rendered MLP_BACKEND already points the pods at it.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from k8s_support import IMAGE, REPO, swap_provider
from local_pods import LocalPods, Pod
from mlp_kubernetes.manifest import Kind

SECRET = "iris-storage"  # the optional Secret every container takes its storage credentials from
EPOCHS = 5
INSTANCE = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
RUNS = ((Kind.JOB, "iris-data-iris"), (Kind.JOB, "iris-train-dnn"), (Kind.DEPLOYMENT, "iris-api-iris"))


@pytest.fixture
def iris_on_moto(tmp_path: Path, moto_server: Any) -> tuple[Path, dict[str, str]]:
    """examples/iris under provider "kubernetes", its backend a fresh prefix of moto's
    bucket, trained for a few epochs."""
    from tests.state.conftest import BUCKET

    app = tmp_path / "iris"
    shutil.copytree(REPO / "examples" / "iris", app, ignore=shutil.ignore_patterns(".mlp"))
    settings = {"bucket": BUCKET, "prefix": f"k8s/{uuid.uuid4().hex[:12]}/iris", "endpoint": moto_server.endpoint,
                "region": "us-east-1"}
    backend = "".join(f'  {k} = "{v}"\n' for k, v in settings.items())
    swap_provider(app, f'provider "kubernetes" {{\n  namespace = "ml"\n  image     = "{IMAGE}"\n}}\n\n'
                       f'backend "s3" {{\n{backend}}}')
    hcl = app / "app.hcl"
    hcl.write_text(re.sub(r"default\s*=\s*100\n", f"default     = {EPOCHS}\n", hcl.read_text(), count=1))
    return app, settings


@pytest.fixture
def cluster(tmp_path: Path, moto_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalPods]:
    """This machine as the provider's cluster; every process it starts is stopped at the end."""
    pods = LocalPods(tmp_path / "pods", {SECRET: dict(moto_server.environ)})
    monkeypatch.setattr("mlp_kubernetes.client.connect", lambda settings, environ=None: pods)
    monkeypatch.delenv("MLP_CACHE_DIR", raising=False)
    try:
        yield pods
    finally:
        pods.close()


def rendered(app: Path, out: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """`mlp render`'s documents, by kind and name."""
    from mlp_kubernetes.render import render

    docs = (yaml.safe_load(p.read_text()) for p in render(app, out))
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def ran_as_rendered(pod: Pod, spec: Mapping[str, Any]) -> None:
    """Each container ran its manifest's command and variables (nothing else but what the
    image and the storage Secret give), and exited 0 or is still serving."""
    containers = [*spec.get("initContainers", ()), *spec["containers"]]
    output = "\n".join(pod.init_lines + pod.lines)[-3000:]
    assert [r.container["name"] for r in pod.ran] == [c["name"] for c in containers], output
    for ran, c in zip(pod.ran, containers):
        assert ran.container == c
        assert [pod.in_pod(w) for w in ran.argv] == [*c["command"], *c.get("args", ())], c["name"]
        declared = {v["name"]: v["value"] for v in c["env"]}
        assert {k: pod.in_pod(ran.env[k]) for k in declared} == declared, c["name"]
        assert set(ran.env) == set(declared) | set(pod.image_env) | set(pod.secrets[SECRET]), c["name"]
        assert pod.exits.get(c["name"], 0) == 0, f"{pod.name}: {c['name']} exited {pod.exits[c['name']]}:\n{output}"


@pytest.mark.slow
def test_the_rendered_commands_build_and_serve_iris_from_the_bucket(
        iris_on_moto: tuple[Path, dict[str, str]], cluster: LocalPods, moto_server: Any, tmp_path: Path) -> None:
    import boto3

    from mlp import api as mlp_api
    from mlp.state.backends import open_backend

    app, settings = iris_on_moto
    manifests = rendered(app, tmp_path / "manifests")
    applied = mlp_api.apply(app)
    assert (applied.failed, applied.skipped) == ({}, {})

    # what the provider sent is what mlp render wrote, and each pod ran it, in order
    for kind, name in RUNS:
        assert json.loads(json.dumps(cluster.sent(kind, name))) == manifests[(kind.value, name)], name
        ran_as_rendered(cluster.pod(kind, name), manifests[(kind.value, name)]["spec"]["template"]["spec"])
    assert [p.name for p in cluster.history] == ["iris-data-iris-1", "iris-train-dnn-2", "iris-api-iris-3"]

    # what they made is in the bucket, under the backend's prefix as the backend lays it out
    env = dict(moto_server.environ)
    state = open_backend(app, "s3", settings, environ=env).read_state()
    s3 = boto3.session.Session().client("s3", region_name="us-east-1", endpoint_url=settings["endpoint"])
    listed = s3.get_paginator("list_objects_v2").paginate(Bucket=settings["bucket"], Prefix=settings["prefix"] + "/")
    names = {o["Key"].removeprefix(settings["prefix"] + "/") for page in listed for o in page.get("Contents", ())}
    built = {a: r.artifact for a, r in state.blocks.items() if r.artifact}
    assert {"source.iris", "aggregate.sepal_length_mean", "transformed_column.petal_length_norm",
            "model.dnn"} <= set(built)
    assert {f"manifests/{key}.json" for key in built.values()} <= names
    model = state.blocks["model.dnn"]
    assert {f"artifacts/{model.artifact}/bundle/bundle.json", "k8s/runs/train/model.dnn/out/result.json"} <= names

    # the api serves the model the state records and the training Job was given
    fingerprint = model.fingerprint
    job = json.loads(s3.get_object(Bucket=settings["bucket"],
                                   Key=settings["prefix"] + "/k8s/runs/train/model.dnn/in/job.json")["Body"].read())
    # its two tables (raw and normalized columns) were staged apart and joined in the pod
    assert [t["uri"] for t in job["data"]] == ["file:///work/run/data/0", "file:///work/run/data/1"]
    assert all(any(n.startswith(f"k8s/runs/train/model.dnn/in/data/{i}/") and n.endswith(".parquet")
                   for n in names) for i in (0, 1))
    template = manifests[("Deployment", "iris-api-iris")]["spec"]["template"]
    assert (job["fingerprint"], template["metadata"]["annotations"]["mlp.dev/model-fingerprint"]) == (
        fingerprint, fingerprint)
    server = cluster.pod(Kind.DEPLOYMENT, "iris-api-iris")
    assert server.get("/healthz") == (200, {"status": "ok", "model": "model.dnn", "fingerprint": fingerprint})
    assert state.blocks["api.iris"].metrics["model_fingerprint"] == fingerprint
    status, answer = server.post("/predict", {"instances": [INSTANCE]})
    assert status == 200, answer
    assert len(answer["predictions"]) == 1

    # the training pod's log reached the model's log while it ran
    log = mlp_api.logs(app, "model.dnn").read_text()
    assert f"epoch {EPOCHS}/{EPOCHS}" in log and "stage: pushed" in log, log[-2000:]

    # a retrained model goes through the rollout gate first, a Job of its own: its command, as
    # sent, scores both bundles staged from the bucket, and the score it left there is the one
    # that let the api move (a tolerance of 1 so that the swap never depends on the epochs)
    hcl = app / "app.hcl"
    hcl.write_text(hcl.read_text().replace(f"default     = {EPOCHS}\n", f"default     = {EPOCHS + 2}\n", 1))
    models = app / "model.hcl"
    models.write_text(models.read_text().replace("  replicas = 1\n", "  replicas = 1\n  tolerance = 1\n", 1))
    again = mlp_api.apply(app)
    assert (again.failed, again.skipped) == ({}, {})
    assert [p.name for p in cluster.history[3:]] == ["iris-train-dnn-4", "iris-gate-iris-5", "iris-api-iris-6"]
    sent = cluster.sent(Kind.JOB, "iris-gate-iris")
    assert sent["spec"]["template"]["metadata"]["labels"]["mlp.dev/block"] == "model.dnn"
    ran_as_rendered(cluster.pod(Kind.JOB, "iris-gate-iris"), sent["spec"]["template"]["spec"])
    out = s3.get_object(Bucket=settings["bucket"], Key=settings["prefix"] + "/k8s/runs/gate/api.iris/out/stdout.txt")
    score = json.loads(out["Body"].read().decode().strip().splitlines()[-1])
    assert set(score) == {"metric", "old", "new", "rows"} and score["metric"] == "accuracy", score
    assert 0 < score["rows"] <= 150 and all(0.0 <= score[k] <= 1.0 for k in ("old", "new")), score
    api_log = mlp_api.logs(app, "api.iris").read_text()
    assert f"promote: accuracy {score['new']:.4f} against {score['old']:.4f} for the model serving" in api_log, \
        api_log[-2000:]
    state = open_backend(app, "s3", settings, environ=env).read_state()
    assert state.blocks["api.iris"].metrics["model_fingerprint"] == state.blocks["model.dnn"].fingerprint != fingerprint


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A real standalone Spark master and worker from the pyspark package, as
    tests/runtime/test_standalone.py starts them: (URL, web UI port)."""
    from tests.runtime.test_standalone import standalone_cluster

    with standalone_cluster(tmp_path / "spark") as (url, webui, _):
        yield url, webui


def test_the_data_units_driver_command_runs_its_job_on_a_standalone_spark_master(
        iris_on_moto: tuple[Path, dict[str, str]], moto_server: Any, standalone: tuple[str, int],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver Job's exact container, its job file naming a real `spark://` master instead
    of the pod's `local[N]`: the data unit runs on that cluster's worker and its outputs land
    in the bucket."""
    import urllib.request

    from mlp import api as mlp_api
    from mlp.state.backends import open_backend

    master, webui = standalone
    pods = LocalPods(tmp_path / "pods", {SECRET: dict(moto_server.environ)}, spark_master=master)
    monkeypatch.setattr("mlp_kubernetes.client.connect", lambda settings, environ=None: pods)
    monkeypatch.delenv("MLP_CACHE_DIR", raising=False)
    app, settings = iris_on_moto
    manifests = rendered(app, tmp_path / "manifests")
    try:
        applied = mlp_api.apply(app, targets=["transformed_column.petal_length_norm"])
    finally:
        pods.close()
    assert (applied.failed, applied.skipped) == ({}, {})
    assert [p.name for p in pods.history] == ["iris-data-iris-1"]  # the data unit alone
    pod = pods.pod(Kind.JOB, "iris-data-iris")
    ran_as_rendered(pod, manifests[("Job", "iris-data-iris")]["spec"]["template"]["spec"])
    job_files = [json.loads(p.read_text()) for p in pod.folder.rglob("*.json") if '"spark_master"' in p.read_text()]
    assert [j["spark_master"] for j in job_files] == [master]
    with urllib.request.urlopen(f"http://127.0.0.1:{webui}/json/", timeout=5) as r:
        cluster = json.load(r)
    assert [a["name"] for a in cluster["completedapps"]], cluster  # the unit's Spark application ran there

    state = open_backend(app, "s3", settings, environ=dict(moto_server.environ)).read_state()
    done = {a for a, r in state.blocks.items() if r.status == "done" and r.artifact}
    assert {"source.iris", "aggregate.petal_length_mean", "transformed_column.petal_length_norm"} <= done
