"""`KubernetesProvider` through mlp's provider interface: found by its entry point, its block
checked, and each verb replayed through the recording seam."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml

from k8s_support import FP, FP2, IMAGE, MemoryStore
from mlp import api as mlp_api
from mlp.config.blocks import App, ProviderConfig
from mlp.config.loader import load_app
from mlp.diagnostics import Diagnostics, SourcePos
from mlp.errors import ApplyError, UsageError
from mlp.plan.model import Action, Change, Plan, Reason
from mlp.providers import ApiDeployment, ApiStatus, Endpoint, JobLog, provider_for
from mlp.state.model import BlockRecord, State
from mlp_kubernetes.kubeapi import JobStatus
from mlp_kubernetes.manifest import Kind, ObjectRef
from mlp_kubernetes.provider import KubernetesProvider
from mlp_kubernetes.recording import RecordingKubeApi
from mlp_kubernetes.runs import Clock

NOW = Clock(timeout=0.0, interval=0.0, sleep=lambda s: None)


def loaded(app_dir: Path) -> App:
    app, diags = load_app(app_dir)
    assert app is not None, diags.items
    return app


def provider(app: App, api: RecordingKubeApi, store: MemoryStore | None = None) -> KubernetesProvider:
    return KubernetesProvider(app.provider, api, store=store, clock=NOW).bind(app)


def deployment(fp: str = FP) -> ApiDeployment:
    return ApiDeployment("api.iris", "model.dnn", fp, "/nowhere/bundle", 1, None, "/tmp/api.log", 4194304)


# -- found, and its block checked ----------------------------------------------------------


def test_the_plugin_is_the_kubernetes_entry_point_and_validate_takes_an_empty_block(iris: Path) -> None:
    [ep] = [ep for ep in entry_points(group="mlp.providers") if ep.name == "kubernetes"]
    assert ep.value == "mlp_kubernetes.provider:KubernetesProvider", "pip install -e providers/kubernetes"
    hcl = iris / "app.hcl"
    hcl.write_text(hcl.read_text().replace('  namespace = "ml"\n  image     = "registry.example.com/ml/mlp-runtime:0.1.0"\n', ""))
    checked = mlp_api.validate(iris)
    assert isinstance(provider_for(checked.checked.app.provider), KubernetesProvider)
    assert [(d.severity.value, d.summary) for d in checked.diagnostics.items] == [
        ("warning", 'No image set: the workloads run "mlp-runtime:0.1.0"')]


@pytest.mark.parametrize(("settings", "summary"), [
    ({"namespace": "Kube_System"}, 'The namespace "Kube_System" is not a Kubernetes namespace name'),
    ({"image": "Registry/ML Runtime"}, 'The image "Registry/ML Runtime" is not an image reference'),
    ({"image": IMAGE, "service_type": "NodePort"}, 'service_type "NodePort" is not one mlp makes'),
    ({"image": IMAGE, "executors": 2}, "Spark executors need a shared cache_claim"),
    ({"image": IMAGE, "driver_memory": "lots"}, 'driver_memory: "lots" is not a size like "2Gi", "512Mi" or "1G"'),
], ids=["namespace", "image", "service type", "executors without a shared cache", "memory"])
def test_a_bad_setting_is_an_error_at_the_block(settings: dict[str, Any], summary: str) -> None:
    config = ProviderConfig("kubernetes", SourcePos("app.hcl", 8, 1), {"namespace": "ml", **settings})
    diags = Diagnostics()
    KubernetesProvider(config).check(config, diags)
    assert [(d.summary, str(d.pos), d.context) for d in diags.errors()] == [
        (summary, "app.hcl:8:1", 'in provider "kubernetes"')]


def test_validate_reports_a_bad_namespace_at_the_provider_block(iris: Path) -> None:
    from mlp.errors import DiagnosticsError

    hcl = iris / "app.hcl"
    hcl.write_text(hcl.read_text().replace('namespace = "ml"', 'namespace = "ML"'))
    with pytest.raises(DiagnosticsError) as err:
        mlp_api.validate(iris)
    assert [(d.summary, str(d.pos)) for d in err.value.diagnostics.errors()] == [
        ('The namespace "ML" is not a Kubernetes namespace name', "app.hcl:8:1")]


# -- preview -------------------------------------------------------------------------------


def fresh_plan(app_dir: Path) -> Plan:
    from mlp.graph.analysis import analyse

    analysis, _ = analyse(app_dir)
    assert analysis is not None
    changes = tuple(Change(a, Action.CREATE, Reason.NEW, fingerprint_after=f.value)
                    for a, f in sorted(analysis.fingerprints.items()))
    return Plan("iris", str(app_dir), changes, "lineage", 0, "kubernetes")


def test_preview_lists_the_objects_a_first_apply_creates(iris: Path) -> None:
    preview = KubernetesProvider(loaded(iris).provider, RecordingKubeApi()).preview(fresh_plan(iris))
    assert [(c.address, c.action, c.reason) for c in preview.changes] == [
        ("ServiceAccount/ml/iris-workload", "create", "new"),
        ("ConfigMap/ml/iris-data-iris", "create", "new"),
        ("Service/ml/iris-api-iris", "create", "new"),
        ("Deployment/ml/iris-api-iris", "create", "new"),
        ("HorizontalPodAutoscaler/ml/iris-api-iris", "create", "new"),
        ("Job/ml/iris-data-iris", "create", "new"),
        ("Job/ml/iris-train-dnn", "create", "new"),
    ]


def test_preview_of_an_applied_app_whose_plan_runs_nothing_is_empty(iris: Path) -> None:
    from mlp_kubernetes.cluster import Desired, apply_manifests
    from mlp_kubernetes.manifests import render_manifests
    from mlp_kubernetes.render import load_spec

    api = RecordingKubeApi()
    spec = load_spec(iris)
    apply_manifests(Desired.app(spec, render_manifests(spec)), api)
    plan = fresh_plan(iris)
    idle = Plan(plan.app, plan.app_dir, tuple(Change(c.address, Action.NOOP, Reason.UNCHANGED,
                                                     fingerprint_after=c.fingerprint_after) for c in plan.changes),
                "lineage", 1, "kubernetes")
    assert KubernetesProvider(loaded(iris).provider, api).preview(idle).changes == ()


def test_preview_of_an_unreachable_cluster_says_so_instead(iris: Path, tmp_path: Path) -> None:
    from test_k8s_client import closed_port, kubeconfig

    server = f"https://127.0.0.1:{closed_port()}"
    config = kubeconfig(tmp_path / "config", server, "dev")
    hcl = iris / "app.hcl"
    hcl.write_text(hcl.read_text().replace('namespace = "ml"', f'namespace = "ml"\n  kubeconfig = "{config}"'))
    preview = provider_for(loaded(iris).provider).preview(fresh_plan(iris))
    assert preview.changes == ()
    assert preview.note == (f'The Kubernetes objects are not previewed: Cannot reach the cluster of context "dev" at '
                            f"{server}. Fix: Check that it is up and reachable: kubectl --context dev cluster-info")


# -- serving and refresh ---------------------------------------------------------------------


def test_deploy_applies_the_api_and_reports_what_the_cluster_serves(iris: Path) -> None:
    api = RecordingKubeApi()
    endpoint = provider(loaded(iris), api).deploy_api(deployment(), None)
    assert endpoint == Endpoint("http://iris-api-iris.ml.svc.cluster.local:80", 80, 0, "model.dnn", FP, 1, 4194304)
    assert [str(c) for c in api.writes()] == [
        "create ServiceAccount/iris-workload", "create Service/iris-api-iris", "create Deployment/iris-api-iris",
        "create HorizontalPodAutoscaler/iris-api-iris"]


def test_a_reload_is_a_rolling_update_of_the_deployment(iris: Path) -> None:
    api = RecordingKubeApi()
    p = provider(loaded(iris), api)
    first = p.deploy_api(deployment(FP), None)
    before = len(api.writes())
    moved = p.reload_api(deployment(FP2), first)
    assert [str(c) for c in api.writes()[before:]] == ["patch Deployment/iris-api-iris"]
    assert moved.model_fingerprint == FP2


def test_a_deployment_that_does_not_roll_out_is_an_apply_error(iris: Path) -> None:
    class Stuck(RecordingKubeApi):
        def _settle(self, doc: dict[str, Any]) -> dict[str, Any]:
            doc = super()._settle(doc)
            if doc["kind"] == "Deployment":
                doc["status"] = {**doc["status"], "availableReplicas": 0}
            return doc

    with pytest.raises(ApplyError) as err:
        provider(loaded(iris), Stuck()).deploy_api(deployment(), None)
    assert (err.value.summary, err.value.detail) == (
        f"Deployment/iris-api-iris did not roll out model {FP[:12]} within 0s", "0 of 1 replicas available, 1 updated")


def record(address: str, kind: str, fingerprint: str, **fields: Any) -> BlockRecord:
    return BlockRecord(address, kind, fingerprint, "done", fields.get("artifact"), fields.get("settings", {}), {}, {},
                       None, fields.get("metrics", {}), None, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")


def state_with_api(endpoint: Endpoint, recorded: str = FP) -> State:
    model = record("model.dnn", "model", FP, artifact=f"{FP[:2]}/{FP}")
    api = record("api.iris", "api", "f" * 64, settings={"model": "model.dnn"}, metrics={"model_fingerprint": recorded})
    return State(1, "lineage", 3, "kubernetes", {"model.dnn": model, "api.iris": api},
                 {"api.iris": endpoint.to_json()})


class Everything:
    def has(self, key: str) -> bool:
        return True


def test_refresh_reads_each_apis_deployment(iris: Path) -> None:
    api = RecordingKubeApi()
    p = provider(loaded(iris), api)
    endpoint = p.deploy_api(deployment(), None)
    seen = p.refresh(state_with_api(endpoint), Everything())  # type: ignore[arg-type]
    assert (seen.missing, seen.apis["api.iris"].status, seen.apis["api.iris"].serving) == ({}, ApiStatus.SERVING, FP)
    drifted = p.refresh(state_with_api(endpoint, recorded=FP2), Everything()).apis["api.iris"]  # type: ignore[arg-type]
    assert (drifted.status, drifted.detail) == (ApiStatus.DRIFTED, f"it serves model {FP[:12]}, the state records {FP2[:12]}")


def test_refresh_sees_another_image_and_a_deployment_with_no_replica(iris: Path) -> None:
    api = RecordingKubeApi()
    app = loaded(iris)
    endpoint = provider(app, api).deploy_api(deployment(), None)
    other = ProviderConfig("kubernetes", app.provider.pos, {**app.provider.settings, "image": "mlp-runtime:9"})
    health = KubernetesProvider(other, api).api_health(endpoint, FP)
    assert (health.status, health.detail) == (ApiStatus.DRIFTED, f"it runs the image {IMAGE}, not mlp-runtime:9")
    api.objects[ObjectRef.of(Kind.DEPLOYMENT, "ml", "iris-api-iris")]["status"]["availableReplicas"] = 0
    api._settle = lambda doc: doc  # type: ignore[method-assign]  # the cluster no longer heals it
    down = KubernetesProvider(app.provider, api).api_health(endpoint, FP)
    assert (down.status, down.detail) == (ApiStatus.DOWN, "no replica of Deployment/iris-api-iris is available")


def test_an_endpoint_that_is_no_service_of_mlps_is_down(iris: Path) -> None:
    health = KubernetesProvider(loaded(iris).provider, RecordingKubeApi()).api_health(
        Endpoint("http://10.1.2.3:80", 80, 0, "model.dnn", FP), FP)
    assert (health.status, health.detail) == (ApiStatus.DOWN, "no Service of mlp's in namespace ml is at http://10.1.2.3:80")


def test_stop_deletes_the_apis_objects_by_its_labels(iris: Path) -> None:
    api = RecordingKubeApi()
    app = loaded(iris)
    endpoint = provider(app, api).deploy_api(deployment(), None)
    before = len(api.writes())
    assert KubernetesProvider(app.provider, api).stop_api(endpoint, "/tmp/api.log") is True
    selector = "app.kubernetes.io/managed-by=mlp,mlp.dev/app=iris,mlp.dev/block=api.iris"
    assert [str(c) for c in api.writes()[before:]] == [
        f"delete_by_label HorizontalPodAutoscaler/{selector}", f"delete_by_label Deployment/{selector}",
        f"delete_by_label Service/{selector}"]
    assert KubernetesProvider(app.provider, api).stop_api(endpoint, "/tmp/api.log") is False


def test_teardown_destroys_the_apps_objects(iris: Path) -> None:
    api = RecordingKubeApi()
    p = provider(loaded(iris), api)
    p.deploy_api(deployment(), None)
    p.teardown()
    assert api.objects == {}


# -- training ----------------------------------------------------------------------------------


class Trainer(RecordingKubeApi):
    """A cluster whose training pod does what the real one does to the bucket: reads its job
    file from the run's inputs and leaves a result and TensorBoard events in its outputs."""

    def __init__(self, store: MemoryStore, **kw: Any) -> None:
        super().__init__(**kw)
        self.store = store
        self.job_file: dict[str, Any] = {}

    def create(self, manifest: Any) -> None:
        super().create(manifest)
        if manifest.kind is Kind.JOB:
            self.job_file = json.loads(self.store.objects["k8s/runs/train/model.dnn/in/job.json"])
            out = "k8s/runs/train/model.dnn/out/"
            self.store.objects[out + "result.json"] = json.dumps({"model": "model.dnn", "type": "classification",
                                                                  "metrics": {"accuracy": 0.97}}).encode()
            self.store.objects[out + "tensorboard/train/events"] = b"events"


def train_job(tmp_path: Path, tables: tuple[str, ...] = ("data",)) -> Any:
    """A job whose columns are in one table, or x in one and class in another (folders of tmp_path)."""
    from mlp.coltypes import ColumnType
    from runtime.jobs import Column, TableRef, Training, TrainJob, file_uri

    for t in tables:
        (tmp_path / t).mkdir()
        (tmp_path / t / "part-0.parquet").write_bytes(b"PAR1")
    (tmp_path / "out").mkdir()
    columns = [("x", "class")] if len(tables) == 1 else [("x",), ("class",)]
    data = tuple(TableRef(file_uri(tmp_path / t), cols) for t, cols in zip(tables, columns))
    return TrainJob("model.dnn", FP, True, "dnn", None, (Column("x", ColumnType.FLOAT),),
                    Column("class", ColumnType.STRING), {}, Training.from_json({}), "none",
                    data, file_uri(tmp_path / "out"), file_uri(tmp_path / "tb" / "run1"))


def job_log(lines: list[tuple[str, bool]]) -> JobLog:
    return JobLog("model.dnn", "/tmp/model.log", lambda line, echo: lines.append((line, echo)))


def test_training_runs_as_a_job_and_its_outputs_come_back(iris: Path, tmp_path: Path) -> None:
    store = MemoryStore()
    epoch = json.dumps({"event": "epoch", "epoch": 1, "epochs": 2, "loss": 0.5})
    api = Trainer(store, logs={"iris-train-dnn": ["stage: pulled 2 files", epoch, json.dumps({"event": "done"})]})
    lines: list[tuple[str, bool]] = []
    job = train_job(tmp_path)
    result = provider(loaded(iris), api, store).train(job, job_log(lines))
    assert (result.model, dict(result.metrics)) == ("model.dnn", {"accuracy": 0.97})
    assert (api.job_file["data"], api.job_file["out_dir"], api.job_file["tensorboard_dir"]) == (
        [{"uri": "file:///work/run/data/0", "columns": ["x", "class"]}], "file:///work/out",
        "file:///work/out/tensorboard")
    assert sorted(n for n in store.objects if "/in/" in n) == [
        "k8s/runs/train/model.dnn/in/data/0/part-0.parquet", "k8s/runs/train/model.dnn/in/job.json"]
    assert (tmp_path / "out" / "result.json").is_file() and not (tmp_path / "out" / "tensorboard").exists()
    assert (tmp_path / "tb" / "run1" / "train" / "events").read_bytes() == b"events"
    assert ("epoch 1/2  loss 0.5000", True) in lines and ("stage: pulled 2 files", False) in lines
    assert "create Job/iris-train-dnn" in [str(c) for c in api.writes()]


def test_a_models_tables_are_staged_each_in_its_own_folder(iris: Path, tmp_path: Path) -> None:
    store = MemoryStore()
    api = Trainer(store, logs={"iris-train-dnn": [json.dumps({"event": "done"})]})
    job = train_job(tmp_path, ("raw", "wave"))
    provider(loaded(iris), api, store).train(job, job_log([]))
    assert api.job_file["data"] == [{"uri": "file:///work/run/data/0", "columns": ["x"]},
                                    {"uri": "file:///work/run/data/1", "columns": ["class"]}]
    assert sorted(n for n in store.objects if "/in/" in n) == [
        "k8s/runs/train/model.dnn/in/data/0/part-0.parquet", "k8s/runs/train/model.dnn/in/data/1/part-0.parquet",
        "k8s/runs/train/model.dnn/in/job.json"]


class StillRunning(Trainer):
    """A training pod that runs until the last line of its log has been read: its Job is
    active until then. `seen` says, for each line, whether the Job was still running when the
    provider asked for the next one, and how many lines the block's log had by then."""

    def __init__(self, store: MemoryStore, script: list[str], written: list[tuple[str, bool]]) -> None:
        super().__init__(store)
        self.script, self.written = script, written
        self.ended = False
        self.seen: list[tuple[str, bool, int]] = []

    def logs(self, namespace: str, pods: Any, container: str) -> Any:
        self._call("logs", None, str(pods))
        for line in self.script:
            yield line
            job = self.read(ObjectRef.of(Kind.JOB, namespace, "iris-train-dnn"))
            self.seen.append((line, job is not None and job.job is not None and job.job.active == 1,
                              len(self.written)))
        self.ended = True

    def _settle(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc = super()._settle(doc)
        if doc["kind"] == "Job":
            doc["status"] = {"active": int(not self.ended), "succeeded": int(self.ended), "failed": 0}
        return doc


def test_the_pods_log_streams_to_the_blocks_log_while_its_job_runs(iris: Path, tmp_path: Path) -> None:
    epochs = [json.dumps({"event": "epoch", "epoch": n, "epochs": 2, "loss": 0.5 / n}) for n in (1, 2)]
    script = ["stage: pulled 2 files", epochs[0], "W tensorflow: a warning", epochs[1], json.dumps({"event": "done"})]
    written: list[tuple[str, bool]] = []
    store = MemoryStore()
    api = StillRunning(store, script, written)
    provider(loaded(iris), api, store).train(train_job(tmp_path), job_log(written))
    assert "logs /job-name=iris-train-dnn" in [str(c) for c in api.calls]
    # each line was in the block's log before the next was read, and the Job was running then
    assert [(line, running, n) for line, running, n in api.seen] == [
        (script[0], True, 2), (script[1], True, 3), (script[2], True, 4), (script[3], True, 5), (script[4], True, 5)]
    assert written == [("train: Job iris-train-dnn in namespace ml (context recording)", False),
                       ("stage: pulled 2 files", False), ("epoch 1/2  loss 0.5000", True),
                       ("W tensorflow: a warning", False), ("epoch 2/2  loss 0.2500", True)]


def test_a_failed_training_job_is_the_trainers_own_error(iris: Path, tmp_path: Path) -> None:
    store = MemoryStore()
    error = json.dumps({"event": "error", "message": "the target has one class", "hint": "check the data"})
    api = Trainer(store, outcomes={"iris-train-dnn": JobStatus(failed=1)}, logs={"iris-train-dnn": [error]})
    with pytest.raises(ApplyError) as err:
        provider(loaded(iris), api, store).train(train_job(tmp_path), job_log([]))
    assert (err.value.summary, err.value.detail, err.value.hint) == (
        "model.dnn: the target has one class", "See the log: mlp logs model.dnn", "check the data")


def test_what_needs_the_app_says_so_without_it(iris: Path, tmp_path: Path) -> None:
    p = KubernetesProvider(loaded(iris).provider, RecordingKubeApi())
    with pytest.raises(UsageError) as err:
        p.train(train_job(tmp_path), job_log([]))
    assert (err.value.summary, err.value.hint) == ("The kubernetes provider cannot train a model without its app",
                                                   "Call it through KubernetesProvider.bind(app)")


def test_no_spark_session_is_started_in_the_applying_process(iris: Path) -> None:
    with pytest.raises(UsageError) as err:
        provider(loaded(iris), RecordingKubeApi()).data_session("/tmp/spark.log")
    assert (err.value.summary, err.value.hint) == (
        "The kubernetes provider runs Spark in driver pods, not in this process",
        'Use provider "local" to run data work in this process')


# -- a data unit ----------------------------------------------------------------------------------


class FakeRun:
    """What the provider uses of a `DataRun`: its unit, its context's app, plan and log, replay."""

    def __init__(self, app: App, plan: Plan) -> None:
        self.unit = type("Unit", (), {"name": "data:source.iris"})()
        self.ctx = type("Ctx", (), {"analysis": type("A", (), {"app": app})(), "plan": plan,
                                    "log": lambda _s, addr, line, echo=True: self.logged.append((addr, line))})()
        self.logged: list[tuple[str, str]] = []
        self.replayed: list[dict[str, Any]] = []

    def replay(self, event: dict[str, Any]) -> None:
        self.replayed.append(event)


def test_a_data_unit_runs_as_its_driver_job_and_its_events_are_replayed(iris: Path) -> None:
    (iris / ".mlp").mkdir()
    (iris / ".mlp" / "state.json").write_text("{}")
    store = MemoryStore()
    events = [{"event": "block", "block": "source.iris", "status": "running"}, {"event": "done"}]
    api = RecordingKubeApi(logs={"iris-data-iris": ["spark: starting", *map(json.dumps, events)]})
    run = FakeRun(loaded(iris), fresh_plan(iris))
    provider(loaded(iris), api, store).run_data(run)  # type: ignore[arg-type]
    assert run.replayed == events and run.logged == [("source.iris", "spark: starting")]
    assert "k8s/app/app.hcl" in store.objects and "k8s/app/data/iris.csv" in store.objects
    assert not any(n.startswith("k8s/app/.mlp") for n in store.objects)
    assert json.loads(store.objects["k8s/plan.json"])["planfile"] == "mlp-plan"
    assert [str(c) for c in api.writes()][-3:] == [
        "patch ConfigMap/iris-data-iris", "delete Job/iris-data-iris", "create Job/iris-data-iris"]
    config = api.objects[ObjectRef.of(Kind.CONFIG_MAP, "ml", "iris-data-iris")]
    assert json.loads(config["data"]["job.json"])["unit"] == "data:source.iris"
    assert yaml.safe_load(yaml.safe_dump(config))["metadata"]["labels"]["mlp.dev/block"] == "source.iris"


def test_a_driver_that_ends_without_a_last_event_fails_the_unit(iris: Path) -> None:
    api = RecordingKubeApi(outcomes={"iris-data-iris": JobStatus(failed=1)}, logs={"iris-data-iris": ["OOMKilled"]})
    with pytest.raises(ApplyError) as err:
        provider(loaded(iris), api, MemoryStore()).run_data(FakeRun(loaded(iris), fresh_plan(iris)))  # type: ignore[arg-type]
    assert err.value.summary == "data:source.iris: the driver Job iris-data-iris ended without finishing the unit"
