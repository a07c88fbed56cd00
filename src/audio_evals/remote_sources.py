"""Where a remote row's audio comes from: a URL in `file_name`, or a path under the dataset's remote root.

A row is remote when its `file_name` is a URL (`s3://`, `gs://`, `az://`, `hf://`, `https://`,
any protocol fsspec knows) or when its dataset's `dataset.toml` sets `[remote] root`. Resolving a
row touches no network: it gives the URL, the storage options of its protocol and the file the
audio will have in the local cache (`audio_cache`). The fsspec backend of each protocol is looked
up once, so a missing extra (`pip install 'audio-evals[s3]'`) is reported when the dataset loads.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .audio import SUFFIXES, format_for_suffix
from .audio_cache import AudioCache, cache_root, url_key
from .dataset_settings import RemoteSettings, is_url
from .problems import ProblemKind

# The extra that installs each protocol's fsspec backend.
EXTRAS: Mapping[str, str] = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "adl": "azure",
    "hf": "hf",
    "http": "http",
    "https": "http",
}


def protocol_of(url: str) -> str:
    """The protocol of a URL, lower-case (`s3`, `https`, ...)."""
    return url.split("://", 1)[0].lower()


def shown_url(url: str) -> str:
    """A URL as messages show it: no user or password, no query (a signed URL's query is a credential)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}" + ("?…" if parts.query else "")


@dataclass(frozen=True)
class RemoteAudio:
    """A row's audio elsewhere: its URL and the storage options fsspec opens it with."""

    url: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def protocol(self) -> str:
        """The URL's protocol."""
        return protocol_of(self.url)

    @property
    def shown(self) -> str:
        """The URL without credentials, for messages."""
        return shown_url(self.url)


class RemoteRowError(ValueError):
    """A remote `file_name` that cannot be used, with the kind of problem the loader reports."""

    def __init__(self, kind: ProblemKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class RemoteRows:
    """Resolves the remote rows of one dataset: URL, storage options and place in the cache."""

    def __init__(self, settings: RemoteSettings, dataset_root: Path) -> None:
        self.settings = settings
        self.cache = AudioCache(cache_root(settings.cache, dataset_root))
        self._backends: dict[str, str | None] = {}

    def resolve(self, file_name: str) -> tuple[RemoteAudio, Path]:
        """The row's remote audio and its file in the cache; RemoteRowError when it cannot be used."""
        if is_url(file_name):
            url = file_name
        else:
            assert self.settings.root is not None
            relative = posixpath.normpath(file_name.replace("\\", "/"))
            if file_name.startswith("/") or relative == ".." or relative.startswith("../"):
                raise RemoteRowError(
                    ProblemKind.PATH,
                    f"{file_name!r} leads outside the remote root {shown_url(self.settings.root)}",
                )
            url = self.settings.root.rstrip("/") + "/" + relative
        protocol = protocol_of(url)
        missing = self.backend_problem(protocol)
        if missing:
            raise RemoteRowError(ProblemKind.REMOTE, missing)
        path = urlsplit(url).path
        name = posixpath.basename(unquote(path) if protocol in ("http", "https") else path)
        if name in ("", ".", ".."):
            raise RemoteRowError(
                ProblemKind.PATH, f"{shown_url(url)} names a folder, not an audio file"
            )
        if format_for_suffix(Path(name)) is None:
            raise RemoteRowError(
                ProblemKind.AUDIO,
                f"unsupported audio format {Path(name).suffix or '(no suffix)'!r} in "
                f"{shown_url(url)}; use one of {', '.join(sorted(SUFFIXES))}",
            )
        options = dict(self.settings.options.get(protocol, {}))
        remote = RemoteAudio(url, options)
        return remote, self.cache.url_entry(url_key(url, options), name)

    def backend_problem(self, protocol: str) -> str | None:
        """Why fsspec cannot read this protocol here (a backend not installed), or None."""
        if protocol not in self._backends:
            self._backends[protocol] = _backend_problem(protocol)
        return self._backends[protocol]


def _backend_problem(protocol: str) -> str | None:
    try:
        import fsspec

        fsspec.get_filesystem_class(protocol)
    except ImportError as exc:
        extra = EXTRAS.get(protocol)
        hint = f"pip install 'audio-evals[{extra}]'" if extra else "install its fsspec backend"
        return f"{protocol}:// needs a package that is not installed ({exc}): {hint}"
    except ValueError:
        return f"no fsspec backend knows the protocol {protocol!r}"
    return None
