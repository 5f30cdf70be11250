"""POST /predict, the API's hot path, answered straight over ASGI.

FastAPI's request handling (its routing, dependency solving, `Request` and `Response`
objects) costs about 0.1 ms a request on the bench machine, as much as the whole
prediction of a small model (bench/serve). `PredictRoute`, behind the body limit, answers
POST /predict itself. While FastAPI's telemetry is off (no OpenTelemetry set up: see
runtime.server.telemetry) it runs ahead of all of FastAPI's layers (`PredictionApi`), with
`Guarded` answering an unexpected exception with the API's 500 as FastAPI's error handler
would; with telemetry on, it is a middleware inside them, so /predict is traced as the rest
is. Either way it reads the body from `receive`, parses it with orjson, checks it, calls
the current `Predictor` inline in the event loop and sends the JSON answer with its headers
built by hand (runtime.httpio). Inline, as before: a hop to a worker thread and back
(`asyncio.to_thread`) costs about 0.1 ms here, as much as a single instance's prediction;
the largest request (10,000 instances) holds the loop for about 30 ms. Everything else, GET /predict's 405
included, goes through FastAPI, and the route is still declared there (runtime.server)
so that the OpenAPI document has it. The answers are byte for byte those of a FastAPI
route returning the same `Response` (tests/serve/test_hot_path.py).

A request reads the current `Predictor` once, when its body is in, and uses it to the end
(no await in between), so a reload, which assigns a fully loaded and warmed-up `Predictor`
in one step, never fails a request: the ones in flight finish on the old model, the next
ones get the new fingerprint.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from starlette.routing import get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send

from mlp.builtins.pytransform import TransformFailed
from runtime.httpio import Answer, body_error, error_answer, json_answer, read_json
from runtime.predictor import Predictor
from runtime.validation import InvalidInstances

MAX_INSTANCES = 10_000  # per request
MAX_MESSAGE = 300  # characters of a custom transform's exception shown in a 422
PATH = "/predict"
EXAMPLE = '{"instances": [...]}'
log = logging.getLogger("mlp.server")


class State:
    """The current predictor; replaced whole, never mutated."""

    def __init__(self) -> None:
        self.predictor: Predictor | None = None
        self.reloading = asyncio.Lock()


class PredictRoute:
    """An ASGI middleware in front of FastAPI's router that answers POST /predict."""

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and get_route_path(scope) == PATH:
            answer = await respond(self.state, scope, receive)
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def respond(state: State, scope: Scope, receive: Receive) -> Answer:
    """The answer to a POST /predict: 200, or 415, 422 or 503 in the error shape; 500 for
    a bug of mlp's (its traceback in the log, not in the answer)."""
    if state.predictor is None:
        return _no_model()
    body, refused = await read_json(scope, receive, EXAMPLE)
    if refused is not None:
        return refused
    instances = body.get("instances") if type(body) is dict else None
    if type(instances) is not list:
        return body_error("instances", "must be a list of objects")
    if len(instances) > MAX_INSTANCES:
        return body_error("instances", f"must hold at most {MAX_INSTANCES} instances")
    predictor = state.predictor  # once the body is in: no await from here to the answer
    return _predictions(predictor, instances) if predictor else _no_model()


def _no_model() -> Answer:
    return error_answer(503, "no model is loaded yet")


def _predictions(predictor: Predictor, instances: list[Any]) -> Answer:
    try:
        predictions = predictor.predict(instances) if instances else []
    except InvalidInstances as e:
        return json_answer({"detail": e.errors}, 422)
    except TransformFailed as e:  # the request's values made the user's code fail
        log.warning("the custom transform of %s failed on a request", e.column, exc_info=e.cause)
        message = f"the custom transform raised {type(e.cause).__name__}: {e.cause}"
        return error_answer(422, message[:MAX_MESSAGE], e.column, 0 if len(instances) == 1 else None)
    except Exception as e:  # a bug of mlp's: the traceback is for the log, not the client
        log.exception("prediction failed")
        return internal_error(e)
    return Answer(200, orjson.dumps({"predictions": predictions, "model": predictor.fingerprint},
                                    option=orjson.OPT_SERIALIZE_NUMPY))


def internal_error(exc: Exception) -> Answer:
    return error_answer(500, f"the server failed ({type(exc).__name__}); its log has the traceback")
