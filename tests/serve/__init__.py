"""Helpers for the API tests: bundles trained once per test run, and a real uvicorn server
on 127.0.0.1 in a thread."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
IRIS_CSV = REPO / "examples" / "iris" / "data" / "iris.csv"
IRIS_RAW = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
NORMALIZED = ["sepal_length", "sepal_width", "petal_length"]
LABELS = ["Iris-setosa", "Iris-versicolor", "Iris-virginica"]

_TMP = Path(tempfile.mkdtemp(prefix="mlp-serve-tests-"))
atexit.register(shutil.rmtree, _TMP, True)


def iris_aggregates() -> dict[str, float]:
    df = pd.read_csv(IRIS_CSV)
    out = {}
    for c in NORMALIZED:
        out[f"{c}_mean"], out[f"{c}_stddev"] = float(df[c].mean()), float(df[c].std())
    return out


def normalize_step(column: str) -> dict[str, Any]:
    return {"name": f"{column}_norm", "transformer": "normalize",
            "inputs": {"column": {"kind": "column", "name": column},
                       "mean": {"kind": "aggregate", "name": f"{column}_mean"},
                       "stddev": {"kind": "aggregate", "name": f"{column}_stddev"}},
            "args": {}, "custom_path": None, "output_type": "FLOAT"}


def raw(name: str, type: str = "FLOAT", required: bool = True, min: float | None = None,
        max: float | None = None, values: list[Any] | None = None) -> dict[str, Any]:
    return {"name": name, "type": type, "required": required, "min": min, "max": max,
            "values": values}


def _train(spec: dict[str, Any]) -> dict[str, Any]:
    from runtime.train import TrainSpec, run

    return run(TrainSpec.from_json(spec), lambda e: None)


def _spec(data: Path, out: Path, features: list[dict[str, Any]], target: dict[str, Any],
          type: str = "classification", estimator: str = "dnn", epochs: int = 40,
          fingerprint: str = "fp") -> dict[str, Any]:
    return {"model": "model.m", "fingerprint": fingerprint, "type": type, "estimator": estimator,
            "custom_path": None, "features": features, "target": target,
            "hparams": {"hidden_units": [16, 8]} if estimator == "dnn" else {},
            "training": {"epochs": epochs, "batch_size": 16, "learning_rate": 0.02,
                         "early_stopping": 0}, "balance": "none", "data": str(data),
            "out_dir": str(out)}


def _float(name: str) -> dict[str, Any]:
    return {"name": name, "type": "FLOAT", "categorical": False, "categories": None}


@functools.cache
def iris_data() -> Path:
    df = pd.read_csv(IRIS_CSV)
    aggs = iris_aggregates()
    for c in NORMALIZED:
        df[f"{c}_norm"] = (df[c] - aggs[f"{c}_mean"]) / aggs[f"{c}_stddev"]
    (_TMP / "iris").mkdir()
    df.to_parquet(_TMP / "iris" / "part-00000.parquet", index=False)
    return _TMP / "iris"


@functools.cache
def iris_model() -> Path:
    feats = [_float(f"{c}_norm") for c in NORMALIZED] + [_float("petal_width")]
    _train(_spec(iris_data(), _TMP / "iris-model", feats, {"name": "class", "type": "STRING"}))
    return _TMP / "iris-model"


@functools.cache
def iris_bundle(fingerprint: str = "iris-1") -> Path:
    """The iris example's API: four raw FLOAT columns, three normalized."""
    from runtime.bundle import write_bundle

    result = _load(iris_model() / "result.json")
    spec = {"model": "model.dnn", "fingerprint": fingerprint, "type": "classification",
            "raw_columns": [raw(c, min=0, max=10) for c in IRIS_RAW],
            "transforms": [normalize_step(c) for c in NORMALIZED],
            "aggregates": iris_aggregates(),
            "features": [f"{c}_norm" for c in NORMALIZED] + ["petal_width"],
            "labels": result["labels"], "metrics": result["metrics"]}
    return write_bundle(_TMP / f"bundle-{fingerprint}", spec, iris_model() / "saved_model")


def mixed_frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.uniform(-5, 5, n), "n": rng.integers(0, 100, n),
                       "color": rng.choice(["red", "green", "blue"], n),
                       "flag": rng.uniform(size=n) < 0.5})
    df["y"] = 2 * df.x + 3 * (df.color == "red") + df.flag + df.n / 50
    return df


@functools.cache
def mixed_bundle() -> Path:
    """A regression API over every raw type: FLOAT, optional INT, STRING with values, BOOL."""
    from runtime.bundle import write_bundle

    df = mixed_frame()
    aggs = {"x_mean": float(df.x.mean()), "x_stddev": float(df.x.std())}
    df["x_norm"] = (df.x - aggs["x_mean"]) / aggs["x_stddev"]
    (_TMP / "mixed").mkdir()
    df.to_parquet(_TMP / "mixed" / "part-00000.parquet", index=False)
    feats = [_float("x_norm"), {"name": "n", "type": "INT"}, {"name": "color", "type": "STRING"},
             {"name": "flag", "type": "BOOL"}]
    result = _train(_spec(_TMP / "mixed", _TMP / "mixed-model", feats,
                          {"name": "y", "type": "FLOAT"}, type="regression", estimator="linear",
                          epochs=30))
    spec = {"model": "model.mixed", "fingerprint": "mixed-1", "type": "regression",
            "raw_columns": [raw("x", min=-10, max=10), raw("n", "INT", False, 0, 100),
                            raw("color", "STRING", values=["red", "green", "blue"]),
                            raw("flag", "BOOL")],
            "transforms": [normalize_step("x")], "aggregates": aggs,
            "features": ["x_norm", "n", "color", "flag"], "labels": None,
            "metrics": result["metrics"]}
    return write_bundle(_TMP / "bundle-mixed", spec, _TMP / "mixed-model" / "saved_model")


@functools.cache
def stacked_bundle() -> Path:
    """A classifier fed the iris model's predicted class (a model used as a transformation)."""
    from runtime.bundle import write_bundle
    from runtime.train import predict_parquet

    predict_parquet(iris_model(), iris_data(), "iris_pred", _TMP / "stacked")
    feats = [{"name": "iris_pred", "type": "INT", "categorical": True, "categories": 3},
             _float("sepal_width_norm")]
    result = _train(_spec(_TMP / "stacked", _TMP / "stacked-model", feats,
                          {"name": "class", "type": "STRING"}, epochs=20))
    spec = {"model": "model.stacked", "fingerprint": "stacked-1", "type": "classification",
            "raw_columns": [raw(c, min=0, max=10) for c in IRIS_RAW],
            "transforms": [normalize_step(c) for c in NORMALIZED]
            + [{"name": "iris_pred", "model_bundle": str(iris_bundle())}],
            "aggregates": iris_aggregates(), "features": ["iris_pred", "sepal_width_norm"],
            "labels": result["labels"], "metrics": result["metrics"]}
    return write_bundle(_TMP / "bundle-stacked", spec, _TMP / "stacked-model" / "saved_model")


def _load(path: Path) -> dict[str, Any]:
    import json

    return dict(json.loads(path.read_text()))


def iris_instances() -> list[dict[str, float]]:
    df = pd.read_csv(IRIS_CSV)
    return [{c: float(v) for c, v in zip(IRIS_RAW, row)} for row in df[IRIS_RAW].to_numpy()]


class LiveServer:
    """A real uvicorn server on 127.0.0.1 (a free port), in a thread of this process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        from runtime.localserve import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
