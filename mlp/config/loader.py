"""Load an app folder: every `*.hcl` file, merged, into an `App` of typed blocks.

Problems are collected into `Diagnostics`, never raised: one run reports them all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from mlp.coltypes import ColumnType
from mlp.config import blocks as B
from mlp.config.hcl import Attr, Block, ParsedFile, Ref, parse_file
from mlp.config.schema import BACKENDS, BLOCKS, PROVIDERS, Schema
from mlp.config.values import coerce, did_you_mean, parse_var_override, substitute_vars
from mlp.diagnostics import Diagnostics, SourcePos
from mlp.graph.address import NAME_RE, Address, Kind

SINGLETONS = ("provider", "backend", "app")


@dataclass(frozen=True)
class Resolved:
    """A block's attributes after variable substitution and type checks."""

    block: Block
    values: dict[str, Any]
    nested: dict[str, dict[str, Any]]
    attr_pos: dict[str, SourcePos]

    @property
    def context(self) -> str:
        return f'in {self.block.kind} "{self.block.labels[0]}"' if self.block.labels else ""


def app_files(app_dir: Path) -> list[Path]:
    return sorted(p for p in app_dir.glob("*.hcl") if p.is_file())


def parse_app(app_dir: Path, cache_dir: Path | None, diags: Diagnostics) -> list[ParsedFile]:
    files = app_files(app_dir)
    if not files:
        diags.error(f"No .hcl files in {app_dir}", SourcePos(str(app_dir)),
                    "An app is a folder of *.hcl files.", "Run `mlp init` to scaffold one, or pass -C DIR.")
    parsed = [parse_file(p, p.name, cache_dir) for p in files]
    for pf in parsed:
        if pf.syntax_error:
            msg, pos = pf.syntax_error
            diags.error(f"Invalid HCL syntax: {msg}", pos, "The file could not be parsed.",
                        "Check the brackets, quotes and `=` signs near this position.")
        for msg, pos in pf.problems:
            detail = ("Each attribute is set once in a block." if "set twice" in msg else
                      "HCL ends every argument and block with a newline." if "line of its own" in msg
                      else "mlp accepts literals, lists, maps and references (KIND.NAME, var.NAME).")
            diags.error(msg[0].upper() + msg[1:], pos, detail)
        for attr in pf.top_attrs:
            diags.error(f'Unexpected attribute "{attr.name}" at the top level', attr.pos,
                        "Attributes belong inside a block.")
    return parsed


def load_app(app_dir: Path, var_overrides: Mapping[str, str] | None = None,
             cache_dir: Path | None = None) -> tuple[B.App | None, Diagnostics]:
    diags = Diagnostics()
    parsed = parse_app(app_dir, cache_dir, diags)
    all_blocks = [b for pf in parsed for b in pf.blocks]
    variables = _variables(all_blocks, var_overrides or {}, diags)
    app_name = _app_name(all_blocks, app_dir, diags)
    provider = _singleton(all_blocks, "provider", PROVIDERS, variables, diags)
    backend = _singleton(all_blocks, "backend", BACKENDS, variables, diags)
    built: dict[Address, B.BlockConfig] = {}
    for blk in all_blocks:
        if blk.kind in ("variable", "app", "provider", "backend"):
            continue
        if blk.kind not in BLOCKS:
            kinds = sorted(BLOCKS) + ["provider", "backend"]
            diags.error(f'Unknown block kind "{blk.kind}"', blk.pos,
                        "Block kinds are: " + ", ".join(kinds) + ".", did_you_mean(blk.kind, kinds))
            continue
        cfg = _block(blk, variables, diags)
        if cfg is None:
            continue
        if cfg.address in built:
            first = built[cfg.address].pos
            diags.error(f'Duplicate {blk.kind} "{cfg.name}"', blk.pos,
                        f"A {blk.kind} with this name is already declared at {first}.",
                        "Rename one of them: names are unique per kind.")
            continue
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
    app = B.App(app_name, app_dir, built, variables, prov, back, tuple(pf.file for pf in parsed))
    _check_refs(app, diags)
    # Unknown references are reported, but the app is returned so that the graph and
    # type checks can report their problems in the same run.
    return app, diags


def _variables(blocks: list[Block], overrides: Mapping[str, str], diags: Diagnostics) -> dict[str, Any]:
    out: dict[str, Any] = {}
    seen: dict[str, SourcePos] = {}
    for blk in blocks:
        if blk.kind != "variable":
            continue
        if not _labels_ok(blk, 1, diags):
            continue
        name = blk.labels[0]
        if name in seen:
            diags.error(f'Duplicate variable "{name}"', blk.pos,
                        f"It is already declared at {seen[name]}.", "Remove or rename one of them.")
            continue
        seen[name] = blk.pos
        res = _resolve(blk, BLOCKS["variable"], {}, diags)
        if res is None:
            continue
        if name in overrides:
            out[name] = parse_var_override(overrides[name])
        elif "default" in blk.attrs:
            out[name] = res.values.get("default")
        else:
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
    if apps and _labels_ok(apps[0], 1, diags):
        return apps[0].labels[0]
    return app_dir.resolve().name


def _singleton(blocks: list[Block], kind: str, schemas: dict[str, Schema],
               variables: Mapping[str, Any], diags: Diagnostics) -> Resolved | None:
    found = [b for b in blocks if b.kind == kind]
    for extra in found[1:]:
        diags.error(f"More than one {kind} block", extra.pos,
                    f"An app has exactly one {kind} block; the first is at {found[0].pos}.",
                    f"Remove all but one {kind} block.")
    if not found or not _labels_ok(found[0], 1, diags):
        return None
    blk = found[0]
    schema = schemas.get(blk.labels[0])
    if schema is None:
        names = sorted(schemas)
        diags.error(f'Unknown {kind} "{blk.labels[0]}"', blk.pos,
                    f"Known {kind}s: " + ", ".join(names) + ".",
                    did_you_mean(blk.labels[0], names), f'in {kind} "{blk.labels[0]}"')
        return None
    return _resolve(blk, schema, variables, diags)


def _labels_ok(blk: Block, n: int, diags: Diagnostics) -> bool:
    if len(blk.labels) != n:
        diags.error(f'A {blk.kind} block needs {n} label{"s" if n != 1 else ""}', blk.pos,
                    f"Found {len(blk.labels)}.", f'Write: {blk.kind} "NAME" {{ ... }}')
        return False
    return True


def _resolve(blk: Block, schema: Schema, variables: Mapping[str, Any],
             diags: Diagnostics) -> Resolved | None:
    ctx = f'in {blk.kind} "{blk.labels[0]}"' if blk.labels else f"in {blk.kind}"
    ok = True
    values, attr_pos = _attrs(blk.attrs, schema, variables, diags, ctx, "", blk.pos)
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
        sv, sp = _attrs(sub.attrs, sub_schema, variables, diags, ctx, sub.kind + ".", sub.pos)
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
    return Resolved(blk, values, nested, attr_pos)


def _attrs(attrs: Mapping[str, Attr], schema: Schema, variables: Mapping[str, Any], diags: Diagnostics,
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
        value = substitute_vars(attr.value, variables, attr.pos, diags, ctx)
        good, value = coerce(prefix + name, f, value, attr.pos, diags, ctx)
        ok &= good
        values[name] = value
        pos[prefix + name] = attr.pos
    for name, f in schema.attrs.items():
        if name in values:
            continue
        if f.required:
            diags.error(f'Missing required attribute "{prefix}{name}"', block_pos,
                        f'Every block of this kind sets "{name}".', f"Add: {name} = ...", ctx)
            ok = False
        elif f.default is not None:
            values[name] = f.default
    return (values if ok else None), pos


def _ref_address(ref: Ref) -> Address | str:
    """Turn a Ref into an Address, or an error message."""
    if len(ref.parts) != 2:
        return f'"{ref}" is not a reference of the form KIND.NAME'
    try:
        return Address.parse(str(ref))
    except ValueError as e:
        return str(e)


def _block(blk: Block, variables: Mapping[str, Any], diags: Diagnostics) -> B.BlockConfig | None:
    if not _labels_ok(blk, 1, diags):
        return None
    name = blk.labels[0]
    if not NAME_RE.match(name):
        diags.error(f'Invalid name "{name}"', blk.pos,
                    "Names start with a lowercase letter and use a-z, 0-9 and _.",
                    f'Rename it, e.g. "{_suggest_name(name)}".', f'in {blk.kind} "{name}"')
        return None
    res = _resolve(blk, BLOCKS[blk.kind], variables, diags)
    if res is None:
        return None
    refs = _RefConverter(res, diags)
    builder = _BUILDERS[blk.kind]
    cfg = builder(res, refs)
    return None if refs.failed else cfg


def _suggest_name(name: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in name.lower())
    return out if out and out[0].isalpha() else "x_" + out


class _RefConverter:
    def __init__(self, res: Resolved, diags: Diagnostics) -> None:
        self.res, self.diags, self.failed = res, diags, False

    def one(self, attr: str, value: Any, kinds: tuple[str, ...]) -> Address | None:
        if value is None:
            return None
        pos = self.res.attr_pos.get(attr, self.res.block.pos)
        addr = _ref_address(value)
        if isinstance(addr, str):
            self.diags.error(f'Invalid reference in "{attr}"', pos, addr, "", self.res.context)
            self.failed = True
            return None
        if kinds and addr.kind.value not in kinds:
            art = "an" if addr.kind.value[0] in "aeiou" else "a"
            self.diags.error(f'"{attr}" cannot refer to {art} {addr.kind.value}', pos,
                             f'{value} is {art} {addr.kind.value}; "{attr}" takes ' +
                             " or ".join(kinds) + " blocks.", "", self.res.context)
            self.failed = True
            return None
        return addr


def _impl(res: Resolved, refs: _RefConverter, attr: str, kind: str) -> tuple[str, Address | None]:
    v = res.values.get(attr)
    if isinstance(v, Ref):
        return "", refs.one(attr, v, (kind,))
    return (v or ""), None


def _build_source(res: Resolved, refs: _RefConverter) -> B.BlockConfig:
    v = res.values
    return B.Source(Address.of(Kind.SOURCE, res.block.labels[0]), res.block.pos, res.attr_pos,
                    format=v["format"], path=v["path"], header=v["header"], delimiter=v["delimiter"],
                    sample=v["sample"], missing=v["missing"], invalid=v["invalid"])


def _build_raw(res: Resolved, refs: _RefConverter) -> B.BlockConfig:
    v = res.values
    name = res.block.labels[0]
    values = v.get("values")
    return B.RawColumn(Address.of(Kind.RAW_COLUMN, name), res.block.pos, res.attr_pos,
                       source=refs.one("source", v.get("source"), ("source",)),
                       column=v.get("column") or name, type=ColumnType(v["type"]),
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
    return B.Aggregate(Address.of(Kind.AGGREGATE, res.block.labels[0]), res.block.pos, res.attr_pos,
                       aggregator=name, custom=custom, inputs=inputs, args=dict(v.get("args") or {}))


def _build_transformed(res: Resolved, refs: _RefConverter) -> B.BlockConfig:
    v = res.values
    name, custom = _impl(res, refs, "transformer", "transformer")
    inputs = {slot: a for slot, ref in (v.get("inputs") or {}).items()
              if (a := refs.one("inputs", ref, ("raw_column", "transformed_column", "aggregate")))}
    return B.TransformedColumn(Address.of(Kind.TRANSFORMED_COLUMN, res.block.labels[0]), res.block.pos,
                               res.attr_pos, transformer=name, custom=custom, inputs=inputs,
                               args=dict(v.get("args") or {}),
                               model=refs.one("model", v.get("model"), ("model",)))


def _build_model(res: Resolved, refs: _RefConverter) -> B.BlockConfig:
    v = res.values
    name, custom = _impl(res, refs, "estimator", "estimator")
    features = tuple(a for r in v.get("features") or []
                     if (a := refs.one("features", r, ("raw_column", "transformed_column"))))
    return B.Model(Address.of(Kind.MODEL, res.block.labels[0]), res.block.pos, res.attr_pos,
                   type=v["type"], estimator=name, custom=custom,
                   target=refs.one("target", v.get("target"), ("raw_column", "transformed_column")),
                   features=features, hparams=dict(v.get("hparams") or {}),
                   training={k: x for k, x in res.nested.get("training", {}).items() if x is not None},
                   balance=v["balance"],
                   compute={k: x for k, x in res.nested.get("compute", {}).items() if x is not None})


def _build_api(res: Resolved, refs: _RefConverter) -> B.BlockConfig:
    v = res.values
    return B.Api(Address.of(Kind.API, res.block.labels[0]), res.block.pos, res.attr_pos,
                 model=refs.one("model", v.get("model"), ("model",)), replicas=v["replicas"],
                 port=v.get("port"))


def _build_code(res: Resolved, refs: _RefConverter) -> B.BlockConfig:
    v = res.values
    kind = Kind(res.block.kind)
    ot = v.get("output_type")
    return B.CustomCode(Address.of(kind, res.block.labels[0]), res.block.pos, res.attr_pos,
                        path=v["path"], output_type=ColumnType(ot) if ot else None,
                        categorical=bool(v.get("categorical", False)))


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
    for a, c in sorted(built.items()):
        if a.kind is Kind.TRANSFORMED_COLUMN and a.name in raw:
            diags.error(f'Column name "{a.name}" is used twice', c.pos,
                        f'raw_column "{a.name}" ({raw[a.name].pos}) and transformed_column "{a.name}" '
                        "would be the same column of the table.", "Rename the transformed column.",
                        f'in transformed_column "{a.name}"')


def _check_refs(app: B.App, diags: Diagnostics) -> None:
    """Every reference names a declared block; raw columns find their source."""
    names: dict[Kind, list[str]] = {}
    for a in app.blocks:
        names.setdefault(a.kind, []).append(a.name)
    sources = sorted(names.get(Kind.SOURCE, []))
    for cfg in app.blocks.values():
        ctx = f'in {cfg.kind.value} "{cfg.name}"'
        if isinstance(cfg, B.RawColumn) and cfg.source is None and len(sources) != 1:
            diags.error('Missing "source"', cfg.pos,
                        f"The app has {len(sources)} sources, so the raw column must name one.",
                        "Add: source = source.NAME" if sources else 'Declare a source "NAME" { ... } block.',
                        ctx)
        for dep in cfg.deps():
            if dep in app.blocks:
                continue
            hint = did_you_mean(dep.name, sorted(names.get(dep.kind, [])))
            hint = hint.replace('"', f'"{dep.kind.value}.', 1) if hint else \
                f'Declare {dep.kind.value} "{dep.name}" or fix the reference.'
            diags.error(f'Unknown reference "{dep}"', _dep_pos(cfg, dep),
                        f'No {dep.kind.value} named "{dep.name}" is declared.', hint, ctx)


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
