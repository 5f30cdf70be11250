"""The prediction API (SPEC section 7): FastAPI over one loaded bundle, swappable live.

    POST /predict        {"instances": [{raw column: value}, ...]}
                         -> {"predictions": [{"label", "probabilities"}] | [{"value"}],
                             "model": fingerprint}
    GET  /healthz        200 once a model is loaded, 503 before
    GET  /metadata       model, fingerprint, raw input schema, features, labels, metrics
    POST /admin/reload   {"bundle": "/path"}: load that bundle fully, then swap it in
    GET  /docs           OpenAPI docs; the /predict body schema is the raw input schema

A request is handled column by column: each raw column's values are type-checked as a
set of Python types, range- and value-checked with numpy, and only the columns that
fail are walked instance by instance to name the culprits (HTTP 422,
`{"detail": [{"instance": 0, "field": "sepal_length", "message": "must be a number"}]}`).
The transforms then run over the whole batch as pandas (the built-ins of
`mlp.builtins.pytransform` and custom `transform` functions, with the aggregate values
the model was trained with), and the SavedModel signature is called once per request.

A request reads the current `Predictor` once and uses it to the end, so a reload, which
assigns a fully loaded and warmed-up `Predictor` in one step, never fails a request: the
ones in flight finish on the old model, the next ones get the new fingerprint.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response

from mlp.coltypes import ColumnType
from runtime.bundle import Bundle, ModelStep, RawColumn, load_bundle
from runtime.transforms import TransformJob

MAX_INSTANCES = 10_000  # per request
MAX_ERRORS = 100  # listed in one 422 answer
log = logging.getLogger("mlp.server")

_PYTYPES: dict[ColumnType, set[type]] = {
    ColumnType.FLOAT: {float, int}, ColumnType.INT: {int}, ColumnType.STRING: {str},
    ColumnType.BOOL: {bool},
}
_TYPE_MESSAGES = {ColumnType.FLOAT: "must be a number", ColumnType.INT: "must be an integer",
                  ColumnType.STRING: "must be a string", ColumnType.BOOL: "must be true or false"}


class InvalidInstances(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid values")
        self.errors = errors


def _error(instance: int | None, field: str | None, message: str) -> dict[str, Any]:
    return {"instance": instance, "field": field, "message": message}


Columns = dict[str, Any]  # name -> numpy array, pandas array or Series, one value per row


def validate(columns: tuple[RawColumn, ...], instances: list[Any]) -> Columns:
    """The instances as raw columns (FLOAT float64 with NaN, INT int64 or nullable Int64,
    BOOL bool or nullable boolean, STRING object); InvalidInstances naming every bad value."""
    errors = [_error(i, None, "must be a JSON object")
              for i, inst in enumerate(instances) if type(inst) is not dict]
    if errors:
        raise InvalidInstances(errors[:MAX_ERRORS])
    data = {}
    for col in columns:
        values = [inst.get(col.name) for inst in instances]
        data[col.name] = _column(col, values, instances, errors)
    if errors:
        errors.sort(key=lambda e: e["instance"])
        raise InvalidInstances(errors[:MAX_ERRORS])
    return data


def _column(col: RawColumn, values: list[Any], instances: list[dict[str, Any]],
            errors: list[dict[str, Any]]) -> Any:
    allowed = _PYTYPES[col.type]
    kinds = set(map(type, values))
    has_null = type(None) in kinds
    bad: set[int] = set()
    if not kinds <= allowed | {type(None)}:  # the slow path, only for a bad column
        bad = {i for i, v in enumerate(values) if v is not None and type(v) not in allowed}
        errors.extend(_error(i, col.name, _TYPE_MESSAGES[col.type]) for i in sorted(bad))
        values = [None if i in bad else v for i, v in enumerate(values)]
        has_null = True
    if has_null and col.required:
        for i, v in enumerate(values):
            if v is None and i not in bad:
                missing = col.name not in instances[i]
                errors.append(_error(i, col.name, "is required" if missing else "must not be null"))
    if col.values is not None:
        _check_values(col, values, errors)
    if col.type is ColumnType.FLOAT or col.type is ColumnType.INT:
        arr = np.array(values, dtype=np.float64)
        _check_range(col, arr, errors)
        if col.type is ColumnType.FLOAT:
            return arr
        return pd.array(values, dtype="Int64") if has_null else np.array(values, np.int64)
    if col.type is ColumnType.BOOL:
        return pd.array(values, dtype="boolean") if has_null else np.array(values, bool)
    return np.array(values, dtype=object)


def _check_range(col: RawColumn, arr: np.ndarray, errors: list[dict[str, Any]]) -> None:
    low = arr < col.min if col.min is not None else None
    high = arr > col.max if col.max is not None else None
    if low is not None and low.any():
        errors.extend(_error(int(i), col.name, f"must be at least {col.min:g}")
                      for i in np.flatnonzero(low))
    if high is not None and high.any():
        errors.extend(_error(int(i), col.name, f"must be at most {col.max:g}")
                      for i in np.flatnonzero(high))


def _check_values(col: RawColumn, values: list[Any], errors: list[dict[str, Any]]) -> None:
    allowed = set(col.values or ())
    if set(values) - allowed - {None}:
        shown = ", ".join(json.dumps(v) for v in col.values or ())
        for i, v in enumerate(values):
            if v is not None and v not in allowed:
                errors.append(_error(i, col.name, f"must be one of {shown}"))


@dataclass(frozen=True)
class _ModelColumn:
    """A transform step that is another model's predictions."""

    name: str
    predictor: Predictor


class Predictor:
    """A loaded bundle: validation, transforms and the SavedModel signature."""

    def __init__(self, bundle: Bundle) -> None:
        import tensorflow as tf

        self.bundle = bundle
        self.fingerprint = bundle.fingerprint
        self._model = tf.saved_model.load(str(bundle.saved_model))
        self._signature = self._model.signatures["serving_default"]
        self._inputs = dict(self._signature.structured_input_signature[1])
        self._steps = [_ModelColumn(s.name, Predictor(load_bundle(s.bundle)))
                       if isinstance(s, ModelStep) else s for s in bundle.steps]
        self._labels = list(bundle.labels or ())
        self._keys = [lab if isinstance(lab, str) else json.dumps(lab) for lab in self._labels]
        self._key = "probabilities" if bundle.classification else "value"
        self._order = [t.name.split(":")[0] for t in self._signature.inputs[:len(self._inputs)]]
        self._flat = False  # set by _warm_up once the flat call is shown to agree

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        """Load and warm up (first signature call, custom code imported)."""
        predictor = cls(load_bundle(path))
        predictor._warm_up()
        return predictor

    def _warm_up(self) -> None:
        from runtime.customcode import load_module

        feed = {}
        for name, spec in self._inputs.items():
            shape = [2] + [d or 1 for d in spec.shape.as_list()[1:]]
            feed[name] = (np.array([b"", b"x"], dtype=object) if spec.dtype.name == "string"
                          else np.arange(np.prod(shape)).reshape(shape).astype(
                              spec.dtype.as_numpy_dtype))
        public = self._call(feed)
        self._flat = sorted(self._order) == sorted(self._inputs)
        try:
            self._flat = self._flat and np.array_equal(self._call(feed), public)
        except Exception:  # a TensorFlow without the flat call: keep the public one
            self._flat = False
        for step in self._steps:
            if isinstance(step, _ModelColumn):
                step.predictor._warm_up()
            elif step.custom_path is not None:
                load_module(step.custom_path)

    def transform(self, columns: Columns) -> Columns:
        """The raw columns plus the transformed ones, run in bundle order over the batch."""
        if not self._steps:
            return columns
        from mlp.builtins.pytransform import apply_columns

        frame: Columns = dict(columns)
        jobs: list[TransformJob] = []
        for step in self._steps:
            if isinstance(step, TransformJob):
                jobs.append(step)
                continue
            if jobs:
                frame, jobs = apply_columns(frame, jobs, self.bundle.aggregates), []
            frame[step.name] = step.predictor.column(frame)
        if jobs:
            frame = apply_columns(frame, jobs, self.bundle.aggregates)
        made = [name for name in self._inputs if name not in columns]
        return {**columns, **{name: frame[name] for name in made if name in frame}}

    def column(self, columns: Columns) -> np.ndarray:
        """This model's predictions as a column: class index or value."""
        out = self.outputs(self.transform(columns))
        return out.argmax(axis=1).astype(np.int64) if self.bundle.classification else out

    def outputs(self, columns: Columns) -> np.ndarray:
        """The signature's output for the rows of transformed columns."""
        missing = [name for name in self._inputs if name not in columns]
        if missing:
            raise KeyError(f"the bundle makes no column {', '.join(missing)} for the model")
        return self._call({name: _tensor(columns[name], spec)
                           for name, spec in self._inputs.items()})

    def _call(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        import tensorflow as tf

        if self._flat:
            # The signature's own call spends more time checking its arguments than the
            # model takes to run; the flat call (checked equal at load) skips that.
            sig = self._signature
            args = [tf.constant(feed[name]) for name in self._order]
            out = sig._call_flat(args, sig.captured_inputs)
            return np.asarray(out[self._key] if isinstance(out, dict) else out[0])
        return np.asarray(self._signature(**feed)[self._key])

    def predict(self, instances: list[Any]) -> list[dict[str, Any]]:
        out = self.outputs(self.transform(validate(self.bundle.raw_columns, instances)))
        if not self.bundle.classification:
            # float32 printed at its own precision: 152.3, not 152.3000030517578
            return [{"value": v} for v in out.astype(str).astype(np.float64).tolist()]
        labels, keys = self._labels, self._keys
        best = out.argmax(axis=1).tolist()
        rows = np.round(out.astype(np.float64), 6).tolist()
        return [{"label": labels[b], "probabilities": dict(zip(keys, r))}
                for b, r in zip(best, rows)]


def _tensor(values: Any, spec: Any) -> np.ndarray:
    """A column as the numpy array a signature input takes (see runtime.tfdata)."""
    dtype = spec.dtype.name
    if dtype == "string":
        arr = np.asarray(values, dtype=object)
        missing = pd.isna(arr)
        return np.where(missing, "", arr) if missing.any() else arr
    if spec.shape.rank == 2:
        width = int(spec.shape[1])
        rows = [r if r is not None and len(r) == width else [0.0] * width for r in values]
        return np.array(rows, dtype=np.float32).reshape(len(rows), width)
    kind = getattr(values, "dtype", None)
    objects = kind is None or kind == np.dtype("O")  # not `in (None, ...)`: dtype(None) is float64
    if isinstance(values, np.ndarray) and not objects:
        arr = values
    elif not objects:  # a pandas Series or nullable array
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        arr = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(np.float64, na_value=np.nan)
    if dtype == "int64":
        return np.where(np.isnan(arr), -1, arr).astype(np.int64) if arr.dtype.kind == "f" \
            else arr.astype(np.int64)
    return arr.astype(np.float32)


class _State:
    """The current predictor; replaced whole, never mutated."""

    def __init__(self) -> None:
        self.predictor: Predictor | None = None
        self.reloading = asyncio.Lock()


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json")


def _body_error(field: str | None, message: str) -> Response:
    return _json({"detail": [_error(None, field, message)]}, 422)


def create_app(bundle_dir: str | Path | None, admin: bool = True) -> FastAPI:
    """The API serving the bundle in `bundle_dir` (None: 503 until /admin/reload)."""
    state = _State()
    if bundle_dir is not None:
        state.predictor = Predictor.load(bundle_dir)
    app = FastAPI(title="mlp prediction API", version="1")
    app.state.mlp = state

    @app.post("/predict", summary="Predict from raw values")
    async def predict(request: Request) -> Response:
        predictor = state.predictor
        if predictor is None:
            return _json({"detail": "no model is loaded yet"}, 503)
        try:
            body = orjson.loads(await request.body())
        except ValueError as e:
            return _body_error(None, f"the body is not valid JSON: {e}")
        instances = body.get("instances") if type(body) is dict else None
        if type(instances) is not list:
            return _body_error("instances", "must be a list of objects")
        if len(instances) > MAX_INSTANCES:
            return _body_error("instances", f"must hold at most {MAX_INSTANCES} instances")
        try:
            predictions = predictor.predict(instances) if instances else []
        except InvalidInstances as e:
            return _json({"detail": e.errors}, 422)
        except Exception as e:  # e.g. a custom transform that fails on these values
            log.exception("prediction failed")
            return _json({"detail": f"prediction failed: {type(e).__name__}: {e}"}, 500)
        return _json({"predictions": predictions, "model": predictor.fingerprint})

    @app.get("/healthz", summary="200 once a model is loaded")
    async def healthz() -> Response:
        p = state.predictor
        if p is None:
            return _json({"status": "loading"}, 503)
        return _json({"status": "ok", "model": p.bundle.model, "fingerprint": p.fingerprint})

    @app.get("/metadata", summary="The model, its raw input schema and its metrics")
    async def metadata() -> Response:
        p = state.predictor
        if p is None:
            return _json({"detail": "no model is loaded yet"}, 503)
        return _json(p.bundle.metadata())

    if admin:
        @app.post("/admin/reload", summary="Load another bundle, then swap it in")
        async def reload(request: Request) -> Response:
            try:
                path = json.loads(await request.body())["bundle"]
            except (ValueError, KeyError, TypeError):
                return _body_error("bundle", 'send {"bundle": "/path/to/bundle"}')
            async with state.reloading:
                try:
                    new = await asyncio.to_thread(Predictor.load, path)
                except Exception as e:  # the old model keeps serving
                    log.exception("reload of %s failed", path)
                    return _json({"detail": f"cannot load {path}: {e}"}, 400)
                old, state.predictor = state.predictor, new
                app.openapi_schema = None
            return _json({"model": new.bundle.model, "fingerprint": new.fingerprint,
                          "previous": old.fingerprint if old else None})

    app.openapi = lambda: _openapi(app, state)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, state: _State) -> dict[str, Any]:
    """FastAPI's schema with the /predict body described by the current raw columns."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        p = state.predictor
        columns = p.bundle.raw_columns if p else ()
        instance = {"type": "object", "properties": {c.name: _field_schema(c) for c in columns},
                    "required": [c.name for c in columns if c.required]}
        body = {"type": "object", "required": ["instances"],
                "properties": {"instances": {"type": "array", "items": instance}}}
        schema["paths"]["/predict"]["post"]["requestBody"] = {
            "required": True, "content": {"application/json": {"schema": body}}}
        app.openapi_schema = schema
    return app.openapi_schema


def _field_schema(c: RawColumn) -> dict[str, Any]:
    kinds = {ColumnType.FLOAT: "number", ColumnType.INT: "integer",
             ColumnType.STRING: "string", ColumnType.BOOL: "boolean"}
    out: dict[str, Any] = {"type": kinds[c.type]}
    if c.min is not None:
        out["minimum"] = c.min
    if c.max is not None:
        out["maximum"] = c.max
    if c.values is not None:
        out["enum"] = list(c.values)
    if not c.required:
        out["nullable"] = True
    return out
