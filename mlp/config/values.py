"""Evaluating attribute values, and checking them against their schema `Field`.

`evaluate` replaces what an expression names by its value: `var.NAME`, `local.NAME`, and
inside a block with `for_each` `each.key` and `each.value` (also in string templates and in
the index of a reference); it renders templates and applies `toset`. References to blocks stay
`Ref`s, their index evaluated to a string. `resolve_locals` evaluates the `locals` blocks in
dependency order. `coerce` checks a value's type, then what its `Field` allows (choices, range,
pattern, list items, an autoscaler's { min, max }), reporting each problem as a diagnostic that
names the allowed values and a good one.
"""

from __future__ import annotations

import difflib
import graphlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Final, Mapping

from mlp.config.hcl import Attr, Call, Ref, Template
from mlp.config.schema import Field
from mlp.diagnostics import Diagnostics, SourcePos

_TYPE_WORDS = {"str": "a string", "int": "a whole number", "num": "a number", "bool": "true or false",
               "list": "a list [...]", "map": "a map { key = value }", "ref": "a reference KIND.NAME",
               "refs": "a list of references [KIND.NAME, ...]",
               "refmap": "a map of references { name = KIND.NAME }",
               "impl": "a built-in name or a reference to a custom block"}
_SPAN_KEYS = ("min", "max")


class _Unset:
    """The value of a declared variable that has none: reported once, where it is declared."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


def did_you_mean(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f'Did you mean "{close[0]}"?' if close else ""


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Ref):
        return f"the list {value}" if value.splat else f"the reference {value}"
    if isinstance(value, Template):
        return "a string template"
    if isinstance(value, Call):
        return f"the call {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    return "null"


@dataclass(frozen=True)
class Each:
    """`each` inside one instance of a block with `for_each`."""

    key: str
    value: Any


@dataclass(frozen=True)
class Scope:
    """The names an expression may use: variables, evaluated locals, and `each` in a for_each block."""

    variables: Mapping[str, Any]
    locals: Mapping[str, Any] = field(default_factory=dict)
    each: Each | None = None


def evaluate(value: Any, scope: Scope, pos: SourcePos, diags: Diagnostics, context: str) -> Any:
    """`value` with every var, local and each replaced, templates rendered and toset applied;
    None where something could not be evaluated (reported in `diags`)."""
    return try_evaluate(value, scope, pos, diags, context)[1]


def try_evaluate(value: Any, scope: Scope, pos: SourcePos, diags: Diagnostics, context: str) -> tuple[bool, Any]:
    """(ok, value) of `evaluate`: not ok when something was reported, or an unset variable was used
    (reported where it is declared)."""
    if value.__class__ in _LITERALS:  # most attributes: nothing to evaluate
        return True, value
    errors = len(diags.items)
    ev = _Evaluator(scope, pos, diags, context)
    out = ev.value(value)
    return not ev.unset and len(diags.items) == errors, out


_LITERALS = frozenset({str, int, float, bool, type(None)})


class _Evaluator:
    def __init__(self, scope: Scope, pos: SourcePos, diags: Diagnostics, context: str) -> None:
        self.scope, self.pos, self.diags, self.context = scope, pos, diags, context
        self.unset = False  # an unset variable or a broken local was used: reported already

    def error(self, summary: str, detail: str = "", hint: str = "") -> None:
        self.diags.error(summary, self.pos, detail, hint, self.context)

    def value(self, v: Any) -> Any:
        if isinstance(v, Ref):
            return self.ref(v)
        if isinstance(v, Template):
            return self.template(v)
        if isinstance(v, Call):
            return self.call(v)
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        return v

    def ref(self, r: Ref) -> Any:
        root = r.parts[0]
        if root not in ("var", "local", "each"):
            return self.block_ref(r)
        if r.splat:
            self.error(f'Invalid reference "{r}"', f"[*] is all the instances of a block; {root} has none.")
            return None
        found, value = {"var": self.var, "local": self.local, "each": self.each}[root](r)
        if not found or r.index is None:
            return value
        key = self.key(r.index)
        return None if key is None else self.field(value, key, f"{Ref(r.parts)}")

    def block_ref(self, r: Ref) -> Ref | None:
        """A reference to a block keeps being one; its index becomes the instance's key."""
        if r.index is None:
            return r
        key = self.key(r.index)
        return None if key is None else Ref(r.parts, index=key)

    def key(self, index: Any) -> str | None:
        key = self.value(index)
        if key is None or (isinstance(key, str) and key):
            return key
        self.error("Invalid index", f"An index is a non-empty string (an instance's key), not {describe(key)}.",
                   'Write KIND.NAME["KEY"] or KIND.NAME[each.key].')
        return None

    def var(self, r: Ref) -> tuple[bool, Any]:
        variables = self.scope.variables
        if len(r.parts) != 2:
            self.error(f'Invalid variable reference "{r}"', "A variable is referenced as var.NAME.")
            return False, None
        name = r.parts[1]
        if variables.get(name) is UNSET:
            self.unset = True
            return False, None
        if name not in variables:
            hint = did_you_mean(name, sorted(variables))
            self.error(f'Unknown variable "var.{name}"', f'No variable "{name}" is declared in the app.',
                       hint or f'Declare it: variable "{name}" {{ default = ... }}')
            return False, None
        return True, variables[name]

    def local(self, r: Ref) -> tuple[bool, Any]:
        if len(r.parts) < 2:
            self.error(f'Invalid local reference "{r}"', "A local value is referenced as local.NAME.")
            return False, None
        name, found = r.parts[1], self.scope.locals
        if found.get(name) is UNSET:
            self.unset = True
            return False, None
        if name not in found:
            self.error(f'Unknown local value "local.{name}"', f'No local value "{name}" is declared in the app.',
                       did_you_mean(name, sorted(found)) or f"Declare it: locals {{ {name} = ... }}")
            return False, None
        return self.fields(found[name], r.parts[2:], f"local.{name}")

    def each(self, r: Ref) -> tuple[bool, Any]:
        each = self.scope.each
        if each is None:
            self.error(f'"{r}" is used outside a for_each block', "each.key and each.value exist only in a "
                       "raw_column, aggregate or transformed_column block with for_each.",
                       "Add for_each = ... to the block, or write the value itself.")
            return False, None
        if r.parts[1:2] == ("key",) and len(r.parts) == 2:
            return True, each.key
        if r.parts[1:2] == ("value",):
            return self.fields(each.value, r.parts[2:], "each.value")
        self.error(f'Invalid reference "{r}"', "In a for_each block, each.key is the instance's key and "
                   "each.value its value (each.value.FIELD when the value is a map).")
        return False, None

    def fields(self, value: Any, names: tuple[str, ...], what: str) -> tuple[bool, Any]:
        for name in names:
            value = self.field(value, name, what)
            if value is None:
                return False, None
            what = f"{what}.{name}"
        return True, value

    def field(self, value: Any, name: str, what: str) -> Any:
        if not isinstance(value, dict):
            self.error(f'{what} has no field "{name}"', f"{what} is {describe(value)}, not a map.")
            return None
        if name not in value:
            keys = sorted(value)
            self.error(f'{what} has no field "{name}"', f"{what} is a map with " +
                       (", ".join(f'"{k}"' for k in keys) if keys else "no keys") + ".",
                       did_you_mean(name, keys))
            return None
        return value[name]

    def template(self, t: Template) -> str | None:
        out: list[str] = []
        for part in t.parts:
            errors = len(self.diags.items)
            v = part if isinstance(part, str) else self.value(part)
            if v is None and (self.unset or len(self.diags.items) > errors):
                return None  # already reported
            if isinstance(v, str):
                out.append(v)
            elif isinstance(v, bool):
                out.append("true" if v else "false")
            elif isinstance(v, (int, float)):
                out.append(_number(v))
            else:
                self.error("Invalid string template", f"${{{part}}} is {describe(v)}; a template holds "
                           "strings, numbers and bools.")
                return None
        return "".join(out)

    def call(self, c: Call) -> list[str] | None:
        """toset(list): its strings, each once, in order (as Terraform orders a set of strings)."""
        if len(c.args) != 1:
            self.error(f"{c.name} takes one argument", f"It is given {len(c.args)}.",
                       f'Write {c.name}(["a", "b"]).')
            return None
        items = self.value(c.args[0])
        if items is None:
            return None
        if not isinstance(items, list):
            self.error(f"Invalid argument of {c.name}", f"It takes a list of strings, not {describe(items)}.",
                       f'Write {c.name}(["a", "b"]).')
            return None
        for i, item in enumerate(items):
            if not isinstance(item, str):
                self.error(f"Invalid argument of {c.name}", f"Element {i} is {describe(item)}, not a string.")
                return None
        return sorted(set(items))


def _number(v: float) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() and abs(v) < 1e16 else str(v)


def refs_in(value: Any) -> Iterator[Ref]:
    """Every reference inside `value`, indexes and templates included."""
    if isinstance(value, Ref):
        yield value
        yield from refs_in(value.index)
    elif isinstance(value, Template):
        for p in value.parts:
            yield from refs_in(p)
    elif isinstance(value, Call):
        for a in value.args:
            yield from refs_in(a)
    elif isinstance(value, list):
        for x in value:
            yield from refs_in(x)
    elif isinstance(value, dict):
        for x in value.values():
            yield from refs_in(x)


def resolve_locals(attrs: Mapping[str, Attr], variables: Mapping[str, Any], diags: Diagnostics) -> dict[str, Any]:
    """Every local's value, each evaluated after the locals it uses; a cycle is reported, naming it,
    and its locals are UNSET (their uses report nothing more)."""
    deps = {name: sorted({r.parts[1] for r in refs_in(a.value) if r.parts[0] == "local" and len(r.parts) > 1
                          and r.parts[1] in attrs}) for name, a in attrs.items()}
    out: dict[str, Any] = {}
    for name in _locals_in_cycles(attrs, deps, diags):
        out[name] = UNSET
    ts: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter(
        {n: [d for d in ds if d not in out] for n, ds in deps.items() if n not in out})
    for name in ts.static_order():
        a = attrs[name]
        ok, value = try_evaluate(a.value, Scope(variables, out), a.pos, diags, f'in local "{name}"')
        out[name] = value if ok else UNSET
    return out


def _locals_in_cycles(attrs: Mapping[str, Attr], deps: Mapping[str, list[str]], diags: Diagnostics) -> set[str]:
    left = dict(deps)
    found: set[str] = set()
    while True:
        try:
            graphlib.TopologicalSorter(left).prepare()
            return found
        except graphlib.CycleError as e:
            ring = list(e.args[1])  # each uses the next; first == last
            start = ring.index(min(ring[:-1]))
            ring = ring[start:-1] + ring[:start]
            loop = " -> ".join(f"local.{n}" for n in ring + ring[:1])
            diags.error("Cycle in locals", attrs[ring[0]].pos, f"Each local uses the next, in a loop: {loop}.",
                        "Break the loop: a local cannot use, directly or not, itself.", f'in local "{ring[0]}"')
            found.update(ring)
            left = {n: [d for d in ds if d not in found] for n, ds in left.items() if n not in found}


def parse_var_override(text: str) -> Any:
    """`--var K=V`: V is read as JSON when it parses (numbers, bools, lists), else as a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def hcl(value: Any) -> str:
    """A value as it is written in an app file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(hcl(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {hcl(v)}" for k, v in value.items()) + " }"
    return str(value)


def type_ok(t: str, value: Any) -> bool:
    """Whether `value` has the schema type `t` (see `Field`); any other `t` takes anything."""
    check = _TYPE_CHECKS.get(t)
    return True if check is None else check(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "num": _is_number,
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list) and not any(isinstance(x, Ref) for x in v),
    "map": lambda v: isinstance(v, dict),
    "ref": lambda v: _one_ref(v),
    "refs": lambda v: (isinstance(v, Ref) and v.splat) or (isinstance(v, list) and all(isinstance(x, Ref) for x in v)),
    "refmap": lambda v: isinstance(v, dict) and all(_one_ref(x) for x in v.values()),
    "impl": lambda v: isinstance(v, str) or _one_ref(v),
}


def _one_ref(value: Any) -> bool:
    return isinstance(value, Ref) and not value.splat


def coerce(name: str, f: Field, value: Any, pos: SourcePos, diags: Diagnostics,
           context: str) -> tuple[bool, Any]:
    """Check `value` against `f`. Returns (ok, value); the value is None when it is refused."""
    if value is None:
        return True, None
    key = (id(f), value.__class__, value) if value.__class__ in _LITERALS else None
    if key is not None and _ACCEPTED.get(key) is f:
        return True, value
    if f.span and isinstance(value, dict):
        return _coerce_span(name, f, value, pos, diags, context)
    ok = _check(name, f, value, pos, diags, context, _ExampleHint(name, f))
    if ok and key is not None and len(_ACCEPTED) < _ACCEPTED_LIMIT:
        _ACCEPTED[key] = f
    return ok, (value if ok else None)


# A literal value a field accepted is accepted by it again: the check depends on nothing else
# (the name only goes into messages). Apps repeat values (type = "FLOAT" on every raw column),
# so the check runs once per field and value. The field is kept, so that its id stays its own.
_ACCEPTED: dict[tuple[int, type, Any], Field] = {}
_ACCEPTED_LIMIT = 1 << 16


class _ExampleHint:
    """`_example_hint(name, f)`, made only when a value is refused: most are not."""

    def __init__(self, name: str, f: Field) -> None:
        self.name, self.field = name, f

    def __str__(self) -> str:
        return _example_hint(self.name, self.field)


Hint = str | _ExampleHint


def _check(name: str, f: Field, value: Any, pos: SourcePos, diags: Diagnostics, context: str,
           hint: Hint) -> bool:
    if not type_ok(f.type, value):
        _wrong_type(name, f, value, pos, diags, context, hint)
        return False
    if f.choices and value not in f.choices:
        choices = ", ".join(f'"{c}"' for c in f.choices)
        diags.error(f'Invalid value for "{name}"', pos, f'"{value}" is not one of {choices}.',
                    did_you_mean(str(value), list(f.choices)), context)
        return False
    if f.range is not None and isinstance(value, (int, float)) and value not in f.range:
        return _refuse(f'"{name}" must be {f.range}', f, value, pos, diags, context, hint)
    if f.pattern and isinstance(value, str) and not re.fullmatch(f.pattern, value):
        return _refuse(f'"{name}" must be {f.pattern_doc}', f, value, pos, diags, context, hint)
    if isinstance(value, list):
        return _check_items(name, f, value, pos, diags, context, hint)
    return True


def _check_items(name: str, f: Field, value: list[Any], pos: SourcePos, diags: Diagnostics,
                 context: str, hint: Hint) -> bool:
    if f.nonempty and not value:
        return _refuse(f'"{name}" must not be empty', f, value, pos, diags, context, hint)
    if f.item is None:
        return True
    item = f.item if f.item.doc or not f.doc else replace(f.item, doc=f.doc)
    return all([_check(f"{name}[{i}]", item, v, pos, diags, context, hint) for i, v in enumerate(value)])


def _refuse(summary: str, f: Field, value: Any, pos: SourcePos, diags: Diagnostics, context: str,
            hint: Hint) -> bool:
    detail = f"It is {hcl(value)}." + (f" {f.doc}" if f.doc else "")
    diags.error(summary, pos, detail, str(hint), context)
    return False


def _wrong_type(name: str, f: Field, value: Any, pos: SourcePos, diags: Diagnostics, context: str,
                hint: Hint) -> None:
    t = f.type
    if t in ("ref", "refs", "refmap") and isinstance(value, str):
        hint = f'Write the reference without quotes: {name} = {value}' if "." in value else \
            f"Reference a block as KIND.NAME, e.g. {name} = raw_column.{value}"
    what = _TYPE_WORDS.get(t, t) + (", or a map { min = ..., max = ... }" if f.span else "")
    diags.error(f'Wrong type for "{name}"', pos, f'"{name}" must be {what}, not {describe(value)}.',
                str(hint), context)


def _example_hint(name: str, f: Field) -> str:
    example = f.example if f.example is not None else f.default
    if example is None:
        return ""
    leaf = name.rsplit(".", 1)[-1]
    return f"Use e.g. {leaf} = {hcl(example)}"


def _coerce_span(name: str, f: Field, value: dict[str, Any], pos: SourcePos, diags: Diagnostics,
                 context: str) -> tuple[bool, Any]:
    """`{ min = X, max = Y }`: two values of the field, min <= max."""
    leaf = name.rsplit(".", 1)[-1]
    hint = f"Write {leaf} = N, or {leaf} = {{ min = N, max = M }} with N <= M."
    ok = _span_keys_ok(name, value, pos, diags, context, hint)
    scalar = replace(f, span=False)
    ok = all([_check(f"{name}.{k}", scalar, value[k], pos, diags, context, hint)
              for k in _SPAN_KEYS if k in value]) and ok
    if ok and value["max"] < value["min"]:
        diags.error(f'"{name}.max" must be at least "{name}.min"', pos,
                    f"It is {hcl(value)}: min is greater than max.", "Swap them.", context)
        ok = False
    return ok, ({k: value[k] for k in _SPAN_KEYS} if ok else None)


def _span_keys_ok(name: str, value: dict[str, Any], pos: SourcePos, diags: Diagnostics, context: str,
                  hint: str) -> bool:
    unknown = sorted(set(value) - set(_SPAN_KEYS))
    for key in unknown:
        diags.error(f'Unknown key "{key}" in "{name}"', pos, f'A map "{name}" takes "min" and "max" only.',
                    did_you_mean(key, list(_SPAN_KEYS)) or hint, context)
    missing = [] if unknown else [k for k in _SPAN_KEYS if k not in value]  # a misspelt key says it all
    for key in missing:
        diags.error(f'Missing "{key}" in "{name}"', pos, f'A map "{name}" sets both "min" and "max".',
                    hint, context)
    return not unknown and not missing
