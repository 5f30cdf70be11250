"""Loading the user's custom code: one Python file per aggregator, transformer or estimator.

A file is loaded as a module named after its content hash, so an edited file is loaded
afresh and an unchanged one once per process. Failures name the file (and line) and say
what the file must define. `call` runs one of the file's functions and turns whatever it
raises into a `UserCodeError` at the user's own frame (file:line), with the traceback of
the user's frames kept for the block's log.
"""

from __future__ import annotations

import hashlib
import sys
import traceback
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mlp.errors import MlpError, UserCodeError

MESSAGE_CHARS = 300  # a Spark error's text holds its whole plan: the first line is shown
SIGNATURES = {
    "aggregate_spark": "def aggregate_spark(df, inputs, args): ...",
    "transform": "def transform(inputs, args): ...",
    "transform_spark": "def transform_spark(df, inputs, args): ...",
    "create_model": "def create_model(features, target, hparams): ...",
}


class CustomCodeError(MlpError):
    """A custom code file cannot be read, does not import, or lacks a function."""


@dataclass(frozen=True)
class CodeFile:
    """A custom code file's text and the hash that names its module."""

    path: Path
    source: str
    digest: str

    @property
    def module_name(self) -> str:
        return f"mlp_custom_{self.digest[:16]}"


def read_code(path: Path) -> CodeFile:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CustomCodeError(f"cannot read custom code {path}", str(e),
                              "fix the `path` of the aggregator, transformer or estimator block"
                              ) from None
    return CodeFile(path, data.decode("utf-8", errors="replace"), hashlib.sha256(data).hexdigest())


def module_from_source(source: str, filename: str, name: str) -> types.ModuleType:
    """Execute `source` as a fresh module (registered in sys.modules under `name`)."""
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module
    try:
        exec(compile(source, filename, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_module(path: Path) -> types.ModuleType:
    """The module of a custom code file, loaded once per content."""
    code = read_code(path)
    if code.module_name in sys.modules:
        return sys.modules[code.module_name]
    try:
        return module_from_source(code.source, str(path), code.module_name)
    except SyntaxError as e:
        raise CustomCodeError(f"custom code {path} has a syntax error",
                              f"{path}:{e.lineno}: {e.msg}") from None
    except Exception as e:
        raise CustomCodeError(f"custom code {path} failed to import",
                              _where(e, str(path)) + f"{type(e).__name__}: {e}",
                              "run `python " + str(path) + "` to see the full error") from None


def _where(e: BaseException, filename: str) -> str:
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == filename]
    return f"{filename}:{frames[-1].lineno}: " if frames else ""


def get_function(path: Path, name: str) -> Callable[..., Any]:
    """Function `name` of the custom code file at `path`."""
    fn = getattr(load_module(path), name, None)
    if not callable(fn):
        raise CustomCodeError(f"custom code {path} has no function `{name}`",
                              f"{path} must define `{name}`",
                              f"add {SIGNATURES.get(name, f'def {name}(...)')}")
    return fn


def has_function(path: Path, name: str) -> bool:
    return callable(getattr(load_module(path), name, None))


def call(block: str, path: Path, fn: Callable[..., Any], *args: Any, detail: str = "") -> Any:
    """`fn(*args)`, a function of the custom code file at `path` run for `block`; what it
    raises becomes a UserCodeError at the last frame of that file."""
    try:
        return fn(*args)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - whatever user code raises is the user's error
        raise user_code_error(block, path, fn, e, detail) from None


def user_code_error(block: str, path: Path, fn: Callable[..., Any], e: BaseException,
                    detail: str = "") -> UserCodeError:
    """The error at the user's last frame in `path`; its traceback starts at their first."""
    frames = traceback.extract_tb(e.__traceback__)
    own = [i for i, f in enumerate(frames) if f.filename == str(path)]
    line = frames[own[-1]].lineno if own else _first_line(fn)
    trace = ("Traceback (most recent call last):\n" + "".join(traceback.format_list(frames[own[0] if own else 0:]))
             + "".join(traceback.format_exception_only(type(e), e)))
    return UserCodeError(block, str(path), line, type(e).__name__, short_message(e), detail, trace=trace)


def short_message(e: BaseException) -> str:
    """The first line of an exception's text, cut to MESSAGE_CHARS."""
    text = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS - 3] + "..."


def _first_line(fn: Callable[..., Any]) -> int | None:
    code = getattr(fn, "__code__", None)
    return code.co_firstlineno if code is not None else None
