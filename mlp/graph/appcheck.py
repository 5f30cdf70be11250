"""What the app's own files already say, checked at validate, before any job starts.

- A local CSV source with a header: each raw column's `column` is one of the header's
  names, with "did you mean" (the header line is all that is read).
- Custom code: each file is compiled, never run, so a syntax error is reported with the
  file's line; it must define the function its kind calls (`transform`,
  `aggregate_spark`, `create_model`), found by reading its syntax tree.
- A custom transformer or aggregator may declare its input names (`inputs = [...]`): its
  code reads no other `inputs["KEY"]` (read from the syntax tree), and each use gives exactly
  those. Without a declaration, each use gives every input the code reads. Both with
  "did you mean".
- A raw or transformed column that no block uses is a warning: it is still built.

Files are read through `mlp.safeio`, so a FIFO or a device is never opened.
"""

from __future__ import annotations

import ast
import csv
import difflib
import io
from pathlib import Path

from mlp.config import blocks as B
from mlp.config.values import did_you_mean
from mlp.diagnostics import Diagnostics
from mlp.graph.address import Address, Kind
from mlp.graph.dag import Graph
from mlp.graph.datahash import data_files
from mlp.safeio import open_regular, read_regular

HEADER_BYTES = 1 << 16  # a header line longer than this is not read
CODE_BYTES = 1 << 22
FUNCTIONS = {Kind.AGGREGATOR: "aggregate_spark(df, inputs, args)", Kind.TRANSFORMER: "transform(inputs, args)",
             Kind.ESTIMATOR: "create_model(features, target, hparams)"}


def check_files(app: B.App, graph: Graph, diags: Diagnostics) -> None:
    trees: dict[str, ast.Module] = {}
    for cfg in app.blocks.values():
        if isinstance(cfg, B.Source):
            _header(app, cfg, diags)
        elif isinstance(cfg, B.CustomCode):
            tree = _code(app, cfg, diags)
            if tree is not None:
                trees[str(cfg.address)] = tree
    _inputs_read(app, trees, diags)
    if not diags.has_errors():  # a column whose use is a broken reference is not "unused"
        _unused(app, graph, diags)


def header_of(app: B.App, source: B.Source) -> tuple[Path, list[str]] | None:
    """The first data file of a local CSV source with a header, and its column names."""
    if source.format != "csv" or not source.header or "://" in source.path:
        return None
    try:
        files = data_files(app.dir, source.path).files
        if not files:
            return None
        with open_regular(files[0]) as (fh, _):
            line = fh.readline(HEADER_BYTES)
    except OSError:
        return None  # ingest says why it cannot read it
    text = line.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    names = next(csv.reader(io.StringIO(text), delimiter=source.delimiter or ","), [])
    return files[0], [n.strip() for n in names]


def _header(app: B.App, source: B.Source, diags: Diagnostics) -> None:
    found = header_of(app, source)
    if found is None:
        return
    path, names = found
    shown = path.relative_to(app.dir) if path.is_relative_to(app.dir) else path
    for cfg in sorted(app.blocks.values(), key=lambda c: c.address):
        if not isinstance(cfg, B.RawColumn) or cfg.source != source.address or cfg.column in names:
            continue
        listed = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        diags.error(f'No column "{cfg.column}" in the header of {shown}', cfg.where("column"),
                    f"The file's columns are: {listed}.",
                    did_you_mean(cfg.column, names) or 'Set column = "NAME" to the file\'s name for it.',
                    f"in {cfg.address}")


def _code(app: B.App, code: B.CustomCode, diags: Diagnostics) -> ast.Module | None:
    """The file's syntax tree once it compiles and defines its function; None otherwise."""
    path = app.dir / code.path
    try:
        text = read_regular(path, CODE_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # the code's fingerprint reports a missing or unreadable file
    where, ctx = code.where("path"), f"in {code.address}"
    try:
        tree = ast.parse(text, filename=code.path)
        compile(tree, code.path, "exec", dont_inherit=True)  # a code object, never run: `return` outside a def
    except SyntaxError as e:
        diags.error(f"Syntax error in {code.path}", where, f"{code.path}:{e.lineno}:{e.offset or 0}: {e.msg}",
                    "Fix the Python syntax. mlp compiles custom code at validate; it never runs it then.", ctx)
        return None
    except (ValueError, RecursionError, MemoryError) as e:
        diags.error(f"{code.path} cannot be compiled", where, f"{type(e).__name__}: {str(e)[:200]}", "", ctx)
        return None
    wanted = FUNCTIONS[code.kind]
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if wanted.split("(")[0] not in defined:
        diags.error(f"{code.path} defines no {wanted}", where,
                    f"A {code.kind.value} file defines {wanted} at its top level"
                    + (f"; it defines {', '.join(sorted(defined))}." if defined else "; it defines no function."),
                    _rename(wanted.split("(")[0], sorted(defined)) or f"Add: def {wanted}: ...", ctx)
        return None
    return tree


def _rename(name: str, defined: list[str]) -> str:
    close = difflib.get_close_matches(name, defined, n=1, cutoff=0.6)
    return f"Rename {close[0]} to {name}." if close else ""


_INPUTS_PARAM = {Kind.TRANSFORMER: ("transform", 0), Kind.AGGREGATOR: ("aggregate_spark", 1)}


def reads(tree: ast.Module, function: str, param_index: int = 0) -> dict[str, int]:
    """The keys `function` reads from its inputs parameter (the `param_index`th) as
    `inputs["KEY"]`, each with its first line."""
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function), None)
    if fn is None or len(fn.args.args) <= param_index:
        return {}
    param = fn.args.args[param_index].arg
    out: dict[str, int] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == param \
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            out.setdefault(node.slice.value, node.lineno)
    return out


def _inputs_read(app: B.App, trees: dict[str, ast.Module], diags: Diagnostics) -> None:
    """A custom transformer's or aggregator's declared `inputs` hold every name its code reads,
    and each use gives exactly those; without a declaration, each use gives every name the
    code reads."""
    read_by: dict[Address, dict[str, int]] = {}
    for cfg in sorted(app.blocks.values(), key=lambda c: c.address):
        if isinstance(cfg, B.CustomCode) and cfg.kind in _INPUTS_PARAM and str(cfg.address) in trees:
            function, index = _INPUTS_PARAM[cfg.kind]
            read_by[cfg.address] = reads(trees[str(cfg.address)], function, index)
            if cfg.inputs is not None:
                _declared_covers_reads(cfg, read_by[cfg.address], diags)
    for cfg in sorted(app.blocks.values(), key=lambda c: c.address):
        if not isinstance(cfg, (B.TransformedColumn, B.Aggregate)) or cfg.custom is None:
            continue
        code = app.blocks.get(cfg.custom)
        if not isinstance(code, B.CustomCode):
            continue
        if code.inputs is not None:
            _use_matches_declared(cfg, code, diags)
        elif cfg.custom in read_by:
            _use_gives_reads(cfg, code, read_by[cfg.custom], diags)


def _declared_covers_reads(code: B.CustomCode, read: dict[str, int], diags: Diagnostics) -> None:
    declared = list(code.inputs or ())
    for key, line in sorted(read.items(), key=lambda kv: kv[1]):
        if key not in declared:
            diags.error(f'{code.path}:{line} reads inputs["{key}"], which {code.address} does not declare',
                        code.where("inputs"), f"{code.address} declares inputs: {', '.join(declared) or 'none'}.",
                        did_you_mean(key, declared) or f'Add "{key}" to its inputs, or fix {code.path}:{line}.',
                        f"in {code.address}")


def _use_matches_declared(cfg: B.TransformedColumn | B.Aggregate, code: B.CustomCode, diags: Diagnostics) -> None:
    """One error per cause: a given name close to a missing declared one is a misspelling of
    it, reported once; other unknown names, and declared names still missing, one each."""
    declared = list(code.inputs or ())
    given = sorted(cfg.inputs)
    missing = [k for k in declared if k not in cfg.inputs]
    for key in given:
        if key in declared:
            continue
        close = difflib.get_close_matches(key, missing, n=1, cutoff=0.6)
        if close:
            missing.remove(close[0])
        diags.error(f'{cfg.address} gives the input "{key}", which {code.address} does not declare',
                    cfg.where("inputs"), f"{code.address} declares inputs: {', '.join(declared)}.",
                    f'Did you mean "{close[0]}"?' if close
                    else f"Remove {key}, or add \"{key}\" to {code.address}'s inputs.",
                    f"in {cfg.address}")
    if missing:
        names = ", ".join(f'"{k}"' for k in missing)
        diags.error(f"{cfg.address} does not give {code.address}'s input{'s' if len(missing) > 1 else ''} {names}",
                    cfg.where("inputs"), f"{code.address} declares inputs: {', '.join(declared)}; "
                    f"{cfg.address} gives: {', '.join(given) or 'no inputs'}.",
                    f"Add {missing[0]} = ... to its inputs.", f"in {cfg.address}")


def _use_gives_reads(cfg: B.TransformedColumn | B.Aggregate, code: B.CustomCode, read: dict[str, int],
                     diags: Diagnostics) -> None:
    given = sorted(cfg.inputs)
    for key, line in sorted(read.items(), key=lambda kv: kv[1]):
        if key in cfg.inputs:
            continue
        diags.error(f'{code.path}:{line} reads inputs["{key}"], which {cfg.address} does not give',
                    cfg.where("inputs"), f"{cfg.address} gives: {', '.join(given) or 'no inputs'}.",
                    did_you_mean(key, given) or f"Add {key} = ... to its inputs, or fix {code.path}:{line}.",
                    f"in {cfg.address}")


def _unused(app: B.App, graph: Graph, diags: Diagnostics) -> None:
    used = {d for deps in graph.deps.values() for d in deps}
    for addr, cfg in sorted(app.blocks.items()):
        if addr.kind in (Kind.RAW_COLUMN, Kind.TRANSFORMED_COLUMN) and addr not in used:
            diags.warning(f"{addr} is not used", cfg.pos,
                          "No aggregate, transformed column or model reads it; apply still builds it"
                          + (" and checks its rows." if addr.kind is Kind.RAW_COLUMN else "."),
                          "Use it, or remove the block.", f"in {addr}")
