"""The block graph: who depends on whom, in what order, and cycles named in order."""

from __future__ import annotations

import graphlib
from dataclasses import dataclass
from typing import Iterable, Mapping

from mlp.config.blocks import BlockConfig
from mlp.diagnostics import Diagnostics
from mlp.graph.address import SORT_KEY, Address


@dataclass(frozen=True)
class Graph:
    """Edges point from a block to what it needs. `order` is a topological order
    (dependencies first, ties broken by address) over every block of the app."""

    deps: Mapping[Address, tuple[Address, ...]]
    order: tuple[Address, ...]

    def dependents(self) -> dict[Address, list[Address]]:
        out: dict[Address, list[Address]] = {a: [] for a in self.deps}
        for a, ds in self.deps.items():
            for d in ds:
                out.setdefault(d, []).append(a)
        return out

    def closure(self, roots: Iterable[Address]) -> set[Address]:
        """The roots and everything they need, transitively."""
        return _reach(roots, self.deps)

    def downstream(self, roots: Iterable[Address]) -> set[Address]:
        """The roots and everything that needs them, transitively."""
        return _reach(roots, self.dependents())


def _reach(roots: Iterable[Address], edges: Mapping[Address, Iterable[Address]]) -> set[Address]:
    seen: set[Address] = set()
    stack = list(roots)
    while stack:
        a = stack.pop()
        if a not in seen:
            seen.add(a)
            stack.extend(edges.get(a, ()))
    return seen


def build_graph(blocks: Mapping[Address, BlockConfig], diags: Diagnostics) -> Graph | None:
    deps = {a: tuple(sorted({d for d in b.deps() if d in blocks}, key=SORT_KEY)) for a, b in blocks.items()}
    order = _levels(deps)
    if len(order) < len(deps):
        cycle = find_cycle(deps)
        loop = " -> ".join(str(a) for a in cycle)
        first = blocks[cycle[0]]
        diags.error("Dependency cycle", first.pos,
                    f"Each block feeds the next, in a loop: {loop}.",
                    "Break the loop: a block cannot use, directly or not, its own output.",
                    first.address.context)
        return None
    return Graph(deps, tuple(order))


def _levels(deps: Mapping[Address, tuple[Address, ...]]) -> list[Address]:
    """Blocks in dependency order, as `graphlib` gives them batch by batch: first those that need
    nothing, then those whose needs are all in earlier batches, each batch sorted by address.
    Blocks on or behind a cycle are left out."""
    waiting = {a: len(ds) for a, ds in deps.items()}
    needed_by: dict[Address, list[Address]] = {a: [] for a in deps}
    for a, ds in deps.items():
        for d in ds:
            needed_by[d].append(a)
    order: list[Address] = []
    batch = [a for a, n in waiting.items() if not n]
    while batch:
        batch.sort(key=SORT_KEY)
        order.extend(batch)
        ready = []
        for a in batch:
            for b in needed_by[a]:
                waiting[b] -= 1
                if not waiting[b]:
                    ready.append(b)
        batch = ready
    return order


def find_cycle(deps: Mapping[Address, tuple[Address, ...]]) -> list[Address]:
    """One cycle, in dependency order and closed (first == last), or []."""
    ts: graphlib.TopologicalSorter[Address] = graphlib.TopologicalSorter()
    for a in sorted(deps):
        ts.add(a, *deps[a])
    try:
        ts.prepare()
    except graphlib.CycleError as e:
        cyc = list(e.args[1])  # each node feeds the next; first == last
        start = cyc.index(min(cyc[:-1]))
        ring = cyc[start:-1] + cyc[:start]
        return ring + [ring[0]]
    return []
