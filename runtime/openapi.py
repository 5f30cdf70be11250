"""The prediction API's OpenAPI document: the response models, each status's meaning, and
FastAPI's schema completed with the request bodies (/predict's is the bundle's raw input
schema) and the admin token as a bearer scheme.

The document is FastAPI's, generated from the routes `runtime.server` declares; POST
/predict is answered ahead of FastAPI's router (runtime.predict) but declared like the
others, so it is documented like them.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from mlp.coltypes import ColumnType
from runtime.bundle import RawColumn
from runtime.validation import INT64_MAX, INT64_MIN


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


def responses(ok: type[BaseModel], *errors: int) -> dict[int | str, dict[str, Any]]:
    """A route's `responses`: 200 with `ok`, each error code with the error body."""
    out: dict[int | str, dict[str, Any]] = {200: {"model": ok, "description": "OK"}}
    out.update({code: {"model": ErrorBody, "description": STATUSES[code]} for code in errors})
    return out


def document(app: FastAPI, columns: tuple[RawColumn, ...], max_instances: int,
             admin_token: str | None) -> dict[str, Any]:
    """FastAPI's schema with the request bodies, /predict's described by `columns` (the
    current raw columns), and the admin token as a bearer scheme; kept in
    `app.openapi_schema` until a reload clears it."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        instance = {"type": "object", "properties": {c.field: _field_schema(c) for c in columns},
                    "required": [c.field for c in columns if c.required]}
        body = {"type": "object", "required": ["instances"], "properties": {
            "instances": {"type": "array", "items": instance, "maxItems": max_instances}}}
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
