"""The built-ins' reference, made from the catalogue: `mlp builtins [NAME]` and docs/builtins.md.

    python -m mlp.builtins.reference > docs/builtins.md

One source for both: every input with its types and the aggregates that fit it, every
argument with its default, the output type, a one-line description and an example block
(with the aggregates a transformer needs). A test fails when docs/builtins.md is out of date.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mlp.builtins.catalogue import (
    AGGREGATORS,
    ESTIMATORS,
    TRANSFORMERS,
    AggregatorSpec,
    Arg,
    EstimatorSpec,
    Slot,
    SlotKind,
    TransformerSpec,
)
from mlp.coltypes import ColumnType as T
from mlp.config.schema import Field

Spec = AggregatorSpec | TransformerSpec | EstimatorSpec
# The aggregate a newcomer reaches for first, per input name of a transformer.
_USUAL = {"mean": "mean", "stddev": "stddev", "min": "min", "max": "max", "vocabulary": "index_string",
          "boundaries": "bucket_boundaries", "value": "median"}


def names() -> list[str]:
    return sorted(set(AGGREGATORS) | set(TRANSFORMERS) | set(ESTIMATORS))


def lookup(name: str) -> list[Spec]:
    """Every built-in of that name (index_string is an aggregator and a transformer)."""
    found: list[Spec] = []
    for table in (AGGREGATORS, TRANSFORMERS, ESTIMATORS):
        spec = table.get(name)
        if spec is not None:
            found.append(spec)  # type: ignore[arg-type]
    return found


def _types(types: Iterable[T]) -> str:
    return " | ".join(sorted(t.value for t in types))


def fitting_aggregates(slot: Slot) -> list[str]:
    """Aggregators whose value an aggregate input takes; the usual one first."""
    fits = sorted(a.name for a in AGGREGATORS.values()
                  if a.output in slot.types or (a.output.numeric and slot.types & {T.FLOAT}))
    usual = _USUAL.get(slot.name)
    return ([usual] if usual in fits else []) + [f for f in fits if f != usual]


def _slot_line(slot: Slot) -> str:
    need = "" if slot.required else " (optional)"
    if slot.kind is SlotKind.AGGREGATE:
        usual = _USUAL.get(slot.name)
        fits = fitting_aggregates(slot)
        if slot.types & {T.FLOAT} and usual in fits:
            return f"{slot.name}{need}: an aggregate giving a number, usually `{usual}`"
        return f"{slot.name}{need}: an aggregate giving {_types(slot.types)}: " + ", ".join(f"`{a}`" for a in fits)
    cat = "; not a categorical column" if slot.numeric_only else ""
    return f"{slot.name}{need}: a column of {_types(slot.types)}{cat}"


def _arg_line(arg: Arg) -> str:
    if arg.required:
        return f"{arg.name}: {arg.type}, required"
    return f"{arg.name}: {arg.type}" + (f", default {_value(arg.default)}" if arg.default is not None else "")


def _param_line(name: str, f: Field) -> str:
    parts = [f.type if f.item is None else f"list of {f.item.type}"]
    if f.choices:
        parts.append("one of " + ", ".join(f.choices[:6]) + (", ..." if len(f.choices) > 6 else ""))
    rng = f.range or (f.item.range if f.item is not None else None)
    if rng is not None:
        parts.append(("each " if f.item is not None and f.range is None else "") + str(rng))
    parts.append(f"default {_value(f.default)}")
    return f"{name}: " + ", ".join(parts) + (f". {f.doc}" if f.doc else "")


def _value(v: object) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v).replace("'", '"')


def _output(spec: Spec) -> str:
    if isinstance(spec, EstimatorSpec):
        return "a model (classification or regression)"
    if isinstance(spec, TransformerSpec):
        out = spec.output.value if spec.output else "the type of its `column` input"
        return out + (", categorical (category ids)" if spec.categorical else "")
    return spec.output.value


def example(spec: Spec) -> str:
    """An example block, with the aggregates a transformer needs."""
    if isinstance(spec, EstimatorSpec):
        hp = ", ".join(f"{k} = {_value(f.example if f.example is not None else f.default)}"
                       for k, f in sorted(spec.params.items()))
        return (f'model "price" {{\n  type      = "regression"\n  estimator = "{spec.name}"\n'
                f"  target    = raw_column.price\n  features  = [raw_column.size_m2, raw_column.rooms]\n"
                + (f"  hparams   = {{ {hp} }}\n" if hp else "") + "}")
    if isinstance(spec, AggregatorSpec):
        cols = [s for s in spec.slots if s.kind is SlotKind.COLUMN]
        column = _column_for(cols[0])
        inputs = (f"  input      = raw_column.{column}\n" if len(cols) == 1 else
                  "  inputs     = { " + ", ".join(f"{s.name} = raw_column.x{i}" for i, s in enumerate(cols)) + " }\n")
        args = "".join(f"  args       = {{ {a.name} = {_value(a.default)} }}\n" for a in spec.args[:1]
                       if a.default not in (None, 0))
        return f'aggregate "{column}_{spec.name}" {{\n  aggregator = "{spec.name}"\n{inputs}{args}}}'
    return _transformer_example(spec)


def _column_for(slot: Slot) -> str:
    return "city" if T.STRING in slot.types and not slot.types & {T.FLOAT} else "x"


def _transformer_example(spec: TransformerSpec) -> str:
    col = next(s for s in spec.slots if s.kind is SlotKind.COLUMN)
    column = _column_for(col)
    blocks, inputs = [], [f"column = raw_column.{column}"]
    for slot in spec.slots:
        if slot.kind is SlotKind.AGGREGATE:  # optional ones too: each example works as it is
            agg = fitting_aggregates(slot)[0]
            blocks.append(f'aggregate "{column}_{slot.name}" {{\n  aggregator = "{agg}"\n'
                          f"  input      = raw_column.{column}\n}}")
            inputs.append(f"{slot.name} = aggregate.{column}_{slot.name}")
    args = [f"{a.name} = {_value(a.default if a.default is not None else 10)}" for a in spec.args if a.required]
    if spec.name == "clip":
        args = ["min = 0", "max = 100"]
    width = max(len(i.split(" = ")[0]) for i in inputs)
    body = "  inputs      = {\n" + "".join(
        f"    {i.split(' = ')[0].ljust(width)} = {i.split(' = ')[1]}\n" for i in inputs) + "  }\n"
    body += f"  args        = {{ {', '.join(args)} }}\n" if args else ""
    blocks.append(f'transformed_column "{column}_{spec.name}" {{\n  transformer = "{spec.name}"\n{body}}}')
    return "\n\n".join(blocks)


def _kind(spec: Spec) -> str:
    return {AggregatorSpec: "aggregator", TransformerSpec: "transformer", EstimatorSpec: "estimator"}[type(spec)]


@dataclass(frozen=True)
class Entry:
    """One built-in, as both views show it."""

    name: str
    kind: str
    version: str
    doc: str
    sections: tuple[tuple[str, tuple[str, ...]], ...]   # ("inputs", lines), ("args", ...), ("hparams", ...)
    output: str
    example: str


def entry(spec: Spec) -> Entry:
    sections: list[tuple[str, tuple[str, ...]]] = []
    if isinstance(spec, EstimatorSpec):
        sections.append(("hparams", tuple(_param_line(k, f) for k, f in sorted(spec.params.items())) or ("none",)))
    else:
        sections.append(("inputs", tuple(_slot_line(s) for s in spec.slots)))
        if spec.args:
            sections.append(("args", tuple(_arg_line(a) for a in spec.args)))
    return Entry(spec.name, _kind(spec), spec.version, spec.doc, tuple(sections), _output(spec), example(spec))


def entry_lines(spec: Spec) -> list[str]:
    """One built-in as plain text (`mlp builtins NAME`)."""
    e = entry(spec)
    lines = [f"{e.name} ({e.kind}, version {e.version}): {e.doc}"]
    for title, items in e.sections:
        lines += [f"  {title}:"] + [f"    {item}" for item in items]
    lines += [f"  output: {e.output}", "  example:"]
    return lines + [f"    {ln}" if ln else "" for ln in e.example.splitlines()]


def overview_lines() -> list[str]:
    """Every built-in, one line each (`mlp builtins`)."""
    out: list[str] = []
    for title, table in _TABLES:
        out.append(f"{title}:")
        width = max(len(n) for n in table) + 2
        out += [f"  {name.ljust(width)}{spec.doc}" for name, spec in sorted(table.items())]
        out.append("")
    out.append("`mlp builtins NAME` shows one: its inputs, arguments, output type and an example.")
    return out


def markdown() -> str:
    """docs/builtins.md."""
    out = ["# Built-in aggregators, transformers and estimators", "",
           "Generated from the catalogue (`mlp/builtins/catalogue.py`) by `python -m mlp.builtins.reference`;",
           "`mlp builtins NAME` prints the same. A test fails when this file is out of date.", ""]
    for title, table in _TABLES:
        out += [f"## {title}", ""]
        for _, spec in sorted(table.items()):
            e = entry(spec)
            out += [f"### `{e.name}`", "", f"{e.doc[0].upper()}{e.doc[1:]}.", ""]
            for heading, items in e.sections:
                out += [f"{heading.capitalize()}:", ""] + [f"- {item}" for item in items] + [""]
            out += [f"Output: {e.output}.", "", "```hcl", e.example, "```", ""]
    return "\n".join(out).rstrip() + "\n"


_TABLES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("Aggregators", AGGREGATORS), ("Transformers", TRANSFORMERS), ("Estimators", ESTIMATORS))


if __name__ == "__main__":
    sys.stdout.write(markdown())
