"""`mlp fmt`: the canonical layout of HCL files, as `terraform fmt` does it.

Two-space indentation by nesting depth, `name = value` with one space around `=`, the
`=` of consecutive attribute lines aligned, at most one blank line in a row, no
trailing whitespace, one final newline. Comments and heredocs are kept as written.
Only files that parse are formatted: formatting must never change meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlp.config.hcl import MAX_FILE_BYTES, ParsedFile, Problem, ProblemKind, decode_source, parse_text, unreadable
from mlp.config.loader import app_files, problem_summary
from mlp.diagnostics import Diagnostics

_ATTR = re.compile(r"^([A-Za-z_][\w-]*)\s*=(?!=)\s*(.*)$")
_HEREDOC = re.compile(r"<<-?([A-Za-z_]\w*)\s*$")


@dataclass
class _Line:
    text: str
    depth: int
    key: str | None = None
    value: str = ""
    verbatim: bool = False


def _scan(line: str, in_comment: bool = False) -> tuple[int, bool, bool]:
    """Net bracket depth change of a line, ignoring strings and comments; whether the line
    starts with a closing bracket; and whether a /* comment is still open at its end.

    Inside a string, `${ ... }` (and `%{ ... }`) is code again, with strings of its own: its
    brackets are balanced inside the string and do not count.
    """
    delta = 0
    stack: list[int] = []  # -1: in a string; n >= 0: in an interpolation, n braces deep
    i = 0
    while i < len(line):
        c = line[i]
        if in_comment:
            end = line.find("*/", i)
            if end < 0:
                return delta, False, True
            in_comment, i = False, end + 2
            continue
        if stack and stack[-1] == -1:
            i = _in_string(line, i, stack)
            continue
        if c == '"':
            stack.append(-1)
        elif stack:
            _in_interpolation(c, stack)
        elif c == "#" or line.startswith("//", i):
            break
        elif line.startswith("/*", i):
            in_comment, i = True, i + 2
            continue
        elif c in "{[(":
            delta += 1
        elif c in "}])":
            delta -= 1
        i += 1
    return delta, line[:1] in ("}", "]", ")"), in_comment


def _in_string(line: str, i: int, stack: list[int]) -> int:
    """One step inside a string at `i`; returns where the next step starts."""
    if line[i] == "\\":
        return i + 2
    if line.startswith(("$${", "%%{"), i):
        return i + 3
    if line.startswith(("${", "%{"), i):
        stack.append(0)
        return i + 2
    if line[i] == '"':
        stack.pop()
    return i + 1


def _in_interpolation(c: str, stack: list[int]) -> None:
    if c == "{":
        stack[-1] += 1
    elif c == "}":
        if stack[-1] == 0:
            stack.pop()
        else:
            stack[-1] -= 1


def format_text(text: str) -> str:
    lines: list[_Line] = []
    depth = 0
    heredoc: str | None = None
    in_comment = False
    for raw in text.splitlines():
        if in_comment:  # inside a /* */ comment: kept as written
            lines.append(_Line(raw.rstrip(), depth, verbatim=True))
            in_comment = _scan(raw, True)[2]
            continue
        if heredoc is not None:
            lines.append(_Line(raw.rstrip(), depth, verbatim=True))
            if raw.strip() == heredoc:
                heredoc = None
            continue
        s = raw.strip()
        delta, closes, in_comment = _scan(s)
        indent = max(depth - 1 if closes else depth, 0)
        m = _ATTR.match(s)
        line = _Line(s, indent, m.group(1), m.group(2)) if m and not in_comment else _Line(s, indent)
        lines.append(line)
        depth = max(depth + delta, 0)
        hd = _HEREDOC.search(s)
        if hd:
            heredoc = hd.group(1)
    return _render(lines)


def _render(lines: list[_Line]) -> str:
    out: list[str] = []
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.key is None:
            out.append(ln.text if ln.verbatim else ("  " * ln.depth + ln.text).rstrip())
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j].key is not None and lines[j].depth == ln.depth:
            j += 1
            if _opens(lines[j - 1]):
                break
        width = max(len(x.key or "") for x in lines[i:j])
        for x in lines[i:j]:
            out.append(("  " * x.depth + f"{(x.key or '').ljust(width)} = {x.value}").rstrip())
        i = j
    return _squeeze(out)


def _opens(ln: _Line) -> bool:
    return _scan(ln.value)[0] > 0 or _scan(ln.value)[2]


def _squeeze(out: list[str]) -> str:
    result: list[str] = []
    for line in out:
        if not line and (not result or not result[-1]):
            continue
        result.append(line)
    while result and not result[-1]:
        result.pop()
    return "\n".join(result) + "\n"


def format_app(app_dir: Path, write: bool = True) -> tuple[list[Path], Diagnostics]:
    """Format every *.hcl file of the app that parses; returns the files whose text changed
    and the syntax errors of the files left alone."""
    diags = Diagnostics()
    changed = []
    for path in app_files(app_dir):
        parsed, text = _read(path)
        if parsed.syntax_error or text is None:
            problem = parsed.syntax_error
            if problem is not None:
                diags.error(problem_summary(problem), problem.pos, _not_formatted(problem))
            continue
        new = format_text(text)
        if new != text:
            changed.append(path)
            if write:
                path.write_text(new)
    return changed, diags


def _read(path: Path) -> tuple[ParsedFile, str | None]:
    """A file's parse and its text; no text when it is not a readable UTF-8 text file."""
    from mlp.safeio import read_regular

    try:
        data = read_regular(path, MAX_FILE_BYTES)
    except OSError as e:
        return unreadable(path.name, f"{e}."), None
    text = decode_source(data, path.name)
    if not isinstance(text, str):
        return ParsedFile(path.name, (), (), (), text), None
    return parse_text(text, path.name), text


def _not_formatted(problem: Problem) -> str:
    if problem.kind is ProblemKind.SYNTAX:
        return "Files with syntax errors are not formatted."
    return f"{problem.detail} It is not formatted."
