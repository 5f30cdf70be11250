"""The engine's events of a preview, as mlp's infrastructure changes.

    steps_of(events)   the per-resource steps of Pulumi `EngineEvent`s (their
                       `resource_pre_event.metadata`: `op`, `urn`, `type`, `diffs`, `keys`)
    changes_of(steps)  -> InfraChange per resource that changes, sorted by address

A replacement shows in the engine's events as several steps of one URN (`replace`,
`create-replacement`, `delete-replaced`): it is one change. Steps that change nothing
(`same`, `read`, `refresh`...) are left out, as Pulumi's own summary leaves them out. The
events are read by attribute, so this module imports nothing of Pulumi.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from mlp.providers import InfraChange
from mlp_cloud.driver import Step


class StepReason(StrEnum):
    """Why a resource changes (the `reason` of its InfraChange, before its details)."""

    NEW = "new"                        # not in the stack
    CHANGED = "changed"                # properties differ (named after it)
    REPLACE_NEEDED = "replace_needed"  # a property that cannot change in place differs (named)
    REMOVED = "removed"                # in the stack, no longer in the program
    IMPORTED = "imported"              # an existing resource taken into the stack


# Pulumi's op -> mlp's action and reason; ops not listed change nothing.
ACTIONS = {
    "create": ("create", StepReason.NEW),
    "import": ("create", StepReason.IMPORTED),
    "update": ("update", StepReason.CHANGED),
    "replace": ("replace", StepReason.REPLACE_NEEDED),
    "create-replacement": ("replace", StepReason.REPLACE_NEEDED),
    "delete-replaced": ("replace", StepReason.REPLACE_NEEDED),
    "import-replacement": ("replace", StepReason.REPLACE_NEEDED),
    "delete": ("delete", StepReason.REMOVED),
}


def steps_of(events: Iterable[Any]) -> tuple[Step, ...]:
    """The resource steps among a run's engine events, in the engine's order."""
    out = []
    for event in events:
        pre = getattr(event, "resource_pre_event", None)
        meta = getattr(pre, "metadata", None)
        if meta is None:
            continue
        op = getattr(meta.op, "value", meta.op)
        out.append(Step(str(meta.urn), str(meta.type), str(op), tuple(meta.diffs or ()), tuple(meta.keys or ())))
    return tuple(out)


def changes_of(steps: Iterable[Step]) -> tuple[InfraChange, ...]:
    """One change per resource that changes, sorted by address (`TYPE::NAME`); the steps
    of one replacement are one change naming every property that forces it."""
    found: dict[str, tuple[str, StepReason, frozenset[str]]] = {}
    for step in steps:
        if step.op not in ACTIONS:
            continue
        action, reason = ACTIONS[step.op]
        address = f"{step.type}::{step.name}"
        named = frozenset(step.keys if reason is StepReason.REPLACE_NEEDED and step.keys else step.diffs)
        seen = found.get(address)
        if seen is not None and seen[0] == action:
            named |= seen[2]
        if seen is None or action == "replace":
            found[address] = (action, reason, named)
    return tuple(InfraChange(a, found[a][0], _reason(found[a][1], found[a][2])) for a in sorted(found))


def _reason(reason: StepReason, named: frozenset[str]) -> str:
    if reason in (StepReason.CHANGED, StepReason.REPLACE_NEEDED) and named:
        return f"{reason.value} ({', '.join(sorted(named))})"
    return reason.value
