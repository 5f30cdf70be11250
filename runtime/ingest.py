"""Ingest: read a source, type and validate its raw columns, apply the source's policies.

The file is read with an explicit schema (every column a string for CSV and JSON, so a
value that does not cast can be counted), never with schema inference. One aggregation
job counts, per raw column, the values that do not cast, the nulls in required columns
and the `min`, `max` and `values` violations, and for JSON the lines that are not JSON
objects (`malformed`, through Spark's corrupt-record column, so that they are not counted as
nulls in every column). `missing` and `invalid` (which covers malformed lines) then decide
whether those rows are dropped or the ingest fails with the counts and a few offending rows
(a `BadDataError`). The rows dropped are counted per column and kind (`dropped`); when every
row read would be dropped, the ingest fails naming the columns that dropped them.
"""

from __future__ import annotations

import glob
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, NoReturn

from mlp.coltypes import ColumnType
from mlp.config.blocks import RawColumn, Source
from mlp.errors import BadDataError, DataError
from runtime.sparkenv import spark_type

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

KINDS = ("cast", "null", "min", "max", "values")
INVALID_KINDS = ("cast", "min", "max", "values")
SHOWN_ROWS = 5
JSON_KEY_PROBE = 100  # JSON lines whose keys are read before a full scan is needed
CORRUPT = "__corrupt"  # the text of a JSON line that is not a JSON object, else null
_URL_SCHEMES = ("s3a://", "s3://", "s3n://", "gs://", "abfs://", "abfss://", "wasbs://",
                "hdfs://", "file://")


@dataclass(frozen=True)
class IngestResult:
    """A source's typed rows (one column per raw column, named by the block) and counts.

    `violations` maps each raw column's block name to the count of each kind of
    violation (see KINDS) found in the rows read, before any row was dropped.
    """

    df: DataFrame
    rows_read: int
    rows_kept: int
    violations: Mapping[str, Mapping[str, int]]
    # Per column, (sum of xxhash64, count of non-nulls) over the kept rows, from the counting
    # job itself; None when a sample is taken (the digests are then of the sample).
    hashes: Mapping[str, tuple[int, int]] | None = None
    malformed: int = 0  # JSON lines that are not JSON objects (never kept)
    # Per raw column, the count of each kind of violation whose rows were dropped (only the
    # kinds found); `drop_reasons` says the same in words, one "raw_column.x: 3 null" each.
    dropped: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    drop_reasons: tuple[str, ...] = ()
    rows_dropped: int = 0  # rows read that broke a rule the source drops (a sample is not a drop)

    def sample_rows(self, n: int = 3) -> list[dict[str, Any]]:
        return [row.asDict() for row in self.df.limit(n).collect()]


def ingest(spark: SparkSession, source: Source, columns: list[RawColumn], app_dir: Path,
           sample: int | None = None) -> IngestResult:
    """Read `source` and return its raw columns, checked. `sample` overrides source.sample."""
    path = resolve_path(source, app_dir)
    raw = _read(spark, source, path, columns)
    staged = _stage(raw, columns)
    flagged, flag_names = _flagged(staged, columns)
    # Each column's content hash rides along in the counting job, except for wide sources,
    # whose single aggregate would grow too large for the driver (hashed afterwards, apart).
    hashed = [c.name for c in columns] if len(columns) <= MAX_HASHED_IN_COUNT else []
    counts = _count(flagged, flag_names, hashed)
    violations = {c.name: {k: counts[f"v{i}_{k}"] for k in KINDS} for i, c in enumerate(columns)}
    failing = _failing(source, columns, violations)
    malformed = counts["malformed"]
    if failing or (malformed and source.invalid != "drop"):
        _raise(source, path, columns, staged, counts["rows"], violations, failing, malformed)
    dropped = _dropped(source, columns, violations)
    if counts["rows"] and not counts["kept"]:
        raise _all_dropped(source, path, columns, counts["rows"], dropped, malformed)
    df = staged if counts["kept"] == counts["rows"] else flagged.filter(_keep(flag_names))
    df = df.select(*[c.name for c in columns])
    n = source.sample if sample is None else sample
    kept = counts["kept"]
    if n > 0:
        df, kept = _sample(df, n), min(n, kept)
    hashes = None if n > 0 or not hashed else \
        {c.name: (counts[f"h_{i}"], counts[f"n_{i}"]) for i, c in enumerate(columns)}
    return IngestResult(df, counts["rows"], kept, violations, hashes, malformed, dropped,
                        _drop_reasons(columns, dropped) + ((f"{malformed} lines not JSON objects",) if malformed else ()),
                        counts["rows"] - counts["kept"])


def resolve_path(source: Source, app_dir: Path) -> str:
    """The path Spark reads: URLs unchanged, local paths resolved against the app folder."""
    if source.path.startswith(_URL_SCHEMES):
        return source.path
    full = Path(source.path) if Path(source.path).is_absolute() else app_dir / source.path
    found = glob.glob(str(full)) if glob.has_magic(str(full)) else [str(full)] * full.exists()
    if not found:
        raise DataError(
            f'source "{source.name}": no data at "{source.path}"',
            f'{source.where("path")}: path "{source.path}" resolves to {full}, '
            "which matches no file or folder",
            "fix `path` (it is relative to the app folder) or put the data there",
        )
    return str(full)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _read(spark: SparkSession, source: Source, path: str, columns: list[RawColumn]) -> DataFrame:
    from pyspark.errors import AnalysisException

    try:
        if source.format == "csv":
            return _read_csv(spark, source, path, columns)
        if source.format == "json":
            return _read_json(spark, source, path, columns)
        if source.format == "parquet":
            df = spark.read.parquet(path)
            _check_present(source, path, columns, df.columns)
            return df
    except AnalysisException as e:
        raise DataError(f'source "{source.name}": cannot read "{source.path}"',
                        f"{source.where('path')}: {e.getMessage()}",
                        f"check that the data is {source.format} and `path` is right") from None
    raise DataError(f'source "{source.name}": unknown format "{source.format}"',
                    f"{source.where('format')}: format must be csv, parquet or json")


def _read_csv(spark: SparkSession, source: Source, path: str,
              columns: list[RawColumn]) -> DataFrame:
    from pyspark.sql.types import StringType, StructField, StructType

    reader = spark.read.options(header=source.header, sep=source.delimiter, escape='"',
                                inferSchema=False)
    names = reader.csv(path).columns  # reads only the first line
    _check_present(source, path, columns, names)
    schema = StructType([StructField(n, StringType()) for n in names])
    return reader.options(enforceSchema=False).schema(schema).csv(path)


def _read_json(spark: SparkSession, source: Source, path: str,
               columns: list[RawColumn]) -> DataFrame:
    from pyspark.sql.types import StringType, StructField, StructType

    keys = _json_keys(spark, path, columns)
    _check_present(source, path, columns, keys)
    wanted = dict.fromkeys(c.column for c in columns)
    schema = StructType([StructField(n, StringType()) for n in [*wanted, CORRUPT]])
    return spark.read.schema(schema).option("columnNameOfCorruptRecord", CORRUPT).json(path)


def _json_keys(spark: SparkSession, path: str, columns: list[RawColumn]) -> list[str]:
    """The keys of the JSON records: from the first lines, or a full scan if one is missing."""
    from pyspark.sql import functions as F

    keys: dict[str, None] = {}
    for row in spark.read.text(path).limit(JSON_KEY_PROBE).collect():
        try:
            record = json.loads(row.value)
        except ValueError:
            continue
        if isinstance(record, dict):
            keys.update(dict.fromkeys(record))
    if all(c.column in keys for c in columns):
        return list(keys)
    every = spark.read.text(path).select(F.explode(F.json_object_keys("value")).alias("k"))
    return sorted({r.k for r in every.distinct().collect()})


def _check_present(source: Source, path: str, columns: list[RawColumn], names: list[str]) -> None:
    for c in columns:
        if c.column not in names:
            listed = ", ".join(f'"{n}"' for n in names) or "none"
            raise DataError(
                f'raw_column "{c.name}": column "{c.column}" is not in source "{source.name}"',
                f"{c.where('column')}: {path} has the columns {listed}",
                "set `column` to one of those names"
                + ("" if source.format != "csv" or source.header else
                   " (a CSV without header names its columns _c0, _c1, ...)"),
            )


def _typed(raw: Column, raw_type: str, t: ColumnType) -> Column:
    """The value of `raw` as type `t`; null when it does not cast (NaN counts as missing)."""
    from pyspark.sql import functions as F

    if t is ColumnType.STRING:
        return raw.cast("string")
    if t is ColumnType.BOOL:
        return raw.try_cast("boolean")
    d = raw.try_cast("double")
    finite = F.when(~F.isnan(d) & (F.abs(d) != float("inf")), d)
    if t is ColumnType.FLOAT:
        return finite
    # INT: integers, or numbers with no fractional part ("5.0", 1e3), within a long's range
    whole = F.when((finite == F.floor(finite)) & (F.abs(finite) < 2.0**63), finite.cast("long"))
    if raw_type in ("bigint", "int", "smallint", "tinyint"):
        return raw.cast("long")
    if raw_type == "string":
        return F.coalesce(raw.try_cast("long"), whole)
    return whole


def _stage(raw: DataFrame, columns: list[RawColumn]) -> DataFrame:
    """The raw values (`__raw<i>`) next to the typed ones (named by the raw column block)."""
    types = {f.name: f.dataType.simpleString() for f in raw.schema.fields}
    cols = []
    for i, c in enumerate(columns):
        r = raw[_q(c.column)]
        cols.append(r.alias(f"__raw{i}"))
        cols.append(_typed(r, types[c.column], c.type).cast(spark_type(c.type)).alias(c.name))
    if CORRUPT in raw.columns:
        cols.append(raw[CORRUPT])
    return raw.select(*cols)


def _flags(i: int, c: RawColumn, malformed: Column | None = None) -> dict[str, Column]:
    """Per kind, the condition under which a row breaks raw column `c` (index `i`); a
    malformed line (`malformed`) is counted as such, not as nulls."""
    from pyspark.sql import functions as F

    r, t = F.col(f"__raw{i}"), F.col(c.name)
    missing = r.isNull() | (F.isnan(r.try_cast("double")) if c.type.numeric else F.lit(False))
    false = F.lit(False)
    return {
        "cast": ~missing & t.isNull(),
        "null": (missing if malformed is None else missing & ~malformed) if c.required else false,
        "min": t < F.lit(c.min) if c.min is not None and c.type.numeric else false,
        "max": t > F.lit(c.max) if c.max is not None and c.type.numeric else false,
        "values": ~t.isin(list(c.values)) if c.values is not None else false,
    }


def _any(conds: list[Column]) -> Column:
    """OR of the conditions (null counts as false), as a balanced tree: a left-deep chain
    of hundreds of conditions overflows the stack of Spark's analyzer."""
    from pyspark.sql import functions as F

    level = [F.coalesce(cond, F.lit(False)) for cond in conds] or [F.lit(False)]
    while len(level) > 1:
        pairs = [level[i] | level[i + 1] for i in range(0, len(level) - 1, 2)]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    return level[0]


MAX_HASHED_IN_COUNT = 32


def _flagged(staged: DataFrame, columns: list[RawColumn]) -> tuple[DataFrame, list[str]]:
    """`staged` plus one boolean column per possible violation (`v{i}_{kind}`). Later
    expressions refer to these columns, so they stay small however wide the source is:
    Spark's analyzer takes minutes over hundreds of inlined conditions."""
    from pyspark.sql import functions as F

    malformed = _malformed(staged)
    flags = {f"v{i}_{k}": F.coalesce(cond, F.lit(False))
             for i, c in enumerate(columns) for k, cond in _flags(i, c, malformed).items()
             if not _is_false(cond)}
    if malformed is not None:
        flags["malformed"] = malformed
    return staged.select("*", *[cond.alias(name) for name, cond in flags.items()]), list(flags)


def _malformed(staged: DataFrame) -> Column | None:
    from pyspark.sql import functions as F

    return F.col(CORRUPT).isNotNull() if CORRUPT in staged.columns else None


def _is_false(cond: Column) -> bool:
    return str(cond) == str(_false())


def _false() -> Column:
    from pyspark.sql import functions as F

    return F.lit(False)


def _keep(flag_names: list[str]) -> Column:
    from pyspark.sql import functions as F

    return ~_any([F.col(n) for n in flag_names])


def _count(flagged: DataFrame, flag_names: list[str], names: list[str]) -> dict[str, int]:
    """Rows read, rows without any violation, each violation flag's count, and each column's
    content hash over the kept rows: one Spark job. Flags that cannot fire are not computed
    (their counts are 0)."""
    from pyspark.sql import functions as F

    keep = _keep(flag_names)
    aggs = [F.count(F.lit(1)).alias("rows"), F.count_if(keep).alias("kept")]
    aggs += [F.count_if(F.col(n)).alias(n) for n in flag_names]
    for i, name in enumerate(names):
        col = F.col(_q(name))
        aggs.append(F.sum(F.when(keep, F.xxhash64(col)).cast("decimal(38,0)")).alias(f"h_{i}"))
        aggs.append(F.count(F.when(keep, col)).alias(f"n_{i}"))
    row = flagged.agg(*aggs).collect()[0]
    return defaultdict(int, {k: int(v or 0) for k, v in row.asDict().items()})


def _failing(source: Source, columns: list[RawColumn],
             violations: Mapping[str, Mapping[str, int]]) -> list[tuple[int, str]]:
    """(column index, kind) of each violation the source's policies do not drop."""
    fail_kinds = (("null",) if source.missing == "fail" else ()) + \
        (INVALID_KINDS if source.invalid != "drop" else ())
    return [(i, k) for i, c in enumerate(columns) for k in fail_kinds if violations[c.name][k]]


def _dropped(source: Source, columns: list[RawColumn],
             violations: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Per column, the counts of the kinds of violation the source's policies drop."""
    kinds = (("null",) if source.missing == "drop" else ()) + (INVALID_KINDS if source.invalid == "drop" else ())
    out = {c.name: {k: violations[c.name][k] for k in kinds if violations[c.name][k]} for c in columns}
    return {name: found for name, found in out.items() if found}


def _drop_reasons(columns: list[RawColumn], dropped: Mapping[str, Mapping[str, int]]) -> tuple[str, ...]:
    return tuple(f"raw_column.{c.name}: " + ", ".join(f"{n} {_describe(c, k)}" for k, n in dropped[c.name].items())
                 for c in columns if c.name in dropped)


def _all_dropped(source: Source, path: str, columns: list[RawColumn], rows: int,
                 dropped: Mapping[str, Mapping[str, int]], malformed: int) -> BadDataError:
    """Every row read breaks a rule whose rows are dropped: name the columns that dropped them."""
    lines = [f"{source.where('path')}: of the {rows} rows read from {path}, none is left:"]
    for c in columns:
        if c.name in dropped:
            named = "" if c.column == c.name else f' (column "{c.column}")'
            parts = [f"{n} of {rows} rows are {_rows_are(c, k)}" for k, n in dropped[c.name].items()]
            lines.append(f"  raw_column.{c.name}{named}: " + ", ".join(parts))
    if malformed:
        lines.append(f"  {malformed} of {rows} lines are not JSON objects")
    empty = [c for c in columns if dropped.get(c.name, {}).get("null") == rows]
    hints = [f"raw_column.{c.name} has no value in any row: check that its column \"{c.column}\" "
             f"({c.where('column')}) is the right one, or set required = false" for c in empty]
    hints = hints or ["fix the data, or the raw columns' rules (type, min, max, values, required)"]
    return BadDataError(str(source.address), rows, {f"raw_column.{c}": kinds for c, kinds in dropped.items()},
                        f'source "{source.name}": every row was dropped', "\n".join(lines), "; ".join(hints),
                        malformed)


def _rows_are(c: RawColumn, kind: str) -> str:
    return "null" if kind == "null" else _describe(c, kind)


def _describe(c: RawColumn, kind: str, n: int | None = None) -> str:
    what = {"cast": f"not {c.type.value}", "null": "null (required)",
            "min": f"below min {c.min:g}" if c.min is not None else "",
            "max": f"above max {c.max:g}" if c.max is not None else "",
            "values": "not in values"}[kind]
    return what if n is None else f"{n} {what}"


def _raise(source: Source, path: str, columns: list[RawColumn], staged: DataFrame, rows: int,
           violations: Mapping[str, Mapping[str, int]], failing: list[tuple[int, str]],
           malformed: int = 0) -> NoReturn:
    from pyspark.sql import functions as F

    lines = [f"{source.where('path')}: {rows} rows read from {path}"]
    kinds = {k for _, k in failing}
    if malformed and source.invalid != "drop":
        kinds.add("malformed")
        lines.append(f"  {malformed} lines are not JSON objects; the first of them:" if malformed > 1
                     else "  1 line is not a JSON object:")
        # (Spark refuses a query of the corrupt-record column alone: the others ride along)
        shown = staged.filter(F.col(CORRUPT).isNotNull()).select("*").limit(SHOWN_ROWS).collect()
        lines += [f"    {row[CORRUPT].rstrip()[:200]}" for row in shown]
    if failing:
        flags = {(i, k): _flags(i, columns[i], _malformed(staged))[k] for i, k in failing}
        bad = staged.filter(_any(list(flags.values()))).select(
            *[F.col(f"__raw{i}") for i in range(len(columns))],
            *[F.coalesce(f, F.lit(False)).alias(f"f{i}_{k}") for (i, k), f in flags.items()],
        ).limit(SHOWN_ROWS).collect()
        for c in columns:
            parts = [_describe(c, k, violations[c.name][k]) for k in KINDS if violations[c.name][k]]
            if parts:
                lines.append(f'  raw_column "{c.name}" (column "{c.column}"): ' + ", ".join(parts))
        lines.append(f"first {len(bad)} offending rows:")
        for row in bad:
            values = {columns[i].column: row[f"__raw{i}"] for i in range(len(columns))}
            why = [f"{columns[i].name} {_describe(columns[i], k)}"
                   for i, k in failing if row[f"f{i}_{k}"]]
            lines.append(f"  {json.dumps(values, default=str)}  <- {'; '.join(why)}")
    summary = ("rows break the raw column rules" if failing else "lines are not JSON objects")
    found = {f"raw_column.{c.name}": {k: n for k, n in violations[c.name].items() if n} for c in columns}
    raise BadDataError(str(source.address), rows, {c: kinds for c, kinds in found.items() if kinds},
                       f'source "{source.name}": {summary}', "\n".join(lines), _hint(source, kinds), malformed)


def _hint(source: Source, kinds: set[str]) -> str:
    hints = []
    if "malformed" in kinds:
        hints.append(f'set invalid = "drop" in source "{source.name}" to drop lines that are '
                     "not JSON objects, or fix them in the file")
    if kinds & set(INVALID_KINDS):
        hints.append(f'set invalid = "drop" in source "{source.name}" to drop such rows, or fix '
                     "the data or the raw column's type, min, max or values")
    if "null" in kinds:
        hints.append(f'set missing = "drop" in source "{source.name}" to drop rows with nulls, '
                     "or required = false on the column")
    return "; ".join(hints)


def _sample(df: DataFrame, n: int) -> DataFrame:
    """A fixed sample of `n` rows: the rows with the smallest hash of their content."""
    from pyspark.sql import functions as F

    cols = [F.col(_q(c)) for c in df.columns]
    return df.orderBy(F.xxhash64(*cols), *cols).limit(n) if cols else df.limit(n)
