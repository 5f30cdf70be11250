"""Folders to and from the bucket, through mlp's `ObjectStore` (names under the backend's prefix).

The pods use these to stage their inputs and outputs (`mlp_kubernetes.stage`); the provider
uses them on this side to put a run's inputs in and take its outputs back. An object's name
is data: one that would land outside the target folder is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mlp.errors import StateError
from mlp.state.backends.objects import ObjectStore, parallel


@dataclass(frozen=True)
class Moved:
    """What a transfer moved: how many files, how many bytes."""

    files: int
    bytes: int


def pull(store: ObjectStore, name: str, path: Path) -> Moved:
    """The object `name` into the file `path`, or every object under the folder `name`
    (ending in "/") into the folder `path`. Nothing there is an error."""
    if not name.endswith("/"):
        path.parent.mkdir(parents=True, exist_ok=True)
        if not store.download_file(name, path):
            raise StateError(f"Nothing at {store.url(name)}", "The run's input was not put there.")
        return Moved(1, path.stat().st_size)
    names = [n for n in store.list(name) if not n.endswith("/")]
    if not names:
        raise StateError(f"Nothing under {store.url(name)}", "The run's inputs were not put there.")
    targets = [(n, _inside(path, n[len(name):])) for n in names]

    def fetch(item: tuple[str, Path]) -> int:
        target = item[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        if not store.download_file(item[0], target):
            raise StateError(f"{store.url(item[0])} went away while it was read")
        return target.stat().st_size

    return Moved(len(targets), sum(parallel(fetch, targets)))


def push(store: ObjectStore, folder: Path, name: str, prune: bool = True, skip: tuple[str, ...] = ()) -> Moved:
    """Every file under `folder` (but its top-level entries named in `skip`) to the folder
    `name`; with `prune`, objects under `name` that the folder does not have are removed, so
    the bucket's copy is the folder's."""
    files = files_under(folder, skip)
    names = {f"{name}{rel}": folder / rel for rel in files}
    parallel(lambda item: store.upload_file(item[0], item[1]), sorted(names.items()))
    if prune:
        store.delete_many([n for n in store.list(name) if n not in names])
    return Moved(len(names), sum(p.stat().st_size for p in names.values()))


def files_under(folder: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """The files under `folder` as sorted relative POSIX paths; top-level entries named in
    `skip` are left out."""
    out = []
    for root, dirs, names in os.walk(folder):
        here = Path(root).relative_to(folder)
        if here == Path("."):
            dirs[:] = [d for d in dirs if d not in skip]
            names = [n for n in names if n not in skip]
        out += [(here / n).as_posix() for n in names if (Path(root) / n).is_file()]
    return sorted(out)


def _inside(folder: Path, rel: str) -> Path:
    parts = PurePosixPath(rel).parts
    if not parts or any(p in ("..", "") for p in parts) or rel.startswith("/"):
        raise StateError(f"The object name {rel!r} leaves its folder", "An object's name is data; this one is refused.")
    return folder.joinpath(*parts)
