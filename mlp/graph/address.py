"""Block addresses: `KIND.NAME`, e.g. `raw_column.age`, and `KIND.NAME["KEY"]` for one instance
of a block with `for_each`, e.g. `transformed_column.norm["alcohol"]`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import total_ordering

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
REF_KINDS = {k.value for k in Kind} | {"var", "local", "each"}


def slug(key: str) -> str:
    """An instance key as part of a name: lower case, each run of characters outside a-z0-9 as `_`."""
    return _SLUG.sub("_", key.lower())


def instance_name(block: str, key: str) -> str:
    return f"{block}__{slug(key)}"


@total_ordering
@dataclass(frozen=True)
class Address:
    """One block, or one instance of a block with `for_each`.

    Invariants: `name` is unique per kind in an app and is what the engine names things by (the
    column, the table, the model's input): the block's name, or `BLOCK__SLUG` for an instance.
    `block` is the declared name; `key` the instance key (None: no for_each). `str()` is what
    users see and type: `kind.block["key"]` (the key JSON-quoted) or `kind.name`. Addresses order
    by kind (plan order), then block, then key.
    """

    kind: Kind
    name: str
    block: str = field(default="")
    key: str | None = None

    def __post_init__(self) -> None:
        if not self.block:
            object.__setattr__(self, "block", self.name)

    @classmethod
    def of(cls, kind: Kind, name: str) -> Address:
        return cls(kind, name)

    @classmethod
    def instance(cls, kind: Kind, block: str, key: str) -> Address:
        return cls(kind, instance_name(block, key), block, key)

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse `kind.name` or `kind.name["key"]`; raises ValueError with a readable message."""
        kind_s, _, rest = text.partition(".")
        try:
            kind = Kind(kind_s)
        except ValueError:
            kinds = ", ".join(k.value for k in Kind if k.builds)
            raise ValueError(f'"{text}" is not a block address (KIND.NAME with KIND one of {kinds})') from None
        name, bracket, index = rest.partition("[")
        if not NAME_RE.match(name):
            raise ValueError(f'"{text}" is not a block address: "{name}" is not a valid name')
        if not bracket:
            return cls.of(kind, name)
        return cls.instance(kind, name, _parse_key(text, index))

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
        return f"in {self.described}"

    def _order(self) -> tuple[int, str, int, str]:
        return (self.kind.order, self.block, 0 if self.key is None else 1, self.key or "")

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return self._order() < other._order()

    def __str__(self) -> str:
        if self.key is None:
            return f"{self.kind.value}.{self.name}"
        return f"{self.kind.value}.{self.block}[{quote_key(self.key)}]"


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
