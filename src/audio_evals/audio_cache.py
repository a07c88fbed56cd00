"""The local audio cache: remote clips stored by content (sha256), found by URL, verified on use.

Layout under the cache root (`cache_root`):

```
blobs/<h[:2]>/<h>/<name>   the bytes whose sha256 is h; the file name is kept (its suffix names
                           the format, and an upload to a transcription endpoint carries it)
urls/<k[:2]>/<k>/<name>    the audio of one URL (k: sha256 of the URL and its storage options),
                           a hard link to its blob (a copy where links are not possible)
urls/<k[:2]>/<k>/sha256    the digest of that audio
tmp/                       downloads in progress
```

Every file is put in place whole (a temp file renamed), so runs and processes share one cache
safely. A file is hashed when it is used; its digest is then remembered for this process while
its size and modification time stay the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from .files import atomic_copy, atomic_write, publish_file

CACHE_ENV = "AUDIO_EVALS_AUDIO_CACHE"
"""The environment variable that sets the cache folder (it wins over `dataset.toml`)."""

DIGEST_FILE = "sha256"
_HEX = re.compile(r"^[0-9a-f]{64}$")
_HASHED: dict[str, tuple[int, int, int, str]] = {}  # path -> (inode, size, mtime_ns, digest)


def cache_root(setting: str | None, dataset_root: Path) -> Path:
    """The cache folder: $AUDIO_EVALS_AUDIO_CACHE, else `[remote] cache` (relative to the
    dataset folder), else $XDG_CACHE_HOME/audio-evals/audio (~/.cache/audio-evals/audio)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser().absolute()
    if setting:
        path = Path(setting).expanduser()
        return path if path.is_absolute() else (dataset_root / path).absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "audio-evals" / "audio"


def url_key(url: str, options: Mapping[str, Any]) -> str:
    """The key of a URL's cache entry: the same path on another endpoint is another object."""
    text = json.dumps([url, options], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_file(path: Path) -> str:
    """The sha256 of a file's bytes (hex), read now."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def file_digest(path: Path) -> str:
    """The sha256 of a file (hex), remembered while its inode, size and mtime stay the same."""
    st = os.stat(path)
    known = _HASHED.get(str(path))
    if known is not None and known[:3] == (st.st_ino, st.st_size, st.st_mtime_ns):
        return known[3]
    digest = hash_file(path)
    _HASHED[str(path)] = (st.st_ino, st.st_size, st.st_mtime_ns, digest)
    return digest


def is_digest(text: str) -> bool:
    """Whether `text` is a sha256 in lowercase hex."""
    return bool(_HEX.match(text))


class EntryState(StrEnum):
    """What the cache holds for a URL."""

    MISSING = "missing"
    OK = "ok"
    CORRUPT = "corrupt"


@dataclass(frozen=True)
class Entry:
    """A URL's cache entry as found: its state and the digest it holds (when OK)."""

    state: EntryState
    digest: str | None = None


@dataclass(frozen=True)
class AudioCache:
    """The cache folder and its layout."""

    root: Path

    @classmethod
    def holding(cls, entry: Path) -> AudioCache:
        """The cache a URL entry (`urls/<k[:2]>/<k>/<name>`) belongs to."""
        return cls(entry.parents[3])

    def url_entry(self, key: str, name: str) -> Path:
        """Where the audio of the URL with this key lives."""
        return self.root / "urls" / key[:2] / key / name

    def blob(self, digest: str, name: str) -> Path:
        """Where the bytes with this digest live under this name."""
        return self.root / "blobs" / digest[:2] / digest / name

    def look(self, entry: Path) -> Entry:
        """The entry's state: missing (or never finished), its bytes matching its digest, or not."""
        try:
            recorded = (entry.parent / DIGEST_FILE).read_text(encoding="ascii").strip()
            actual = file_digest(entry)
        except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
            return Entry(EntryState.MISSING)
        if actual != recorded:
            return Entry(EntryState.CORRUPT, actual)
        return Entry(EntryState.OK, actual)

    def from_blob(self, digest: str, entry: Path) -> bool:
        """Make the entry from a blob with this digest already here (another URL, a moved bucket)."""
        folder = self.blob(digest, entry.name).parent
        try:
            names = sorted(os.listdir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return False
        for name in names:
            blob = folder / name
            if name.startswith(".") or file_digest(blob) != digest:
                continue
            if name != entry.name:
                self._link(blob, self.blob(digest, entry.name))
            self._enter(digest, entry)
            return True
        return False

    def temp_file(self) -> Path:
        """A new empty file in the cache's tmp/ folder (same file system: it is renamed into place)."""
        folder = self.root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="fetch-", dir=folder)
        os.close(fd)
        return Path(name)

    def put(self, downloaded: Path, digest: str, entry: Path) -> None:
        """Store freshly downloaded, hashed bytes as their blob and as the URL's entry."""
        blob = self.blob(digest, entry.name)
        blob.parent.mkdir(parents=True, exist_ok=True)
        publish_file(downloaded, blob)
        self._enter(digest, entry)

    def discard(self, entry: Path) -> None:
        """Remove a URL's entry (its digest first, so a half-removed entry reads as missing)."""
        for path in (entry.parent / DIGEST_FILE, entry):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _enter(self, digest: str, entry: Path) -> None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(entry.parent / DIGEST_FILE, digest + "\n")
        self._link(self.blob(digest, entry.name), entry)

    @staticmethod
    def _link(source: Path, target: Path) -> None:
        """Put a hard link to `source` at `target` (replacing it), or a copy where links fail."""
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{os.urandom(6).hex()}.link")
        try:
            os.link(source, temp)
        except OSError:
            atomic_copy(source, target)
            return
        os.replace(temp, target)
