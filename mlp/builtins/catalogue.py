"""The catalogue of built-ins: names, input slots, arguments, output types, versions.

The graph type-checks against this table; the Spark and Python implementations live
in `runtime/` and `mlp/builtins/pytransform.py` and are looked up by name. Bump a
built-in's `version` whenever its output changes for the same input: the version is
part of every fingerprint that uses it, so affected blocks rebuild.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from mlp.coltypes import ColumnType as T
from mlp.config.schema import AT_LEAST_1, Field, Range

NUMERIC = frozenset({T.INT, T.FLOAT})
SCALAR = frozenset({T.INT, T.FLOAT, T.STRING, T.BOOL})
DISCRETE = frozenset({T.INT, T.STRING, T.BOOL})


class SlotKind(StrEnum):
    COLUMN = "column"
    AGGREGATE = "aggregate"


@dataclass(frozen=True)
class Slot:
    """One named input. `numeric_only` forbids categorical INT columns."""

    name: str
    kind: SlotKind
    types: frozenset[T]
    required: bool = True
    numeric_only: bool = False


@dataclass(frozen=True)
class Arg:
    name: str
    type: str  # "int" | "number" | "string" | "bool" | "list"
    default: object = None
    required: bool = False


@dataclass(frozen=True)
class AggregatorSpec:
    name: str
    version: str
    slots: tuple[Slot, ...]
    args: tuple[Arg, ...]
    output: T
    doc: str


@dataclass(frozen=True)
class TransformerSpec:
    name: str
    version: str
    slots: tuple[Slot, ...]
    args: tuple[Arg, ...]
    output: T | None  # None: the type of the `column` input
    categorical: bool
    doc: str


@dataclass(frozen=True)
class EstimatorSpec:
    """A built-in estimator. `params` declares each hparam it takes as a schema `Field` (type,
    default, range), checked at validate as every app setting is; `hparams` are their defaults,
    which the fingerprint and the trainer fill in."""

    name: str
    version: str
    hparams: dict[str, object]
    doc: str
    params: Mapping[str, Field] = field(default_factory=dict)


def _estimator(name: str, version: str, doc: str, params: Mapping[str, Field]) -> EstimatorSpec:
    return EstimatorSpec(name, version, {k: f.default for k, f in params.items()}, doc, dict(params))


def _col(types: frozenset[T] = SCALAR, numeric_only: bool = False, name: str = "column") -> Slot:
    return Slot(name, SlotKind.COLUMN, types, numeric_only=numeric_only)


def _agg(name: str, types: frozenset[T], required: bool = True) -> Slot:
    return Slot(name, SlotKind.AGGREGATE, types, required)


_NUM = _col(NUMERIC, numeric_only=True)
_N_ARG = Arg("n", "int", 4)

AGGREGATORS: dict[str, AggregatorSpec] = {
    s.name: s
    for s in [
        AggregatorSpec("count", "1", (_col(),), (), T.INT, "non-null values"),
        AggregatorSpec("count_distinct", "1", (_col(),), (), T.INT, "distinct non-null values"),
        AggregatorSpec("mean", "1", (_NUM,), (), T.FLOAT, "arithmetic mean"),
        AggregatorSpec("stddev", "1", (_NUM,), (), T.FLOAT, "sample standard deviation"),
        AggregatorSpec("variance", "1", (_NUM,), (), T.FLOAT, "sample variance"),
        AggregatorSpec("min", "1", (_col(NUMERIC),), (), T.FLOAT, "smallest value"),
        AggregatorSpec("max", "1", (_col(NUMERIC),), (), T.FLOAT, "largest value"),
        AggregatorSpec("sum", "1", (_NUM,), (), T.FLOAT, "sum of values"),
        AggregatorSpec("median", "1", (_NUM,), (), T.FLOAT, "exact median"),
        AggregatorSpec("quantiles", "1", (_NUM,), (_N_ARG,), T.FLOAT_LIST,
                       "the n-1 inner cut points of n equal-frequency groups"),
        AggregatorSpec("bucket_boundaries", "1", (_NUM,), (_N_ARG,), T.FLOAT_LIST,
                       "boundaries of n equal-width buckets between min and max"),
        AggregatorSpec("index_string", "1", (_col(DISCRETE),), (Arg("max_size", "int", 0),),
                       T.STRING_LIST, "vocabulary, most frequent first (ties by value)"),
        AggregatorSpec("class_distribution", "1", (_col(DISCRETE),), (), T.MAP,
                       "share of rows per value"),
        AggregatorSpec("correlation", "1",
                       (_col(NUMERIC, True, "a"), _col(NUMERIC, True, "b")), (), T.FLOAT,
                       "Pearson correlation of two columns"),
    ]
}

TRANSFORMERS: dict[str, TransformerSpec] = {
    s.name: s
    for s in [
        TransformerSpec("normalize", "1",
                        (_NUM, _agg("mean", NUMERIC), _agg("stddev", NUMERIC)), (),
                        T.FLOAT, False, "(x - mean) / stddev; 0 when stddev is 0"),
        TransformerSpec("min_max_scale", "1",
                        (_NUM, _agg("min", NUMERIC), _agg("max", NUMERIC)), (),
                        T.FLOAT, False, "(x - min) / (max - min); 0 when max == min"),
        TransformerSpec("index_string", "1",
                        (_col(DISCRETE), _agg("vocabulary", frozenset({T.STRING_LIST}))), (),
                        T.INT, True, "position in the vocabulary; len(vocabulary) when unseen"),
        TransformerSpec("bucketize", "1",
                        (_col(NUMERIC), _agg("boundaries", frozenset({T.FLOAT_LIST}), False)),
                        (Arg("boundaries", "list"),), T.INT, True,
                        "index of the bucket (boundaries from an aggregate or args)"),
        TransformerSpec("log", "1", (_NUM,), (), T.FLOAT, False, "log1p(x)"),
        TransformerSpec("clip", "1", (_col(NUMERIC, True),),
                        (Arg("min", "number"), Arg("max", "number")), T.FLOAT, False,
                        "x bounded to [min, max]"),
        TransformerSpec("fill_missing", "1",
                        (_col(), _agg("value", SCALAR, False)), (Arg("value", "any"),),
                        None, False, "nulls replaced by an aggregate or a constant"),
        TransformerSpec("one_hot", "1",
                        (_col(DISCRETE), _agg("vocabulary", frozenset({T.STRING_LIST}), False)),
                        (Arg("size", "int", 0),), T.FLOAT_LIST, False,
                        "one-hot vector over a vocabulary, or over `size` category ids"),
        TransformerSpec("hash_bucket", "1", (_col(DISCRETE),),
                        (Arg("num_buckets", "int", required=True),), T.INT, True,
                        "stable hash (crc32 of the string form) modulo num_buckets"),
    ]
}

# The names Keras 3 takes as the activation of a Dense layer of any width (not "glu", which
# halves an even width, nor "threshold", which needs arguments).
ACTIVATIONS = ("celu", "elu", "exponential", "gelu", "hard_shrink", "hard_sigmoid", "hard_silu",
               "hard_swish", "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish",
               "relu", "relu6", "selu", "sigmoid", "silu", "soft_shrink", "softmax", "softplus",
               "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "swish", "tanh",
               "tanh_shrink")

DNN_HPARAMS: dict[str, Field] = {
    "hidden_units": Field("list", default=[64, 32], item=Field("int", range=AT_LEAST_1), nonempty=True,
                          doc="Each number is the width of one hidden layer, first to last."),
    "activation": Field("str", default="relu", choices=ACTIVATIONS, doc="The activation of the hidden layers."),
    "dropout": Field("num", default=0.0, range=Range(0, 1, max_open=True), example=0.2,
                     doc="The share of a hidden layer's outputs dropped at each training step; 0: none."),
    "embedding_dim": Field("int", default=8, range=AT_LEAST_1,
                           doc="The width of the embedding of each categorical or STRING feature."),
}

ESTIMATORS: dict[str, EstimatorSpec] = {
    "linear": _estimator("linear", "1", "linear or logistic regression", {}),
    "dnn": _estimator("dnn", "1", "a multilayer perceptron", DNN_HPARAMS),
}

TRAINING_DEFAULTS: dict[str, object] = {
    "epochs": 50,
    "batch_size": 32,
    "learning_rate": 0.01,
    "split": 0.75,
    "seed": 0,
    "early_stopping": 5,  # patience in epochs; 0 turns early stopping off
}
