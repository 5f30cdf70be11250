"""What the files already say, at validate: CSV headers, custom code compiled (never run),
and columns nothing uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlp import api
from mlp.diagnostics import Severity
from mlp.errors import DiagnosticsError
from mlp.graph.analysis import check

from .conftest import write_app

APP = """\
provider "local" {}

source "s" {
  format = "csv"
  path   = "data/s.csv"
}

raw_column "sepal_length" { type = "FLOAT" }
raw_column "class" { type = "STRING" }

model "m" {
  type      = "classification"
  estimator = "linear"
  target    = raw_column.class
  features  = [raw_column.sepal_length]
}
"""
CSV = "sepal_length,class\n5.1,a\n6.2,b\n"
CUSTOM = """
transformer "t" {
  path        = "code/t.py"
  output_type = "FLOAT"
}

transformed_column "x" {
  transformer = transformer.t
  inputs      = { column = raw_column.sepal_length }
}
"""


def _errors(tmp_path: Path, files: dict[str, str]) -> list[tuple[str, str, str, str]]:
    app = write_app(tmp_path / "app", {"app.hcl": APP, "data/s.csv": CSV, **files})
    checked, diags = check(app)
    return [(d.summary, str(d.pos), d.detail, d.hint) for d in diags.errors()]


@pytest.mark.parametrize(("files", "expected"), [
    ({"app.hcl": APP.replace('raw_column "class"', 'raw_column "clas"').replace("raw_column.class", "raw_column.clas")},
     [('No column "clas" in the header of data/s.csv', "app.hcl:9:1", "The file's columns are: sepal_length, class.",
       'Did you mean "class"?')]),
    ({"app.hcl": APP.replace('raw_column "class" { type = "STRING" }',
                             'raw_column "class" {\n  column = "Class"\n  type   = "STRING"\n}')},
     [('No column "Class" in the header of data/s.csv', "app.hcl:10:3", "The file's columns are: sepal_length, class.",
       'Did you mean "class"?')]),
    ({"app.hcl": APP + CUSTOM, "code/t.py": "def transform(inputs, args)\n    return inputs['column']\n"},
     [("Syntax error in code/t.py", "app.hcl:19:3", "code/t.py:1:28: expected ':'",
       "Fix the Python syntax. mlp compiles custom code at validate; it never runs it then.")]),
    ({"app.hcl": APP + CUSTOM, "code/t.py": "return 1\n"},
     [("Syntax error in code/t.py", "app.hcl:19:3", "code/t.py:1:1: 'return' outside function",
       "Fix the Python syntax. mlp compiles custom code at validate; it never runs it then.")]),
    ({"app.hcl": APP + CUSTOM, "code/t.py": "def transfrom(inputs, args):\n    return inputs['column']\n"},
     [("code/t.py defines no transform(inputs, args)", "app.hcl:19:3",
       "A transformer file defines transform(inputs, args) at its top level; it defines transfrom.",
       'Rename transfrom to transform.')]),
], ids=["header-typo", "column-typo", "syntax-error", "return-outside-def", "missing-function"])
def test_mistakes_the_files_show(tmp_path: Path, files: dict[str, str], expected: list[tuple[str, ...]]) -> None:
    assert _errors(tmp_path, files) == expected


def test_custom_code_is_compiled_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').write('x')\n\ndef transform(inputs, args):\n    return inputs['column']\n"
    app = write_app(tmp_path / "app", {"app.hcl": APP.replace("[raw_column.sepal_length]", "[transformed_column.x]")
                                       + CUSTOM, "data/s.csv": CSV, "code/t.py": code})
    assert api.validate(app).checked is not None
    api.plan(app)
    assert not marker.exists()


def test_a_column_nothing_uses_is_a_warning(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"app.hcl": APP + 'raw_column "petal" {\n  column = "class"\n  type = "STRING"\n}\n',
                                       "data/s.csv": CSV})
    diags = api.validate(app).diagnostics
    assert [(d.severity, d.summary, str(d.pos)) for d in diags.items] == [
        (Severity.WARNING, "raw_column.petal is not used", "app.hcl:17:1")]


def test_a_broken_reference_gives_no_unused_warning_too(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", {"app.hcl": APP.replace("[raw_column.sepal_length]", "[raw_column.sepal_lenght]"),
                                       "data/s.csv": CSV})
    with pytest.raises(DiagnosticsError) as err:
        api.validate(app)
    assert [d.summary for d in err.value.diagnostics.items] == ['Unknown reference "raw_column.sepal_lenght"']


RATIO = """
transformer "ratio" {
  path        = "code/ratio.py"
  output_type = "FLOAT"
}

transformed_column "r" {
  transformer = transformer.ratio
  inputs      = { num = raw_column.sepal_length, den = raw_column.sepal_length }
}
"""


@pytest.mark.parametrize(("code", "expected"), [
    ('def transform(inputs, args):\n    """x"""\n    return inputs["numerator"] / inputs["den"]\n',
     [('code/ratio.py:3 reads inputs["numerator"], which transformed_column.r does not give', "app.hcl:25:3",
       "transformed_column.r gives: den, num.", 'Add numerator = ... to its inputs, or fix code/ratio.py:3.')]),
    ('def transform(ins, args):\n    return ins["nu"] / ins["den"]\n',
     [('code/ratio.py:2 reads inputs["nu"], which transformed_column.r does not give', "app.hcl:25:3",
       "transformed_column.r gives: den, num.", 'Did you mean "num"?')]),
    ('def transform(inputs, args):\n    key = "num"\n    return inputs[key] / inputs.get("den")\n', []),
], ids=["missing-input", "typo-in-code", "computed-keys-not-judged"])
def test_a_custom_transformer_reads_only_what_it_is_given(tmp_path: Path, code: str,
                                                          expected: list[tuple[str, ...]]) -> None:
    assert _errors(tmp_path, {"app.hcl": APP + RATIO, "code/ratio.py": code}) == expected


DECLARED = RATIO.replace('output_type = "FLOAT"\n}', 'output_type = "FLOAT"\n  inputs      = ["num", "den"]\n}', 1)
RATIO_CODE = 'def transform(inputs, args):\n    return inputs["num"] / inputs["den"]\n'


@pytest.mark.parametrize(("hcl", "code", "expected"), [
    (DECLARED, RATIO_CODE, []),
    (DECLARED.replace("{ num = raw_column.sepal_length, den", "{ numer = raw_column.sepal_length, den"), RATIO_CODE,
     [('transformed_column.r gives the input "numer", which transformer.ratio does not declare', "app.hcl:26:3",
       "transformer.ratio declares inputs: num, den.", 'Did you mean "num"?')]),
    (DECLARED.replace("{ num = raw_column.sepal_length, den = raw_column.sepal_length }",
                      "{ num = raw_column.sepal_length }"), RATIO_CODE,
     [("transformed_column.r does not give transformer.ratio's input \"den\"", "app.hcl:26:3",
       "transformer.ratio declares inputs: num, den; transformed_column.r gives: num.",
       "Add den = ... to its inputs.")]),
    (DECLARED, 'def transform(inputs, args):\n    return inputs["num"] / inputs["denom"]\n',
     [('code/ratio.py:2 reads inputs["denom"], which transformer.ratio does not declare', "app.hcl:21:3",
       "transformer.ratio declares inputs: num, den.", 'Did you mean "den"?')]),
    (DECLARED.replace('["num", "den"]', '["num", "2den"]'), RATIO_CODE,
     [('"inputs[1]" must be a Python identifier', "app.hcl:21:3", 'It is "2den". The input names the code reads: every use gives exactly these, checked at validate.')]),
], ids=["declared-and-given", "use-misspells-a-declared-name", "use-misses-a-declared-name",
         "code-reads-undeclared", "bad-name"])
def test_declared_inputs_are_checked_against_each_use_and_the_code(tmp_path: Path, hcl: str, code: str,
                                                                   expected: list[tuple[str, ...]]) -> None:
    got = _errors(tmp_path, {"app.hcl": APP + hcl, "code/ratio.py": code})
    assert [g[:len(e)] for g, e in zip(got, expected)] == expected and len(got) == len(expected)


def test_a_custom_aggregator_reads_only_declared_inputs(tmp_path: Path) -> None:
    hcl = """
aggregator "trim" {
  path        = "code/trim.py"
  output_type = "FLOAT"
  inputs      = ["column"]
}

aggregate "t" {
  aggregator = aggregator.trim
  inputs     = { col = raw_column.sepal_length }
}
"""
    code = 'def aggregate_spark(df, inputs, args):\n    return df.agg({inputs["colum"]: "avg"})\n'
    got = _errors(tmp_path, {"app.hcl": APP + hcl, "code/trim.py": code})
    assert [g[0] for g in got] == [
        'code/trim.py:2 reads inputs["colum"], which aggregator.trim does not declare',
        'aggregate.t gives the input "col", which aggregator.trim does not declare']
