"""`for_each`, `locals`, string templates and splats (issue 9.3).

The wine app's 13 normalised features, in a few lines; what the loader makes of each piece of
syntax; one row per mistake with its exact diagnostic and file:line; instance addresses in
plans, `--target` and `--replace`; fingerprints that do not depend on the order of the keys;
`mlp fmt` round trips; the parse cache keeps the new values; the API field of an instance.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlp import api
from mlp.coltypes import ColumnType
from mlp.config import blocks as B
from mlp.config.fmt import format_text
from mlp.config.hcl import Call, Ref, Template, parse_text
from mlp.config.parsecache import BadEntry, decode_entry, encode_entry
from mlp.diagnostics import Diagnostic
from mlp.errors import DiagnosticsError, UsageError
from mlp.graph.address import Address, Kind, slug
from mlp.plan.planner import parse_addresses
from mlp.plan.render import render_markdown, render_text

from .conftest import analysed, record_state, write_app
from .test_fmt import meaning

FEATURES = ("alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
            "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280_od315", "proline")

# The 13 normalised features: 39 blocks written by hand before for_each.
WINE_FEATURES = """\
locals {
  features = toset(["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
      "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280_od315", "proline"])
}

raw_column "feature" {
  for_each = local.features
  type     = "FLOAT"
}

aggregate "mean" {
  for_each   = local.features
  aggregator = "mean"
  input      = raw_column.feature[each.key]
}

aggregate "stddev" {
  for_each   = local.features
  aggregator = "stddev"
  input      = raw_column.feature[each.key]
}

transformed_column "norm" {
  for_each    = local.features
  transformer = "normalize"
  inputs      = { column = raw_column.feature[each.key], mean = aggregate.mean[each.key], stddev = aggregate.stddev[each.key] }
}
"""

WINE = """\
provider "local" {}

variable "epochs" { default = 20 }

source "wine" {
  format = "csv"
  path   = "data/wine.csv"
}

raw_column "cultivar" { type = "STRING" }

model "wine" {
  type      = "classification"
  estimator = "dnn"
  target    = raw_column.cultivar
  features  = transformed_column.norm[*]
  hparams   = { hidden_units = [8] }
  training {
    epochs = var.epochs
  }
}

api "wine" {
  model = model.wine
}
"""


def wine_rows(n: int = 90, seed: int = 0) -> str:
    """A wine-like CSV: three cultivars whose features differ in their means."""
    rng = random.Random(seed)
    lines = [",".join(FEATURES + ("cultivar",))]
    for i in range(n):
        c = i % 3
        lines.append(",".join(f"{rng.gauss(c * (1 + j % 3), 1.0):.4f}" for j in range(len(FEATURES))) + f",c{c}")
    return "\n".join(lines) + "\n"


def wine_app(root: Path) -> Path:
    return write_app(root, {"app.hcl": WINE, "features.hcl": WINE_FEATURES, "data/wine.csv": wine_rows()})


def test_the_wine_apps_13_normalised_features_fit_in_25_lines() -> None:
    lines = [ln for ln in WINE_FEATURES.splitlines() if ln.strip()]
    assert len(lines) == 23  # 27 with the blank lines between the five blocks
    assert format_text(WINE_FEATURES) == WINE_FEATURES


def test_the_wine_app_has_an_instance_per_feature(tmp_path: Path) -> None:
    app = analysed(wine_app(tmp_path / "wine")).app
    keys = tuple(sorted(FEATURES))
    for kind, block in [(Kind.RAW_COLUMN, "feature"), (Kind.AGGREGATE, "mean"), (Kind.AGGREGATE, "stddev"),
                        (Kind.TRANSFORMED_COLUMN, "norm")]:
        assert tuple(a.key for a in sorted(app.blocks) if (a.kind, a.block) == (kind, block)) == keys
    model = app.blocks[Address.of(Kind.MODEL, "wine")]
    assert isinstance(model, B.Model)
    assert [str(f) for f in model.features] == [f'transformed_column.norm["{k}"]' for k in keys]
    norm = app.blocks[Address.instance(Kind.TRANSFORMED_COLUMN, "norm", "alcohol")]
    assert isinstance(norm, B.TransformedColumn)
    assert {s: str(a) for s, a in norm.inputs.items()} == {
        "column": 'raw_column.feature["alcohol"]', "mean": 'aggregate.mean["alcohol"]',
        "stddev": 'aggregate.stddev["alcohol"]'}
    raw = app.blocks[Address.instance(Kind.RAW_COLUMN, "feature", "od280_od315")]
    assert isinstance(raw, B.RawColumn)
    assert (raw.name, raw.column, raw.api_field) == ("feature__od280_od315", "od280_od315", "od280_od315")
    plain = app.blocks[Address.of(Kind.RAW_COLUMN, "cultivar")]
    assert isinstance(plain, B.RawColumn) and plain.api_field == "cultivar"


# -- addresses --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind", "name", "block", "key"), [
    ("raw_column.age", Kind.RAW_COLUMN, "age", "age", None),
    ('raw_column.feature["alcohol"]', Kind.RAW_COLUMN, "feature__alcohol", "feature", "alcohol"),
    ('aggregate.mean["Od280/OD315 of wines"]', Kind.AGGREGATE, "mean__od280_od315_of_wines", "mean",
     "Od280/OD315 of wines"),
    ('transformed_column.norm["é \\"x\\""]', Kind.TRANSFORMED_COLUMN, "norm___x_", "norm", 'é "x"'),
], ids=["plain", "instance", "odd_key", "quotes_and_accents"])
def test_an_address_parses_and_prints_back(text: str, kind: Kind, name: str, block: str, key: str | None) -> None:
    a = Address.parse(text)
    assert (a.kind, a.name, a.block, a.key) == (kind, name, block, key)
    assert str(a) == text and Address.parse(str(a)) == a


@pytest.mark.parametrize(("text", "message"), [
    ("raw_column.x[alcohol]", '"raw_column.x[alcohol]" is not a block address: an instance is KIND.NAME["KEY"], '
                              "the key a string in double quotes"),
    ('raw_column.x[""]', '"raw_column.x[""]" is not a block address: an instance is KIND.NAME["KEY"], the key a '
                         "string in double quotes"),
    ('raw_column.x["a"', '"raw_column.x["a"" is not a block address: an instance is KIND.NAME["KEY"], the key a '
                         "string in double quotes"),
    ('raw_column.X["a"]', '"raw_column.X["a"]" is not a block address: "X" is not a valid name'),
], ids=["unquoted", "empty", "unclosed", "bad_name"])
def test_a_bad_address_says_why(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        Address.parse(text)
    assert str(err.value) == message


def test_addresses_order_by_kind_then_block_then_key() -> None:
    texts = ['raw_column.f["b"]', "model.m", 'raw_column.f["a"]', "raw_column.f_x", "raw_column.e",
             'aggregate.m["a"]']
    assert [str(a) for a in sorted(map(Address.parse, texts))] == [
        "raw_column.e", 'raw_column.f["a"]', 'raw_column.f["b"]', "raw_column.f_x", 'aggregate.m["a"]', "model.m"]


@pytest.mark.parametrize(("key", "expected"), [("alcohol", "alcohol"), ("Malic Acid", "malic_acid"),
                                               ("a--b__c", "a_b_c"), ("ÉTÉ", "_t_"), ("2024", "2024")])
def test_a_key_becomes_part_of_a_name(key: str, expected: str) -> None:
    assert slug(key) == expected


# -- syntax -----------------------------------------------------------------------------------------


def value_of(text: str) -> Any:
    parsed = parse_text(f"x {{\n  v = {text}\n}}\n", "app.hcl")
    assert not parsed.problems and parsed.syntax_error is None, parsed.problems or parsed.syntax_error
    return parsed.blocks[0].attrs["v"].value


EACH_KEY = Ref(("each", "key"))


@pytest.mark.parametrize(("text", "value"), [
    ('aggregate.mean["alcohol"]', Ref(("aggregate", "mean"), index="alcohol")),
    ("aggregate.mean[each.key]", Ref(("aggregate", "mean"), index=EACH_KEY)),
    ('aggregate.mean["${each.key}_x"]', Ref(("aggregate", "mean"), index=Template((EACH_KEY, "_x")))),
    ("transformed_column.norm[*]", Ref(("transformed_column", "norm"), splat=True)),
    ('toset(["a", "b"])', Call("toset", (["a", "b"],))),
    ('"${each.key}_x"', Template((EACH_KEY, "_x"))),
    ('"${var.prefix}-${local.y}"', Template((Ref(("var", "prefix")), "-", Ref(("local", "y"))))),
    ('"${each.key}"', EACH_KEY),
    ('"a$${b}${1}${true}${"c"}"', "a${b}1truec"),
    ('"${aggregate.mean["a"]}"', Ref(("aggregate", "mean"), index="a")),
    ("each.value.col", Ref(("each", "value", "col"))),
    ('each.value["col"]', Ref(("each", "value"), index="col")),
    ("[raw_column.a, raw_column.f[*]]", [Ref(("raw_column", "a")), Ref(("raw_column", "f"), splat=True)]),
], ids=["index", "index_each_key", "index_template", "splat", "toset", "template", "two_interpolations",
        "one_interpolation_keeps_its_type", "constants_are_folded", "quotes_inside_an_interpolation",
        "each_value_field", "each_value_index", "refs_and_splats"])
def test_the_new_syntax_parses(text: str, value: Any) -> None:
    assert value_of(text) == value


@pytest.mark.parametrize(("text", "message"), [
    ("raw_column.f[0]", "mlp does not support this index: instance keys are strings"),
    ("raw_column.f[*].name", "mlp does not support this splat: write KIND.NAME[*]"),
    ('raw_column.f["a"]["b"]', "mlp does not support an index [...] on this value"),
    ("concat([1], [2])", "mlp does not support the function concat()"),
    ('"x${[1]}"', "a string template cannot hold a list"),
], ids=["number_index", "splat_attribute", "two_indexes", "other_function", "list_in_template"])
def test_what_mlp_does_not_evaluate_is_a_problem(text: str, message: str) -> None:
    parsed = parse_text(f"x {{\n  v = {text}\n}}\n", "app.hcl")
    assert [(p.message, str(p.pos)[:9]) for p in parsed.problems] == [(message, "app.hcl:2")]


def test_the_parse_cache_keeps_the_new_values() -> None:
    parsed = parse_text(WINE_FEATURES + 'x {\n  a = "${var.p}-${toset(["a"])}"\n  b = m.n["${each.key}"]\n}\n',
                        "app.hcl")
    doc = json.loads(json.dumps(encode_entry(parsed, "0" * 64)))
    assert decode_entry(doc, "app.hcl", "0" * 64) == parsed


@pytest.mark.parametrize("value", [
    {"ref": ["a", "b"], "splat": False},
    {"ref": ["a", "b"], "splat": 1},
    {"ref": ["a", "b"], "index": 1},
    {"ref": ["a", "b"], "index": ["x"]},
    {"ref": ["a", "b"], "index": "x", "splat": True},
    {"template": ["only text"]},
    {"template": ["a", "b", {"ref": ["x"]}]},
    {"template": ["", {"ref": ["x"]}]},
    {"template": [{"ref": ["x"]}, 1]},
    {"template": [{"map": {}}]},
    {"template": "text"},
    {"call": "concat", "args": []},
    {"call": "toset", "args": {}},
    {"call": "toset"},
], ids=lambda v: json.dumps(v))
def test_a_cache_entry_of_the_wrong_shape_is_refused(value: Any) -> None:
    doc = encode_entry(parse_text("x {\n  v = 1\n}\n", "app.hcl"), "0" * 64)
    doc["blocks"][0]["attrs"][0]["value"] = value
    with pytest.raises(BadEntry):
        decode_entry(doc, "app.hcl", "0" * 64)


# -- what the loader makes of it --------------------------------------------------------------------

HEAD = """\
provider "local" {}

source "s" {
  format = "json"
  path   = "data/s.json"
}
"""  # lines 1-6: a block added below starts on line 8. JSON lines: no header for validate to hold columns to


def blocks_of(tmp_path: Path, body: str, variables: dict[str, str] | None = None) -> dict[str, B.BlockConfig]:
    app = write_app(tmp_path / "app", {"app.hcl": HEAD + "\n" + body, "data/s.json": '{"a": 1, "b": 2}\n'})
    return {str(a): c for a, c in analysed(app, variables=variables).app.blocks.items()}


def test_a_map_gives_each_value_and_its_fields(tmp_path: Path) -> None:
    got = blocks_of(tmp_path, """\
variable "prefix" { default = "in" }
locals {
  columns = { small = { column = "a", max = 5 }, large = { column = "b", max = 50 } }
}
raw_column "x" {
  for_each = local.columns
  column   = each.value.column
  type     = "FLOAT"
  max      = each.value["max"]
}
transformed_column "clip" {
  for_each    = local.columns
  transformer = "clip"
  inputs      = { column = raw_column.x[each.key] }
  args        = { min = 0, max = "${each.value.max}" }
}
aggregate "n" {
  for_each   = toset(["small", "large", "small"])
  aggregator = "count"
  input      = raw_column.x["${each.key}"]
}
""")
    assert sorted(got) == ['aggregate.n["large"]', 'aggregate.n["small"]', 'raw_column.x["large"]',
                           'raw_column.x["small"]', "source.s", 'transformed_column.clip["large"]',
                           'transformed_column.clip["small"]']
    large = got['raw_column.x["large"]']
    assert isinstance(large, B.RawColumn) and (large.column, large.max) == ("b", 50)
    clip = got['transformed_column.clip["small"]']
    assert isinstance(clip, B.TransformedColumn) and clip.args == {"min": 0, "max": 5}  # one ${...} keeps the type


def test_templates_locals_and_variables_meet(tmp_path: Path) -> None:
    got = blocks_of(tmp_path, """\
variable "prefix" { default = "in" }
locals {
  first  = "${var.prefix}_${local.second}"
  second = "b"
  keys   = [local.second, "c"]
}
raw_column "x" {
  for_each = toset(local.keys)
  column   = "${local.first}-${each.key}"
  type     = "STRING"
}
""", {"prefix": "out"})
    assert {a: c.column for a, c in got.items() if isinstance(c, B.RawColumn)} == {
        'raw_column.x["b"]': "out_b-b", 'raw_column.x["c"]': "out_b-c"}


@dataclass(frozen=True)
class Row:
    body: str
    summary: str
    where: str
    detail: str = ""
    hint: str = ""


RAW = 'raw_column "f" {\n  for_each = ["a", "b"]\n  type     = "FLOAT"\n}\n'  # lines 8-11
ROWS = {
    "for_each_on_a_model": Row(
        'model "m" {\n  for_each  = ["a"]\n  type      = "regression"\n  estimator = "linear"\n'
        "  target    = raw_column.x\n  features  = [raw_column.x]\n}\n",
        '"for_each" is not accepted in a model block', "app.hcl:9:3",
        "for_each repeats raw_column, aggregate and transformed_column blocks.",
        "Remove for_each, and write one model block per instance."),
    "duplicate_string": Row(
        'raw_column "f" {\n  for_each = ["alcohol", "ash", "alcohol"]\n  type     = "FLOAT"\n}\n',
        'Duplicate key "alcohol" in "for_each"', "app.hcl:9:3",
        'The list holds "alcohol" more than once; each key makes one instance.',
        "Remove the repeat, or write toset([...]), which keeps each string once."),
    "not_a_list_or_map": Row(
        'raw_column "f" {\n  for_each = "a"\n  type     = "FLOAT"\n}\n', 'Invalid "for_each"', "app.hcl:9:3",
        "for_each takes a list or set of strings, or a map, not a string.",
        'Write for_each = toset(["a", "b"]) or for_each = { a = ..., b = ... }'),
    "a_number_in_the_list": Row(
        'raw_column "f" {\n  for_each = ["a", 2]\n  type     = "FLOAT"\n}\n', 'Invalid "for_each"', "app.hcl:9:3",
        "Element 1 of the list is the number 2: instance keys are non-empty strings."),
    "an_empty_key": Row(
        'raw_column "f" {\n  for_each = { "" = 1 }\n  type     = "FLOAT"\n}\n', 'Invalid "for_each"',
        "app.hcl:9:3", "The map has an empty key: instance keys are non-empty strings."),
    "toset_of_numbers": Row(
        'raw_column "f" {\n  for_each = toset([1])\n  type     = "FLOAT"\n}\n', "Invalid argument of toset",
        "app.hcl:9:3", "Element 0 is the number 1, not a string."),
    "each_outside_for_each": Row(
        'raw_column "f" {\n  type   = "FLOAT"\n  column = "${each.key}_x"\n}\n',
        '"each.key" is used outside a for_each block', "app.hcl:10:3",
        "each.key and each.value exist only in a raw_column, aggregate or transformed_column block with for_each.",
        "Add for_each = ... to the block, or write the value itself."),
    "each_other": Row(
        'raw_column "f" {\n  for_each = ["a"]\n  type     = "FLOAT"\n  column   = each.name\n}\n',
        'Invalid reference "each.name"', "app.hcl:11:3",
        "In a for_each block, each.key is the instance's key and each.value its value (each.value.FIELD when "
        "the value is a map)."),
    "field_of_a_string": Row(
        'raw_column "f" {\n  for_each = ["a"]\n  type     = "FLOAT"\n  column   = each.value.name\n}\n',
        'each.value has no field "name"', "app.hcl:11:3", "each.value is a string, not a map."),
    "unknown_field": Row(
        'raw_column "f" {\n  for_each = { a = { column = "x" } }\n  type     = "FLOAT"\n'
        "  column   = each.value.colum\n}\n",
        'each.value has no field "colum"', "app.hcl:11:3", 'each.value is a map with "column".',
        'Did you mean "column"?'),
    "unknown_key": Row(
        RAW + 'aggregate "m" {\n  aggregator = "mean"\n  input      = raw_column.f["c"]\n}\n',
        'Unknown reference "raw_column.f["c"]"', "app.hcl:14:3",
        'raw_column "f" has no instance with the key "c"; its keys: "a", "b".', "Use one of its keys."),
    "misspelt_key": Row(
        'raw_column "f" {\n  for_each = ["alcohol", "ash"]\n  type     = "FLOAT"\n}\n'
        'aggregate "m" {\n  aggregator = "mean"\n  input      = raw_column.f["alcohl"]\n}\n',
        'Unknown reference "raw_column.f["alcohl"]"', "app.hcl:14:3",
        'raw_column "f" has no instance with the key "alcohl"; its keys: "alcohol", "ash".',
        'Did you mean raw_column.f["alcohol"]?'),
    "each_key_that_names_no_instance": Row(
        RAW + 'aggregate "m" {\n  for_each   = ["a", "z"]\n  aggregator = "mean"\n'
        "  input      = raw_column.f[each.key]\n}\n",
        'Unknown reference "raw_column.f["z"]"', "app.hcl:15:3",
        'raw_column "f" has no instance with the key "z"; its keys: "a", "b".', "Use one of its keys."),
    "no_key": Row(
        RAW + 'aggregate "m" {\n  aggregator = "mean"\n  input      = raw_column.f\n}\n',
        'Missing instance key in "raw_column.f"', "app.hcl:14:3",
        'raw_column "f" has for_each: it has one instance per key.',
        'Refer to one instance, e.g. raw_column.f["a"] or raw_column.f[each.key], or to all of them: '
        "raw_column.f[*]."),
    "a_key_on_a_block_without_for_each": Row(
        'raw_column "f" { type = "FLOAT" }\naggregate "m" {\n  aggregator = "mean"\n'
        '  input      = raw_column.f["a"]\n}\n',
        'Invalid reference "raw_column.f["a"]"', "app.hcl:11:3",
        'raw_column "f" has no for_each, so it has no instances.', "Write raw_column.f."),
    "splat_of_a_block_without_for_each": Row(
        'raw_column "f" { type = "FLOAT" }\nmodel "m" {\n  type      = "regression"\n  estimator = "linear"\n'
        "  target    = raw_column.f\n  features  = raw_column.f[*]\n}\n",
        '"raw_column.f[*]" is a splat of a block without for_each', "app.hcl:13:3",
        'raw_column "f" has no for_each, so it has no instances: [*] lists the instances of a block with for_each.',
        "Write raw_column.f."),
    "splat_of_an_unknown_block": Row(
        RAW + 'model "m" {\n  type      = "regression"\n  estimator = "linear"\n'
        '  target    = raw_column.f["a"]\n  features  = [raw_column.fe[*]]\n}\n',
        'Unknown reference "raw_column.fe[*]"', "app.hcl:16:3", 'No raw_column named "fe" is declared.',
        'Did you mean "raw_column.f[*]"?'),
    "splat_where_one_reference_goes": Row(
        RAW + 'aggregate "m" {\n  aggregator = "mean"\n  input      = raw_column.f[*]\n}\n',
        'Wrong type for "input"', "app.hcl:14:3",
        '"input" must be a reference KIND.NAME, not the list raw_column.f[*].'),
    "a_feature_twice": Row(
        RAW + 'model "m" {\n  type      = "regression"\n  estimator = "linear"\n'
        '  target    = raw_column.f["a"]\n  features  = [raw_column.f["b"], raw_column.f[*]]\n}\n',
        '"features" lists raw_column.f["b"] twice', "app.hcl:16:3", "Each column is one input of the model.",
        'Remove the repeat (a splat raw_column.f[*] already lists every instance).'),
    "keys_with_the_same_name": Row(
        'raw_column "f" {\n  for_each = ["a-b", "a_b"]\n  type     = "FLOAT"\n}\n',
        'raw_column.f["a-b"] and raw_column.f["a_b"] have the same name', "app.hcl:8:1",
        'Both would be named "f__a_b" in tables and models (a key becomes part of a name in lower case, each run '
        'of characters other than a-z and 0-9 as "_").',
        "Use keys that differ in their letters or digits."),
    "an_instance_named_like_a_block": Row(
        RAW + 'raw_column "f__a" { type = "FLOAT" }\n',
        'raw_column.f["a"] and raw_column "f__a" have the same name', "app.hcl:12:1",
        'Both would be named "f__a" in tables and models (an instance is named BLOCK__KEY; the other is at '
        "app.hcl:8:1).", 'Rename raw_column "f__a".'),
    "local_cycle": Row(
        'locals {\n  a = "${local.b}"\n  b = [local.a]\n}\n', "Cycle in locals", "app.hcl:9:3",
        "Each local uses the next, in a loop: local.a -> local.b -> local.a.",
        "Break the loop: a local cannot use, directly or not, itself."),
    "local_set_twice": Row(
        'locals {\n  a = 1\n}\nlocals {\n  a = 2\n}\n', 'Duplicate local value "a"', "app.hcl:12:3",
        "It is already set at app.hcl:9:3.", "Remove or rename one of them: each local value is set once."),
    "unknown_local": Row(
        'locals {\n  columns = ["a"]\n}\nraw_column "f" {\n  for_each = local.colums\n  type     = "FLOAT"\n}\n',
        'Unknown local value "local.colums"', "app.hcl:12:3", 'No local value "colums" is declared in the app.',
        'Did you mean "columns"?'),
    "a_template_of_a_reference": Row(
        RAW + 'raw_column "g" {\n  type   = "FLOAT"\n  column = "x${raw_column.f}"\n}\n',
        "Invalid string template", "app.hcl:14:3",
        "${raw_column.f} is the reference raw_column.f; a template holds strings, numbers and bools."),
    "an_index_that_is_not_a_string": Row(
        RAW + 'locals {\n  n = 1\n}\naggregate "m" {\n  aggregator = "mean"\n  input      = raw_column.f[local.n]\n}\n',
        "Invalid index", "app.hcl:17:3",
        "An index is a non-empty string (an instance's key), not the number 1.",
        'Write KIND.NAME["KEY"] or KIND.NAME[each.key].'),
}


def only_error(tmp_path: Path, body: str) -> Diagnostic:
    app = write_app(tmp_path / "app", {"app.hcl": HEAD + "\n" + body, "data/s.json": '{"a": 1, "b": 2}\n'})
    with pytest.raises(DiagnosticsError) as err:
        api.validate(app)
    errors = err.value.diagnostics.errors()
    assert len(errors) == 1, [(e.summary, str(e.pos)) for e in errors]
    return errors[0]


@pytest.mark.parametrize("row", [pytest.param(r, id=i) for i, r in ROWS.items()])
def test_a_mistake_gets_one_diagnostic_at_its_line(row: Row, tmp_path: Path) -> None:
    d = only_error(tmp_path, row.body)
    assert (d.summary, str(d.pos)) == (row.summary, row.where)
    if row.detail:
        assert d.detail == row.detail
    if row.hint:
        assert d.hint == row.hint


def test_a_problem_all_instances_share_is_reported_once(tmp_path: Path) -> None:
    d = only_error(tmp_path, 'raw_column "f" {\n  for_each = ["a", "b", "c"]\n  type     = "FLAOT"\n}\n')
    assert (d.summary, str(d.pos), d.context) == ('Invalid value for "type"', "app.hcl:10:3", 'in raw_column.f["a"]')


def test_a_problem_of_one_instance_names_it(tmp_path: Path) -> None:
    d = only_error(tmp_path, 'raw_column "f" {\n  for_each = { a = "INT", b = "INTEGER" }\n'
                             '  type     = each.value\n}\n')
    assert (d.summary, str(d.pos), d.context) == ('Invalid value for "type"', "app.hcl:10:3", 'in raw_column.f["b"]')


# -- plans, targets and fingerprints ----------------------------------------------------------------


def test_instance_addresses_are_in_every_view_of_the_plan(tmp_path: Path) -> None:
    plan = api.plan(wine_app(tmp_path / "wine")).plan.to_json()
    addresses = [c["address"] for c in plan["changes"]]
    assert 'transformed_column.norm["alcohol"]' in addresses and 'raw_column.feature["proline"]' in addresses
    assert len(addresses) == 1 + 13 * 4 + 1 + 1 + 1
    assert '  + transformed_column.norm["alcohol"]' in render_text(plan)
    assert '| `+` | `aggregate.mean["ash"]` | create | new |' in render_markdown(plan)


def test_target_and_replace_take_instances_and_whole_blocks(tmp_path: Path) -> None:
    app = wine_app(tmp_path / "wine")
    record_state(analysed(app))
    one = api.plan(app, targets=['aggregate.mean["ash"]'], replace=['raw_column.feature["ash"]']).plan
    assert {str(c.address): c.action.value for c in one.changes} == {
        "source.wine": "no-op", 'raw_column.feature["ash"]': "rebuild", 'aggregate.mean["ash"]': "rebuild"}
    known = analysed(app).fingerprints
    everyone = parse_addresses(["aggregate.stddev"], known, "--target")
    assert [str(a) for a in everyone] == [f'aggregate.stddev["{k}"]' for k in sorted(FEATURES)]


@pytest.mark.parametrize(("text", "summary", "hint"), [
    ('aggregate.mean["alcohl"]', '--target aggregate.mean["alcohl"]: no such block',
     'Did you mean "aggregate.mean["alcohol"]"?'),
    ("aggregate.mean[alcohol]", "Invalid --target address", 'Use KIND.NAME or KIND.NAME["KEY"], e.g. '
                                                           "--target model.churn"),
], ids=["unknown_key", "unquoted_key"])
def test_a_bad_target_says_why(text: str, summary: str, hint: str, tmp_path: Path) -> None:
    known = analysed(wine_app(tmp_path / "wine")).fingerprints
    with pytest.raises(UsageError) as err:
        parse_addresses([text], known, "--target")
    assert (err.value.summary, err.value.hint) == (summary, hint)


def fingerprints_of(tmp_path: Path, features_hcl: str) -> dict[str, str]:
    app = write_app(tmp_path, {"app.hcl": WINE, "features.hcl": features_hcl, "data/wine.csv": wine_rows()})
    return {str(a): fp.value for a, fp in analysed(app).fingerprints.items()}


def test_fingerprints_do_not_depend_on_the_order_of_the_keys(tmp_path: Path) -> None:
    """A set, a list in another order and a map with the same keys make the same instances."""
    the_set = WINE_FEATURES[WINE_FEATURES.index("toset("):WINE_FEATURES.index("])") + 2]
    as_list = "[" + ", ".join(f'"{f}"' for f in reversed(FEATURES)) + "]"
    as_map = "{ " + ", ".join(f'{f} = "{f}"' for f in reversed(FEATURES)) + " }"
    first = fingerprints_of(tmp_path / "a", WINE_FEATURES)
    assert fingerprints_of(tmp_path / "b", WINE_FEATURES.replace(the_set, as_list)) == first
    assert fingerprints_of(tmp_path / "c", WINE_FEATURES.replace(the_set, as_map)) == first
    assert fingerprints_of(tmp_path / "d", WINE_FEATURES) == first  # and from one run to the next


CLIPS = """\
raw_column "a" { type = "FLOAT" }
transformed_column "clip" {
  for_each    = { low = 1, high = HIGH }
  transformer = "clip"
  inputs      = { column = raw_column.a }
  args        = { min = 0, max = each.value }
}
"""


def test_an_instance_is_fingerprinted_by_its_resolved_settings(tmp_path: Path) -> None:
    def fps(root: Path, high: str) -> dict[str, str]:
        app = write_app(root, {"app.hcl": HEAD + CLIPS.replace("HIGH", high), "data/s.json": '{"a": 1, "b": 2}\n'})
        return {str(a): fp.value for a, fp in analysed(app).fingerprints.items()}

    before, after, low = fps(tmp_path / "a", "10"), fps(tmp_path / "b", "20"), fps(tmp_path / "c", "1")
    assert [a for a in before if before[a] != after[a]] == ['transformed_column.clip["high"]']
    # Two instances with the same settings and inputs differ by address only, as two such blocks do.
    assert low['transformed_column.clip["high"]'] == low['transformed_column.clip["low"]']


# -- fmt and the bundle -----------------------------------------------------------------------------

TEMPLATES = """\
locals {
  names = { a = "x", b = "y" }
}
raw_column "f" {
    for_each = local.names
  column = "${each.value}-${local.names["a"]}"
        type = "STRING"
  values = ["${each.key}{", "}"]
}
"""


def test_fmt_formats_templates_and_keeps_their_meaning() -> None:
    once = format_text(TEMPLATES)
    assert once == """\
locals {
  names = { a = "x", b = "y" }
}
raw_column "f" {
  for_each = local.names
  column   = "${each.value}-${local.names["a"]}"
  type     = "STRING"
  values   = ["${each.key}{", "}"]
}
"""
    assert format_text(once) == once
    assert meaning(once) == meaning(TEMPLATES)
    assert meaning(format_text(WINE_FEATURES + WINE)) == meaning(WINE_FEATURES + WINE)


def test_a_bundle_keeps_each_raw_columns_field(tmp_path: Path) -> None:
    from runtime.bundle import RawColumn, load_bundle, write_bundle

    (tmp_path / "sm").mkdir()
    spec = {"model": "model.m", "fingerprint": "f", "type": "regression", "features": ["feature__a"],
            "raw_columns": [{"name": "feature__a", "field": "a", "type": "FLOAT"},
                            {"name": "old", "type": "FLOAT"}]}  # a bundle written before fields
    bundle = load_bundle(write_bundle(tmp_path / "b", spec, tmp_path / "sm"))
    assert [(c.name, c.field) for c in bundle.raw_columns] == [("feature__a", "a"), ("old", "old")]
    assert RawColumn("x", ColumnType.INT).field == "x"


def test_two_raw_columns_cannot_take_one_api_field_for_two_columns(tmp_path: Path) -> None:
    d = only_error(tmp_path, 'raw_column "alcohol" {\n  type   = "FLOAT"\n  column = "ALC"\n}\n' + RAW.replace(
        '["a", "b"]', '["alcohol"]'))
    assert (d.summary, str(d.pos)) == ('raw_column.alcohol and raw_column.f["alcohol"] take the same API field '
                                       '"alcohol"', "app.hcl:12:1")
