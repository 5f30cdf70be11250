"""Sources in object storage: `s3://bucket/key`, `gs://bucket/key`,
`abfs://container@account.dfs.core.windows.net/key` (a key may end in a folder or hold a glob).

A source there is fingerprinted from its objects' metadata, never their bytes: each object's
name, size and version (an S3 ETag, a GCS generation, an Azure ETag), listed once. The local
provider reads such a source by downloading its objects into a local cache folder named by
that fingerprint, so a second apply with the same objects downloads nothing.

Which server: the app's backend block's `endpoint` and `region` when the backend is of the same
kind (one S3-compatible server for both), else each SDK's standard chain (`AWS_ENDPOINT_URL`,
`STORAGE_EMULATOR_HOST`, `AZURE_STORAGE_CONNECTION_STRING`, and their credentials).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlp.errors import UsageError

SCHEMES = {"s3": "s3", "s3a": "s3", "gs": "gcs", "abfs": "azurerm", "abfss": "azurerm"}
_URI = re.compile(r"^(?P<scheme>[a-z0-9]+)://(?P<authority>[^/]+)/?(?P<key>.*)$")
_ABFS_AUTHORITY = re.compile(r"^(?P<container>[^@]+)@(?P<account>[^.]+)\.dfs\.core\.windows\.net$")
_HIDDEN = ("_", ".")  # Spark's _SUCCESS and _committed files, and hidden ones


@dataclass(frozen=True)
class Location:
    """A parsed object-storage URI: the backend kind, its bucket (container and account for
    Azure) and the key, which may name one object, a folder or a glob."""

    uri: str
    kind: str
    bucket: str
    key: str
    account: str = ""

    @property
    def listing_prefix(self) -> str:
        """The longest prefix before any glob character."""
        cut = min((i for i, c in enumerate(self.key) if c in "*?["), default=len(self.key))
        return self.key[:cut]

    def matches(self, name: str) -> bool:
        if any(c in self.key for c in "*?["):
            return fnmatch.fnmatchcase(name, self.key)
        folder = self.key.rstrip("/") + "/"
        return name == self.key or not self.key or name.startswith(folder)


@dataclass(frozen=True)
class RemoteObject:
    name: str
    size: int
    version: str


@dataclass(frozen=True)
class RemoteData:
    """A source's objects and the fingerprint made from their metadata."""

    location: Location
    objects: tuple[RemoteObject, ...]
    value: str


def parse(uri: str) -> Location | None:
    """The location of an object-storage URI; None when `uri` is not one."""
    m = _URI.match(uri)
    if m is None or m["scheme"] not in SCHEMES:
        return None
    kind = SCHEMES[m["scheme"]]
    if kind == "azurerm":
        a = _ABFS_AUTHORITY.match(m["authority"])
        if a is None:
            raise UsageError(f"Cannot read the Azure location {uri}",
                             "An abfs:// location is abfs://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH.",
                             "Write the path in that form.")
        return Location(uri, kind, a["container"], m["key"], a["account"])
    return Location(uri, kind, m["authority"], m["key"])


def store_settings(loc: Location, backend_kind: str, backend: Mapping[str, Any]) -> dict[str, Any]:
    """The object store's settings for a location: its bucket, plus the endpoint (and region)
    of the app's backend when that is of the same kind."""
    settings: dict[str, Any] = {"bucket": loc.bucket, "prefix": ""}
    if loc.kind == "azurerm":
        settings = {"account": loc.account, "container": loc.bucket, "prefix": ""}
    if backend_kind == loc.kind:
        for name in ("endpoint", "region"):
            if backend.get(name):
                settings[name] = backend[name]
    return settings


def _store(loc: Location, backend_kind: str, backend: Mapping[str, Any]) -> Any:
    from mlp.state.backends import open_store

    return open_store(loc.kind, store_settings(loc, backend_kind, backend), os.environ)


def describe(loc: Location, backend_kind: str = "", backend: Mapping[str, Any] | None = None) -> RemoteData:
    """List a source's objects and fingerprint them by name, size and version; no data is read."""
    from mlp.state.backends.objects import parallel

    store = _store(loc, backend_kind, backend or {})
    names = [n for n in store.list(loc.listing_prefix)
             if loc.matches(n) and not n.endswith("/") and not n.rsplit("/", 1)[-1].startswith(_HIDDEN)]
    stats = parallel(store.stat, names)
    objects = tuple(RemoteObject(s.name, s.size, s.version) for s in stats if s is not None)
    h = hashlib.sha256()
    for o in objects:
        h.update(f"{o.name}\0{o.size}\0{o.version}\n".encode())
    return RemoteData(loc, objects, h.hexdigest())


def stage(data: RemoteData, cache: Path, backend_kind: str = "", backend: Mapping[str, Any] | None = None) -> Path:
    """A local folder holding the source's objects (downloaded once per fingerprint, into a
    temporary folder renamed into place whole), with their names below the listing prefix."""
    from mlp.state.backends.objects import parallel

    final = cache / data.value[:2] / data.value
    if final.is_dir():
        return final
    store = _store(data.location, backend_kind, backend or {})
    tmp = cache / ".tmp" / f"{data.value}-{uuid.uuid4().hex[:8]}"
    base = data.location.listing_prefix.rsplit("/", 1)[0] + "/" if "/" in data.location.listing_prefix else ""

    def fetch(obj: RemoteObject) -> None:
        dest = tmp / (obj.name[len(base):] if obj.name.startswith(base) else obj.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not store.download_file(obj.name, dest):
            raise UsageError(f"{store.url(obj.name)} disappeared while it was read",
                             "It was listed a moment before.", "Run the command again.")

    tmp.mkdir(parents=True)
    try:
        parallel(fetch, list(data.objects))
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
