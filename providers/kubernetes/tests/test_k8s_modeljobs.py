"""A model's predictions as a column and an api's rollout gate, each a Job on the cluster,
replayed through the recording seam: the Job's command, variables, labels and size, the inputs
it finds in the bucket, the answer it leaves there coming back, and its failure reaching the
user as an mlp error."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from k8s_support import IMAGE, MemoryStore
from mlp.config.blocks import App
from mlp.config.loader import load_app
from mlp.errors import ApplyError, UsageError
from mlp.providers import JobLog
from mlp_kubernetes.kubeapi import JobStatus
from mlp_kubernetes.manifest import Kind, Manifest, ObjectRef
from mlp_kubernetes.provider import KubernetesProvider
from mlp_kubernetes.recording import RecordingKubeApi
from mlp_kubernetes.runs import Clock

Validate = Callable[[Mapping[str, Any]], None]
NOW = Clock(timeout=0.0, interval=0.0, sleep=lambda s: None)
PREDICT_IN, PREDICT_OUT = "k8s/runs/predict/transformed_column.dnn_pred/in/", "k8s/runs/predict/transformed_column.dnn_pred/out/"
GATE_IN, GATE_OUT = "k8s/runs/gate/api.iris/in/", "k8s/runs/gate/api.iris/out/"
SCORE = {"metric": "accuracy", "old": 0.9, "new": 0.95, "rows": 38}
STAGE_RUN = ["python", "-m", "mlp_kubernetes.stage", "run", "--push", "/work/out"]


@pytest.fixture
def app(iris: Path) -> App:
    """iris with a column of the model's predictions, and a model sized by its compute block."""
    model = iris / "model.hcl"
    text = model.read_text().replace("  training {", '  compute {\n    cpu    = 3\n    memory = "6Gi"\n  }\n\n  training {')
    model.write_text(text + '\ntransformed_column "dnn_pred" {\n  model = model.dnn\n}\n')
    loaded, diags = load_app(iris)
    assert loaded is not None, diags.items
    return loaded


def provider(app: App, api: RecordingKubeApi, store: MemoryStore) -> KubernetesProvider:
    return KubernetesProvider(app.provider, api, store=store, clock=NOW).bind(app)


def folder(path: Path, files: Mapping[str, bytes]) -> Path:
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


def table(path: Path) -> Path:
    return folder(path, {"part-0.parquet": b"PAR1"})


def job_log(block: str, lines: list[tuple[str, bool]]) -> JobLog:
    return JobLog(block, f"/tmp/{block}.log", lambda line, echo: lines.append((line, echo)))


class Pod(RecordingKubeApi):
    """A cluster whose Job's pod does to the bucket what the real one does: on create, `outputs`
    appear in the run's out/ folder (a failed pod leaves none)."""

    def __init__(self, store: MemoryStore, outputs: Mapping[str, bytes], **kw: Any) -> None:
        super().__init__(**kw)
        self.store, self.outputs = store, dict(outputs)
        self.inputs: dict[str, bytes] = {}

    def create(self, manifest: Manifest) -> None:
        super().create(manifest)
        if manifest.kind is Kind.JOB:
            self.inputs = {n: v for n, v in self.store.objects.items() if "/in/" in n}
            self.store.objects.update(self.outputs)


def the_job(api: RecordingKubeApi, name: str) -> dict[str, Any]:
    return api.objects[ObjectRef.of(Kind.JOB, "ml", name)]


# -- a model's predictions as a column ----------------------------------------------------------


def predict_job(tmp_path: Path) -> Any:
    from runtime.jobs import PredictJob, TableRef, file_uri

    bundle = folder(tmp_path / "bundle", {"bundle.json": b"{}", "saved_model/saved_model.pb": b"pb"})
    data = (TableRef(file_uri(table(tmp_path / "raw")), ("petal_width",)),
            TableRef(file_uri(table(tmp_path / "norm")), ("sepal_length_norm",)))
    return PredictJob(str(bundle), data, "dnn_pred", str(tmp_path / "tmp" / "full"))


def test_predictions_run_as_a_job_of_the_models_size_and_the_table_comes_back(
        app: App, tmp_path: Path, validate: Validate) -> None:
    store = MemoryStore()
    done = json.dumps({"event": "done", "column": "dnn_pred", "rows": 150})
    api = Pod(store, {PREDICT_OUT + "part-00000.parquet": b"PREDICTED"}, logs={"iris-predict-dnn-pred": [done]})
    lines: list[tuple[str, bool]] = []
    job = predict_job(tmp_path)
    provider(app, api, store).predict(job, job_log("transformed_column.dnn_pred", lines))

    doc = the_job(api, "iris-predict-dnn-pred")
    validate(doc)
    tables = [{"uri": "file:///work/run/data/0", "columns": ["petal_width"]},
              {"uri": "file:///work/run/data/1", "columns": ["sepal_length_norm"]}]
    [main] = doc["spec"]["template"]["spec"]["containers"]
    assert main["command"] == [*STAGE_RUN, PREDICT_OUT, "--", "python", "-m", "runtime.train", "--predict",
                               "/work/run/bundle", json.dumps(tables), "dnn_pred", "/work/out"]
    assert main["resources"] == {"requests": {"cpu": "3", "memory": "6Gi"}, "limits": {"memory": "6Gi"}}
    assert {e["name"] for e in main["env"]} == {"MLP_BACKEND", "HOME", "MLP_CACHE_DIR", "PYTHONUNBUFFERED"}
    assert json.loads(next(e["value"] for e in main["env"] if e["name"] == "MLP_BACKEND"))["settings"]["prefix"] == "iris"
    [stage] = doc["spec"]["template"]["spec"]["initContainers"]
    assert stage["command"][-2:] == [PREDICT_IN, "/work/run"]
    labels = {"app.kubernetes.io/managed-by": "mlp", "mlp.dev/app": "iris", "mlp.dev/block": "transformed_column.dnn_pred",
              "app.kubernetes.io/component": "predict"}
    assert doc["metadata"]["labels"] == labels == doc["spec"]["template"]["metadata"]["labels"]
    # its inputs were in the bucket when the Job was made: the bundle and each table apart
    assert sorted(api.inputs) == [PREDICT_IN + n for n in (
        "bundle/bundle.json", "bundle/saved_model/saved_model.pb", "data/0/part-0.parquet", "data/1/part-0.parquet")]
    assert (tmp_path / "tmp" / "full" / "part-00000.parquet").read_bytes() == b"PREDICTED"
    assert lines[0] == ("predict: Job iris-predict-dnn-pred in namespace ml (context recording)", False)


def test_a_failed_prediction_job_is_the_runtimes_own_error(app: App, tmp_path: Path) -> None:
    store = MemoryStore()
    error = json.dumps({"event": "error", "message": "the bundle has no saved_model", "hint": "retrain it"})
    api = Pod(store, {}, outcomes={"iris-predict-dnn-pred": JobStatus(failed=1)}, logs={"iris-predict-dnn-pred": [error]})
    with pytest.raises(ApplyError) as err:
        provider(app, api, store).predict(predict_job(tmp_path), job_log("transformed_column.dnn_pred", []))
    assert (err.value.summary, err.value.detail, err.value.hint) == (
        "transformed_column.dnn_pred: the bundle has no saved_model", "See the log: mlp logs transformed_column.dnn_pred",
        "retrain it")
    assert not (tmp_path / "tmp" / "full").exists()


def test_a_column_the_app_does_not_have_is_a_usage_error(app: App, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        provider(app, RecordingKubeApi(), MemoryStore()).predict(predict_job(tmp_path), job_log("transformed_column.x", []))
    assert err.value.summary == "The app has no transformed_column of a model at transformed_column.x"


# -- the rollout gate ----------------------------------------------------------------------------


def gate_job(tmp_path: Path) -> Any:
    from runtime.jobs import GateJob, TableRef, file_uri

    old = folder(tmp_path / "old" / "bundle", {"bundle.json": b"old"})
    new = folder(tmp_path / "new" / "bundle", {"bundle.json": b"new"})
    data = (TableRef(file_uri(table(tmp_path / "raw")), ("petal_width", "class")),)
    return GateJob(file_uri(old), file_uri(new), data, file_uri(table(tmp_path / "source")), "class", 0.75, 0, True)


def test_the_gate_runs_as_a_job_and_its_score_comes_back_from_the_bucket(
        app: App, tmp_path: Path, validate: Validate) -> None:
    store = MemoryStore()
    score = (json.dumps(SCORE) + "\n").encode()
    api = Pod(store, {GATE_OUT + "stdout.txt": score}, logs={"iris-gate-iris": ["stage: pulled 5 files", json.dumps(SCORE)]})
    lines: list[tuple[str, bool]] = []
    answer = provider(app, api, store).evaluate(gate_job(tmp_path), job_log("api.iris", lines))
    assert answer.to_json() == SCORE

    doc = the_job(api, "iris-gate-iris")
    validate(doc)
    [main] = doc["spec"]["template"]["spec"]["containers"]
    assert main["command"] == [*STAGE_RUN, GATE_OUT, "--stdout", "/work/out/stdout.txt", "--",
                               "python", "-m", "runtime.gate", "/work/run/job.json"]
    assert main["resources"] == {"requests": {"cpu": "3", "memory": "6Gi"}, "limits": {"memory": "6Gi"}}
    # its labels name the model it scores: the api's Service selects the api's pods by the api's
    labels = {"app.kubernetes.io/managed-by": "mlp", "mlp.dev/app": "iris", "mlp.dev/block": "model.dnn",
              "app.kubernetes.io/component": "gate"}
    assert doc["metadata"]["labels"] == labels == doc["spec"]["template"]["metadata"]["labels"]
    assert doc["metadata"]["annotations"]["mlp.dev/address"] == "model.dnn"
    assert sorted(api.inputs) == [GATE_IN + n for n in (
        "data/0/part-0.parquet", "job.json", "new/bundle.json", "old/bundle.json", "source/part-0.parquet")]
    assert json.loads(api.inputs[GATE_IN + "job.json"]) == {
        "job": "gate", "version": json.loads(api.inputs[GATE_IN + "job.json"])["version"],
        "old_bundle": "file:///work/run/old", "new_bundle": "file:///work/run/new",
        "dataset": [{"uri": "file:///work/run/data/0", "columns": ["petal_width", "class"]}],
        "source_table": "file:///work/run/source", "target": "class", "split": 0.75, "seed": 0,
        "type": "classification", "max_rows": 20000}
    assert lines == [("gate: Job iris-gate-iris in namespace ml (context recording)", False),
                     ("stage: pulled 5 files", False)]


def test_the_gate_pod_is_never_one_of_the_apis_serving_pods(app: App, tmp_path: Path) -> None:
    from mlp.providers import ApiDeployment
    from mlp_kubernetes.names import Selector

    store = MemoryStore()
    api = Pod(store, {GATE_OUT + "stdout.txt": json.dumps(SCORE).encode()})
    p = provider(app, api, store)
    p.deploy_api(ApiDeployment("api.iris", "model.dnn", "ab" * 32, "/nowhere", 1, None, "/tmp/api.log", 4194304), None)
    p.evaluate(gate_job(tmp_path), job_log("api.iris", []))
    service = api.objects[ObjectRef.of(Kind.SERVICE, "ml", "iris-api-iris")]
    deployment = api.objects[ObjectRef.of(Kind.DEPLOYMENT, "ml", "iris-api-iris")]
    gate_pod = the_job(api, "iris-gate-iris")["spec"]["template"]["metadata"]["labels"]
    assert not Selector.of(service["spec"]["selector"]).matches(gate_pod)
    assert not Selector.of(deployment["spec"]["selector"]["matchLabels"]).matches(gate_pod)


@pytest.mark.parametrize(("outputs", "outcome", "summary", "detail"), [
    ({}, JobStatus(failed=1), "api.iris: the rollout gate could not score the models", "See the log: mlp logs api.iris"),
    ({}, JobStatus(succeeded=1), "api.iris: the rollout gate left no answer",
     f"Nothing at s3://b/{GATE_OUT}stdout.txt."),
    ({GATE_OUT + "stdout.txt": b"Traceback (most recent call last)\n"}, JobStatus(succeeded=1),
     "api.iris: the rollout gate answered 'Traceback (most recent call last)'", "Expecting value: line 1 column 1 (char 0)"),
], ids=["the job failed", "no answer", "not a score"])
def test_a_gate_that_cannot_score_says_so_with_the_way_out(
        outputs: dict[str, bytes], outcome: JobStatus, summary: str, detail: str, app: App, tmp_path: Path) -> None:
    store = MemoryStore()
    api = Pod(store, outputs, outcomes={"iris-gate-iris": outcome})
    with pytest.raises(ApplyError) as err:
        provider(app, api, store).evaluate(gate_job(tmp_path), job_log("api.iris", []))
    assert (err.value.summary, err.value.detail, err.value.hint) == (
        summary, detail, 'Fix what the log says, or set promote = "always" to swap without the gate.')


def test_a_gate_for_a_block_that_is_no_api_of_a_model_is_a_usage_error(app: App, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        provider(app, RecordingKubeApi(), MemoryStore()).evaluate(gate_job(tmp_path), job_log("model.dnn", []))
    assert err.value.summary == "The app has no api of a model at model.dnn"


def test_a_gpu_model_gates_on_cpus_but_predicts_on_its_gpus(app: App, tmp_path: Path, validate: Validate) -> None:
    from dataclasses import replace

    from mlp_kubernetes.appspec import jobs_spec
    from mlp_kubernetes.runjob import gate_run, predict_run, run_manifest

    spec = jobs_spec(app, KubernetesProvider(app.provider).settings)
    [training] = spec.models
    gpu = replace(training, resources=replace(training.resources, gpu=1))
    gate = run_manifest(spec, gate_run("api.iris", "iris", gpu)).doc["spec"]["template"]["spec"]
    predict = run_manifest(spec, predict_run("transformed_column.dnn_pred", "dnn_pred", gpu, ("--predict",)))
    validate(predict.doc)
    assert "nvidia.com/gpu" not in gate["containers"][0]["resources"]["limits"] and "nodeSelector" not in gate
    pod = predict.doc["spec"]["template"]["spec"]
    assert (pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"], pod["nodeSelector"]) == (
        1, {"nvidia.com/gpu.present": "true"})
    assert pod["containers"][0]["image"] == IMAGE


def test_the_preview_keeps_a_columns_last_prediction_job(app: App, tmp_path: Path) -> None:
    from mlp_kubernetes.appspec import jobs_spec
    from mlp_kubernetes.cluster import Desired, changes, observe
    from mlp_kubernetes.manifests import render_manifests

    store = MemoryStore()
    api = Pod(store, {PREDICT_OUT + "part-00000.parquet": b"P"})
    provider(app, api, store).predict(predict_job(tmp_path), job_log("transformed_column.dnn_pred", []))
    spec = jobs_spec(app, KubernetesProvider(app.provider).settings)
    desired = Desired.app(spec, render_manifests(spec))
    assert [str(c.ref) for c in changes(desired, observe(api, "ml", desired.scope)) if c.ref.kind is Kind.JOB] == [
        "Job/iris-data-iris", "Job/iris-train-dnn"]
