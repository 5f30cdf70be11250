"""Aggregates: one value per aggregate block, computed over a source's columns.

Every scalar built-in over a DataFrame is computed in one `df.agg(...)` job; the value
counts behind `index_string` and `class_distribution` take one groupBy job per column
(shared by both). Custom aggregators run their file's `aggregate_spark(df, inputs, args)`
and their value is checked against the declared output type. `compute_each` keeps every
value it could compute and each custom aggregator's error (a `CustomCodeError`, a
`UserCodeError` at the user's file:line, or a `DataError` for a value of the wrong type) by
name, so one broken aggregator does not lose the others. Every value is plain JSON:
ints, floats (None where undefined, e.g. the stddev of one row), lists, dicts with string
keys. Values of discrete columns are keyed by their string form ("3", "true", "a").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from mlp.builtins.catalogue import AGGREGATORS
from mlp.coltypes import ColumnType
from mlp.errors import DataError, MlpError
from runtime import customcode

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

GROUPED = frozenset({"index_string", "class_distribution"})


@dataclass(frozen=True)
class AggJob:
    """One aggregate to compute. `inputs` maps the aggregator's slots to DataFrame columns;
    `custom_path` is set (and `aggregator` names the custom block) for custom code."""

    name: str
    aggregator: str
    inputs: Mapping[str, str]
    args: Mapping[str, Any] = field(default_factory=dict)
    custom_path: Path | None = None
    output_type: ColumnType = ColumnType.FLOAT


def arg(job: AggJob, name: str) -> Any:
    """An argument of a built-in, or its catalogue default."""
    if name in job.args:
        return job.args[name]
    return next(a.default for a in AGGREGATORS[job.aggregator].args if a.name == name)


@dataclass(frozen=True)
class AggResults:
    """The values computed, and the error of each aggregate without a value, by name."""

    values: Mapping[str, Any]
    errors: Mapping[str, MlpError]


def compute_aggregates(spark: SparkSession, df: DataFrame, aggs: list[AggJob]) -> dict[str, Any]:
    """Each aggregate's value by name, in the order of `aggs`; the first error raised."""
    res = compute_each(spark, df, aggs)
    for job in aggs:
        if job.name in res.errors:
            raise res.errors[job.name]
    return {a.name: res.values[a.name] for a in aggs}


def compute_each(spark: SparkSession, df: DataFrame, aggs: list[AggJob]) -> AggResults:
    """The built-ins in their shared jobs, then each custom aggregator on its own."""
    for job in aggs:
        if job.custom_path is None and job.aggregator not in AGGREGATORS:
            raise ValueError(f'aggregate "{job.name}": no built-in aggregator "{job.aggregator}"')
    builtin = [a for a in aggs if a.custom_path is None]
    values = _scalars(df, [a for a in builtin if a.aggregator not in GROUPED])
    values |= _grouped(df, [a for a in builtin if a.aggregator in GROUPED])
    errors: dict[str, MlpError] = {}
    for job in (a for a in aggs if a.custom_path is not None):
        try:
            values[job.name] = _custom(df, job)
        except MlpError as e:
            errors[job.name] = e
    return AggResults(values, errors)


def _num(job: AggJob, slot: str = "column") -> Column:
    from pyspark.sql import functions as F

    return F.col("`" + job.inputs[slot].replace("`", "``") + "`").cast("double")


def _exprs(job: AggJob) -> list[Column]:
    """The Spark aggregate expressions one built-in needs (finished by `_finish`)."""
    from pyspark.sql import functions as F

    x = _num(job, "a" if job.aggregator == "correlation" else "column")
    n = int(arg(job, "n")) if job.aggregator in ("quantiles", "bucket_boundaries") else 0
    make: dict[str, Callable[[], list[Column]]] = {
        "count": lambda: [F.count(_col(job))],
        "count_distinct": lambda: [F.count_distinct(_col(job))],
        "mean": lambda: [F.avg(x)],
        "stddev": lambda: [F.stddev_samp(x)],
        "variance": lambda: [F.var_samp(x)],
        "min": lambda: [F.min(x)],
        "max": lambda: [F.max(x)],
        "sum": lambda: [F.coalesce(F.sum(x), F.lit(0.0))],
        "median": lambda: [F.median(x)],
        "quantiles": lambda: [F.percentile(x, [k / n for k in range(1, n)]) if n > 1
                              else F.array().cast("array<double>")],
        "bucket_boundaries": lambda: [F.min(x), F.max(x)],
        "correlation": lambda: [F.corr(_num(job, "a"), _num(job, "b"))],
    }
    return make[job.aggregator]()


def _col(job: AggJob) -> Column:
    from pyspark.sql import functions as F

    return F.col("`" + job.inputs["column"].replace("`", "``") + "`")


def _finish(job: AggJob, parts: list[Any]) -> Any:
    if job.aggregator in ("count", "count_distinct"):
        return int(parts[0])
    if job.aggregator == "quantiles":
        return [_float(v) for v in parts[0] or []]
    if job.aggregator == "bucket_boundaries":
        lo, hi, n = _float(parts[0]), _float(parts[1]), int(arg(job, "n"))
        if lo is None or hi is None:
            return []
        return [lo + (hi - lo) * k / n for k in range(1, n)]
    return _float(parts[0])


def _float(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _scalars(df: DataFrame, jobs: list[AggJob]) -> dict[str, Any]:
    if not jobs:
        return {}
    exprs = [[e.alias(f"a{i}_{j}") for j, e in enumerate(_exprs(job))] for i, job in enumerate(jobs)]
    row = df.agg(*[e for es in exprs for e in es]).collect()[0]
    return {job.name: _finish(job, [row[f"a{i}_{j}"] for j in range(len(exprs[i]))])
            for i, job in enumerate(jobs)}


def value_counts(df: DataFrame, column: str) -> dict[str, int]:
    """Non-null values of a column (by string form) and how often each occurs."""
    from pyspark.sql import functions as F

    key = F.col("`" + column.replace("`", "``") + "`").cast("string").alias("k")
    rows = df.select(key).where(F.col("k").isNotNull()).groupBy("k").count().collect()
    return {r["k"]: int(r["count"]) for r in rows}


def _grouped(df: DataFrame, jobs: list[AggJob]) -> dict[str, Any]:
    counts = {c: value_counts(df, c) for c in dict.fromkeys(j.inputs["column"] for j in jobs)}
    out: dict[str, Any] = {}
    for job in jobs:
        vc = counts[job.inputs["column"]]
        if job.aggregator == "index_string":
            vocab = sorted(vc, key=lambda k: (-vc[k], k))
            size = int(arg(job, "max_size") or 0)
            out[job.name] = vocab[:size] if size > 0 else vocab
        else:
            total = sum(vc.values())
            out[job.name] = {k: vc[k] / total for k in sorted(vc)}
    return out


def _custom(df: DataFrame, job: AggJob) -> Any:
    assert job.custom_path is not None
    fn = customcode.get_function(job.custom_path, "aggregate_spark")
    detail = f"aggregate_spark(df, inputs, args) got inputs {dict(job.inputs)} and args {dict(job.args)}"
    value = customcode.call(f"aggregate.{job.name}", job.custom_path, fn, df, dict(job.inputs), dict(job.args),
                            detail=detail)
    try:
        return conform(value, job.output_type)
    except ValueError as e:
        raise DataError(
            f'aggregate "{job.name}": {job.custom_path} returned a value that is not '
            f"{job.output_type.value}",
            f"aggregate_spark in {job.custom_path} returned {_preview(value)}: {e}",
            f"return a {job.output_type.value} value, or change the aggregator's output_type",
        ) from None


def _preview(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:200]}{'...' if len(text) > 200 else ''}"


def _plain(value: Any) -> Any:
    """numpy scalars and arrays, and tuples, as plain Python values."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and not (isinstance(v, float) and math.isnan(v))


_CHECKS: dict[ColumnType, tuple[Callable[[Any], bool], str]] = {
    ColumnType.INT: (_is_int, "an integer"),
    ColumnType.FLOAT: (_is_num, "a number"),
    ColumnType.STRING: (lambda v: isinstance(v, str), "a string"),
    ColumnType.BOOL: (lambda v: isinstance(v, bool), "true or false"),
    ColumnType.INT_LIST: (lambda v: isinstance(v, list) and all(map(_is_int, v)),
                          "a list of integers"),
    ColumnType.FLOAT_LIST: (lambda v: isinstance(v, list) and all(map(_is_num, v)),
                            "a list of numbers"),
    ColumnType.STRING_LIST: (lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v),
                             "a list of strings"),
    ColumnType.MAP: (lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v),
                     "a map with string keys"),
}


def conform(value: Any, output_type: ColumnType) -> Any:
    """`value` as plain JSON of `output_type`; ValueError saying what was expected."""
    v = _plain(value)
    check, expected = _CHECKS[output_type]
    if not check(v):
        raise ValueError(f"expected {expected}")
    try:
        json.dumps(v, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"not JSON-serialisable ({e})") from None
    if output_type is ColumnType.FLOAT:
        return float(v)
    if output_type is ColumnType.FLOAT_LIST:
        return [float(x) for x in v]
    return v
