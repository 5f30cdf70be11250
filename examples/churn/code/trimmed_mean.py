"""A custom aggregator: the mean of a column without its top and bottom `trim` share."""

from pyspark.sql import functions as F


def aggregate_spark(df, inputs, args):
    col = inputs["column"]
    trim = float(args.get("trim", 0.05))
    lo, hi = df.approxQuantile(col, [trim, 1 - trim], 0.0)
    row = df.filter((F.col(col) >= lo) & (F.col(col) <= hi)).agg(F.avg(col)).collect()[0]
    return float(row[0])
