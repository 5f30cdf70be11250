"""Reading an app's `.hcl` files, through a cache of their parses kept as plain JSON.

Parsing is the slowest part of `mlp plan`, so `parse_file` keeps each file's parse in
`<cache_dir>/<key>.json`. The cache lives in the app folder, and a pull request can put
anything there: an entry is data only, never pickle or anything else that names code. It
carries its format version and the sha256 of the bytes it caches, and is turned back into a
`ParsedFile` explicitly, with a type check at every step. An entry that does not check out
(bad JSON, another version, a wrong shape, the digest of other bytes) is discarded: the file
is parsed again and the entry rewritten.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from mlp.config.hcl import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    Attr,
    Block,
    Call,
    ParsedFile,
    Problem,
    ProblemKind,
    Ref,
    Template,
    parse_source,
    unreadable,
)
from mlp.diagnostics import SourcePos
from mlp.safeio import FileTooLarge, NotRegularFile, read_regular

FORMAT = "mlp-parse-cache"
VERSION = 4  # 1 and 2 were pickles, which are never read; 4 added indexes, splats, templates, calls
ENTRY_LIMIT = 64 << 20  # bytes: an entry is a few times the size of its file, which is at most 8 MiB


def parse_file(path: Path, display: str, cache_dir: Path | None) -> ParsedFile:
    """Parse one file (named `display` in positions), through the cache when `cache_dir` is given."""
    try:
        data = read_regular(path, MAX_FILE_BYTES)
    except FileTooLarge:
        return unreadable(display, f"It is larger than {MAX_FILE_BYTES >> 20} MiB: not an app file.")
    except NotRegularFile as e:
        return unreadable(display, f"It is {e.what}, not a regular file.")
    except OSError as e:
        return unreadable(display, f"{e.strerror or e}.")
    if cache_dir is None:
        return parse_source(data, display)
    digest = hashlib.sha256(data).hexdigest()
    entry = cache_dir / (hashlib.sha256(f"{VERSION}\0{display}\0{digest}".encode()).hexdigest() + ".json")
    cached = load_entry(entry, display, digest)
    if cached is not None:
        return cached
    parsed = parse_source(data, display)
    store_entry(entry, parsed, digest)
    return parsed


def load_entry(entry: Path, display: str, digest: str) -> ParsedFile | None:
    """The cached parse of the file `display` whose bytes have `digest`, or None if it does not check out."""
    try:
        doc = json.loads(read_regular(entry, ENTRY_LIMIT), parse_constant=_no_constants)
        return decode_entry(doc, display, digest)
    except (OSError, ValueError, RecursionError, BadEntry):
        return None


def store_entry(entry: Path, parsed: ParsedFile, digest: str) -> None:
    """Write the entry atomically; a read-only app folder still plans, just without the cache."""
    try:
        text = json.dumps(encode_entry(parsed, digest), separators=(",", ":"), allow_nan=False)
        entry.parent.mkdir(parents=True, exist_ok=True)
        import tempfile  # only when the cache is written (a warm plan reads it)

        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=entry.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, entry)
        except BaseException:
            os.unlink(tmp)
            raise
    except (OSError, ValueError):
        pass


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


# -- to JSON --------------------------------------------------------------------------------------


def encode_entry(parsed: ParsedFile, digest: str) -> dict[str, Any]:
    return {
        "format": FORMAT, "version": VERSION, "file": parsed.file, "sha256": digest,
        "blocks": [_enc_block(b) for b in parsed.blocks],
        "top_attrs": [_enc_attr(a) for a in parsed.top_attrs],
        "problems": [_enc_problem(p) for p in parsed.problems],
        "syntax_error": _enc_problem(parsed.syntax_error) if parsed.syntax_error else None,
    }


def _enc_pos(pos: SourcePos) -> list[int]:
    return [pos.line, pos.column]


def _enc_problem(p: Problem) -> dict[str, Any]:
    return {"kind": p.kind.value, "message": p.message, "pos": _enc_pos(p.pos), "detail": p.detail}


def _enc_attr(a: Attr) -> dict[str, Any]:
    return {"name": a.name, "pos": _enc_pos(a.pos), "value": _enc_value(a.value)}


def _enc_block(b: Block) -> dict[str, Any]:
    return {"kind": b.kind, "labels": list(b.labels), "pos": _enc_pos(b.pos),
            "attrs": [_enc_attr(a) for a in b.attrs.values()], "blocks": [_enc_block(s) for s in b.blocks]}


def _enc_value(v: Any) -> Any:
    """Lists stay lists; a map is {"map": {...}}, a reference {"ref": [...]} (with "index" or
    "splat": true), a template {"template": [...]} and a call {"call": NAME, "args": [...]}, so
    none is mistaken for another. Scalars are themselves."""
    if isinstance(v, Ref):
        return _enc_ref(v)
    if isinstance(v, Template):
        return {"template": [p if isinstance(p, str) else _enc_value(p) for p in v.parts]}
    if isinstance(v, Call):
        return {"call": v.name, "args": [_enc_value(a) for a in v.args]}
    if isinstance(v, list):
        return [_enc_value(x) for x in v]
    if isinstance(v, dict):
        return {"map": {k: _enc_value(x) for k, x in v.items()}}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise ValueError(f"not a value: {type(v).__name__}")


def _enc_ref(r: Ref) -> dict[str, Any]:
    out: dict[str, Any] = {"ref": list(r.parts)}
    if r.splat:
        out["splat"] = True
    elif r.index is not None:
        out["index"] = _enc_value(r.index)
    return out


# -- from JSON, checked ---------------------------------------------------------------------------


class BadEntry(Exception):
    """A cache entry that does not check out; it is discarded."""


def decode_entry(doc: Any, display: str, digest: str) -> ParsedFile:
    d = _fields(doc, ("format", "version", "file", "sha256", "blocks", "top_attrs", "problems", "syntax_error"))
    if d["format"] != FORMAT or _int(d["version"]) != VERSION:
        raise BadEntry("another format or version")
    if d["file"] != display or d["sha256"] != digest:
        raise BadEntry("the entry of another file")
    syntax = d["syntax_error"]
    return ParsedFile(display, tuple([_block(b, display, 1) for b in _list(d["blocks"])]),
                      tuple([_attr(a, display) for a in _list(d["top_attrs"])]),
                      tuple([_problem(p, display) for p in _list(d["problems"])]),
                      None if syntax is None else _problem(syntax, display))


# The checks below run once per block, attribute and value of every file a plan reads, so they
# test exact types (json.loads makes nothing else) and count keys instead of building sets: an
# object with as many keys as expected, each of them there, has exactly those keys.


def _fields(obj: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    if obj.__class__ is not dict or len(obj) != len(keys) or not all(k in obj for k in keys):
        raise BadEntry(f"expected an object with {', '.join(keys)}")
    return obj  # type: ignore[no-any-return]


def _list(obj: Any) -> list[Any]:
    if obj.__class__ is not list:
        raise BadEntry("expected a list")
    return obj  # type: ignore[no-any-return]


def _str(obj: Any) -> str:
    if obj.__class__ is not str:
        raise BadEntry("expected a string")
    return obj  # type: ignore[no-any-return]


def _int(obj: Any) -> int:
    if obj.__class__ is not int or obj < 0:
        raise BadEntry("expected a count")
    return obj  # type: ignore[no-any-return]


def _pos(obj: Any, file: str) -> SourcePos:
    if obj.__class__ is not list or len(obj) != 2:
        raise BadEntry("expected a position")
    line, column = obj
    if line.__class__ is not int or column.__class__ is not int or line < 0 or column < 0:
        raise BadEntry("expected a count")
    return SourcePos(file, line, column)


def _problem(obj: Any, file: str) -> Problem:
    d = _fields(obj, ("kind", "message", "pos", "detail"))
    try:
        kind = ProblemKind(_str(d["kind"]))
    except ValueError:
        raise BadEntry("an unknown kind of problem") from None
    return Problem(kind, _str(d["message"]), _pos(d["pos"], file), _str(d["detail"]))


def _attr(obj: Any, file: str) -> Attr:
    if obj.__class__ is not dict or len(obj) != 3 or "name" not in obj or "pos" not in obj or "value" not in obj:
        raise BadEntry("expected an object with name, pos, value")
    value = obj["value"]
    return Attr(_str(obj["name"]), value if value.__class__ in _SCALARS else _value(value, 1), _pos(obj["pos"], file))


def _block(obj: Any, file: str, depth: int) -> Block:
    if depth > MAX_DEPTH:
        raise BadEntry("blocks nested too deep")
    d = _fields(obj, _BLOCK_KEYS)
    by_name = {}
    for a in _list(d["attrs"]):
        attr = _attr(a, file)
        by_name[attr.name] = attr
    if len(by_name) != len(d["attrs"]):
        raise BadEntry("an attribute twice")
    labels = _list(d["labels"])
    for label in labels:
        _str(label)
    subs = _list(d["blocks"])
    return Block(_str(d["kind"]), tuple(labels), _pos(d["pos"], file), by_name,
                 tuple([_block(b, file, depth + 1) for b in subs]) if subs else ())


_BLOCK_KEYS = ("kind", "labels", "pos", "attrs", "blocks")
_SCALARS = frozenset({str, int, bool, type(None)})  # values that are themselves, whatever their depth


def _value(obj: Any, depth: int) -> Any:
    if depth > MAX_DEPTH + 1:
        raise BadEntry("values nested too deep")
    t = obj.__class__
    if t is str or t is int or t is bool or obj is None:
        return obj
    if t is float:
        if not math.isfinite(obj):
            raise BadEntry("a number that is not finite")
        return obj
    if t is list:
        return [_value(x, depth + 1) for x in obj]
    if t is not dict:
        raise BadEntry("not a value")
    if "ref" in obj:
        return _ref(obj, depth)
    if len(obj) == 1 and "map" in obj and obj["map"].__class__ is dict:
        return {_str(k): _value(v, depth + 1) for k, v in obj["map"].items()}
    if len(obj) == 1 and "template" in obj:
        return _template(obj["template"], depth)
    if len(obj) == 2 and "call" in obj and "args" in obj:
        return _call(obj, depth)
    raise BadEntry("not a value")


def _ref(obj: dict[str, Any], depth: int) -> Ref:
    parts = _list(obj["ref"])
    if not parts:
        raise BadEntry("an empty reference")
    for p in parts:
        _str(p)
    names = tuple(parts)
    if len(obj) == 1:
        return Ref(names)
    if len(obj) == 2 and obj.get("splat") is True:
        return Ref(names, splat=True)
    if len(obj) == 2 and "index" in obj:
        index = _value(obj["index"], depth + 1)
        if not isinstance(index, (str, Ref, Template)):
            raise BadEntry("an index that is not a string, a reference or a template")
        return Ref(names, index=index)
    raise BadEntry("not a reference")


def _template(obj: Any, depth: int) -> Template:
    """The parser's form only: no empty or adjacent texts, at least one expression."""
    parts = [p if type(p) is str else _value(p, depth + 1) for p in _list(obj)]
    for i, p in enumerate(parts):
        if isinstance(p, str) and (not p or (i and isinstance(parts[i - 1], str))):
            raise BadEntry("a template with empty or adjacent texts")
        if not isinstance(p, (str, Ref, Call)):
            raise BadEntry("a template part that is not text, a reference or a call")
    if all(isinstance(p, str) for p in parts):
        raise BadEntry("a template without an expression")
    return Template(tuple(parts))


def _call(obj: dict[str, Any], depth: int) -> Call:
    name = _str(obj["call"])
    if name not in FUNCTIONS:
        raise BadEntry("a call of an unknown function")
    return Call(name, tuple(_value(a, depth + 1) for a in _list(obj["args"])))
