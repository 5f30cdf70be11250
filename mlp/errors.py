"""The exception tree of mlp.

    MlpError                      anything mlp reports to a user without a traceback
    ├── DiagnosticsError          the app has errors (carries the collected diagnostics)
    ├── StateError                state, artifacts or logs cannot be read or written
    │   └── LockError             another process holds the state lock (names the holder)
    ├── PlanFileError             a saved plan is unreadable or stale
    ├── ApplyError                one or more blocks failed during apply
    ├── DataError                 a source's data broke its raw columns' rules
    │   └── BadDataError          ...during ingest: the source, and the counts per raw column
    ├── UserCodeError             the user's custom code raised: block, file:line, exception
    └── UsageError                a command was called in a way that cannot work

Every error has a one-line summary and a detail that says where and how to fix it. Errors
are told apart by their type and fields, never by their text. `os_error_help` says what an
OSError on a path means and how to fix it, for the places that turn one into a StateError
or a UsageError.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlp.diagnostics import Diagnostics


class MlpError(Exception):
    def __init__(self, summary: str, detail: str = "", hint: str = "") -> None:
        super().__init__(summary)
        self.summary = summary
        self.detail = detail
        self.hint = hint

    def render(self) -> str:
        """Summary, detail and `Fix:` hint, one per line: the message of a failed block."""
        return self.summary + (f"\n{self.detail}" if self.detail else "") + (f"\nFix: {self.hint}" if self.hint else "")


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


class BadDataError(DataError):
    """The rows of `source` (an address, "source.x") broke its raw columns' rules, or every
    row was dropped. `rows` were read; `columns` maps each raw column's address to its count
    per kind of violation (cast, null, min, max, values), counting only the kinds found;
    `malformed` counts JSON lines that are not objects."""

    def __init__(self, source: str, rows: int, columns: Mapping[str, Mapping[str, int]],
                 summary: str, detail: str = "", hint: str = "", malformed: int = 0) -> None:
        super().__init__(summary, detail, hint)
        self.source = source
        self.rows = rows
        self.columns = {c: dict(kinds) for c, kinds in columns.items()}
        self.malformed = malformed


class UserCodeError(MlpError):
    """The user's custom code raised while `block` ("transformed_column.x") ran it.

    `file` and `line` are the user's own frame, the last one of the traceback in that file
    (`line` is None when no frame of the file is in it); `exc_type` and `message` are the
    exception's; `trace` is the traceback of the user's frames, for the block's log.
    """

    def __init__(self, block: str, file: str, line: int | None, exc_type: str, message: str,
                 detail: str = "", hint: str | None = None, trace: str = "") -> None:
        where = f"{file}:{line}" if line else file
        text = f"{exc_type}: {message}" if message else exc_type
        super().__init__(f"{where}: {text}", detail,
                         hint if hint is not None else f"edit {file}; its traceback is in `mlp logs {block}`")
        self.block, self.file, self.line = block, file, line
        self.exc_type, self.message, self.trace = exc_type, message, trace
        self._own_hint = hint

    def relative_to(self, folder: Path) -> UserCodeError:
        """The same error with `file` shown relative to `folder` (the app folder) when inside it."""
        try:
            shown = str(Path(self.file).resolve().relative_to(folder.resolve()))
        except ValueError:
            return self
        return UserCodeError(self.block, shown, self.line, self.exc_type, self.message, self.detail,
                             self._own_hint, self.trace)


class UsageError(MlpError):
    pass


def os_error_help(e: OSError) -> tuple[str, str]:
    """(what happened at which path, how to fix it) for an OSError on a file or folder."""
    if e.filename is None:  # not about a path (a socket, a pipe): its own words, no guessed fix
        return str(e), ""
    path = str(e.filename)
    what = f"{path}: {e.strerror or e}"
    blocker = _file_in_the_way(e, path)
    if blocker is not None:
        return (f"{what}: {blocker} is a file where a folder is expected",
                f"move it aside (mv {blocker} {blocker}.bak) or remove it")
    return what, _fix_for(e, path)


def _fix_for(e: OSError, path: str) -> str:
    if isinstance(e, PermissionError):
        return f"give your user write access to {path} (e.g. chmod u+rwX {path}), or use a folder you own"
    if isinstance(e, FileNotFoundError):
        return f"check the path: {path} does not exist"
    if isinstance(e, IsADirectoryError):
        return f"{path} is a folder where a file is expected: move it aside (mv {path} {path}.bak)"
    if e.errno == errno.ENOSPC:
        return f"free some space on the disk that holds {path}"
    if e.errno == errno.EROFS:
        return f"{path} is on a read-only file system: use a writable folder"
    return f"check {path}"


def _file_in_the_way(e: OSError, path: str) -> str | None:
    """The file that stands where a folder is needed: `path` itself (mkdir found a file
    there) or its nearest existing ancestor (ENOTDIR)."""
    if not isinstance(e, (NotADirectoryError, FileExistsError)):
        return None
    p = Path(path)
    for candidate in (p, *p.parents):
        if os.path.lexists(candidate):
            return None if candidate.is_dir() else str(candidate)
    return None
