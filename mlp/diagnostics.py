"""Diagnostics: problems found in an app, collected and reported together.

A `Diagnostic` says what is wrong (summary), where (a `SourcePos`), why (detail)
and how to fix it (hint). Loading and checking code appends to a `Diagnostics`
list instead of raising, so one run reports every problem at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True, init=False)
class SourcePos:
    """A place in an app file. `line` and `column` are 1-based; 0 means unknown."""

    file: str
    line: int = 0
    column: int = 0

    def __init__(self, file: str, line: int = 0, column: int = 0) -> None:
        # Written out: one is made for every block and attribute of every file read, and the
        # generated frozen __init__ (object.__setattr__ per field) costs twice this.
        d = self.__dict__
        d["file"], d["line"], d["column"] = file, line, column

    def __str__(self) -> str:
        if not self.line:
            return self.file
        if self.column:
            return f"{self.file}:{self.line}:{self.column}"
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem: how bad, what, where (None: not in a file), why, how to fix it, in which block."""

    severity: Severity
    summary: str
    pos: SourcePos | None = None
    detail: str = ""
    hint: str = ""
    context: str = ""  # e.g. 'in raw_column "age"'

    def to_json(self) -> dict[str, object]:
        return {
            "severity": self.severity.value,
            "summary": self.summary,
            "detail": self.detail,
            "hint": self.hint,
            "file": self.pos.file if self.pos else None,
            "line": self.pos.line if self.pos else None,
            "column": self.pos.column if self.pos else None,
        }


@dataclass
class Diagnostics:
    """The problems found so far, in the order they were found; `sorted()` for reports."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, summary: str, pos: SourcePos | None = None, detail: str = "",
              hint: str = "", context: str = "") -> None:
        self.items.append(Diagnostic(Severity.ERROR, summary, pos, detail, hint, context))

    def warning(self, summary: str, pos: SourcePos | None = None, detail: str = "",
                hint: str = "", context: str = "") -> None:
        self.items.append(Diagnostic(Severity.WARNING, summary, pos, detail, hint, context))

    def extend(self, other: Diagnostics) -> None:
        self.items.extend(other.items)

    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        def key(d: Diagnostic) -> tuple[str, int, int, str]:
            p = d.pos or SourcePos("")
            return (p.file, p.line, p.column, d.summary)
        return sorted(self.items, key=key)

    def __len__(self) -> int:
        return len(self.items)


def format_diagnostic(d: Diagnostic) -> str:
    """Plain-text form, one diagnostic: the shape every renderer builds on."""
    head = f"{d.severity.value.capitalize()}: {d.summary}"
    lines = [head]
    if d.pos is not None:
        where = f"  on {d.pos}"
        if d.context:
            where += f", {d.context}"
        lines.append(where)
    if d.detail:
        lines.extend("  " + ln for ln in d.detail.splitlines())
    if d.hint:
        lines.append(f"  Fix: {d.hint}")
    return "\n".join(lines)
