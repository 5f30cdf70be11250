"""Field diffs in the plan: short lists whole, long ones item by item."""

from __future__ import annotations

import pytest

from mlp.plan.diff import field_diff

FEATURES = [f"transformed_column.f{i}_norm" for i in range(14)]


@pytest.mark.parametrize(("before", "after", "lines"), [
    ({"hparams": {"hidden_units": [16, 8]}}, {"hparams": {"hidden_units": [32, 16]}},
     ["hparams.hidden_units: [16, 8] -> [32, 16]"]),
    ({"features": FEATURES}, {"features": [*FEATURES[:3], "raw_column.ash", *FEATURES[4:]]},
     ['features: + "raw_column.ash"', 'features: - "transformed_column.f3_norm"']),
    ({"features": FEATURES}, {"features": [*FEATURES, "raw_column.ash"]}, ['features: + "raw_column.ash"']),
    ({"features": FEATURES}, {"features": list(reversed(FEATURES))}, ["features: order changed"]),
    ({"features": FEATURES}, {"features": [*FEATURES, FEATURES[0]]},
     [f"features: {'[' + ', '.join(repr(f).replace(chr(39), chr(34)) for f in FEATURES) + ']'} -> "
      f"{'[' + ', '.join(repr(f).replace(chr(39), chr(34)) for f in [*FEATURES, FEATURES[0]]) + ']'}"]),
    ({"x": 1}, {}, ["x: 1 -> (unset)"]),
], ids=["short-list-whole", "one-feature-swapped", "one-added", "reordered", "duplicate-added", "unset"])
def test_field_diff(before: dict[str, object], after: dict[str, object], lines: list[str]) -> None:
    assert field_diff(before, after) == lines
