"""Every built-in aggregator against a numpy/pandas reference; custom aggregators."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mlp.builtins.catalogue import AGGREGATORS
from mlp.coltypes import ColumnType
from mlp.errors import DataError
from runtime.aggregates import AggJob, compute_aggregates, conform
from runtime.customcode import CustomCodeError

X = [3.5, 1.0, None, 7.25, 1.0, -2.0, 9.0, 4.5, None, 0.5, 6.0, 2.0]
Y = [1.0, 2.0, 3.0, None, 1.5, -1.0, 8.0, 5.0, 2.0, 0.0, 7.0, 2.5]
N = [3, 1, 1, None, 2, 3, 1, 10, 2, 1, 3, 2]
S = ["b", "a", None, "c", "a", "b", "a", "d", "b", "c", "a", "z"]
F = [True, False, True, None, True, False, True, True, False, True, None, True]


@pytest.fixture(scope="module")
def df(spark):
    rows = list(zip(range(len(X)), X, Y, N, S, F))
    return spark.createDataFrame(rows, "id long, x double, y double, n long, s string, f boolean")


def job(name: str, agg: str, column: str = "x", **args: object) -> AggJob:
    return AggJob(name, agg, {"column": column}, args, None, AGGREGATORS[agg].output)


def present(values: list) -> np.ndarray:
    return np.array([v for v in values if v is not None], dtype=float)


def vocab(values: list) -> list[str]:
    keys = [("true" if v else "false") if isinstance(v, bool) else str(v)
            for v in values if v is not None]
    return sorted(set(keys), key=lambda k: (-keys.count(k), k))


def shares(values: list) -> dict[str, float]:
    keys = [("true" if v else "false") if isinstance(v, bool) else str(v)
            for v in values if v is not None]
    return {k: keys.count(k) / len(keys) for k in sorted(set(keys))}


x = present(X)
pairs = np.array([(a, b) for a, b in zip(X, Y) if a is not None and b is not None])
REFERENCE = [
    (job("count", "count", "s"), sum(v is not None for v in S)),
    (job("count_distinct", "count_distinct", "n"), len({v for v in N if v is not None})),
    (job("mean", "mean"), float(np.mean(x))),
    (job("stddev", "stddev"), float(np.std(x, ddof=1))),
    (job("variance", "variance"), float(np.var(x, ddof=1))),
    (job("min", "min"), float(np.min(x))),
    (job("max", "max", "n"), float(np.max(present(N)))),
    (job("sum", "sum", "n"), float(np.sum(present(N)))),
    (job("median", "median"), float(np.median(x))),
    (job("median_odd", "median", "y"), float(np.median(present(Y)))),
    (job("quantiles", "quantiles", n=4), np.quantile(x, [0.25, 0.5, 0.75]).tolist()),
    (job("quantiles_default", "quantiles"), np.quantile(x, [0.25, 0.5, 0.75]).tolist()),
    (job("deciles", "quantiles", "n", n=10), np.quantile(present(N), np.arange(1, 10) / 10).tolist()),
    (job("bucket_boundaries", "bucket_boundaries", n=5),
     (x.min() + (x.max() - x.min()) * np.arange(1, 5) / 5).tolist()),
    (job("vocab", "index_string", "s"), vocab(S)),
    (job("vocab_top2", "index_string", "s", max_size=2), vocab(S)[:2]),
    (job("vocab_int", "index_string", "n"), vocab(N)),
    (job("vocab_bool", "index_string", "f"), vocab(F)),
    (job("dist", "class_distribution", "s"), shares(S)),
    (job("dist_bool", "class_distribution", "f"), shares(F)),
    (AggJob("corr", "correlation", {"a": "x", "b": "y"}, {}, None, ColumnType.FLOAT),
     float(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1])),
]


def close(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(p, q) for p, q in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(close(a[k], b[k]) for k in a)
    return a == b and type(a) is type(b)


@pytest.fixture(scope="module")
def computed(spark, df):
    return compute_aggregates(spark, df, [j for j, _ in REFERENCE])


@pytest.mark.parametrize("agg_job,expected", REFERENCE, ids=[j.name for j, _ in REFERENCE])
def test_builtin_matches_reference(computed, agg_job, expected):
    assert close(computed[agg_job.name], expected), (computed[agg_job.name], expected)


def test_every_builtin_is_covered():
    assert {j.aggregator for j, _ in REFERENCE} == set(AGGREGATORS)


def test_values_are_plain_json(computed):
    assert json.loads(json.dumps(computed)) == computed
    assert list(computed) == [j.name for j, _ in REFERENCE]


def test_scalar_aggregates_share_one_job(spark, df, jobs_of):
    scalars = [j for j, _ in REFERENCE if j.aggregator not in ("index_string", "class_distribution")]
    _, one = jobs_of(spark, lambda: compute_aggregates(spark, df, scalars[:1]))
    _, every = jobs_of(spark, lambda: compute_aggregates(spark, df, scalars))
    assert one == every == 1
    grouped = [job("v1", "index_string", "s"), job("v2", "class_distribution", "s")]
    _, per_column = jobs_of(spark, lambda: compute_aggregates(spark, df, grouped[:1]))
    _, both = jobs_of(spark, lambda: compute_aggregates(spark, df, grouped))
    assert per_column == both


def test_undefined_values_are_none(spark):
    one = spark.createDataFrame([(1.0,)], "x double")
    got = compute_aggregates(spark, one, [job("sd", "stddev"), job("m", "mean")])
    assert got == {"sd": None, "m": 1.0}


CUSTOM = """
from pyspark.sql import functions as F

def aggregate_spark(df, inputs, args):
    row = df.agg(F.max(inputs["column"]).alias("m")).collect()[0]
    if args.get("bad"):
        return "high"
    return row["m"] * args["scale"]
"""


def custom_job(path, output_type=ColumnType.FLOAT, **args):
    return AggJob("peak", "aggregator.peak", {"column": "x"}, args, path, output_type)


def test_custom_aggregator(spark, df, write_code):
    path = write_code("peak.py", CUSTOM)
    got = compute_aggregates(spark, df, [custom_job(path, scale=2), job("m", "mean")])
    assert got == {"peak": 18.0, "m": float(np.mean(x))}


def test_custom_aggregator_output_type_checked(spark, df, write_code):
    path = write_code("peak.py", CUSTOM)
    with pytest.raises(DataError) as e:
        compute_aggregates(spark, df, [custom_job(path, bad=True)])
    assert e.value.summary == f'aggregate "peak": {path} returned a value that is not FLOAT'
    assert e.value.detail == f"aggregate_spark in {path} returned str 'high': expected a number"


def test_custom_aggregator_without_the_function(spark, df, write_code):
    path = write_code("empty.py", "def something_else():\n    pass\n")
    with pytest.raises(CustomCodeError) as e:
        compute_aggregates(spark, df, [custom_job(path)])
    assert e.value.summary == f"custom code {path} has no function `aggregate_spark`"
    assert e.value.hint == "add def aggregate_spark(df, inputs, args): ..."


def test_custom_code_that_fails_to_import(spark, df, write_code):
    path = write_code("broken.py", "import os\n\nx = 1 / 0\n")
    with pytest.raises(CustomCodeError) as e:
        compute_aggregates(spark, df, [custom_job(path)])
    assert e.value.summary == f"custom code {path} failed to import"
    assert e.value.detail == f"{path}:3: ZeroDivisionError: division by zero"
    path = write_code("syntax.py", "def f(:\n")
    with pytest.raises(CustomCodeError) as e:
        compute_aggregates(spark, df, [custom_job(path)])
    assert e.value.detail.startswith(f"{path}:1: ")


@pytest.mark.parametrize("value,t,expected", [
    (np.float64(2.5), ColumnType.FLOAT, 2.5),
    (3, ColumnType.FLOAT, 3.0),
    (np.array([1, 2]), ColumnType.INT_LIST, [1, 2]),
    (("a", "b"), ColumnType.STRING_LIST, ["a", "b"]),
    ({"a": 0.5}, ColumnType.MAP, {"a": 0.5}),
    (True, ColumnType.BOOL, True),
], ids=["numpy-float", "int-as-float", "numpy-array", "tuple", "map", "bool"])
def test_conform_accepts(value, t, expected):
    assert conform(value, t) == expected


@pytest.mark.parametrize("value,t,message", [
    ("x", ColumnType.FLOAT, "expected a number"),
    (True, ColumnType.INT, "expected an integer"),
    (float("nan"), ColumnType.FLOAT, "expected a number"),
    (["a", 1], ColumnType.STRING_LIST, "expected a list of strings"),
    ({1: 2}, ColumnType.MAP, "expected a map with string keys"),
], ids=["str-for-float", "bool-for-int", "nan", "mixed-list", "int-keys"])
def test_conform_rejects(value, t, message):
    with pytest.raises(ValueError, match=message):
        conform(value, t)
