"""`ObjectLogStore`: block logs written to a local file, kept in the object store.

A job appends to a local file (`path`), as with the local backend; `flush(address)` uploads
that block's log whole to `logs/<address>.log` (one PUT or upload: readers see the previous
upload or this one). `read` prefers the local copy, which is at least as new as the upload
made from it, and reads the bucket's when this machine has none (a log written elsewhere).
File names are the local backend's: plain addresses keep their names, an instance's key is
percent-encoded.
"""

from __future__ import annotations

from pathlib import Path

from mlp.state.backends.objects import ObjectStore
from mlp.state.local import LocalLogStore

LOGS = "logs/"


class ObjectLogStore:
    def __init__(self, store: ObjectStore, cache: Path) -> None:
        self.store = store
        self._local = LocalLogStore(cache)

    def path(self, address: str) -> Path:
        return self._local.path(address)

    def flush(self, address: str) -> None:
        path = self._local.path(address)
        if path.is_file():
            self.store.upload_file(LOGS + path.name, path)

    def read(self, address: str) -> str:
        path = self._local.path(address)
        if path.is_file():
            return self._local.read(address)
        data = self.store.get(LOGS + path.name)
        return "" if data is None else data.decode("utf-8", errors="replace")
