"""Typed, frozen block objects. Each knows its address, its position in the app files,
what it depends on (`deps`), and its normalised meaning (`settings`, defaults filled in,
references as address strings) which the fingerprint hashes. `extra` holds settings that
are outside the fingerprint (api replicas and port, model compute): changing them is an
update, never a rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from mlp.coltypes import ColumnType
from mlp.diagnostics import SourcePos
from mlp.graph.address import Address, Kind

MAX_BODY_BYTES = 4 * 1024 * 1024  # the API's default request body limit


@dataclass(frozen=True)
class BlockConfig:
    address: Address
    pos: SourcePos
    attr_pos: Mapping[str, SourcePos] = field(compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.address.name

    @property
    def kind(self) -> Kind:
        return self.address.kind

    def deps(self) -> tuple[Address, ...]:
        return ()

    def settings(self) -> dict[str, Any]:
        return {}

    def extra(self) -> dict[str, Any]:
        return {}

    def where(self, attr: str) -> SourcePos:
        return self.attr_pos.get(attr, self.pos)


@dataclass(frozen=True)
class Source(BlockConfig):
    format: str = "csv"
    path: str = ""
    header: bool = True
    delimiter: str = ","
    sample: int = 0
    missing: str = "drop"
    invalid: str = "fail"

    def settings(self) -> dict[str, Any]:
        s: dict[str, Any] = {"format": self.format, "path": self.path, "sample": self.sample,
                             "missing": self.missing, "invalid": self.invalid}
        if self.format == "csv":
            s["header"], s["delimiter"] = self.header, self.delimiter
        return s


@dataclass(frozen=True)
class RawColumn(BlockConfig):
    source: Address | None = None
    column: str = ""
    type: ColumnType = ColumnType.STRING
    required: bool = True
    min: float | None = None
    max: float | None = None
    values: tuple[Any, ...] | None = None

    def deps(self) -> tuple[Address, ...]:
        return (self.source,) if self.source else ()

    def checks(self) -> dict[str, Any]:
        """The rules ingest enforces; they decide which rows a source keeps."""
        return {"type": self.type.value, "required": self.required, "min": self.min,
                "max": self.max, "values": list(self.values) if self.values is not None else None}

    def settings(self) -> dict[str, Any]:
        return {"column": self.column, **self.checks()}

    @property
    def api_field(self) -> str:
        """The prediction request's field for this column: an instance of a block with for_each
        is its `column` (`feature["alcohol"]` is `alcohol`); a block is its name, as it always was."""
        return self.column if self.address.key is not None else self.name


@dataclass(frozen=True)
class Aggregate(BlockConfig):
    aggregator: str = ""
    custom: Address | None = None
    inputs: Mapping[str, Address] = field(default_factory=dict)
    args: Mapping[str, Any] = field(default_factory=dict)

    def deps(self) -> tuple[Address, ...]:
        return tuple(self.inputs.values()) + ((self.custom,) if self.custom else ())

    def settings(self) -> dict[str, Any]:
        return {"aggregator": str(self.custom) if self.custom else self.aggregator,
                "inputs": {k: str(v) for k, v in sorted(self.inputs.items())},
                "args": dict(sorted(self.args.items()))}


@dataclass(frozen=True)
class TransformedColumn(BlockConfig):
    transformer: str = ""
    custom: Address | None = None
    inputs: Mapping[str, Address] = field(default_factory=dict)
    args: Mapping[str, Any] = field(default_factory=dict)
    model: Address | None = None

    def deps(self) -> tuple[Address, ...]:
        out = tuple(self.inputs.values())
        if self.custom:
            out += (self.custom,)
        if self.model:
            out += (self.model,)
        return out

    def settings(self) -> dict[str, Any]:
        if self.model:
            return {"model": str(self.model)}
        return {"transformer": str(self.custom) if self.custom else self.transformer,
                "inputs": {k: str(v) for k, v in sorted(self.inputs.items())},
                "args": dict(sorted(self.args.items()))}


@dataclass(frozen=True)
class Model(BlockConfig):
    type: str = "classification"
    estimator: str = ""
    custom: Address | None = None
    target: Address | None = None
    features: tuple[Address, ...] = ()
    hparams: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    balance: str = "none"
    compute: Mapping[str, Any] = field(default_factory=dict)

    def deps(self) -> tuple[Address, ...]:
        out = self.features + ((self.target,) if self.target else ())
        return out + ((self.custom,) if self.custom else ())

    def settings(self) -> dict[str, Any]:
        return {"type": self.type,
                "estimator": str(self.custom) if self.custom else self.estimator,
                "target": str(self.target), "features": [str(f) for f in self.features],
                "hparams": dict(sorted(self.hparams.items())),
                "training": dict(sorted(self.training.items())), "balance": self.balance}

    def extra(self) -> dict[str, Any]:
        return {"compute": dict(sorted(self.compute.items()))} if self.compute else {}


@dataclass(frozen=True)
class Api(BlockConfig):
    model: Address | None = None
    replicas: Any = 1                 # a number, or {"min": n, "max": m} for an autoscaler
    port: int | None = None
    promote: str = "if_not_worse"     # or "always": the rollout gate (mlp.engine.gate)
    tolerance: float = 0.02
    max_body_bytes: int = MAX_BODY_BYTES

    def deps(self) -> tuple[Address, ...]:
        return (self.model,) if self.model else ()

    def settings(self) -> dict[str, Any]:
        return {"model": str(self.model)}

    def extra(self) -> dict[str, Any]:
        out: dict[str, Any] = {"replicas": self.replicas, "port": self.port}
        if (self.promote, self.tolerance) != ("if_not_worse", 0.02):  # older states have neither
            out.update(promote=self.promote, tolerance=self.tolerance)
        if self.max_body_bytes != MAX_BODY_BYTES:
            out["max_body_bytes"] = self.max_body_bytes
        return out


@dataclass(frozen=True)
class CustomCode(BlockConfig):
    """An `aggregator`, `transformer` or `estimator` block: a Python file of the user's."""

    path: str = ""
    output_type: ColumnType | None = None
    categorical: bool = False
    inputs: tuple[str, ...] | None = None  # the declared input names; None: not declared

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path,
                               "output_type": self.output_type.value if self.output_type else None,
                               "categorical": self.categorical}
        if self.inputs is not None:
            out["inputs"] = list(self.inputs)
        return out


@dataclass(frozen=True)
class Variable:
    name: str
    pos: SourcePos
    default: Any = None
    description: str = ""
    type: str = "any"
    has_default: bool = False


@dataclass(frozen=True)
class ProviderConfig:
    kind: str
    pos: SourcePos
    settings: Mapping[str, Any]

    @property
    def parallelism(self) -> int:
        return int(self.settings.get("parallelism", 2))


@dataclass(frozen=True)
class BackendConfig:
    kind: str
    pos: SourcePos | None
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class App:
    """A whole app: every built block by address, plus its variables, provider, backend."""

    name: str
    dir: Path
    blocks: Mapping[Address, BlockConfig]
    variables: Mapping[str, Any]
    provider: ProviderConfig
    backend: BackendConfig
    files: tuple[str, ...]

    def built(self) -> list[BlockConfig]:
        return [b for a, b in sorted(self.blocks.items()) if a.kind.builds]
