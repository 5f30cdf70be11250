"""The typer app of the commands declared in `mlp.cli.commands`: help, shell completion, and
the command lines `mlp.cli.spec.parse` leaves to typer. Importing this module imports typer."""

from __future__ import annotations

import inspect
import sys
from typing import Any, Callable, get_type_hints

import typer

from mlp.cli.commands import COMMANDS, HELP
from mlp.cli.spec import Arg, Command


def _default(spec: Any) -> Any:
    if isinstance(spec, Arg):
        return typer.Argument(spec.default, **spec.extra)
    return typer.Option(spec.default, *spec.decls, **spec.extra)


def _function(cmd: Command) -> Callable[..., Any]:
    """A function with the declared signature, typer's Option/Argument as defaults, that calls
    the declared one: looked up when called, so that a test may put another in its place."""
    module, name = sys.modules[cmd.func.__module__], cmd.func.__name__

    def run(**kwargs: Any) -> Any:
        return getattr(module, name)(**kwargs)

    hints = get_type_hints(cmd.func)
    run.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=_default(p.spec),
                          annotation=hints[p.name]) for p in cmd.params])
    run.__annotations__ = {p.name: hints[p.name] for p in cmd.params}
    run.__doc__, run.__name__, run.__qualname__ = cmd.func.__doc__, name, name
    return run


def build() -> typer.Typer:
    app = typer.Typer(add_completion=True, no_args_is_help=True, rich_markup_mode=None, help=HELP)
    groups = {name: typer.Typer(no_args_is_help=True, help=text) for name, text in COMMANDS.groups.items()}
    for name, group in groups.items():
        app.add_typer(group, name=name)
    assert COMMANDS.root is not None
    app.callback()(_function(COMMANDS.root))
    for path, cmd in COMMANDS.commands.items():
        (groups[path[0]] if len(path) > 1 else app).command(path[-1])(_function(cmd))
    return app


app = build()
