"""The manifest of an artifact in an object store: what a whole artifact is made of.

An artifact's files are uploaded first and its manifest last, so a key is visible remotely
only once everything it lists is there; a download checks each file's size and SHA-256
against it. A manifest is read from the bucket, so every path in it is checked: relative,
no `..`, no empty part, nothing that could land outside the artifact's folder.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mlp.state.model import JsonFields

MANIFEST_VERSION = 1
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ManifestFile:
    """One file of an artifact: `path` relative to the artifact's folder, POSIX-style."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """Every file and folder of one artifact, sorted by path (so a manifest is deterministic).

    `dirs` lists the folders, empty ones included (a SavedModel's `assets/`), so a download
    rebuilds the artifact's tree exactly.
    """

    key: str
    files: tuple[ManifestFile, ...]
    dirs: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @classmethod
    def of_folder(cls, key: str, folder: Path) -> Manifest:
        """The manifest of the artifact built in `folder` (symbolic links are followed)."""
        files: list[ManifestFile] = []
        dirs: list[str] = []
        for here, subdirs, names in os.walk(folder):
            rel = Path(here).relative_to(folder)
            dirs.extend((rel / d).as_posix() for d in subdirs)
            for name in names:
                path = Path(here) / name
                files.append(ManifestFile((rel / name).as_posix(), path.stat().st_size, file_sha256(path)))
        return cls(key, tuple(sorted(files, key=lambda f: f.path)), tuple(sorted(dirs)))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "key": self.key,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
            "dirs": list(self.dirs),
        }

    @classmethod
    def from_json(cls, d: Any) -> Manifest:
        """Parse a manifest; raises ValueError naming the first bad field."""
        r = JsonFields(d, "manifest")
        if r.get("version", int) != MANIFEST_VERSION:
            raise ValueError(f"manifest version {d.get('version')} is not supported (this mlp reads {MANIFEST_VERSION})")
        raw_files, raw_dirs = d.get("files"), d.get("dirs", [])
        if not isinstance(raw_files, list) or not isinstance(raw_dirs, list):
            raise ValueError("manifest: files and dirs must be lists")
        return cls(r.get("key", str), tuple(_file(f) for f in raw_files), tuple(safe_path(p) for p in raw_dirs))


def _file(d: Any) -> ManifestFile:
    r = JsonFields(d, "manifest file")
    size, digest = r.get("size", int), r.get("sha256", str)
    if size < 0 or len(digest) != 64:
        raise ValueError(f"manifest file {d.get('path')!r}: bad size or sha256")
    return ManifestFile(safe_path(r.get("path", str)), size, digest)


def safe_path(path: Any) -> str:
    """`path` if it is a relative POSIX path that stays inside its folder; else ValueError."""
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path:
        raise ValueError(f"manifest path {path!r} is not a relative path")
    parts = PurePosixPath(path).parts
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts) or path != "/".join(parts):
        raise ValueError(f"manifest path {path!r} leaves the artifact's folder")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
