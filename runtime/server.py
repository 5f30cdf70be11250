"""The prediction API (SPEC section 7): FastAPI over one loaded bundle, swappable live.

    POST /predict        {"instances": [{raw column: value}, ...]}
                         -> {"predictions": [{"label", "probabilities"}] | [{"value"}],
                             "model": fingerprint}
    GET  /healthz        200 once a model is loaded, 503 before
    GET  /metadata       model, fingerprint, raw input schema, features, labels, metrics
    POST /admin/reload   {"bundle": "/path"}: load that bundle fully, then swap it in
    GET  /docs           OpenAPI docs; the /predict body schema is the raw input schema

Every error answers `{"detail": [{"instance": 0 | null, "field": "name" | null,
"message": "..."}]}` (runtime.httpio), and every status a route can answer is in
/openapi.json (runtime.openapi; docs/api.md says when each is returned). A body over
`max_body_bytes` gets 413 before it is read (`BodyLimit`).

This module wires the app. The modules it wires:

    runtime.predict      POST /predict, answered ahead of FastAPI's router over plain ASGI
    runtime.predictor    a loaded bundle: validation, transforms, the signature call
    runtime.httpio       JSON answers, the body limit, reading a JSON body
    runtime.openapi      the response models and the OpenAPI document
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException
from starlette.routing import get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlp.errors import MlpError
from runtime import openapi
from runtime.httpio import BodyLimit, body_error, body_limit_message, error_answer, json_answer, read_json
from runtime.openapi import Health, Loading, Metadata, Predictions, Reloaded, responses
from runtime.predict import MAX_INSTANCES, PATH, PredictRoute, State, internal_error, respond
from runtime.predictor import Predictor

__all__ = ["MAX_BODY_BYTES", "MAX_INSTANCES", "Predictor", "body_limit_message", "create_app"]

MAX_BODY_BYTES = 4 * 1024 * 1024  # per request, unless runtime.serve --max-body-bytes says
RELOAD_BODY = '{"bundle": "/path/to/bundle"}'
log = logging.getLogger("mlp.server")


def create_app(bundle_dir: str | Path | None, admin: bool = True,
               admin_token: str | None = None, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The API serving the bundle in `bundle_dir` (None: 503 until /admin/reload); with
    `admin_token`, /admin/reload answers only `Authorization: Bearer <admin_token>`; a body
    over `max_body_bytes` gets 413."""
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be at least 1, not {max_body_bytes}")
    state = State()
    if bundle_dir is not None:
        state.predictor = Predictor.load(bundle_dir)
    config = telemetry()
    app = PredictionApi(title="mlp prediction API", version="1", telemetry=config)
    app.state.mlp = state
    if config is not None:  # telemetry off: nothing of FastAPI's own layers is lost on /predict
        app.predict_first = Guarded(BodyLimit(PredictRoute(app.through_fastapi, state), max_body_bytes))
    app.add_middleware(PredictRoute, state=state)  # inside the body limit: added first
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)
    _add_routes(app, state)
    if admin:
        _add_reload(app, state, admin_token)
    app.openapi = lambda: openapi.document(  # type: ignore[method-assign]
        app, state.predictor.bundle.raw_columns if state.predictor else (), MAX_INSTANCES, admin_token)
    return app


class PredictionApi(FastAPI):
    """FastAPI, with POST /predict handed to `predict_first` (when set) before FastAPI's own
    layers: its telemetry check, Starlette's app scope and its error middleware, about 10 µs
    a request cold (bench/serve). Set only while FastAPI's telemetry is off, so /predict is
    traced whenever the rest is; `Guarded` answers an error as FastAPI's handler does."""

    predict_first: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = self.predict_first
        if first is not None and scope["type"] == "http" and scope["method"] == "POST" \
                and get_route_path(scope) == PATH:
            await first(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def through_fastapi(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


class Guarded:
    """What FastAPI's error middleware does for the requests that pass it by: an exception
    before the answer started is the API's 500 (the traceback in the log, not the answer)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)
        try:
            await self.app(scope, receive, tracked)
        except Exception as e:
            log.exception("%s %s failed", scope["method"], scope["path"])
            if not started:
                await internal_error(e)(scope, receive, send)


def telemetry() -> TelemetryConfig | None:
    """FastAPI's native OpenTelemetry, as the process has it when the API starts: on (FastAPI's
    own defaults) when OpenTelemetry is set up by then (`opentelemetry-instrument`, an SDK
    configured before `create_app`), when an `OTEL_` variable is set or FastAPI is asked to
    configure it (`FASTAPI_OTEL_AUTO_CONFIGURE=true`); off otherwise. Off, FastAPI no longer
    asks three providers on every request whether they are configured yet (about 4 µs in a
    loop, 10 µs cold: bench/serve)."""
    if any(name.startswith("OTEL_") for name in os.environ) or \
            os.environ.get("FASTAPI_OTEL_AUTO_CONFIGURE", "").lower() == "true":
        return None
    from opentelemetry import _logs, metrics, trace

    providers = (trace.get_tracer_provider(), metrics.get_meter_provider(), _logs.get_logger_provider())
    if any(type(p).__name__ not in _PROXIES for p in providers):
        return None  # something configured one: FastAPI reports to it
    return {"tracing": False, "metrics": False, "logs": False}


# OpenTelemetry's stand-ins until an SDK is set up (what FastAPI calls unconfigured)
_PROXIES = frozenset({"ProxyTracerProvider", "_ProxyMeterProvider", "ProxyLoggerProvider"})


async def _http_error(request: Request, exc: Exception) -> Response:
    """404, 405 and the like in the API's error shape."""
    assert isinstance(exc, HTTPException)
    return error_answer(exc.status_code, str(exc.detail), headers=exc.headers).response()


async def _server_error(request: Request, exc: Exception) -> Response:
    return internal_error(exc).response()


def _add_routes(app: FastAPI, state: State) -> None:
    @app.post("/predict", summary="Predict from raw values",
              responses=responses(Predictions, 413, 415, 422, 500, 503))
    async def predict(request: Request) -> Response:
        # POST /predict is answered by `PredictRoute` before the router: this route is what
        # documents it, and answers the same should a request ever get here
        return (await respond(state, request.scope, request.receive)).response()

    @app.get("/healthz", summary="200 once a model is loaded",
             responses={**responses(Health, 413, 500), 503: {"model": Loading, "description": openapi.STATUSES[503]}})
    async def healthz() -> Response:
        p = state.predictor
        if p is None:
            return json_answer({"status": "loading"}, 503).response()
        return json_answer({"status": "ok", "model": p.bundle.model, "fingerprint": p.fingerprint}).response()

    @app.get("/metadata", summary="The model, its raw input schema and its metrics",
             responses=responses(Metadata, 413, 500, 503))
    async def metadata() -> Response:
        p = state.predictor
        if p is None:
            return error_answer(503, "no model is loaded yet").response()
        return json_answer(p.bundle.metadata()).response()


def _add_reload(app: FastAPI, state: State, admin_token: str | None) -> None:
    codes = (400, 401, 413, 415, 422, 500) if admin_token is not None else (400, 413, 415, 422, 500)

    @app.post("/admin/reload", summary="Load another bundle, then swap it in",
              responses=responses(Reloaded, *codes))
    async def reload(request: Request) -> Response:
        if admin_token is not None and not hmac.compare_digest(
                request.headers.get("authorization", "").encode(), f"Bearer {admin_token}".encode()):
            return error_answer(401, "send the admin token: Authorization: Bearer <token>",
                                headers={"www-authenticate": "Bearer"}).response()
        body, refused = await read_json(request.scope, request.receive, RELOAD_BODY)
        if refused is not None:
            return refused.response()
        path = body.get("bundle") if type(body) is dict else None
        if type(path) is not str or not path:
            return body_error("bundle", f"send {RELOAD_BODY}").response()
        async with state.reloading:
            try:
                new = await asyncio.to_thread(Predictor.load, path)
            except Exception as e:  # the old model keeps serving
                log.exception("reload of %s failed", path)
                reason = "; ".join(filter(None, (e.summary, e.detail))) if isinstance(e, MlpError) else str(e)
                return error_answer(400, f"cannot load {path}: {reason}", "bundle").response()
            old, state.predictor = state.predictor, new
            app.openapi_schema = None
        return json_answer({"model": new.bundle.model, "fingerprint": new.fingerprint,
                            "previous": old.fingerprint if old else None}).response()
