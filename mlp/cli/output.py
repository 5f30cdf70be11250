"""Rendering for the CLI: lines, plans, diagnostics and errors, with or without colour."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, NoReturn

from mlp.diagnostics import Diagnostic, Diagnostics, Severity, format_diagnostic
from mlp.errors import DiagnosticsError, MlpError, os_error_help


class Exit(SystemExit):
    """Leave the command with an exit code. A SystemExit, which is what click makes of
    `typer.Exit` in the end, so that the commands do not need typer to exit."""


class Out:
    def __init__(self, no_color: bool = False) -> None:
        self.color = not no_color and not os.environ.get("NO_COLOR") and sys.stdout.isatty()
        self._console: Any = None
        self._err: Any = None

    def _con(self, err: bool = False) -> Any:
        from rich.console import Console

        if err:
            if self._err is None:
                self._err = Console(stderr=True, no_color=not self.color, highlight=False,
                                    force_terminal=self.color or None, soft_wrap=True)
            return self._err
        if self._console is None:
            self._console = Console(no_color=not self.color, highlight=False,
                                    force_terminal=self.color or None, soft_wrap=True)
        return self._console

    def line(self, text: str = "", style: str = "", err: bool = False) -> None:
        if not self.color:
            (sys.stderr if err else sys.stdout).write(text + "\n")
            return
        from rich.text import Text

        self._con(err).print(Text(text, style=style or ""))

    def lines(self, lines: Iterable[tuple[str, str]], err: bool = False) -> None:
        """`line` for each (text, style); without colour in one write, not one per line (a
        thousand-block plan is a thousand lines, and an unbuffered stream writes each)."""
        if not self.color:
            (sys.stderr if err else sys.stdout).write("".join(text + "\n" for text, _ in lines))
            return
        for text, style in lines:
            self.line(text, style, err)

    def json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")

    def plan(self, plan_json: Mapping[str, Any], fmt: str, verbose: bool) -> None:
        from mlp.plan.render import render_markdown, text_lines

        if fmt == "json":
            self.json(plan_json)
        elif fmt == "markdown":
            sys.stdout.write(render_markdown(plan_json, verbose))
        else:
            self.lines(text_lines(plan_json, verbose))

    def infrastructure(self, provider: str, preview: Any, fmt: str) -> None:
        """The provider's infrastructure changes beside the blocks' (nothing for local)."""
        if not preview.changes and not preview.note:
            return
        marks = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}
        if fmt == "markdown":
            out = [f"\n**Infrastructure ({provider})**\n"]
            if preview.changes:
                out += ["| action | object | reason |", "|---|---|---|"]
                out += [f"| {c.action} | `{c.address}` | {c.reason} |" for c in preview.changes]
                out.append(f"\n**{_infra_count(preview.changes)}**")
            if preview.note:
                out.append(f"\n{preview.note}")
            sys.stdout.write("\n".join(out) + "\n")
            return
        self.line(f"\nInfrastructure ({provider}):")
        for c in preview.changes:
            self.line(f"  {marks.get(c.action, c.action)} {c.address}" + (f"  ({c.reason})" if c.reason else ""))
        if preview.changes:  # the blocks' summary line above counts blocks only
            self.line(f"{_infra_count(preview.changes)}")
        if preview.note:
            self.line(f"  {preview.note}")

    def diagnostic(self, d: Diagnostic) -> None:
        self.lines(_diagnostic_lines(d), err=True)

    def diagnostics(self, diags: Diagnostics) -> None:
        self.lines((line for d in diags.sorted() for line in _diagnostic_lines(d)), err=True)

    def state(self, view: Any, json_out: bool) -> None:
        from mlp.cli.views import render_state

        if json_out:
            self.json(view.to_json())
        else:
            for text, style in render_state(view):
                self.line(text, style)


def _infra_count(changes: Any) -> str:
    counts = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "replace", "delete")}
    return (f"Infrastructure: {counts['create']} to create, {counts['update']} to update, "
            f"{counts['replace']} to replace, {counts['delete']} to delete.")


def _diagnostic_lines(d: Diagnostic) -> list[tuple[str, str]]:
    """A diagnostic as (text, style) lines: its summary in bold, then a blank line after it."""
    style = "red" if d.severity is Severity.ERROR else "yellow"
    lines = format_diagnostic(d).splitlines()
    return [(lines[0], "bold " + style)] + [(ln, "") for ln in lines[1:]] + [("", "")]


def fail(out: Out, summary: str, detail: str, hint: str, code: int = 1) -> NoReturn:
    out.diagnostic(Diagnostic(Severity.ERROR, summary, None, detail, hint))
    raise Exit(code)


@contextmanager
def handle_errors(out: Out, json_out: bool = False) -> Iterator[None]:
    """Turn mlp's errors into readable messages and exit code 1; never a traceback. An
    OSError that reaches here (the places that write turn theirs into StateError) is shown
    with its path and a fix; only what is left is an internal error."""
    try:
        yield
    except DiagnosticsError as e:
        if json_out:
            out.json({"valid": False, "diagnostics": [d.to_json() for d in e.diagnostics.sorted()]})
        out.diagnostics(e.diagnostics)
        n = len(e.diagnostics.errors())
        out.line(f"{n} error{'s' if n != 1 else ''} found.", "red", err=True)
        raise Exit(1) from None
    except MlpError as e:
        fail(out, e.summary, e.detail, e.hint)
    except KeyboardInterrupt:
        out.line("Interrupted. Blocks that finished are kept in the state.", "yellow", err=True)
        raise Exit(130) from None
    except SystemExit:
        raise
    except OSError as e:  # a path the user can fix: named, with the fix, never "a bug in mlp"
        if os.environ.get("MLP_DEBUG"):
            raise
        detail, fix = os_error_help(e)
        fail(out, f"Cannot use {e.filename}" if e.filename is not None else "A system call failed", detail, fix)
    except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("MLP_DEBUG"):
            raise
        path = _crash_log()
        fail(out, f"Internal error: {type(e).__name__}: {e}",
             f"This is a bug in mlp. The traceback is in {path}.",
             "Set MLP_DEBUG=1 to see it here, and please report it.")


def _crash_log() -> str:
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="mlp-crash-", suffix=".log")
    with os.fdopen(fd, "w") as fh:
        traceback.print_exc(file=fh)
    return path
