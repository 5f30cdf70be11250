"""The prediction API's edges, as one table on real uvicorn servers: numbers JSON has and
int64/float64 do not, bodies over the limit (by Content-Length and chunked), content types,
non-finite transformed values and predictions, custom code that raises; each with its exact
status and detail. Then: every (route, status) of the table is in /openapi.json, the limit is
the server's setting, the finite rule column by column, and the local server's log is its
owner's only."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from mlp.coltypes import ColumnType
from runtime import localserve
from runtime.bundle import RawColumn, write_bundle
from runtime.server import MAX_BODY_BYTES, MAX_INSTANCES, body_limit_message, create_app
from runtime.validation import (
    FINITE_MESSAGE,
    INT64_MESSAGE,
    SMALL_BATCH,
    FiniteColumns,
    InvalidInstances,
    Validator,
)

from . import LiveServer, mixed_bundle, normalize_step, raw

TOKEN = "t0k"
GOOD = {"x": 1.5, "n": 7, "color": "red", "flag": True}
EDGY = {**GOOD, "d": 1.0}
NOT_JSON = "the body is not valid JSON: …"  # orjson's own words follow
RATIO = "def transform(inputs, args):\n    return inputs['a'] / inputs['b']\n"
PICKY = ("def transform(inputs, args):\n    v = inputs['column']\n    if (v == 7).any():\n"
         "        raise ValueError('7 is unlucky')\n    return v\n")


def _custom(name: str, path: Path, inputs: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "transformer": "", "args": {}, "custom_path": str(path),
            "output_type": "FLOAT", "inputs": {s: {"kind": "column", "name": c} for s, c in inputs.items()}}


def _bundle(out: Path, fingerprint: str, raw_columns: list[dict[str, Any]],
            transforms: list[dict[str, Any]]) -> Path:
    """A bundle of the mixed test model (features x_norm, n, color, flag) with other inputs."""
    doc = json.loads((mixed_bundle() / "bundle.json").read_text())
    doc.update(fingerprint=fingerprint, raw_columns=raw_columns, transforms=transforms)
    return write_bundle(out, doc, mixed_bundle() / "saved_model")


def plain_bundle(tmp: Path) -> Path:
    """Unbounded x and n: only int64 and float64 bound them."""
    return _bundle(tmp / "plain", "plain-1", [
        raw("x"), raw("n", "INT", False), raw("color", "STRING", values=["red", "green", "blue"]),
        raw("flag", "BOOL")], [normalize_step("x")])


def edges_bundle(tmp: Path) -> Path:
    """x_norm = normalize(log(picky(ratio(x, d)))): a custom ratio, a custom transform that
    raises on 7, the built-in log; d is optional."""
    (tmp / "ratio.py").write_text(RATIO)
    (tmp / "picky.py").write_text(PICKY)
    log = {**normalize_step("x"), "name": "lx", "transformer": "log",
           "inputs": {"column": {"kind": "column", "name": "picky"}}}
    norm = normalize_step("x")
    norm["inputs"]["column"]["name"] = "lx"
    return _bundle(tmp / "edges", "edges-1", [
        raw("x"), raw("d", required=False), raw("n", "INT", False, 0, 100),
        raw("color", "STRING", values=["red", "green", "blue"]), raw("flag", "BOOL")],
        [_custom("ratio", tmp / "ratio.py", {"a": "x", "b": "d"}),
         _custom("picky", tmp / "picky.py", {"column": "ratio"}), log, norm])


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveServer]]:
    tmp = tmp_path_factory.mktemp("edges")
    apps = {"plain": create_app(plain_bundle(tmp), admin_token=TOKEN),
            "edges": create_app(edges_bundle(tmp)), "empty": create_app(None)}
    with ExitStack() as stack:
        yield {name: stack.enter_context(LiveServer(app)) for name, app in apps.items()}


# -- talking HTTP/1.1 by hand, to send what httpx will not -----------------------------------


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunks(parts: Iterable[bytes], end: bool) -> Iterator[bytes]:
    for part in filter(None, parts):  # an empty chunk would be the last
        yield b"%x\r\n%s\r\n" % (len(part), part)
    if end:
        yield b"0\r\n\r\n"


def _raw(port: int, head: bytes, body: Iterable[bytes]) -> tuple[int, Any]:
    """Send `head`, then `body` piece by piece (not necessarily all of what `head`
    announces), and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head)
        for piece in body:
            s.sendall(piece)
        data = b""
        while b"\r\n\r\n" not in data:
            data += _recv(s)
        top, _, content = data.partition(b"\r\n\r\n")
        match = re.search(rb"content-length: *(\d+)", top, re.IGNORECASE)
        assert match, top
        while len(content) < int(match[1]):
            content += _recv(s)
        return int(top.split()[1]), json.loads(content)


def _recv(s: socket.socket) -> bytes:
    data = s.recv(65536)
    if not data:
        raise ConnectionError("the server closed the connection without an answer")
    return data


def announced_only(size: int) -> Callable[[int], tuple[int, Any]]:
    """Headers that announce `size` bytes, and no body: only an answer that reads nothing comes back."""
    return lambda port: _raw(port, _head("/predict", {"Content-Length": str(size)}), ())


def chunked(size: int, end: bool = False, prefix: bytes = b"") -> Callable[[int], tuple[int, Any]]:
    """A chunked body of `prefix` and `size` bytes of spaces in 64 KiB chunks; unfinished
    (no last chunk) unless `end`: the answer must come while the client is still sending."""
    parts = [prefix] + [b" " * 65536] * (size // 65536)
    return lambda port: _raw(port, _head("/predict", {"Transfer-Encoding": "chunked"}),
                             _chunks(parts, end))


# -- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One request and its answer: the status and the detail, as (instance, field, message);
    a message ending in "…" is matched as a prefix."""

    server: str
    method: str
    path: str
    status: int
    detail: tuple[tuple[int | None, str | None, str], ...] = ()
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: Callable[[int], tuple[int, Any]] | None = None


def predict(status: int, *detail: tuple[int | None, str | None, str], server: str = "plain",
            **kw: Any) -> Case:
    return Case(server, "POST", "/predict", status, detail, **kw)


def reload(status: int, *detail: tuple[int | None, str | None, str], token: str | None = TOKEN,
           **kw: Any) -> Case:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return Case("plain", "POST", "/admin/reload", status, detail, headers=headers, **kw)


def instances(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"instances": list(rows)}


def literal(*rows: dict[str, str]) -> bytes:
    """A body of GOOD instances with some values written as JSON text (1e400 and the like,
    which Python's json cannot write)."""
    good = {k: json.dumps(v) for k, v in GOOD.items()}
    objects = ["{" + ", ".join(f'"{k}": {v}' for k, v in {**good, **row}.items()) + "}" for row in rows]
    return ('{"instances": [' + ", ".join(objects) + "]}").encode()


LIMIT = body_limit_message(MAX_BODY_BYTES)
AS_JSON = "send the body as JSON: Content-Type: application/json"
NONFINITE = "the transformed value is not finite"
CASES = {
    # integers past int64: orjson reads up to 2^64-1 as ints, past that as floats
    "2^63": predict(422, (0, "n", INT64_MESSAGE), json=instances({**GOOD, "n": 2**63})),
    "-2^63-1": predict(422, (1, "n", INT64_MESSAGE), json=instances(GOOD, {**GOOD, "n": -2**63 - 1})),
    "2^64": predict(422, (0, "n", INT64_MESSAGE), json=instances({**GOOD, "n": 2**64})),
    "2^63-1": predict(200, json=instances({**GOOD, "n": 2**63 - 1})),
    "-2^63": predict(200, json=instances({**GOOD, "n": -2**63})),
    "7.0-for-int": predict(200, content=literal({"n": "7.0"}, {"n": "1e3"})),  # integers to JSON Schema
    "7.5-for-int": predict(422, (0, "n", "must be an integer"), content=literal({"n": "7.5"})),
    # numbers past float64, which only the standard parser reads
    "1e400": predict(422, (0, "x", FINITE_MESSAGE), content=literal({"x": "1e400"})),
    "-1e400-second": predict(422, (1, "x", FINITE_MESSAGE), content=literal({}, {"x": "-1e400"})),
    "10^400": predict(422, (0, "x", FINITE_MESSAGE), content=literal({"x": "1" + "0" * 400})),
    "1e400-for-int": predict(422, (0, "n", INT64_MESSAGE), content=literal({"n": "1e400"})),
    "NaN-literal": predict(422, (None, None, NOT_JSON), content=literal({"x": "NaN"})),
    "Infinity-and-1e400": predict(422, (None, None, NOT_JSON), content=literal({"x": "1e400", "d": "Infinity"})),
    "lone-surrogate-and-1e400": predict(422, (None, None, NOT_JSON),
                                        content=literal({"x": "1e400", "color": '"\\ud800"'})),
    # the body
    "over-limit-by-content-length": predict(413, (None, None, LIMIT), raw=announced_only(50 * 2**20)),
    "over-limit-chunked": predict(413, (None, None, LIMIT), raw=chunked(MAX_BODY_BYTES + 2**16)),
    "chunked-under-limit": predict(200, raw=chunked(2**16, end=True,
                                                    prefix=json.dumps(instances(GOOD)).encode())),
    "text/plain": predict(415, (None, None, AS_JSON), content=literal({}), headers={"content-type": "text/plain"}),
    "form-encoded": predict(415, (None, None, AS_JSON), content=literal({}),
                            headers={"content-type": "application/x-www-form-urlencoded"}),
    "json-with-charset": predict(200, content=literal({}), headers={"content-type": "application/json; charset=utf-8"}),
    "problem+json": predict(200, content=literal({}), headers={"content-type": "application/problem+json"}),
    "no-content-type": predict(200, content=literal({})),
    "empty-body": predict(422, (None, None, 'the body is empty: send {"instances": [...]}'), content=b""),
    "not-json": predict(422, (None, None, NOT_JSON), content=b"{instances"),
    "instances-an-object": predict(422, (None, "instances", "must be a list of objects"),
                                   json={"instances": GOOD}),
    "non-object-instances": predict(422, *((i, None, "must be a JSON object") for i in range(4)),
                                    json={"instances": [1, "a", None, [GOOD]]}),
    "too-many-instances": predict(422, (None, "instances", f"must hold at most {MAX_INSTANCES} instances"),
                                  json={"instances": [{}] * (MAX_INSTANCES + 1)}),
    "no-instances": predict(200, json={"instances": []}),
    # the transforms and the model
    "x/0-is-inf": predict(422, (0, "ratio", f"{NONFINITE} (inf)"), server="edges",
                          json=instances({**EDGY, "x": 1.0, "d": 0.0})),
    "0/0-is-nan": predict(422, (1, "ratio", f"{NONFINITE} (nan)"), server="edges",
                          json=instances(EDGY, {**EDGY, "x": 0.0, "d": 0.0})),
    "log-of-minus-3": predict(422, (0, "lx", f"{NONFINITE} (nan)"), server="edges",
                              json=instances({**EDGY, "x": -3.0})),
    "missing-d-is-null": predict(200, server="edges", json=instances({**EDGY, "d": None}, GOOD)),
    "custom-raises": predict(422, (0, "picky", "the custom transform raised ValueError: 7 is unlucky"),
                             server="edges", json=instances({**EDGY, "x": 7.0})),
    "custom-raises-in-a-batch": predict(422, (None, "picky", "the custom transform raised ValueError: "
                                              "7 is unlucky"), server="edges",
                                        json=instances(EDGY, {**EDGY, "x": 7.0})),
    "prediction-overflows-float32": predict(422, (0, "value", "the model's prediction is not finite (inf)"),
                                            json=instances({**GOOD, "x": 1e300})),
    # no model yet
    "predict-before-a-model": predict(503, (None, None, "no model is loaded yet"), server="empty",
                                      json=instances(GOOD)),
    "metadata-before-a-model": Case("empty", "GET", "/metadata", 503, ((None, None, "no model is loaded yet"),)),
    "healthz-before-a-model": Case("empty", "GET", "/healthz", 503),
    "healthz": Case("plain", "GET", "/healthz", 200),
    "metadata": Case("plain", "GET", "/metadata", 200),
    # reload
    "reload-no-token": reload(401, (None, None, "send the admin token: Authorization: Bearer <token>"),
                              token=None, json={"bundle": "/nowhere"}),
    "reload-wrong-token": reload(401, (None, None, "send the admin token: Authorization: Bearer <token>"),
                                 token="guess", json={"bundle": "/nowhere"}),
    "reload-bundle-a-number": reload(422, (None, "bundle", 'send {"bundle": "/path/to/bundle"}'),
                                     json={"bundle": 3}),
    "reload-not-a-bundle": reload(400, (None, "bundle", "cannot load /nowhere: /nowhere is not a model bundle; "
                                        "cannot read bundle.json: …"), json={"bundle": "/nowhere"}),
    "reload-empty-body": reload(422, (None, None, 'the body is empty: send {"bundle": "/path/to/bundle"}'),
                                content=b""),
    "reload-text/plain": Case("plain", "POST", "/admin/reload", 415, ((None, None, AS_JSON),), content=b"{}",
                              headers={"content-type": "text/plain", "authorization": f"Bearer {TOKEN}"}),
    "reload-over-limit": Case("plain", "POST", "/admin/reload", 413, ((None, None, LIMIT),),
                              raw=lambda port: _raw(port, _head("/admin/reload", {
                                  "Content-Length": str(MAX_BODY_BYTES + 1)}), ())),
    # what the OpenAPI document has no operation for
    "unknown-route": Case("plain", "GET", "/nothing", 404, ((None, None, "Not Found"),)),
    "wrong-method": Case("plain", "GET", "/predict", 405, ((None, None, "Method Not Allowed"),)),
}
UNDOCUMENTED = {404, 405}  # statuses of operations the document does not have


def _send(case: Case, server: LiveServer) -> tuple[int, Any]:
    if case.raw is not None:
        return case.raw(server.port)
    kw: dict[str, Any] = {"headers": case.headers}
    if case.content is not None:
        kw["content"] = case.content
    elif case.json is not None:
        kw["json"] = case.json
    resp = httpx.request(case.method, f"{server.url}{case.path}", timeout=60, **kw)
    return resp.status_code, resp.json()


def _matches(got: dict[str, Any], want: tuple[int | None, str | None, str]) -> bool:
    instance, name, message = want
    same = got["message"].startswith(message[:-1]) if message.endswith("…") else got["message"] == message
    return same and (got["instance"], got["field"]) == (instance, name) and set(got) == {"instance", "field",
                                                                                        "message"}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_edges(servers: dict[str, LiveServer], case: Case) -> None:
    status, answer = _send(case, servers[case.server])
    assert status == case.status, answer
    if status >= 400 and case.detail:
        assert len(answer["detail"]) == len(case.detail), answer
        assert all(_matches(g, w) for g, w in zip(answer["detail"], case.detail)), answer
    if status == 200 and case.path == "/predict":
        sent = case.json or (json.loads(case.content) if case.content else instances(GOOD))
        assert len(answer["predictions"]) == len(sent["instances"])
        assert all(np.isfinite(p["value"]) for p in answer["predictions"])


def test_no_traceback_in_the_answer_and_one_in_the_log(servers: dict[str, LiveServer],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mlp.server"):
        status, answer = _send(CASES["custom-raises"], servers["edges"])
    assert status == 422
    assert "Traceback" not in json.dumps(answer) and "picky.py" not in json.dumps(answer)
    (record,) = [r for r in caplog.records if r.name == "mlp.server"]
    assert record.getMessage() == "the custom transform of picky failed on a request"
    assert record.exc_info and "7 is unlucky" in str(record.exc_info[1])


def test_every_status_of_the_table_is_documented(servers: dict[str, LiveServer]) -> None:
    documents = {name: httpx.get(f"{s.url}/openapi.json").json() for name, s in servers.items()}
    seen = set()
    for name, case in CASES.items():
        if case.status in UNDOCUMENTED:
            assert case.method.lower() not in documents[case.server]["paths"].get(case.path, {}), name
            continue
        responses = documents[case.server]["paths"][case.path][case.method.lower()]["responses"]
        assert str(case.status) in responses, f"{name}: {case.method} {case.path} {case.status}"
        schema = responses[str(case.status)]["content"]["application/json"]["schema"]
        if case.status >= 400 and case.detail:
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, name
        seen.add((case.path, case.status))
    assert {s for p, s in seen if p == "/predict"} == {200, 413, 415, 422, 503}
    security = documents["plain"]["paths"]["/admin/reload"]["post"]["security"]
    assert security == [{"adminToken": []}]


# -- the limit is the server's setting ------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    app = create_app(plain_bundle(tmp_path_factory.mktemp("small")), max_body_bytes=1000)
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as client:
        yield client


@pytest.mark.parametrize("size,status", [(1000, 200), (1001, 413)], ids=["at-the-limit", "one-byte-over"])
@pytest.mark.parametrize("chunk", [False, True], ids=["content-length", "chunked"])
def test_the_limit_is_create_apps(small: httpx.Client, size: int, status: int, chunk: bool) -> None:
    text = json.dumps(instances(GOOD)).encode()
    text += b" " * (size - len(text))
    resp = small.post("/predict", content=iter([text[:500], text[500:]]) if chunk else text,
                      headers={"content-type": "application/json"})
    assert resp.status_code == status
    if status == 413:
        assert resp.json() == {"detail": [{"instance": None, "field": None,
                                           "message": body_limit_message(1000)}]}


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_body_bytes must be at least 1, not 0"):
        create_app(None, max_body_bytes=0)


# -- the validator, called directly (Python values JSON cannot carry) -------------------------

COLUMNS = (RawColumn("a", ColumnType.FLOAT, min=0, max=10), RawColumn("b", ColumnType.FLOAT),
           RawColumn("c", ColumnType.FLOAT, required=False), RawColumn("k", ColumnType.INT, min=0, max=5))


@pytest.mark.parametrize("n", [1, SMALL_BATCH + 1], ids=["python-bounds", "numpy-bounds"])
@pytest.mark.parametrize("name,value,message", [
    ("a", float("inf"), FINITE_MESSAGE), ("b", float("-inf"), FINITE_MESSAGE), ("b", float("nan"), FINITE_MESSAGE),
    ("b", 10**400, FINITE_MESSAGE), ("c", float("nan"), FINITE_MESSAGE), ("c", 10**400, FINITE_MESSAGE),
    ("k", 2**63, INT64_MESSAGE), ("k", -2**63 - 1, INT64_MESSAGE), ("k", float(2**63), INT64_MESSAGE),
    ("k", 7.0, "must be at most 5"),
], ids=["inf-bounded", "-inf", "nan", "10^400", "nan-optional", "10^400-optional", "2^63", "-2^63-1",
        "2.0^63", "7.0-is-7"])
def test_the_validator_bounds(n: int, name: str, value: Any, message: str) -> None:
    instances = [{"a": 1.0, "b": 2.0, "c": None, "k": 3} for _ in range(n)]
    instances[-1][name] = value
    with pytest.raises(InvalidInstances) as e:
        Validator(COLUMNS)(instances)
    assert e.value.errors == [{"instance": n - 1, "field": name, "message": message}]


# -- the finite rule, column by column ------------------------------------------------------

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("inputs,out,errors", [
    ({"a": [1.0, 2.0]}, [0.5, 1.0], []),
    ({"a": [1.0, NAN]}, [0.5, NAN], []),  # NaN from a missing input: a null
    ({"a": [1.0, 2.0]}, [NAN, 1.0], [(0, "nan")]),  # NaN made from a present input
    ({"a": [1.0, 2.0]}, [1.0, -INF], [(1, "-inf")]),
    ({"a": [1.0, NAN]}, [1.0, INF], [(1, "inf")]),  # inf is an error even from a missing input
    ({"a": [INF, 2.0]}, [INF, 2.0], []),  # inf from inf: named at the column that made it
    ({"a": [INF, 2.0]}, [NAN, 2.0], []),
    ({"a": [1.0, 2.0], "b": np.array([None, "x"], dtype=object)}, [NAN, NAN], [(1, "nan")]),
    ({"a": [1.0, 2.0]}, np.array([[0.0, 1.0], [INF, 0.0]]), [(1, "inf")]),  # FLOAT_LIST as rows
    ({"a": [1.0, 2.0]}, np.array([None, [NAN, 1.0]], dtype=object), [(0, "nan"), (1, "nan")]),
    ({"a": [1.0, NAN]}, np.array([[1.0], None], dtype=object), []),
], ids=["finite", "nan-from-missing", "nan-made", "-inf", "inf-from-missing", "inf-from-inf",
        "nan-from-inf", "string-input", "float-list-matrix", "float-list-null-and-nan-made",
        "float-list-null-from-missing"])
def test_the_finite_rule(inputs: dict[str, Any], out: Any, errors: list[tuple[int, str]]) -> None:
    columns = {name: np.asarray(v) for name, v in inputs.items()} | {"out": np.asarray(out)}
    check = FiniteColumns([("out", tuple(inputs))])
    if not errors:
        assert check(columns) is columns
        return
    with pytest.raises(InvalidInstances) as e:
        check(columns)
    assert e.value.errors == [{"instance": i, "field": "out", "message": f"{NONFINITE} ({v})"}
                              for i, v in errors]


def test_a_column_the_model_does_not_need_is_not_checked(tmp_path: Path) -> None:
    (tmp_path / "ratio.py").write_text(RATIO)
    unused = _custom("unused", tmp_path / "ratio.py", {"a": "x", "b": "d"})
    bundle = _bundle(tmp_path / "b", "b-1", [raw("x"), raw("d"), raw("n", "INT", False),
                                             raw("color", "STRING"), raw("flag", "BOOL")],
                     [unused, normalize_step("x")])
    with LiveServer(create_app(bundle)) as server:
        resp = httpx.post(f"{server.url}/predict", json=instances({**GOOD, "d": 0.0}))
    assert resp.status_code == 200, resp.text  # unused = x/0 = inf, which the model never reads
    assert np.isfinite(resp.json()["predictions"][0]["value"])


# -- the local server -------------------------------------------------------------------------


def test_the_local_server_takes_the_limit_and_keeps_its_log_private(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "api.log"
    log.parent.mkdir()
    log.write_text("an older server's line\n")
    os.chmod(log, 0o644)
    handle = localserve.start(plain_bundle(tmp_path), None, log, max_body_bytes=1000)
    try:
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        resp = httpx.post(f"{handle.url}/predict", content=b" " * 1001,
                          headers={"content-type": "application/json"})
        assert resp.status_code == 413
        assert resp.json()["detail"][0]["message"] == body_limit_message(1000)
    finally:
        localserve.stop(handle.pid)
    assert "an older server's line" in log.read_text()
    assert "request bodies up to 1000 bytes" in log.read_text()
