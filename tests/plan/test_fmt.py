"""`mlp fmt`: canonical layout (2-space indent, aligned `=`), idempotent, never changes meaning,
keeps comments, and leaves a file it cannot parse alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlp.config.fmt import format_text
from mlp.config.hcl import Block, parse_text

from .conftest import REPO, run_mlp, write_app

MESSY = """\
# Orders: a source and two columns.
provider "local" {}
source "orders" {
    format="csv"   # the format
  path = "data/orders.csv"
      header=true
}

// amounts are in euros


raw_column "amount" {
type = "FLOAT"
  min=0
     max = 1000
}
model "m" {
  type = "regression"
  estimator = "linear"
  target = raw_column.amount
  features = [
  raw_column.items,
      raw_column.country,
  ]
  training {
  epochs = 5
      batch_size=4
  }
}
"""

FORMATTED = """\
# Orders: a source and two columns.
provider "local" {}
source "orders" {
  format = "csv"   # the format
  path   = "data/orders.csv"
  header = true
}

// amounts are in euros

raw_column "amount" {
  type = "FLOAT"
  min  = 0
  max  = 1000
}
model "m" {
  type      = "regression"
  estimator = "linear"
  target    = raw_column.amount
  features  = [
    raw_column.items,
    raw_column.country,
  ]
  training {
    epochs     = 5
    batch_size = 4
  }
}
"""


def meaning(text: str) -> list[Any]:
    """What the HCL says, without where it says it."""
    parsed = parse_text(text, "app.hcl")
    assert parsed.syntax_error is None, parsed.syntax_error

    def block(b: Block) -> Any:
        return (b.kind, b.labels, {k: a.value for k, a in b.attrs.items()}, [block(s) for s in b.blocks])
    return [block(b) for b in parsed.blocks]


def test_check_lists_the_unformatted_file_and_changes_nothing(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"app.hcl": MESSY, "columns.hcl": 'raw_column "items" {\n  type = "INT"\n}\n'})
    res = run_mlp("-C", app, "fmt", "--check")
    assert (res.returncode, res.stdout, res.stderr) == (3, "app.hcl\n", "")
    assert (app / "app.hcl").read_text() == MESSY


def test_fmt_rewrites_then_is_idempotent(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"app.hcl": MESSY})
    res = run_mlp("-C", app, "fmt")
    assert (res.returncode, res.stdout) == (0, "app.hcl\n")
    assert (app / "app.hcl").read_text() == FORMATTED
    again = run_mlp("-C", app, "fmt")
    assert (again.returncode, again.stdout) == (0, "")
    assert (app / "app.hcl").read_text() == FORMATTED
    assert run_mlp("-C", app, "fmt", "--check").returncode == 0


def test_fmt_keeps_meaning() -> None:
    assert meaning(format_text(MESSY)) == meaning(MESSY)


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*/*.hcl")) + sorted(
    (REPO / "mlp" / "templates").glob("*/*.hcl")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_apps_are_formatted(path: Path) -> None:
    text = path.read_text()
    assert format_text(text) == text


def test_syntax_error_is_reported_and_the_file_left_alone(tmp_path: Path) -> None:
    bad = 'provider "local" {}\nsource "orders" {\n    format: "csv"\n}\n'
    app = write_app(tmp_path / "app", {"app.hcl": bad})
    for args in (["fmt"], ["fmt", "--check"]):
        res = run_mlp("-C", app, *args)
        assert res.returncode == 1
        assert "Error: Invalid HCL syntax: unexpected ':'\n  on app.hcl:3:11\n" in res.stderr
        assert "Files with syntax errors are not formatted." in res.stderr
        assert "Traceback" not in res.stderr
        assert (app / "app.hcl").read_text() == bad


# -- comments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param('# a\nprovider "local" {}\n', '# a\nprovider "local" {}\n', id="hash_line"),
    pytest.param('// a\nprovider "local" {}\n', '// a\nprovider "local" {}\n', id="slash_line"),
    pytest.param('source "s" {\n      # why csv\n  format = "csv"\n}\n',
                 'source "s" {\n  # why csv\n  format = "csv"\n}\n', id="indented_with_the_block"),
    pytest.param('source "s" {\n  format = "csv" # not parquet {\n  path = "x"\n}\n',
                 'source "s" {\n  format = "csv" # not parquet {\n  path   = "x"\n}\n', id="trailing_with_brace"),
    pytest.param('source "s" {\n  path = "s3://b/x" // {\n}\n', 'source "s" {\n  path = "s3://b/x" // {\n}\n',
                 id="slashes_in_a_string"),
    pytest.param('source "s" {\n  /* one line */\n  format = "csv"\n}\n',
                 'source "s" {\n  /* one line */\n  format = "csv"\n}\n', id="block_one_line"),
    pytest.param('source "s" {\n  /* a { in a comment */\n  format = "csv"\n}\n',
                 'source "s" {\n  /* a { in a comment */\n  format = "csv"\n}\n', id="block_with_brace"),
    pytest.param('source "s" {\n  /*\n     keep me\n       as written\n  */\n  format = "csv"\n}\n',
                 'source "s" {\n  /*\n     keep me\n       as written\n  */\n  format = "csv"\n}\n',
                 id="block_multi_line"),
])
def test_comments_are_kept(text: str, expected: str) -> None:
    assert parse_text(text, "app.hcl").syntax_error is None
    assert format_text(text) == expected
    assert format_text(expected) == expected


def test_heredoc_is_kept_as_written() -> None:
    text = 'source "s" {\n  x = <<EOT\n  {{ keep\n    this\nEOT\n      y = 1\n}\n'
    assert format_text(text) == 'source "s" {\n  x = <<EOT\n  {{ keep\n    this\nEOT\n  y = 1\n}\n'


def test_syntax_error_in_one_file_does_not_hide_what_was_rewritten(tmp_path: Path) -> None:
    """The other files are still formatted, and, like every rewritten file, named on stdout."""
    bad = 'source "orders" {\n    format: "csv"\n}\n'
    app = write_app(tmp_path / "app", {"a_bad.hcl": bad, "b_good.hcl": 'provider "local" {\n    parallelism=2\n}\n'})
    res = run_mlp("-C", app, "fmt")
    assert res.returncode == 1
    assert "on a_bad.hcl:2:11" in res.stderr
    assert (app / "a_bad.hcl").read_text() == bad
    assert (app / "b_good.hcl").read_text() == 'provider "local" {\n  parallelism = 2\n}\n'
    assert res.stdout == "b_good.hcl\n"
