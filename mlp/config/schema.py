"""What each block kind accepts: attributes, their types, defaults and nested blocks."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlp.graph.address import Kind


@dataclass(frozen=True)
class Range:
    """The numbers a setting allows: `min` and `max` (None: unbounded), each included unless
    `min_open` / `max_open`. `str()` says it in words: "at least 1", "between 1 and 65535"."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False

    def __contains__(self, value: float) -> bool:
        lo = self.min is None or (value > self.min if self.min_open else value >= self.min)
        hi = self.max is None or (value < self.max if self.max_open else value <= self.max)
        return lo and hi

    def __str__(self) -> str:
        lo = "" if self.min is None else ("greater than " if self.min_open else "at least ") + _num(self.min)
        hi = "" if self.max is None else ("less than " if self.max_open else "at most ") + _num(self.max)
        if self.min is not None and self.max is not None and not (self.min_open or self.max_open):
            return f"between {_num(self.min)} and {_num(self.max)}"
        return " and ".join(p for p in (lo, hi) if p)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class Field:
    """One attribute. `type` is one of:
    str, int, num, bool, list, map, any, ref, refs (list of refs), refmap (map of refs),
    impl (a built-in's name, or a ref to a custom code block).
    `ref_kinds` limits what a ref may point to; `choices` limits a str; `range` limits an
    int or num; `pattern` (a regex the whole str matches, described by `pattern_doc`) limits
    a str; `item` checks each element of a list, which `nonempty` forbids to be empty;
    `span` also accepts a map { min = X, max = Y } of two values of this field, min <= max
    (an autoscaler's bounds). `doc` says what the setting means and `example` is a good
    value: both go into the error when a value is refused.
    """

    type: str
    required: bool = False
    default: object = None
    choices: tuple[str, ...] = ()
    ref_kinds: tuple[str, ...] = ()
    fingerprinted: bool = True  # False: settings outside the fingerprint (replicas, compute)
    range: Range | None = None
    pattern: str = ""
    pattern_doc: str = ""
    item: Field | None = None
    nonempty: bool = False
    span: bool = False
    doc: str = ""
    example: object = None


AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
POSITIVE = Range(0, min_open=True)
SHARE = Range(0, 1, min_open=True, max_open=True)
PORT = Range(1, 65535)
SEED = Range(0, 2**32 - 1)  # numpy's seeds, which the trainer sets
MEMORY_PATTERN = r"(?=[0-9.]*[1-9])[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)"
MEMORY_DOC = 'a size like "2Gi", "512Mi" or "1G"'


CODE_INPUTS = Field("list", item=Field("str", pattern=r"[A-Za-z_][A-Za-z0-9_]*",
                                      pattern_doc="a Python identifier"),
                    doc="The input names the code reads: every use gives exactly these, checked at validate.",
                    example=["numerator", "denominator"])


@dataclass(frozen=True)
class Schema:
    attrs: dict[str, Field]
    blocks: dict[str, Schema] = field(default_factory=dict)
    labels: int = 1


COLUMN_KINDS = ("raw_column", "transformed_column")
INPUT_KINDS = ("raw_column", "transformed_column", "aggregate")
TYPES = ("INT", "FLOAT", "STRING", "BOOL", "INT_LIST", "FLOAT_LIST", "STRING_LIST")

# Defaults of `training` are the trainer's (mlp.builtins.catalogue.TRAINING_DEFAULTS), filled in
# by the fingerprint, not here: a block's `training` holds what the app sets.
TRAINING = Schema({
    "epochs": Field("int", range=AT_LEAST_1, doc="The number of passes over the training share.", example=50),
    "batch_size": Field("int", range=AT_LEAST_1, doc="Rows per training step.", example=32),
    "learning_rate": Field("num", range=POSITIVE, doc="The step size of the Adam optimiser.", example=0.01),
    "split": Field("num", range=SHARE, doc="The share of rows used for training; the rest evaluates.",
                   example=0.75),
    "seed": Field("int", range=SEED, doc="It seeds the split, the shuffling and the initial weights.",
                  example=0),
    "early_stopping": Field("int", range=AT_LEAST_0,
                            doc="Patience in epochs on the evaluation loss; 0 turns early stopping off.",
                            example=5),
}, labels=0)

COMPUTE = Schema({
    "cpu": Field("num", fingerprinted=False, range=POSITIVE, doc="CPU cores for the training job.", example=2),
    "memory": Field("str", fingerprinted=False, pattern=MEMORY_PATTERN, pattern_doc=MEMORY_DOC,
                    doc="Memory for the training job: a number and a unit, Ki, Mi, Gi, Ti, Pi (powers of "
                        "1024) or k, M, G, T, P (powers of 1000).", example="2Gi"),
    "gpu": Field("int", fingerprinted=False, range=AT_LEAST_0, doc="GPUs for the training job; 0 trains on CPUs.",
                 example=1),
}, labels=0)

PARALLELISM = Field("int", default=2, range=AT_LEAST_1, doc="How many independent jobs run at once.")
MAX_NODES = Field("int", default=5, range=AT_LEAST_1, doc="The largest number of worker nodes of the cluster.")
# The loader expands a block with for_each into its instances before their attributes are read.
FOR_EACH = Field("any", doc="A list or set of strings, or a map: one instance of the block per key.",
                 example=["a", "b"])
FOR_EACH_KINDS = ("raw_column", "aggregate", "transformed_column")

BLOCKS: dict[str, Schema] = {
    "app": Schema({}),
    "variable": Schema({"default": Field("any"), "description": Field("str"),
                        "type": Field("str", choices=("string", "number", "bool", "list", "map", "any"))}),
    "locals": Schema({}, labels=0),  # any attribute: each is a local value, local.NAME
    "source": Schema({
        "format": Field("str", True, choices=("csv", "parquet", "json")),
        "path": Field("str", True),
        "header": Field("bool", default=True),
        "delimiter": Field("str", default=","),
        "sample": Field("int", default=0, range=AT_LEAST_0,
                        doc="sample = 0 reads all rows; sample = N a fixed, seeded sample of N rows."),
        "missing": Field("str", default="drop", choices=("drop", "fail")),
        "invalid": Field("str", default="fail", choices=("fail", "drop")),
    }),
    "raw_column": Schema({
        "for_each": FOR_EACH,
        "source": Field("ref", ref_kinds=("source",)),
        "column": Field("str"),
        "type": Field("str", True, choices=TYPES[:4]),
        "required": Field("bool", default=True),
        "min": Field("num"),
        "max": Field("num"),
        "values": Field("list"),
    }),
    "aggregate": Schema({
        "for_each": FOR_EACH,
        "aggregator": Field("impl", True, ref_kinds=("aggregator",)),
        "input": Field("ref", ref_kinds=COLUMN_KINDS),
        "inputs": Field("refmap", ref_kinds=COLUMN_KINDS),
        "args": Field("map", default={}),
    }),
    "transformed_column": Schema({
        "for_each": FOR_EACH,
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
            "training": TRAINING,
            "compute": COMPUTE,
        },
    ),
    "api": Schema({
        "model": Field("ref", True, ref_kinds=("model",)),
        "replicas": Field("int", default=1, fingerprinted=False, range=AT_LEAST_1, span=True,
                          doc="The number of API replicas, or { min, max } for an autoscaler.", example=1),
        "port": Field("int", fingerprinted=False, range=PORT, doc="The local API listens on this TCP port.",
                      example=8080),
        "promote": Field("str", default="if_not_worse", choices=("if_not_worse", "always"), fingerprinted=False),
        "tolerance": Field("num", default=0.02, range=AT_LEAST_0, fingerprinted=False,
                           doc="How much worse (accuracy, or R²) a retrained model may be and still replace "
                               "the serving one."),
        "max_body_bytes": Field("int", default=4 * 1024 * 1024, range=Range(1024), fingerprinted=False,
                                doc="The largest request body the API takes, in bytes; a larger one gets 413.",
                                example=8388608),
    }),
    "aggregator": Schema({"path": Field("str", True),
                          "output_type": Field("str", True, choices=TYPES + ("MAP",)),
                          "inputs": CODE_INPUTS}),
    "transformer": Schema({"path": Field("str", True),
                           "output_type": Field("str", True, choices=TYPES),
                           "categorical": Field("bool", default=False),
                           "inputs": CODE_INPUTS}),
    "estimator": Schema({"path": Field("str", True)}),
}

# How the Kubernetes workload layer runs an app: the kubernetes provider's settings, and the
# clouds', which hand their cluster over to it (mlp_cloud.handoff passes them on).
WORKLOADS: dict[str, Field] = {
    "namespace": Field("str", default="default"),
    "image": Field("str", default="", doc="The runtime image the jobs and apis run."),
    "service_type": Field("str", default="ClusterIP", choices=("ClusterIP", "LoadBalancer"),
                          doc="How each api's Service is reached."),
    "executors": Field("int", default=0, range=AT_LEAST_0,
                       doc="Spark executor pods per data unit; 0 runs Spark in the driver pod."),
    "executor_cores": Field("int", default=1, range=AT_LEAST_1),
    "executor_memory": Field("str", default="2Gi", pattern=MEMORY_PATTERN,
                             pattern_doc=MEMORY_DOC),
    "cache_claim": Field("str", default="", doc="A ReadWriteMany claim the driver and its "
                         "executors share (needed when executors > 0)."),
    "driver_cpu": Field("num", default=2.0, range=POSITIVE),
    "driver_memory": Field("str", default="4Gi", pattern=MEMORY_PATTERN, pattern_doc=MEMORY_DOC),
    "api_cpu": Field("num", default=0.5, range=POSITIVE),
    "api_memory": Field("str", default="1Gi", pattern=MEMORY_PATTERN, pattern_doc=MEMORY_DOC),
    "gpu_node_selector": Field("map", doc="The node labels GPU workloads select."),
    "job_ttl_seconds": Field("int", default=86400, range=AT_LEAST_0,
                             doc="How long a finished Job's pods are kept."),
    "service_account_annotations": Field("map", doc="Annotations on the workloads' service account (a cloud "
                                         "identity's, on a cluster mlp does not make)."),
    "pod_labels": Field("map", doc="Labels on every pod mlp makes, beside its own."),
}
# A cloud's GPU pool carries a label of its own: its blocks take no gpu_node_selector.
CLOUD_WORKLOADS = {k: v for k, v in WORKLOADS.items() if k != "gpu_node_selector"}

PROVIDERS: dict[str, Schema] = {
    "local": Schema({"spark_master": Field("str", default="local[*]"),
                     "parallelism": PARALLELISM}),
    "kubernetes": Schema({"kubeconfig": Field("str", default="", doc="The kubeconfig file; empty: $KUBECONFIG, "
                                             "else ~/.kube/config."),
                          "context": Field("str", default="", doc="The kubeconfig context; empty: its current one."),
                          **WORKLOADS, "parallelism": PARALLELISM}),
    "aws": Schema({"region": Field("str", True), **CLOUD_WORKLOADS, "parallelism": PARALLELISM},
                  blocks={"cluster": Schema({"node_type": Field("str", default="m5.xlarge"),
                                             "max_nodes": MAX_NODES,
                                             "gpu_node_type": Field("str", default="g4dn.xlarge")},
                                            labels=0)}),
    "gcp": Schema({"project": Field("str", True), "region": Field("str", True), **CLOUD_WORKLOADS,
                   "parallelism": PARALLELISM},
                  blocks={"cluster": Schema({"node_type": Field("str", default="e2-standard-4"),
                                             "max_nodes": MAX_NODES,
                                             "gpu_node_type": Field("str", default="nvidia-tesla-t4")},
                                            labels=0)}),
    "azure": Schema({"location": Field("str", True), **CLOUD_WORKLOADS,
                     "backend_resource_group": Field("str", default="", doc="The resource group of the azurerm "
                                                     "backend's storage account: the workloads' identity gets a role "
                                                     "on the backend's container there."),
                     "parallelism": PARALLELISM},
                    blocks={"cluster": Schema({"node_type": Field("str", default="Standard_D4s_v3"),
                                               "max_nodes": MAX_NODES,
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
