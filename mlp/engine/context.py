"""The shared state of one apply: the plan, the backend, and what has finished so far.

Recording a block is the engine's only way to change state: `RunContext.record` appends
one journal entry (O(1), whatever the size of the app) and tells the hooks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlp.config.blocks import BlockConfig
from mlp.engine.events import BlockEvent, Hooks, Status
from mlp.errors import ApplyError, MlpError
from mlp.graph.address import Address, Kind
from mlp.graph.analysis import Analysis
from mlp.plan.model import Action, Change, Plan, Reason
from mlp.providers import JobLog, Provider, provider_for
from mlp.state.backend import ArtifactStore, Backend, artifact_key
from mlp.state.model import STATUS_DONE, BlockRecord, State, utc_now

META = "meta.json"


class ArtifactMissing(ApplyError):
    """An artifact the state records is gone from the store."""


def value_digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class RunContext:
    analysis: Analysis
    plan: Plan
    backend: Backend
    state: State
    hooks: Hooks
    parallelism: int = 2
    records: dict[str, BlockRecord] = field(default_factory=dict)
    cut: set[str] = field(default_factory=set)   # rebuilt, output identical to before
    carried: set[str] = field(default_factory=set)  # carried over by early cut-off, not run
    failed: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _logged: set[str] = field(default_factory=set)  # blocks whose log got this run's header
    _provider: Provider | None = None

    @property
    def store(self) -> ArtifactStore:
        return self.backend.artifacts()

    @property
    def provider(self) -> Provider:
        """The app's provider: the only way this apply reaches compute."""
        with self._lock:
            if self._provider is None:
                self._provider = provider_for(self.analysis.app.provider, self.analysis.app)
            return self._provider

    def job_log(self, addr: Address) -> JobLog:
        """A block's log, as the provider's jobs write to it."""
        return JobLog(str(addr), str(self.log_path(addr)), lambda line, echo: self.log(addr, line, echo))

    def cfg(self, addr: Address) -> BlockConfig:
        return self.analysis.app.blocks[addr]

    def fp(self, addr: Address) -> str:
        return self.analysis.fingerprints[addr].value

    def change(self, addr: Address) -> Change | None:
        return self.plan.change(addr)

    def action(self, addr: Address) -> Action:
        ch = self.change(addr)
        return ch.action if ch else Action.NOOP

    def key(self, addr: Address) -> str:
        return artifact_key(self.fp(addr))

    def current(self, addr: Address) -> BlockRecord | None:
        """This apply's record of a block, else the state's (for no-op blocks)."""
        with self._lock:
            rec = self.records.get(str(addr))
        return rec or self.state.blocks.get(str(addr))

    def meta(self, addr: Address) -> dict[str, Any]:
        """The meta.json of the block's artifact at its current fingerprint; an
        ArtifactMissing error when the store no longer holds it (refresh plans that as
        `artifact_missing`; this is what is left with --refresh=false)."""
        rec = self.current(addr)
        key = rec.artifact if rec and rec.artifact else self.key(addr)
        meta = read_meta(self.store, key)
        if not meta:
            raise ArtifactMissing(f"{addr}: its artifact {key} is missing from the store",
                                  "Something deleted it after it was built.",
                                  "Run `mlp plan`: refresh plans the missing artifacts to be rebuilt "
                                  "(do not pass --refresh=false).")
        return meta

    def needs_work(self, addr: Address) -> bool:
        """Create/rebuild/update, unless early cut-off lets it carry the old output over."""
        act = self.action(addr)
        if act not in (Action.CREATE, Action.REBUILD, Action.UPDATE):
            return False
        return not self.try_carry(addr)

    def try_carry(self, addr: Address) -> bool:
        """Early cut-off: a block rebuilt only because of inputs whose output did not change
        keeps its previous output under the new fingerprint."""
        ch = self.change(addr)
        old = self.state.blocks.get(str(addr))
        if ch is None or old is None or ch.reason is not Reason.UPSTREAM_CHANGED or old.artifact is None:
            return False
        new_inputs = self.analysis.fingerprints[addr].inputs
        changed = [a for a, v in new_inputs.items() if old.inputs.get(a) != v]
        if set(new_inputs) != set(old.inputs) or not changed or not all(a in self.cut for a in changed):
            return False
        if not self.store.has(old.artifact):
            return False
        if addr.kind is Kind.MODEL:
            self._carry_model(addr, old)
        else:
            self._alias(old.artifact, self.key(addr))
        self.record(addr, self.key(addr), old.metrics, old.digest, status=Status.CACHED,
                    info="output unchanged upstream (early cut-off)")
        with self._lock:
            self.cut.add(str(addr))
            self.carried.add(str(addr))
        return True

    def _alias(self, old_key: str, new_key: str, skip: tuple[str, ...] = ()) -> Path | None:
        """The old artifact's files linked under the new key; with `skip`, those items are
        left out and the unfinished folder is returned for the caller to complete and commit."""
        if old_key == new_key or (self.store.has(new_key) and not skip):
            return None
        tmp = self.store.temp_dir(new_key)
        src = self.store.local_path(old_key)
        for item in src.iterdir():
            if item.name in skip:
                continue
            dest = tmp / item.name
            if item.is_dir():
                shutil.copytree(item, dest, copy_function=_link_or_copy)
            else:
                _link_or_copy(str(item), str(dest))
        if skip:
            return tmp
        self.store.commit(new_key, tmp)
        return None

    def _carry_model(self, addr: Address, old: BlockRecord) -> None:
        """Early cut-off of a model keeps its trained weights, never its old serving bundle:
        the bundle is written again from this app (custom code, aggregate values, the new
        fingerprint), so what serves is what the state says."""
        from mlp.engine.bundle import build_bundle

        assert old.artifact is not None
        new_key = self.key(addr)
        tmp = self._alias(old.artifact, new_key, skip=("bundle",))
        if tmp is None:
            return
        saved = self.store.local_path(old.artifact) / "bundle" / "saved_model"
        if not (tmp / "saved_model").exists():
            shutil.copytree(saved, tmp / "saved_model", copy_function=_link_or_copy)
        metrics = old.metrics if isinstance(old.metrics, dict) else {}
        build_bundle(self, addr, tmp, metrics.get("labels"), metrics.get("eval") or {})
        self.store.commit(new_key, tmp)

    def reuse(self, addr: Address) -> None:
        meta = read_meta(self.store, self.key(addr))
        self.record(addr, self.key(addr), meta.get("metrics", {}), meta.get("digest"),
                    status=Status.CACHED, info="reused from the artifact store")

    def record(self, addr: Address, artifact: str | None, metrics: dict[str, Any], digest: str | None,
               status: Status = Status.DONE, seconds: float = 0.0, info: str = "",
               details: tuple[str, ...] = ()) -> BlockRecord:
        fp = self.analysis.fingerprints[addr]
        old = self.state.blocks.get(str(addr))
        now = utc_now()
        rec = BlockRecord(address=str(addr), kind=addr.kind.value, fingerprint=fp.value, status=STATUS_DONE,
                          artifact=artifact, settings=dict(fp.settings), extra=self.cfg(addr).extra(),
                          inputs=dict(fp.inputs), code=fp.code, metrics=metrics, digest=digest,
                          created_at=old.created_at if old else now, updated_at=now,
                          refs=self._refs(artifact), seconds=_last_run(old, status, seconds))
        return self.adopt(rec, status, seconds, info, details)

    def adopt(self, rec: BlockRecord, status: Status = Status.DONE, seconds: float = 0.0, info: str = "",
              details: tuple[str, ...] = ()) -> BlockRecord:
        """Store a finished block's record (made here, or reported by a job that ran
        elsewhere) and tell the hooks."""
        self.backend.record_block(rec)
        self.note(rec, status)
        self._flush_log(rec.address)
        self.hooks.block(BlockEvent(rec.address, status, seconds, info, details))
        return rec

    def _flush_log(self, address: str) -> None:
        """A finished block's log goes to the backend's log store (a no-op when local)."""
        if address in self._logged:
            self.backend.logs().flush(address)

    def note(self, rec: BlockRecord, status: Status) -> None:
        """Keep a finished block's record for the rest of the apply; an output identical to
        the previous one is a cut for early cut-off, and so is one carried over."""
        old = self.state.blocks.get(rec.address)
        with self._lock:
            self.records[rec.address] = rec
            if old is not None and rec.digest is not None and old.digest == rec.digest and status is Status.DONE:
                self.cut.add(rec.address)

    def _first_line(self, addr: str) -> bool:
        with self._lock:
            first = addr not in self._logged
            self._logged.add(addr)
        return first

    def _header(self, addr: str) -> str:
        """The line that opens a block's part of a run's log: when, and why it runs."""
        try:
            ch = self.change(Address.parse(addr))
        except ValueError:
            ch = None
        why = f": {ch.action.value} ({ch.reason.value})" if ch is not None else ""
        return f"\n=== mlp apply, {utc_now()}{why} ===\n"

    def _refs(self, artifact: str | None) -> tuple[str, ...]:
        """The table a column's artifact points at, when it is another artifact."""
        if artifact is None:
            return ()
        table = read_meta(self.store, artifact).get("table")
        return (table,) if isinstance(table, str) and table != artifact else ()

    def fail(self, addr: Address, message: str, seconds: float = 0.0) -> None:
        with self._lock:
            self.failed[str(addr)] = message
        with contextlib.suppress(MlpError, OSError):  # the failure is reported whatever the log store says
            self._flush_log(str(addr))
        self.hooks.block(BlockEvent(str(addr), Status.FAILED, seconds, message.splitlines()[0] if message else ""))

    def log_path(self, addr: Address | str) -> Path:
        return self.backend.logs().path(str(addr))

    def log(self, addr: Address | str, line: str, echo: bool = True) -> None:
        path = self.log_path(addr)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            if self._first_line(str(addr)):
                fh.write(self._header(str(addr)))
            fh.write(f"{time.strftime('%H:%M:%S')} {line}\n")
        if echo:
            self.hooks.log(str(addr), line)


def _last_run(old: BlockRecord | None, status: Status, seconds: float) -> float | None:
    """A real build's duration; a carried or reused block keeps the one it had."""
    if status is Status.CACHED:
        return old.seconds if old is not None else None
    return round(seconds, 3)


def _link_or_copy(src: str, dst: str) -> str:
    import os

    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def read_meta(store: ArtifactStore, key: str) -> dict[str, Any]:
    try:
        data = json.loads((store.local_path(key) / META).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    (folder / META).write_text(json.dumps(meta, indent=1, default=str, sort_keys=True))


def commit_meta(store: ArtifactStore, key: str, meta: dict[str, Any]) -> None:
    tmp = store.temp_dir(key)
    write_meta(tmp, meta)
    store.commit(key, tmp)
