"""Generate synthetic mlp apps and Terraform configurations of a given size, for benchmarks.

`generate_app(dir, n_blocks)` writes a valid app of about `n_blocks` blocks: one provider,
a few CSV sources, and per source raw columns, aggregates, transformed columns, models and
APIs in roughly the proportions of a real app (25% raw, 35% aggregates, 35% transforms, the
rest sources, models and APIs). The data satisfies every declared bound, so the app applies
end to end. `generate_terraform(dir, n)` writes `n` `terraform_data` resources with the same
dependency graph (a resource per block, `triggers_replace` per reference), so that both tools
plan graphs of the same size and shape. Both are deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

BLOCKS_PER_FILE = 200
RAW_PER_SOURCE = 100  # about 100 raw columns (~400 blocks) per source
DATA_LOW, DATA_HIGH = 1.0, 100.0  # generated values lie in [DATA_LOW, DATA_HIGH)
RAW_MIN, RAW_MAX = 0, 1000  # declared bounds, which the data satisfies
CLIP_MIN, CLIP_MAX = 5, 95
MAX_FEATURES = 8

# Per cycle of 10 raw columns: 14 aggregates and 14 transformed columns (1.4 each per raw).
#   j % 10 in 0..4: mean + stddev, and normalize
#   j % 10 in 5..6: min + max, and min_max_scale
#   j % 10 in 0..3: log;  j % 10 in 7..9: clip
_PER_RAW = 1 + 1.4 + 1.4


@dataclass(frozen=True)
class Node:
    """One block: its kind, name, HCL body and the blocks it refers to ("kind.name")."""

    kind: str
    name: str
    body: str
    deps: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return f"{self.kind}.{self.name}"

    def hcl(self) -> str:
        return f'{self.kind} "{self.name}" {{\n{self.body}}}\n'


@dataclass
class _Source:
    name: str
    raws: list[str] = field(default_factory=list)
    features: list[tuple[str, str]] = field(default_factory=list)  # (transformed column, its raw column)


def plan_counts(n_blocks: int) -> tuple[int, int, int]:
    """(sources, raw columns, models) for an app of about `n_blocks` blocks."""
    n_models = max(1, round(0.025 * n_blocks))
    n_raw = max(2, round((n_blocks - 2 * n_models) / _PER_RAW))
    n_sources = max(1, round(n_raw / RAW_PER_SOURCE))
    n_raw = max(2, round((n_blocks - 2 * n_models - n_sources) / _PER_RAW))
    return n_sources, n_raw, min(n_models, n_raw)


def _raw_nodes(col: str, j: int, source: str, explicit_source: bool) -> tuple[list[Node], list[tuple[str, str]]]:
    """One raw column with its aggregates and transforms; and the features it offers."""
    src = f"  source = source.{source}\n" if explicit_source else ""
    raw = f"raw_column.{col}"
    out = [Node("raw_column", col, f'{src}  type = "FLOAT"\n  min  = {RAW_MIN}\n  max  = {RAW_MAX}\n',
                (f"source.{source}",))]
    feats: list[tuple[str, str]] = []
    k = j % 10

    def agg(name: str, aggregator: str) -> None:
        out.append(Node("aggregate", name, f'  aggregator = "{aggregator}"\n  input      = {raw}\n', (raw,)))

    def trans(name: str, transformer: str, inputs: dict[str, str], args: str = "") -> None:
        body = "".join(f"    {slot} = {ref}\n" for slot, ref in inputs.items())
        extra = f"  args        = {args}\n" if args else ""
        out.append(Node("transformed_column", name,
                        f'  transformer = "{transformer}"\n  inputs      = {{\n{body}  }}\n{extra}',
                        tuple(inputs.values())))
        feats.append((name, col))

    if k <= 4:
        agg(f"{col}_mean", "mean")
        agg(f"{col}_stddev", "stddev")
        trans(f"{col}_norm", "normalize",
              {"column": raw, "mean": f"aggregate.{col}_mean", "stddev": f"aggregate.{col}_stddev"})
    elif k <= 6:
        agg(f"{col}_min", "min")
        agg(f"{col}_max", "max")
        trans(f"{col}_scaled", "min_max_scale",
              {"column": raw, "min": f"aggregate.{col}_min", "max": f"aggregate.{col}_max"})
    if k <= 3:
        trans(f"{col}_log", "log", {"column": raw})
    elif k >= 7:
        trans(f"{col}_clip", "clip", {"column": raw}, f"{{ min = {CLIP_MIN}, max = {CLIP_MAX} }}")
    return out, feats


def _model_nodes(name: str, target: str, features: list[str]) -> list[Node]:
    feats = "".join(f"    transformed_column.{f},\n" for f in features)
    body = (f'  type      = "regression"\n  estimator = "dnn"\n'
            f"  target    = raw_column.{target}\n  features  = [\n{feats}  ]\n"
            f"  hparams   = {{ hidden_units = [8] }}\n\n"
            f"  training {{\n    epochs        = var.epochs\n    batch_size    = 16\n"
            f"    learning_rate = 0.01\n    split         = 0.75\n    seed          = 0\n  }}\n")
    deps = (f"raw_column.{target}",) + tuple(f"transformed_column.{f}" for f in features)
    return [Node("model", name, body, deps),
            Node("api", name, f"  model    = model.{name}\n  replicas = 1\n", (f"model.{name}",))]


@dataclass(frozen=True)
class AppLayout:
    nodes: list[Node]  # in file order: sources, then per source its columns, then models and APIs
    columns: dict[str, list[str]]  # source name -> its raw columns, in CSV order
    targets: dict[str, list[str]]  # target raw column -> the raw columns its model's features use


def app_nodes(n_blocks: int) -> list[Node]:
    """The blocks of the app `generate_app(_, n_blocks)` writes, in file order."""
    return app_layout(n_blocks).nodes


def app_layout(n_blocks: int) -> AppLayout:
    """The blocks, columns and model targets of the app `generate_app(_, n_blocks)` writes."""
    n_sources, n_raw, n_models = plan_counts(n_blocks)
    sources = [_Source(f"s{i}") for i in range(n_sources)]
    for j in range(n_raw):
        sources[j % n_sources].raws.append(f"x{j:05d}")
    nodes = [Node("source", s.name, f'  format = "csv"\n  path   = "data/{s.name}.csv"\n  header = true\n')
             for s in sources]
    for src in sources:
        for col in src.raws:
            out, feats = _raw_nodes(col, int(col[1:]), src.name, n_sources > 1)
            nodes.extend(out)
            src.features.extend(feats)
    targets: dict[str, list[str]] = {}
    for m in range(n_models):
        src = sources[m % n_sources]
        target = src.raws[(m // n_sources) % len(src.raws)]
        # One unit-scale feature (normalized, scaled or log) per raw column: no collinear pairs,
        # no raw-scale clip columns, so that the models can learn in a few epochs.
        per_raw: dict[str, str] = {}
        for f, raw in src.features:
            if raw != target and not f.endswith("_clip"):
                per_raw.setdefault(raw, f)
        usable = [(f, raw) for raw, f in per_raw.items()]
        if not usable:
            continue
        start = (m * MAX_FEATURES) % len(usable)
        chosen = (usable[start:] + usable[:start])[:MAX_FEATURES]
        nodes.extend(_model_nodes(f"m{m:03d}", target, [f for f, _ in chosen]))
        targets.setdefault(target, sorted({raw for _, raw in chosen}))
    return AppLayout(nodes, {s.name: s.raws for s in sources}, targets)


def generate_app(dir: Path, n_blocks: int, rows: int = 100) -> None:
    """Write an mlp app of about `n_blocks` blocks (sources and everything built) into `dir`,
    with `rows` rows of data per source."""
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    (dir / "data").mkdir(exist_ok=True)
    layout = app_layout(n_blocks)
    nodes = layout.nodes
    rng = random.Random(n_blocks * 1_000_003 + rows)
    for name, cols in layout.columns.items():
        _write_csv(dir / "data" / f"{name}.csv", cols, rows, rng, layout.targets)
    header = ['app "bench" {}\n',
              'variable "epochs" {\n  default     = 2\n  description = "training epochs"\n}\n',
              'provider "local" {\n  spark_master = "local[*]"\n  parallelism  = 2\n}\n']
    header += [n.hcl() for n in nodes if n.kind == "source"]
    blocks = [n.hcl() for n in nodes if n.kind != "source"]
    for old in dir.glob("*.hcl"):
        old.unlink()
    (dir / "main.hcl").write_text("\n".join(header))
    for i in range(0, len(blocks), BLOCKS_PER_FILE):
        (dir / f"blocks_{i // BLOCKS_PER_FILE:03d}.hcl").write_text("\n".join(blocks[i:i + BLOCKS_PER_FILE]))


def _write_csv(path: Path, columns: list[str], rows: int, rng: random.Random,
               targets: dict[str, list[str]]) -> None:
    """Uniform values in [DATA_LOW, DATA_HIGH); a model's target is instead the mean of the
    raw columns behind its features plus a little noise, so that the models can learn."""
    lines = [",".join(columns)]
    for _ in range(rows):
        row = {c: rng.uniform(DATA_LOW, DATA_HIGH) for c in columns}
        for t, feats in targets.items():
            if t in row and feats:
                mean = sum(row[f] for f in feats) / len(feats)
                row[t] = min(max(mean + rng.gauss(0, 2), DATA_LOW), DATA_HIGH - 0.001)
        lines.append(",".join(f"{row[c]:.3f}" for c in columns))
    path.write_text("\n".join(lines) + "\n")


def generate_terraform(dir: Path, n: int) -> None:
    """Write exactly `n` `terraform_data` resources over several .tf files.

    They mirror the graph of `generate_app(_, n)`: one resource per block, named
    KIND_NAME, with `triggers_replace` listing the `.id` of each block it refers to (depth 5:
    source, raw, aggregate, transform, model, api). The list is cut, or padded with
    resources that depend on one raw column, to exactly `n`.
    """
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    nodes = app_nodes(n)[:n]  # cuts trailing APIs and models first: nothing refers to them but APIs
    raws = [x for x in nodes if x.kind == "raw_column"]
    for i in range(n - len(nodes)):
        nodes.append(Node("extra", f"e{i}", "", (raws[i % len(raws)].address,)))

    def res(addr: str) -> str:
        return "r_" + addr.replace(".", "_")

    blocks = []
    for x in nodes:
        body = f'  input = "{x.address}"\n'
        if x.deps:
            refs = ", ".join(f"terraform_data.{res(d)}.id" for d in x.deps)
            body += f"  triggers_replace = [{refs}]\n"
        blocks.append(f'resource "terraform_data" "{res(x.address)}" {{\n{body}}}\n')
    for old in dir.glob("*.tf"):
        old.unlink()
    for i in range(0, len(blocks), BLOCKS_PER_FILE):
        (dir / f"main_{i // BLOCKS_PER_FILE:03d}.tf").write_text("\n".join(blocks[i:i + BLOCKS_PER_FILE]))
