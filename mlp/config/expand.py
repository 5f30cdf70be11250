"""From declared blocks to the blocks to build: `locals`, and `for_each` expanded.

`locals_of` evaluates every `locals` block (in dependency order, a cycle reported naming it).
`expand` turns each block with `for_each` into one `Instance` per key, sorted by key, with
`each` in its scope and the address `KIND.NAME["KEY"]`; a block without is one instance of
itself. `unique_names` reports instances whose internal names (`NAME__KEY`) collide.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from typing import Any, Mapping

from mlp.config.hcl import Attr, Block
from mlp.config.schema import BLOCKS, FOR_EACH_KINDS
from mlp.config.values import Each, Scope, describe, did_you_mean, resolve_locals, try_evaluate
from mlp.diagnostics import Diagnostics, SourcePos
from mlp.graph.address import KINDS, NAME_RE, Address, Kind, quote_key

NOT_BUILT = ("variable", "app", "provider", "backend", "locals")


@dataclass(frozen=True)
class Instance:
    """A block to build: a declared block, or one instance of a block with for_each (`for_each`
    removed from its attributes, `each` in its scope)."""

    address: Address
    block: Block
    scope: Scope


@dataclass(frozen=True)
class Declared:
    """Every declared block by (kind, name): the sorted keys of a block with for_each, None for a
    block without. `broken` holds the blocks whose for_each could not be evaluated (reported)."""

    keys: Mapping[tuple[Kind, str], tuple[str, ...] | None]
    broken: frozenset[tuple[Kind, str]] = frozenset()

    def names(self, kind: Kind) -> list[str]:
        return sorted(n for k, n in self.keys if k is kind)


# -- locals ---------------------------------------------------------------------------------------


def locals_of(blocks: list[Block], variables: Mapping[str, Any], diags: Diagnostics) -> dict[str, Any]:
    """Every `locals` block's values, merged: each name once."""
    attrs: dict[str, Attr] = {}
    for blk in (b for b in blocks if b.kind == "locals"):
        if blk.labels:
            diags.error("A locals block has no labels", blk.pos, f"Found {len(blk.labels)}.",
                        "Write: locals { NAME = value }")
        for sub in blk.blocks:
            diags.error(f'Unexpected block "{sub.kind}" in locals', sub.pos,
                        "A locals block holds values: NAME = value.", f"Write: {sub.kind} = {{ ... }}")
        for name, attr in blk.attrs.items():
            if name in attrs:
                diags.error(f'Duplicate local value "{name}"', attr.pos, f"It is already set at {attrs[name].pos}.",
                            "Remove or rename one of them: each local value is set once.", f'in local "{name}"')
                continue
            attrs[name] = attr
    return resolve_locals(attrs, variables, diags)


# -- for_each -------------------------------------------------------------------------------------


def expand(blocks: list[Block], scope: Scope, diags: Diagnostics) -> tuple[list[Instance], Declared]:
    """Every block to build, a block with for_each as one instance per key, sorted by key."""
    out: list[Instance] = []
    keys: dict[tuple[Kind, str], tuple[str, ...] | None] = {}
    first: dict[tuple[Kind, str], SourcePos] = {}
    broken: set[tuple[Kind, str]] = set()
    for blk in blocks:
        if blk.kind in NOT_BUILT or not _declaration_ok(blk, diags):
            continue
        kind, name = KINDS[blk.kind], blk.labels[0]
        if (kind, name) in first:
            diags.error(f'Duplicate {blk.kind} "{name}"', blk.pos,
                        f"A {blk.kind} with this name is already declared at {first[(kind, name)]}.",
                        "Rename one of them: names are unique per kind.")
            continue
        first[(kind, name)] = blk.pos
        if "for_each" not in blk.attrs:
            keys[(kind, name)] = None
            out.append(Instance(Address.of(kind, name), blk, scope))
            continue
        each = _for_each(blk, scope, diags)
        keys[(kind, name)] = tuple(sorted(each or {}))
        if each is None:
            broken.add((kind, name))
            continue
        plain = replace(blk, attrs={k: a for k, a in blk.attrs.items() if k != "for_each"})
        out.extend(Instance(Address.instance(kind, name, k), plain, replace(scope, each=Each(k, each[k])))
                   for k in sorted(each))
    return out, Declared(keys, frozenset(broken))


def _declaration_ok(blk: Block, diags: Diagnostics) -> bool:
    if blk.kind not in BLOCKS:
        kinds = sorted(BLOCKS) + ["provider", "backend"]
        diags.error(f'Unknown block kind "{blk.kind}"', blk.pos,
                    "Block kinds are: " + ", ".join(kinds) + ".", did_you_mean(blk.kind, kinds))
        return False
    if not labels_ok(blk, 1, diags):
        return False
    name = blk.labels[0]
    if not NAME_RE.match(name):
        diags.error(f'Invalid name "{name}"', blk.pos,
                    "Names start with a lowercase letter and use a-z, 0-9 and _.",
                    f'Rename it, e.g. "{suggest_name(name)}".', f'in {blk.kind} "{name}"')
        return False
    return True


def _for_each(blk: Block, scope: Scope, diags: Diagnostics) -> dict[str, Any] | None:
    """The instances' keys and each.value; None when for_each is wrong (reported) or unset."""
    attr, ctx = blk.attrs["for_each"], f'in {blk.kind} "{blk.labels[0]}"'
    if blk.kind not in FOR_EACH_KINDS:
        diags.error(f'"for_each" is not accepted in a {blk.kind} block', attr.pos,
                    "for_each repeats raw_column, aggregate and transformed_column blocks.",
                    f"Remove for_each, and write one {blk.kind} block per instance.", ctx)
        return None
    done, value = try_evaluate(attr.value, scope, attr.pos, diags, ctx)
    if not done:
        return None  # reported, or an unset variable (reported where it is declared)
    if isinstance(value, list):
        return _for_each_list(value, attr.pos, diags, ctx)
    if isinstance(value, dict):
        return _for_each_map(value, attr.pos, diags, ctx)
    diags.error('Invalid "for_each"', attr.pos,
                f"for_each takes a list or set of strings, or a map, not {describe(value)}.",
                'Write for_each = toset(["a", "b"]) or for_each = { a = ..., b = ... }', ctx)
    return None


def _for_each_list(value: list[Any], pos: SourcePos, diags: Diagnostics, ctx: str) -> dict[str, Any] | None:
    seen: set[str] = set()
    for i, key in enumerate(value):
        if not isinstance(key, str) or not key:
            what = "an empty string" if key == "" else describe(key)
            diags.error('Invalid "for_each"', pos, f"Element {i} of the list is {what}: instance keys are "
                        "non-empty strings.", 'Write for_each = toset(["a", "b"]).', ctx)
            return None
        if key in seen:
            diags.error(f'Duplicate key {quote_key(key)} in "for_each"', pos,
                        f"The list holds {quote_key(key)} more than once; each key makes one instance.",
                        "Remove the repeat, or write toset([...]), which keeps each string once.", ctx)
            return None
        seen.add(key)
    return {k: k for k in value}  # as in Terraform, each.value of a list or set is the key


def _for_each_map(value: dict[str, Any], pos: SourcePos, diags: Diagnostics, ctx: str) -> dict[str, Any] | None:
    if "" in value:
        diags.error('Invalid "for_each"', pos, "The map has an empty key: instance keys are non-empty strings.",
                    "Give the entry a key.", ctx)
        return None
    return dict(value)


def unique_names(instances: list[Instance], diags: Diagnostics) -> list[Instance]:
    """The instances whose name (the column, table or input name) no other block of the kind has."""
    seen: dict[tuple[Kind, str], Instance] = {}
    out: list[Instance] = []
    for inst in instances:
        a = inst.address
        other = seen.setdefault((a.kind, a.name), inst)
        if other is inst:
            out.append(inst)
            continue
        b, same = other.address, other.block is inst.block
        how = ('a key becomes part of a name in lower case, each run of characters other than a-z and 0-9 '
               'as "_"' if same else f"an instance is named BLOCK__KEY; the other is at {other.block.pos}")
        hint = ("Use keys that differ in their letters or digits." if same else
                f"Rename {(b if b.key is None else a).described}.")
        diags.error(f"{b.described} and {a.described} have the same name", inst.block.pos,
                    f'Both would be named "{a.name}" in tables and models ({how}).', hint, a.context)
    return out


def labels_ok(blk: Block, n: int, diags: Diagnostics) -> bool:
    if len(blk.labels) != n:
        diags.error(f'A {blk.kind} block needs {n} label{"s" if n != 1 else ""}', blk.pos,
                    f"Found {len(blk.labels)}.", f'Write: {blk.kind} "NAME" {{ ... }}')
        return False
    return True


_LATIN = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th"})


def suggest_name(name: str) -> str:
    """A valid name close to `name`: accents dropped (NFKD), anything else outside a-z0-9 as `_`."""
    text = unicodedata.normalize("NFKD", name.lower().translate(_LATIN))
    out = re.sub(r"[^a-z0-9]+", "_", text.encode("ascii", "ignore").decode()).strip("_")
    return out if out[:1].isalpha() else ("x_" + out if out else "x")
