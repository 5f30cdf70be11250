"""Units of work: the plan's blocks grouped the way they run.

- one `data` unit per source: ingest, its raw columns, and the aggregates and transformed
  columns over that source (all built-in aggregates of a wave in one Spark job, all
  transforms of a wave in one pass);
- one `model` unit per model (training in its own process);
- one `model_column` unit per transformed column made of a model's predictions;
- one `api` unit per api.
A unit waits for the units it needs; independent units run at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlp.config import blocks as B
from mlp.graph.address import Address, Kind
from mlp.graph.analysis import Analysis


@dataclass(frozen=True)
class Unit:
    name: str           # "data:source.iris", "model:model.dnn", ...
    kind: str           # data | model | model_column | api
    blocks: tuple[Address, ...]
    needs: tuple[str, ...]


def _source_of(analysis: Analysis, addr: Address) -> Address | None:
    srcs = analysis.checked.types.sources.get(addr, frozenset())
    return min(srcs) if srcs else None


def build_units(analysis: Analysis, selected: set[Address]) -> list[Unit]:
    app = analysis.app
    data: dict[Address, list[Address]] = {}
    units: list[Unit] = []
    for addr in analysis.graph.order:
        if addr not in selected:
            continue
        cfg = app.blocks[addr]
        if addr.kind in (Kind.SOURCE, Kind.RAW_COLUMN, Kind.AGGREGATE) or (
                isinstance(cfg, B.TransformedColumn) and cfg.model is None):
            src = addr if addr.kind is Kind.SOURCE else _source_of(analysis, addr)
            if src is not None:
                data.setdefault(src, []).append(addr)
    for src, members in sorted(data.items()):
        units.append(Unit(f"data:{src}", "data", tuple(members), ()))
    for addr in analysis.graph.order:
        if addr not in selected:
            continue
        cfg = app.blocks[addr]
        if isinstance(cfg, B.Model):
            units.append(Unit(f"model:{addr}", "model", (addr,), _needs(analysis, addr, selected)))
        elif isinstance(cfg, B.TransformedColumn) and cfg.model is not None:
            units.append(Unit(f"model_column:{addr}", "model_column", (addr,), _needs(analysis, addr, selected)))
        elif isinstance(cfg, B.Api) and cfg.model is not None:
            units.append(Unit(f"api:{addr}", "api", (addr,), (f"model:{cfg.model}",)))
    return units


def _needs(analysis: Analysis, addr: Address, selected: set[Address]) -> tuple[str, ...]:
    out: set[str] = set()
    for dep in analysis.graph.deps[addr]:
        if dep not in selected:
            continue
        cfg = analysis.app.blocks[dep]
        if isinstance(cfg, B.Model):
            out.add(f"model:{dep}")
        elif isinstance(cfg, B.TransformedColumn) and cfg.model is not None:
            out.add(f"model_column:{dep}")
        elif dep.kind.builds:
            src = dep if dep.kind is Kind.SOURCE else _source_of(analysis, dep)
            if src is not None:
                out.add(f"data:{src}")
    return tuple(sorted(out))
