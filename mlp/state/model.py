"""The state model: what mlp remembers about every block it built.

`State` is the whole of it (the `state.json` document); `BlockRecord` is one block's entry.
Both are frozen: changes make new values (`State.with_block`, ...), and only a backend
makes them durable. `from_json` checks types and raises `ValueError` naming the bad field;
backends turn that into a `StateError` that names the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

FORMAT_VERSION = 1
STATUS_DONE = "done"
STATUS_FAILED = "failed"
STATUSES = frozenset({STATUS_DONE, STATUS_FAILED})
_FINGERPRINT_RE = re.compile(r"^[0-9a-f]{64}$")


def utc_now() -> str:
    """The current time as ISO 8601 UTC with a `Z`, to the second: `2026-01-02T03:04:05Z`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class BlockRecord:
    """One built (or failed) block, as of its last apply.

    Invariants: `fingerprint` is 64 lowercase hex characters; `status` is "done" or
    "failed"; `artifact` is a key in the backend's artifact store, or None (a failed block,
    or a block whose output lives only in `metrics`); `inputs` maps each upstream address to
    the fingerprint it had when this block was built; timestamps are ISO 8601 UTC; `refs`
    are the other artifact keys the output reads (a column's table): refresh checks them
    with `artifact`; `seconds` is how long the block's last real build took (None: never
    measured), which the plan shows as its estimate.
    """

    address: str
    kind: str
    fingerprint: str
    status: str
    artifact: str | None
    settings: dict[str, Any]
    extra: dict[str, Any]
    inputs: dict[str, str]
    code: str | None
    metrics: dict[str, Any]
    digest: str | None
    created_at: str
    updated_at: str
    refs: tuple[str, ...] = ()
    seconds: float | None = None

    def __post_init__(self) -> None:
        if not _FINGERPRINT_RE.match(self.fingerprint):
            raise ValueError(f"{self.address}: fingerprint must be 64 hex characters, got {self.fingerprint!r}")
        if self.status not in STATUSES:
            raise ValueError(f"{self.address}: status must be one of {sorted(STATUSES)}, got {self.status!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "kind": self.kind,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "artifact": self.artifact,
            "settings": self.settings,
            "extra": self.extra,
            "inputs": dict(sorted(self.inputs.items())),
            "code": self.code,
            "metrics": self.metrics,
            "digest": self.digest,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            **({"refs": list(self.refs)} if self.refs else {}),
            **({"seconds": self.seconds} if self.seconds is not None else {}),
        }

    @classmethod
    def from_json(cls, d: Any) -> BlockRecord:
        """Parse a record; raises ValueError naming the first bad field."""
        address = d.get("address") if isinstance(d, dict) else None
        r = JsonFields(d, f"block {address}" if isinstance(address, str) else "block record")
        return cls(
            address=r.get("address", str),
            kind=r.get("kind", str),
            fingerprint=r.get("fingerprint", str),
            status=r.get("status", str),
            artifact=r.optional("artifact", str),
            settings=r.get("settings", dict),
            extra=r.get("extra", dict),
            inputs=r.get("inputs", dict),
            code=r.optional("code", str),
            metrics=r.get("metrics", dict),
            digest=r.optional("digest", str),
            created_at=r.get("created_at", str),
            updated_at=r.get("updated_at", str),
            refs=_refs(d.get("refs", [])),
            seconds=_seconds(d.get("seconds")),
        )


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError("seconds must be a number of seconds, 0 or more")
    return float(value)


def _refs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("refs must be a list of artifact keys")
    return tuple(value)


@dataclass(frozen=True)
class State:
    """Everything mlp knows about one app's built blocks.

    Invariants: `version` is FORMAT_VERSION; `lineage` is a uuid4 made when the state is
    first created and never changes afterwards (a state with another lineage belongs to
    another app); `serial` grows by one with every durable change, so two states with the
    same lineage and serial are the same; `blocks` is keyed by each record's own address.
    The `with_*` methods never change `serial`: only a backend does, when it stores.
    """

    version: int
    lineage: str
    serial: int
    provider: str | None = None
    blocks: Mapping[str, BlockRecord] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls) -> State:
        """An empty state with a fresh lineage and serial 0."""
        return cls(version=FORMAT_VERSION, lineage=uuid4(), serial=0)

    def with_block(self, record: BlockRecord) -> State:
        """This state with `record` added, or replacing the record at its address."""
        return self._replace(blocks={**self.blocks, record.address: record})

    def without_block(self, address: str) -> State:
        """This state without the block at `address` (unchanged if there is none)."""
        return self._replace(blocks={a: r for a, r in self.blocks.items() if a != address})

    def with_output(self, key: str, value: Any | None) -> State:
        """This state with output `key` set to `value`; None removes it."""
        outputs = {k: v for k, v in self.outputs.items() if k != key}
        if value is not None:
            outputs[key] = value
        return self._replace(outputs=outputs)

    def with_serial(self, serial: int) -> State:
        return self._replace(serial=serial)

    def with_provider(self, provider: str | None) -> State:
        return self._replace(provider=provider)

    def _replace(self, **changes: Any) -> State:
        fields = {
            "version": self.version,
            "lineage": self.lineage,
            "serial": self.serial,
            "provider": self.provider,
            "blocks": self.blocks,
            "outputs": self.outputs,
        }
        return State(**{**fields, **changes})

    def to_json(self) -> dict[str, Any]:
        """The `state.json` document; blocks and outputs sorted by key, so it diffs cleanly."""
        return {
            "version": self.version,
            "lineage": self.lineage,
            "serial": self.serial,
            "provider": self.provider,
            "blocks": {a: self.blocks[a].to_json() for a in sorted(self.blocks)},
            "outputs": dict(sorted(self.outputs.items())),
        }

    @classmethod
    def from_json(cls, d: Any) -> State:
        """Parse a `state.json` document; raises ValueError naming the first bad field."""
        r = JsonFields(d, "state")
        version = r.get("version", int)
        if version != FORMAT_VERSION:
            raise ValueError(f"state format version {version} is not supported (this mlp reads version {FORMAT_VERSION})")
        blocks = {}
        for address, raw in r.get("blocks", dict).items():
            record = BlockRecord.from_json(raw)
            if record.address != address:
                raise ValueError(f"block {address}: its record says address {record.address!r}")
            blocks[address] = record
        return cls(
            version=version,
            lineage=r.get("lineage", str),
            serial=r.get("serial", int),
            provider=r.optional("provider", str),
            blocks=blocks,
            outputs=r.get("outputs", dict),
        )


@dataclass(frozen=True)
class JournalEntry:
    """One durable change made since the state was last stored whole.

    Backends append these (a journal line, or one object each in an object store) so that
    recording a block costs the same however large the state is. Invariants: `serial` is the
    state's serial once this entry is applied; `op` is "block" (with `record`), "remove"
    (with `address`) or "output" (with `key` and `value`, None removing the output).
    """

    serial: int
    op: str
    record: BlockRecord | None = None
    address: str | None = None
    key: str | None = None
    value: Any = None

    def __post_init__(self) -> None:
        present = {"block": self.record is not None, "remove": self.address is not None, "output": self.key is not None}
        if not present.get(self.op, False):
            raise ValueError(f"journal entry {self.serial}: op {self.op!r} is unknown or lacks its fields")

    @classmethod
    def block(cls, serial: int, record: BlockRecord) -> JournalEntry:
        return cls(serial, "block", record=record)

    @classmethod
    def remove(cls, serial: int, address: str) -> JournalEntry:
        return cls(serial, "remove", address=address)

    @classmethod
    def output(cls, serial: int, key: str, value: Any | None) -> JournalEntry:
        return cls(serial, "output", key=key, value=value)

    def apply(self, state: State) -> State:
        """`state` with this change made and its serial set to this entry's."""
        if self.op == "block" and self.record is not None:
            state = state.with_block(self.record)
        elif self.op == "remove" and self.address is not None:
            state = state.without_block(self.address)
        elif self.op == "output" and self.key is not None:
            state = state.with_output(self.key, self.value)
        return state.with_serial(self.serial)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"serial": self.serial, "op": self.op}
        if self.op == "block" and self.record is not None:
            d["record"] = self.record.to_json()
        elif self.op == "remove":
            d["address"] = self.address
        else:
            d["key"] = self.key
            d["value"] = self.value
        return d

    @classmethod
    def from_json(cls, d: Any) -> JournalEntry:
        """Parse an entry; raises ValueError naming the first bad field."""
        r = JsonFields(d, "journal entry")
        serial, op = r.get("serial", int), r.get("op", str)
        if op == "block":
            return cls.block(serial, BlockRecord.from_json(r.get("record", dict)))
        if op == "remove":
            return cls.remove(serial, r.get("address", str))
        if op == "output":
            return cls.output(serial, r.get("key", str), r.d.get("value"))
        raise ValueError(f"journal entry {serial}: unknown op {op!r}")


class JsonFields:
    """Typed access to a JSON object's fields, with errors that say where."""

    def __init__(self, d: Any, where: str) -> None:
        if not isinstance(d, dict):
            # ValueError, like every other malformed-document error the parsers raise
            raise ValueError(f"{where}: expected an object, got {type(d).__name__}")  # noqa: TRY004
        self.d = d
        self.where = where

    def get(self, name: str, typ: type) -> Any:
        if name not in self.d:
            raise ValueError(f"{self.where}: missing field {name!r}")
        value = self.d[name]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise ValueError(f"{self.where}: field {name!r} must be {_TYPE_NAMES[typ]}, got {value!r}")
        return value

    def optional(self, name: str, typ: type) -> Any:
        if self.d.get(name) is None:
            return None
        return self.get(name, typ)


_TYPE_NAMES: dict[type, str] = {str: "a string", int: "an integer", dict: "an object"}


def uuid4() -> str:
    """A random UUID (version 4) as `uuid.uuid4()` writes it, without importing `uuid`, which
    imports `platform`: 2.5 ms of every plan's start-up (bench/plan)."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
