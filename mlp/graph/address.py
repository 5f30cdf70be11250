"""Block addresses: `KIND.NAME`, e.g. `raw_column.age`, and `KIND.NAME["KEY"]` for one instance
of a block with `for_each`, e.g. `transformed_column.norm["alcohol"]`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from operator import attrgetter
from typing import Any, Callable

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SLUG = re.compile(r"[^a-z0-9]+")


class Kind(StrEnum):
    """Block kinds, in the order the human plan groups them."""

    SOURCE = "source"
    RAW_COLUMN = "raw_column"
    AGGREGATE = "aggregate"
    TRANSFORMED_COLUMN = "transformed_column"
    MODEL = "model"
    API = "api"
    AGGREGATOR = "aggregator"
    TRANSFORMER = "transformer"
    ESTIMATOR = "estimator"

    @property
    def order(self) -> int:
        return _ORDER[self]

    @property
    def builds(self) -> bool:
        """Whether blocks of this kind are built (and so appear in plans and state)."""
        return self not in (Kind.AGGREGATOR, Kind.TRANSFORMER, Kind.ESTIMATOR)


_ORDER = {k: i for i, k in enumerate(Kind)}
KINDS: dict[str, Kind] = {k.value: k for k in Kind}  # Kind(text), without the enum's call
REF_KINDS = {k.value for k in Kind} | {"var", "local", "each"}


def slug(key: str) -> str:
    """An instance key as part of a name: lower case, each run of characters outside a-z0-9 as `_`."""
    return _SLUG.sub("_", key.lower())


def instance_name(block: str, key: str) -> str:
    return f"{block}__{slug(key)}"


@dataclass(frozen=True, eq=False, slots=True)
class Address:
    """One block, or one instance of a block with `for_each`.

    Invariants: `name` is unique per kind in an app and is what the engine names things by (the
    column, the table, the model's input): the block's name, or `BLOCK__SLUG` for an instance.
    `block` is the declared name; `key` the instance key (None: no for_each). `str()` is what
    users see and type: `kind.block["key"]` (the key JSON-quoted) or `kind.name`. Addresses order
    by kind (plan order), then block, then key; two are equal when their four fields are.

    Addresses are compared, hashed and sorted thousands of times a plan: the comparison key and
    the hash are computed once, when the address is made; its texts when first asked for.
    """

    kind: Kind
    name: str
    block: str = field(default="")
    key: str | None = None
    _key: tuple[int, str, bool, str, str] = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)
    _text: str | None = field(init=False, repr=False, compare=False, default=None)
    _context: str | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if not self.block:
            object.__setattr__(self, "block", self.name)
        key = (_ORDER[self.kind], self.block, self.key is not None, self.key or "", self.name)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_hash", hash(key))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Address:
            return NotImplemented
        return self is other or self._key == other._key  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: object) -> bool:
        if other.__class__ is not Address:
            return NotImplemented
        return self._key < other._key  # type: ignore[attr-defined]

    def __le__(self, other: object) -> bool:
        if other.__class__ is not Address:
            return NotImplemented
        return self._key <= other._key  # type: ignore[attr-defined]

    def __gt__(self, other: object) -> bool:
        if other.__class__ is not Address:
            return NotImplemented
        return self._key > other._key  # type: ignore[attr-defined]

    def __ge__(self, other: object) -> bool:
        if other.__class__ is not Address:
            return NotImplemented
        return self._key >= other._key  # type: ignore[attr-defined]

    @classmethod
    def of(cls, kind: Kind, name: str) -> Address:
        return _interned((kind, name), lambda: cls(kind, name))

    @classmethod
    def instance(cls, kind: Kind, block: str, key: str) -> Address:
        return _interned((kind, block, key), lambda: cls(kind, instance_name(block, key), block, key))

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse `kind.name` or `kind.name["key"]`; raises ValueError with a readable message."""
        found = _PARSED.get(text)
        if found is not None:
            return found
        kind_s, _, rest = text.partition(".")
        kind = KINDS.get(kind_s)
        if kind is None:
            kinds = ", ".join(k.value for k in Kind if k.builds)
            raise ValueError(f'"{text}" is not a block address (KIND.NAME with KIND one of {kinds})')
        name, bracket, index = rest.partition("[")
        if not NAME_RE.match(name):
            raise ValueError(f'"{text}" is not a block address: "{name}" is not a valid name')
        found = cls.of(kind, name) if not bracket else cls.instance(kind, name, _parse_key(text, index))
        if len(_PARSED) < _PARSED_LIMIT:
            _PARSED[text] = found
        return found

    @property
    def kind_order(self) -> int:
        return self.kind.order

    @property
    def described(self) -> str:
        """The block in a message: `raw_column "age"`, or the instance `raw_column.feature["alcohol"]`."""
        return f'{self.kind.value} "{self.name}"' if self.key is None else str(self)

    @property
    def context(self) -> str:
        """Where a diagnostic is: `in raw_column "age"`, or `in raw_column.feature["alcohol"]`."""
        text = self._context
        if text is None:
            text = f"in {self.described}"
            object.__setattr__(self, "_context", text)
        return text

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = f"{self.kind.value}.{self.name}" if self.key is None else \
                f"{self.kind.value}.{self.block}[{quote_key(self.key)}]"
            object.__setattr__(self, "_text", text)
        return text


# Addresses made by `of`, `instance` and `parse` are shared: one object per address, so that
# the dictionaries and sets keyed by addresses find theirs by identity, without calling __eq__.
_INTERNED: dict[tuple[object, ...], Address] = {}
_INTERNED_LIMIT = 1 << 17


def _interned(key: tuple[object, ...], make: Callable[[], Address]) -> Address:
    found = _INTERNED.get(key)
    if found is None:
        found = make()
        if key[0].__class__ is Kind and len(_INTERNED) < _INTERNED_LIMIT:
            _INTERNED[key] = found
    return found


# `sorted(addresses, key=SORT_KEY)` is `sorted(addresses)`, with the comparisons done in C.
SORT_KEY: Callable[[Address], Any] = attrgetter("_key")

# Addresses are values: the same text always parses to an equal one, so parses are kept.
_PARSED: dict[str, Address] = {}
_PARSED_LIMIT = 1 << 16


def quote_key(key: str) -> str:
    """A key as written in an address or an index: a JSON string."""
    return json.dumps(key, ensure_ascii=False)


def _parse_key(text: str, index: str) -> str:
    bad = ValueError(f'"{text}" is not a block address: an instance is KIND.NAME["KEY"], the key a string '
                     'in double quotes')
    if not index.endswith("]"):
        raise bad
    try:
        key = json.loads(index[:-1])
    except ValueError:
        raise bad from None
    if not isinstance(key, str) or not key:
        raise bad
    return key
