"""Saved plans (`mlp plan --out FILE`): write, read, and refuse a stale one.

A plan file is JSON: the plan's JSON form plus a `planfile` marker and the digests of the
planned blocks' settings outside their fingerprints (`extras`). Apply compares the recorded
state lineage and serial, every source and code hash, every planned block's fingerprint and
those digests with the present ones, the way terraform refuses a saved plan whose state
moved on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

from mlp.errors import PlanFileError
from mlp.plan.model import Plan

MARKER = "mlp-plan"


def write_plan(plan: Plan, path: Path) -> None:
    if not path.parent.is_dir():
        raise PlanFileError(f"Cannot write the plan to {path}", f"The folder {path.parent} does not exist.",
                            "Create it, or give another --out path.")
    data = {"planfile": MARKER, **plan.to_json(), "extras": dict(sorted(plan.extras.items()))}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def read_plan(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanFileError(f"No plan file at {path}", "", "Make one with: mlp plan --out FILE") from None
    except (OSError, ValueError) as e:
        raise PlanFileError(f"Cannot read the plan file {path}", str(e),
                            "Make a new one with: mlp plan --out FILE") from None
    if not isinstance(data, dict) or data.get("planfile") != MARKER:
        raise PlanFileError(f"{path} is not an mlp plan file", "It lacks the plan-file marker.",
                            "Make one with: mlp plan --out FILE")
    try:
        return Plan.from_json(data)
    except (KeyError, ValueError, TypeError) as e:
        raise PlanFileError(f"The plan file {path} is damaged", f"{type(e).__name__}: {e}",
                            "Make a new one with: mlp plan --out FILE") from None


def _moved(recorded: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    return sorted(k for k in set(recorded) | set(now) if recorded.get(k) != now.get(k))


def check_fresh(saved: Plan, lineage: str, serial: int, data: Mapping[str, str],
                code: Mapping[str, str]) -> None:
    """Raise PlanFileError naming what moved since the plan was made."""
    problems = []
    if saved.serial == 0 and serial == 0:
        pass  # nothing was ever stored: an empty state gets a new lineage on every read
    elif saved.lineage != lineage:
        problems.append(f"the state is a different one (lineage {saved.lineage[:8]} -> {lineage[:8]})")
    elif saved.serial != serial:
        problems.append(f"the state changed since (serial {saved.serial} -> {serial})")
    moved_data = _moved(saved.data, data)
    if moved_data:
        problems.append("the data of " + ", ".join(moved_data) + " changed")
    moved_code = _moved(saved.code, code)
    if moved_code:
        problems.append("the code of " + ", ".join(moved_code) + " changed")
    if problems:
        raise PlanFileError("The saved plan is stale", "Since the plan was made, " + "; ".join(problems) + ".",
                            "Make a new plan with: mlp plan --out FILE")
