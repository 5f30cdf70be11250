"""Parse HCL text into a small positional tree: blocks, attributes, values, refs.

python-hcl2's lark grammar does the parsing; this module turns its parse tree into
plain values (with `Ref` for references like `raw_column.age`, `aggregate.mean[each.key]` or
`raw_column.x[*]`, `Template` for strings with `${...}`, `Call` for `toset(...)`) and keeps each
block's and attribute's line and column. What is wrong with a file comes back as typed
`Problem`s, never as an exception: binary or non-UTF-8 files, syntax errors, values or
blocks nested deeper than `MAX_DEPTH`, numbers too large for a float, bad escapes. The
cache of parsed files lives in `mlp.config.parsecache`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Union

from mlp.diagnostics import Diagnostics, SourcePos

MAX_DEPTH = 64  # levels of nested lists, maps, parentheses or operators in a value; and of blocks
MAX_FILE_BYTES = 8 << 20  # no app file comes near; a bigger one is not an HCL file
MAX_NUMBER_CHARS = 310  # more digits than any finite float has: 1.8e308
EXCERPT = 40  # characters of source text quoted in a message


class ProblemKind(StrEnum):
    """What is wrong with a file. The file-level kinds stop the file from being read at all."""

    NOT_TEXT = "not_text"        # binary data (a NUL byte)
    NOT_UTF8 = "not_utf8"
    UNREADABLE = "unreadable"    # not a regular file, too large, or the OS refused to read it
    SYNTAX = "syntax"
    TOO_DEEP = "too_deep"        # values or blocks nested deeper than MAX_DEPTH
    SET_TWICE = "set_twice"
    SAME_LINE = "same_line"      # `a = 1 b = 2`: python-hcl2 accepts it, HCL does not
    UNSUPPORTED = "unsupported"  # valid HCL that mlp does not evaluate (operators, functions...)
    NUMBER = "number"            # a number no float can hold
    ESCAPE = "escape"            # a backslash sequence HCL does not define


@dataclass(frozen=True)
class Problem:
    """One problem in one file: its kind, a lower-case message, where, and a detail that says why."""

    kind: ProblemKind
    message: str
    pos: SourcePos
    detail: str = ""


# Ref, Attr and Block write their __init__ out (as SourcePos does): one is made for every value,
# attribute and block of every file a plan reads, and the generated frozen __init__, which sets
# each field through object.__setattr__, costs twice as much.


@dataclass(frozen=True, init=False)
class Ref:
    """A reference expression such as `raw_column.age`, `var.epochs`, `each.value.col`.

    With an `index`, one instance of a block with `for_each`: `aggregate.mean["alcohol"]`,
    `aggregate.mean[each.key]`; the index is a string, a `Ref` or a `Template` until the loader
    evaluates it to a string. With `splat`, every instance: `transformed_column.norm[*]`.
    """

    parts: tuple[str, ...]
    index: Any = None
    splat: bool = False

    def __init__(self, parts: tuple[str, ...], index: Any = None, splat: bool = False) -> None:
        d = self.__dict__
        d["parts"], d["index"], d["splat"] = parts, index, splat

    def __str__(self) -> str:
        base = ".".join(self.parts)
        if self.splat:
            return base + "[*]"
        if self.index is None:
            return base
        shown = json.dumps(self.index, ensure_ascii=False) if isinstance(self.index, str) else str(self.index)
        return f"{base}[{shown}]"


@dataclass(frozen=True)
class Template:
    """A string with `${...}` inside its text: literal text (`str`) and expressions (`Ref`, `Call`),
    in order. Adjacent texts are merged and at least one part is an expression; a string whose
    whole text is one `${expr}` is that expression instead, with its own type, as in Terraform."""

    parts: tuple[Any, ...]

    def __str__(self) -> str:
        text = "".join(json.dumps(p, ensure_ascii=False)[1:-1].replace("${", "$${") if isinstance(p, str)
                       else "${" + str(p) + "}" for p in self.parts)
        return f'"{text}"'


@dataclass(frozen=True)
class Call:
    """A function call. mlp evaluates one function, `toset(list)`: FUNCTIONS lists them."""

    name: str
    args: tuple[Any, ...]

    def __str__(self) -> str:
        return f"{self.name}(...)" if self.args else f"{self.name}()"


FUNCTIONS = ("toset",)
Value = Union[None, bool, int, float, str, Ref, Template, Call, list[Any], dict[str, Any]]


@dataclass(frozen=True, init=False)
class Attr:
    """`name = value` in a block, where it starts."""

    name: str
    value: Any
    pos: SourcePos

    def __init__(self, name: str, value: Any, pos: SourcePos) -> None:
        d = self.__dict__
        d["name"], d["value"], d["pos"] = name, value, pos


@dataclass(frozen=True, init=False)
class Block:
    """`kind "label" ... { ... }`: its attributes by name (each once) and its nested blocks."""

    kind: str
    labels: tuple[str, ...]
    pos: SourcePos
    attrs: dict[str, Attr] = field(default_factory=dict)
    blocks: tuple[Block, ...] = ()

    def __init__(self, kind: str, labels: tuple[str, ...], pos: SourcePos, attrs: dict[str, Attr] | None = None,
                 blocks: tuple[Block, ...] = ()) -> None:
        d = self.__dict__
        d["kind"], d["labels"], d["pos"], d["attrs"], d["blocks"] = kind, labels, pos, \
            {} if attrs is None else attrs, blocks


@dataclass(frozen=True)
class ParsedFile:
    """A file's blocks and top-level attributes, or (`syntax_error`) why it could not be read.

    Every `SourcePos` inside names `file`.
    """

    file: str
    blocks: tuple[Block, ...]
    top_attrs: tuple[Attr, ...]
    problems: tuple[Problem, ...]
    syntax_error: Problem | None = None


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """`text` quoted for a message, cut to `limit` characters, control characters escaped."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


# -- from bytes to text ---------------------------------------------------------------------------


def parse_source(data: bytes, file: str) -> ParsedFile:
    """Parse the bytes of a file: UTF-8 HCL text, or one short problem saying why it is not."""
    text = decode_source(data, file)
    return failed(file, text) if isinstance(text, Problem) else parse_text(text, file)


def decode_source(data: bytes, file: str) -> str | Problem:
    nul = data.find(b"\0")
    if nul >= 0:
        return Problem(ProblemKind.NOT_TEXT, "not a text file", _byte_pos(data, nul, file),
                       f"It holds binary data (a NUL byte at byte {nul}). mlp reads every *.hcl file "
                       "in the app folder as HCL text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return Problem(ProblemKind.NOT_UTF8, f"not valid UTF-8 at byte {e.start}", _byte_pos(data, e.start, file),
                       f"Byte {e.start} (0x{data[e.start]:02x}) is not part of a UTF-8 character. "
                       "HCL files are UTF-8 text.")


def _byte_pos(data: bytes, offset: int, file: str) -> SourcePos:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return SourcePos(file, data.count(b"\n", 0, offset) + 1, offset - line_start + 1)


def failed(file: str, problem: Problem) -> ParsedFile:
    """The result for a file that could not be read or parsed at all."""
    return ParsedFile(file, (), (), (), problem)


def unreadable(file: str, why: str) -> ParsedFile:
    return failed(file, Problem(ProblemKind.UNREADABLE, f"cannot read {file}", SourcePos(file), why))


# -- from text to a tree --------------------------------------------------------------------------


def parse_text(text: str, file: str) -> ParsedFile:
    from hcl2.api import parses_to_tree
    from lark.exceptions import LarkError, UnexpectedInput

    try:
        tree = parses_to_tree(text)
        attrs, blocks, problems = _body(tree.children[0], file, 1)
    except UnexpectedInput as e:
        return failed(file, _syntax_problem(e, text, file))
    except LarkError:
        return failed(file, Problem(ProblemKind.SYNTAX, "invalid syntax", SourcePos(file, 1, 1), _UNPARSED))
    except RecursionError:  # a safety net: both the grammar and this module bound their depth
        return failed(file, _too_deep(_deepest_bracket(text, file), "values"))
    return ParsedFile(file, tuple(blocks), tuple(attrs.values()), tuple(problems))


_UNPARSED = "The file could not be parsed."


def _syntax_problem(e: Any, text: str, file: str) -> Problem:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    line, col = getattr(e, "line", 0) or 0, getattr(e, "column", 0) or 0
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        msg = "unexpected end of file (an unclosed { [ ( or string?)"
        line = line if line > 0 else text.count("\n") + 1
    elif isinstance(e, UnexpectedCharacters):
        at = e.pos_in_stream
        msg = f"unexpected character {text[at]!r}" if at is not None and 0 <= at < len(text) else \
            "unexpected character"
    elif isinstance(e, UnexpectedToken):
        value = str(e.token.value).strip()
        msg = f"unexpected {excerpt(value)}" if value else "unexpected end of line"
    else:
        msg = "invalid syntax"
    return Problem(ProblemKind.SYNTAX, msg, SourcePos(file, max(line, 1), max(col, 1)), _UNPARSED)


def _too_deep(pos: SourcePos, what: str) -> Problem:
    return Problem(ProblemKind.TOO_DEEP, f"{what} nested deeper than {MAX_DEPTH} levels", pos, _TOO_DEEP)


_TOO_DEEP = (f"mlp reads at most {MAX_DEPTH} levels of nested lists, maps, parentheses and operators in a value, "
             f"and {MAX_DEPTH} levels of nested blocks.")


def _deepest_bracket(text: str, file: str) -> SourcePos:
    """Where the bracket depth first passes MAX_DEPTH (strings and comments not told apart)."""
    depth, line, col = 0, 1, 0
    for c in text:
        col += 1
        if c == "\n":
            line, col = line + 1, 0
        elif c in "{[(":
            depth += 1
            if depth > MAX_DEPTH:
                return SourcePos(file, line, col)
        elif c in "}])":
            depth -= 1
    return SourcePos(file, 1, 1)


# -- from the tree to values ----------------------------------------------------------------------


class _Stop(Exception):
    """A value or block mlp cannot read; `_body` turns it into a `Problem` and goes on."""

    def __init__(self, kind: ProblemKind, message: str, node: Any, detail: str) -> None:
        super().__init__(message)
        self.kind, self.message, self.detail = kind, message, detail
        self.line, self.column = _meta(node)


def _unsupported(what: str, node: Any) -> _Stop:
    return _Stop(ProblemKind.UNSUPPORTED, f"mlp does not support {what}", node,
                 "mlp accepts literals, lists, maps, references (KIND.NAME, KIND.NAME[\"KEY\"], KIND.NAME[*], "
                 "var.NAME, local.NAME, each.key, each.value), string templates \"${...}\" and toset([...]).")


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


def _is_paren(node: Any) -> bool:
    return any(getattr(c, "type", None) == "LPAR" for c in node.children)


def _expr(node: Any, depth: int) -> Any:
    """The value of an expression node `depth` levels down in its attribute's value."""
    if depth > MAX_DEPTH:
        raise _Stop(ProblemKind.TOO_DEEP, f"values nested deeper than {MAX_DEPTH} levels", node, _TOO_DEEP)
    data = node.data
    if data == "expr_term":
        kids = _trees(node)
        if len(kids) != 1:
            raise _unsupported("this expression", node)
        return _expr(kids[0], depth + 1 if _is_paren(node) else depth)
    convert = _CONVERT.get(data)
    if convert is None:
        raise _unsupported(f"expressions of kind {data}", node)
    return convert(node, depth)


def _int(node: Any, depth: int) -> int:
    text = str(node.children[0].value)
    if len(text) > MAX_NUMBER_CHARS:
        raise _number_too_large(text, node)
    return int(text)


def _float(node: Any, depth: int) -> float:
    text = str(node.children[0].value)
    value = float(text)
    if not math.isfinite(value):
        raise _number_too_large(text, node)
    return value


def _number_too_large(text: str, node: Any) -> _Stop:
    return _Stop(ProblemKind.NUMBER, f"the number {excerpt(text, 20)} is too large", node,
                 "mlp reads numbers that fit a 64-bit float: at most about 1.8e308.")


def _literal(node: Any, depth: int) -> Any:
    word = str(node.children[0].value)
    if word not in _LITERALS:
        raise _unsupported(f"the keyword {excerpt(word)} as a value", node)
    return _LITERALS[word]


_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}


def _tuple(node: Any, depth: int) -> list[Any]:
    return [_expr(c, depth + 1) for c in _trees(node) if c.data != "new_line_or_comment"]


def _object(node: Any, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for elem in _trees(node):
        if elem.data != "object_elem":
            continue
        key_node, val_node = _trees(elem)[0], _trees(elem)[1]
        key = _expr(_trees(key_node)[0], depth) if key_node.data == "object_elem_key" else _expr(key_node, depth)
        if isinstance(key, Ref) and len(key.parts) == 1:
            key = key.parts[0]
        if not isinstance(key, str):
            raise _unsupported("an object key that is not a name or string", elem)
        out[key] = _expr(val_node, depth + 1)
    return out


def _identifier(node: Any, depth: int) -> Ref:
    return Ref((_name(node),))


def _get_attr(node: Any, depth: int) -> Ref:
    """`a.b.c`: walked down its left spine in a loop, so a long reference costs no recursion."""
    names: list[str] = []
    while node.data == "get_attr_expr_term":
        base, attr = _trees(node)
        names.append(_name(_trees(attr)[0]))
        node = base
        while node.data == "expr_term" and len(_trees(node)) == 1 and not _is_paren(node):
            node = _trees(node)[0]
    if node.data != "identifier":
        raise _unsupported("attribute access on a value", node)
    return Ref((_name(node), *reversed(names)))


def _unary(node: Any, depth: int) -> Any:
    op = str(node.children[0].value)
    val = _expr(_trees(node)[0], depth + 1)
    if op == "-" and isinstance(val, (int, float)) and not isinstance(val, bool):
        return -val
    raise _unsupported(f"the operator {op}", node)


def _heredoc(node: Any, depth: int) -> str:
    lines = str(node.children[0].value).split("\n")  # <<EOT, the body, EOT, "" (it ends with \n)
    body = lines[1:-2]
    return "\n".join(body) + "\n" if body else ""


def _string(node: Any, depth: int) -> Any:
    parts = _trees(node)
    if len(parts) == 1 and _trees(parts[0]) and _trees(parts[0])[0].data == "interpolation":
        interp = _trees(parts[0])[0]
        return _expr(_trees(interp)[0], depth + 1)
    out: list[Any] = []
    for p in parts:
        tok = p.children[0]
        if hasattr(tok, "data"):
            out.extend(_interpolated(tok, depth))
            continue
        text = str(tok.value)
        out.append(text[1:] if tok.type in ("ESCAPED_INTERPOLATION", "ESCAPED_DIRECTIVE") else _unescape(text, node))
    return _template(out)


def _interpolated(interp: Any, depth: int) -> list[Any]:
    """The parts one `${expr}` adds to a template: constants become text, as Terraform renders them."""
    value = _expr(_trees(interp)[0], depth + 1)
    if isinstance(value, Template):
        return list(value.parts)
    if isinstance(value, (Ref, Call, str)):
        return [value]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, (int, float)):
        return [str(value)]
    what = "null" if value is None else "a list" if isinstance(value, list) else "a map"
    raise _Stop(ProblemKind.UNSUPPORTED, f"a string template cannot hold {what}", interp,
                "Only strings, numbers and bools can be written into a string with ${...}.")


def _template(parts: list[Any]) -> str | Template:
    merged: list[Any] = []
    for p in parts:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        elif not (isinstance(p, str) and not p):
            merged.append(p)
    if all(isinstance(p, str) for p in merged):
        return "".join(merged)
    return Template(tuple(merged))


def _index(node: Any, depth: int) -> Ref:
    """`KIND.NAME[key]`: one instance. The key is a string, a reference or a template."""
    base_node, brace = _trees(node)
    base = _expr(base_node, depth)
    if not isinstance(base, Ref) or base.index is not None or base.splat or brace.data != "braces_index":
        raise _unsupported("an index [...] on this value", node)
    key = _expr(_trees(brace)[0], depth + 1)
    if not isinstance(key, (str, Ref, Template)):
        raise _Stop(ProblemKind.UNSUPPORTED, "mlp does not support this index: instance keys are strings", node,
                    'An instance is KIND.NAME["KEY"] or KIND.NAME[each.key]; KIND.NAME[*] is all of them.')
    return Ref(base.parts, index=key)


def _splat(node: Any, depth: int) -> Ref:
    """`KIND.NAME[*]`: every instance of a block with for_each."""
    base_node, star = _trees(node)
    base = _expr(base_node, depth)
    if _trees(star) or not isinstance(base, Ref) or base.index is not None or base.splat:
        raise _unsupported("this splat: write KIND.NAME[*]", node)
    return Ref(base.parts, splat=True)


def _call(node: Any, depth: int) -> Call:
    kids = _trees(node)
    name = _name(kids[0])
    if name not in FUNCTIONS:
        raise _unsupported(f"the function {_short(name)}()", node)
    args = kids[1] if len(kids) > 1 else None
    if args is not None and any(getattr(c, "type", None) == "ELLIPSIS" or str(c) == "..." for c in args.children
                                if not hasattr(c, "data")):
        raise _unsupported("... in a function call", node)
    values = [] if args is None else [_expr(c, depth + 1) for c in _trees(args) if c.data != "new_line_or_comment"]
    return Call(name, tuple(values))


_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)", re.DOTALL)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def _unescape(text: str, node: Any) -> str:
    """HCL's escapes: \\n \\r \\t \\" \\\\ \\uNNNN \\UNNNNNNNN; any other is a problem, as in Terraform."""
    def one(m: re.Match[str]) -> str:
        seq = m.group(1)
        if seq in _ESCAPES:
            return _ESCAPES[seq]
        code = int(seq[1:], 16) if len(seq) > 1 else -1
        if 0 <= code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            return chr(code)
        shown = m.group(0) if m.group(0).isprintable() else excerpt(m.group(0))
        raise _Stop(ProblemKind.ESCAPE, f"{shown} is not a valid escape sequence", node,
                    'Strings accept \\n, \\r, \\t, \\", \\\\, \\uNNNN and \\UNNNNNNNN (a Unicode character).')
    return _ESCAPE.sub(one, text) if "\\" in text else text


_CONVERT: dict[str, Any] = {
    "int_lit": _int, "float_lit": _float, "string": _string, "literal_value": _literal, "tuple": _tuple,
    "object": _object, "identifier": _identifier, "get_attr_expr_term": _get_attr, "unary_op": _unary,
    "heredoc_template": _heredoc, "index_expr_term": _index, "full_splat_expr_term": _splat,
    "function_call": _call,
}


# -- blocks and bodies ----------------------------------------------------------------------------


_Body = tuple[dict[str, Attr], list[Block], list[Problem]]


def _body(body: Any, file: str, depth: int) -> _Body:
    """The attributes, blocks and problems of a body `depth` blocks down (the file's body is 1)."""
    attrs: dict[str, Attr] = {}
    blocks: list[Block] = []
    problems: list[Problem] = []
    last_end = 0  # the line on which the previous argument or block ends
    for item in _trees(body):
        if item.data not in ("attribute", "block"):
            continue
        line, col = _meta(item)
        pos = SourcePos(file, line, col)
        if line == last_end:
            problems.append(_same_line(_name(_trees(item)[0]), pos))
        last_end = getattr(item.meta, "end_line", line)
        try:
            if item.data == "attribute":
                _attribute(item, pos, attrs, problems)
            elif depth > MAX_DEPTH:
                problems.append(_too_deep(pos, "blocks"))
            else:
                blk, sub = _block(item, file, depth + 1)
                blocks.append(blk)
                problems.extend(sub)
        except _Stop as e:
            problems.append(Problem(e.kind, e.message, SourcePos(file, e.line or line, e.column or col), e.detail))
    return attrs, blocks, problems


def _same_line(name: str, pos: SourcePos) -> Problem:
    return Problem(ProblemKind.SAME_LINE, f'"{_short(name)}" starts on the line where the previous argument or '
                   "block ends: put each on a line of its own", pos,
                   "HCL ends every argument and block with a newline.")


def _short(name: str) -> str:
    return name if len(name) <= EXCERPT else name[:EXCERPT] + "..."


def _attribute(item: Any, pos: SourcePos, attrs: dict[str, Attr], problems: list[Problem]) -> None:
    name = _name(_trees(item)[0])
    if name in attrs:
        problems.append(Problem(ProblemKind.SET_TWICE, f'the attribute "{_short(name)}" is set twice', pos,
                                "Each attribute is set once in a block."))
    attrs[name] = Attr(name, _expr(_trees(item)[-1], 1), pos)


def _block(node: Any, file: str, depth: int) -> tuple[Block, list[Problem]]:
    kids = _trees(node)
    kind = _name(kids[0])
    labels: list[str] = []
    body = None
    for k in kids[1:]:
        if k.data == "string":
            label = _string(k, 1)
            if not isinstance(label, str):
                raise _unsupported("a template in a block label", k)
            labels.append(label)
        elif k.data == "body":
            body = k
        elif k.data in ("identifier", "keyword", "literal_value"):
            labels.append(_name(k))
    line, col = _meta(node)
    attrs, blocks, problems = _body(body, file, depth) if body is not None else ({}, [], [])
    return Block(kind, tuple(labels), SourcePos(file, line, col), attrs, tuple(blocks)), problems


def check_syntax(text: str, file: str) -> Diagnostics:
    diags = Diagnostics()
    parsed = parse_text(text, file)
    if parsed.syntax_error:
        diags.error("Invalid HCL syntax: " + parsed.syntax_error.message, parsed.syntax_error.pos)
    return diags
