"""Making cases' audio available before it is used: remote audio fetched into the cache and verified.

Remote rows (`remote_sources`) are fetched through fsspec into the local cache (`audio_cache`)
with bounded concurrency (`[remote] jobs`), retries with exponential backoff on transient errors
(`retries`; a 429's `Retry-After` is honoured), a time limit per file (`timeout`) and a progress
bar on a terminal. A warm cache makes no request: the cached file is used once its sha256 matches;
a corrupted entry is dropped and fetched again. A row's `sha256` column, remote or local, is checked
against the bytes. Fetched audio gets the header and limit checks the loader gives local files.

A row whose audio cannot be had fails alone: the run fails its case (`ErrorKind.AUDIO_FETCH`,
`AUDIO_INVALID`), `audio-evals fetch` and `validate` list it with every other problem.

The engine calls `batch_audio` before a batch opens its cassette (no fetch is recorded or
blocked); code of your own that loads a dataset calls `fetch_audio(dataset)` before reading a
remote case's `audio_path`. `pin_digests` writes each fetched file's sha256 into its row. Everything
runs on an event loop and threads of its own that are closed before returning, so a replay may
fork afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import json
import os
import random
import time
from collections.abc import Callable, Collection, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from tqdm import tqdm

from .audio import AudioFileError, probe
from .audio_cache import AudioCache, EntryState, file_digest, hash_file
from .dataset_settings import DatasetSettings
from .datasets import Case, Dataset, read_dataset
from .failures import redact, shorten
from .limits import CHAT_AUDIO_FORMATS, AudioLimits
from .problems import Problem, ProblemKind
from .remote_sources import RemoteAudio
from .results import ErrorKind

BACKOFF_SECONDS = 0.5
"""The first wait before a retry; it doubles with each attempt (with jitter), up to MAX_BACKOFF."""
MAX_BACKOFF_SECONDS = 30.0
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_PERMANENT = (
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    ImportError,
    ValueError,
    TypeError,
)
# Credentials a backend's error message could echo: never shown.
_CREDENTIAL_ENV = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_SAS_TOKEN",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
)
_BOM = b"\xef\xbb\xbf"
_FRESH: set[str] = set()  # cache entries fetched by this process: current, not fetched again


class AudioOutcome(StrEnum):
    """What became of one case's audio."""

    LOCAL = "local"  # a file in the dataset (its sha256 checked when the row gives one)
    CACHED = "cached"  # found in the cache, verified
    FETCHED = "fetched"
    REFETCHED = "refetched"  # its cached copy was corrupted: fetched again
    FAILED = "failed"


@dataclass(frozen=True)
class AudioStatus:
    """One case's audio: the outcome, the bytes fetched, its sha256 when known and, when it failed, why."""

    case: Case
    outcome: AudioOutcome
    fetched_bytes: int = 0
    error: tuple[ErrorKind, str] | None = None
    field: str = "file_name"
    digest: str | None = None


@dataclass(frozen=True)
class AudioReport:
    """What making a set of cases' audio available did."""

    metadata: Path
    statuses: tuple[AudioStatus, ...]
    seconds: float
    retries: int = 0
    cache: Path | None = None

    def count(self, outcome: AudioOutcome) -> int:
        """How many cases had this outcome."""
        return sum(1 for s in self.statuses if s.outcome is outcome)

    @property
    def fetched(self) -> int:
        """How many files were fetched (corrupted cache entries fetched again included)."""
        return self.count(AudioOutcome.FETCHED) + self.count(AudioOutcome.REFETCHED)

    @property
    def fetched_bytes(self) -> int:
        """Bytes fetched."""
        return sum(s.fetched_bytes for s in self.statuses)

    def failures(self) -> dict[str, tuple[ErrorKind, str]]:
        """Why each failed case has no audio, by case id."""
        return {s.case.id: s.error for s in self.statuses if s.error is not None}

    def problems(self) -> list[Problem]:
        """The failures as dataset problems (file, line, field), for `fetch` and `validate`."""
        return [
            Problem(
                self.metadata,
                s.case.line,
                s.field,
                ProblemKind.REMOTE if s.error[0] is ErrorKind.AUDIO_FETCH else ProblemKind.AUDIO,
                s.error[1],
            )
            for s in self.statuses
            if s.error is not None
        ]

    def summary(self) -> str:
        """One line: what was fetched, found in the cache, local, and what failed."""
        parts = [
            f"{self.fetched} fetched ({self.fetched_bytes / 2**20:.1f} MiB in {self.seconds:.1f} s"
            + (f", {self.retries} retries" if self.retries else "")
            + ")",
            f"{self.count(AudioOutcome.CACHED)} from the cache",
        ]
        if self.count(AudioOutcome.REFETCHED):
            parts.append(
                f"{self.count(AudioOutcome.REFETCHED)} corrupted cache entries fetched again"
            )
        if self.count(AudioOutcome.LOCAL):
            parts.append(f"{self.count(AudioOutcome.LOCAL)} local")
        if self.count(AudioOutcome.FAILED):
            parts.append(f"{self.count(AudioOutcome.FAILED)} failed")
        return "; ".join(parts)


def ensure_audio(
    cases: Sequence[Case],
    settings: DatasetSettings,
    metadata: Path,
    *,
    jobs: int | None = None,
    refresh: bool = False,
    progress: bool | None = None,
    backoff: float = BACKOFF_SECONDS,
) -> AudioReport:
    """Make every case's audio available and verified: fetch what the cache lacks; never raises for a row.

    `refresh` fetches remote audio again even when cached (a URL's content is otherwise taken
    not to change); `progress` None shows the bar on a terminal only."""
    started = time.monotonic()
    work = [c for c in cases if c.remote is not None or c.sha256 is not None]
    done: dict[int, AudioStatus] = {}
    fetcher = _Fetcher(settings, metadata, jobs or settings.remote.jobs, refresh, backoff)
    if work:
        bar = _Bar(
            total=len(work),
            unit="file",
            desc="audio",
            delay=1.0,
            disable=None if progress is None else not progress,
            leave=False,
        )
        try:
            statuses = _run_loop(fetcher.run(work, bar.update))
        finally:
            bar.close()
            fetcher.pool.shutdown(wait=not fetcher.abandoned, cancel_futures=True)
        done = {id(s.case): s for s in statuses}
    caches = {AudioCache.holding(c.audio_path).root for c in work if c.remote is not None}
    return AudioReport(
        metadata=metadata,
        statuses=tuple(done.get(id(c)) or AudioStatus(c, AudioOutcome.LOCAL) for c in cases),
        seconds=time.monotonic() - started,
        retries=fetcher.retries,
        cache=next(iter(caches)) if len(caches) == 1 else None,
    )


def fetch_audio(
    dataset: Dataset,
    *,
    jobs: int | None = None,
    refresh: bool = False,
    progress: bool | None = None,
) -> AudioReport:
    """Make a loaded dataset's audio available (`ensure_audio` on all its cases)."""
    return ensure_audio(
        dataset.cases,
        dataset.settings,
        dataset.metadata_file,
        jobs=jobs,
        refresh=refresh,
        progress=progress,
    )


def _run_loop(work: Coroutine[Any, Any, list[AudioStatus]]) -> list[AudioStatus]:
    """Run the fetcher on a loop of its own (in a thread of its own when this one runs a loop:
    a notebook, an async app)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audio-fetch-loop") as one:
        return one.submit(asyncio.run, work).result()


def batch_audio(
    dataset: Dataset, case_ids: Collection[str], say: Callable[[str], None]
) -> dict[str, tuple[ErrorKind, str]]:
    """Make the audio of these cases of a dataset available before their batch runs (call it
    with no cassette open); the cases whose audio cannot be had, with their error."""
    cases = [
        c for c in dataset if c.id in case_ids and (c.remote is not None or c.sha256 is not None)
    ]
    if not cases:
        return {}
    report = ensure_audio(cases, dataset.settings, dataset.metadata_file)
    if report.fetched or report.count(AudioOutcome.FAILED):
        where = f" (cache {report.cache})" if report.cache else ""
        say(f"audio-evals: audio of dataset {dataset.name}: {report.summary()}{where}")
    return report.failures()


class _AnyLabel(BaseModel):
    """A label model that takes any label (fetching needs no response model)."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class FetchResult:
    """`audio-evals fetch` on one dataset: the problems found loading it, and what fetching did."""

    load_problems: list[Problem]
    report: AudioReport

    @property
    def problems(self) -> list[Problem]:
        """Every problem, by file and line."""
        return sorted(
            [*self.load_problems, *self.report.problems()], key=lambda p: (str(p.path), p.line or 0)
        )


def fetch_dataset(
    path: str | Path,
    model: type[BaseModel] | None = None,
    *,
    jobs: int | None = None,
    refresh: bool = False,
    progress: bool | None = None,
) -> FetchResult:
    """Warm the cache with a dataset's remote audio (labels checked against `model` when given)."""
    loaded = read_dataset(path, model or _AnyLabel)
    report = ensure_audio(
        loaded.cases, loaded.settings, loaded.meta, jobs=jobs, refresh=refresh, progress=progress
    )
    return FetchResult(list(loaded.problems), report)


def pin_digests(report: AudioReport) -> int:
    """Write the sha256 of each remote file fetched or found into its row of the metadata file,
    where the row has none (so a changed object is caught); the number of rows pinned."""
    from .dataset_files import row_json
    from .files import atomic_write

    pins = {
        s.case.line: s
        for s in report.statuses
        if s.case.remote is not None and s.case.sha256 is None and s.error is None and s.digest
    }
    if not pins:
        return 0
    raw = report.metadata.read_bytes()
    bom = _BOM if raw.startswith(_BOM) else b""
    lines = raw[len(bom) :].split(b"\n")
    for number, status in pins.items():
        line = lines[number - 1]
        ending = b"\r" if line.endswith(b"\r") else b""
        row = json.loads(line)
        if row.get("id") != status.case.id or "sha256" in row:
            raise ValueError(
                f"{report.metadata}:{number} changed while its audio was fetched; run again"
            )
        row["sha256"] = status.digest
        lines[number - 1] = row_json(row).encode("utf-8") + ending
    atomic_write(report.metadata, bom + b"\n".join(lines))
    return len(pins)


# ---- the fetcher -----------------------------------------------------------------------------


class _Bar(tqdm):  # type: ignore[type-arg]
    """tqdm without its monitor thread (a replay forks only a single-threaded process)."""

    monitor_interval = 0


class _FetchFailed(Exception):
    """A remote file that could not be fetched (the message has no credentials)."""


class _Fetcher:
    """Fetches on its own event loop with `jobs` workers; threads for hashing and sync backends."""

    def __init__(
        self, settings: DatasetSettings, metadata: Path, jobs: int, refresh: bool, backoff: float
    ) -> None:
        self.limits: AudioLimits = settings.limits
        self.remote = settings.remote
        self.metadata = metadata
        self.jobs = max(1, jobs)
        self.refresh = refresh
        self.backoff = backoff
        self.pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="audio-fetch")
        self.filesystems: dict[tuple[str, str], Any] = {}
        self.entries: dict[str, asyncio.Lock] = {}  # rows that share a URL: fetched once
        self.retries = 0
        self.abandoned = False  # a sync download outlived its timeout: its thread is not awaited

    async def run(self, cases: Sequence[Case], tick: Callable[[int], object]) -> list[AudioStatus]:
        results: list[AudioStatus | None] = [None] * len(cases)
        queue: Iterator[tuple[int, Case]] = iter(enumerate(cases))

        async def worker() -> None:
            for i, case in queue:
                results[i] = await self.one(case)
                tick(1)

        try:
            await asyncio.gather(*(worker() for _ in range(min(self.jobs, len(cases)))))
        finally:
            await self.close()
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    async def thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking work (hashing, file moves, a sync backend) on the fetcher's threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, functools.partial(fn, *args))

    async def one(self, case: Case) -> AudioStatus:
        if case.remote is None:
            return await self.local(case)
        try:
            return await self.fetch(case, case.remote)
        except OSError as exc:  # the cache folder itself cannot be written or read
            root = AudioCache.holding(case.audio_path).root
            return self.failed(
                case,
                ErrorKind.AUDIO_FETCH,
                f"{case.remote.shown}: the audio cache {root} cannot be used: {exc.strerror or exc}",
            )

    async def local(self, case: Case) -> AudioStatus:
        try:
            digest = await self.thread(file_digest, case.audio_path)
        except OSError as exc:
            return self.failed(
                case,
                ErrorKind.AUDIO_INVALID,
                f"cannot read {case.audio_path}: {exc.strerror or exc}",
            )
        if digest != case.sha256:
            return self.mismatch(case, digest, str(case.audio_path))
        return AudioStatus(case, AudioOutcome.LOCAL, digest=digest)

    async def fetch(self, case: Case, remote: RemoteAudio) -> AudioStatus:
        async with self.entries.setdefault(str(case.audio_path), asyncio.Lock()):
            return await self._fetch(case, remote)

    async def _fetch(self, case: Case, remote: RemoteAudio) -> AudioStatus:
        entry = case.audio_path
        cache = AudioCache.holding(entry)
        corrupted = False
        if not self.refresh:
            found = await self.thread(cache.look, entry)
            if found.state is EntryState.OK and case.sha256 in (None, found.digest):
                return await self.checked(case, AudioOutcome.CACHED, found.digest)
            if found.state is EntryState.OK and str(entry) in _FRESH:
                assert found.digest is not None  # fetched in this run: the row is what is wrong
                return self.mismatch(case, found.digest, remote.shown)
            if found.state is EntryState.CORRUPT:
                corrupted = True
                await self.thread(cache.discard, entry)
            if case.sha256 is not None and await self.thread(cache.from_blob, case.sha256, entry):
                return await self.checked(case, AudioOutcome.CACHED, case.sha256)
        try:
            downloaded, digest = await self.download(cache, remote)
        except _FetchFailed as exc:
            return self.failed(case, ErrorKind.AUDIO_FETCH, str(exc))
        size = downloaded.stat().st_size
        await self.thread(cache.put, downloaded, digest, entry)
        _FRESH.add(str(entry))
        if case.sha256 is not None and digest != case.sha256:
            return self.mismatch(case, digest, remote.shown, size)
        outcome = AudioOutcome.REFETCHED if corrupted else AudioOutcome.FETCHED
        return await self.checked(case, outcome, digest, size)

    async def download(self, cache: AudioCache, remote: RemoteAudio) -> tuple[Path, str]:
        """The remote file in a temp file of the cache, and its sha256; retried when transient."""
        attempts = self.remote.retries + 1
        for attempt in range(1, attempts + 1):
            temp = await self.thread(cache.temp_file)
            try:
                await asyncio.wait_for(self.get(remote, temp), self.remote.timeout)
                return temp, await self.thread(hash_file, temp)
            except BaseException as exc:
                temp.unlink(missing_ok=True)
                if not isinstance(exc, Exception):
                    raise
                if attempt == attempts or not _transient(exc):
                    reason = _reason(exc, remote, self.remote.timeout)
                    tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                    raise _FetchFailed(f"could not fetch {remote.shown}: {reason}{tries}") from None
                self.retries += 1
                await asyncio.sleep(_wait(exc, self.backoff, attempt))
        raise AssertionError("unreachable")

    async def get(self, remote: RemoteAudio, temp: Path) -> None:
        fs = self.filesystem(remote)
        path = fs._strip_protocol(remote.url)
        if getattr(fs, "async_impl", False):
            await fs._get_file(path, str(temp))
            return
        future = self.thread(fs.get_file, path, str(temp))
        try:
            await future
        except asyncio.CancelledError:
            self.abandoned = True
            raise

    def filesystem(self, remote: RemoteAudio) -> Any:
        """One fsspec filesystem per protocol and options, async ones bound to this loop."""
        key = (remote.protocol, json.dumps(remote.options, sort_keys=True, default=str))
        fs = self.filesystems.get(key)
        if fs is None:
            import fsspec

            cls = fsspec.get_filesystem_class(remote.protocol)
            if getattr(cls, "async_impl", False):
                fs = cls(
                    asynchronous=True,
                    loop=asyncio.get_running_loop(),
                    skip_instance_cache=True,
                    **remote.options,
                )
            else:
                fs = cls(**remote.options)
            self.filesystems[key] = fs
        return fs

    async def close(self) -> None:
        """Close the async backends' sessions (best effort: each backend keeps its own)."""
        for fs in self.filesystems.values():
            if getattr(fs, "async_impl", False):
                with contextlib.suppress(Exception):
                    await _close_async(fs)
        self.filesystems.clear()

    async def checked(
        self, case: Case, outcome: AudioOutcome, digest: str | None, size: int = 0
    ) -> AudioStatus:
        """The status of audio now in the cache, after the header and limit checks of the loader."""
        problem = await self.thread(_header_problem, case.audio_path, self.limits)
        if problem is None:
            return AudioStatus(case, outcome, size, digest=digest)
        shown = case.remote.shown if case.remote is not None else str(case.audio_path)
        return dataclasses.replace(
            self.failed(case, ErrorKind.AUDIO_INVALID, f"{shown}: {problem}"), fetched_bytes=size
        )

    def failed(self, case: Case, kind: ErrorKind, message: str) -> AudioStatus:
        return AudioStatus(case, AudioOutcome.FAILED, error=(kind, message))

    def mismatch(self, case: Case, digest: str, where: str, size: int = 0) -> AudioStatus:
        message = (
            f"{self.metadata}:{case.line}: id {case.id!r}: sha256 mismatch: the row says "
            f"{case.sha256}, {where} holds {digest}"
        )
        return AudioStatus(
            case, AudioOutcome.FAILED, size, (ErrorKind.AUDIO_INVALID, message), "sha256"
        )


def _header_problem(path: Path, limits: AudioLimits) -> str | None:
    try:
        info = probe(path)
    except AudioFileError as exc:
        return str(exc)
    return limits.size_problem(info.sent_bytes(CHAT_AUDIO_FORMATS)) or limits.duration_problem(
        info.duration
    )


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) and 100 <= status < 600 else None


def _transient(exc: Exception) -> bool:
    """Whether another attempt may succeed (a timeout, a dropped connection, 429, 5xx)."""
    status = _status(exc)
    if status is not None:
        return status in _RETRY_STATUSES
    if "credential" in type(exc).__name__.lower():  # botocore's NoCredentialsError and kin
        return False
    return not isinstance(exc, _PERMANENT)


def _wait(exc: Exception, base: float, attempt: int) -> float:
    """Seconds before the next attempt: exponential with jitter, at least a 429's Retry-After."""
    wait = min(MAX_BACKOFF_SECONDS, base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
    headers = getattr(exc, "headers", None) or {}
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        wait = max(wait, min(MAX_BACKOFF_SECONDS, float(headers.get("Retry-After"))))
    return wait


def _reason(exc: Exception, remote: RemoteAudio, timeout: float) -> str:
    """Why a fetch failed, in words, without the URL's credentials or any from the environment."""
    status = _status(exc)
    if isinstance(exc, TimeoutError):
        text = f"no complete answer within {timeout:g} s"
    elif isinstance(exc, FileNotFoundError):
        text = "not found"
    elif isinstance(exc, PermissionError):
        text = "access denied (credentials come from the environment or your cloud's login)"
    elif status is not None:
        text = f"HTTP {status} {getattr(exc, 'message', '') or ''}".strip()
    else:
        text = f"{type(exc).__name__}: {exc}"
    query = remote.url.partition("?")[2]
    text = text.replace(remote.url, remote.shown)
    if query:
        text = text.replace(query, "…")
    text = redact(text, [os.environ[n] for n in _CREDENTIAL_ENV if os.environ.get(n)])
    return shorten(text, 300)


async def _close_async(fs: Any) -> None:
    session = getattr(fs, "_session", None)  # fsspec's HTTP (aiohttp), gcsfs
    if session is not None and hasattr(session, "close"):
        await _maybe_await(session.close())
    creator = getattr(fs, "_s3creator", None)  # s3fs (aiobotocore)
    if creator is not None:
        await creator.__aexit__(None, None, None)
    client = getattr(fs, "service_client", None)  # adlfs (azure)
    if client is not None and hasattr(client, "close"):
        await _maybe_await(client.close())


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value
