"""Parse HCL text into a small positional tree: blocks, attributes, values, refs.

python-hcl2's lark grammar does the parsing; this module turns its parse tree into
plain values (with `Ref` for references like `raw_column.age`) and keeps each
block's and attribute's line and column. Parsed files are cached by content hash,
since parsing is the slowest part of `mlp plan`.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from mlp.diagnostics import Diagnostics, SourcePos

CACHE_VERSION = "2"


@dataclass(frozen=True)
class Ref:
    """A reference expression such as `raw_column.age` or `var.epochs`."""

    parts: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.parts)


Value = Union[None, bool, int, float, str, Ref, list[Any], dict[str, Any]]


@dataclass(frozen=True)
class Attr:
    name: str
    value: Any
    pos: SourcePos


@dataclass(frozen=True)
class Block:
    kind: str
    labels: tuple[str, ...]
    pos: SourcePos
    attrs: dict[str, Attr] = field(default_factory=dict)
    blocks: tuple[Block, ...] = ()


class _Unsupported(Exception):
    def __init__(self, what: str, line: int, column: int) -> None:
        super().__init__(what)
        self.what, self.line, self.column = what, line, column


def _meta(t: Any) -> tuple[int, int]:
    meta = getattr(t, "meta", None)
    if meta is not None and not getattr(meta, "empty", True):
        return meta.line, meta.column
    return getattr(t, "line", 0) or 0, getattr(t, "column", 0) or 0


def _trees(node: Any) -> list[Any]:
    return [c for c in node.children if hasattr(c, "data")]


def _name(node: Any) -> str:
    """Text of an identifier/keyword/literal_value node used as a name."""
    tok = node.children[0]
    return str(tok.value if hasattr(tok, "value") else tok)


def _string(node: Any) -> Any:
    parts = _trees(node)
    if len(parts) == 1 and _trees(parts[0]) and _trees(parts[0])[0].data == "interpolation":
        interp = _trees(parts[0])[0]
        return _expr(_trees(interp)[0])
    out = []
    for p in parts:
        tok = p.children[0]
        if hasattr(tok, "data"):
            raise _Unsupported("string templates with ${...} inside text", *_meta(node))
        out.append(str(tok.value).replace("$${", "${"))
    return _unescape("".join(out))


def _unescape(s: str) -> str:
    if "\\" not in s:
        return s
    return s.encode("latin-1", "backslashreplace").decode("unicode_escape")


def _expr(node: Any) -> Any:  # noqa: C901 - one branch per grammar rule
    data = node.data
    if data == "expr_term":
        kids = _trees(node)
        if len(kids) != 1:
            raise _Unsupported("this expression", *_meta(node))
        return _expr(kids[0])
    if data == "int_lit":
        return int(node.children[0].value)
    if data == "float_lit":
        return float(node.children[0].value)
    if data == "string":
        return _string(node)
    if data == "literal_value":
        return {"true": True, "false": False, "null": None}[str(node.children[0].value)]
    if data == "tuple":
        return [_expr(c) for c in _trees(node) if c.data != "new_line_or_comment"]
    if data == "object":
        out: dict[str, Any] = {}
        for elem in _trees(node):
            if elem.data != "object_elem":
                continue
            key_node, val_node = _trees(elem)[0], _trees(elem)[1]
            key = _expr(_trees(key_node)[0]) if key_node.data == "object_elem_key" else _expr(key_node)
            if isinstance(key, Ref) and len(key.parts) == 1:
                key = key.parts[0]
            if not isinstance(key, str):
                raise _Unsupported("an object key that is not a name or string", *_meta(elem))
            out[key] = _expr(val_node)
        return out
    if data == "identifier":
        return Ref((_name(node),))
    if data == "get_attr_expr_term":
        base_node, attr = _trees(node)
        base = _expr(base_node)
        if not isinstance(base, Ref):
            raise _Unsupported("attribute access on a value", *_meta(node))
        return Ref(base.parts + (_name(_trees(attr)[0]),))
    if data == "unary_op":
        op = str(node.children[0].value)
        val = _expr(_trees(node)[0])
        if op == "-" and isinstance(val, (int, float)) and not isinstance(val, bool):
            return -val
        raise _Unsupported(f"the operator {op}", *_meta(node))
    if data == "heredoc_template":
        text = str(node.children[0].value)
        return text.split("\n", 1)[1].rsplit("\n", 2)[0] + "\n"
    raise _Unsupported(f"expressions of kind {data}", *_meta(node))


def _body(body: Any, file: str) -> tuple[dict[str, Attr], list[Block], list[tuple[str, SourcePos]]]:
    attrs: dict[str, Attr] = {}
    blocks: list[Block] = []
    problems: list[tuple[str, SourcePos]] = []
    last_end = 0  # the line on which the previous argument or block ends
    for item in _trees(body):
        if item.data in ("attribute", "block"):
            line, col = _meta(item)
            if line == last_end:  # python-hcl2 accepts `a = 1 b = 2`; HCL does not
                what = f'"{_name(_trees(item)[0])}"'
                problems.append((f"{what} starts on the line where the previous argument or "
                                 "block ends: put each on a line of its own", SourcePos(file, line, col)))
            last_end = getattr(item.meta, "end_line", line)
        if item.data == "attribute":
            name_node, value_node = _trees(item)[0], _trees(item)[-1]
            name = _name(name_node)
            line, col = _meta(item)
            pos = SourcePos(file, line, col)
            if name in attrs:
                problems.append((f'the attribute "{name}" is set twice', pos))
            try:
                attrs[name] = Attr(name, _expr(value_node), pos)
            except _Unsupported as e:
                problems.append((f"mlp does not support {e.what}",
                                 SourcePos(file, e.line or line, e.column or col)))
        elif item.data == "block":
            blk, sub = _block(item, file)
            blocks.append(blk)
            problems.extend(sub)
    return attrs, blocks, problems


def _block(node: Any, file: str) -> tuple[Block, list[tuple[str, SourcePos]]]:
    kids = _trees(node)
    kind = _name(kids[0])
    labels: list[str] = []
    body = None
    for k in kids[1:]:
        if k.data == "string":
            labels.append(str(_string(k)))
        elif k.data == "body":
            body = k
        elif k.data in ("identifier", "keyword", "literal_value"):
            labels.append(_name(k))
    line, col = _meta(node)
    attrs, blocks, problems = _body(body, file) if body is not None else ({}, [], [])
    return Block(kind, tuple(labels), SourcePos(file, line, col), attrs, tuple(blocks)), problems


@dataclass(frozen=True)
class ParsedFile:
    file: str
    blocks: tuple[Block, ...]
    top_attrs: tuple[Attr, ...]
    problems: tuple[tuple[str, SourcePos], ...]
    syntax_error: tuple[str, SourcePos] | None = None


def parse_text(text: str, file: str) -> ParsedFile:
    from hcl2.api import parses_to_tree
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

    try:
        tree = parses_to_tree(text)
    except UnexpectedInput as e:
        line, col = getattr(e, "line", 0) or 0, getattr(e, "column", 0) or 0
        if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
            msg = "unexpected end of file (an unclosed { [ ( or string?)"
            line = line if line > 0 else text.count("\n") + 1
        elif isinstance(e, UnexpectedCharacters):
            msg = f"unexpected character {text[e.pos_in_stream]!r}" if e.pos_in_stream is not None else "unexpected character"
        elif isinstance(e, UnexpectedToken):
            value = str(e.token.value).strip()
            msg = f"unexpected {value!r}" if value else "unexpected end of line"
        else:
            msg = "invalid syntax"
        return ParsedFile(file, (), (), (), (msg, SourcePos(file, max(line, 1), max(col, 1))))
    attrs, blocks, problems = _body(tree.children[0], file)
    return ParsedFile(file, tuple(blocks), tuple(attrs.values()), tuple(problems))


def parse_file(path: Path, display: str, cache_dir: Path | None) -> ParsedFile:
    """Parse one file, through a content-hash cache when `cache_dir` is given."""
    data = path.read_bytes()
    if cache_dir is None:
        return parse_text(data.decode("utf-8", errors="replace"), display)
    digest = hashlib.sha256(CACHE_VERSION.encode() + display.encode() + b"\0" + data).hexdigest()
    entry = cache_dir / f"{digest}.pickle"
    try:
        with entry.open("rb") as fh:
            cached = pickle.load(fh)
        if isinstance(cached, ParsedFile):
            return cached
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        pass  # a missing or corrupt entry is re-parsed and rewritten
    parsed = parse_text(data.decode("utf-8", errors="replace"), display)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            pickle.dump(parsed, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, entry)
    except OSError:
        pass  # a read-only app folder still plans, just without the cache
    return parsed


def check_syntax(text: str, file: str) -> Diagnostics:
    diags = Diagnostics()
    parsed = parse_text(text, file)
    if parsed.syntax_error:
        diags.error("Invalid HCL syntax: " + parsed.syntax_error[0], parsed.syntax_error[1])
    return diags
