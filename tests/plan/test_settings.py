"""Every setting is checked at `mlp validate`: one row per bad setting, with the exact error.

Each row is a one-file app (`app.hcl`) with exactly one bad setting; `mlp.api.validate` must
refuse it with exactly the formatted diagnostic of the row (`format_diagnostic`): the summary
with the allowed range, the place (file:line:column of the attribute), the detail and the fix.
The ranges are the schema's (`mlp.config.schema`) and the built-in estimators' hparams
(`mlp.builtins.catalogue`); valid edge values pass, and what the trainer uses by default is valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mlp import api
from mlp.builtins.catalogue import ESTIMATORS, TRAINING_DEFAULTS
from mlp.coltypes import ColumnType
from mlp.config.loader import _suggest_name
from mlp.config.schema import BLOCKS
from mlp.config.values import coerce
from mlp.diagnostics import Diagnostics, SourcePos, format_diagnostic
from mlp.errors import DiagnosticsError
from mlp.graph.address import NAME_RE
from runtime import guardrails
from runtime.tfdata import Column, NumericStats, Profile

from .conftest import REPO, write_app
from .test_diagnostics import only_error

# Lines 1-9; a setting added by `source_with` is on line 6.
BASE = """\
provider "local" {}

source "orders" {
  format = "csv"
  path   = "data/orders.csv"
}

raw_column "amount" { type = "FLOAT" }
raw_column "items" { type = "INT" }
"""


def source_with(attr: str) -> str:
    """BASE with `attr` in the source block, on line 6."""
    return BASE.replace('  path   = "data/orders.csv"\n', f'  path   = "data/orders.csv"\n  {attr}\n')


def provider_with(attr: str) -> str:
    """BASE with `attr` in the provider block, on line 2."""
    return BASE.replace('provider "local" {}\n', f'provider "local" {{\n  {attr}\n}}\n')


def model(extra: str = "", estimator: str = '"dnn"') -> str:
    """A model block on lines 10-15; `extra` starts on line 15."""
    return f"""model "m" {{
  type      = "regression"
  estimator = {estimator}
  target    = raw_column.amount
  features  = [raw_column.items]
{extra}}}
"""


def hparams(value: str, estimator: str = '"dnn"') -> str:
    """BASE and a model whose `hparams` (line 15) is `value`."""
    return BASE + model(f"  hparams   = {value}\n", estimator)


def nested(block: str, attr: str) -> str:
    """BASE and a model with `attr` in its `block` block, on line 16."""
    return BASE + model(f"  {block} {{\n    {attr}\n  }}\n")


def api_with(attr: str) -> str:
    """BASE, a model (lines 10-15) and an api (lines 16-19) with `attr` on line 18."""
    return BASE + model() + f'api "a" {{\n  model = model.m\n  {attr}\n}}\n'


def error(summary: str, where: str, detail: str, fix: str) -> str:
    """The text of one formatted diagnostic; `where` is "LINE:COL, in KIND "NAME"" of app.hcl."""
    return f"Error: {summary}\n  on app.hcl:{where}\n  {detail}\n  Fix: {fix}"


@dataclass(frozen=True)
class Row:
    app: str
    expected: str  # format_diagnostic of the only error
    variables: tuple[tuple[str, str], ...] = ()


SAMPLE = "sample = 0 reads all rows; sample = N a fixed, seeded sample of N rows."
PORT = "The local API listens on this TCP port."
REPLICAS = "The number of API replicas, or { min, max } for an autoscaler."
SPAN_FIX = "Write replicas = N, or replicas = { min = N, max = M } with N <= M."
SPLIT = "The share of rows used for training; the rest evaluates."
EPOCHS = "The number of passes over the training share."
LR = "The step size of the Adam optimiser."
SEED = "It seeds the split, the shuffling and the initial weights."
PATIENCE = "Patience in epochs on the evaluation loss; 0 turns early stopping off."
MEMORY = ("Memory for the training job: a number and a unit, Ki, Mi, Gi, Ti, Pi (powers of 1024) "
          "or k, M, G, T, P (powers of 1000).")
DROPOUT = "The share of a hidden layer's outputs dropped at each training step; 0: none."
UNITS = "Each number is the width of one hidden layer, first to last."
DNN_TAKES = 'estimator "dnn" takes activation, dropout, embedding_dim, hidden_units.'
SRC, API, MODEL = 'in source "orders"', 'in api "a"', 'in model "m"'

ROWS = {
    # source
    "sample_negative": Row(source_with("sample = -1"), error(
        '"sample" must be at least 0', f"6:3, {SRC}", f"It is -1. {SAMPLE}", "Use e.g. sample = 0")),
    "sample_fraction": Row(source_with("sample = 0.5"), error(
        'Wrong type for "sample"', f"6:3, {SRC}", '"sample" must be a whole number, not the number 0.5.',
        "Use e.g. sample = 0")),
    # provider
    "parallelism_zero": Row(provider_with("parallelism = 0"), error(
        '"parallelism" must be at least 1', '2:3, in provider "local"',
        "It is 0. How many independent jobs run at once.", "Use e.g. parallelism = 2")),
    "cluster_max_nodes_zero": Row(
        BASE.replace('provider "local" {}\n', 'provider "aws" {\n  region = "eu-west-1"\n  cluster {\n'
                                              '    max_nodes = 0\n  }\n}\n'), error(
            '"cluster.max_nodes" must be at least 1', '4:5, in provider "aws"',
            "It is 0. The largest number of worker nodes of the cluster.", "Use e.g. max_nodes = 5")),
    "cloud_gpu_node_selector": Row(
        BASE.replace('provider "local" {}\n', 'provider "gcp" {\n  project = "p"\n  region = "europe-west1"\n'
                                              '  gpu_node_selector = { pool = "gpu" }\n}\n'),
        'Error: Unknown attribute "gpu_node_selector"\n  on app.hcl:4:3, in provider "gcp"\n'
        "  Accepted here: api_cpu, api_memory, cache_claim, driver_cpu, driver_memory, executor_cores, "
        "executor_memory, executors, image, job_ttl_seconds, namespace, parallelism, pod_labels, project, "
        "region, service_account_annotations, service_type, cluster."),
    "cloud_service_type": Row(
        BASE.replace('provider "local" {}\n', 'provider "aws" {\n  region = "eu-west-1"\n'
                                              '  service_type = "NodePort"\n}\n'),
        'Error: Invalid value for "service_type"\n  on app.hcl:3:3, in provider "aws"\n'
        '  "NodePort" is not one of "ClusterIP", "LoadBalancer".'),
    # api
    "port_too_large": Row(api_with("port = 70000"), error(
        '"port" must be between 1 and 65535', f"18:3, {API}", f"It is 70000. {PORT}", "Use e.g. port = 8080")),
    "port_zero": Row(api_with("port = 0"), error(
        '"port" must be between 1 and 65535', f"18:3, {API}", f"It is 0. {PORT}", "Use e.g. port = 8080")),
    "port_quoted": Row(api_with('port = "8080"'), error(
        'Wrong type for "port"', f"18:3, {API}", '"port" must be a whole number, not a string.',
        "Use e.g. port = 8080")),
    "replicas_zero": Row(api_with("replicas = 0"), error(
        '"replicas" must be at least 1', f"18:3, {API}", f"It is 0. {REPLICAS}", "Use e.g. replicas = 1")),
    "replicas_negative": Row(api_with("replicas = -1"), error(
        '"replicas" must be at least 1', f"18:3, {API}", f"It is -1. {REPLICAS}", "Use e.g. replicas = 1")),
    "replicas_quoted": Row(api_with('replicas = "2"'), error(
        'Wrong type for "replicas"', f"18:3, {API}",
        '"replicas" must be a whole number, or a map { min = ..., max = ... }, not a string.',
        "Use e.g. replicas = 1")),
    "replicas_min_zero": Row(api_with("replicas = { min = 0, max = 3 }"), error(
        '"replicas.min" must be at least 1', f"18:3, {API}", f"It is 0. {REPLICAS}", SPAN_FIX)),
    "replicas_max_below_min": Row(api_with("replicas = { min = 3, max = 1 }"), error(
        '"replicas.max" must be at least "replicas.min"', f"18:3, {API}",
        "It is { min = 3, max = 1 }: min is greater than max.", "Swap them.")),
    "replicas_max_fraction": Row(api_with("replicas = { min = 1, max = 2.5 }"), error(
        'Wrong type for "replicas.max"', f"18:3, {API}",
        '"replicas.max" must be a whole number, not the number 2.5.', SPAN_FIX)),
    "replicas_missing_max": Row(api_with("replicas = { min = 2 }"), error(
        'Missing "max" in "replicas"', f"18:3, {API}", 'A map "replicas" sets both "min" and "max".', SPAN_FIX)),
    "replicas_misspelt_key": Row(api_with("replicas = { mn = 1, max = 3 }"), error(
        'Unknown key "mn" in "replicas"', f"18:3, {API}", 'A map "replicas" takes "min" and "max" only.',
        'Did you mean "min"?')),
    "promote_misspelt": Row(api_with('promote = "allways"'), error(
        'Invalid value for "promote"', f"18:3, {API}", '"allways" is not one of "if_not_worse", "always".',
        'Did you mean "always"?')),
    "tolerance_negative": Row(api_with("tolerance = -0.1"), error(
        '"tolerance" must be at least 0', f"18:3, {API}",
        "It is -0.1. How much worse (accuracy, or R²) a retrained model may be and still replace the serving one.",
        "Use e.g. tolerance = 0.02")),
    # training
    "split_zero": Row(nested("training", "split = 0"), error(
        '"training.split" must be greater than 0 and less than 1', f"16:5, {MODEL}", f"It is 0. {SPLIT}",
        "Use e.g. split = 0.75")),
    "split_one": Row(nested("training", "split = 1"), error(
        '"training.split" must be greater than 0 and less than 1', f"16:5, {MODEL}", f"It is 1. {SPLIT}",
        "Use e.g. split = 0.75")),
    "split_percent": Row(nested("training", "split = 75"), error(
        '"training.split" must be greater than 0 and less than 1', f"16:5, {MODEL}", f"It is 75. {SPLIT}",
        "Use e.g. split = 0.75")),
    "epochs_zero": Row(nested("training", "epochs = 0"), error(
        '"training.epochs" must be at least 1', f"16:5, {MODEL}", f"It is 0. {EPOCHS}", "Use e.g. epochs = 50")),
    "epochs_fraction": Row(nested("training", "epochs = 2.5"), error(
        'Wrong type for "training.epochs"', f"16:5, {MODEL}",
        '"training.epochs" must be a whole number, not the number 2.5.', "Use e.g. epochs = 50")),
    "epochs_from_var": Row(BASE + 'variable "epochs" { default = 5 }\n' + model(
        "  training {\n    epochs = var.epochs\n  }\n"), error(
        '"training.epochs" must be at least 1', f"17:5, {MODEL}", f"It is 0. {EPOCHS}", "Use e.g. epochs = 50"),
        variables=(("epochs", "0"),)),
    "batch_size_negative": Row(nested("training", "batch_size = -8"), error(
        '"training.batch_size" must be at least 1', f"16:5, {MODEL}", "It is -8. Rows per training step.",
        "Use e.g. batch_size = 32")),
    "learning_rate_zero": Row(nested("training", "learning_rate = 0"), error(
        '"training.learning_rate" must be greater than 0', f"16:5, {MODEL}", f"It is 0. {LR}",
        "Use e.g. learning_rate = 0.01")),
    "learning_rate_negative": Row(nested("training", "learning_rate = -0.1"), error(
        '"training.learning_rate" must be greater than 0', f"16:5, {MODEL}", f"It is -0.1. {LR}",
        "Use e.g. learning_rate = 0.01")),
    "seed_negative": Row(nested("training", "seed = -1"), error(
        '"training.seed" must be between 0 and 4294967295', f"16:5, {MODEL}", f"It is -1. {SEED}",
        "Use e.g. seed = 0")),
    "seed_too_large": Row(nested("training", "seed = 4294967296"), error(
        '"training.seed" must be between 0 and 4294967295', f"16:5, {MODEL}", f"It is 4294967296. {SEED}",
        "Use e.g. seed = 0")),
    "early_stopping_negative": Row(nested("training", "early_stopping = -1"), error(
        '"training.early_stopping" must be at least 0', f"16:5, {MODEL}", f"It is -1. {PATIENCE}",
        "Use e.g. early_stopping = 5")),
    # compute
    "cpu_zero": Row(nested("compute", "cpu = 0"), error(
        '"compute.cpu" must be greater than 0', f"16:5, {MODEL}", "It is 0. CPU cores for the training job.",
        "Use e.g. cpu = 2")),
    "gpu_negative": Row(nested("compute", "gpu = -1"), error(
        '"compute.gpu" must be at least 0', f"16:5, {MODEL}",
        "It is -1. GPUs for the training job; 0 trains on CPUs.", "Use e.g. gpu = 1")),
    "memory_without_unit": Row(nested("compute", 'memory = "2048"'), error(
        '"compute.memory" must be a size like "2Gi", "512Mi" or "1G"', f"16:5, {MODEL}",
        f'It is "2048". {MEMORY}', 'Use e.g. memory = "2Gi"')),
    "memory_wrong_unit": Row(nested("compute", 'memory = "2GB"'), error(
        '"compute.memory" must be a size like "2Gi", "512Mi" or "1G"', f"16:5, {MODEL}",
        f'It is "2GB". {MEMORY}', 'Use e.g. memory = "2Gi"')),
    "memory_zero": Row(nested("compute", 'memory = "0Gi"'), error(
        '"compute.memory" must be a size like "2Gi", "512Mi" or "1G"', f"16:5, {MODEL}",
        f'It is "0Gi". {MEMORY}', 'Use e.g. memory = "2Gi"')),
    # hparams of the built-in estimators
    "hparam_misspelt": Row(hparams("{ hidden_unitz = [16, 8] }"), error(
        'Unknown hparam "hidden_unitz" for estimator "dnn"', f"15:3, {MODEL}", DNN_TAKES,
        'Did you mean "hidden_units"?')),
    "hparam_unknown": Row(hparams('{ optimizer = "sgd" }'), error(
        'Unknown hparam "optimizer" for estimator "dnn"', f"15:3, {MODEL}", DNN_TAKES,
        'Remove "optimizer" from hparams.')),
    "hparam_of_linear": Row(hparams("{ dropout = 0.2 }", '"linear"'), error(
        'Unknown hparam "dropout" for estimator "linear"', f"15:3, {MODEL}", 'estimator "linear" takes no hparams.',
        'Remove "dropout" from hparams.')),
    "dropout_too_large": Row(hparams("{ dropout = 2 }"), error(
        '"hparams.dropout" must be at least 0 and less than 1', f"15:3, {MODEL}", f"It is 2. {DROPOUT}",
        "Use e.g. dropout = 0.2")),
    "dropout_one": Row(hparams("{ dropout = 1 }"), error(
        '"hparams.dropout" must be at least 0 and less than 1', f"15:3, {MODEL}", f"It is 1. {DROPOUT}",
        "Use e.g. dropout = 0.2")),
    "dropout_negative": Row(hparams("{ dropout = -0.1 }"), error(
        '"hparams.dropout" must be at least 0 and less than 1', f"15:3, {MODEL}", f"It is -0.1. {DROPOUT}",
        "Use e.g. dropout = 0.2")),
    "dropout_quoted": Row(hparams('{ dropout = "0.5" }'), error(
        'Wrong type for "hparams.dropout"', f"15:3, {MODEL}", '"hparams.dropout" must be a number, not a string.',
        "Use e.g. dropout = 0.2")),
    "dropout_null": Row(hparams("{ dropout = null }"), error(
        'Wrong type for "hparams.dropout"', f"15:3, {MODEL}", '"hparams.dropout" is null.',
        "Remove it to use the default, dropout = 0.0")),
    "hidden_units_empty": Row(hparams("{ hidden_units = [] }"), error(
        '"hparams.hidden_units" must not be empty', f"15:3, {MODEL}", f"It is []. {UNITS}",
        "Use e.g. hidden_units = [64, 32]")),
    "hidden_units_zero": Row(hparams("{ hidden_units = [16, 0] }"), error(
        '"hparams.hidden_units[1]" must be at least 1', f"15:3, {MODEL}", f"It is 0. {UNITS}",
        "Use e.g. hidden_units = [64, 32]")),
    "hidden_units_fraction": Row(hparams("{ hidden_units = [16, 8.5] }"), error(
        'Wrong type for "hparams.hidden_units[1]"', f"15:3, {MODEL}",
        '"hparams.hidden_units[1]" must be a whole number, not the number 8.5.', "Use e.g. hidden_units = [64, 32]")),
    "hidden_units_not_a_list": Row(hparams("{ hidden_units = 16 }"), error(
        'Wrong type for "hparams.hidden_units"', f"15:3, {MODEL}",
        '"hparams.hidden_units" must be a list [...], not the number 16.', "Use e.g. hidden_units = [64, 32]")),
    "embedding_dim_zero": Row(hparams("{ embedding_dim = 0 }"), error(
        '"hparams.embedding_dim" must be at least 1', f"15:3, {MODEL}",
        "It is 0. The width of the embedding of each categorical or STRING feature.",
        "Use e.g. embedding_dim = 8")),
    "activation_misspelt": Row(hparams('{ activation = "rellu" }'), error(
        'Invalid value for "hparams.activation"', f"15:3, {MODEL}",
        '"rellu" is not one of ' + ", ".join(f'"{a}"' for a in ESTIMATORS["dnn"].params["activation"].choices)
        + ".", 'Did you mean "relu"?')),
    # misleading fixes, corrected
    "variable_without_value_used": Row(BASE + 'variable "epochs" {}\n' + model(
        "  training {\n    epochs = var.epochs\n  }\n"), error(
        'No value for variable "epochs"', '10:1, in variable "epochs"',
        "The variable has no default and was not set on the command line.",
        "Pass --var epochs=VALUE or add a default.")),
    "unicode_name": Row(BASE + 'raw_column "âge" { type = "INT" }\n', error(
        'Invalid name "âge"', '10:1, in raw_column "âge"', "Names start with a lowercase letter and use a-z, 0-9 and _.",
        'Rename it, e.g. "age".')),
    "unicode_name_sharp_s": Row(BASE + 'raw_column "Größe (cm)" { type = "INT" }\n', error(
        'Invalid name "Größe (cm)"', '10:1, in raw_column "Größe (cm)"',
        "Names start with a lowercase letter and use a-z, 0-9 and _.", 'Rename it, e.g. "grosse_cm".')),
    "name_starting_with_a_digit": Row(BASE + 'raw_column "2nd_item" { type = "INT" }\n', error(
        'Invalid name "2nd_item"', '10:1, in raw_column "2nd_item"',
        "Names start with a lowercase letter and use a-z, 0-9 and _.", 'Rename it, e.g. "x_2nd_item".')),
}


@pytest.mark.parametrize("row_id", list(ROWS))
def test_a_bad_setting_is_refused_with_its_range_and_place(row_id: str, tmp_path: Path) -> None:
    row = ROWS[row_id]
    app = write_app(tmp_path / "app", {"app.hcl": row.app})
    assert format_diagnostic(only_error(app, dict(row.variables))) == row.expected


def test_a_cloud_block_is_refused_what_its_cluster_would_refuse(tmp_path: Path) -> None:
    block = ('provider "aws" {\n  region = "eu-west-1"\n  executors = 2\n'
             '  pod_labels = { "mlp.dev/app" = "x" }\n}\n')
    with pytest.raises(DiagnosticsError) as err:
        api.validate(write_app(tmp_path / "app", {"app.hcl": BASE.replace('provider "local" {}\n', block)}))
    assert sorted(d.summary for d in err.value.diagnostics.errors()) == [
        "Spark executors need a shared cache_claim", 'pod_labels: "mlp.dev/app" is a key mlp or Kubernetes sets itself']


@pytest.mark.parametrize("provider", [
    'provider "aws" {\n  region = "eu-west-1"\n  namespace = "ml"\n  image = "r.example/mlp:1"\n'
    '  executors = 2\n  cache_claim = "shared"\n  service_type = "LoadBalancer"\n}\n',
    'provider "azure" {\n  location = "westeurope"\n  backend_resource_group = "state-rg"\n  api_memory = "2Gi"\n}\n',
    'provider "gcp" {\n  project = "ml-platform-123"\n  region = "europe-west1"\n  pod_labels = { team = "ml" }\n}\n',
])
def test_a_cloud_block_takes_the_workload_settings_it_passes_on(provider: str, tmp_path: Path) -> None:
    from mlp_cloud.handoff import ClusterOutputs, kube_block

    validated = api.validate(write_app(tmp_path / "app", {"app.hcl": BASE.replace('provider "local" {}\n', provider)}))
    assert not validated.diagnostics.has_errors(), [d.summary for d in validated.diagnostics.items]
    block = validated.checked.app.provider
    out = ClusterOutputs("c", "kubeconfig: x", "ctx", "b", "r.example", block.settings["namespace"], "", "")
    handed = kube_block(block, out, tmp_path / "kubeconfig").settings
    for name in ("namespace", "image", "executors", "cache_claim", "service_type", "api_memory", "pod_labels"):
        if name in provider:
            assert handed[name] == block.settings[name], name


@pytest.mark.parametrize("app", [
    pytest.param(source_with("sample = 0"), id="sample_all_rows"),
    pytest.param(source_with("sample = 1"), id="sample_one_row"),
    pytest.param(provider_with("parallelism = 1"), id="parallelism_one"),
    pytest.param(api_with("port = 1"), id="port_1"),
    pytest.param(api_with("port = 65535"), id="port_65535"),
    pytest.param(api_with("replicas = 1"), id="replicas_1"),
    pytest.param(api_with("replicas = { min = 1, max = 3 }"), id="replicas_autoscaled"),
    pytest.param(api_with("replicas = { min = 2, max = 2 }"), id="replicas_min_equals_max"),
    pytest.param(api_with("tolerance = 0"), id="tolerance_0"),
    pytest.param(api_with('promote = "always"'), id="promote_always"),
    pytest.param(nested("training", "split = 0.5"), id="split_half"),
    pytest.param(nested("training", "split = 0.99"), id="split_099"),
    pytest.param(nested("training", "epochs = 1"), id="epochs_1"),
    pytest.param(nested("training", "learning_rate = 1e-6"), id="learning_rate_tiny"),
    pytest.param(nested("training", "seed = 4294967295"), id="seed_largest"),
    pytest.param(nested("training", "early_stopping = 0"), id="early_stopping_off"),
    pytest.param(nested("compute", "cpu = 0.5"), id="cpu_half"),
    pytest.param(nested("compute", "gpu = 0"), id="gpu_0"),
    pytest.param(nested("compute", 'memory = "512Mi"'), id="memory_512Mi"),
    pytest.param(nested("compute", 'memory = "1G"'), id="memory_1G"),
    pytest.param(nested("compute", 'memory = "0.5Gi"'), id="memory_half_Gi"),
    pytest.param(hparams("{ dropout = 0 }"), id="dropout_0"),
    pytest.param(hparams("{ dropout = 0.99 }"), id="dropout_099"),
    pytest.param(hparams('{ hidden_units = [1], activation = "tanh", embedding_dim = 1 }'), id="dnn_smallest"),
    pytest.param(hparams("{}", '"linear"'), id="linear_no_hparams"),
    pytest.param(BASE + 'estimator "mine" { path = "code/mine.py" }\n'
                 + model("  hparams   = { hidden_unitz = 0, anything = \"goes\" }\n", "estimator.mine"),
                 id="custom_estimator_takes_any_hparams"),
])
def test_a_valid_edge_value_passes(app: str, tmp_path: Path) -> None:
    validated = api.validate(write_app(tmp_path / "app", {"app.hcl": app}))
    assert not validated.diagnostics.has_errors()


def test_an_autoscaled_api_keeps_its_replicas_outside_the_fingerprint(tmp_path: Path) -> None:
    one = api.validate(write_app(tmp_path / "one", {"app.hcl": api_with("replicas = 1")})).checked
    auto = api.validate(write_app(tmp_path / "auto", {"app.hcl": api_with("replicas = { min = 1, max = 3 }")})).checked
    [a1] = [b for b in one.app.blocks.values() if str(b.address) == "api.a"]
    [a2] = [b for b in auto.app.blocks.values() if str(b.address) == "api.a"]
    assert a1.settings() == a2.settings()
    assert a2.extra()["replicas"] == {"min": 1, "max": 3}
    assert not BLOCKS["api"].attrs["replicas"].fingerprinted


def _check(name: str, value: object, block: str = "training") -> list[str]:
    diags = Diagnostics()
    ok, _ = coerce(name, BLOCKS["model"].blocks[block].attrs[name], value, SourcePos("x.hcl", 1), diags, "")
    return [d.summary for d in diags.items] if not ok else []


def test_the_trainer_defaults_are_valid_settings() -> None:
    """validate and the trainer agree: every default the trainer fills in passes the schema."""
    assert set(TRAINING_DEFAULTS) == set(BLOCKS["model"].blocks["training"].attrs)
    assert {k: _check(k, v) for k, v in TRAINING_DEFAULTS.items()} == {k: [] for k in TRAINING_DEFAULTS}
    for spec in ESTIMATORS.values():
        assert spec.hparams == {k: f.default for k, f in spec.params.items()}
        for k, f in spec.params.items():
            assert coerce(k, f, f.default, SourcePos("x.hcl", 1), Diagnostics(), "")[0], (spec.name, k)


def test_every_hparam_the_runtime_reads_is_declared() -> None:
    """runtime/estimators.py reads hparams as hp["NAME"]: each is declared, with a range or choices."""
    read = set(re.findall(r'hp\["(\w+)"\]', (REPO / "runtime" / "estimators.py").read_text()))
    assert read == set(ESTIMATORS["dnn"].params)
    assert all(f.range or f.choices or f.item for f in ESTIMATORS["dnn"].params.values())


@pytest.mark.parametrize(("name", "suggestion"), [
    ("Unit-Price", "unit_price"), ("âge", "age"), ("Ça_va", "ca_va"), ("naïve  name", "naive_name"),
    ("Größe", "grosse"), ("_private", "private"), ("9lives", "x_9lives"), ("日本", "x"), ("ÆON", "aeon"),
])
def test_a_suggested_name_is_a_valid_name(name: str, suggestion: str) -> None:
    assert _suggest_name(name) == suggestion
    assert NAME_RE.match(_suggest_name(name))


# -- the guardrail of a diverging loss (runtime/guardrails.py), without training --------------


def _profile(features: dict[str, tuple[float, float]], target_mean: float, target_std: float) -> Profile:
    names = tuple(features)
    mean = np.array([m for m, _ in features.values()])
    std = np.array([s for _, s in features.values()])
    stats = NumericStats(names, 400, mean, std, mean - 2 * std, mean + 2 * std, np.eye(len(names)))
    return Profile(300, 100, None, {}, {}, {}, {}, {}, stats, target_mean, target_std)


FEATURES = [Column("income_norm", ColumnType.FLOAT), Column("age_scaled", ColumnType.FLOAT),
            Column("visits", ColumnType.FLOAT)]


def test_an_overflowing_target_is_blamed_not_the_normalized_features() -> None:
    profile = _profile({"income_norm": (0.0, 1.0), "age_scaled": (0.5, 0.3), "visits": (1.0, 2.0)}, 3e10, 2e10)
    scaled = ("age_scaled", "income_norm")
    assert guardrails.diverged("model.price", 1, float("nan"), 0.01, FEATURES, profile, scaled, "price") == (
        "model.price: the training loss became NaN in epoch 1: the values of its target 'price' are too large "
        "(stddev 2e+10) for 32-bit training",
        "train model.price on a scaled target: a transformed_column of 'price' with transformer = "
        '"min_max_scale" (or "log" for positive values) as its target; a smaller training.learning_rate '
        "does not help here")
    [w] = guardrails.check_data("model.price", FEATURES, profile, "none", scaled, "price")
    assert (w.code, w.fix) == ("large_target", guardrails.diverged(
        "model.price", 1, float("nan"), 0.01, FEATURES, profile, scaled, "price")[1])


def test_a_diverging_loss_never_suggests_normalizing_a_normalized_feature() -> None:
    # income_norm's spread is large on this share, but normalize made it: only visits is raw.
    profile = _profile({"income_norm": (0.0, 40.0), "age_scaled": (0.5, 0.3), "visits": (900.0, 300.0)}, 10.0, 3.0)
    scaled = ("age_scaled", "income_norm")
    assert guardrails.diverged("model.price", 3, float("inf"), 0.5, FEATURES, profile, scaled) == (
        "model.price: the training loss became infinite in epoch 3",
        'lower training.learning_rate (now 0.5) in model.price, or normalize its raw numeric features (visits) '
        'with transformer = "normalize"')
    assert [w.message for w in guardrails.check_data("model.price", FEATURES, profile, "none", scaled)] == [
        "model.price: feature 'visits' is used raw with a large spread (mean 900, stddev 300)"]


def test_a_diverging_loss_with_scaled_features_only_suggests_the_learning_rate() -> None:
    profile = _profile({"income_norm": (0.0, 1.0), "age_scaled": (0.5, 0.3), "visits": (1.0, 2.0)}, 10.0, 3.0)
    assert guardrails.diverged("model.price", 1, float("nan"), 10.0, FEATURES, profile) == (
        "model.price: the training loss became NaN in epoch 1", "lower training.learning_rate (now 10) in model.price")
