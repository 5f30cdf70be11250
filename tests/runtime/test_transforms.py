"""Transformers in Spark against their numpy twins (parity), and custom transformers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlp.builtins.catalogue import TRANSFORMERS
from mlp.builtins.pytransform import TRANSFORMS, apply_chain
from mlp.coltypes import ColumnType
from mlp.errors import DataError
from runtime.transforms import (
    InputRef,
    TransformJob,
    apply_transforms,
    check_transform_parity,
    layers,
    values_equal,
)

ROWS = [
    # id, x (FLOAT), n (INT), s (STRING), b (BOOL)
    (0, 1.5, 1, "a", True),
    (1, -0.5, 2, "b", False),
    (2, None, None, None, None),
    (3, 3.25, 3, "c", True),
    (4, -1.0, 3, "a", True),
    (5, -2.0, 7, "zz", False),
    (6, 10.0, 1, "b", True),
    (7, 0.0, 0, "a", None),
    (8, 2.0, 2, "unseen", False),
    (9, 5.5, -4, "c", True),
]
TYPES = {"x": ColumnType.FLOAT, "n": ColumnType.INT, "s": ColumnType.STRING, "b": ColumnType.BOOL}
xs = np.array([r[1] for r in ROWS if r[1] is not None])
AGGS: dict[str, Any] = {
    "x_mean": float(xs.mean()), "x_sd": float(xs.std(ddof=1)), "zero": 0.0,
    "x_min": float(xs.min()), "x_max": float(xs.max()), "x_median": float(np.median(xs)),
    "s_vocab": ["a", "b", "c"], "n_vocab": ["1", "2", "3"], "b_vocab": ["true"],
    "x_bounds": [0.0, 2.0, 5.5], "n_bounds": [2.0, 1.0],
}


def col(name: str) -> InputRef:
    return InputRef("column", name)


def agg(name: str) -> InputRef:
    return InputRef("aggregate", name)


def tjob(name: str, transformer: str, column: str, aggs: dict[str, str] | None = None,
         **args: Any) -> TransformJob:
    inputs = {"column": col(column), **{k: agg(v) for k, v in (aggs or {}).items()}}
    out = TRANSFORMERS[transformer].output or TYPES.get(column, ColumnType.FLOAT)
    return TransformJob(name, transformer, inputs, args, None, out)


JOBS = [
    tjob("norm_x", "normalize", "x", {"mean": "x_mean", "stddev": "x_sd"}),
    tjob("norm_n", "normalize", "n", {"mean": "x_mean", "stddev": "x_sd"}),
    tjob("norm_zero_sd", "normalize", "x", {"mean": "x_mean", "stddev": "zero"}),
    tjob("scale_x", "min_max_scale", "x", {"min": "x_min", "max": "x_max"}),
    tjob("scale_flat", "min_max_scale", "n", {"min": "x_min", "max": "x_min"}),
    tjob("index_s", "index_string", "s", {"vocabulary": "s_vocab"}),
    tjob("index_n", "index_string", "n", {"vocabulary": "n_vocab"}),
    tjob("index_b", "index_string", "b", {"vocabulary": "b_vocab"}),
    tjob("bucket_x", "bucketize", "x", {"boundaries": "x_bounds"}),
    tjob("bucket_n_args", "bucketize", "n", boundaries=[3, 1]),
    tjob("bucket_n_agg", "bucketize", "n", {"boundaries": "n_bounds"}),
    tjob("log_x", "log", "x"),
    tjob("log_n", "log", "n"),
    tjob("clip_x", "clip", "x", min=-1, max=3),
    tjob("clip_n_max", "clip", "n", max=2.5),
    tjob("fill_x_agg", "fill_missing", "x", {"value": "x_median"}),
    tjob("fill_s", "fill_missing", "s", value="none"),
    tjob("fill_n_float", "fill_missing", "n", value=2.7),
    tjob("fill_b", "fill_missing", "b", value=True),
    tjob("onehot_s", "one_hot", "s", {"vocabulary": "s_vocab"}),
    tjob("onehot_b", "one_hot", "b", {"vocabulary": "b_vocab"}),
    tjob("onehot_n_size", "one_hot", "n", size=4),
    tjob("onehot_b_size", "one_hot", "b", size=2),
    tjob("onehot_s_size", "one_hot", "s", size=2),
    tjob("hash_s", "hash_bucket", "s", num_buckets=7),
    tjob("hash_n", "hash_bucket", "n", num_buckets=3),
    tjob("hash_b", "hash_bucket", "b", num_buckets=5),
    # a chain: each reads the column the one before makes
    tjob("chain_norm", "normalize", "x", {"mean": "x_mean", "stddev": "x_sd"}),
    tjob("chain_clip", "clip", "chain_norm", min=-1, max=1),
    tjob("chain_bucket", "bucketize", "chain_clip", boundaries=[-0.5, 0, 0.5]),
    tjob("chain_index", "index_string", "chain_bucket", {"vocabulary": "n_vocab"}),
]


@pytest.fixture(scope="module")
def frame(spark):
    return spark.createDataFrame(ROWS, "id long, x double, n long, s string, b boolean")


def plain(v: Any) -> Any:
    """A pandas cell as the Python value Spark would collect."""
    if isinstance(v, list):
        return [plain(e) for e in v]
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return v.item() if hasattr(v, "item") else v


@pytest.fixture(scope="module")
def both(frame):
    spark_rows = apply_transforms(frame, JOBS, AGGS).orderBy("id").collect()
    records = [dict(zip(("id", "x", "n", "s", "b"), r)) for r in ROWS]
    pandas_out = apply_chain(pd.DataFrame.from_records(records), JOBS, AGGS)
    return spark_rows, pandas_out


@pytest.mark.parametrize("job", JOBS, ids=[j.name for j in JOBS])
def test_spark_and_python_agree(both, job):
    spark_rows, pandas_out = both
    got_spark = [r[job.name] for r in spark_rows]
    got_python = [plain(v) for v in pandas_out[job.name]]
    assert all(values_equal(a, b) for a, b in zip(got_spark, got_python)), \
        list(zip(got_spark, got_python))
    assert len(got_spark) == len(got_python) == len(ROWS)


def test_every_builtin_has_both_forms():
    assert {j.transformer for j in JOBS} == set(TRANSFORMERS) == set(TRANSFORMS)


EXPECTED: dict[str, list[Any]] = {  # a few hand-checked outputs, in row order
    "index_s": [0, 1, 3, 2, 0, 3, 1, 0, 3, 2],
    "index_b": [0, 1, 1, 0, 0, 1, 0, 1, 1, 0],
    "bucket_x": [1, 0, None, 2, 0, 0, 3, 1, 2, 3],
    "bucket_n_args": [1, 1, None, 2, 2, 2, 1, 0, 1, 0],
    "clip_x": [1.5, -0.5, None, 3.0, -1.0, -1.0, 3.0, 0.0, 2.0, 3.0],
    "fill_n_float": [1, 2, 2, 3, 3, 7, 1, 0, 2, -4],
    "fill_s": ["a", "b", "none", "c", "a", "zz", "b", "a", "unseen", "c"],
    "log_x": [math.log1p(1.5), math.log1p(-0.5), None, math.log1p(3.25), None, None,
              math.log1p(10.0), 0.0, math.log1p(2.0), math.log1p(5.5)],
    "onehot_n_size": [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0] * 4,
                      [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0], [0.0] * 4,
                      [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0],
                      [0.0] * 4],
    "norm_zero_sd": [0.0, 0.0, None, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_known_values(both, name):
    assert all(values_equal(r[name], e) for r, e in zip(both[0], EXPECTED[name])), \
        [r[name] for r in both[0]]


def test_output_types(frame):
    schema = apply_transforms(frame, JOBS, AGGS).schema
    types = {f.name: f.dataType.simpleString() for f in schema.fields}
    assert (types["index_s"], types["onehot_s"], types["norm_n"], types["fill_n_float"],
            types["fill_b"], types["hash_s"]) == \
        ("bigint", "array<double>", "double", "bigint", "boolean", "bigint")


def test_no_spark_action_and_one_layer_per_chain_step(spark, frame, jobs_of):
    _, n = jobs_of(spark, lambda: apply_transforms(frame, JOBS, AGGS))
    assert n == 0
    assert [len(layer) for layer in layers(JOBS)] == [len(JOBS) - 3, 1, 1, 1]


def test_layers_reject_a_cycle():
    a = tjob("a", "log", "b")
    b = tjob("b", "log", "a")
    with pytest.raises(ValueError, match="cycle: a -> b -> a"):
        layers([a, b])


SCALE = """
def transform(inputs, args):
    return inputs["column"] * args["k"] + inputs["offset"]
"""

BOTH_AGREE = SCALE + """
def transform_spark(df, inputs, args):
    from pyspark.sql import functions as F
    return F.col(inputs["column"]) * args["k"] + inputs["offset"]
"""

BOTH_DIFFER = SCALE + """
def transform_spark(df, inputs, args):
    from pyspark.sql import functions as F
    x = F.col(inputs["column"])
    return F.when(x > 3, x * args["k"]).otherwise(x * args["k"] + inputs["offset"])
"""


def custom(path, name="scaled", column="x"):
    return TransformJob(name, "transformer.scale", {"column": col(column), "offset": agg("x_min")},
                        {"k": 2}, path, ColumnType.FLOAT)


def plan_of(df) -> str:
    return df._jdf.queryExecution().executedPlan().toString()


def expected_scaled() -> list[float | None]:
    return [None if r[1] is None else r[1] * 2 + AGGS["x_min"] for r in ROWS]


def test_custom_transform_as_pandas_udf(frame, write_code):
    job = custom(write_code("scale.py", SCALE))
    chained = tjob("scaled_clip", "clip", "scaled", min=0, max=5)
    out = apply_transforms(frame, [job, chained], AGGS)
    assert "ArrowEvalPython" in plan_of(out)
    rows = out.orderBy("id").collect()
    assert [r.scaled for r in rows] == expected_scaled()
    records = [dict(zip(("id", "x", "n", "s", "b"), r)) for r in ROWS]
    py = apply_chain(pd.DataFrame.from_records(records), [job, chained], AGGS)
    assert all(values_equal(r.scaled_clip, plain(v)) for r, v in zip(rows, py["scaled_clip"]))


def test_transform_spark_used_when_it_agrees(frame, write_code):
    out = apply_transforms(frame, [custom(write_code("agree.py", BOTH_AGREE))], AGGS)
    assert "ArrowEvalPython" not in plan_of(out)
    assert [r.scaled for r in out.orderBy("id").collect()] == expected_scaled()


def test_transform_spark_disagreement_shows_rows(frame, write_code):
    path = write_code("differ.py", BOTH_DIFFER)
    with pytest.raises(DataError) as e:
        check_transform_parity(frame.orderBy("id").coalesce(1), custom(path), AGGS)
    assert e.value.summary == (f'transformed column "scaled": transform and transform_spark in '
                               f"{path} disagree")
    assert e.value.detail == "\n".join([
        "3 of 10 sampled rows differ; the first 3:",
        "  x=3.25: transform -> 4.5, transform_spark -> 6.5",
        "  x=10.0: transform -> 18.0, transform_spark -> 20.0",
        "  x=5.5: transform -> 9.0, transform_spark -> 11.0",
    ])
    with pytest.raises(DataError):
        apply_transforms(frame, [custom(path)], AGGS)


@pytest.mark.parametrize("a,b,equal", [
    (1.0, 1.0 + 1e-12, True), (1.0, 1.0001, False), (None, None, True), (None, 0.0, False),
    (float("nan"), float("nan"), True), ([1.0, 0.0], [1.0, 1e-15], True), ("a", "a", True),
    (1, 1.0, True), ("1", 1.0, False),
], ids=["close", "far", "nulls", "null-vs-zero", "nan", "lists", "strings", "int-float",
        "str-float"])
def test_values_equal(a, b, equal):
    assert values_equal(a, b) is equal
