"""Load an app folder: every `*.hcl` file, merged, into an `App` of typed blocks.

The steps: parse the files; read the variables, then the `locals`; expand each block with
`for_each` into one instance per key, `each` set (`mlp.config.expand`); then read every block
or instance against its schema and turn its references into addresses, splats flattened. Problems are collected into `Diagnostics`,
never raised: one run reports them all.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from mlp.coltypes import ColumnType
from mlp.config import blocks as B
from mlp.config.expand import Declared, Instance, expand, labels_ok, locals_of, unique_names
from mlp.config.expand import suggest_name as _suggest_name  # noqa: F401 - tests use it from here
from mlp.config.hcl import Attr, Block, ParsedFile, Problem, ProblemKind, Ref
from mlp.config.parsecache import parse_file
from mlp.config.schema import BACKENDS, BLOCKS, PROVIDERS, Field, Schema
from mlp.config.values import UNSET, Scope, coerce, did_you_mean, parse_var_override, try_evaluate
from mlp.diagnostics import Diagnostic, Diagnostics, SourcePos
from mlp.graph.address import KINDS, Address, Kind, quote_key

SINGLETONS = ("provider", "backend", "app")


@dataclass(frozen=True)
class Resolved:
    """A block's (or an instance's) attributes after evaluation and type checks."""

    block: Block
    values: dict[str, Any]
    nested: dict[str, dict[str, Any]]
    attr_pos: dict[str, SourcePos]
    context: str = ""
    address: Address | None = None


def app_files(app_dir: Path) -> list[Path]:
    return sorted(p for p in app_dir.glob("*.hcl") if p.is_file())


def parse_app(app_dir: Path, cache_dir: Path | None, diags: Diagnostics) -> list[ParsedFile]:
    files = app_files(app_dir)
    if not files:
        diags.error(f"No .hcl files in {app_dir}", SourcePos(str(app_dir)),
                    "An app is a folder of *.hcl files.", "Run `mlp init` to scaffold one, or pass -C DIR.")
    _report_special_hcl(app_dir, diags)
    parsed = [parse_file(p, p.name, cache_dir) for p in files]
    for pf in parsed:
        for problem in ((pf.syntax_error,) if pf.syntax_error else ()) + pf.problems:
            diags.error(problem_summary(problem), problem.pos, problem.detail, _PROBLEM_HINTS[problem.kind])
        for attr in pf.top_attrs:
            diags.error(f'Unexpected attribute "{attr.name}" at the top level', attr.pos,
                        "Attributes belong inside a block.")
    return parsed


def problem_summary(problem: Problem) -> str:
    """The summary line of a parser problem: syntax errors say so; the others are their message."""
    if problem.kind is ProblemKind.SYNTAX:
        return f"Invalid HCL syntax: {problem.message}"
    return problem.message[:1].upper() + problem.message[1:]


_PROBLEM_HINTS: dict[ProblemKind, str] = {
    ProblemKind.NOT_TEXT: "Remove the file from the app folder, or rename it so that its name does not end in .hcl.",
    ProblemKind.NOT_UTF8: "Save the file as UTF-8.",
    ProblemKind.UNREADABLE: "Make it a readable regular file, or remove it from the app folder.",
    ProblemKind.SYNTAX: "Check the brackets, quotes and `=` signs near this position.",
    ProblemKind.TOO_DEEP: "Flatten the value or the blocks: no app needs this much nesting.",
    ProblemKind.SET_TWICE: "Remove one of them.",
    ProblemKind.SAME_LINE: "Start it on a new line.",
    ProblemKind.UNSUPPORTED: "",
    ProblemKind.NUMBER: "Use a smaller number.",
    ProblemKind.ESCAPE: "Write a backslash as \\\\.",
}


def _report_special_hcl(app_dir: Path, diags: Diagnostics) -> None:
    """A *.hcl that is a FIFO, a device or a socket is not read (that could block), but it is reported."""
    from mlp.safeio import special_kind

    for path in sorted(app_dir.glob("*.hcl")):
        what = special_kind(path)
        if what is not None:
            diags.error(f"Cannot read {path.name}", SourcePos(path.name),
                        f"It is {what}, not a regular file: mlp does not read it, since that could block.",
                        _PROBLEM_HINTS[ProblemKind.UNREADABLE])


def load_app(app_dir: Path, var_overrides: Mapping[str, str] | None = None,
             cache_dir: Path | None = None) -> tuple[B.App | None, Diagnostics]:
    diags = Diagnostics()
    parsed = parse_app(app_dir, cache_dir, diags)
    all_blocks = [b for pf in parsed for b in pf.blocks]
    variables = _variables(all_blocks, var_overrides or {}, diags)
    scope = Scope(variables, locals_of(all_blocks, variables, diags))
    app_name = _app_name(all_blocks, app_dir, diags)
    provider = _singleton(all_blocks, "provider", PROVIDERS, scope, diags)
    backend = _singleton(all_blocks, "backend", BACKENDS, scope, diags)
    instances, declared = expand(all_blocks, scope, diags)
    built: dict[Address, B.BlockConfig] = {}
    for inst in unique_names(instances, diags):
        cfg = _block(inst, declared, diags)
        if cfg is not None:
            built[cfg.address] = cfg
    if provider is None and not diags.has_errors():
        diags.error("No provider block", SourcePos(parsed[0].file if parsed else str(app_dir)),
                    "An app needs exactly one provider block.",
                    'Add: provider "local" {}')
    if diags.has_errors() or provider is None:
        return None, diags
    prov = B.ProviderConfig(provider.block.labels[0], provider.block.pos,
                            {**provider.values, **provider.nested})
    back = (B.BackendConfig(backend.block.labels[0], backend.block.pos, backend.values)
            if backend else B.BackendConfig("local", None, {"path": ".mlp"}))
    built = _default_sources(built)
    _check_column_names(built, diags)
    _check_api_fields(built, diags)
    app = B.App(app_name, app_dir, built, variables, prov, back, tuple(pf.file for pf in parsed))
    _check_refs(app, declared, diags)
    # Unknown references are reported, but the app is returned so that the graph and
    # type checks can report their problems in the same run.
    return app, diags


def _variables(blocks: list[Block], overrides: Mapping[str, str], diags: Diagnostics) -> dict[str, Any]:
    out: dict[str, Any] = {}
    seen: dict[str, SourcePos] = {}
    for blk in blocks:
        if blk.kind != "variable":
            continue
        if not labels_ok(blk, 1, diags):
            continue
        name = blk.labels[0]
        if name in seen:
            diags.error(f'Duplicate variable "{name}"', blk.pos,
                        f"It is already declared at {seen[name]}.", "Remove or rename one of them.")
            continue
        seen[name] = blk.pos
        res = _resolve(blk, BLOCKS["variable"], Scope({}), diags)
        if res is None:
            continue
        if name in overrides:
            out[name] = parse_var_override(overrides[name])
        elif "default" in blk.attrs:
            out[name] = res.values.get("default")
        else:
            out[name] = UNSET  # reported here, once; its uses resolve to nothing
            diags.error(f'No value for variable "{name}"', blk.pos,
                        "The variable has no default and was not set on the command line.",
                        f"Pass --var {name}=VALUE or add a default.", f'in variable "{name}"')
    for name in overrides:
        if name not in seen:
            diags.error(f'Unknown variable "{name}" given with --var', None,
                        "The app declares no such variable.", did_you_mean(name, sorted(seen)))
    return out


def _app_name(blocks: list[Block], app_dir: Path, diags: Diagnostics) -> str:
    apps = [b for b in blocks if b.kind == "app"]
    for extra in apps[1:]:
        diags.error("More than one app block", extra.pos,
                    f"The app is already named at {apps[0].pos}.", "Keep one app block.")
    if apps and labels_ok(apps[0], 1, diags):
        return apps[0].labels[0]
    return app_dir.resolve().name


def _singleton(blocks: list[Block], kind: str, schemas: dict[str, Schema],
               scope: Scope, diags: Diagnostics) -> Resolved | None:
    found = [b for b in blocks if b.kind == kind]
    for extra in found[1:]:
        diags.error(f"More than one {kind} block", extra.pos,
                    f"An app has exactly one {kind} block; the first is at {found[0].pos}.",
                    f"Remove all but one {kind} block.")
    if not found or not labels_ok(found[0], 1, diags):
        return None
    blk = found[0]
    schema = schemas.get(blk.labels[0])
    if schema is None:
        names = sorted(schemas)
        diags.error(f'Unknown {kind} "{blk.labels[0]}"', blk.pos,
                    f"Known {kind}s: " + ", ".join(names) + ".",
                    did_you_mean(blk.labels[0], names), f'in {kind} "{blk.labels[0]}"')
        return None
    return _resolve(blk, schema, scope, diags)


def _resolve(blk: Block, schema: Schema, scope: Scope, diags: Diagnostics,
             address: Address | None = None) -> Resolved | None:
    ctx = address.context if address else f'in {blk.kind} "{blk.labels[0]}"' if blk.labels else f"in {blk.kind}"
    values, attr_pos = _attrs(blk.attrs, schema, scope, diags, ctx, "", blk.pos)
    ok = values is not None
    nested: dict[str, dict[str, Any]] = {}
    for sub in blk.blocks:
        sub_schema = schema.blocks.get(sub.kind)
        if sub_schema is None:
            diags.error(f'Unexpected block "{sub.kind}"', sub.pos,
                        f"A {blk.kind} block has no {sub.kind} block." +
                        (" It accepts: " + ", ".join(sorted(schema.blocks)) + "." if schema.blocks else ""),
                        did_you_mean(sub.kind, sorted(schema.blocks) + sorted(schema.attrs)), ctx)
            ok = False
            continue
        if sub.kind in nested:
            diags.error(f'Duplicate "{sub.kind}" block', sub.pos, "It may appear once.", "", ctx)
            ok = False
            continue
        sv, sp = _attrs(sub.attrs, sub_schema, scope, diags, ctx, sub.kind + ".", sub.pos)
        if sv is None:
            ok = False
            continue
        nested[sub.kind] = sv
        attr_pos.update(sp)
        attr_pos[sub.kind] = sub.pos
    for name, sub_schema in schema.blocks.items():
        nested.setdefault(name, {k: f.default for k, f in sub_schema.attrs.items() if f.default is not None})
    if not ok or values is None:
        return None
    return Resolved(blk, values, nested, attr_pos, ctx, address)


def _attrs(attrs: Mapping[str, Attr], schema: Schema, scope: Scope, diags: Diagnostics,
           ctx: str, prefix: str, block_pos: SourcePos) -> tuple[dict[str, Any] | None, dict[str, SourcePos]]:
    values: dict[str, Any] = {}
    pos: dict[str, SourcePos] = {}
    ok = True
    for name, attr in attrs.items():
        f = schema.attrs.get(name)
        if f is None:
            known = sorted(schema.attrs) + sorted(schema.blocks)
            hint = did_you_mean(name, known)
            if name in schema.blocks:
                hint = f"{name} is a block: write {name} {{ ... }} without `=`."
            diags.error(f'Unknown attribute "{prefix}{name}"', attr.pos,
                        "Accepted here: " + ", ".join(known) + ".", hint, ctx)
            ok = False
            continue
        key = prefix + name
        done, value = try_evaluate(attr.value, scope, attr.pos, diags, ctx)
        good, value = coerce(key, f, value, attr.pos, diags, ctx)
        ok &= good and done
        values[name] = value
        pos[key] = attr.pos
    for name, f in _to_fill(schema):
        if name in values:
            continue
        if f.required:
            diags.error(f'Missing required attribute "{prefix}{name}"', block_pos,
                        f'Every block of this kind sets "{name}".', f"Add: {name} = ...", ctx)
            ok = False
        else:
            values[name] = f.default
    return (values if ok else None), pos


_FILLS: dict[int, tuple[Schema, list[tuple[str, Field]]]] = {}


def _to_fill(schema: Schema) -> list[tuple[str, Field]]:
    """The attributes of `schema` that an absent value means something for: required (an error)
    or with a default; in schema order. Kept per schema (schemas are constants), held so that
    their ids stay theirs."""
    found = _FILLS.get(id(schema))
    if found is None or found[0] is not schema:
        found = _FILLS[id(schema)] = (schema, [(n, f) for n, f in schema.attrs.items()
                                               if f.required or f.default is not None])
    return found[1]


def _ref_address(ref: Ref) -> Address | str:
    """Turn a Ref (its index evaluated to a key) into an Address, or an error message."""
    if len(ref.parts) != 2:
        return f'"{ref}" is not a reference of the form KIND.NAME'
    try:
        addr = Address.parse(".".join(ref.parts))
    except ValueError as e:
        return str(e)
    if isinstance(ref.index, str):
        return Address.instance(addr.kind, addr.name, ref.index)
    return addr


def _block(inst: Instance, declared: Declared, diags: Diagnostics) -> B.BlockConfig | None:
    """The typed block of one block or instance. The instances of a block share its text, so a
    problem they all have is reported once."""
    mine = Diagnostics() if inst.address.key is not None else diags
    res = _resolve(inst.block, BLOCKS[inst.block.kind], inst.scope, mine, inst.address)
    cfg = None
    if res is not None:
        refs = _RefConverter(res, declared, mine)
        built = _BUILDERS[inst.block.kind](res, refs)
        cfg = None if refs.failed else built
    if mine is not diags:
        _add_new(diags, mine.items)
    return cfg


def _add_new(diags: Diagnostics, found: list[Diagnostic]) -> None:
    said = {(d.summary, d.pos, d.detail, d.hint) for d in diags.items}
    for d in found:
        if (d.summary, d.pos, d.detail, d.hint) not in said:
            diags.items.append(d)
            said.add((d.summary, d.pos, d.detail, d.hint))


class _RefConverter:
    """References of one block to addresses; `failed` once one is wrong (each is reported)."""

    def __init__(self, res: Resolved, declared: Declared, diags: Diagnostics) -> None:
        self.res, self.declared, self.diags, self.failed = res, declared, diags, False

    def error(self, summary: str, attr: str, detail: str, hint: str = "") -> None:
        self.diags.error(summary, self.res.attr_pos.get(attr, self.res.block.pos), detail, hint, self.res.context)
        self.failed = True

    def one(self, attr: str, value: Any, kinds: tuple[str, ...]) -> Address | None:
        if value is None:
            return None
        if isinstance(value, Ref) and value.splat:
            self.error(f'"{attr}" takes one reference', attr, f"{value} is the list of every instance of "
                       f"{Ref(value.parts)}.", f'Refer to one instance: {Ref(value.parts)}["KEY"].')
            return None
        addr = _ref_address(value)
        if isinstance(addr, str):
            self.error(f'Invalid reference in "{attr}"', attr, addr)
            return None
        return addr if self.kind_ok(attr, addr, value, kinds) else None

    def many(self, attr: str, value: Any, kinds: tuple[str, ...]) -> tuple[Address, ...]:
        """A list of references and splats, flattened: a splat is every instance, in key order."""
        out: list[Address] = []
        for ref in [value] if isinstance(value, Ref) else list(value or []):
            if isinstance(ref, Ref) and ref.splat:
                out.extend(self.splat(attr, ref, kinds))
            elif (a := self.one(attr, ref, kinds)) is not None:
                out.append(a)
        seen: set[Address] = set()
        twice: set[Address] = set()
        for a in out:
            (twice if a in seen else seen).add(a)
        for a in sorted(twice):
            self.error(f'"{attr}" lists {a} twice', attr, "Each column is one input of the model.",
                       f"Remove the repeat (a splat {a.kind.value}.{a.block}[*] already lists every instance)."
                       if a.key is not None else "Remove the repeat.")
        return tuple(out)

    def splat(self, attr: str, ref: Ref, kinds: tuple[str, ...]) -> list[Address]:
        block = _ref_address(Ref(ref.parts))
        if isinstance(block, str):
            self.error(f'Invalid reference in "{attr}"', attr, block)
            return []
        if not self.kind_ok(attr, block, ref, kinds) or (block.kind, block.name) in self.declared.broken:
            return []
        if (block.kind, block.name) not in self.declared.keys:
            hint = did_you_mean(block.name, self.declared.names(block.kind))
            self.error(f'Unknown reference "{ref}"', attr, f'No {block.kind.value} named "{block.name}" is declared.',
                       hint.replace('"', f'"{block.kind.value}.', 1).replace('"?', '[*]"?') if hint else "")
            return []
        keys = self.declared.keys[(block.kind, block.name)]
        if keys is None:
            self.error(f'"{ref}" is a splat of a block without for_each', attr,
                       f"{block.described} has no for_each, so it has no instances: [*] lists the instances "
                       "of a block with for_each.", f"Write {block}.")
            return []
        return [Address.instance(block.kind, block.name, k) for k in keys]

    def kind_ok(self, attr: str, addr: Address, value: Any, kinds: tuple[str, ...]) -> bool:
        if not kinds or addr.kind.value in kinds:
            return True
        art = "an" if addr.kind.value[0] in "aeiou" else "a"
        self.error(f'"{attr}" cannot refer to {art} {addr.kind.value}', attr,
                   f'{value} is {art} {addr.kind.value}; "{attr}" takes ' + " or ".join(kinds) + " blocks.")
        return False


def _address(res: Resolved) -> Address:
    return res.address or Address.of(KINDS[res.block.kind], res.block.labels[0])


def _impl(res: Resolved, refs: _RefConverter, attr: str, kind: str) -> tuple[str, Address | None]:
    v = res.values.get(attr)
    if isinstance(v, Ref):
        return "", refs.one(attr, v, (kind,))
    return (v or ""), None


def _build_source(res: Resolved, refs: _RefConverter) -> B.BlockConfig:
    v = res.values
    return B.Source(_address(res), res.block.pos, res.attr_pos,
                    format=v["format"], path=v["path"], header=v["header"], delimiter=v["delimiter"],
                    sample=v["sample"], missing=v["missing"], invalid=v["invalid"])


def _build_raw(res: Resolved, refs: _RefConverter) -> B.BlockConfig:
    v = res.values
    addr = _address(res)
    values = v.get("values")
    return B.RawColumn(addr, res.block.pos, res.attr_pos,
                       source=refs.one("source", v.get("source"), ("source",)),
                       column=v.get("column") or addr.key or addr.name, type=ColumnType(v["type"]),
                       required=v["required"], min=v.get("min"), max=v.get("max"),
                       values=tuple(values) if values is not None else None)


def _build_aggregate(res: Resolved, refs: _RefConverter) -> B.BlockConfig:
    v = res.values
    name, custom = _impl(res, refs, "aggregator", "aggregator")
    inputs: dict[str, Address] = {}
    if v.get("input") is not None:
        a = refs.one("input", v["input"], ("raw_column", "transformed_column"))
        if a:
            inputs["column"] = a
    for slot, ref in (v.get("inputs") or {}).items():
        a = refs.one("inputs", ref, ("raw_column", "transformed_column"))
        if a:
            inputs[slot] = a
    return B.Aggregate(_address(res), res.block.pos, res.attr_pos,
                       aggregator=name, custom=custom, inputs=inputs, args=dict(v.get("args") or {}))


def _build_transformed(res: Resolved, refs: _RefConverter) -> B.BlockConfig:
    v = res.values
    name, custom = _impl(res, refs, "transformer", "transformer")
    inputs = {slot: a for slot, ref in (v.get("inputs") or {}).items()
              if (a := refs.one("inputs", ref, ("raw_column", "transformed_column", "aggregate")))}
    return B.TransformedColumn(_address(res), res.block.pos, res.attr_pos, transformer=name, custom=custom, inputs=inputs,
                               args=dict(v.get("args") or {}),
                               model=refs.one("model", v.get("model"), ("model",)))


def _build_model(res: Resolved, refs: _RefConverter) -> B.BlockConfig:
    v = res.values
    name, custom = _impl(res, refs, "estimator", "estimator")
    features = refs.many("features", v.get("features"), ("raw_column", "transformed_column"))
    return B.Model(_address(res), res.block.pos, res.attr_pos,
                   type=v["type"], estimator=name, custom=custom,
                   target=refs.one("target", v.get("target"), ("raw_column", "transformed_column")),
                   features=features, hparams=dict(v.get("hparams") or {}),
                   training={k: x for k, x in res.nested.get("training", {}).items() if x is not None},
                   balance=v["balance"],
                   compute={k: x for k, x in res.nested.get("compute", {}).items() if x is not None})


def _build_api(res: Resolved, refs: _RefConverter) -> B.BlockConfig:
    v = res.values
    return B.Api(_address(res), res.block.pos, res.attr_pos,
                 model=refs.one("model", v.get("model"), ("model",)), replicas=v["replicas"],
                 port=v.get("port"), promote=v["promote"], tolerance=v["tolerance"],
                 max_body_bytes=v["max_body_bytes"])


def _build_code(res: Resolved, refs: _RefConverter) -> B.BlockConfig:
    v = res.values
    ot = v.get("output_type")
    return B.CustomCode(_address(res), res.block.pos, res.attr_pos,
                        path=v["path"], output_type=ColumnType(ot) if ot else None,
                        categorical=bool(v.get("categorical", False)),
                        inputs=tuple(v["inputs"]) if v.get("inputs") is not None else None)


_BUILDERS: dict[str, Callable[[Resolved, _RefConverter], B.BlockConfig]] = {
    "source": _build_source, "raw_column": _build_raw, "aggregate": _build_aggregate,
    "transformed_column": _build_transformed, "model": _build_model, "api": _build_api,
    "aggregator": _build_code, "transformer": _build_code, "estimator": _build_code,
}


def _default_sources(built: dict[Address, B.BlockConfig]) -> dict[Address, B.BlockConfig]:
    """A raw column without `source` belongs to the app's only source."""
    sources = [a for a in built if a.kind is Kind.SOURCE]
    if len(sources) != 1:
        return built
    return {a: (replace(c, source=sources[0]) if isinstance(c, B.RawColumn) and c.source is None else c)
            for a, c in built.items()}


def _check_column_names(built: Mapping[Address, B.BlockConfig], diags: Diagnostics) -> None:
    """Raw and transformed columns share one namespace: they are the columns of a table."""
    raw = {a.name: c for a, c in built.items() if a.kind is Kind.RAW_COLUMN}
    for a in sorted(a for a in built if a.kind is Kind.TRANSFORMED_COLUMN and a.name in raw):
        diags.error(f'Column name "{a.name}" is used twice', built[a].pos,
                    f"{raw[a.name].address.described} ({raw[a.name].pos}) and {a.described} "
                    "would be the same column of the table.", "Rename the transformed column.", a.context)


def _check_api_fields(built: Mapping[Address, B.BlockConfig], diags: Diagnostics) -> None:
    """Raw columns that would take the same field of a prediction request read the same column."""
    first: dict[str, B.RawColumn] = {}
    raws = {a: c for a, c in built.items() if isinstance(c, B.RawColumn)}
    for a in sorted(raws):
        c = raws[a]
        other = first.setdefault(c.api_field, c)
        if other.column != c.column:
            diags.error(f'{other.address} and {a} take the same API field "{c.api_field}"', c.pos,
                        f'They read the columns "{other.column}" ({other.pos}) and "{c.column}", but a prediction '
                        f'request has one field "{c.api_field}" for both (an instance\'s field is its column, '
                        "a block's its name).", "Rename the block, or read the same column.", a.context)


def _check_refs(app: B.App, declared: Declared, diags: Diagnostics) -> None:
    """Every reference names a declared block, or one of its instances; raw columns find their source.
    What the instances of a block all get wrong is reported once."""
    found = Diagnostics()
    _find_bad_refs(app, declared, found)
    _add_new(diags, found.items)


def _find_bad_refs(app: B.App, declared: Declared, diags: Diagnostics) -> None:
    sources = declared.names(Kind.SOURCE)
    for cfg in app.blocks.values():
        ctx = cfg.address.context
        if isinstance(cfg, B.RawColumn) and cfg.source is None and len(sources) != 1:
            diags.error('Missing "source"', cfg.pos,
                        f"The app has {len(sources)} sources, so the raw column must name one.",
                        "Add: source = source.NAME" if sources else 'Declare a source "NAME" { ... } block.',
                        ctx)
        for dep in cfg.deps():
            if dep not in app.blocks:
                summary, detail, hint = _unknown(dep, declared)
                diags.error(summary, _dep_pos(cfg, dep), detail, hint, ctx)


def _unknown(dep: Address, declared: Declared) -> tuple[str, str, str]:
    """What is wrong with a reference to no block: (summary, detail, hint)."""
    kind, block = dep.kind.value, dep.block
    if (dep.kind, block) not in declared.keys:
        hint = did_you_mean(block, declared.names(dep.kind))
        hint = hint.replace('"', f'"{kind}.', 1) if hint else f'Declare {kind} "{block}" or fix the reference.'
        return f'Unknown reference "{dep}"', f'No {kind} named "{block}" is declared.', hint
    keys = declared.keys[(dep.kind, block)]
    if keys is None:
        return (f'Invalid reference "{dep}"', f'{kind} "{block}" has no for_each, so it has no instances.',
                f"Write {kind}.{block}.")
    if dep.key is None:
        some = f'{kind}.{block}[{quote_key(keys[0])}]' if keys else f'{kind}.{block}["KEY"]'
        return (f'Missing instance key in "{dep}"', f'{kind} "{block}" has for_each: it has one instance per key.',
                f"Refer to one instance, e.g. {some} or {kind}.{block}[each.key], or to all of them: "
                f"{kind}.{block}[*].")
    close = difflib.get_close_matches(dep.key, list(keys), n=1, cutoff=0.6)
    shown = ", ".join(quote_key(k) for k in keys[:_SHOWN_KEYS]) + (", ..." if len(keys) > _SHOWN_KEYS else "")
    return (f'Unknown reference "{dep}"',
            f'{kind} "{block}" has no instance with the key {quote_key(dep.key)}; its keys: {shown or "none"}.',
            f"Did you mean {kind}.{block}[{quote_key(close[0])}]?" if close else "Use one of its keys.")


_SHOWN_KEYS = 10


def _dep_pos(cfg: B.BlockConfig, dep: Address) -> SourcePos:
    for attr in ("source", "input", "inputs", "target", "features", "model", "aggregator",
                 "transformer", "estimator"):
        if attr in cfg.attr_pos and _mentions(cfg, attr, dep):
            return cfg.attr_pos[attr]
    return cfg.pos


def _mentions(cfg: B.BlockConfig, attr: str, dep: Address) -> bool:
    value = getattr(cfg, attr, None) if attr not in ("input",) else getattr(cfg, "inputs", {}).get("column")
    if isinstance(value, Address):
        return value == dep
    if isinstance(value, tuple):
        return dep in value
    if isinstance(value, Mapping):
        return dep in value.values()
    if attr in ("aggregator", "transformer", "estimator"):
        return getattr(cfg, "custom", None) == dep
    return False
