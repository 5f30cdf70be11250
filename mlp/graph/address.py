"""Block addresses: `KIND.NAME`, e.g. `raw_column.age`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


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
REF_KINDS = {k.value for k in Kind} | {"var"}


@dataclass(frozen=True, order=True)
class Address:
    """`kind.name`; orders by kind (plan order) then name."""

    kind_order: int
    kind: Kind
    name: str

    @classmethod
    def of(cls, kind: Kind, name: str) -> Address:
        return cls(kind.order, kind, name)

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse `kind.name`; raises ValueError with a readable message."""
        kind_s, _, name = text.partition(".")
        try:
            kind = Kind(kind_s)
        except ValueError:
            kinds = ", ".join(k.value for k in Kind if k.builds)
            raise ValueError(f'"{text}" is not a block address (KIND.NAME with KIND one of {kinds})') from None
        if not NAME_RE.match(name):
            raise ValueError(f'"{text}" is not a block address: "{name}" is not a valid name')
        return cls.of(kind, name)

    def __str__(self) -> str:
        return f"{self.kind.value}.{self.name}"
