"""Column and value types shared by the config, the graph and the runtimes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ColumnType(StrEnum):
    INT = "INT"
    FLOAT = "FLOAT"
    STRING = "STRING"
    BOOL = "BOOL"
    INT_LIST = "INT_LIST"
    FLOAT_LIST = "FLOAT_LIST"
    STRING_LIST = "STRING_LIST"
    MAP = "MAP"  # aggregate values only: e.g. class_distribution

    @property
    def numeric(self) -> bool:
        return self in (ColumnType.INT, ColumnType.FLOAT)

    @property
    def is_list(self) -> bool:
        return self.value.endswith("_LIST")


RAW_TYPES = (ColumnType.INT, ColumnType.FLOAT, ColumnType.STRING, ColumnType.BOOL)


@dataclass(frozen=True)
class ColumnInfo:
    """The static type of a column in the graph.

    `categorical` marks INT columns whose values are category ids (outputs of
    `index_string`, `bucketize`, `hash_bucket`); a model one-hot encodes or embeds them.
    """

    type: ColumnType
    categorical: bool = False

    def describe(self) -> str:
        return f"categorical {self.type.value}" if self.categorical else self.type.value
