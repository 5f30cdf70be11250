"""The prediction API's HTTP plumbing, below FastAPI: JSON answers in the API's error shape,
the body limit, and reading a JSON body from the ASGI `receive`.

Every error answers `{"detail": [{"instance": 0 | null, "field": "name" | null, "message":
"..."}]}`. An `Answer` is sent as a Starlette `Response(body, status,
media_type="application/json")` would send it (the same messages, the same headers in the
same order), so a route answered straight over ASGI (runtime.predict) and one answered
through FastAPI cannot be told apart on the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.validation import error, parse_json

_JSON = (b"content-type", b"application/json")
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True, slots=True)
class Answer:
    """A JSON answer: its status, its body and any headers besides content-length and
    content-type (`www-authenticate`, `allow`)."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [*self.headers, (b"content-length", b"%d" % len(self.body)), _JSON]})
        await send({"type": "http.response.body", "body": self.body})

    def response(self) -> Response:
        """The answer for a FastAPI route to return."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self.headers}
        return Response(self.body, self.status, headers or None, media_type="application/json")


def json_answer(content: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Answer:
    extra = tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items())
    return Answer(status, orjson.dumps(content, option=_NUMPY), extra)


def error_answer(status: int, message: str, field: str | None = None, instance: int | None = None,
                 headers: Mapping[str, str] | None = None) -> Answer:
    return json_answer({"detail": [error(instance, field, message)]}, status, headers)


def body_error(field: str | None, message: str) -> Answer:
    return error_answer(422, message, field)


# -- the request body ----------------------------------------------------------------------


class BodyTooLarge(Exception):
    pass


class BodyLimit:
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
                raise BodyTooLarge
            return message
        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:  # raised in the route while it reads the body, before it answers
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error_answer(413, body_limit_message(self.limit))(scope, receive, send)


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


def json_content(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """No Content-Type, application/json (any parameters) or application/*+json."""
    for key, value in headers:
        if key == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or (media.startswith(b"application/")
                                                     and media.endswith(b"+json"))
    return True


async def read_body(receive: Receive) -> bytes:
    """The whole body, as Starlette's `Request.body()` reads it (ClientDisconnect if the
    client goes away first)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            if not message.get("more_body", False):
                if not chunks:  # the usual case: the whole body in one message
                    return body  # type: ignore[no-any-return]
                chunks.append(body)
                return b"".join(chunks)
            if body:
                chunks.append(body)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


async def read_json(scope: Scope, receive: Receive, example: str) -> tuple[Any, Answer | None]:
    """(the parsed body, None), or (None, the 415 or 422 answer)."""
    if not json_content(scope["headers"]):
        return None, error_answer(415, "send the body as JSON: Content-Type: application/json")
    body = await read_body(receive)
    if not body:
        return None, body_error(None, f"the body is empty: send {example}")
    try:
        return parse_json(body), None
    except ValueError as e:
        return None, body_error(None, f"the body is not valid JSON: {e}")
