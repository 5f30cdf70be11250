"""Checking attribute values against their schema `Field`, and resolving `var.NAME`."""

from __future__ import annotations

import difflib
import json
from typing import Any, Mapping

from mlp.config.hcl import Ref
from mlp.config.schema import Field
from mlp.diagnostics import Diagnostics, SourcePos

_TYPE_WORDS = {"str": "a string", "int": "a whole number", "num": "a number", "bool": "true or false",
               "list": "a list [...]", "map": "a map { key = value }", "ref": "a reference KIND.NAME",
               "refs": "a list of references [KIND.NAME, ...]",
               "refmap": "a map of references { name = KIND.NAME }",
               "impl": "a built-in name or a reference to a custom block"}


def did_you_mean(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f'Did you mean "{close[0]}"?' if close else ""


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Ref):
        return f"the reference {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    return "null"


def substitute_vars(value: Any, variables: Mapping[str, Any], pos: SourcePos,
                    diags: Diagnostics, context: str) -> Any:
    """Replace every `var.NAME` inside `value` by the variable's value."""
    if isinstance(value, Ref) and value.parts[0] == "var":
        if len(value.parts) != 2:
            diags.error(f'Invalid variable reference "{value}"', pos,
                        "A variable is referenced as var.NAME.", context=context)
            return None
        name = value.parts[1]
        if name not in variables:
            hint = did_you_mean(name, sorted(variables))
            diags.error(f'Unknown variable "var.{name}"', pos,
                        f'No variable "{name}" is declared in the app.',
                        hint or f'Declare it: variable "{name}" {{ default = ... }}', context)
            return None
        return variables[name]
    if isinstance(value, list):
        return [substitute_vars(v, variables, pos, diags, context) for v in value]
    if isinstance(value, dict):
        return {k: substitute_vars(v, variables, pos, diags, context) for k, v in value.items()}
    return value


def parse_var_override(text: str) -> Any:
    """`--var K=V`: V is read as JSON when it parses (numbers, bools, lists), else as a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def coerce(name: str, f: Field, value: Any, pos: SourcePos, diags: Diagnostics,
           context: str) -> tuple[bool, Any]:
    """Check `value` against `f`. Returns (ok, value) with ints widened to floats for `num`."""
    t = f.type
    ok = True
    if value is None:
        return True, None
    if t == "str":
        ok = isinstance(value, str)
    elif t == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif t == "num":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif t == "bool":
        ok = isinstance(value, bool)
    elif t == "list":
        ok = isinstance(value, list) and not any(isinstance(v, Ref) for v in value)
    elif t == "map":
        ok = isinstance(value, dict)
    elif t == "ref":
        ok = isinstance(value, Ref)
    elif t == "refs":
        ok = isinstance(value, list) and all(isinstance(v, Ref) for v in value)
    elif t == "refmap":
        ok = isinstance(value, dict) and all(isinstance(v, Ref) for v in value.values())
    elif t == "impl":
        ok = isinstance(value, (str, Ref))
    if not ok:
        hint = ""
        if t in ("ref", "refs", "refmap") and isinstance(value, str):
            hint = f'Write the reference without quotes: {name} = {value}' if "." in value else \
                f"Reference a block as KIND.NAME, e.g. {name} = raw_column.{value}"
        diags.error(f'Wrong type for "{name}"', pos,
                    f'"{name}" must be {_TYPE_WORDS.get(t, t)}, not {describe(value)}.',
                    hint, context)
        return False, None
    if f.choices and value not in f.choices:
        choices = ", ".join(f'"{c}"' for c in f.choices)
        diags.error(f'Invalid value for "{name}"', pos,
                    f'"{value}" is not one of {choices}.',
                    did_you_mean(str(value), list(f.choices)), context)
        return False, None
    if t == "num" and isinstance(value, int):
        return True, value
    return True, value
