"""The request checks (runtime.validation): the matrix fast path, for small batches and
large ones, keeps the values and lets no bad value through; the column path names them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mlp.coltypes import ColumnType
from runtime.bundle import RawColumn
from runtime.validation import SMALL_BATCH, InvalidInstances, Validator

COLUMNS = (RawColumn("a", ColumnType.FLOAT, min=0, max=10), RawColumn("b", ColumnType.FLOAT),
           RawColumn("c", ColumnType.FLOAT, required=False, min=-1),
           RawColumn("k", ColumnType.INT, min=0, max=5),
           RawColumn("s", ColumnType.STRING, values=("x", "y")))
SIZES = [1, SMALL_BATCH, SMALL_BATCH + 1, 200]


def _instances(n: int) -> list[dict[str, Any]]:
    return [{"a": float(i % 11), "b": -1e9 + i, "c": None if i % 3 else 0.5, "k": i % 6,
             "s": "xy"[i % 2]} for i in range(n)]


@pytest.mark.parametrize("n", SIZES)
def test_good_instances_become_columns(n: int) -> None:
    instances = _instances(n)
    instances[0]["a"] = 10  # an int for a FLOAT, on the bound
    got = Validator(COLUMNS)(instances)
    assert set(got) == {"a", "b", "c", "k", "s"}
    np.testing.assert_array_equal(got["a"], [float(i["a"]) for i in instances])
    assert got["a"].dtype == np.float64
    np.testing.assert_array_equal(got["b"], [i["b"] for i in instances])
    np.testing.assert_array_equal(got["c"], [np.nan if i["c"] is None else i["c"]
                                             for i in instances])
    assert list(got["k"]) == [i["k"] for i in instances]
    assert list(got["s"]) == [i["s"] for i in instances]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("value,message", [
    (10.5, "must be at most 10"), (-0.5, "must be at least 0"), (None, "must not be null"),
    (True, "must be a number"), ("1", "must be a number"),
], ids=["above", "below", "null", "bool", "string"])
def test_a_bad_value_anywhere_is_named(n: int, value: Any, message: str) -> None:
    instances = _instances(n)
    bad = n - 1
    instances[bad]["a"] = value
    with pytest.raises(InvalidInstances) as e:
        Validator(COLUMNS)(instances)
    assert e.value.errors == [{"instance": bad, "field": "a", "message": message}]


def test_every_bad_value_is_named_in_instance_order() -> None:
    instances = _instances(40)
    instances[30]["a"] = 11.0
    del instances[3]["b"]
    instances[30]["k"] = 9
    with pytest.raises(InvalidInstances) as e:
        Validator(COLUMNS)(instances)
    assert sorted((x["instance"], x["field"], x["message"]) for x in e.value.errors) == [
        (3, "b", "is required"), (30, "a", "must be at most 10"), (30, "k", "must be at most 5")]
    assert [x["instance"] for x in e.value.errors] == [3, 30, 30]
