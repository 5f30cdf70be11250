"""Field-level differences between two settings maps: `hparams.hidden_units: [16, 8] -> [32, 16]`."""

from __future__ import annotations

import json
from typing import Any, Mapping

_ABSENT = object()


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
        else:
            out.append(f"{path}: {show(b)} -> {show(a)}")
    return out
