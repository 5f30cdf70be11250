"""Loading the user's custom code: one Python file per aggregator, transformer or estimator.

A file is loaded as a module named after its content hash, so an edited file is loaded
afresh and an unchanged one once per process. Failures name the file (and line) and say
what the file must define.
"""

from __future__ import annotations

import hashlib
import sys
import traceback
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mlp.errors import MlpError

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
