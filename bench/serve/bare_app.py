"""The baseline of the serving bench: a bare FastAPI endpoint returning a constant, run
under uvicorn with the same settings as `runtime.serve`."""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()
BODY = b'{"predictions": [{"label": "Iris-setosa"}], "model": "bare"}'


@app.post("/predict")
async def predict(request: Request) -> Response:
    await request.body()
    return Response(BODY, media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status": "ok"}', media_type="application/json")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=10)
