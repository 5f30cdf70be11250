"""A custom transformer: how a customer's monthly charge compares with a typical one.

`transform` (pandas) runs in the API and, as a pandas UDF, in Spark; `transform_spark`
is the faster native form, checked against `transform` on a sample at every apply.
"""

import numpy as np


def transform(inputs, args):
    charges = inputs["column"].astype("float64")
    typical = float(inputs["typical"])
    return np.log(charges / typical).clip(-args.get("bound", 3.0), args.get("bound", 3.0))


def transform_spark(df, inputs, args):
    from pyspark.sql import functions as F

    bound = float(args.get("bound", 3.0))
    ratio = F.log(F.col(inputs["column"]).cast("double") / F.lit(float(inputs["typical"])))
    return F.greatest(F.lit(-bound), F.least(F.lit(bound), ratio))
