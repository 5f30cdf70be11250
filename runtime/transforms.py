"""Transformed columns in Spark: one new column per job, added without any Spark action.

Built-ins are native Spark expressions that give the same values as the numpy versions
in `mlp.builtins.pytransform` (the API runs those). Custom transformers run their file's
`transform(inputs, args)` as a pandas UDF; a file that also has `transform_spark(df,
inputs, args)` is run through that, once both have been shown to agree on a sample.
Jobs that read another job's column are added in a later `withColumns`: the plan stays
one projection per layer and nothing runs until the frame is used.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from mlp.builtins.catalogue import TRANSFORMERS
from mlp.coltypes import ColumnType
from mlp.errors import DataError
from runtime import customcode
from runtime.sparkenv import spark_type

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

PARITY_ROWS = 1000
REL_TOL = 1e-9
ABS_TOL = 1e-12  # so that values within rounding of 0 compare equal
SHOWN_ROWS = 5


@dataclass(frozen=True)
class InputRef:
    """A transformer input: a DataFrame column (`kind` "column") or an aggregate's value."""

    kind: str
    name: str


@dataclass(frozen=True)
class TransformJob:
    """One transformed column: `name` is the new column; `custom_path` is set for custom
    code; `output_type` is the column's type (for fill_missing, its input's type)."""

    name: str
    transformer: str
    inputs: Mapping[str, InputRef]
    args: Mapping[str, Any] = field(default_factory=dict)
    custom_path: Path | None = None
    output_type: ColumnType = ColumnType.FLOAT

    def resolved_args(self) -> dict[str, Any]:
        """`args` over the built-in's catalogue defaults (custom code gets `args` as given)."""
        spec = TRANSFORMERS.get(self.transformer) if self.custom_path is None else None
        defaults = {a.name: a.default for a in spec.args if a.default is not None} if spec else {}
        return {**defaults, **self.args}


def apply_transforms(df: DataFrame, jobs: list[TransformJob],
                     agg_values: Mapping[str, Any]) -> DataFrame:
    """`df` with one more column per job (lazily: no Spark job runs here, except the
    parity check of custom transformers that have `transform_spark`)."""
    for layer in layers(jobs):
        df = df.withColumns({job.name: column_for(df, job, agg_values) for job in layer})
    return df


def layers(jobs: list[TransformJob]) -> list[list[TransformJob]]:
    """Jobs grouped so that each reads only columns made by earlier groups."""
    by_name = {j.name: j for j in jobs}
    depth: dict[str, int] = {}

    def level(job: TransformJob, seen: tuple[str, ...]) -> int:
        if job.name in seen:
            raise ValueError("transformed columns form a cycle: " + " -> ".join(seen + (job.name,)))
        if job.name not in depth:
            ups = [by_name[r.name] for r in job.inputs.values()
                   if r.kind == "column" and r.name in by_name]
            depth[job.name] = 1 + max((level(u, seen + (job.name,)) for u in ups), default=-1)
        return depth[job.name]

    out: list[list[TransformJob]] = []
    for job in jobs:
        d = level(job, ())
        out.extend([] for _ in range(d + 1 - len(out)))
        out[d].append(job)
    return out


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def resolve_inputs(job: TransformJob, agg_values: Mapping[str, Any]) -> dict[str, Any]:
    """Slot -> Spark column (columns) or plain value (aggregates)."""
    from pyspark.sql import functions as F

    out: dict[str, Any] = {}
    for slot, ref in job.inputs.items():
        if ref.kind == "column":
            out[slot] = F.col(_quote(ref.name))
        elif ref.name in agg_values:
            out[slot] = agg_values[ref.name]
        else:
            raise ValueError(f'transformed column "{job.name}": no value for aggregate "{ref.name}"')
    return out


def column_for(df: DataFrame, job: TransformJob, agg_values: Mapping[str, Any]) -> Column:
    """The Spark column of one job (its new column's values)."""
    if job.custom_path is not None:
        if customcode.has_function(job.custom_path, "transform_spark"):
            check_transform_parity(df, job, agg_values)
            return _spark_custom(df, job, agg_values)
        return pandas_udf_column(job, agg_values)
    if job.transformer not in SPARK_BUILTINS:
        raise ValueError(f'transformed column "{job.name}": no built-in "{job.transformer}"')
    inputs = resolve_inputs(job, agg_values)
    out = SPARK_BUILTINS[job.transformer](inputs, job.resolved_args(), job.output_type)
    return out.cast(spark_type(job.output_type))


# --- built-ins as Spark expressions -----------------------------------------------------


def _zero_where_present(x: Column) -> Column:
    from pyspark.sql import functions as F

    return F.when(x.isNotNull(), F.lit(0.0))


def _normalize(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    x, mean, sd = i["column"].cast("double"), i["mean"], i["stddev"]
    if not sd or mean is None:
        return _zero_where_present(x)
    return (x - F.lit(float(mean))) / F.lit(float(sd))


def _min_max_scale(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    x, lo, hi = i["column"].cast("double"), i["min"], i["max"]
    if lo is None or hi is None or hi == lo:
        return _zero_where_present(x)
    return (x - F.lit(float(lo))) / F.lit(float(hi) - float(lo))


def _lookup(x: Column, vocab: list[str]) -> Column:
    """Position of x's string form in `vocab`; null when unseen or null."""
    from pyspark.sql import functions as F

    if not vocab:
        return F.lit(None).cast("int")
    pairs = [p for k, v in ((str(k), n) for n, k in enumerate(vocab)) for p in (F.lit(k), F.lit(v))]
    return F.create_map(*pairs)[x.cast("string")]


def _index_string(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    vocab = list(i["vocabulary"] or [])
    return F.coalesce(_lookup(i["column"], vocab), F.lit(len(vocab)))


def _boundaries(i: dict[str, Any], a: Mapping[str, Any]) -> list[float]:
    b = i.get("boundaries")
    return sorted(float(v) for v in (b if b is not None else a.get("boundaries") or []))


def _bucketize(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    x, b = i["column"].cast("double"), _boundaries(i, a)
    if not b:
        return F.when(x.isNotNull(), F.lit(0))
    below = F.filter(F.array(*[F.lit(v) for v in b]), lambda v: v <= x)
    return F.when(x.isNotNull(), F.size(below))


def _log(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    return F.log1p(i["column"].cast("double"))  # null for x <= -1


def _clip(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    x = i["column"].cast("double")
    if a.get("min") is not None:
        x = F.when(x < F.lit(float(a["min"])), F.lit(float(a["min"]))).otherwise(x)
    if a.get("max") is not None:
        x = F.when(x > F.lit(float(a["max"])), F.lit(float(a["max"]))).otherwise(x)
    return x


def _fill_missing(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    value = i["value"] if "value" in i else a.get("value")
    if value is None:
        return i["column"]
    return F.coalesce(i["column"].cast(spark_type(out)), F.lit(value).cast(spark_type(out)))


def _one_hot(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    vocab = i.get("vocabulary")
    if vocab is not None:
        size, pos = len(vocab), _lookup(i["column"], list(vocab))
    else:
        size, pos = int(a.get("size") or 0), i["column"].try_cast("long")
    if size <= 0:
        return F.array().cast("array<double>")
    hot = F.coalesce(pos, F.lit(-1))
    return F.transform(F.array_repeat(F.lit(0.0), size),
                       lambda _, n: F.when(n == hot, F.lit(1.0)).otherwise(F.lit(0.0)))


def _hash_bucket(i: dict[str, Any], a: Mapping[str, Any], out: ColumnType) -> Column:
    from pyspark.sql import functions as F

    text = i["column"].cast("string").cast("binary")
    return F.pmod(F.crc32(text), F.lit(int(a["num_buckets"])))


SPARK_BUILTINS: dict[str, Callable[[dict[str, Any], Mapping[str, Any], ColumnType], Column]] = {
    "normalize": _normalize,
    "min_max_scale": _min_max_scale,
    "index_string": _index_string,
    "bucketize": _bucketize,
    "log": _log,
    "clip": _clip,
    "fill_missing": _fill_missing,
    "one_hot": _one_hot,
    "hash_bucket": _hash_bucket,
}


# --- custom transformers ----------------------------------------------------------------


def _udf_runner(source: str, filename: str, module_name: str, slots: list[str],
                consts: dict[str, Any], args: dict[str, Any]) -> Callable[..., Any]:
    """The pandas UDF body. Self-contained (it executes the file's text itself) so that a
    worker can run it without importing mlp or finding the file."""
    import pandas as pd

    loaded: dict[str, Any] = {}

    def run(*cols):  # type: ignore[no-untyped-def]
        if "transform" not in loaded:
            import sys
            import types

            module = sys.modules.get(module_name)
            if module is None:
                module = types.ModuleType(module_name)
                module.__file__ = filename
                sys.modules[module_name] = module
                exec(compile(source, filename, "exec"), module.__dict__)
            loaded["transform"] = module.transform
        result = loaded["transform"]({**dict(zip(slots, cols)), **consts}, dict(args))
        result = pd.Series(result)
        if len(result) != len(cols[0]):
            raise ValueError(f"transform in {filename} returned {len(result)} values "
                             f"for {len(cols[0])} rows")
        return result.reset_index(drop=True)

    return run


def pandas_udf_column(job: TransformJob, agg_values: Mapping[str, Any]) -> Column:
    """A custom transformer's `transform` as a pandas UDF over its column inputs."""
    from pyspark.sql import functions as F

    assert job.custom_path is not None
    customcode.get_function(job.custom_path, "transform")  # fail early, naming the file
    code = customcode.read_code(job.custom_path)
    inputs = resolve_inputs(job, agg_values)
    slots = [s for s, ref in job.inputs.items() if ref.kind == "column"]
    if not slots:
        raise ValueError(f'transformed column "{job.name}": a custom transformer needs a column')
    consts = {s: v for s, v in inputs.items() if s not in slots}
    run = _udf_runner(code.source, str(code.path), code.module_name, slots, consts, dict(job.args))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
        udf = F.pandas_udf(run, returnType=spark_type(job.output_type))  # type: ignore[call-overload]
    return udf(*[inputs[s] for s in slots])


def _spark_custom(df: DataFrame, job: TransformJob, agg_values: Mapping[str, Any]) -> Column:
    assert job.custom_path is not None
    fn = customcode.get_function(job.custom_path, "transform_spark")
    inputs = {s: (ref.name if ref.kind == "column" else agg_values[ref.name])
              for s, ref in job.inputs.items()}
    return fn(df, inputs, dict(job.args)).cast(spark_type(job.output_type))


def check_transform_parity(df: DataFrame, job: TransformJob, agg_values: Mapping[str, Any],
                           rows: int = PARITY_ROWS) -> None:
    """Raise DataError with the differing rows when a custom transformer's
    `transform_spark` and `transform` disagree on the first `rows` rows of `df`."""
    from pyspark.sql import functions as F

    sample = df.limit(rows)
    cols = [r.name for r in job.inputs.values() if r.kind == "column"]
    got = sample.select(*[F.col(_quote(c)) for c in cols],
                        pandas_udf_column(job, agg_values).alias("__transform"),
                        _spark_custom(sample, job, agg_values).alias("__transform_spark")
                        ).collect()
    bad = [r for r in got if not values_equal(r["__transform"], r["__transform_spark"])]
    if bad:
        lines = [f"{len(bad)} of {len(got)} sampled rows differ; the first {min(len(bad), SHOWN_ROWS)}:"]
        for r in bad[:SHOWN_ROWS]:
            shown = ", ".join(f"{c}={r[c]!r}" for c in cols)
            lines.append(f"  {shown}: transform -> {r['__transform']!r}, "
                         f"transform_spark -> {r['__transform_spark']!r}")
        raise DataError(
            f'transformed column "{job.name}": transform and transform_spark in '
            f"{job.custom_path} disagree",
            "\n".join(lines),
            f"make transform_spark compute what transform does (the API runs transform), "
            f"or remove transform_spark from {job.custom_path}",
        )


def values_equal(a: Any, b: Any) -> bool:
    """Equality of column values: floats within REL_TOL (NaN equals NaN), lists item-wise."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (str, bool)) or isinstance(b, (str, bool)):
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return bool(a == b)
