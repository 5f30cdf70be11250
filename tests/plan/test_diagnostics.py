"""One row per kind of app error: the app, the exact summary, and where it is reported.

Every row is a one-file app (`app.hcl`) that has exactly that one error; `mlp.api.validate`
must raise `DiagnosticsError` carrying it, with the file and line (and the column for
syntax errors), and the "did you mean" hint where one is promised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from mlp import api
from mlp.diagnostics import Diagnostic
from mlp.errors import DiagnosticsError

from .conftest import run_mlp, write_app

# A valid start: one source and four typed columns, lines 1-11.
BASE = """\
provider "local" {}

source "orders" {
  format = "csv"
  path   = "data/orders.csv"
}

raw_column "amount" { type = "FLOAT" }
raw_column "country" { type = "STRING" }
raw_column "items" { type = "INT" }
raw_column "returned" { type = "INT" }
"""
L = BASE.count("\n")  # BASE + "x" puts x on line L + 1


def model(kind: str, target: str, features: str) -> str:
    """A model block starting on line L + 1; `target` is on line L + 4, `features` on L + 5."""
    return f"""model "m" {{
  type      = "{kind}"
  estimator = "linear"
  target    = {target}
  features  = {features}
}}
"""


@dataclass(frozen=True)
class Row:
    app: str
    summary: str
    where: str | None  # "app.hcl:LINE" or "app.hcl:LINE:COLUMN"; None: not in a file
    hint: str | None = None  # checked when given
    detail: str | None = None  # checked when given
    variables: tuple[tuple[str, str], ...] = ()


ROWS = {
    "hcl_syntax": Row(
        'provider "local" {}\nraw_column "amount" {\n  type: "FLOAT"\n}\n',
        "Invalid HCL syntax: unexpected ':'", "app.hcl:3:7"),
    "unknown_block_kind": Row(
        BASE + 'aggregat "amount_mean" {\n  aggregator = "mean"\n  input      = raw_column.amount\n}\n',
        'Unknown block kind "aggregat"', f"app.hcl:{L + 1}:1", hint='Did you mean "aggregate"?'),
    "unknown_attribute": Row(
        BASE + 'aggregate "amount_mean" {\n  aggregator = "mean"\n  inptu      = raw_column.amount\n}\n',
        'Unknown attribute "inptu"', f"app.hcl:{L + 3}:3", hint='Did you mean "input"?'),
    "missing_required_attribute": Row(
        BASE + 'aggregate "amount_mean" {\n  input = raw_column.amount\n}\n',
        'Missing required attribute "aggregator"', f"app.hcl:{L + 1}:1", hint="Add: aggregator = ..."),
    "wrong_value_type": Row(
        BASE.replace('  path   = "data/orders.csv"\n', '  path   = "data/orders.csv"\n  header = "yes"\n'),
        'Wrong type for "header"', "app.hcl:6:3",
        detail='"header" must be true or false, not a string.'),
    "duplicate_name": Row(
        BASE + 'raw_column "items" { type = "FLOAT" }\n',
        'Duplicate raw_column "items"', f"app.hcl:{L + 1}:1",
        detail="A raw_column with this name is already declared at app.hcl:10:1."),
    "unknown_reference": Row(
        BASE + 'aggregate "amount_mean" {\n  aggregator = "mean"\n  input      = raw_column.amout\n}\n',
        'Unknown reference "raw_column.amout"', f"app.hcl:{L + 3}:3", hint='Did you mean "raw_column.amount"?'),
    "cycle": Row(
        BASE + "".join(f'transformed_column "{a}" {{\n  transformer = "log"\n  inputs      = {{ column = '
                       f'transformed_column.{b} }}\n}}\n' for a, b in (("p", "q"), ("q", "r"), ("r", "p"))),
        "Dependency cycle", f"app.hcl:{L + 1}:1",
        detail="Each block feeds the next, in a loop: "
               "transformed_column.p -> transformed_column.r -> transformed_column.q -> transformed_column.p."),
    "no_provider": Row(
        BASE.replace('provider "local" {}\n', ""), "No provider block", "app.hcl", hint='Add: provider "local" {}'),
    "two_providers": Row(
        BASE + 'provider "local" {}\n', "More than one provider block", f"app.hcl:{L + 1}:1"),
    "unknown_provider": Row(
        BASE.replace('provider "local"', 'provider "lokal"'), 'Unknown provider "lokal"', "app.hcl:1:1",
        hint='Did you mean "local"?'),
    "unknown_backend": Row(
        BASE + 'backend "s4" {}\n', 'Unknown backend "s4"', f"app.hcl:{L + 1}:1",
        detail="Known backends: azurerm, gcs, local, s3."),
    "aggregator_input_type": Row(
        BASE + 'aggregate "country_mean" {\n  aggregator = "mean"\n  input      = raw_column.country\n}\n',
        'Wrong column type for aggregator "mean"', f"app.hcl:{L + 3}:3"),
    "transformer_input_type": Row(
        BASE + 'transformed_column "country_log" {\n  transformer = "log"\n'
               '  inputs      = { column = raw_column.country }\n}\n',
        'Wrong column type for transformer "log"', f"app.hcl:{L + 3}:3"),
    "numeric_transform_on_categorical": Row(
        BASE + 'aggregate "vocab" {\n  aggregator = "index_string"\n  input      = raw_column.country\n}\n'
               'transformed_column "country_index" {\n  transformer = "index_string"\n  inputs      = {\n'
               '    column     = raw_column.country\n    vocabulary = aggregate.vocab\n  }\n}\n'
               'transformed_column "country_norm" {\n  transformer = "normalize"\n  inputs      = {\n'
               '    column = transformed_column.country_index\n    mean   = aggregate.items_mean\n'
               '    stddev = aggregate.items_stddev\n  }\n}\n'
               'aggregate "items_mean" {\n  aggregator = "mean"\n  input      = raw_column.items\n}\n'
               'aggregate "items_stddev" {\n  aggregator = "stddev"\n  input      = raw_column.items\n}\n',
        'Numeric transform on a categorical column: transformer "normalize" of transformed_column.country_index',
        f"app.hcl:{L + 14}:3"),
    "numeric_log_on_categorical": Row(
        BASE + 'transformed_column "bucket" {\n  transformer = "bucketize"\n'
               '  inputs      = { column = raw_column.amount }\n  args        = { boundaries = [10, 100] }\n}\n'
               'transformed_column "bucket_log" {\n  transformer = "log"\n'
               '  inputs      = { column = transformed_column.bucket }\n}\n',
        'Numeric transform on a categorical column: transformer "log" of transformed_column.bucket',
        f"app.hcl:{L + 8}:3"),
    "classification_target_float": Row(
        BASE + model("classification", "raw_column.amount", "[raw_column.items]"),
        "Classification target is FLOAT", f"app.hcl:{L + 4}:3"),
    "regression_target_string": Row(
        BASE + model("regression", "raw_column.country", "[raw_column.items]"),
        "Regression target is STRING", f"app.hcl:{L + 4}:3"),
    "model_without_features": Row(
        BASE + model("regression", "raw_column.amount", "[]"), "Model without features", f"app.hcl:{L + 5}:3"),
    "api_missing_model": Row(
        BASE + 'api "returns" {\n  model = model.returns\n}\n', 'Unknown reference "model.returns"',
        f"app.hcl:{L + 2}:3", detail='No model named "returns" is declared.'),
    "unknown_variable": Row(
        BASE + 'variable "epochs" { default = 5 }\n'
        + model("regression", "raw_column.amount", "[raw_column.items]").replace(
            "}\n", "  training {\n    epochs = var.epoch\n  }\n}\n"),
        'Unknown variable "var.epoch"', f"app.hcl:{L + 8}:5", hint='Did you mean "epochs"?'),
    "unknown_variable_flag": Row(
        BASE + 'variable "epochs" { default = 5 }\n', 'Unknown variable "epoch" given with --var', None,
        hint='Did you mean "epochs"?', variables=(("epoch", "3"),)),
    "variable_without_value": Row(
        BASE + 'variable "epochs" {}\n', 'No value for variable "epochs"', f"app.hcl:{L + 1}:1",
        hint="Pass --var epochs=VALUE or add a default."),
    # Beyond the list of SPEC §2: mistakes users make often.
    "reference_to_wrong_kind": Row(
        BASE + 'aggregate "amount_mean" {\n  aggregator = "mean"\n  input      = raw_column.amount\n}\n'
               'aggregate "mean_of_mean" {\n  aggregator = "mean"\n  input      = aggregate.amount_mean\n}\n',
        '"input" cannot refer to an aggregate', f"app.hcl:{L + 7}:3",
        detail='aggregate.amount_mean is an aggregate; "input" takes raw_column or transformed_column blocks.'),
    "quoted_reference": Row(
        BASE + 'aggregate "amount_mean" {\n  aggregator = "mean"\n  input      = "raw_column.amount"\n}\n',
        'Wrong type for "input"', f"app.hcl:{L + 3}:3",
        hint="Write the reference without quotes: input = raw_column.amount"),
    "unknown_aggregator": Row(
        BASE + 'aggregate "amount_mean" {\n  aggregator = "maen"\n  input      = raw_column.amount\n}\n',
        'Unknown aggregator "maen"', f"app.hcl:{L + 2}:3", hint='Did you mean "mean"?'),
    "invalid_name": Row(
        BASE + 'raw_column "Unit-Price" { type = "FLOAT" }\n', 'Invalid name "Unit-Price"', f"app.hcl:{L + 1}:1",
        hint='Rename it, e.g. "unit_price".'),
    "attribute_set_twice": Row(
        BASE + 'raw_column "price" {\n  type = "FLOAT"\n  type = "INT"\n}\n',
        'The attribute "type" is set twice', f"app.hcl:{L + 3}:3"),
    "two_attributes_on_one_line": Row(
        BASE + 'raw_column "price" { type = "FLOAT" min = 0 }\n',
        '"min" starts on the line where the previous argument or block ends: put each on a line of its own',
        f"app.hcl:{L + 1}:37", detail="HCL ends every argument and block with a newline."),
    "error_in_another_file": Row(
        BASE, 'Unknown reference "raw_column.itmes"', "model.hcl:5:3", hint='Did you mean "raw_column.items"?'),
}
EXTRA_FILES = {"error_in_another_file": {"model.hcl": model("regression", "raw_column.amount", "[raw_column.itmes]")}}


def only_error(app_dir: Path, variables: dict[str, str] | None = None) -> Diagnostic:
    with pytest.raises(DiagnosticsError) as err:
        api.validate(app_dir, variables)
    errors = err.value.diagnostics.errors()
    assert len(errors) == 1, [e.summary for e in errors]
    assert err.value.summary == "the app has 1 error"
    return errors[0]


@pytest.mark.parametrize("row_id", list(ROWS))
def test_diagnostic(row_id: str, tmp_path: Path) -> None:
    row = ROWS[row_id]
    app = write_app(tmp_path / "app", {"app.hcl": row.app, **EXTRA_FILES.get(row_id, {})})
    d = only_error(app, dict(row.variables))
    assert d.summary == row.summary
    assert (str(d.pos) if d.pos else None) == row.where
    if row.hint is not None:
        assert d.hint == row.hint
    if row.detail is not None:
        assert d.detail == row.detail


def test_the_base_app_is_valid(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"app.hcl": BASE + model("regression", "raw_column.amount",
                                                              "[raw_column.items, raw_column.country]")})
    assert not api.validate(app).diagnostics.has_errors()


@pytest.mark.parametrize(("row", "where"), [
    pytest.param(ROWS["hcl_syntax"], "app.hcl:3:7", id="hcl_syntax"),
    pytest.param(ROWS["cycle"], f"app.hcl:{L + 1}", id="cycle"),
])
def test_cli_reports_the_error_with_its_place(row: Row, where: str, tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"app.hcl": row.app})
    res = run_mlp("-C", app, "validate")
    assert res.returncode == 1
    assert f"Error: {row.summary}" in res.stderr
    assert f"on {where}" in res.stderr
    assert "1 error found." in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


CSV = "amount,country,items,returned\n12.5,fr,1,0\n"


@pytest.mark.parametrize(("files", "summary", "where"), [
    pytest.param({"app.hcl": BASE}, "No data found for source.orders", "app.hcl:5:3", id="no_data"),
    pytest.param({"app.hcl": BASE + 'transformer "cap" {\n  path        = "code/cap.py"\n  output_type = "FLOAT"\n}\n',
                  "data/orders.csv": CSV},
                 "Code file not found for transformer.cap", f"app.hcl:{L + 2}:3", id="no_code_file"),
])
def test_plan_finds_what_validate_cannot(files: dict[str, str], summary: str, where: str, tmp_path: Path) -> None:
    """Data and code files are looked at by plan (which hashes them), not by validate."""
    app = write_app(tmp_path / "app", files)
    assert not api.validate(app).diagnostics.has_errors()
    with pytest.raises(DiagnosticsError) as err:
        api.plan(app)
    [d] = err.value.diagnostics.errors()
    assert (d.summary, str(d.pos)) == (summary, where)
