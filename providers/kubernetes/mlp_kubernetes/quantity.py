"""Sizes as Kubernetes and Spark write them: memory ("2Gi", "2048m") and CPU ("500m", "2")."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from mlp.config.schema import MEMORY_PATTERN

_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
          "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_MEMORY = re.compile(MEMORY_PATTERN)


@dataclass(frozen=True)
class Memory:
    """An amount of memory: `text` as the app wrote it (a Kubernetes quantity), and its bytes."""

    text: str
    bytes: int

    @property
    def spark(self) -> str:
        """Spark's form, whole MiB rounded up: "2Gi" is "2048m"."""
        return f"{math.ceil(self.bytes / 2**20)}m"


def parse_memory(text: str) -> Memory:
    """A size like "2Gi", "512Mi" or "1G" (the `compute.memory` pattern); ValueError otherwise."""
    if not _MEMORY.fullmatch(text):
        raise ValueError(f'"{text}" is not a size like "2Gi", "512Mi" or "1G"')
    unit = next(u for u in sorted(_UNITS, key=len, reverse=True) if text.endswith(u))
    return Memory(text, math.ceil(float(text[: -len(unit)]) * _UNITS[unit]))


def cpu(cores: float) -> str:
    """Cores as a Kubernetes quantity: 2 is "2", 0.5 is "500m"."""
    if cores <= 0:
        raise ValueError(f"CPU must be more than 0, not {cores}")
    return str(int(cores)) if float(cores).is_integer() else f"{math.ceil(cores * 1000)}m"


def whole_cores(cores: float) -> int:
    """The cores a process may use for its threads: at least one."""
    return max(1, math.floor(cores))
