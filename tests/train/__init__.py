"""Helpers for the trainer tests: small Parquet data sets, specs, in-process training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
IRIS_CSV = REPO / "examples" / "iris" / "data" / "iris.csv"
IRIS_FEATURES = ["sepal_length_norm", "sepal_width_norm", "petal_length_norm", "petal_width"]
IRIS_TRAINING = {"epochs": 100, "batch_size": 16, "learning_rate": 0.01, "split": 0.75,
                 "seed": 0, "early_stopping": 5}


def iris_frame() -> pd.DataFrame:
    """The iris CSV plus the three normalized columns the iris example feeds its model."""
    df = pd.read_csv(IRIS_CSV)
    for c in ("sepal_length", "sepal_width", "petal_length"):
        df[f"{c}_norm"] = (df[c] - df[c].mean()) / df[c].std()
    return df


def write_parquet(df: pd.DataFrame, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    df.to_parquet(folder / "part-00000.parquet", index=False)
    return str(folder)


def feature(name: str, type: str = "FLOAT", categorical: bool = False,
            categories: int | None = None) -> dict[str, Any]:
    return {"name": name, "type": type, "categorical": categorical, "categories": categories}


def make_spec(data: str, out_dir: Path, features: list[dict[str, Any]], target: dict[str, Any],
              *, type: str = "classification", estimator: str | None = "dnn",
              hparams: dict[str, Any] | None = None, training: dict[str, Any] | None = None,
              balance: str = "none", custom_path: str | None = None,
              model: str = "model.m") -> dict[str, Any]:
    return {"model": model, "fingerprint": "f" * 16, "type": type, "estimator": estimator,
            "custom_path": custom_path, "features": features, "target": target,
            "hparams": hparams or {}, "training": training or {}, "balance": balance,
            "data": data, "out_dir": str(out_dir)}


def iris_spec(tmp: Path, **training: Any) -> dict[str, Any]:
    data = write_parquet(iris_frame(), tmp / "iris")
    return make_spec(data, tmp / "out", [feature(f) for f in IRIS_FEATURES],
                     {"name": "class", "type": "STRING"}, model="model.dnn",
                     hparams={"hidden_units": [16, 8]}, training={**IRIS_TRAINING, **training})


def train(spec: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train in this process; the result.json content and the events emitted."""
    from runtime.train import TrainSpec, run

    events: list[dict[str, Any]] = []
    result = run(TrainSpec.from_json(spec), events.append)
    return result, events


def warning_codes(result: dict[str, Any]) -> list[str]:
    return [w["code"] for w in result["warnings"]]
