"""The trainer, run in its own process (the only place TensorFlow is imported for training).

    python -m runtime.train SPEC_JSON_PATH
    python -m runtime.train --predict MODEL_DIR IN_DATA OUT_COLUMN OUT_DATA

The spec's data is the model's tables (`runtime.jobs.TableRef`), joined on `__row` where the
trainer runs (`runtime.tables`); IN_DATA is the same as JSON, or one Parquet folder.

Training reads the spec (see `TrainSpec.from_json`), streams the Parquet data through
tf.data (`runtime.tfdata`), fits a built-in or custom Keras model (`runtime.estimators`)
with Adam, early stopping on the evaluation loss (best weights restored), and writes to
`out_dir`:

    saved_model/   signature `serving_default`: one named tensor per feature (dtypes in
                   runtime.tfdata) -> {"probabilities": [None, n]} or {"value": [None]};
                   `serving_packed`: the same with one tensor per dtype (runtime.packing)
    result.json    metrics, train_metrics, history, labels, warnings, rows, class_counts

Progress goes to stdout as JSON lines, one object each: `{"event": "epoch", ...}`,
`{"event": "warning", "code", "message", "fix"}`, `{"event": "done", ...}`, and on failure a
last `{"event": "error", "message", "hint"}` with a non-zero exit code. Anything else a
library prints goes to stderr.

`--predict` (and `predict_parquet`) adds a column of a trained model's predictions to a
Parquet data set, for a model used as a transformation: the predicted class index as a
categorical INT (categories = the number of labels) or the regression value as a FLOAT.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mlp.coltypes import ColumnType
from mlp.errors import MlpError
from runtime import guardrails, packing, tfdata
from runtime.jobs import Column, PredictJob, TableRef, TrainError, TrainJob, local_path
from runtime.tables import joined

Emit = Callable[[dict[str, Any]], None]
PREDICT_BATCH = 8192  # rows per model call when evaluating and predicting
AUC_BINS = 10_000  # score histogram resolution of the streamed AUC
SUPPORTED = (ColumnType.FLOAT, ColumnType.INT, ColumnType.BOOL, ColumnType.STRING,
             ColumnType.FLOAT_LIST)


# The job's schema lives in runtime.jobs, shared with the engine that writes it.
TrainSpec = TrainJob


def run(spec: TrainSpec, emit: Emit) -> dict[str, Any]:
    """Train, evaluate and export one model; returns what result.json holds. Its tables are
    joined in a folder inside `out_dir` for as long as it trains (`runtime.tables`)."""
    with ExitStack() as stack:
        return _run(spec, _tables(stack, spec.model, spec.data, local_path(spec.out_dir)), emit)


def _tables(stack: ExitStack, model: str, tables: tuple[TableRef, ...], scratch: Path) -> Path:
    """The job's tables as one local folder, kept until `stack` closes; a problem with them
    names the model."""
    try:
        data = stack.enter_context(joined(tables, scratch))
    except TrainError as e:
        raise TrainError(f"{model}: {e.message}", e.hint) from None
    if len(tables) > 1:
        print(f"data: {len(tables)} tables joined on __row", file=sys.stderr, flush=True)
    return data


def _run(spec: TrainSpec, data: Path, emit: Emit) -> dict[str, Any]:
    reader = _reader(spec, data)
    profile = reader.profile()
    _check_rows(spec, profile)
    reader = _completed(reader, spec, profile)
    counts = _class_counts(reader, profile)

    warnings = guardrails.check_data(spec.model, reader.features, profile, spec.balance,
                                     spec.scaled_features, spec.target.name)
    for w in warnings:
        emit({"event": "warning", **w.to_json()})
    model = _model(spec, reader, profile)
    train_rows = sum(counts["train"].values()) if counts else profile.train_rows  # balanced
    history = _fit(spec, model, reader, profile, (train_rows, profile.eval_rows), emit)
    call = _predict_function(model, reader.features)
    metrics = evaluate(model, reader, train=False, call=call)
    train_metrics = evaluate(model, reader, train=True, call=call)
    baseline = _baseline_loss(spec, profile, counts)
    late = guardrails.check_training(spec.model, history, metrics, train_metrics, baseline)
    for w in late:
        emit({"event": "warning", **w.to_json()})
    out = local_path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    export(model, reader.features, spec.classification, out / "saved_model")
    labels = list(reader.target.vocabulary or ()) if spec.classification else None
    result = _finite({
        "model": spec.model, "fingerprint": spec.fingerprint,
        "type": "classification" if spec.classification else "regression",
        "metrics": metrics, "train_metrics": train_metrics, "history": history,
        "labels": labels, "warnings": [w.to_json() for w in warnings + late],
        "rows": {"train": train_rows, "eval": profile.eval_rows},
        "class_counts": counts or None,
    })
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    emit({"event": "done", "model": spec.model, "metrics": result["metrics"],
          "rows": result["rows"], "out_dir": str(out)})
    return result


def _reader(spec: TrainSpec, data: Path) -> tfdata.Reader:
    for f in spec.features:
        if f.type not in SUPPORTED:
            raise TrainError(f"{spec.model}: feature {f.name!r} is {f.type.value}, which a "
                             "model cannot take", "use INT, FLOAT, BOOL, STRING or FLOAT_LIST")
    if not spec.features:
        raise TrainError(f"{spec.model} has no features")
    try:
        source = tfdata.ParquetSource(str(data))
    except (OSError, ValueError) as e:
        raise TrainError(f"{spec.model}: cannot read the training data at {data}: {e}"
                         ) from None
    reader = tfdata.Reader(source, spec.features, spec.target, spec.classification,
                           spec.training.split, spec.training.seed, spec.balance)
    try:
        reader.check_columns()
    except tfdata.DataSpecError as e:
        raise TrainError(f"{spec.model}: {e}") from e
    return reader


def _check_rows(spec: TrainSpec, profile: tfdata.Profile) -> None:
    split = spec.training.split
    if not profile.train_rows or not profile.eval_rows:
        side = "training" if not profile.train_rows else "evaluation"
        raise TrainError(f"{spec.model}: the {side} share is empty ({profile.train_rows} "
                         f"training and {profile.eval_rows} evaluation rows, split {split})",
                         "add rows, or move training.split away from 0 and 1")
    if spec.classification and len(profile.labels or ()) < 2:
        raise TrainError(f"{spec.model}: the target {spec.target.name!r} has only the class "
                         f"{list(profile.labels or ())}", "a classifier needs two classes")


def _completed(reader: tfdata.Reader, spec: TrainSpec, profile: tfdata.Profile
               ) -> tfdata.Reader:
    """The reader with what the profile learned: vocabularies, widths, category counts."""
    feats = []
    for f in spec.features:
        if f.type is ColumnType.STRING:
            f = replace(f, vocabulary=profile.vocabularies.get(f.name, ()))
        elif f.type is ColumnType.FLOAT_LIST:
            if f.name not in profile.widths:
                raise TrainError(f"{spec.model}: FLOAT_LIST feature {f.name!r} has no values")
            f = replace(f, width=profile.widths[f.name])
        elif f.dtype == "int64" and not f.categories:
            f = replace(f, categories=profile.max_ids.get(f.name, 0) + 1)
        feats.append(f)
    target = spec.target
    if spec.classification:
        labels = profile.labels or ()
        target = replace(target, categorical=True, categories=len(labels), vocabulary=labels)
    reader = replace(reader, features=tuple(feats), target=target)
    if spec.classification:
        reader.class_counts = {i: profile.train_classes.get(lab, 0)
                               for i, lab in enumerate(target.vocabulary or ())}
    return reader


def _class_counts(reader: tfdata.Reader, profile: tfdata.Profile) -> dict[str, dict[str, int]]:
    """Rows per class of both shares, the training one after balancing."""
    if not reader.classification:
        return {}
    labels = reader.target.vocabulary or ()
    if reader.balance == "none":
        train = {_key(lab): profile.train_classes.get(lab, 0) for lab in labels}
    else:
        balanced = reader.balanced_counts()
        train = {_key(lab): balanced.get(i, 0) for i, lab in enumerate(labels)}
    return {"train": train, "eval": {_key(lab): profile.eval_classes.get(lab, 0)
                                     for lab in labels}}


def _key(label: Any) -> str:
    """A label as a JSON object key, the way json.dumps writes it."""
    return label if isinstance(label, str) else json.dumps(label)


def _baseline_loss(spec: TrainSpec, profile: tfdata.Profile,
                   counts: dict[str, dict[str, int]]) -> float | None:
    """The loss of a constant prediction, for the no-convergence guardrail."""
    if spec.custom_path:
        return None
    if not spec.classification:
        return profile.target_std ** 2
    n = np.array(list(counts["train"].values()), dtype=np.float64)
    p = n[n > 0] / n.sum()
    return float(-(p * np.log(p)).sum())


def _model(spec: TrainSpec, reader: tfdata.Reader, profile: tfdata.Profile) -> Any:
    import keras

    from runtime import estimators

    keras.utils.set_random_seed(spec.training.seed)
    try:
        if spec.custom_path:
            return estimators.custom(str(local_path(spec.custom_path)), reader.features, reader.target,
                                     dict(spec.hparams))
        return estimators.build(spec.estimator or "dnn", spec.classification, reader.features,
                                reader.target, dict(spec.hparams), spec.training.learning_rate,
                                profile.target_mean, profile.target_std)
    except estimators.EstimatorError as e:
        raise TrainError(f"{spec.model}: {e}") from e


def _datasets(spec: TrainSpec, reader: tfdata.Reader, rows: tuple[int, int]
              ) -> tuple[Any, Any]:
    """The training and evaluation datasets; `rows` are the shares' sizes (the training one
    balanced): a small share is read once and held in memory, a larger one streamed."""
    t = spec.training
    epoch = iter(range(1, 1 << 62))
    target_dtype = "int64" if spec.classification else "float32"

    def train_blocks() -> Iterator[tuple[tfdata.Arrays, np.ndarray]]:
        return reader.blocks(True, shuffle_seed=t.seed * 100_003 + next(epoch))

    def dataset(train: bool, blocks: Callable[[], Iterator[tuple[tfdata.Arrays, np.ndarray]]],
                n: int, batch: int, seed: int | None) -> Any:
        small = tfdata.in_memory(reader.blocks(train)) if n <= tfdata.SMALL_ROWS else None
        if small is not None:
            return tfdata.memory_dataset(*small, batch, shuffle_seed=seed)
        return tfdata.make_dataset(blocks, reader.features, target_dtype, batch)

    return (dataset(True, train_blocks, rows[0], t.batch_size, t.seed),
            dataset(False, lambda: reader.blocks(False), rows[1], max(t.batch_size, 1024), None))


def _fit(spec: TrainSpec, model: Any, reader: tfdata.Reader, profile: tfdata.Profile,
         rows: tuple[int, int], emit: Emit) -> list[dict[str, float]]:
    import keras

    t = spec.training
    history: list[dict[str, float]] = []

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = {k: float(v) for k, v in (logs or {}).items()}
            loss = logs.get("loss", math.nan)
            if not math.isfinite(loss):
                raise TrainError(*guardrails.diverged(
                    spec.model, epoch + 1, loss, t.learning_rate, reader.features, profile,
                    spec.scaled_features, spec.target.name))
            history.append({"epoch": epoch + 1, **logs})
            emit({"event": "epoch", "epoch": epoch + 1, "epochs": t.epochs, "loss": loss,
                  "val_loss": logs.get("val_loss"),
                  "metrics": {k: v for k, v in logs.items() if k not in ("loss", "val_loss")}})

    callbacks: list[Any] = [Progress()]
    if spec.tensorboard_dir and _has_tensorboard(emit):
        callbacks.append(_tensorboard(str(local_path(spec.tensorboard_dir))))
    if t.early_stopping > 0:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=t.early_stopping, restore_best_weights=True))
    train, evals = _datasets(spec, reader, rows)
    with warnings.catch_warnings():  # Keras warns at the end of every unsized dataset
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        model.fit(train, validation_data=evals, epochs=t.epochs, callbacks=callbacks,
                  verbose=0, shuffle=False)
    return history


def _has_tensorboard(emit: Emit) -> bool:
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        return True
    emit({"event": "warning", "message": "no TensorBoard events are written: the tensorboard package is missing",
          "fix": "pip install tensorboard"})
    return False


def _tensorboard(log_dir: str) -> Any:
    """Each epoch's loss and metrics as TensorBoard scalars (`tensorboard --logdir`): a
    writer of tf.summary events, lighter than Keras' callback (no graph, no profiler)."""
    import keras
    import tensorflow as tf

    writers = {"train": tf.summary.create_file_writer(str(Path(log_dir) / "train")),
               "validation": tf.summary.create_file_writer(str(Path(log_dir) / "validation"))}

    class Events(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            for key, value in (logs or {}).items():
                split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
                with writers[split].as_default():
                    tf.summary.scalar(f"epoch_{name}", float(value), step=epoch + 1)
            for w in writers.values():
                w.flush()

    return Events()


def _predict_function(model: Any, features: tuple[Column, ...]) -> Callable[[Any], Any]:
    import tensorflow as tf

    specs = {f.name: tf.TensorSpec(f.shape, f.dtype) for f in features}
    return tf.function(lambda x: model(x, training=False),  # type: ignore[no-any-return]
                       input_signature=[specs])


def evaluate(model: Any, reader: tfdata.Reader, train: bool,
             call: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Metrics of one share (the training share unbalanced), streamed batch by batch."""
    target_dtype = "int64" if reader.classification else "float32"
    ds = tfdata.make_dataset(lambda: reader.blocks(train, balanced=False), reader.features,
                             target_dtype, PREDICT_BATCH)
    call = call or _predict_function(model, reader.features)
    labels = reader.target.vocabulary or ()
    acc: _Classes | _Values = _Classes(len(labels)) if reader.classification else _Values()
    for x, y in ds:
        acc.add(y.numpy(), np.asarray(call(x)))
    return acc.result(labels)


class _Classes:
    """Accuracy, per-class precision and recall, and (two classes) AUC from a histogram."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.confusion = np.zeros((n, n), dtype=np.int64)
        self.pos = np.zeros(AUC_BINS, dtype=np.int64)
        self.neg = np.zeros(AUC_BINS, dtype=np.int64)

    def add(self, y: np.ndarray, p: np.ndarray) -> None:
        if p.ndim != 2 or p.shape[1] != self.n:
            raise TrainError(f"the model returned shape {list(p.shape)}; a classifier must "
                             f"return probabilities of shape [batch, {self.n}]")
        pred = p.argmax(axis=1)
        self.confusion += np.bincount(y * self.n + pred, minlength=self.n * self.n).reshape(
            self.n, self.n)
        if self.n == 2:
            b = np.clip((p[:, 1] * AUC_BINS).astype(np.int64), 0, AUC_BINS - 1)
            self.pos += np.bincount(b[y == 1], minlength=AUC_BINS)
            self.neg += np.bincount(b[y == 0], minlength=AUC_BINS)

    def result(self, labels: tuple[Any, ...]) -> dict[str, Any]:
        c = self.confusion
        total = max(int(c.sum()), 1)
        out: dict[str, Any] = {"accuracy": float(np.trace(c)) / total}
        if self.n == 2 and self.pos.sum() and self.neg.sum():
            below = np.cumsum(self.neg) - self.neg
            out["auc"] = float((self.pos * (below + 0.5 * self.neg)).sum()
                               / (self.pos.sum() * self.neg.sum()))
        predicted, actual = c.sum(axis=0), c.sum(axis=1)
        diag = np.diag(c).astype(np.float64)
        out["precision"] = {_key(lab): float(diag[i] / predicted[i]) if predicted[i] else 0.0
                            for i, lab in enumerate(labels)}
        out["recall"] = {_key(lab): float(diag[i] / actual[i]) if actual[i] else 0.0
                         for i, lab in enumerate(labels)}
        return out


class _Values:
    """RMSE, MAE and R² from running sums."""

    def __init__(self) -> None:
        self.n = 0
        self.sse = self.sae = self.sy = self.syy = 0.0

    def add(self, y: np.ndarray, p: np.ndarray) -> None:
        y64, p64 = y.astype(np.float64), p.reshape(-1).astype(np.float64)
        err = p64 - y64
        self.n += len(y64)
        self.sse += float((err * err).sum())
        self.sae += float(np.abs(err).sum())
        self.sy += float(y64.sum())
        self.syy += float((y64 * y64).sum())

    def result(self, labels: tuple[Any, ...]) -> dict[str, Any]:
        n = max(self.n, 1)
        sst = self.syy - self.sy * self.sy / n
        return {"rmse": math.sqrt(self.sse / n), "mae": self.sae / n,
                "r2": 1.0 - self.sse / sst if sst > 0 else 0.0}


def export(model: Any, features: tuple[Column, ...], classification: bool, path: Path) -> None:
    """Save the model with a `serving_default` signature taking one tensor per feature,
    and `serving_packed` taking one per dtype (runtime.packing)."""
    import keras
    import tensorflow as tf

    specs = {f.name: tf.TensorSpec(f.shape, f.dtype, name=f.name) for f in features}

    plan = packing.layout((f.name, f.dtype, f.width) for f in features)
    packed_specs = {dtype: tf.TensorSpec([None, sum(s.columns for s in slots)], dtype,
                                         name=dtype) for dtype, slots in plan.items()}

    def serve(inputs: dict[str, Any]) -> dict[str, Any]:
        out = tf.cast(model(inputs, training=False), tf.float32)
        return {"probabilities": out} if classification else {"value": tf.reshape(out, [-1])}

    def serve_packed(packed: dict[str, Any]) -> dict[str, Any]:
        return serve(packing.unpack(tf, packed, plan))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve, input_signature=[specs])
    archive.add_endpoint(packing.SIGNATURE, serve_packed, input_signature=[packed_specs])
    archive.write_out(str(path), verbose=False)


@dataclass(frozen=True)
class PredictionColumn:
    """The column predict_parquet added."""

    name: str
    type: ColumnType
    categorical: bool
    categories: int | None
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {"column": self.name, "type": self.type.value, "categorical": self.categorical,
                "categories": self.categories, "rows": self.rows}


def predict_parquet(bundle_or_model_dir: str | Path, in_data: str | Path | tuple[TableRef, ...],
                    out_column: str, out_data: str | Path) -> PredictionColumn:
    """Copy `in_data` (a Parquet folder, or tables joined on `__row`) to `out_data` (one
    Parquet file, same row order) plus `out_column`: the model's predicted class index
    (categorical INT) or value (FLOAT). Locations are paths or file:// URIs."""
    tables = (TableRef(str(in_data), ()),) if isinstance(in_data, (str, Path)) else in_data
    out = local_path(str(out_data))
    out.mkdir(parents=True, exist_ok=True)
    with joined(tables, out) as data:
        return _predict(local_path(str(bundle_or_model_dir)), data, out_column, out)


def _predict(model_dir: Path, data: Path, out_column: str, out: Path) -> PredictionColumn:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import tensorflow as tf

    sig = tf.saved_model.load(str(model_dir / "saved_model")).signatures["serving_default"]
    inputs = _signature_columns(sig)
    classification = "probabilities" in sig.structured_outputs
    categories = _label_count(model_dir) if classification else None
    source = tfdata.ParquetSource(str(data))
    rows, writer = 0, None
    for _, batch in source.chunks(source.column_names):
        feed = {c.name: tf.constant(tfdata.feature_array(c, batch.column(c.name)))
                for c in inputs}
        result = sig(**feed)
        if classification:
            col = pa.array(result["probabilities"].numpy().argmax(axis=1).astype(np.int64))
        else:
            col = pa.array(result["value"].numpy().astype(np.float64))
        # No schema metadata: Spark would trust a copied footer schema over the columns.
        table = pa.Table.from_batches([batch]).append_column(out_column, col).replace_schema_metadata(None)
        writer = writer or pq.ParquetWriter(str(out / "part-00000.parquet"), table.schema)
        writer.write_table(table)
        rows += batch.num_rows
    if writer:
        writer.close()
    kind = ColumnType.INT if classification else ColumnType.FLOAT
    return PredictionColumn(out_column, kind, classification, categories, rows)


def _signature_columns(sig: Any) -> list[Column]:
    cols = []
    for name, spec in sorted(sig.structured_input_signature[1].items()):
        if spec.dtype.name == "string":
            cols.append(Column(name, ColumnType.STRING))
        elif spec.dtype.name == "int64":
            cols.append(Column(name, ColumnType.INT, categorical=True))
        elif spec.shape.rank == 2:
            cols.append(Column(name, ColumnType.FLOAT_LIST, width=int(spec.shape[1])))
        else:
            cols.append(Column(name, ColumnType.FLOAT))
    return cols


def _label_count(model_dir: Path) -> int | None:
    for meta in ("bundle.json", "result.json"):
        if (model_dir / meta).exists():
            labels = json.loads((model_dir / meta).read_text()).get("labels")
            return len(labels) if labels is not None else None
    return None


def _predict_job(args: list[str]) -> PredictJob:
    try:
        return PredictJob.from_argv(args)
    except ValueError as e:
        raise TrainError(f"the prediction job is invalid: {e}",
                         "IN_DATA is a Parquet folder or the job's tables as JSON") from None


def _finite(obj: Any) -> Any:
    """obj with NaN and infinities replaced by None, so it is valid JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _event_stream() -> Any:
    """A private handle on stdout for events; fd 1 itself then points at stderr, so what
    TensorFlow or user code prints cannot break the JSON lines."""
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return events


# What TensorFlow's C++ side prints before and besides its logging is set up: INFO and
# WARNING lines of absl (oneDNN notices, CPU feature notes) and absl's own preamble. They
# say nothing about the user's model, so they stay out of the model's log.
_NATIVE_NOISE = re.compile(rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
                           rb"|[IW]\d{4} [\d:. ]+\s+\d+ [\w./-]+:\d+\] )")


def _quiet_native_logs() -> Callable[[], None]:
    """Route fd 2 through a filter that drops `_NATIVE_NOISE`; returns the drain to call
    before exiting, which flushes what is left."""
    read_end, write_end = os.pipe()
    real = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as src, os.fdopen(real, "wb", buffering=0) as dst:
            for line in src:
                if not _NATIVE_NOISE.match(line):
                    dst.write(line)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()

    def drain() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)  # the last writers of the pipe go: the pump sees its end
        os.dup2(devnull, 1)
        os.close(devnull)
        thread.join(timeout=5)
    return drain


def main(argv: list[str] | None = None) -> int:
    drain = _quiet_native_logs()
    try:
        return _main(argv)
    finally:
        drain()


def _main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    events = _event_stream()

    def emit(event: dict[str, Any]) -> None:
        events.write(json.dumps(_finite(event)) + "\n")

    try:
        if args[:1] == ["--predict"] and len(args) == 5:
            job = _predict_job(args)
            emit({"event": "done", **predict_parquet(job.model_bundle, job.data, job.column, job.out_dir).to_json()})
        elif len(args) == 1 and not args[0].startswith("-"):
            run(TrainSpec.from_json(json.loads(Path(args[0]).read_text())), emit)
        else:
            raise TrainError("usage: python -m runtime.train SPEC_JSON | --predict MODEL_DIR "
                             "IN_DATA OUT_COLUMN OUT_DATA", "IN_DATA is a Parquet folder or the tables as JSON")
        return 0
    except TrainError as e:
        emit({"event": "error", "message": e.message, "hint": e.hint})
    except MlpError as e:  # e.g. custom code that does not import
        detail = f" ({e.detail})" if e.detail else ""
        emit({"event": "error", "message": e.summary + detail, "hint": e.hint})
    except Exception as e:  # report, with the traceback on stderr, instead of dying silently
        traceback.print_exc()
        emit({"event": "error", "message": f"{type(e).__name__}: {e}",
              "hint": "an unexpected failure; the traceback is in the training log (stderr)"})
    return 1


if __name__ == "__main__":
    sys.exit(main())
