"""The single-request fast paths give what the general ones give, bit for bit: POST /predict
over plain ASGI and through FastAPI's route, the Python rounding and numpy's, one-call
packing and per-column packing, the quick acceptance of valid values and the column path,
the frozen single-threaded session and the loaded one."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlp.coltypes import ColumnType
from runtime import packing
from runtime.bundle import RawColumn
from runtime.predict import PredictRoute
from runtime.predictor import classified, round6
from runtime.server import create_app
from runtime.validation import _Accept, _column, _nullable_bools, _nullable_ints

from . import iris_bundle, iris_instances, mixed_bundle

# -- POST /predict over plain ASGI answers as FastAPI's route does ----------------------------

BODIES = {
    "one": json.dumps({"instances": iris_instances()[:1]}).encode(),
    "sixteen": json.dumps({"instances": iris_instances()[40:56]}).encode(),
    "batch": json.dumps({"instances": iris_instances()}).encode(),
    "empty": b'{"instances": []}',
    "bad-value": b'{"instances": [{"sepal_length": "x", "sepal_width": 11}]}',
    "not-json": b"{instances",
    "no-body": b"",
    "not-a-list": b'{"instances": 3}',
}


@pytest.fixture(scope="module")
def apps() -> tuple[Any, Any]:
    """The API, and the API with POST /predict left to FastAPI's route."""
    fast, routed = create_app(iris_bundle()), create_app(iris_bundle())
    assert fast.predict_first is not None  # telemetry is off in the tests: /predict goes first
    routed.user_middleware = [m for m in routed.user_middleware if m.cls is not PredictRoute]
    routed.predict_first = None
    return fast, routed


def test_inside_fastapis_layers_predict_answers_as_ahead_of_them(apps: tuple[Any, Any]) -> None:
    """With telemetry on, POST /predict goes through FastAPI's layers to `PredictRoute`."""
    fast = apps[0]
    inside = create_app(iris_bundle())
    inside.predict_first = None
    for body in BODIES.values():
        a, b = _post(fast, body, "application/json"), _post(inside, body, "application/json")
        assert (a.status_code, a.headers.raw, a.content) == (b.status_code, b.headers.raw, b.content)


def test_an_error_ahead_of_fastapi_is_the_apis_500_with_the_traceback_logged(
        apps: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from runtime import predict

    async def broken(*args: Any) -> Any:
        raise RuntimeError("a bug of mlp's")
    monkeypatch.setattr(predict, "read_json", broken)
    answer = _post(apps[0], BODIES["one"], "application/json")
    assert answer.status_code == 500
    assert answer.json() == {"detail": [{"instance": None, "field": None, "message":
                                         "the server failed (RuntimeError); its log has the traceback"}]}
    assert "a bug of mlp's" in caplog.text and "POST /predict failed" in caplog.text


def _post(app: Any, body: bytes, content_type: str) -> httpx.Response:
    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as c:
            return await c.post("/predict", content=body, headers={"content-type": content_type})
    return anyio.run(send)


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_the_asgi_route_answers_as_fastapis(apps: tuple[Any, Any], body: bytes, content_type: str) -> None:
    fast, routed = (_post(app, body, content_type) for app in apps)
    assert (fast.status_code, fast.headers.raw, fast.content) == (
        routed.status_code, routed.headers.raw, routed.content)
    assert fast.headers["content-type"] == "application/json"
    # the API answered ahead of FastAPI (whose stack it never built); the other, by its route
    assert [(app.predict_first is not None, app.middleware_stack is None) for app in apps] == [(True, True), (False, False)]
    assert PredictRoute not in _layers(apps[1])


def _layers(app: Any) -> set[type]:
    """The types of the app's middleware stack, outermost to the router."""
    out, layer = set(), app.middleware_stack
    while layer is not None:
        out.add(type(layer))
        layer = getattr(layer, "app", None)
    return out


# -- the Python rounding and argmax of a few rows ---------------------------------------------

EDGES = [0.0, -0.0, 5e-7, -5e-7, 4.9999999e-7, 1.5e-6, 2.5e-6, -2.5e-6, 0.1234565, 0.9999995,
         1.0, 1e-45, -1e-45, 3.4e38, -3.4e38, 123456.7890125]


@pytest.mark.parametrize("v", EDGES)
def test_round6_is_numpys_at_the_edges(v: float) -> None:
    for x in (v, float(np.float32(v)), math.nextafter(v, math.inf), math.nextafter(v, -math.inf)):
        assert math.copysign(1, round6(x)) == math.copysign(1, float(np.round(x, 6)))
        assert round6(x) == float(np.round(x, 6)), x


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_round6_is_numpys(v: float) -> None:
    got, want = round6(v), float(np.round(np.float64(v), 6))
    assert (got, math.copysign(1, got)) == (want, math.copysign(1, want))


ROWS = st.lists(st.lists(st.sampled_from([0.0, -0.0, 1e-7, 0.25, 0.5, 0.75, 1.0])
                         | st.floats(0, 1, width=32), min_size=3, max_size=3),
                min_size=1, max_size=16)


@settings(max_examples=500, deadline=None)
@given(ROWS)
def test_a_few_rows_classified_in_python_as_in_numpy(rows: list[list[float]]) -> None:
    out = np.array(rows, dtype=np.float32)
    labels, keys = ["a", 1, True], ["a", "1", "true"]
    python = classified(out, labels, keys, small=len(rows))
    numpy = classified(out, labels, keys, small=0)
    assert json.dumps(python) == json.dumps(numpy)  # -0.0 and 0.0 told apart


# -- one-call packing ---------------------------------------------------------------------

NULLABLE_INT = pd.array([3, None], dtype="Int64")
COLUMNS = {
    "floats": (np.array([1.5, np.nan]), "float32", None),
    "ints-as-floats": (np.array([1, 2**40], dtype=np.int64), "float32", None),
    "bools-as-floats": (np.array([True, False]), "float32", None),
    "float32": (np.array([1e39, -2.5], dtype=np.float64), "float32", None),
    "ints": (np.array([7, -1], dtype=np.int64), "int64", None),
    "int-with-nan": (np.array([np.nan, 4.0]), "int64", None),
    "bools-as-ints": (np.array([True, False]), "int64", None),
    "nullable-int": (NULLABLE_INT, "int64", None),
    "nullable-float": (NULLABLE_INT, "float32", None),
    "objects": (np.array([1.0, None], dtype=object), "float32", None),
    "strings": (np.array(["a", None], dtype=object), "string", None),
    "list": (pd.Series([[1.0, 2.0], None]), "float32", 2),
}


@pytest.mark.parametrize("names", [["floats", "ints-as-floats", "bools-as-floats", "float32"],
                                   ["ints", "bools-as-ints"], ["ints", "int-with-nan"],
                                   ["nullable-int"], ["floats", "nullable-float"],
                                   ["floats", "objects"], ["strings"], ["floats", "list"]],
                         ids=lambda names: "+".join(names))
def test_feed_packs_what_tensor_then_pack_packs(names: list[str]) -> None:
    plan = packing.layout((n, COLUMNS[n][1], COLUMNS[n][2]) for n in names)
    columns = {n: COLUMNS[n][0] for n in names}
    with np.errstate(over="ignore"):
        got = packing.feed(columns, plan)
        want = packing.pack({n: packing.tensor(v, COLUMNS[n][1], COLUMNS[n][2])
                             for n, v in columns.items()}, plan)
    assert len(got) == len(want)
    for g, w in zip(got, want.values()):
        assert (g.dtype, g.shape, g.flags.c_contiguous) == (w.dtype, w.shape, True)
        assert g.tolist() == w.tolist() or np.array_equal(g, w, equal_nan=True)


# -- the quick acceptance of valid values -----------------------------------------------------

SPECS = [
    RawColumn("f", ColumnType.FLOAT, required=False, min=-1, max=1),
    RawColumn("fv", ColumnType.FLOAT, values=(1, 2.5, -0.0)),
    RawColumn("i", ColumnType.INT, required=False),
    RawColumn("ib", ColumnType.INT, min=0, max=10),
    RawColumn("iv", ColumnType.INT, required=False, values=(1, 2)),
    RawColumn("s", ColumnType.STRING, required=False),
    RawColumn("sv", ColumnType.STRING, values=("x", "y")),
    RawColumn("b", ColumnType.BOOL, required=False),
    RawColumn("bv", ColumnType.BOOL, values=(True,)),
]
VALUES = (st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.sampled_from([7.0, 1e3, -0.0, 2.5])
          | st.floats(allow_nan=False) | st.sampled_from(["x", "y", "z", ""]))


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b) or a.dtype != b.dtype or len(a) != len(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == object and a.tolist() == b.tolist() or np.array_equal(a, b, equal_nan=True)
    return bool(np.array_equal(a._data, b._data) and np.array_equal(a._mask, b._mask))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SPECS), st.lists(VALUES, min_size=1, max_size=20))
def test_accepted_values_are_what_the_column_path_makes(col: RawColumn, values: list[Any]) -> None:
    instances = [{col.field: v} for v in values]
    errors: list[dict[str, Any]] = []
    with np.errstate(over="ignore", invalid="ignore"):
        made = _column(col, list(values), instances, errors)
        accepted = _Accept(col)(list(values))
    if accepted is not None:
        assert errors == [] and _same(accepted, made)
    elif not errors:  # only integral floats of an INT column take the column path when valid
        assert col.type is ColumnType.INT and float in set(map(type, values))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.none() | st.integers(-2**63, 2**63 - 1), min_size=1, max_size=8),
       st.lists(st.none() | st.booleans(), min_size=1, max_size=8))
def test_nullable_arrays_are_pandas_own(ints: list[int | None], bools: list[bool | None]) -> None:
    assert _same(_nullable_ints(ints), pd.array(ints, dtype="Int64"))
    assert _same(_nullable_bools(bools), pd.array(bools, dtype="boolean"))


# -- the frozen single-threaded session -------------------------------------------------------


def test_a_table_free_graph_is_frozen_and_answers_bit_for_bit_the_same() -> None:
    from runtime.signature import Signature

    frozen, loaded = Signature(iris_bundle() / "saved_model"), Signature(iris_bundle() / "saved_model", freeze=False)
    assert (frozen.frozen, frozen.executor) == (True, "SINGLE_THREADED_EXECUTOR")
    assert not loaded.frozen
    rng = np.random.default_rng(0)
    for n in (1, 3, 150):
        columns = {name: rng.normal(size=n) * 3 for name in frozen.features}
        assert np.array_equal(frozen.feed(columns), loaded.feed(columns))


def test_a_graph_with_lookup_tables_keeps_the_loaded_session() -> None:
    from runtime.signature import Signature

    signature = Signature(mixed_bundle() / "saved_model")  # its STRING feature has a vocabulary
    assert (signature.frozen, signature.executor) == (False, "SINGLE_THREADED_EXECUTOR")
    assert np.isfinite(signature(signature.sample())).all()


def test_an_executor_that_cannot_run_the_graph_falls_back_to_the_default(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    from runtime import signature as module

    monkeypatch.setattr(module, "EXECUTOR", "NO_SUCH_EXECUTOR")
    signature = module.Signature(iris_bundle() / "saved_model")
    assert (signature.executor, signature.frozen) == ("DEFAULT", True)
    assert np.isfinite(signature(signature.sample())).all()
