"""The hand-written PySpark job doing the pipeline bench's work: read the CSV with an
explicit schema, check types and bounds, compute the 20 aggregates in one job, then
write the 12 raw and 12 transformed columns as Parquet in one pass."""

from __future__ import annotations

from typing import Any

from bench.pipeline.data import NUMERIC, STRINGS


def run(spark: Any, csv: str, out: str) -> dict[str, Any]:
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField(c, StringType()) for c in NUMERIC + STRINGS])
    raw = spark.read.csv(csv, header=True, schema=schema)
    typed = raw.select(*[F.col(c).cast("double").alias(c) for c in NUMERIC], *STRINGS)
    bad = [F.sum(F.when(F.col(c).isNull() | (F.col(c) < 0) | (F.col(c) > 200), 1).otherwise(0)).alias(f"bad_{c}")
           for c in NUMERIC]
    aggs = []
    for c in NUMERIC[:8]:
        aggs += [F.avg(c).alias(f"{c}_mean"), F.stddev_samp(c).alias(f"{c}_std")]
    aggs += [F.min("x8").alias("x8_min"), F.max("x8").alias("x8_max")]
    stats = typed.agg(*bad, *aggs).collect()[0].asDict()
    vocab = {}
    for c in STRINGS:
        rows = typed.groupBy(c).count().orderBy(F.desc("count"), F.asc(c)).collect()
        vocab[c] = [r[c] for r in rows]
    cols = [F.col(c) for c in NUMERIC + STRINGS]
    for c in NUMERIC[:8]:
        cols.append(((F.col(c) - stats[f"{c}_mean"]) / stats[f"{c}_std"]).alias(f"{c}_n"))
    cols.append(((F.col("x8") - stats["x8_min"]) / (stats["x8_max"] - stats["x8_min"])).alias("x8_s"))
    cols.append(F.log1p("x9").alias("x9_l"))
    for c in STRINGS:
        m = F.create_map(*[x for i, v in enumerate(vocab[c]) for x in (F.lit(v), F.lit(i))])
        cols.append(F.coalesce(m[F.col(c)], F.lit(len(vocab[c]))).alias(f"{c}_i"))
    typed.select(*cols).write.mode("overwrite").parquet(out)
    return stats
