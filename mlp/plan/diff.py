"""Field-level differences between two settings maps: `hparams.hidden_units: [16, 8] -> [32, 16]`.

A short list changes whole, as above. A longer one (a model's 14 features) shows only what
changed, one item per line: `features: + "transformed_column.ash_norm"`, `features: -
"raw_column.ash"`, or `features: order changed` when only the order moved.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

_ABSENT = object()
WHOLE_LIST = 4  # lists of at most this many items are shown whole


def show(value: Any) -> str:
    if value is _ABSENT:
        return "(unset)"
    return json.dumps(value, separators=(", ", ": "), sort_keys=True)


def field_diff(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = "") -> list[str]:
    """One line per changed leaf, sorted by path. Maps recurse; lists compare whole."""
    out: list[str] = []
    for key in sorted(set(before) | set(after)):
        b = before.get(key, _ABSENT)
        a = after.get(key, _ABSENT)
        if b == a:
            continue
        path = f"{prefix}{key}"
        if isinstance(b, Mapping) and isinstance(a, Mapping):
            out.extend(field_diff(b, a, path + "."))
        elif isinstance(b, list) and isinstance(a, list) and max(len(a), len(b)) > WHOLE_LIST:
            out.extend(list_diff(path, b, a))
        else:
            out.append(f"{path}: {show(b)} -> {show(a)}")
    return out


def list_diff(path: str, before: list[Any], after: list[Any]) -> list[str]:
    """The items added and removed, in list order; or that only their order changed."""
    was, now = [show(v) for v in before], [show(v) for v in after]
    added = [v for v in now if v not in was]
    removed = [v for v in was if v not in now]
    if not added and not removed:
        return [f"{path}: order changed" if sorted(was) == sorted(now) else f"{path}: {show(before)} -> {show(after)}"]
    return [f"{path}: + {v}" for v in added] + [f"{path}: - {v}" for v in removed]
