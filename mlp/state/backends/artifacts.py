"""`CachedArtifactStore`: artifacts in an object store, worked on in a local cache.

    bucket:  artifacts/<key>/<files>        uploaded first, in parallel
             manifests/<key>.json           written last: the key exists once this does
    local:   <cache>/<key>/                 a whole copy, made by a build or by a download
             <cache>/.tmp/<owner>/          this backend's builds in progress (swept)
             <cache>/.tmp/pull/             downloads in progress, renamed into place when whole

Keys are content addresses (a fingerprint), so a copy in the cache is as good as the bucket's,
and one cache folder (`MLP_CACHE_DIR`) can serve several apps; each backend's builds in progress
stay apart under their owner (a digest of the backend's location), so one app's sweep never
removes another's. Manifests live beside the files, not among them, so listing every key
costs one paginated LIST of manifests, however many files the artifacts hold.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from mlp.errors import StateError
from mlp.state.backends.manifest import Manifest, ManifestFile, file_sha256
from mlp.state.backends.objects import ObjectStore, parallel, parse_json

FILES = "artifacts/"
MANIFESTS = "manifests/"
_KEY_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*/[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
_MANIFEST_RE = re.compile(r"^manifests/(.+)\.json$")


class Direction(Enum):
    UPLOAD = "upload"
    DOWNLOAD = "download"


@dataclass(frozen=True)
class TransferProgress:
    """Where one artifact's transfer is: sent after it starts and after each file."""

    direction: Direction
    key: str
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int

    @property
    def finished(self) -> bool:
        return self.files_done == self.files_total


ProgressHook = Callable[[TransferProgress], None]


@dataclass(frozen=True)
class TransferSummary:
    """What `push` or `pull` did with each key asked for, each tuple sorted.

    `moved`: copied now; `present`: already where it was to go; `missing`: in neither place
    (push: not in the local cache; pull: not in the bucket).
    """

    moved: tuple[str, ...]
    present: tuple[str, ...]
    missing: tuple[str, ...]


class CachedArtifactStore:
    """The `ArtifactStore` protocol on an object store, with a local content-addressed cache.

    `has` answers from the local cache and from one listing of the bucket's manifests, taken at
    its first call and kept up to date with this store's own commits and deletes: a planner
    asking about hundreds of keys costs one LIST. A store opened later sees other writers' changes.
    """

    def __init__(self, store: ObjectStore, cache: Path, owner: str = "local",
                 on_progress: ProgressHook | None = None) -> None:
        self.store = store
        self.root = Path(cache)
        self._tmp = self.root / ".tmp" / owner
        self._pulls = self.root / ".tmp" / "pull"
        self._on_progress = on_progress
        self._listed: set[str] | None = None
        self._mutex = threading.RLock()

    # -- the protocol ----------------------------------------------------------------------

    def has(self, key: str) -> bool:
        return self._cached(key).is_dir() or key in self._remote_keys()

    def local_path(self, key: str) -> Path:
        """The cached copy, downloaded first if only the bucket has it."""
        path = self._cached(key)
        if not path.is_dir():
            self._download(key)
        return path

    def temp_dir(self, key: str) -> Path:
        self._tmp.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=_check_key(key).replace("/", "_") + ".", dir=self._tmp))

    def commit(self, key: str, tmp_dir: Path) -> None:
        """Upload every file, then the manifest; then move the folder into the cache. A key
        being replaced loses its manifest first, so it is never seen half old, half new."""
        dest = self._cached(key)
        if Path(tmp_dir).resolve().parent != self._tmp.resolve():
            raise ValueError(f"{tmp_dir} was not made by temp_dir() of this store")
        manifest = Manifest.of_folder(key, Path(tmp_dir))
        if key in self._remote_keys():
            self.store.delete(_manifest_name(key))
        self._upload(manifest, Path(tmp_dir))
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._move_aside(dest)
        os.rename(tmp_dir, dest)

    def delete(self, key: str) -> None:
        """The manifest goes first (the key vanishes at once), then the files, then the copy."""
        self.store.delete(_manifest_name(_check_key(key)))
        self._forget(key)
        self.store.delete_many(self.store.list(f"{FILES}{key}/"))
        self._move_aside(self._cached(key))

    def keys(self) -> list[str]:
        """Every key the bucket holds whole (a fresh listing)."""
        with self._mutex:
            self._listed = None
            return sorted(self._remote_keys())

    def sweep(self) -> int:
        """This backend's builds that never committed. Files a killed commit left in the bucket
        without a manifest are invisible, and overwritten when the key is built again."""
        from mlp.state.local import clear_folder

        return clear_folder(self._tmp)

    # -- state push / pull -----------------------------------------------------------------

    def push(self, keys: Sequence[str]) -> TransferSummary:
        """Upload the cached artifacts the bucket lacks."""
        moved, present, missing = [], [], []
        for key in sorted(set(keys)):
            if key in self._remote_keys():
                present.append(key)
            elif self._cached(key).is_dir():
                self._upload(Manifest.of_folder(key, self._cached(key)), self._cached(key))
                moved.append(key)
            else:
                missing.append(key)
        return TransferSummary(tuple(moved), tuple(present), tuple(missing))

    def pull(self, keys: Sequence[str]) -> TransferSummary:
        """Download the bucket's artifacts the cache lacks."""
        moved, present, missing = [], [], []
        for key in sorted(set(keys)):
            if self._cached(key).is_dir():
                present.append(key)
            elif self._download(key):
                moved.append(key)
            else:
                missing.append(key)
        return TransferSummary(tuple(moved), tuple(present), tuple(missing))

    def uri(self, key: str) -> str:
        """Where the artifact lives in the bucket (what `mlp show` can print without a download)."""
        return self.store.url(f"{FILES}{_check_key(key)}/")

    def location(self, key: str) -> str:
        return self.uri(key)

    # -- transfers ---------------------------------------------------------------------------

    def _upload(self, manifest: Manifest, folder: Path) -> None:
        report = _Reporter(self._on_progress, Direction.UPLOAD, manifest)

        def send(f: ManifestFile) -> None:
            self.store.upload_file(_file_name(manifest.key, f), folder / f.path)
            report.done(f)

        parallel(send, manifest.files)
        self.store.put(_manifest_name(manifest.key), _dumps(manifest))
        with self._mutex:
            self._remote_keys().add(manifest.key)

    def _download(self, key: str) -> bool:
        """Copy the artifact into the cache; False when the bucket has no whole one."""
        data = self.store.get(_manifest_name(_check_key(key)))
        if data is None:
            return False
        manifest = self._parse_manifest(key, data)
        self._pulls.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=key.replace("/", "_") + ".", dir=self._pulls))
        try:
            for d in manifest.dirs:
                (work / d).mkdir(parents=True, exist_ok=True)
            report = _Reporter(self._on_progress, Direction.DOWNLOAD, manifest)

            def fetch(f: ManifestFile) -> None:
                self._fetch(manifest.key, f, work / f.path)
                report.done(f)

            parallel(fetch, manifest.files)
            dest = self._cached(key)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(work, dest)
            except OSError:
                if not dest.is_dir():  # else another process downloaded it first: keep theirs
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return True

    def _fetch(self, key: str, f: ManifestFile, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        name = _file_name(key, f)
        if not self.store.download_file(name, path):
            raise self._damaged(key, name, "it is listed in the manifest but missing from the bucket")
        if path.stat().st_size != f.size or file_sha256(path) != f.sha256:
            raise self._damaged(key, name, "its size or SHA-256 differs from the manifest's")

    # -- helpers ---------------------------------------------------------------------------

    def _remote_keys(self) -> set[str]:
        with self._mutex:  # the engine's threads share the store: one listing for all of them
            if self._listed is None:
                names = self.store.list(MANIFESTS)
                self._listed = {m.group(1) for m in map(_MANIFEST_RE.match, names) if m and _KEY_RE.match(m.group(1))}
            return self._listed

    def _forget(self, key: str) -> None:
        with self._mutex:
            self._remote_keys().discard(key)

    def _cached(self, key: str) -> Path:
        return self.root / _check_key(key)

    def _move_aside(self, path: Path) -> None:
        """Remove `path` by renaming it away first, so it vanishes in one step."""
        if not path.exists():
            return
        self._tmp.mkdir(parents=True, exist_ok=True)
        trash = self._tmp / f"trash-{uuid.uuid4().hex}"
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def _parse_manifest(self, key: str, data: bytes) -> Manifest:
        try:
            manifest = Manifest.from_json(parse_json(data))
        except ValueError as e:
            raise self._damaged(key, _manifest_name(key), str(e)) from None
        if manifest.key != key:
            raise self._damaged(key, _manifest_name(key), f"it is the manifest of {manifest.key}")
        return manifest

    def _damaged(self, key: str, name: str, why: str) -> StateError:
        return StateError(
            f"The artifact {key} in the backend is damaged",
            detail=f"{self.store.url(name)}: {why}.",
            hint=("Remove it so that the next apply builds it again: "
                  f"{self.store.removal_command(_manifest_name(key))}"),
        )


class _Reporter:
    """Counts finished files across the transfer's threads and tells the hook, in order."""

    def __init__(self, hook: ProgressHook | None, direction: Direction, manifest: Manifest) -> None:
        self._hook, self._direction, self._key = hook, direction, manifest.key
        self._total, self._bytes_total = len(manifest.files), manifest.size
        self._files = self._bytes = 0
        self._mutex = threading.Lock()
        self._send()

    def done(self, f: ManifestFile) -> None:
        with self._mutex:
            self._files += 1
            self._bytes += f.size
            self._send()

    def _send(self) -> None:
        if self._hook is not None:
            self._hook(TransferProgress(self._direction, self._key, self._files, self._total,
                                        self._bytes, self._bytes_total))


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise ValueError(f"not an artifact key (PREFIX/NAME): {key!r}")
    return key


def _file_name(key: str, f: ManifestFile) -> str:
    return f"{FILES}{key}/{f.path}"


def _manifest_name(key: str) -> str:
    return f"{MANIFESTS}{key}.json"


def _dumps(manifest: Manifest) -> bytes:
    return (json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n").encode()
