"""The prediction API (SPEC section 7): FastAPI over one loaded bundle, swappable live.

    POST /predict        {"instances": [{raw column: value}, ...]}
                         -> {"predictions": [{"label", "probabilities"}] | [{"value"}],
                             "model": fingerprint}
    GET  /healthz        200 once a model is loaded, 503 before
    GET  /metadata       model, fingerprint, raw input schema, features, labels, metrics
    POST /admin/reload   {"bundle": "/path"}: load that bundle fully, then swap it in
    GET  /docs           OpenAPI docs; the /predict body schema is the raw input schema

Every error answers `{"detail": [{"instance": 0 | null, "field": "name" | null,
"message": "..."}]}`, and every status a route can answer is in /openapi.json (docs/api.md
says when each is returned). A request's instances are checked against the raw columns
(runtime.validation); bad ones get HTTP 422 naming each instance and field. The transforms
then run over the whole batch (`mlp.builtins.pytransform.compile_columns`: numpy for the
numeric built-ins, pandas for the rest and for custom `transform` functions, with the
aggregate values the model was trained with); the transformed columns the model needs are
checked to be finite (`FiniteColumns`), and the SavedModel's signature is called once per
request (runtime.signature: a session running in the request's thread, one tensor per
dtype). A custom transform that raises on the request's values is the data's fault, a 422
naming its column; 500 is left for mlp's own bugs. A body over `max_body_bytes` gets 413
before it is read (`_BodyLimit`).

A request reads the current `Predictor` once, when its body is in, and uses it to the end
(no await in between), so a reload, which assigns a fully loaded and warmed-up `Predictor`
in one step, never fails a request: the ones in flight finish on the old model, the next
ones get the new fingerprint.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlp.builtins.pytransform import TransformFailed
from mlp.coltypes import ColumnType
from mlp.errors import MlpError
from runtime.bundle import Bundle, ModelStep, RawColumn, load_bundle
from runtime.signature import Signature
from runtime.transforms import TransformJob
from runtime.validation import (
    INT64_MAX,
    INT64_MIN,
    Columns,
    FiniteColumns,
    InvalidInstances,
    Validator,
    error,
    finite,
    parse_json,
    prediction_errors,
)

MAX_INSTANCES = 10_000  # per request
MAX_BODY_BYTES = 4 * 1024 * 1024  # per request, unless runtime.serve --max-body-bytes says
RELOAD_BODY = '{"bundle": "/path/to/bundle"}'
MAX_MESSAGE = 300  # characters of a custom transform's exception shown in a 422
_CHECKED = (ColumnType.FLOAT, ColumnType.FLOAT_LIST)  # the types FiniteColumns checks
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
        (`compile_columns`) and followed by the finite check of those the model needs,
        each model column one."""
        from mlp.builtins.pytransform import compile_columns

        needed = self._needed()
        stages: list[Callable[[Columns], Columns]] = []
        jobs: list[TransformJob] = []
        for step in [*self._steps, None]:
            if isinstance(step, TransformJob):
                jobs.append(step)
                continue
            if jobs:
                stages.append(compile_columns(jobs, self.bundle.aggregates))
                checked = [j for j in jobs if j.name in needed and j.output_type in _CHECKED]
                if checked:
                    stages.append(FiniteColumns(_sources(checked)))
                jobs = []
            if isinstance(step, _ModelColumn):
                stages.append(_model_stage(step))
        return stages

    def _needed(self) -> set[str]:
        """The columns the model reads, and those they are made from."""
        needed = set(self._inputs)
        for step in reversed(self._steps):
            if step.name not in needed:
                continue
            if isinstance(step, _ModelColumn):
                needed |= {c.name for c in step.predictor.bundle.raw_columns}
            else:
                needed |= {r.name for r in step.inputs.values() if r.kind == "column"}
        return needed

    def column(self, columns: Columns, name: str) -> np.ndarray:
        """This model's predictions as the column `name`: class index or value."""
        out = self.outputs(self.transform(columns))
        if not finite(out):
            raise InvalidInstances(prediction_errors(out, name))
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
        if not finite(out):
            raise InvalidInstances(prediction_errors(out, self._signature.output))
        if not self.bundle.classification:
            # float32 printed at its own precision: 152.3, not 152.3000030517578
            return [{"value": v} for v in out.astype(str).astype(np.float64).tolist()]
        labels, keys = self._labels, self._keys
        best = out.argmax(axis=1).tolist()
        rows = out.astype(np.float64).round(6).tolist()
        return [{"label": labels[b], "probabilities": dict(zip(keys, r))}
                for b, r in zip(best, rows)]


def _sources(jobs: Iterable[TransformJob]) -> list[tuple[str, tuple[str, ...]]]:
    return [(j.name, tuple(r.name for r in j.inputs.values() if r.kind == "column")) for j in jobs]


def _model_stage(step: _ModelColumn) -> Callable[[Columns], Columns]:
    return lambda cols: {**cols, step.name: step.predictor.column(cols, step.name)}


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


def _json(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                    media_type="application/json", headers=headers)


def _error(status: int, message: str, field: str | None = None, instance: int | None = None,
           headers: Mapping[str, str] | None = None) -> Response:
    return _json({"detail": [error(instance, field, message)]}, status, headers)


def _body_error(field: str | None, message: str) -> Response:
    return _error(422, message, field)


# -- the request body ----------------------------------------------------------------------


class _BodyTooLarge(Exception):
    pass


class _BodyLimit:
    """413 for a body over `limit` bytes: at once when its Content-Length says so (nothing
    read), else as soon as the bytes received pass it (a chunked body is never held
    whole). uvicorn drains the rest of an unread body, so the client still reads the 413;
    a body under its Content-Length is the HTTP server's to cut off."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = _content_length(scope["headers"])
        if length is not None:  # the HTTP server reads no more than that
            if length > self.limit:
                return await self._refuse(scope, receive, send)
            return await self.app(scope, receive, send)
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise _BodyTooLarge
            return message
        try:
            await self.app(scope, counted, send)
        except _BodyTooLarge:  # raised in the route while it reads the body, before it answers
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _error(413, body_limit_message(self.limit))(scope, receive, send)


def body_limit_message(limit: int) -> str:
    return (f"the request body is over the limit of {limit} bytes; send fewer instances per "
            "request, or raise max_body_bytes in the api block (`--max-body-bytes N` of "
            "`python -m runtime.serve`)")


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _json_content(request: Request) -> bool:
    """No Content-Type, application/json (any parameters) or application/*+json."""
    for key, value in request.scope["headers"]:  # not `request.headers`: it builds a Headers
        if key == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or (media.startswith(b"application/")
                                                     and media.endswith(b"+json"))
    return True


async def _read_json(request: Request, example: str) -> tuple[Any, Response | None]:
    """(the parsed body, None), or (None, the 415 or 422 answer)."""
    if not _json_content(request):
        return None, _error(415, "send the body as JSON: Content-Type: application/json")
    body = await request.body()
    if not body:
        return None, _body_error(None, f"the body is empty: send {example}")
    try:
        return parse_json(body), None
    except ValueError as e:
        return None, _body_error(None, f"the body is not valid JSON: {e}")


# -- the app -------------------------------------------------------------------------------


def create_app(bundle_dir: str | Path | None, admin: bool = True,
               admin_token: str | None = None, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The API serving the bundle in `bundle_dir` (None: 503 until /admin/reload); with
    `admin_token`, /admin/reload answers only `Authorization: Bearer <admin_token>`; a body
    over `max_body_bytes` gets 413."""
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be at least 1, not {max_body_bytes}")
    state = _State()
    if bundle_dir is not None:
        state.predictor = Predictor.load(bundle_dir)
    app = FastAPI(title="mlp prediction API", version="1")
    app.state.mlp = state
    app.add_middleware(_BodyLimit, limit=max_body_bytes)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)
    _add_routes(app, state)
    if admin:
        _add_reload(app, state, admin_token)
    app.openapi = lambda: _openapi(app, state, admin_token)  # type: ignore[method-assign]
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    """404, 405 and the like in the API's error shape."""
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, str(exc.detail), headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    return _internal(exc)


def _internal(exc: Exception) -> Response:
    return _error(500, f"the server failed ({type(exc).__name__}); its log has the traceback")


async def _read_instances(request: Request) -> list[Any] | Response:
    """The body's instances, or the 415 or 422 answer."""
    body, refused = await _read_json(request, '{"instances": [...]}')
    if refused is not None:
        return refused
    instances = body.get("instances") if type(body) is dict else None
    if type(instances) is not list:
        return _body_error("instances", "must be a list of objects")
    if len(instances) > MAX_INSTANCES:
        return _body_error("instances", f"must hold at most {MAX_INSTANCES} instances")
    return instances


def _answer(predictor: Predictor, instances: list[Any]) -> Response:
    try:
        predictions = predictor.predict(instances) if instances else []
    except InvalidInstances as e:
        return _json({"detail": e.errors}, 422)
    except TransformFailed as e:  # the request's values made the user's code fail
        log.warning("the custom transform of %s failed on a request", e.column, exc_info=e.cause)
        message = f"the custom transform raised {type(e.cause).__name__}: {e.cause}"
        return _error(422, message[:MAX_MESSAGE], e.column, 0 if len(instances) == 1 else None)
    except Exception as e:  # a bug of mlp's: the traceback is for the log, not the client
        log.exception("prediction failed")
        return _internal(e)
    return _json({"predictions": predictions, "model": predictor.fingerprint})


def _add_routes(app: FastAPI, state: _State) -> None:
    @app.post("/predict", summary="Predict from raw values",
              responses=_responses(Predictions, 413, 415, 422, 500, 503))
    async def predict(request: Request) -> Response:
        if state.predictor is None:
            return _error(503, "no model is loaded yet")
        instances = await _read_instances(request)
        if isinstance(instances, Response):
            return instances
        predictor = state.predictor  # once the body is in: no await from here to the answer
        return _answer(predictor, instances) if predictor else _error(503, "no model is loaded yet")

    @app.get("/healthz", summary="200 once a model is loaded",
             responses={**_responses(Health, 413, 500), 503: {"model": Loading, "description": STATUSES[503]}})
    async def healthz() -> Response:
        p = state.predictor
        if p is None:
            return _json({"status": "loading"}, 503)
        return _json({"status": "ok", "model": p.bundle.model, "fingerprint": p.fingerprint})

    @app.get("/metadata", summary="The model, its raw input schema and its metrics",
             responses=_responses(Metadata, 413, 500, 503))
    async def metadata() -> Response:
        p = state.predictor
        if p is None:
            return _error(503, "no model is loaded yet")
        return _json(p.bundle.metadata())


def _add_reload(app: FastAPI, state: _State, admin_token: str | None) -> None:
    codes = (400, 401, 413, 415, 422, 500) if admin_token is not None else (400, 413, 415, 422, 500)

    @app.post("/admin/reload", summary="Load another bundle, then swap it in",
              responses=_responses(Reloaded, *codes))
    async def reload(request: Request) -> Response:
        if admin_token is not None and not hmac.compare_digest(
                request.headers.get("authorization", "").encode(), f"Bearer {admin_token}".encode()):
            return _error(401, "send the admin token: Authorization: Bearer <token>",
                          headers={"www-authenticate": "Bearer"})
        body, refused = await _read_json(request, RELOAD_BODY)
        if refused is not None:
            return refused
        path = body.get("bundle") if type(body) is dict else None
        if type(path) is not str or not path:
            return _body_error("bundle", f"send {RELOAD_BODY}")
        async with state.reloading:
            try:
                new = await asyncio.to_thread(Predictor.load, path)
            except Exception as e:  # the old model keeps serving
                log.exception("reload of %s failed", path)
                reason = "; ".join(filter(None, (e.summary, e.detail))) if isinstance(e, MlpError) else str(e)
                return _error(400, f"cannot load {path}: {reason}", "bundle")
            old, state.predictor = state.predictor, new
            app.openapi_schema = None
        return _json({"model": new.bundle.model, "fingerprint": new.fingerprint,
                      "previous": old.fingerprint if old else None})


# -- the OpenAPI document ------------------------------------------------------------------


class ErrorItem(BaseModel):
    instance: int | None = Field(description="the instance's index in `instances`; null: not one instance's")
    field: str | None = Field(description="the raw field, transformed column, model output or body key; "
                                          "null: the body as a whole")
    message: str


class ErrorBody(BaseModel):
    detail: list[ErrorItem]


class Classified(BaseModel):
    label: str | int | float | bool
    probabilities: dict[str, float]


class Valued(BaseModel):
    value: float


class Predictions(BaseModel):
    predictions: list[Classified | Valued]
    model: str


class Health(BaseModel):
    status: Literal["ok"]
    model: str
    fingerprint: str


class Loading(BaseModel):
    status: Literal["loading"]


class InputColumn(BaseModel):
    name: str
    field: str  # the request's field that holds it
    type: Literal["FLOAT", "INT", "STRING", "BOOL"]
    required: bool
    min: float | None
    max: float | None
    values: list[Any] | None


class Metadata(BaseModel):
    model: str
    fingerprint: str
    type: Literal["classification", "regression"]
    inputs: list[InputColumn]
    features: list[str]
    labels: list[Any] | None
    metrics: dict[str, Any]


class Reloaded(BaseModel):
    model: str
    fingerprint: str
    previous: str | None


STATUSES = {
    400: "the bundle cannot be loaded; the old model keeps serving",
    401: "no admin token, or a wrong one",
    413: "the body is over the server's --max-body-bytes",
    415: "the body is not sent as JSON (Content-Type)",
    422: "the body, an instance, a transformed value or a prediction is not valid; "
         "`detail` names each instance and field",
    500: "a bug of the server's; its log has the traceback",
    503: "no model is loaded yet",
}


def _responses(ok: type[BaseModel], *errors: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {200: {"model": ok, "description": "OK"}}
    out.update({code: {"model": ErrorBody, "description": STATUSES[code]} for code in errors})
    return out


def _openapi(app: FastAPI, state: _State, admin_token: str | None) -> dict[str, Any]:
    """FastAPI's schema with the request bodies, /predict's described by the current raw
    columns, and the admin token as a bearer scheme."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        p = state.predictor
        columns = p.bundle.raw_columns if p else ()
        instance = {"type": "object", "properties": {c.field: _field_schema(c) for c in columns},
                    "required": [c.field for c in columns if c.required]}
        body = {"type": "object", "required": ["instances"], "properties": {
            "instances": {"type": "array", "items": instance, "maxItems": MAX_INSTANCES}}}
        schema["paths"]["/predict"]["post"]["requestBody"] = _body(body)
        if "/admin/reload" in schema["paths"]:
            _document_reload(schema, admin_token)
        app.openapi_schema = schema
    return app.openapi_schema


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _document_reload(schema: dict[str, Any], admin_token: str | None) -> None:
    op = schema["paths"]["/admin/reload"]["post"]
    op["requestBody"] = _body({"type": "object", "required": ["bundle"],
                               "properties": {"bundle": {"type": "string", "minLength": 1}}})
    if admin_token is not None:
        schema.setdefault("components", {})["securitySchemes"] = {
            "adminToken": {"type": "http", "scheme": "bearer"}}
        op["security"] = [{"adminToken": []}]


def _field_schema(c: RawColumn) -> dict[str, Any]:
    kinds = {ColumnType.FLOAT: "number", ColumnType.INT: "integer",
             ColumnType.STRING: "string", ColumnType.BOOL: "boolean"}
    out: dict[str, Any] = {"type": kinds[c.type]}
    low, high = c.min, c.max
    if c.type is ColumnType.INT:
        out["format"] = "int64"
        low = INT64_MIN if low is None else low
        high = INT64_MAX if high is None else high
    if low is not None:
        out["minimum"] = low
    if high is not None:
        out["maximum"] = high
    if c.values is not None:
        out["enum"] = list(c.values)
    if not c.required:  # OpenAPI 3.1: null is a type
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"].append(None)
    return out
