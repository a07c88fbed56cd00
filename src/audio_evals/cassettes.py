"""vcrpy cassettes for audio extraction: audio replaced by its digest, indexed matching, no secrets."""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import copy
import functools
import hashlib
import json
import os
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import vcr
import yaml
from vcr.cassette import Cassette
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.record_mode import RecordMode

from . import __version__

CASSETTE_FORMAT = 1
RECORD_MODES = ("none", "once", "new_episodes", "all", "rewrite")
DIGEST_PREFIX = "sha256:"
LATENCY_HEADER = "x-audio-evals-latency-ms"
# Request headers are kept by allow-list: nothing else (keys, org/project ids, cookies) is written.
KEPT_REQUEST_HEADERS = frozenset({"content-type"})
DROPPED_RESPONSE_HEADERS = frozenset(
    {"set-cookie", "cookie", "openai-organization", "openai-project", "authorization", "api-key"}
)
# Retried failures are not answers: recording them would replay a 429 where the live run recovered.
UNRECORDED_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_DATA_URI = re.compile(r"^data:audio/[A-Za-z0-9.+-]+;base64,", re.ASCII)
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
_DIGEST_TEXT = re.compile(r"sha256:[0-9a-f]{64}")
_DIGEST_BYTES = re.compile(rb"sha256:[0-9a-f]{64}")

__all__ = [
    "CASSETTE_FORMAT",
    "RECORD_MODES",
    "CassetteFormatError",
    "CannotOverwriteExistingCassetteException",
    "IndexedCassette",
    "cassette_path",
    "match_key",
    "normalise_body",
    "open_cassette",
    "read_interactions",
]


# Transport-level latency of calls recorded in this context (set by the extraction, filled on record).
LIVE_LATENCIES: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "audio_evals_live_latencies", default=None
)


class CassetteFormatError(ValueError):
    """A cassette file that this harness cannot read."""


def digest(data: bytes | str) -> str:
    """The `sha256:<hex>` digest that stands for an audio payload in cassettes."""
    raw = data.encode("ascii") if isinstance(data, str) else data
    return DIGEST_PREFIX + hashlib.sha256(raw).hexdigest()


def _replace_audio(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if (
                key == "input_audio"
                and isinstance(value, dict)
                and isinstance(value.get("data"), str)
            ):
                data = value["data"]
                value = {**value, "data": data if data.startswith(DIGEST_PREFIX) else digest(data)}
            out[key] = _replace_audio(value)
        return out
    if isinstance(node, list):
        return [_replace_audio(v) for v in node]
    if isinstance(node, str) and _DATA_URI.match(node):
        head, _, payload = node.partition(",")
        return f"{head},{digest(payload)}"
    return node


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _normalise_multipart(body: bytes, content_type: str) -> bytes:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            fields[name] = {
                "filename": filename,
                "content_type": part.get_content_type(),
                "bytes": len(payload),
                "data": digest(payload),
            }
        else:
            fields[name] = payload.decode("utf-8", "replace")
    return _canonical({"multipart/form-data": fields})


@functools.lru_cache(maxsize=8)
def normalise_body(body: bytes | None, content_type: str = "") -> bytes | None:
    """The request body as stored and matched: audio payloads become digests, JSON is canonical."""
    if not body:
        return body
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        if content_type.startswith("multipart/form-data"):
            return _normalise_multipart(body, content_type)
        return body
    return _canonical(_replace_audio(parsed))


def _content_type(request: Any) -> str:
    return str(request.headers.get("content-type", "") or "")


def _canonical_uri(uri: str) -> str:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = "localhost" if host in _LOOPBACK else parts.netloc
    query = "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(parts.query)))
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), query, ""))


def filter_request(request: Any) -> Any:
    """The request as it may be written: canonical URI, allow-listed headers, audio digested."""
    request.uri = _canonical_uri(request.uri)
    content_type = _content_type(request)
    for name in list(request.headers):
        if name.lower() not in KEPT_REQUEST_HEADERS:
            del request.headers[name]
    body = request.body
    if isinstance(body, bytes | bytearray) and body:
        normalised = normalise_body(bytes(body), content_type)
        if content_type.startswith("multipart/form-data"):
            request.headers["content-type"] = "multipart/form-data"
        request.body = normalised
    return request


def filter_response(response: dict[str, Any]) -> dict[str, Any] | None:
    """The response as it may be written: no cookies or account ids; retried failures dropped."""
    if response.get("status", {}).get("code") in UNRECORDED_STATUSES:
        return None
    headers = response.get("headers", {})
    response["headers"] = {
        k: v for k, v in headers.items() if k.lower() not in DROPPED_RESPONSE_HEADERS
    }
    return response


def _normalised(request: Any) -> bytes:
    body = request.body if isinstance(request.body, bytes) else (request.body or b"")
    return (normalise_body(bytes(body), _content_type(request)) or b"") if body else b""


def match_key(request: Any) -> tuple[str, str, str]:
    """What decides an answer: method, path (with query) and the digest of the normalised body."""
    parts = urlsplit(_canonical_uri(request.uri))
    normalised = _normalised(request)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return request.method.upper(), path, hashlib.sha256(normalised or b"").hexdigest()


def _method(r1: Any, r2: Any) -> None:
    assert r1.method.upper() == r2.method.upper(), f"{r1.method} != {r2.method}"


def _path(r1: Any, r2: Any) -> None:
    assert match_key(r1)[1] == match_key(r2)[1], "path differs"


def _body(r1: Any, r2: Any) -> None:
    assert match_key(r1)[2] == match_key(r2)[2], (
        "body differs (prompt, model, schema, audio or params)"
    )


MATCHERS = (_method, _path, _body)


_TOP_KEY = re.compile(r"^([A-Za-z_]\w*):", re.M)
_ITEM = re.compile(r"^- ", re.M)


def _split_interactions(text: str, serializer: Any) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """The top-level keys of a vcrpy YAML cassette, and each interaction's text with its line number.

    A YAML cassette as vcrpy writes it has top-level keys at column 0 and its interactions as a
    column-0 sequence. Anything else raises ValueError (callers then use vcrpy's whole-file reading).
    """
    from vcr.serializers import yamlserializer

    if serializer is not yamlserializer:
        raise ValueError("not vcrpy's YAML serializer")
    keys = [(m.group(1), m.start()) for m in _TOP_KEY.finditer(text)]
    names = [name for name, _ in keys]
    if "interactions" not in names or len(set(names)) != len(names):
        raise ValueError("not a vcrpy YAML cassette layout")
    at = names.index("interactions")
    start = keys[at][1]
    end = keys[at + 1][1] if at + 1 < len(keys) else len(text)
    rest = serializer.deserialize(text[:start] + text[end:]) or {}
    if not isinstance(rest, dict) or set(rest) - {"version", "metadata"}:
        raise ValueError("unexpected top-level keys")
    section = text[start:end]
    body = section[section.index("\n") + 1 :] if "\n" in section else ""
    header = section[: len(section) - len(body)].strip()
    if header != "interactions:":
        raise ValueError("interactions not in block style")
    starts = [m.start() for m in _ITEM.finditer(body)]
    if body.strip() and (not starts or body[: starts[0]].strip()):
        raise ValueError("unexpected text before the first interaction")
    line = text.count("\n", 0, start) + 2  # the line of the first item
    chunks, previous = [], 0
    for i, begin in enumerate(starts):
        line += body.count("\n", previous, begin)
        previous = begin
        chunks.append((body[begin : starts[i + 1] if i + 1 < len(starts) else len(body)], line))
    return rest, chunks


def _parse_interaction(chunk: str, serializer: Any) -> tuple[Any, dict[str, Any]]:
    """One interaction's (vcrpy Request, response dict) from its YAML text; ValueError if it is not one."""
    from vcr.request import Request
    from vcr.serializers import compat

    items = serializer.deserialize(chunk)
    if (
        not isinstance(items, list)
        or len(items) != 1
        or not isinstance(items[0], dict)
        or set(items[0]) != {"request", "response"}
    ):
        raise ValueError("an interaction is not a request/response pair")
    return Request._from_dict(items[0]["request"]), compat.convert_to_bytes(items[0]["response"])


def _deserialize_by_interaction(text: str, serializer: Any) -> tuple[Any, ...]:
    """vcrpy's `deserialize`, one interaction at a time: peak memory near the file's size, not 10x it."""
    rest, chunks = _split_interactions(text, serializer)
    requests, responses = [], []
    for chunk, _line in chunks:
        request, response = _parse_interaction(chunk, serializer)
        requests.append(request)
        responses.append(response)
    if rest.get("metadata"):
        return requests, responses, rest["metadata"]
    return requests, responses


class AtomicPersister:
    """Loads cassettes with clear errors and saves them by temp file + rename."""

    @classmethod
    def load_cassette(
        cls, cassette_path: str | os.PathLike[str], serializer: Any
    ) -> tuple[Any, ...]:
        """Read a cassette file into (requests, responses, metadata)."""
        from vcr.persisters.filesystem import CassetteNotFoundError
        from vcr.serialize import deserialize

        path = Path(cassette_path)
        if not path.is_file():
            raise CassetteNotFoundError()
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            raise CassetteNotFoundError()
        try:
            return _deserialize_by_interaction(text, serializer)
        except Exception:  # anything unusual: vcrpy's own whole-file reading, with its errors
            pass
        try:
            return deserialize(text, serializer)
        except (yaml.YAMLError, ValueError, KeyError, TypeError) as exc:
            raise CassetteFormatError(f"{path}: not a readable cassette ({exc})") from None

    @staticmethod
    def save_cassette(
        cassette_path: str | os.PathLike[str], cassette_dict: Mapping[str, Any], serializer: Any
    ) -> None:
        """Write a cassette atomically: a reader sees the old file or the new one, never half of one."""
        from vcr.serialize import serialize

        data = serialize(cassette_dict, serializer)
        path = Path(cassette_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


class _Unparsed:
    """A loaded interaction not parsed yet: its YAML text and where it starts in the file."""

    __slots__ = ("chunk", "line")

    def __init__(self, chunk: str, line: int) -> None:
        self.chunk = chunk
        self.line = line


# Stands for a loaded interaction vcrpy's filters refuse (its own loading would skip it).
_DROPPED = object()


class IndexedCassette(Cassette):
    """A vcrpy cassette with a hash index on `match_key`, so replay is O(1) per request.

    A replay-only cassette (record modes none and once) is read lazily: loading splits the file
    into interactions and notes the audio digests each one mentions; an interaction is parsed
    when a request with one of its digests asks for it. Unused interactions are never parsed, and
    forked replay processes parse their own shares in parallel. Any miss parses the rest first, so
    every answer is the one a full load would give.
    """

    skip_load: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._index: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        self._started: dict[int, tuple[Any, float]] = {}
        self._by_digest: dict[str, list[int]] = defaultdict(list)
        self._unparsed = 0
        self._merged_unparsed: list[int] = []
        super().__init__(*args, **kwargs)

    def _load(self) -> None:
        if self.skip_load:
            return
        if not self._load_lazily():
            super()._load()
        meta = self._metadata.get("audio_evals") if isinstance(self._metadata, dict) else None
        if self.data and (not isinstance(meta, dict) or meta.get("format") != CASSETTE_FORMAT):
            found = meta.get("format") if isinstance(meta, dict) else "none"
            raise CassetteFormatError(
                f"{self._path}: cassette format {found} is not format {CASSETTE_FORMAT} of "
                f"audio-evals {__version__}; re-record it with --record-mode=rewrite"
            )

    def _load_lazily(self) -> bool:
        """Split a replay-only cassette into unparsed interactions indexed by audio digest."""
        if (
            self.record_mode not in (RecordMode.NONE, RecordMode.ONCE)
            or self._after_load_interaction
        ):
            return False
        try:
            text = Path(self._path).read_text(encoding="utf-8")
            rest, chunks = _split_interactions(text, self._serializer)
        except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
            return False  # absent or unusual: vcrpy's own loading decides
        if not chunks or not isinstance(rest.get("metadata", {}), dict):
            return False
        for chunk, line in chunks:
            index = len(self.data)
            self.data.append(_Unparsed(chunk, line))
            self._old_interactions.append(None)
            for found in set(_DIGEST_TEXT.findall(chunk)) or {""}:
                self._by_digest[found].append(index)
        self._unparsed = len(chunks)
        self._loaded_count = len(self.data)
        self.dirty = False
        self.rewound = True
        self._metadata = rest.get("metadata") or {}
        return True

    def _parse(self, index: int) -> None:
        entry = self.data[index]
        if not isinstance(entry, _Unparsed):
            return
        try:
            request, response = _parse_interaction(entry.chunk, self._serializer)
        except (ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
            raise CassetteFormatError(
                f"{self._path}:{entry.line}: interaction {index + 1} is not readable "
                f"({' '.join(str(exc).split())}); re-record it with --record-mode=rewrite"
            ) from None
        self._unparsed -= 1
        # What vcrpy's loading does to each interaction (Cassette.append): filter copies.
        stored = self._before_record_request(request)
        kept = self._before_record_response(copy.deepcopy(response)) if stored else None
        if not stored or kept is None:
            self.data[index] = _DROPPED
            self._old_interactions[index] = (request, response)
            return
        # vcrpy keeps the unfiltered pair too, only to count it and to match new recordings
        # against it (by match key, which filtering does not change): the stored pair serves.
        self.data[index] = self._old_interactions[index] = (stored, kept)
        bisect.insort(self._index[match_key(stored)], index)

    def _parse_all(self) -> None:
        for index in range(len(self.data)):
            self._parse(index)
        self._by_digest.clear()

    def _key(self, request: Any) -> tuple[str, str, str]:
        """The request's match key, once every interaction that could answer it is parsed."""
        if self._unparsed:
            for found in set(_DIGEST_BYTES.findall(_normalised(request))) or {b""}:
                for index in self._by_digest.pop(found.decode("ascii"), ()):
                    self._parse(index)
        return match_key(request)

    def _playable(self, key: tuple[str, str, str]) -> bool:
        return (
            self.record_mode != RecordMode.ALL
            and (self.rewound or self.allow_playback_repeats)
            and any(
                self.play_counts[i] == 0 or self.allow_playback_repeats
                for i in self._index.get(key, ())
            )
        )

    @property
    def requests(self) -> list[Any]:
        """Every stored request (parses what was not parsed yet)."""
        self._parse_all()
        return [r for r, _ in (e for e in self.data if e is not _DROPPED)]

    @property
    def responses(self) -> list[Any]:
        """Every stored response (parses what was not parsed yet)."""
        self._parse_all()
        return [r for _, r in (e for e in self.data if e is not _DROPPED)]

    def _save(self, force: bool = False) -> None:
        lazy = self._unparsed or self._merged_unparsed or _DROPPED in self.data
        if lazy and not (force or self.dirty or self.drop_unused_requests):
            return  # vcrpy would write nothing: leave the unread interactions unread
        if lazy:
            self._parse_all()
            self._played_interactions += [self.data[i] for i in self._merged_unparsed]
            self._merged_unparsed = []
            self.data = [e for e in self.data if e is not _DROPPED]
        super()._save(force)

    def _new_interactions(self) -> list[Any]:
        """Interactions recorded in this session that match no loaded one (vcrpy's answer, in O(n))."""
        old = {match_key(request) for request, _ in filter(None, self._old_interactions)}
        return [
            (request, response)
            for request, response in self.data[self._loaded_count :]
            if match_key(request) not in old
        ]

    def append(self, request: Any, response: Any) -> None:
        """Add an interaction, index it and, when it was just recorded, store its latency."""
        before = len(self.data)
        started = self._started.pop(id(request), None)
        super().append(request, response)
        if len(self.data) == before:
            return
        stored_request, stored_response = self.data[before]
        self._index[match_key(stored_request)].append(before)
        if started is not None and started[0] is request:
            elapsed_ms = (time.perf_counter() - started[1]) * 1000.0
            stored_response.setdefault("headers", {})[LATENCY_HEADER] = [f"{elapsed_ms:.1f}"]
            sink = LIVE_LATENCIES.get()
            if sink is not None:
                sink.append(float(f"{elapsed_ms:.1f}"))
        self._metadata["audio_evals"] = {"format": CASSETTE_FORMAT, "harness_version": __version__}

    def _responses(self, request: Any) -> Iterator[tuple[int, Any]]:
        for index in self._index.get(self._key(request), ()):
            yield index, self.data[index][1]

    def can_play_response_for(self, request: Any) -> bool:
        """Whether a recorded answer is left for this request; notes when a live call starts."""
        # Same answer as vcrpy's, from the index, without a deep copy and re-filtering of the request.
        key = self._key(request)
        playable = self._playable(key)
        if not playable and self._unparsed:  # a miss is decided on the whole cassette
            self._parse_all()
            playable = self._playable(key)
        if not playable:
            if len(self._started) > 4096:
                self._started.clear()
            self._started[id(request)] = (request, time.perf_counter())
        return playable

    def merge_plays(self, counts: Mapping[int, int]) -> None:
        """Count plays made by another process on a copy of this cassette (for hygiene and pruning)."""
        for index in sorted(counts):
            if counts[index] <= 0:
                continue
            if self.play_counts[index] == 0 and index < self._loaded_count:
                if isinstance(self.data[index], _Unparsed):
                    self._merged_unparsed.append(index)  # parsed only if a prune needs it
                else:
                    self._played_interactions.append(self.data[index])  # what vcrpy keeps on prune
            self.play_counts[index] += counts[index]

    @property
    def loaded_count(self) -> int:
        """How many interactions came from the file."""
        return self._loaded_count

    def unused_indices(self) -> list[int]:
        """Indices of loaded interactions that were never played."""
        return [
            i
            for i in range(self._loaded_count)
            if self.play_counts[i] == 0 and self.data[i] is not _DROPPED
        ]


@dataclass(frozen=True)
class CassetteSpec:
    """Where a suite/variant cassette lives and how it is opened."""

    path: Path
    record_mode: str


def cassette_path(library: Path, suite: str, variant: str) -> Path:
    """The cassette file of one suite and variant."""
    return library / suite / f"{variant}.yaml"


_VCR = vcr.VCR(decode_compressed_response=True)


def open_cassette(
    path: Path, record_mode: str
) -> contextlib.AbstractContextManager[IndexedCassette]:
    """A vcrpy cassette context for one suite/variant in a pytest-recording record mode."""
    if record_mode not in RECORD_MODES:
        raise ValueError(
            f"unknown record mode {record_mode!r}; choose from {', '.join(RECORD_MODES)}"
        )
    mode = RecordMode.ALL if record_mode == "rewrite" else RecordMode(record_mode)
    config = _VCR.get_merged_config(
        path=str(path),
        record_mode=mode,
        before_record_request=filter_request,
        before_record_response=filter_response,
        persister=AtomicPersister,
        match_on=("method",),
    )
    config["match_on"] = list(MATCHERS)
    config["func_path_generator"] = None
    cls: type[IndexedCassette] = IndexedCassette
    if record_mode == "rewrite":
        cls = type("RewritingCassette", (IndexedCassette,), {"skip_load": True})
    return cls.use(**config)


def read_interactions(path: Path) -> list[dict[str, Any]]:
    """The interactions of a cassette file as plain dicts (for hygiene reports and tests)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return list(data.get("interactions", []))


def cassette_metadata(path: Path) -> dict[str, Any]:
    """The audio-evals metadata block of a cassette file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    meta = data.get("metadata") or {}
    return copy.deepcopy(meta.get("audio_evals", {}))
