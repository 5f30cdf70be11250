"""The block graph as Graphviz DOT text, clustered by kind, edges in data-flow direction."""

from __future__ import annotations

from mlp.config.blocks import App
from mlp.graph.address import Kind
from mlp.graph.dag import Graph

_SHAPES = {Kind.SOURCE: "cylinder", Kind.RAW_COLUMN: "box", Kind.AGGREGATE: "ellipse",
           Kind.TRANSFORMED_COLUMN: "box", Kind.MODEL: "component", Kind.API: "doubleoctagon",
           Kind.AGGREGATOR: "note", Kind.TRANSFORMER: "note", Kind.ESTIMATOR: "note"}


def _q(text: str) -> str:
    """A DOT quoted ID: an instance address holds quotes (`aggregate.mean["x"]`)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(app: App, graph: Graph) -> str:
    lines = [f"digraph {_q(app.name)} {{", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for kind in Kind:
        members = [a for a in graph.order if a.kind is kind]
        if not members:
            continue
        lines.append(f'  subgraph "cluster_{kind.value}" {{')
        lines.append(f'    label="{kind.value}"; style=dashed;')
        for a in sorted(members):
            label = str(a).split(".", 1)[1]  # the block's name, with its instance key
            lines.append(f"    {_q(str(a))} [label={_q(label)}, shape={_SHAPES[kind]}];")
        lines.append("  }")
    for a in sorted(graph.deps):
        for d in graph.deps[a]:
            lines.append(f"  {_q(str(d))} -> {_q(str(a))};")
    lines.append("}")
    return "\n".join(lines) + "\n"
