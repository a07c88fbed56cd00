"""vcrpy cassettes for audio extraction: audio replaced by its digest, one case per interaction, no secrets.

The file format is stock vcrpy YAML. Requests are stored normalised (`bodies.py`: audio becomes
its digest), with only allow-listed headers plus the case key (`traffic.py`), so an interaction
is matched by (case and repeat, method, path, normalised body) through a hash index. Every
answer played or recorded is reported to the case that asked for it (usage, latency, transcript).
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import os
import re
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import vcr
import yaml
from vcr.cassette import Cassette
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.record_mode import RecordMode as VcrRecordMode

from . import __version__
from .bodies import differences, json_body, normalise_body, requested_model
from .traffic import CASE_HEADER, LATENCY_HEADER, current_key, latency_of, observe

CASSETTE_FORMAT = 2
# Request headers are kept by allow-list: nothing else (keys, org/project ids, cookies) is written.
KEPT_REQUEST_HEADERS = frozenset({"content-type", CASE_HEADER})
DROPPED_RESPONSE_HEADERS = frozenset(
    {"set-cookie", "cookie", "openai-organization", "openai-project", "authorization", "api-key"}
)
# Query parameters that carry credentials (Gemini's ?key=, Azure SAS signatures, tokens).
SECRET_QUERY_PARAMS = frozenset(
    {"key", "api_key", "apikey", "api-key", "access_token", "token", "sig", "signature", "code"}
)
REDACTED = "REDACTED"
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
_CASE_TEXT = re.compile(CASE_HEADER + r":\s*\n\s*-\s*'?([A-Za-z0-9_.~%-]+/[0-9]+)'?")

__all__ = [
    "CASSETTE_FORMAT",
    "CassetteFormatError",
    "CannotOverwriteExistingCassetteException",
    "IndexedCassette",
    "RecordMode",
    "cassette_path",
    "match_key",
    "open_cassette",
    "read_interactions",
]


class RecordMode(StrEnum):
    """pytest-recording's record modes: what a run may send to the network."""

    NONE = "none"
    ONCE = "once"
    NEW_EPISODES = "new_episodes"
    ALL = "all"
    REWRITE = "rewrite"

    @property
    def records(self) -> bool:
        """Whether this mode can record at all."""
        return self is not RecordMode.NONE

    def needs_network(self, cassette: Path) -> bool:
        """Whether calls of a batch whose cassette is at `cassette` may go to the network."""
        if self is RecordMode.NONE:
            return False
        if self is RecordMode.ONCE:
            return not cassette.exists()
        return True


class CassetteFormatError(ValueError):
    """A cassette file that this harness cannot read, naming the file (and line) and what to do."""


def _canonical_uri(uri: str) -> str:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = "localhost" if host in _LOOPBACK else (host + (f":{parts.port}" if parts.port else ""))
    query = "&".join(
        f"{k}={REDACTED if k.lower() in SECRET_QUERY_PARAMS else v}"
        for k, v in sorted(parse_qsl(parts.query, keep_blank_values=True))
    )
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), query, ""))


def _content_type(request: Any) -> str:
    return str(request.headers.get("content-type", "") or "")


def _normalised(request: Any) -> bytes:
    body = request.body if isinstance(request.body, bytes) else (request.body or b"")
    return (normalise_body(bytes(body), _content_type(request)) or b"") if body else b""


def _case_of(request: Any, *, stored: bool = False) -> str:
    """The case a request belongs to: its header (a stored request's), else the case running now."""
    tagged = request.headers.get(CASE_HEADER)
    if tagged or stored:
        return str(tagged or "")
    return current_key() or ""


def filter_request(request: Any) -> Any:
    """The request as it may be written: canonical URI, allow-listed headers, audio digested, case key."""
    request.uri = _canonical_uri(request.uri)
    content_type = _content_type(request)
    case = _case_of(request)
    for name in list(request.headers):
        if name.lower() not in KEPT_REQUEST_HEADERS:
            del request.headers[name]
    if case:
        request.headers[CASE_HEADER] = case
    body = request.body
    if isinstance(body, bytes | bytearray) and body:
        normalised = normalise_body(bytes(body), content_type)
        if content_type.startswith("multipart/form-data"):
            request.headers["content-type"] = "multipart/form-data"
        request.body = normalised
    return request


def filter_response(response: dict[str, Any]) -> dict[str, Any] | None:
    """The response as it may be written: answers only (2xx), without cookies or account ids.

    A 4xx says the request or the credentials were wrong, a 429/5xx is a failure the client
    retries: replaying either would stand in for an answer the model never gave.
    """
    code = response.get("status", {}).get("code")
    if not isinstance(code, int) or not 200 <= code < 300:
        return None
    headers = response.get("headers", {})
    response["headers"] = {
        k: v for k, v in headers.items() if k.lower() not in DROPPED_RESPONSE_HEADERS
    }
    return response


def _route(request: Any) -> tuple[str, str]:
    parts = urlsplit(_canonical_uri(request.uri))
    return request.method.upper(), parts.path + (f"?{parts.query}" if parts.query else "")


MatchKey = tuple[str, str, str, bytes]


def match_key(request: Any, *, stored: bool = False, body: bytes | None = None) -> MatchKey:
    """What decides an answer: the case and repeat, method, path (with query), normalised body
    digest (`body`: the normalised body when the caller has it)."""
    method, path = _route(request)
    return (
        _case_of(request, stored=stored),
        method,
        path,
        hashlib.sha256(_normalised(request) if body is None else body).digest(),
    )


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


def _yaml_problem(path: Path, exc: BaseException) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    return f"{where}: not a readable cassette ({' '.join(str(exc).split())[:300]})"


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
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CassetteFormatError(f"{path}: cannot be read ({exc})") from None
        if not text.strip():
            raise CassetteNotFoundError()
        try:
            return _deserialize_by_interaction(text, serializer)
        except Exception:  # anything unusual: vcrpy's own whole-file reading, with its errors
            pass
        try:
            return deserialize(text, serializer)
        except (yaml.YAMLError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CassetteFormatError(_yaml_problem(path, exc)) from None

    @staticmethod
    def save_cassette(
        cassette_path: str | os.PathLike[str], cassette_dict: Mapping[str, Any], serializer: Any
    ) -> None:
        """Write a cassette atomically: a reader sees the old file or the new one, never half of one."""
        from vcr.serialize import serialize

        from .files import atomic_write

        atomic_write(Path(cassette_path), serialize(cassette_dict, serializer))


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
    into interactions and notes the case key each one holds; an interaction is parsed when its
    case asks. Unused interactions are never parsed, and forked replay processes parse their own
    shares in parallel. Any miss parses the rest first, so every answer is the one a full load
    would give.
    """

    skip_load: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._index: dict[MatchKey, list[int]] = defaultdict(list)
        self._started: dict[int, tuple[Any, float]] = {}
        self._by_case: dict[str, list[int]] = defaultdict(list)
        self._unparsed = 0
        self._merged_unparsed: list[int] = []
        self.attempts = 0  # requests that reached this cassette to be recorded (kept or not)
        self._last_asked: tuple[Any, bytes, MatchKey] | None = None
        super().__init__(*args, **kwargs)

    def _load(self) -> None:
        if self.skip_load:
            return
        if not self._load_lazily():
            super()._load()
        meta = self._metadata.get("audio_evals") if isinstance(self._metadata, dict) else None
        if self.data and not isinstance(meta, dict):
            raise CassetteFormatError(
                f"{self._path}: has no audio-evals metadata block at its end (the file is "
                "truncated, or was not written by audio-evals)"
            )
        if self.data and isinstance(meta, dict) and meta.get("format") != CASSETTE_FORMAT:
            raise CassetteFormatError(
                f"{self._path}: cassette format {meta.get('format')} is not format "
                f"{CASSETTE_FORMAT} of audio-evals {__version__} (written by another version of "
                "the harness)"
            )

    def _load_lazily(self) -> bool:
        """Split a replay-only cassette into unparsed interactions indexed by case key."""
        if (
            self.record_mode not in (VcrRecordMode.NONE, VcrRecordMode.ONCE)
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
            for found in set(_CASE_TEXT.findall(chunk)) or {""}:
                self._by_case[found].append(index)
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
                f"({' '.join(str(exc).split())[:300]})"
            ) from None
        self._unparsed -= 1
        # A format-2 cassette was written through filter_request/filter_response, which are
        # idempotent: its interactions are stored as the filters would leave them, so vcrpy's
        # per-interaction re-filtering (a deep copy and a body re-normalisation) is skipped.
        code = response.get("status", {}).get("code") if isinstance(response, dict) else None
        if not isinstance(code, int) or not 200 <= code < 300:
            self.data[index] = _DROPPED  # not an answer: a full load's filters would drop it
            self._old_interactions[index] = (request, response)
            return
        self.data[index] = self._old_interactions[index] = (request, response)
        bisect.insort(self._index[match_key(request, stored=True)], index)

    def _parse_all(self) -> None:
        for index in range(len(self.data)):
            self._parse(index)
        self._by_case.clear()

    def _asked(self, request: Any) -> tuple[bytes, MatchKey]:
        """A live request's normalised body and match key, worked out once: vcrpy asks whether it
        can answer, then for the answer, and the answer is reported with the requested model."""
        last = self._last_asked
        if last is None or last[0] is not request:
            body = _normalised(request)
            last = self._last_asked = (request, body, match_key(request, body=body))
        return last[1], last[2]

    def _key(self, request: Any) -> MatchKey:
        """The request's match key, once every interaction that could answer it is parsed."""
        key = self._asked(request)[1]
        if self._unparsed:
            for index in self._by_case.pop(key[0], ()):
                self._parse(index)
        return key

    def _playable(self, key: MatchKey) -> bool:
        return (
            self.record_mode != VcrRecordMode.ALL
            and (self.rewound or self.allow_playback_repeats)
            and any(
                self.play_counts[i] == 0 or self.allow_playback_repeats
                for i in self._index.get(key, ())
            )
        )

    def _stored(self) -> Iterator[tuple[Any, Any]]:
        self._parse_all()
        return (e for e in self.data if e is not _DROPPED)

    @property
    def requests(self) -> list[Any]:
        """Every stored request (parses what was not parsed yet)."""
        return [r for r, _ in self._stored()]

    @property
    def responses(self) -> list[Any]:
        """Every stored response (parses what was not parsed yet)."""
        return [r for _, r in self._stored()]

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
        old = {
            match_key(request, stored=True) for request, _ in filter(None, self._old_interactions)
        }
        return [
            (request, response)
            for request, response in self.data[self._loaded_count :]
            if match_key(request, stored=True) not in old
        ]

    def append(self, request: Any, response: Any) -> None:
        """Add an interaction, index it and, when it was just recorded, store its latency."""
        self.attempts += 1
        before = len(self.data)
        started = self._started.pop(id(request), None)
        elapsed_ms = None
        if started is not None and started[0] is request:
            elapsed_ms = round((time.perf_counter() - started[1]) * 1000.0, 1)
            observe(
                request.method.upper(),
                urlsplit(request.uri).path,
                requested_model(_normalised(request)),
                response,
                latency_ms=elapsed_ms,
                replayed=False,
            )
        super().append(request, response)
        if len(self.data) == before:
            return
        stored_request, stored_response = self.data[before]
        self._index[match_key(stored_request, stored=True)].append(before)
        if elapsed_ms is not None:
            stored_response.setdefault("headers", {})[LATENCY_HEADER] = [f"{elapsed_ms:.1f}"]
        self._metadata["audio_evals"] = {"format": CASSETTE_FORMAT, "harness_version": __version__}

    def keep_empty(self) -> None:
        """Write this cassette with no interaction: a batch recorded whose code made no request."""
        self._metadata["audio_evals"] = {"format": CASSETTE_FORMAT, "harness_version": __version__}
        self.dirty = True

    def _responses(self, request: Any) -> Iterator[tuple[int, Any]]:
        for index in self._index.get(self._key(request), ()):
            yield index, self.data[index][1]

    def play_response(self, request: Any) -> Any:
        """vcrpy's answer to a request, reported to the case that asked for it."""
        response = super().play_response(request)
        observe(
            request.method.upper(),
            urlsplit(request.uri).path,
            requested_model(self._asked(request)[0]),
            response,
            latency_ms=latency_of(response),
            replayed=True,
        )
        return response

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

    def find_requests_with_most_matches(self, request: Any) -> list[Any]:
        """vcrpy's similar-request search for its miss message; `explain_miss` says more, faster."""
        return []

    def explain_miss(self, request: Any) -> str:
        """Why no recorded interaction answers this request: the nearest one and how it differs."""
        stored = [e[0] for e in self._stored()]
        if not stored:
            return "the cassette is empty"
        case = _case_of(request)
        method, path = _route(request)
        same_case = [r for r in stored if _case_of(r, stored=True) == case]
        if not same_case:
            return f"no interaction of case {case or '(none)'} was recorded"
        same_route = [r for r in same_case if _route(r) == (method, path)]
        if not same_route:
            routes = sorted({" ".join(_route(r)) for r in same_case})
            return f"this case recorded {', '.join(routes)}, not {method} {path}"
        body = _normalised(request)
        asked = json_body(body)
        best: list[str] = []
        for r in same_route:
            recorded = _normalised(r)
            if recorded == body:
                return (
                    f"its recorded answer to {method} {path} was already played "
                    "(the code made this call more times than when it was recorded)"
                )
            diff = differences(json_body(recorded), asked) or ["the body differs"]
            if not best or len(diff) < len(best):
                best = diff
        return f"nearest recorded {method} {path} of this case differs in: {', '.join(best)}"

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


def cassette_path(library: Path, suite: str, variant: str) -> Path:
    """The cassette file of one suite and variant."""
    return library / suite / f"{variant}.yaml"


_VCR = vcr.VCR(decode_compressed_response=True)


@contextlib.contextmanager
def _no_reset() -> Iterator[None]:
    yield


@contextlib.contextmanager
def _threads_stay_patched() -> Iterator[None]:
    """Keep vcrpy's patches in place for every thread while a cassette is open.

    vcrpy's `force_reset` puts the real HTTP classes back process-wide while one request builds or
    sends its real connection (http.client, urllib3, and even the httpx transports). The harness
    runs extractions concurrently in threads: a request another thread makes in that window would
    go to the network unrecorded and unreplayed. The real connection a stub builds is an instance
    of the original class whatever the module attributes say, so the reset is skipped.
    """
    import vcr.patch

    original = vcr.patch.force_reset
    vcr.patch.force_reset = _no_reset
    try:
        yield
    finally:
        vcr.patch.force_reset = original


@contextlib.contextmanager
def _open(cls: type[IndexedCassette], config: dict[str, Any]) -> Iterator[IndexedCassette]:
    with _threads_stay_patched(), cls.use(**config) as cassette:
        yield cassette


def open_cassette(
    path: Path, record_mode: RecordMode | str
) -> contextlib.AbstractContextManager[IndexedCassette]:
    """A vcrpy cassette context for one suite/variant in a pytest-recording record mode."""
    mode = RecordMode(record_mode)
    config = _VCR.get_merged_config(
        path=str(path),
        record_mode=VcrRecordMode.ALL if mode is RecordMode.REWRITE else VcrRecordMode(mode.value),
        before_record_request=filter_request,
        before_record_response=filter_response,
        persister=AtomicPersister,
        match_on=("method",),
    )
    config["func_path_generator"] = None
    cls: type[IndexedCassette] = IndexedCassette
    if mode is RecordMode.REWRITE:
        cls = type("RewritingCassette", (IndexedCassette,), {"skip_load": True})
    return _open(cls, config)


def read_interactions(path: Path) -> list[dict[str, Any]]:
    """The interactions of a cassette file as plain dicts (for hygiene reports and tests)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return list(data.get("interactions", []))
