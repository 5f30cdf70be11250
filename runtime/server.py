"""The prediction API (SPEC section 7): FastAPI over one loaded bundle, swappable live.

    POST /predict        {"instances": [{raw column: value}, ...]}
                         -> {"predictions": [{"label", "probabilities"}] | [{"value"}],
                             "model": fingerprint}
    GET  /healthz        200 once a model is loaded, 503 before
    GET  /metadata       model, fingerprint, raw input schema, features, labels, metrics
    POST /admin/reload   {"bundle": "/path"}: load that bundle fully, then swap it in
    GET  /docs           OpenAPI docs; the /predict body schema is the raw input schema

A request's instances are checked against the raw columns (runtime.validation); bad ones
get HTTP 422 naming each instance and field,
`{"detail": [{"instance": 0, "field": "sepal_length", "message": "must be a number"}]}`.
The transforms then run over the whole batch (`mlp.builtins.pytransform.compile_columns`:
numpy for the numeric built-ins, pandas for the rest and for custom `transform` functions,
with the aggregate values the model was trained with), and the SavedModel's signature is called once per request
(runtime.signature: a session running in the request's thread, one tensor per dtype).

A request reads the current `Predictor` once and uses it to the end, so a reload, which
assigns a fully loaded and warmed-up `Predictor` in one step, never fails a request: the
ones in flight finish on the old model, the next ones get the new fingerprint.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable
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
from runtime.signature import Signature
from runtime.transforms import TransformJob
from runtime.validation import Columns, InvalidInstances, Validator, error

MAX_INSTANCES = 10_000  # per request
log = logging.getLogger("mlp.server")

@dataclass(frozen=True)
class _ModelColumn:
    """A transform step that is another model's predictions."""

    name: str
    predictor: Predictor


class Predictor:
    """A loaded bundle: validation, transforms and the SavedModel signature."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.fingerprint = bundle.fingerprint
        self._validate = Validator(bundle.raw_columns)
        self._signature = Signature(bundle.saved_model)
        self._inputs = self._signature.features
        self._steps = [_ModelColumn(s.name, Predictor(load_bundle(s.bundle)))
                       if isinstance(s, ModelStep) else s for s in bundle.steps]
        self._stages = self._compile()
        self._labels = list(bundle.labels or ())
        self._keys = [lab if isinstance(lab, str) else json.dumps(lab) for lab in self._labels]

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        """Load and warm up (first signature call, custom code imported)."""
        predictor = cls(load_bundle(path))
        predictor._warm_up()
        return predictor

    def _warm_up(self) -> None:
        from runtime.customcode import load_module

        self._signature(self._signature.sample())  # the session builds its executors
        for step in self._steps:
            if isinstance(step, _ModelColumn):
                step.predictor._warm_up()
            elif step.custom_path is not None:
                load_module(step.custom_path)

    def transform(self, columns: Columns) -> Columns:
        """The raw columns plus the transformed ones, run in bundle order over the batch."""
        for stage in self._stages:
            columns = stage(columns)
        return columns

    def _compile(self) -> list[Callable[[Columns], Columns]]:
        """The steps as stages: each run of transformed columns compiled into one
        (`compile_columns`), each model column one."""
        from mlp.builtins.pytransform import compile_columns

        stages: list[Callable[[Columns], Columns]] = []
        jobs: list[TransformJob] = []
        for step in [*self._steps, None]:
            if isinstance(step, TransformJob):
                jobs.append(step)
                continue
            if jobs:
                stages.append(compile_columns(jobs, self.bundle.aggregates))
                jobs = []
            if isinstance(step, _ModelColumn):
                stages.append(_model_stage(step))
        return stages

    def column(self, columns: Columns) -> np.ndarray:
        """This model's predictions as a column: class index or value."""
        out = self.outputs(self.transform(columns))
        return out.argmax(axis=1).astype(np.int64) if self.bundle.classification else out

    def outputs(self, columns: Columns) -> np.ndarray:
        """The signature's output for the rows of transformed columns."""
        missing = [name for name in self._inputs if name not in columns]
        if missing:
            raise KeyError(f"the bundle makes no column {', '.join(missing)} for the model")
        return self._signature({name: _tensor(columns[name], dtype, width)
                                for name, (dtype, width) in self._inputs.items()})

    def predict(self, instances: list[Any]) -> list[dict[str, Any]]:
        out = self.outputs(self.transform(self._validate(instances)))
        if not self.bundle.classification:
            # float32 printed at its own precision: 152.3, not 152.3000030517578
            return [{"value": v} for v in out.astype(str).astype(np.float64).tolist()]
        labels, keys = self._labels, self._keys
        best = out.argmax(axis=1).tolist()
        rows = out.astype(np.float64).round(6).tolist()
        return [{"label": labels[b], "probabilities": dict(zip(keys, r))}
                for b, r in zip(best, rows)]


def _model_stage(step: _ModelColumn) -> Callable[[Columns], Columns]:
    return lambda cols: {**cols, step.name: step.predictor.column(cols)}


def _tensor(values: Any, dtype: str, width: int | None) -> np.ndarray:
    """A column as a numpy array of the values a signature input takes (see
    runtime.tfdata): objects for strings, numbers of any numeric dtype for the rest."""
    if dtype == "string":
        arr = np.asarray(values, dtype=object)
        missing = pd.isna(arr)
        return np.where(missing, "", arr) if missing.any() else arr
    if width is not None:
        rows = [r if r is not None and len(r) == width else [0.0] * width for r in values]
        return np.array(rows, dtype=np.float64).reshape(len(rows), width)
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
            else arr
    return arr  # cast to float32 by the signature, in the copy it makes anyway


class _State:
    """The current predictor; replaced whole, never mutated."""

    def __init__(self) -> None:
        self.predictor: Predictor | None = None
        self.reloading = asyncio.Lock()


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json")


def _body_error(field: str | None, message: str) -> Response:
    return _json({"detail": [error(None, field, message)]}, 422)


def create_app(bundle_dir: str | Path | None, admin: bool = True,
               admin_token: str | None = None) -> FastAPI:
    """The API serving the bundle in `bundle_dir` (None: 503 until /admin/reload); with
    `admin_token`, /admin/reload answers only `Authorization: Bearer <admin_token>`."""
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
            if admin_token is not None and not hmac.compare_digest(
                    request.headers.get("authorization", "").encode(),
                    f"Bearer {admin_token}".encode()):
                return _json({"detail": "send the admin token: Authorization: Bearer <token>"},
                             401)
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
