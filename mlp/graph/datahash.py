"""Content hashes of source data and custom code, cached by file metadata.

A file's sha256 is cached under (path, size, mtime_ns, inode): an unchanged file is
never re-read, a touched-but-identical file is re-read once and keeps its hash, and a
changed file gets a new hash. The cache is one JSON file, rewritten only when it changed;
a corrupt cache is ignored and rebuilt.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

REMOTE_PREFIXES = ("s3://", "s3a://", "gs://", "abfs://", "abfss://", "wasbs://", "https://")


@dataclass(frozen=True)
class FileHash:
    path: str
    size: int
    sha256: str


class HashCache:
    def __init__(self, cache_file: Path | None) -> None:
        self.file = cache_file
        self.entries: dict[str, list[object]] = {}
        self.dirty = False
        if cache_file is not None:
            try:
                loaded = json.loads(cache_file.read_text())
                if isinstance(loaded, dict):
                    self.entries = loaded
            except (OSError, ValueError):
                pass

    def sha256(self, path: Path) -> tuple[int, str]:
        st = path.stat()
        key = str(path.resolve())
        meta = [st.st_size, st.st_mtime_ns, st.st_ino]
        hit = self.entries.get(key)
        if isinstance(hit, list) and hit[:3] == meta and len(hit) == 4:
            return st.st_size, str(hit[3])
        digest = _sha256_file(path)
        self.entries[key] = meta + [digest]
        self.dirty = True
        return st.st_size, digest

    def save(self) -> None:
        if not self.dirty or self.file is None:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.entries, separators=(",", ":")))
            os.replace(tmp, self.file)
            self.dirty = False
        except OSError:
            pass


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_remote(path: str) -> bool:
    return path.startswith(REMOTE_PREFIXES)


def data_files(app_dir: Path, path: str) -> list[Path]:
    """The files a source path names: a file, every visible file under a folder, or a glob."""
    full = app_dir / path
    if any(c in path for c in "*?["):
        found = [Path(p) for p in glob.glob(str(full), recursive=True)]
        files = [p for p in found if p.is_file()]
        for d in (p for p in found if p.is_dir()):
            files.extend(_walk(d))
        return sorted(files)
    if full.is_dir():
        return _walk(full)
    if full.is_file():
        return [full]
    return []


def _walk(folder: Path) -> list[Path]:
    out: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        out.extend(Path(root) / f for f in files if not f.startswith((".", "_")))
    return sorted(out)


def data_hash(app_dir: Path, path: str, cache: HashCache) -> tuple[str, list[FileHash]] | None:
    """One hash for all the files of a source (names relative to the source root), or None
    when nothing matches."""
    if is_remote(path):
        return hashlib.sha256(("remote:" + path).encode()).hexdigest(), []
    files = data_files(app_dir, path)
    if not files:
        return None
    h = hashlib.sha256()
    out = []
    for f in files:
        size, digest = cache.sha256(f)
        rel = os.path.relpath(f, app_dir)
        h.update(f"{rel}\0{size}\0{digest}\n".encode())
        out.append(FileHash(rel, size, digest))
    return h.hexdigest(), out
