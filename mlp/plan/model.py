"""The plan: one `Change` per block, each with an action and the reason for it.

Invariants of `Plan`:
- `changes` is sorted by address (kind order, then name) and holds every block the plan
  covers, no-ops included (views hide them unless asked);
- `lineage` and `serial` are those of the state the plan was made against; `data` and
  `code` are the content hashes of every source and custom code file it saw. Apply of a
  saved plan refuses to run when any of them moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Mapping

from mlp.graph.address import Address

if TYPE_CHECKING:
    from mlp.state.moves import Move

FORMAT_VERSION = "1.0"


class Action(StrEnum):
    CREATE = "create"
    REBUILD = "rebuild"
    REUSE = "reuse"
    COPY = "copy"
    UPDATE = "update"
    DESTROY = "destroy"
    NOOP = "no-op"

    @property
    def symbol(self) -> str:
        return {"create": "+", "rebuild": "~", "reuse": "=", "copy": ">", "update": "~", "destroy": "-",
                "no-op": " "}[self.value]

    @property
    def runs(self) -> bool:
        """Whether apply does work for this action."""
        return self in (Action.CREATE, Action.REBUILD, Action.UPDATE)


class Reason(StrEnum):
    """Why a block gets its action. Documented in docs/plan.md."""

    NEW = "new"                              # not in state
    CONFIG_CHANGED = "config_changed"        # its own settings changed (details: field diffs)
    CODE_CHANGED = "code_changed"            # its custom code file changed
    DATA_CHANGED = "data_changed"            # a source's data changed
    UPSTREAM_CHANGED = "upstream_changed"    # something it uses changed (details name it)
    SAMPLE_CHANGED = "sample_changed"        # a source's sample size changed (--sample)
    REPLACE_REQUESTED = "replace_requested"  # --replace ADDR
    PROVIDER_CHANGED = "provider_changed"    # the provider kind changed: deployments move
    REMOVED = "removed"                      # in state, gone from the app
    CACHE_HIT = "cache_hit"                  # the new fingerprint's artifact is in the store
    BACKEND_CHANGED = "backend_changed"      # copy: the artifact is in the old backend's store only
    ARTIFACT_MISSING = "artifact_missing"    # refresh: the recorded artifact is gone from the store
    NOT_RUNNING = "not_running"              # refresh: the api's server is down
    DRIFTED = "drifted"                      # refresh: the api's server serves another model
    UNCHANGED = "unchanged"                  # no-op


@dataclass(frozen=True)
class Change:
    """One block's action and reason.

    `may_skip` marks a rebuild caused only by upstream rebuilds: when those give the same
    output, early cut-off carries this block over (its output is known only after apply,
    as Terraform says of values). `estimate` is the block's duration in its last run, from
    the state; None when it never ran.
    """

    address: Address
    action: Action
    reason: Reason
    details: tuple[str, ...] = ()
    fingerprint_before: str | None = None
    fingerprint_after: str | None = None
    may_skip: bool = False
    estimate: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"address": str(self.address), "kind": self.address.kind.value,
                "action": self.action.value, "reason": self.reason.value,
                "details": list(self.details), "fingerprint_before": self.fingerprint_before,
                "fingerprint_after": self.fingerprint_after, "may_skip": self.may_skip,
                "estimated_seconds": self.estimate}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Change:
        est = d.get("estimated_seconds")
        return cls(Address.parse(d["address"]), Action(d["action"]), Reason(d["reason"]),
                   tuple(d.get("details", ())), d.get("fingerprint_before"), d.get("fingerprint_after"),
                   bool(d.get("may_skip", False)), float(est) if isinstance(est, (int, float)) else None)


@dataclass(frozen=True)
class Summary:
    create: int = 0
    rebuild: int = 0
    reuse: int = 0
    update: int = 0
    destroy: int = 0
    copy: int = 0              # artifacts brought over from the old backend (a move)

    @property
    def total(self) -> int:
        return self.create + self.rebuild + self.reuse + self.update + self.destroy + self.copy

    may_skip: int = 0          # rebuilds early cut-off may skip
    estimate: float = 0.0      # seconds, summed over the runs that have an estimate
    unestimated: int = 0       # blocks that will run and never ran before

    def line(self) -> str:
        if not self.total:
            return "No changes. The app matches its state."
        copy = f"{self.copy} to copy, " if self.copy else ""  # only a move copies
        return (f"Plan: {self.create} to create, {self.rebuild} to rebuild, {self.reuse} to reuse, "
                f"{copy}{self.update} to update, {self.destroy} to destroy.")

    def detail_line(self) -> str:
        """What the plan cannot know yet, and how long it should take; "" when nothing runs."""
        runs = self.create + self.rebuild + self.update
        if not runs:
            return ""
        parts = []
        if self.may_skip:
            parts.append(f"{self.may_skip} of the rebuilds may be skipped by early cut-off (known after apply).")
        if self.estimate and self.unestimated:
            parts.append(f"Estimated time: {format_seconds(self.estimate)}, plus {self.unestimated} "
                         f"block{'s' if self.unestimated != 1 else ''} never run before.")
        elif self.estimate:
            parts.append(f"Estimated time: {format_seconds(self.estimate)}.")
        return " ".join(parts)


def format_seconds(seconds: float) -> str:
    """12s, 3m 05s, 1h 02m."""
    s = int(round(seconds))
    if s < 60:
        return f"{max(s, 1)}s" if seconds > 0 else "0s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


@dataclass(frozen=True)
class Plan:
    app: str
    app_dir: str
    changes: tuple[Change, ...]
    lineage: str
    serial: int
    provider: str
    data: Mapping[str, str] = field(default_factory=dict)
    code: Mapping[str, str] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    sample: int | None = None
    format_version: str = FORMAT_VERSION
    # Digests of the planned blocks' settings outside their fingerprints (an api's replicas
    # and port, a model's compute): kept in plan files, so that apply can refuse one whose
    # app changed only there. Not part of the JSON view.
    extras: Mapping[str, str] = field(default_factory=dict)
    # The backend move apply makes first (None: the backend is the one the app last used),
    # and what the plan says beside the blocks (the move, infrastructure an old provider
    # still holds).
    move: Move | None = None
    notes: tuple[str, ...] = ()

    def summary(self) -> Summary:
        counts = {a: 0 for a in Action}
        for c in self.changes:
            counts[c.action] += 1
        runs = [c for c in self.changes if c.action.runs]
        return Summary(counts[Action.CREATE], counts[Action.REBUILD], counts[Action.REUSE],
                       counts[Action.UPDATE], counts[Action.DESTROY], counts[Action.COPY],
                       may_skip=sum(1 for c in runs if c.may_skip),
                       estimate=sum(c.estimate or 0.0 for c in runs),
                       unestimated=sum(1 for c in runs if c.estimate is None))

    @property
    def has_changes(self) -> bool:
        return self.summary().total > 0

    def change(self, address: Address) -> Change | None:
        return next((c for c in self.changes if c.address == address), None)

    def to_json(self) -> dict[str, Any]:
        s = self.summary()
        return {
            "format_version": self.format_version, "app": self.app, "app_dir": self.app_dir,
            "provider": self.provider,
            "state": {"lineage": self.lineage, "serial": self.serial},
            "inputs": {"data": dict(sorted(self.data.items())), "code": dict(sorted(self.code.items()))},
            "options": {"variables": dict(sorted(self.variables.items())), "targets": list(self.targets),
                        "replace": list(self.replace), "sample": self.sample},
            "changes": [c.to_json() for c in self.changes],
            "backend_move": self.move.to_json() if self.move else None,
            "notes": list(self.notes),
            "summary": {"create": s.create, "rebuild": s.rebuild, "reuse": s.reuse, "copy": s.copy,
                        "update": s.update, "destroy": s.destroy, "may_skip": s.may_skip,
                        "estimated_seconds": round(s.estimate, 1), "text": s.line(),
                        "detail": s.detail_line()},
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Plan:
        opts = d.get("options", {})
        return cls(app=d["app"], app_dir=d.get("app_dir", "."),
                   changes=tuple(Change.from_json(c) for c in d["changes"]),
                   lineage=d["state"]["lineage"], serial=int(d["state"]["serial"]),
                   provider=d.get("provider", "local"),
                   data=dict(d.get("inputs", {}).get("data", {})),
                   code=dict(d.get("inputs", {}).get("code", {})),
                   variables=dict(opts.get("variables", {})), targets=tuple(opts.get("targets", ())),
                   replace=tuple(opts.get("replace", ())), sample=opts.get("sample"),
                   format_version=d.get("format_version", FORMAT_VERSION),
                   extras=dict(d.get("extras", {})), move=_move(d.get("backend_move")),
                   notes=tuple(str(n) for n in d.get("notes", ()) if isinstance(n, str)))


def _move(d: Any) -> Move | None:
    from mlp.state.moves import Move

    return Move.from_json(d) if d else None
