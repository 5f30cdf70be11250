"""The prediction API on a real uvicorn server: validation, predictions, metadata, hot swap."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from runtime.bundle import load_bundle, write_bundle
from runtime.server import create_app
from runtime.transforms import TransformJob

from . import (
    IRIS_RAW,
    LABELS,
    NORMALIZED,
    LiveServer,
    iris_aggregates,
    iris_bundle,
    iris_instances,
    mixed_bundle,
    mixed_frame,
    stacked_bundle,
)


@pytest.fixture(scope="module")
def iris() -> Iterator[httpx.Client]:
    with LiveServer(create_app(iris_bundle())) as server, httpx.Client(base_url=server.url) as c:
        yield c


@pytest.fixture(scope="module")
def mixed() -> Iterator[httpx.Client]:
    with LiveServer(create_app(mixed_bundle())) as server, httpx.Client(base_url=server.url) as c:
        yield c


def _signature(bundle: Path) -> Any:
    import tensorflow as tf

    return tf.saved_model.load(str(bundle / "saved_model")).signatures["serving_default"]


def test_predictions_are_the_saved_models(iris: httpx.Client) -> None:
    import tensorflow as tf

    instances = iris_instances()
    resp = iris.post("/predict", json={"instances": instances})
    assert resp.status_code == 200
    body = resp.json()
    assert body["model"] == "iris-1"
    aggs = iris_aggregates()
    feed = {f"{c}_norm": tf.constant([(i[c] - aggs[f"{c}_mean"]) / aggs[f"{c}_stddev"]
                                      for i in instances], tf.float32) for c in NORMALIZED}
    feed["petal_width"] = tf.constant([i["petal_width"] for i in instances], tf.float32)
    expected = _signature(iris_bundle())(**feed)["probabilities"].numpy()
    got = np.array([[p["probabilities"][lab] for lab in LABELS] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [p["label"] for p in body["predictions"]] == [LABELS[i] for i in expected.argmax(1)]


def test_a_single_instance(iris: httpx.Client) -> None:
    resp = iris.post("/predict", json={"instances": [iris_instances()[0]]})
    assert resp.status_code == 200
    (pred,) = resp.json()["predictions"]
    assert pred["label"] == "Iris-setosa"
    assert set(pred["probabilities"]) == set(LABELS)
    assert abs(sum(pred["probabilities"].values()) - 1) < 1e-4


def test_no_instances_no_predictions(iris: httpx.Client) -> None:
    assert iris.post("/predict", json={"instances": []}).json() == {"predictions": [],
                                                                     "model": "iris-1"}


def test_healthz_and_metadata(iris: httpx.Client) -> None:
    assert iris.get("/healthz").json() == {"status": "ok", "model": "model.dnn",
                                           "fingerprint": "iris-1"}
    meta = iris.get("/metadata").json()
    assert (meta["model"], meta["fingerprint"], meta["type"]) == ("model.dnn", "iris-1",
                                                                   "classification")
    assert meta["inputs"][0] == {"name": "sepal_length", "field": "sepal_length", "type": "FLOAT",
                                 "required": True, "min": 0, "max": 10, "values": None}
    assert [c["name"] for c in meta["inputs"]] == IRIS_RAW
    assert meta["labels"] == LABELS
    assert meta["metrics"]["accuracy"] >= 0.9


def test_openapi_documents_the_raw_input_schema(iris: httpx.Client) -> None:
    schema = iris.get("/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    instance = body["schema"]["properties"]["instances"]["items"]
    assert instance["properties"]["sepal_length"] == {"type": "number", "minimum": 0,
                                                      "maximum": 10}
    assert instance["required"] == IRIS_RAW
    assert iris.get("/docs").status_code == 200


GOOD = {"x": 1.5, "n": 7, "color": "red", "flag": True}


@pytest.mark.parametrize("instances,detail", [
    ([GOOD, {**GOOD, "x": None}], [(1, "x", "must not be null")]),
    ([{k: v for k, v in GOOD.items() if k != "color"}], [(0, "color", "is required")]),
    ([GOOD, GOOD, {**GOOD, "x": "1.5"}], [(2, "x", "must be a number")]),
    ([{**GOOD, "x": True}], [(0, "x", "must be a number")]),
    ([{**GOOD, "n": 7.5}], [(0, "n", "must be an integer")]),
    ([{**GOOD, "color": 3}], [(0, "color", "must be a string")]),
    ([{**GOOD, "flag": "yes"}], [(0, "flag", "must be true or false")]),
    ([{**GOOD, "x": 10.5}, {**GOOD, "n": -1}],
     [(0, "x", "must be at most 10"), (1, "n", "must be at least 0")]),
    ([{**GOOD, "color": "purple"}], [(0, "color", 'must be one of "red", "green", "blue"')]),
    ([GOOD, "not an object"], [(1, None, "must be a JSON object")]),
], ids=["null", "missing", "string-for-number", "bool-for-number", "float-for-int",
        "number-for-string", "string-for-bool", "min-max", "values", "not-an-object"])
def test_bad_instances_get_422_naming_instance_and_field(mixed: httpx.Client, instances: list,
                                                          detail: list[tuple]) -> None:
    resp = mixed.post("/predict", json={"instances": instances})
    assert resp.status_code == 422
    assert resp.json() == {"detail": [{"instance": i, "field": f, "message": m}
                                      for i, f, m in detail]}


@pytest.mark.parametrize("body,detail", [
    (b"{not json", "the body is not valid JSON"),
    (b'{"rows": []}', "must be a list of objects"),
    (b'[1, 2]', "must be a list of objects"),
], ids=["not-json", "no-instances", "not-an-object"])
def test_a_bad_body_gets_422(mixed: httpx.Client, body: bytes, detail: str) -> None:
    resp = mixed.post("/predict", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 422
    assert detail in resp.json()["detail"][0]["message"]


def test_regression_over_every_raw_type(mixed: httpx.Client) -> None:
    import tensorflow as tf

    df = mixed_frame().head(20)
    instances = [{"x": float(r.x), "n": int(r.n), "color": str(r.color), "flag": bool(r.flag)}
                 for r in df.itertuples()]
    instances[0].pop("n")  # optional: null, read as 0 by the model
    resp = mixed.post("/predict", json={"instances": instances})
    assert resp.status_code == 200, resp.text
    got = [p["value"] for p in resp.json()["predictions"]]
    aggs = load_bundle(mixed_bundle()).aggregates
    n = df.n.to_numpy(np.float32)
    n[0] = np.nan
    expected = _signature(mixed_bundle())(
        x_norm=tf.constant(((df.x - aggs["x_mean"]) / aggs["x_stddev"]).to_numpy(np.float32)),
        n=tf.constant(n), color=tf.constant(df.color.tolist()),
        flag=tf.constant(df.flag.to_numpy(np.float32)))["value"].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert np.corrcoef(got[1:], df.y[1:])[0, 1] > 0.95


def test_a_model_used_as_a_transformation(iris: httpx.Client) -> None:
    with LiveServer(create_app(stacked_bundle())) as server:
        resp = httpx.post(f"{server.url}/predict", json={"instances": iris_instances()})
    assert resp.status_code == 200
    preds = resp.json()["predictions"]
    first = iris.post("/predict", json={"instances": iris_instances()}).json()["predictions"]
    agree = np.mean([a["label"] == b["label"] for a, b in zip(preds, first)])
    assert agree > 0.9  # the stacked model mostly repeats the iris model's class


def test_hot_swap_fails_no_request(tmp_path: Path) -> None:
    doc = json.loads((iris_bundle() / "bundle.json").read_text())
    second = write_bundle(tmp_path / "second", {**doc, "fingerprint": "iris-2"},
                          iris_bundle() / "saved_model")
    seen: list[str] = []
    failures: list[Any] = []
    stop = threading.Event()
    body = {"instances": iris_instances()[:5]}

    def client(url: str) -> None:
        with httpx.Client(base_url=url) as c:
            while not stop.is_set():
                try:
                    resp = c.post("/predict", json=body)
                    if resp.status_code != 200:
                        failures.append(resp.status_code)
                    else:
                        seen.append(resp.json()["model"])
                except httpx.HTTPError as e:
                    failures.append(repr(e))

    with LiveServer(create_app(iris_bundle())) as server:
        threads = [threading.Thread(target=client, args=(server.url,)) for _ in range(2)]
        for t in threads:
            t.start()
        while len(seen) < 20:
            stop.wait(0.01)
        resp = httpx.post(f"{server.url}/admin/reload", json={"bundle": str(second)}, timeout=120)
        assert resp.json() == {"model": "model.dnn", "fingerprint": "iris-2",
                               "previous": "iris-1"}
        count = len(seen)
        while len(seen) < count + 20:
            stop.wait(0.01)
        stop.set()
        for t in threads:
            t.join()
        assert httpx.get(f"{server.url}/metadata").json()["fingerprint"] == "iris-2"
    assert failures == []
    assert seen[0] == "iris-1" and seen[-1] == "iris-2"
    switched = seen.index("iris-2")
    assert set(seen[switched:]) == {"iris-2"}


def test_a_bad_reload_keeps_the_old_model(iris: httpx.Client, tmp_path: Path) -> None:
    resp = iris.post("/admin/reload", json={"bundle": str(tmp_path)}, timeout=60)
    assert resp.status_code == 400
    (detail,) = resp.json()["detail"]  # every error answer is a list of {instance, field, message}
    assert (detail["instance"], detail["field"]) == (None, "bundle")
    assert "is not a model bundle" in detail["message"]
    assert iris.get("/healthz").json()["fingerprint"] == "iris-1"


def test_no_bundle_is_unhealthy_until_a_reload() -> None:
    with LiveServer(create_app(None)) as server, httpx.Client(base_url=server.url) as c:
        assert c.get("/healthz").status_code == 503
        assert c.post("/predict", json={"instances": []}).status_code == 503
        assert c.post("/admin/reload", json={"bundle": str(iris_bundle())},
                      timeout=120).status_code == 200
        assert c.get("/healthz").status_code == 200


def test_the_bundle_is_self_contained(tmp_path: Path) -> None:
    code = tmp_path / "double.py"
    code.write_text("def transform(inputs, args):\n    return inputs['column'] * 2\n")
    doc = json.loads((iris_bundle() / "bundle.json").read_text())
    doc["transforms"] = [*doc["transforms"], {
        "name": "twice", "transformer": "", "inputs": {"column": {"kind": "column",
                                                                  "name": "petal_width"}},
        "args": {}, "custom_path": str(code), "output_type": "FLOAT"}]
    out = write_bundle(tmp_path / "b", doc, iris_bundle() / "saved_model")
    saved = json.loads((out / "bundle.json").read_text())
    assert saved["transforms"][-1]["custom_path"] == "code/twice.py"
    code.unlink()
    step = load_bundle(out).steps[-1]
    assert isinstance(step, TransformJob)
    assert step.custom_path == out / "code" / "twice.py" and step.custom_path.exists()


def test_fastapi_telemetry_is_on_only_when_opentelemetry_is_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry import trace

    from runtime.server import telemetry

    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("FASTAPI_OTEL_AUTO_CONFIGURE", raising=False)
    off = telemetry()
    assert off == {"tracing": False, "metrics": False, "logs": False}
    assert not create_app(None)._native_telemetry.enabled()  # the API asks no provider per request
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.NoOpTracerProvider())  # an SDK set up
    assert telemetry() is None  # FastAPI's defaults: it reports to what was set up
    monkeypatch.undo()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "iris-api")  # opentelemetry-instrument's settings
    assert telemetry() is None
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    monkeypatch.setenv("FASTAPI_OTEL_AUTO_CONFIGURE", "true")
    assert telemetry() is None
