"""The pipeline bench's data and app: a CSV of N rows (10 numeric and 2 string columns),
with 12 raw columns, 20 aggregates and 12 transformed columns."""

from __future__ import annotations

from pathlib import Path

NUMERIC = [f"x{i}" for i in range(10)]
STRINGS = ["city", "segment"]


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    import numpy as np
    import pandas as pd

    if path.exists():
        return
    rng = np.random.default_rng(seed)
    data = {c: np.round(rng.normal(50 + i, 10 + i, rows).clip(0, 200), 3) for i, c in enumerate(NUMERIC)}
    data["city"] = rng.choice(["paris", "lyon", "lille", "nantes", "nice"], rows)
    data["segment"] = rng.choice([f"s{i}" for i in range(40)], rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pd.DataFrame(data).to_csv(tmp, index=False)
    tmp.rename(path)


def app_text(csv: Path) -> str:
    """The mlp app: 12 raw columns, 20 aggregates, 12 transformed columns (no model)."""
    out = ['provider "local" {}', f'source "events" {{\n  format = "csv"\n  path   = "{csv}"\n}}']
    for c in NUMERIC:
        out.append(f'raw_column "{c}" {{\n  type = "FLOAT"\n  min  = 0\n  max  = 200\n}}')
    for c in STRINGS:
        out.append(f'raw_column "{c}" {{\n  type = "STRING"\n}}')
    for c in NUMERIC[:8]:  # 16 aggregates: mean and stddev of 8 columns
        out.append(f'aggregate "{c}_mean" {{\n  aggregator = "mean"\n  input = raw_column.{c}\n}}')
        out.append(f'aggregate "{c}_std" {{\n  aggregator = "stddev"\n  input = raw_column.{c}\n}}')
    out.append('aggregate "x8_min" {\n  aggregator = "min"\n  input = raw_column.x8\n}')
    out.append('aggregate "x8_max" {\n  aggregator = "max"\n  input = raw_column.x8\n}')
    out.append('aggregate "city_vocab" {\n  aggregator = "index_string"\n  input = raw_column.city\n}')
    out.append('aggregate "segment_vocab" {\n  aggregator = "index_string"\n  input = raw_column.segment\n}')
    for c in NUMERIC[:8]:  # 8 normalize
        out.append(f'transformed_column "{c}_n" {{\n  transformer = "normalize"\n'
                   f'  inputs = {{ column = raw_column.{c}, mean = aggregate.{c}_mean, stddev = aggregate.{c}_std }}\n}}')
    out.append('transformed_column "x8_s" {\n  transformer = "min_max_scale"\n'
               '  inputs = { column = raw_column.x8, min = aggregate.x8_min, max = aggregate.x8_max }\n}')
    out.append('transformed_column "x9_l" {\n  transformer = "log"\n  inputs = { column = raw_column.x9 }\n}')
    out.append('transformed_column "city_i" {\n  transformer = "index_string"\n'
               '  inputs = { column = raw_column.city, vocabulary = aggregate.city_vocab }\n}')
    out.append('transformed_column "segment_i" {\n  transformer = "index_string"\n'
               '  inputs = { column = raw_column.segment, vocabulary = aggregate.segment_vocab }\n}')
    return "\n\n".join(out) + "\n"
