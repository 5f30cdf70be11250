"""The command line's declarations, and a parser for the plain invocations that needs no typer.

Commands are declared once, in `mlp.cli.commands`, as functions whose defaults are `Opt` and
`Arg` (the arguments of `typer.Option` and `typer.Argument`, kept for later). From them:

- `mlp.cli.typer_app` builds the typer app: help, shell completion and every error message
  about the command line itself come from typer, as they always did;
- `parse` reads a command line that is plainly well formed (known options with their values,
  the right number of arguments) into the call it means, without importing typer, which
  with click and pydantic costs more start-up time than a small plan. Anything else (help,
  completion, an unknown option, a missing value, a value typer would have to convert or
  refuse) is not parsed here: `parse` returns None and the typer app reads it, so what users
  see for those stays typer's own.

The parser follows click's rules for what it accepts: an option's value is the next word
whatever it looks like, or what follows `=`; flags take no value; arguments and options mix;
the last of a repeated option wins, a repeatable one appends.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

_INT = re.compile(r"-?(0|[1-9][0-9]{0,17})")  # what int() and typer's adapter read alike

# What a parameter is, from its annotation (a string: the modules use `from __future__ import
# annotations`): a flag, a text, a whole number, a path, or a repeatable text option.
FLAG, STR, INT, PATH, MULTI = "flag", "str", "int", "path", "multi"
_KINDS = {"bool": FLAG, "str": STR, "Optional[str]": STR, "int": INT, "Optional[int]": INT,
          "Path": PATH, "Optional[Path]": PATH, "list[str]": MULTI}

# Plain classes, not dataclasses: these are made at every start of `mlp`, and a dataclass costs
# more to define than the rest of this module.


class Opt:
    """An option: `typer.Option(default, *decls, **extra)`."""

    __slots__ = ("default", "decls", "extra")

    def __init__(self, default: Any, decls: tuple[str, ...], extra: dict[str, Any]) -> None:
        self.default, self.decls, self.extra = default, decls, extra


class Arg:
    """A positional argument: `typer.Argument(default, **extra)`; `...` as default: required."""

    __slots__ = ("default", "extra")

    def __init__(self, default: Any, extra: dict[str, Any]) -> None:
        self.default, self.extra = default, extra


def option(default: Any, *decls: str, **extra: Any) -> Any:
    return Opt(default, decls, extra)


def argument(default: Any, **extra: Any) -> Any:
    return Arg(default, extra)


class Param:
    __slots__ = ("name", "kind", "spec")

    def __init__(self, name: str, kind: str, spec: Opt | Arg) -> None:
        self.name, self.kind, self.spec = name, kind, spec  # the function's parameter; FLAG...; its spec


class Command:
    """A declared function, its path (("plan",), ("state", "unlock")) and its parameters."""

    __slots__ = ("path", "func", "params", "options", "arguments")

    def __init__(self, path: tuple[str, ...], func: Callable[..., Any], params: tuple[Param, ...]) -> None:
        self.path, self.func, self.params = path, func, params
        self.options = {d: p for p in params if isinstance(p.spec, Opt) for d in p.spec.decls}
        self.arguments = [p for p in params if isinstance(p.spec, Arg)]

    def defaults(self) -> dict[str, Any]:
        return {p.name: (list(p.spec.default) if p.kind == MULTI else p.spec.default) for p in self.params}


class Registry:
    """The root callback, the commands in the order they are declared, and the groups' help."""

    def __init__(self, groups: dict[str, str]) -> None:
        self.root: Command | None = None
        self.commands: dict[tuple[str, ...], Command] = {}
        self.groups = groups

    def command(self, *path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            self.commands[path] = describe(path, func)
            return func
        return register

    def callback(self, func: Callable[..., Any]) -> Callable[..., Any]:
        self.root = describe((), func)
        return func


def describe(path: tuple[str, ...], func: Callable[..., Any]) -> Command:
    """The command a declared function is; a parameter type the parser does not know is a bug."""
    params = []
    code = func.__code__
    names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    defaults = dict(zip(names[:code.co_argcount][::-1], (func.__defaults__ or ())[::-1]))
    defaults.update(func.__kwdefaults__ or {})
    for name in names:
        spec = defaults.get(name)
        annotation = func.__annotations__.get(name)
        if not isinstance(spec, (Opt, Arg)) or annotation not in _KINDS:
            raise TypeError(f"{func.__name__}({name}): declare it with option() or argument() and a known type")
        params.append(Param(name, _KINDS[annotation], spec))
    return Command(path, func, tuple(params))


class Call:
    """What a command line means: the root options' values and one command's."""

    __slots__ = ("root", "command", "kwargs")

    def __init__(self, root: dict[str, Any], command: Command, kwargs: dict[str, Any]) -> None:
        self.root, self.command, self.kwargs = root, command, kwargs


def parse(argv: list[str], registry: Registry) -> Call | None:
    """The call a plainly well-formed command line makes; None for anything typer should read."""
    assert registry.root is not None
    root, i = _options(argv, 0, registry.root, stop_at_word=True)
    if root is None:
        return None
    if root.get("version"):
        return Call(root, registry.root, {})
    path: tuple[str, ...] = ()
    while i < len(argv) and (path + (argv[i],)) not in registry.commands and argv[i] in registry.groups:
        path += (argv[i],)
        i += 1
    if i >= len(argv) or (path + (argv[i],)) not in registry.commands:
        return None
    command = registry.commands[path + (argv[i],)]
    kwargs, _ = _options(argv, i + 1, command, stop_at_word=False)
    return None if kwargs is None else Call(root, command, kwargs)


def _options(argv: list[str], i: int, command: Command, stop_at_word: bool) -> tuple[dict[str, Any] | None, int]:
    """The values of `command`'s parameters from argv[i:] (up to the first word, for a group)."""
    values = command.defaults()
    options, arguments = command.options, command.arguments
    given = 0
    while i < len(argv):
        word = argv[i]
        if not word.startswith("-") or word == "-":
            if stop_at_word:
                break
            if given >= len(arguments):
                return None, i
            value = _convert(arguments[given].kind, word)
            if value is None:
                return None, i
            values[arguments[given].name] = value
            given += 1
            i += 1
            continue
        name, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        param = options.get(name)
        if param is None:
            return None, i  # --help, --, -abc, an unknown option: typer says what it means
        if param.kind == FLAG:
            if eq:
                return None, i
            values[param.name] = True
            i += 1
            continue
        if not eq:
            i += 1
            if i >= len(argv):
                return None, i
            inline = argv[i]
        value = _convert(param.kind, inline)
        if value is None:
            return None, i
        if param.kind == MULTI:
            values[param.name].append(value)
        else:
            values[param.name] = value
        i += 1
    if any(a.spec.default is ... for a in arguments[given:]):
        return None, i
    return values, i


def with_callbacks(command: Command, values: dict[str, Any]) -> dict[str, Any]:
    """The values the function is called with: an option with a callback gets what its callback
    returns, as with click (eager options first; `--version` prints and exits in its callback)."""
    out = dict(values)
    with_callback = [p for p in command.params if isinstance(p.spec, Opt) and "callback" in p.spec.extra]
    for p in sorted(with_callback, key=lambda p: not p.spec.extra.get("is_eager", False)):
        out[p.name] = p.spec.extra["callback"](out[p.name])  # type: ignore[union-attr]
    return out


def _convert(kind: str, text: str) -> Any:
    """The value typer would give the function; None when typer should judge the text itself."""
    if kind == INT:
        return int(text) if _INT.fullmatch(text) else None
    if kind == PATH:
        return Path(text) if text and "\0" not in text else None
    return text
