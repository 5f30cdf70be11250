"""The built-ins' reference: docs/builtins.md is current, every example block validates, and
`mlp builtins` prints it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlp.builtins import reference
from mlp.builtins.catalogue import AGGREGATORS, ESTIMATORS, TRANSFORMERS
from mlp.graph.analysis import check

from .conftest import run_mlp, write_app

ROOT = Path(__file__).resolve().parents[2]
# A source with every column an example names.
BASE = {
    "app.hcl": '''provider "local" {}

source "s" {
  format = "csv"
  path   = "data/s.csv"
}
''' + "".join(f'raw_column "{n}" {{\n  type = "{t}"\n}}\n' for n, t in (
        ("x", "FLOAT"), ("x0", "FLOAT"), ("x1", "FLOAT"), ("city", "STRING"), ("price", "FLOAT"),
        ("size_m2", "FLOAT"), ("rooms", "INT"))),
    "data/s.csv": "x,x0,x1,city,price,size_m2,rooms\n1.0,2.0,3.0,lyon,100.0,50.0,2\n",
}


def test_docs_builtins_md_is_current() -> None:
    assert (ROOT / "docs" / "builtins.md").read_text() == reference.markdown(), \
        "docs/builtins.md is out of date: python -m mlp.builtins.reference > docs/builtins.md"


@pytest.mark.parametrize("spec", [*AGGREGATORS.values(), *TRANSFORMERS.values(), *ESTIMATORS.values()],
                         ids=lambda s: f"{type(s).__name__.removesuffix('Spec').lower()}-{s.name}")
def test_every_example_validates(spec: object, tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {**BASE, "example.hcl": reference.example(spec) + "\n"})  # type: ignore[arg-type]
    checked, diags = check(app)
    assert checked is not None, [d.summary for d in diags.errors()]


def test_mlp_builtins_prints_one_and_all() -> None:
    one = run_mlp("builtins", "normalize")
    assert one.returncode == 0
    assert one.stdout.splitlines()[:5] == [
        "normalize (transformer, version 1): (x - mean) / stddev; 0 when stddev is 0",
        "  inputs:",
        "    column: a column of FLOAT | INT; not a categorical column",
        "    mean: an aggregate giving a number, usually `mean`",
        "    stddev: an aggregate giving a number, usually `stddev`",
    ]
    both = run_mlp("builtins", "index_string").stdout
    assert "index_string (aggregator" in both and "index_string (transformer" in both
    every = run_mlp("builtins").stdout
    assert all(f"  {name} " in every for name in reference.names())
    wrong = run_mlp("builtins", "normalise")
    assert wrong.returncode == 1 and 'Did you mean "normalize"?' in wrong.stderr
