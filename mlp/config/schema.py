"""What each block kind accepts: attributes, their types, defaults and nested blocks."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlp.graph.address import Kind


@dataclass(frozen=True)
class Field:
    """One attribute. `type` is one of:
    str, int, num, bool, list, map, any, ref, refs (list of refs), refmap (map of refs),
    impl (a built-in's name, or a ref to a custom code block).
    `ref_kinds` limits what a ref may point to; `choices` limits a str.
    """

    type: str
    required: bool = False
    default: object = None
    choices: tuple[str, ...] = ()
    ref_kinds: tuple[str, ...] = ()
    fingerprinted: bool = True  # False: settings outside the fingerprint (replicas, compute)


@dataclass(frozen=True)
class Schema:
    attrs: dict[str, Field]
    blocks: dict[str, Schema] = field(default_factory=dict)
    labels: int = 1


COLUMN_KINDS = ("raw_column", "transformed_column")
INPUT_KINDS = ("raw_column", "transformed_column", "aggregate")
TYPES = ("INT", "FLOAT", "STRING", "BOOL", "INT_LIST", "FLOAT_LIST", "STRING_LIST")

BLOCKS: dict[str, Schema] = {
    "app": Schema({}),
    "variable": Schema({"default": Field("any"), "description": Field("str"),
                        "type": Field("str", choices=("string", "number", "bool", "list", "map", "any"))}),
    "source": Schema({
        "format": Field("str", True, choices=("csv", "parquet", "json")),
        "path": Field("str", True),
        "header": Field("bool", default=True),
        "delimiter": Field("str", default=","),
        "sample": Field("int", default=0),
        "missing": Field("str", default="drop", choices=("drop", "fail")),
        "invalid": Field("str", default="fail", choices=("fail", "drop")),
    }),
    "raw_column": Schema({
        "source": Field("ref", ref_kinds=("source",)),
        "column": Field("str"),
        "type": Field("str", True, choices=TYPES[:4]),
        "required": Field("bool", default=True),
        "min": Field("num"),
        "max": Field("num"),
        "values": Field("list"),
    }),
    "aggregate": Schema({
        "aggregator": Field("impl", True, ref_kinds=("aggregator",)),
        "input": Field("ref", ref_kinds=COLUMN_KINDS),
        "inputs": Field("refmap", ref_kinds=COLUMN_KINDS),
        "args": Field("map", default={}),
    }),
    "transformed_column": Schema({
        "transformer": Field("impl", ref_kinds=("transformer",)),
        "inputs": Field("refmap", ref_kinds=INPUT_KINDS),
        "args": Field("map", default={}),
        "model": Field("ref", ref_kinds=("model",)),
    }),
    "model": Schema(
        {
            "type": Field("str", True, choices=("classification", "regression")),
            "estimator": Field("impl", True, ref_kinds=("estimator",)),
            "target": Field("ref", True, ref_kinds=COLUMN_KINDS),
            "features": Field("refs", True, ref_kinds=COLUMN_KINDS),
            "hparams": Field("map", default={}),
            "balance": Field("str", default="none", choices=("none", "upsample", "downsample")),
        },
        blocks={
            "training": Schema({
                "epochs": Field("int"), "batch_size": Field("int"), "learning_rate": Field("num"),
                "split": Field("num"), "seed": Field("int"), "early_stopping": Field("int"),
            }, labels=0),
            "compute": Schema({"cpu": Field("num", fingerprinted=False),
                               "memory": Field("str", fingerprinted=False),
                               "gpu": Field("int", fingerprinted=False)}, labels=0),
        },
    ),
    "api": Schema({
        "model": Field("ref", True, ref_kinds=("model",)),
        "replicas": Field("int", default=1, fingerprinted=False),
        "port": Field("int", fingerprinted=False),
    }),
    "aggregator": Schema({"path": Field("str", True),
                          "output_type": Field("str", True, choices=TYPES + ("MAP",))}),
    "transformer": Schema({"path": Field("str", True),
                           "output_type": Field("str", True, choices=TYPES),
                           "categorical": Field("bool", default=False)}),
    "estimator": Schema({"path": Field("str", True)}),
}

PROVIDERS: dict[str, Schema] = {
    "local": Schema({"spark_master": Field("str", default="local[*]"),
                     "parallelism": Field("int", default=2)}),
    "aws": Schema({"region": Field("str", True), "parallelism": Field("int", default=2)},
                  blocks={"cluster": Schema({"node_type": Field("str", default="m5.xlarge"),
                                             "max_nodes": Field("int", default=5),
                                             "gpu_node_type": Field("str", default="g4dn.xlarge")},
                                            labels=0)}),
    "gcp": Schema({"project": Field("str", True), "region": Field("str", True),
                   "parallelism": Field("int", default=2)},
                  blocks={"cluster": Schema({"node_type": Field("str", default="e2-standard-4"),
                                             "max_nodes": Field("int", default=5),
                                             "gpu_node_type": Field("str", default="nvidia-tesla-t4")},
                                            labels=0)}),
    "azure": Schema({"location": Field("str", True), "parallelism": Field("int", default=2)},
                    blocks={"cluster": Schema({"node_type": Field("str", default="Standard_D4s_v3"),
                                               "max_nodes": Field("int", default=5),
                                               "gpu_node_type": Field("str", default="Standard_NC4as_T4_v3")},
                                              labels=0)}),
}

BACKENDS: dict[str, Schema] = {
    "local": Schema({"path": Field("str", default=".mlp")}),
    "s3": Schema({"bucket": Field("str", True), "prefix": Field("str", default=""),
                  "region": Field("str", default="us-east-1"), "endpoint": Field("str", default="")}),
    "gcs": Schema({"bucket": Field("str", True), "prefix": Field("str", default=""),
                   "endpoint": Field("str", default="")}),
    "azurerm": Schema({"account": Field("str", True), "container": Field("str", True),
                       "prefix": Field("str", default=""), "endpoint": Field("str", default="")}),
}

BUILT_KINDS = {k.value for k in Kind if k.builds}
