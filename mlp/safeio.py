"""Reading files from an app folder or a backend without blocking on one that is not a file.

An app folder comes from a pull request as often as from its author, so any path in it may
name a FIFO, a device or a socket, directly or through a symlink: reading a FIFO that no one
writes blocks forever, `/dev/zero` never ends, and merely opening some devices has effects.
Every read of app or backend files goes through `open_regular`, which looks before it opens
(symlinks followed), opens without blocking, and checks again what it opened.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


class NotRegularFile(OSError):
    """`path` is a FIFO, a device, a socket or a folder (`what` says which), not a regular file."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(f"{path} is {what}, not a regular file")
        self.path, self.what = path, what


class FileTooLarge(OSError):
    """`path` holds more than the `limit` bytes its reader accepts."""

    def __init__(self, path: Path, limit: int) -> None:
        super().__init__(f"{path} is larger than {limit} bytes")
        self.path, self.limit = path, limit


def describe(mode: int) -> str | None:
    """What a file of this mode is, when it is not a regular file ("a FIFO (named pipe)", ...)."""
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def special_kind(path: Path) -> str | None:
    """What `path` is (symlinks followed) when it exists and is neither a regular file nor a folder."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return None if stat.S_ISDIR(mode) else describe(mode)


@contextmanager
def open_regular(path: Path) -> Iterator[tuple[BinaryIO, os.stat_result]]:
    """Open a regular file for reading, with its `fstat`; raise `NotRegularFile` for anything else.

    The first `stat` keeps devices from being opened at all; the `fstat` after the open catches a
    file swapped for a FIFO in between (O_NONBLOCK makes that open return instead of waiting).
    """
    what = describe(os.stat(path).st_mode)
    if what is not None:
        raise NotRegularFile(path, what)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        what = describe(st.st_mode)
        if what is not None:
            raise NotRegularFile(path, what)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield fh, st


def read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file; `FileTooLarge` when it holds more than `limit` bytes."""
    with open_regular(path) as (fh, _):
        data = fh.read() if limit is None else fh.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise FileTooLarge(path, limit)
    return data
