"""The `mlp` command's entry point.

The commands are declared in `mlp.cli.commands`. A plainly well-formed command line (the
ones scripts and people type to get work done) is read by `mlp.cli.spec.parse` and runs
straight away; the rest (`--help`, shell completion, a wrong option, `MLP_DEBUG`) goes to the
typer app, `mlp.cli.typer_app`, which is also `mlp.cli.main.app`. Importing typer, click and
pydantic costs more than planning a small app, so only that second path pays for it.
"""

from __future__ import annotations

import errno
import gc
import os
import sys
from typing import Any, NoReturn

from mlp.cli.commands import COMMANDS, Ctx
from mlp.cli.spec import Call, parse, with_callbacks


def __getattr__(name: str) -> Any:
    """`mlp.cli.main.app`: the typer app, built on first use."""
    if name == "app":
        from mlp.cli.typer_app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# A plan builds a model of the whole app that lives until the command ends; with the default
# gen-0 threshold (700) the collector runs every few blocks and keeps walking that growing
# model: about a tenth of a warm thousand-block plan. Collecting every 100,000 allocations
# instead moves that plan's peak memory by under 1 MB.
GC_THRESHOLD = 100_000


def main() -> NoReturn:
    gc.set_threshold(max(GC_THRESHOLD, gc.get_threshold()[0]), *gc.get_threshold()[1:])
    if os.environ.get("NO_COLOR"):
        Ctx.no_color = True
    call = None if _typer_only() else parse(sys.argv[1:], COMMANDS)
    if call is None:
        _run_typer()
    _run(call)


def _typer_only() -> bool:
    """Shell completion asks through the environment; with MLP_DEBUG a crash shows as typer shows it."""
    return "_MLP_COMPLETE" in os.environ or bool(os.environ.get("MLP_DEBUG"))


def _run_typer() -> NoReturn:
    from mlp.cli.typer_app import app

    try:
        app(prog_name="mlp")
    except SystemExit as e:
        raise SystemExit(e.code) from None
    sys.exit(0)


def _run(call: Call) -> NoReturn:
    """Run the call as typer runs a command: end of input outside a command's own handling is
    "Aborted!" and exit 1, Ctrl-C exit 130, a closed pipe exit 1 without a word."""
    try:
        assert COMMANDS.root is not None
        COMMANDS.root.func(**with_callbacks(COMMANDS.root, call.root))
        call.command.func(**with_callbacks(call.command, call.kwargs))
    except EOFError:
        sys.stderr.write("\nAborted!\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as e:
        if e.errno != errno.EPIPE:
            raise
        sys.stdout, sys.stderr = _Pacified(sys.stdout), _Pacified(sys.stderr)  # type: ignore[assignment]
        sys.exit(1)
    sys.exit(0)


class _Pacified:
    """A stream whose flush ignores a closed pipe, so that the interpreter's last flush at exit
    does not complain about it (click's PacifyFlushWrapper)."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def flush(self) -> None:
        try:
            self.wrapped.flush()
        except OSError as e:
            if e.errno != errno.EPIPE:
                raise

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.wrapped, attr)
