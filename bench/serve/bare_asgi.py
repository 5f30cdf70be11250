"""A second reference for the serving bench: the floor of the HTTP stack, a plain ASGI
callable that reads the body and answers the same constant as `bare_app.py`, run under
uvicorn with the same settings. The API's POST /predict is answered over plain ASGI too
(runtime.predict), so this row shows what its own work costs above the HTTP server; the
goal's ratio stays against the FastAPI endpoint (`bare_app.py`)."""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

BODY = b'{"predictions": [{"label": "Iris-setosa"}], "model": "bare"}'
HEALTH = b'{"status": "ok"}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = BODY if scope["path"] == "/predict" else HEALTH
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=10)
