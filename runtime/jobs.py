"""The jobs a provider runs, as data: one schema for the engine that writes a job and the
runtime that runs it, wherever that is.

    python -m runtime.train JOB.json          a TrainJob: train, evaluate, export a model
    python -m runtime.train --predict ...     a PredictJob's arguments: a model's predictions
    python -m runtime.gate JOB.json           a GateJob: score the serving and the new model
    python -m runtime.data JOB.json           a DataJob: one source's data unit, in Spark

The engine builds these dataclasses and writes `to_json()`; the runtime reads them back with
`from_json`, which checks every field's shape (a job file is data: nothing in it runs).
Artifact locations are URIs: `file:///abs/path` for the local provider, which also accepts
a bare path; `s3://`, `gs://` and `abfs://` are for jobs that run where the bucket is.
A job's data is a tuple of `TableRef`s, the stored tables that hold its columns: the job
joins them on `__row` where it runs (`runtime.tables`), so the engine never starts Spark for
a model.
This module imports nothing heavy, so the engine can build jobs without TensorFlow.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlp.builtins.catalogue import TRAINING_DEFAULTS
from mlp.coltypes import ColumnType

JOB_VERSION = 1
REMOTE_SCHEMES = ("s3", "gs", "abfs", "abfss")


class TrainError(Exception):
    """A failure the user can fix; reported as the final error event."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def file_uri(path: Path | str) -> str:
    """The `file://` URI of a local path (made absolute)."""
    return Path(path).resolve().as_uri()


def local_path(uri: str) -> Path:
    """The local path a `file://` URI (or a bare path) names. A bucket URI is refused with
    what to do: the local runtime reads and writes local files only."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.path))
    if parsed.scheme in REMOTE_SCHEMES:
        raise TrainError(f"{uri} is in object storage; this job reads and writes local files only",
                         "the provider stages bucket artifacts into local files before it runs the job")
    if parsed.scheme and len(parsed.scheme) > 1:  # "C:" is a drive, not a scheme
        raise TrainError(f"{uri!r} is not a location this runtime knows", "use a file:// URI or a path")
    return Path(uri)


@dataclass(frozen=True)
class Column:
    """A feature or target column, as the trainer (and a custom `create_model`) sees it.

    `categories` is the number of category ids of a categorical INT column (ids outside
    `0..categories-1` are read as one extra "unseen" id). `vocabulary` holds a STRING
    feature's values (learned from the training share, most frequent first) or a
    classification target's labels (sorted; the class index is the position). `width` is
    the length of a FLOAT_LIST feature.
    """

    name: str
    type: ColumnType
    categorical: bool = False
    categories: int | None = None
    vocabulary: tuple[Any, ...] | None = None
    width: int | None = None

    @property
    def dtype(self) -> str:
        """The tensor dtype the model takes for this column."""
        if self.type is ColumnType.STRING:
            return "string"
        if self.type is ColumnType.INT and self.categorical:
            return "int64"
        return "float32"

    @property
    def shape(self) -> tuple[int | None, ...]:
        return (None, self.width) if self.type is ColumnType.FLOAT_LIST else (None,)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type.value, "categorical": self.categorical,
                "categories": self.categories}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Column:
        categories = d.get("categories")
        return cls(str(d["name"]), ColumnType(d["type"]), bool(d.get("categorical", False)),
                   int(categories) if categories is not None else None)


@dataclass(frozen=True)
class TableRef:
    """A stored Parquet table (a folder's URI) and the columns a job takes from it; `__row`
    is always taken too. No `columns` means all of them: the form of a job file that names
    its data by one folder (`"data": "URI"`), read as one table."""

    uri: str
    columns: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"uri": self.uri, "columns": list(self.columns)}

    @classmethod
    def from_json(cls, d: Any) -> TableRef:
        if not isinstance(d, Mapping) or set(d) != {"uri", "columns"} or not isinstance(d["uri"], str) \
                or not isinstance(d["columns"], list) or not all(isinstance(c, str) for c in d["columns"]):
            raise ValueError(f"a table is an object with a uri and a list of column names, not {str(d)[:200]}")
        return cls(d["uri"], tuple(d["columns"]))


def tables_to_json(tables: tuple[TableRef, ...]) -> list[dict[str, Any]]:
    return [t.to_json() for t in tables]


def tables_from_json(x: Any) -> tuple[TableRef, ...]:
    """A job's tables: a list of `TableRef`s, or one folder's URI (every column of it)."""
    if isinstance(x, str):
        return (TableRef(x, ()),)
    if not isinstance(x, list) or not x:
        raise ValueError(f"a job's data is a non-empty list of tables, not {str(x)[:200]}")
    return tuple(TableRef.from_json(t) for t in x)


@dataclass(frozen=True)
class Training:
    epochs: int
    batch_size: int
    learning_rate: float
    split: float
    seed: int
    early_stopping: int  # patience in epochs; 0 turns it off

    @classmethod
    def from_json(cls, given: Mapping[str, Any]) -> Training:
        d = {**TRAINING_DEFAULTS, **{k: v for k, v in given.items() if v is not None}}
        t = cls(int(d["epochs"]), int(d["batch_size"]), float(d["learning_rate"]),
                float(d["split"]), int(d["seed"]), int(d["early_stopping"]))
        if not 0 < t.split < 1:
            raise TrainError(f"training.split must be between 0 and 1, not {t.split}",
                             "0.75 trains on three quarters of the rows and evaluates on the rest")
        if t.epochs < 1 or t.batch_size < 1:
            raise TrainError("training.epochs and training.batch_size must be at least 1")
        return t

    def to_json(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "batch_size": self.batch_size, "learning_rate": self.learning_rate,
                "split": self.split, "seed": self.seed, "early_stopping": self.early_stopping}


@dataclass(frozen=True)
class TrainJob:
    """Train one model on its tables, joined on `__row`, and export it to `out_dir`.

    `out_dir`, `tensorboard_dir`, `custom_path` and the tables' `uri`s are URIs (or bare local
    paths).
    """

    model: str
    fingerprint: str
    classification: bool
    estimator: str | None
    custom_path: str | None
    features: tuple[Column, ...]
    target: Column
    hparams: Mapping[str, Any]
    training: Training
    balance: str
    data: tuple[TableRef, ...]
    out_dir: str
    tensorboard_dir: str | None = None  # where the epochs' scalars go as TensorBoard events
    scaled_features: tuple[str, ...] = ()  # made by normalize/min_max_scale: never told to normalize

    def to_json(self) -> dict[str, Any]:
        return {"job": "train", "version": JOB_VERSION, "model": self.model, "fingerprint": self.fingerprint,
                "type": "classification" if self.classification else "regression",
                "estimator": self.estimator, "custom_path": self.custom_path,
                "features": [f.to_json() for f in self.features], "target": self.target.to_json(),
                "hparams": dict(self.hparams), "training": self.training.to_json(), "balance": self.balance,
                "data": tables_to_json(self.data), "out_dir": self.out_dir, "tensorboard_dir": self.tensorboard_dir,
                "scaled_features": list(self.scaled_features)}

    @classmethod
    def from_json(cls, d: Any) -> TrainJob:
        try:
            if not isinstance(d, Mapping):
                raise TypeError(f"the job is a {type(d).__name__}, not an object")
            _check_version(d)
            feats = tuple(Column.from_json(f) for f in d["features"])
            return cls(str(d["model"]), str(d.get("fingerprint", "")),
                       d["type"] == "classification", _opt_str(d.get("estimator")),
                       _opt_str(d.get("custom_path")), feats, Column.from_json(d["target"]),
                       dict(d.get("hparams") or {}), Training.from_json(d.get("training") or {}),
                       str(d.get("balance") or "none"), tables_from_json(d["data"]), str(d["out_dir"]),
                       _opt_str(d.get("tensorboard_dir")),
                       tuple(str(f) for f in d.get("scaled_features") or ()))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise TrainError(f"the training spec is invalid: {type(e).__name__}: {e}",
                             "the engine wrote a spec this trainer does not understand") from e


@dataclass(frozen=True)
class PredictJob:
    """Add a column of a trained model's predictions to a table (a model's column): the
    model's feature tables, joined on `__row`, written to `out_dir` with the column added.

    Run as `python -m runtime.train --predict BUNDLE DATA COLUMN OUT_DIR`, DATA the tables as
    JSON (`tables_to_json`) or one folder."""

    model_bundle: str
    data: tuple[TableRef, ...]
    column: str
    out_dir: str

    def argv(self) -> list[str]:
        return ["--predict", self.model_bundle, json.dumps(tables_to_json(self.data)), self.column, self.out_dir]

    @classmethod
    def from_argv(cls, args: list[str]) -> PredictJob:
        """The job of `argv()`; DATA may also be one folder (a path or URI, every column)."""
        if len(args) != 5 or args[0] != "--predict":
            raise ValueError("usage: --predict MODEL_DIR IN_DATA OUT_COLUMN OUT_DATA")
        data = args[2]
        return cls(args[1], tables_from_json(json.loads(data) if data.startswith("[") else data), args[3], args[4])


@dataclass(frozen=True)
class TrainResult:
    """What a finished training reports (its result.json)."""

    model: str
    classification: bool
    metrics: Mapping[str, Any]
    train_metrics: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[Mapping[str, Any], ...] = ()
    labels: tuple[Any, ...] | None = None
    warnings: tuple[Mapping[str, Any], ...] = ()
    rows: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: Any) -> TrainResult:
        if not isinstance(d, Mapping):
            raise ValueError("a training result is a JSON object")
        labels = d.get("labels")
        return cls(str(d.get("model", "")), d.get("type") == "classification", _mapping(d.get("metrics")),
                   _mapping(d.get("train_metrics")),
                   tuple(h for h in d.get("history") or () if isinstance(h, Mapping)),
                   tuple(labels) if isinstance(labels, list) else None,
                   tuple(w for w in d.get("warnings") or () if isinstance(w, Mapping)),
                   _mapping(d.get("rows")))


@dataclass(frozen=True)
class GateJob:
    """Score the serving model and the candidate on the candidate's evaluation rows."""

    old_bundle: str
    new_bundle: str
    dataset: tuple[TableRef, ...]  # the new model's training tables: its split is of their join
    source_table: str
    target: str
    split: float
    seed: int
    classification: bool
    max_rows: int = 20_000

    def to_json(self) -> dict[str, Any]:
        return {"job": "gate", "version": JOB_VERSION, "old_bundle": self.old_bundle,
                "new_bundle": self.new_bundle, "dataset": tables_to_json(self.dataset), "source_table": self.source_table,
                "target": self.target, "split": self.split, "seed": self.seed,
                "type": "classification" if self.classification else "regression", "max_rows": self.max_rows}

    @classmethod
    def from_json(cls, d: Any) -> GateJob:
        if not isinstance(d, Mapping):
            raise ValueError("a gate job is a JSON object")
        _check_version(d)
        return cls(str(d["old_bundle"]), str(d["new_bundle"]), tables_from_json(d["dataset"]), str(d["source_table"]),
                   str(d["target"]), float(d["split"]), int(d["seed"]), d["type"] == "classification",
                   int(d.get("max_rows", 20_000)))


@dataclass(frozen=True)
class GateScore:
    """The gate's answer: the main metric of the serving (`old`) and the new model."""

    metric: str
    old: float
    new: float
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "old": self.old, "new": self.new, "rows": self.rows}

    @classmethod
    def from_json(cls, d: Any) -> GateScore:
        if not isinstance(d, Mapping):
            raise ValueError("a gate score is a JSON object")
        return cls(str(d["metric"]), float(d["old"]), float(d["new"]), int(d["rows"]))


@dataclass(frozen=True)
class BackendRef:
    """Where an app's state and artifacts are, as its backend block says (never a secret:
    credentials come from the SDK's own chain where the job runs)."""

    kind: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "settings": dict(self.settings)}

    @classmethod
    def from_json(cls, d: Any) -> BackendRef:
        if not isinstance(d, Mapping) or not isinstance(d.get("kind"), str):
            raise ValueError("a backend is an object with a kind")
        settings = d.get("settings") or {}
        if not isinstance(settings, Mapping) or not all(
                isinstance(v, (str, int, float, bool)) for v in settings.values()):
            raise ValueError("a backend's settings are a flat object of strings and numbers")
        return cls(d["kind"], dict(settings))


@dataclass(frozen=True)
class DataJob:
    """Run one source's data unit of a saved plan: ingest, aggregates and transformed
    columns, in Spark, reading and writing the backend's artifact store.

    The job reads the app's files at `app_dir` and the plan at `plan` (URIs), and the state
    from the backend (it never writes the state: it reports each finished block as an event,
    and the process that holds the state lock records it).
    """

    app_dir: str
    plan: str
    backend: BackendRef
    unit: str                 # "data:source.NAME"
    spark_master: str = "local[*]"

    def to_json(self) -> dict[str, Any]:
        return {"job": "data", "version": JOB_VERSION, "app_dir": self.app_dir, "plan": self.plan,
                "backend": self.backend.to_json(), "unit": self.unit, "spark_master": self.spark_master}

    @classmethod
    def from_json(cls, d: Any) -> DataJob:
        if not isinstance(d, Mapping):
            raise ValueError("a data job is a JSON object")
        _check_version(d)
        unit = str(d["unit"])
        if not unit.startswith("data:"):
            raise ValueError(f"{unit!r} is not a data unit")
        return cls(str(d["app_dir"]), str(d["plan"]), BackendRef.from_json(d["backend"]), unit,
                   str(d.get("spark_master") or "local[*]"))


def _check_version(d: Mapping[str, Any]) -> None:
    version = d.get("version", JOB_VERSION)
    if version != JOB_VERSION:
        raise ValueError(f"job version {version!r}; this runtime reads version {JOB_VERSION}")


def _opt_str(x: Any) -> str | None:
    return str(x) if x else None


def _mapping(x: Any) -> dict[str, Any]:
    return dict(x) if isinstance(x, Mapping) else {}
