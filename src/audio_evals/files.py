"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_umask_lock = threading.Lock()


@functools.cache
def _umask() -> int:
    """The process umask, read once: reading it means setting it, which two threads (the
    fetcher's pool) must not do at once, or one would leave the umask at 0."""
    with _umask_lock:
        umask = os.umask(0)
        os.umask(umask)
        return umask


def publish_file(tmp: Path | str, path: Path) -> None:
    """Give a finished temp file the mode a newly created file gets, then rename it to `path`."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write `path` through: a temp file in its folder, fsync'ed, then renamed (removed on error)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        publish_file(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write `data` (text as UTF-8) to `path` through a temp file in its folder, fsync'ed, then renamed."""
    with atomic_file(path) as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)


def atomic_copy(source: Path, path: Path) -> None:
    """Copy `source` to `path` byte for byte (mode bits too), whole or not at all."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        shutil.copymode(source, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def staging_for(target: Path) -> Path:
    """Where a folder is built before swap_folder puts it in place of `target` (a leftover one
    from an interrupted write is removed)."""
    staging = target.with_name(f".{target.name}.tmp")
    if staging.exists():
        shutil.rmtree(staging)
    return staging


def swap_folder(staging: Path, target: Path) -> None:
    """Put the finished folder `staging` in place of `target` (a reader never sees a half-written one)."""
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    if old.exists():
        shutil.rmtree(old)
