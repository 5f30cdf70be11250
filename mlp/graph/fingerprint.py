"""Fingerprints: a hash of what determines a block's output, and nothing else (SPEC §4).

    fingerprint = sha256(kind, settings, code identity, {input address: input fingerprint})

`settings` are the block's normalised meaning (defaults filled, names, descriptions,
replicas and compute left out). Code identity is `builtin:NAME@VERSION`, `file:SHA256`
for custom code, or `data:SHA256` for a source. A source's settings also hold the checks
of its raw columns, since together they decide which rows survive ingest.

An instance of a block with `for_each` is fingerprinted as a block is, by its settings after
`each` is substituted: its key is not hashed, so two instances with the same settings and
inputs differ by address only. Inputs are keyed by address and models' features come from
splats in key order, so no fingerprint depends on the order of a `for_each` value's keys.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from mlp.builtins.catalogue import AGGREGATORS, ESTIMATORS, TRAINING_DEFAULTS, TRANSFORMERS
from mlp.config import blocks as B
from mlp.diagnostics import Diagnostics
from mlp.graph.address import Address, Kind
from mlp.graph.dag import Graph
from mlp.graph.datahash import DataHash, FileHash, HashCache, Refused, Unreadable, data_hash, file_hash
from mlp.safeio import special_kind

INGEST_VERSION = "1"
API_VERSION = "1"


@dataclass(frozen=True)
class Fingerprint:
    """A block's fingerprint and the parts it was made from (kept in state for diffs)."""

    value: str
    settings: Mapping[str, Any]
    code: str
    inputs: Mapping[str, str] = field(default_factory=dict)


# One encoder for every digest: what `json.dumps(obj, sort_keys=True, separators=(",", ":"),
# default=str)` makes, without building an encoder per block.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def canonical(obj: Any) -> str:
    return _CANONICAL.encode(obj)


def digest(obj: Any) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()


def effective_settings(app: B.App, cfg: B.BlockConfig, sample: int | None) -> dict[str, Any]:
    """Settings with every default the runtime will use filled in."""
    s = cfg.settings()
    if isinstance(cfg, B.Source):
        if sample is not None:
            s["sample"] = sample
        s["columns"] = {c.name: {"column": c.column, **c.checks()} for c in app.blocks.values()
                        if isinstance(c, B.RawColumn) and c.source == cfg.address}
    elif isinstance(cfg, B.Aggregate) and not cfg.custom and cfg.aggregator in AGGREGATORS:
        s["args"] = {a.name: a.default for a in AGGREGATORS[cfg.aggregator].args if a.default is not None} | s["args"]
    elif isinstance(cfg, B.TransformedColumn) and not cfg.custom and cfg.transformer in TRANSFORMERS:
        s["args"] = {a.name: a.default for a in TRANSFORMERS[cfg.transformer].args if a.default is not None} | s["args"]
    elif isinstance(cfg, B.Model):
        if not cfg.custom and cfg.estimator in ESTIMATORS:
            s["hparams"] = dict(ESTIMATORS[cfg.estimator].hparams) | s["hparams"]
        s["training"] = dict(TRAINING_DEFAULTS) | s["training"]
    return s


def code_identity(cfg: B.BlockConfig, code_fps: Mapping[Address, str], data_fps: Mapping[Address, str]) -> str:
    if isinstance(cfg, B.Source):
        return "data:" + data_fps.get(cfg.address, "")
    if isinstance(cfg, B.RawColumn):
        return f"builtin:ingest@{INGEST_VERSION}"
    if isinstance(cfg, B.Api):
        return f"builtin:api@{API_VERSION}"
    custom = getattr(cfg, "custom", None)
    if custom is not None:
        return "file:" + code_fps.get(custom, "")
    if isinstance(cfg, B.Aggregate):
        spec = AGGREGATORS.get(cfg.aggregator)
        return f"builtin:{cfg.aggregator}@{spec.version if spec else '?'}"
    if isinstance(cfg, B.TransformedColumn):
        if cfg.model:
            return "builtin:model_column@1"
        tspec = TRANSFORMERS.get(cfg.transformer)
        return f"builtin:{cfg.transformer}@{tspec.version if tspec else '?'}"
    if isinstance(cfg, B.Model):
        espec = ESTIMATORS.get(cfg.estimator)
        return f"builtin:{cfg.estimator}@{espec.version if espec else '?'}"
    return "none"


def hash_inputs(app: B.App, cache: HashCache, diags: Diagnostics) -> tuple[dict[Address, str], dict[Address, str]]:
    """Content hashes of every source's data and every custom code file. A path that names
    nothing, or something that is not a regular file (a FIFO, a device), is reported at the
    block's `path`: it is never read, since that could block or never end."""
    data: dict[Address, str] = {}
    code: dict[Address, str] = {}
    hashed = {a: c for a, c in app.blocks.items() if isinstance(c, (B.Source, B.CustomCode))}
    for addr in sorted(hashed):
        cfg = hashed[addr]
        if isinstance(cfg, B.Source) and "://" in cfg.path:
            remote = _remote_hash(app, addr, cfg, diags)
            if remote is not None:
                data[addr] = remote
        elif isinstance(cfg, B.Source):
            found = data_hash(app.dir, cfg.path, cache)
            if isinstance(found, DataHash):
                data[addr] = found.value
            else:
                _report_unhashed(addr, cfg, found, app.dir, diags)
        elif isinstance(cfg, B.CustomCode):
            p = app.dir / cfg.path
            result = file_hash(app.dir, p, cache) if special_kind(p) or p.is_file() else None
            if isinstance(result, FileHash):
                code[addr] = result.sha256
            else:
                _report_unhashed(addr, cfg, result, app.dir, diags)
    cache.save()
    return data, code


def _remote_hash(app: B.App, addr: Address, cfg: B.Source, diags: Diagnostics) -> str | None:
    """A source in object storage, fingerprinted by its objects' names, sizes and versions
    (metadata only); a URL of another kind keeps the hash of its text."""
    import hashlib

    from mlp import objectdata
    from mlp.errors import MlpError

    try:
        loc = objectdata.parse(cfg.path)
        if loc is None:
            return hashlib.sha256(("remote:" + cfg.path).encode()).hexdigest()
        found = objectdata.describe(loc, app.backend.kind, app.backend.settings)
    except MlpError as e:
        diags.error(f"Cannot list the data of {addr}", cfg.where("path"), e.summary + (f": {e.detail}" if e.detail
                    else ""), e.hint, addr.context)
        return None
    if not found.objects:
        diags.error(f"No data found for {addr}", cfg.where("path"), f"No object matches {cfg.path}.",
                    "Fix the path, or put the data there.", addr.context)
        return None
    return found.value


def _report_unhashed(addr: Address, cfg: B.Source | B.CustomCode, why: Refused | Unreadable | None,
                     app_dir: Path, diags: Diagnostics) -> None:
    ctx = addr.context
    pos = cfg.where("path")
    if isinstance(why, Refused):
        diags.error(f"{addr} would read {why.what}: {why.path}", pos,
                    f'"{why.path}" is {why.what}, not a regular file. mlp reads regular files and folders of '
                    "regular files only (symlinks are followed): reading anything else could block or never end.",
                    f'Point "path" at regular files, or move "{why.path}" out of the way.', ctx)
    elif isinstance(why, Unreadable):
        diags.error(f"Cannot read {why.path} for {addr}", pos, f'"{why.path}": {why.error}.',
                    "Check the file's permissions.", ctx)
    elif isinstance(cfg, B.Source):
        diags.error(f'No data found for {addr}', pos,
                    f"Nothing matches path {_quoted(cfg.path)} (relative to {app_dir}).",
                    "Fix the path, or put the data there.", ctx)
    else:
        diags.error(f"Code file not found for {addr}", pos,
                    f"{_quoted(cfg.path)} does not exist (relative to {app_dir}).",
                    "Fix the path, or create the file.", ctx)


def _quoted(path: str) -> str:
    """A path in double quotes, control characters escaped (a NUL is never echoed raw)."""
    return json.dumps(path, ensure_ascii=False)


def fingerprints(app: B.App, graph: Graph, data_fps: Mapping[Address, str],
                 code_fps: Mapping[Address, str], sample: int | None) -> dict[Address, Fingerprint]:
    out: dict[Address, Fingerprint] = {}
    for addr in graph.order:
        cfg = app.blocks[addr]
        if not addr.kind.builds:
            continue
        settings = effective_settings(app, cfg, sample)
        code = code_identity(cfg, code_fps, data_fps)
        inputs = {str(d): out[d].value for d in graph.deps[addr] if d in out}
        value = digest({"kind": addr.kind.value, "settings": settings, "code": code, "inputs": inputs})
        out[addr] = Fingerprint(value, settings, code, inputs)
    return out


def kind_of(address: str) -> Kind:
    return Kind(address.split(".", 1)[0])
