"""The exception tree of mlp.

    MlpError                      anything mlp reports to a user without a traceback
    ├── DiagnosticsError          the app has errors (carries the collected diagnostics)
    ├── StateError                state cannot be read or written
    │   └── LockError             another process holds the state lock (names the holder)
    ├── PlanFileError             a saved plan is unreadable or stale
    ├── ApplyError                one or more blocks failed during apply
    ├── DataError                 a source's data broke its raw columns' rules
    └── UsageError                a command was called in a way that cannot work

Every error has a one-line summary and a detail that says where and how to fix it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlp.diagnostics import Diagnostics


class MlpError(Exception):
    def __init__(self, summary: str, detail: str = "", hint: str = "") -> None:
        super().__init__(summary)
        self.summary = summary
        self.detail = detail
        self.hint = hint


class DiagnosticsError(MlpError):
    def __init__(self, diagnostics: Diagnostics) -> None:
        n = len(diagnostics.errors())
        super().__init__(f"the app has {n} error{'s' if n != 1 else ''}")
        self.diagnostics = diagnostics


class StateError(MlpError):
    pass


class LockError(StateError):
    pass


class PlanFileError(MlpError):
    pass


class ApplyError(MlpError):
    pass


class DataError(MlpError):
    pass


class UsageError(MlpError):
    pass
