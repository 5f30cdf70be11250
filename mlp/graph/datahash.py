"""Content hashes of source data and custom code, cached by file metadata.

A file's sha256 is cached under its resolved path and its full stat identity: size,
mtime_ns, ctime_ns, inode and device. An unchanged file is never re-read; a touched or
rewritten one (even with its size and mtime put back, which still moves ctime) is re-read and
gets the hash of what it holds now. The cache is one JSON file in the app folder, rewritten
only when it changed. A pull request can ship that file too, so it is read as data only: an
entry that is not exactly the expected shape and types is dropped, and a whole file that does
not check out is ignored and rebuilt. A checkout cannot predict the ctime and inode its files
will get, so a planted entry never matches a real file.

Only regular files are hashed, symlinks followed: a source or code path that names a FIFO, a
device or a socket (or a folder or glob that holds one) is refused, since reading it could
block or never end.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlp.safeio import NotRegularFile, open_regular, read_regular, special_kind

REMOTE_PREFIXES = ("s3://", "s3a://", "gs://", "abfs://", "abfss://", "wasbs://", "https://")
CACHE_VERSION = 2  # 1 was {path: [size, mtime_ns, inode, sha256]}
CACHE_LIMIT = 64 << 20  # bytes; about 300 000 entries
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class FileHash:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DataHash:
    """One hash for all the files of a source, and each file's own (names relative to the app)."""

    value: str
    files: tuple[FileHash, ...]


@dataclass(frozen=True)
class Refused:
    """A file mlp will not read: `what` it is ("a FIFO (named pipe)", ...), named as `path`."""

    path: str
    what: str


@dataclass(frozen=True)
class Unreadable:
    """A regular file the OS would not let mlp read (`error` says why)."""

    path: str
    error: str


HashResult = DataHash | Refused | Unreadable | None  # None: nothing matches the path


@dataclass(frozen=True)
class _Entry:
    """A cached hash and the stat identity of the file it was made from."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int
    sha256: str

    @staticmethod
    def of(st: os.stat_result, sha256: str) -> _Entry:
        return _Entry(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, sha256)

    def matches(self, st: os.stat_result) -> bool:
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode, self.device) == \
            (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "mtime_ns": self.mtime_ns, "ctime_ns": self.ctime_ns, "inode": self.inode,
                "device": self.device, "sha256": self.sha256}

    @staticmethod
    def from_json(obj: Any) -> _Entry | None:
        """The entry, or None unless `obj` has exactly the fields, each of its type."""
        keys = ("size", "mtime_ns", "ctime_ns", "inode", "device", "sha256")
        if not isinstance(obj, dict) or set(obj) != set(keys):
            return None
        if not all(type(obj[k]) is int for k in keys[:-1]):
            return None
        sha = obj["sha256"]
        if not isinstance(sha, str) or not _SHA256.match(sha):
            return None
        return _Entry(*(obj[k] for k in keys))


class HashCache:
    def __init__(self, cache_file: Path | None) -> None:
        self.file = cache_file
        self.entries: dict[str, _Entry] = _load(cache_file) if cache_file is not None else {}
        self.dirty = False

    def sha256(self, path: Path) -> tuple[int, str]:
        """(size, sha256) of a regular file; raises `NotRegularFile` for anything else, OSError when
        it cannot be read. The metadata is the open file's, so what is hashed is what is keyed."""
        key = str(path.resolve())
        with open_regular(path) as (fh, st):
            hit = self.entries.get(key)
            if hit is not None and hit.matches(st):
                return st.st_size, hit.sha256
            digest = _sha256(fh)
        self.entries[key] = _Entry.of(st, digest)
        self.dirty = True
        return st.st_size, digest

    def save(self) -> None:
        if not self.dirty or self.file is None:
            return
        doc = {"version": CACHE_VERSION, "entries": {k: e.to_json() for k, e in sorted(self.entries.items())}}
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.file.with_name(f".{self.file.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(doc, separators=(",", ":")))
            os.replace(tmp, self.file)
            self.dirty = False
        except OSError:
            pass


def _load(cache_file: Path) -> dict[str, _Entry]:
    """The entries of a cache file that checks out; nothing from one that does not."""
    try:
        doc = json.loads(read_regular(cache_file, CACHE_LIMIT))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(doc, dict) or set(doc) != {"version", "entries"} or doc["version"] != CACHE_VERSION \
            or type(doc["version"]) is not int or not isinstance(doc["entries"], dict):
        return {}
    out: dict[str, _Entry] = {}
    for key, raw in doc["entries"].items():
        entry = _Entry.from_json(raw)
        if entry is not None and os.path.isabs(key):
            out[key] = entry
    return out


def _sha256(fh: Any) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


def is_remote(path: str) -> bool:
    return path.startswith(REMOTE_PREFIXES)


@dataclass(frozen=True)
class DataFiles:
    """The regular files a source path names, and the first thing under it that is not one."""

    files: tuple[Path, ...]
    refused: tuple[Path, str] | None = None


def data_files(app_dir: Path, path: str) -> DataFiles:
    """The files a source path names: a file, every visible file under a folder, or a glob."""
    full = app_dir / path
    if any(c in path for c in "*?["):
        found = [Path(p) for p in glob.glob(str(full), recursive=True)]
    else:
        found = [full] if os.path.lexists(full) else []
    files: list[Path] = []
    for p in sorted(found):
        if p.is_dir():
            files.extend(_walk(p))
        else:
            files.append(p)
    return _checked(sorted(files))


def _checked(files: list[Path]) -> DataFiles:
    for f in files:
        what = special_kind(f)
        if what is not None:
            return DataFiles((), (f, what))
    return DataFiles(tuple(f for f in files if f.is_file()))


def _walk(folder: Path) -> list[Path]:
    out: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        out.extend(Path(root) / f for f in files if not f.startswith((".", "_")))
    return sorted(out)


def shown(app_dir: Path, path: Path) -> str:
    """A file as the user wrote it: relative to the app folder when it is inside, else absolute."""
    rel = os.path.relpath(path, app_dir)
    return path.as_posix() if rel.startswith("..") else Path(rel).as_posix()


def data_hash(app_dir: Path, path: str, cache: HashCache) -> HashResult:
    """One hash for all the files of a source (names relative to the app folder); None when nothing
    matches; `Refused` or `Unreadable` for the first file that cannot be hashed."""
    if is_remote(path):
        return DataHash(hashlib.sha256(("remote:" + path).encode()).hexdigest(), ())
    found = data_files(app_dir, path)
    if found.refused is not None:
        return Refused(shown(app_dir, found.refused[0]), found.refused[1])
    if not found.files:
        return None
    h = hashlib.sha256()
    out = []
    for f in found.files:
        result = file_hash(app_dir, f, cache)
        if not isinstance(result, FileHash):
            return result
        h.update(f"{result.path}\0{result.size}\0{result.sha256}\n".encode())
        out.append(result)
    return DataHash(h.hexdigest(), tuple(out))


def file_hash(app_dir: Path, path: Path, cache: HashCache) -> FileHash | Refused | Unreadable:
    """The hash of one file (a code file, or one file of a source), or why there is none."""
    try:
        size, digest = cache.sha256(path)
    except NotRegularFile as e:
        return Refused(shown(app_dir, path), e.what)
    except OSError as e:
        return Unreadable(shown(app_dir, path), e.strerror or str(e))
    return FileHash(os.path.relpath(path, app_dir), size, digest)  # as data hashes have always named files
