"""The run engine: runs or replays a suite's batches with cassettes, scoring and results, without pytest.

One (suite, variant) is one batch and one cassette. The engine knows which units were selected;
the first time a unit's result is asked for, its whole batch runs (concurrently, within the
cassette), so a caller asking one result at a time (the pytest plugin, item by item) and a caller
asking for everything (`run_suite`) share one code path. Large replays are split between forked
processes (`forked.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import logging
import os
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from . import cassettes as cas
from . import forked
from .cassettes import RecordMode
from .extractors import ClientFactory, Secret
from .failures import redact
from .field_types import categorical_fields
from .netguard import blocked_network
from .project import Project
from .redaction import redacted_logs
from .remote_audio import batch_audio
from .results import CaseResult, ErrorKind, EvalRef, run_key
from .runner import Endpoint, run_batch
from .suites import Suite, Variant

log = logging.getLogger("audio_evals")

REPLAY_BASE_URL = "http://localhost/v1"
REPLAY_API_KEY = "sk-replay-no-key-needed"
LOCAL_API_KEY = "sk-local"
NO_KEY = "sk-no-key-set"
OPENAI_BASE_URL = "https://api.openai.com/v1"


class EngineError(Exception):
    """An error of the run engine (the plugin turns each kind into a skip, a usage error or a failure)."""


class UsageError(EngineError):
    """The run was asked for something that does not exist (an unknown variant, a clashing suite)."""


class BatchSkipped(EngineError):
    """A batch that cannot run in this mode and was not asked to (no cassette to replay)."""


class BatchFailed(EngineError):
    """A batch that was asked to run and could not (recording without a key, an unreadable cassette)."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during `run_suite`: a KeyboardInterrupt that carries the run as it stood (`.run`)."""

    def __init__(self, run: Run) -> None:
        super().__init__("the run was interrupted")
        self.run = run


class BatchStatus(StrEnum):
    """What became of one (suite, variant)."""

    PENDING = "pending"
    RAN = "ran"
    SKIPPED = "skipped"
    FAILED = "failed"
    DESELECTED = "deselected"
    INTERRUPTED = "interrupted"


@dataclass
class BatchInfo:
    """What the run knows of one (suite, variant): units collected and selected, and its fate."""

    suite: str
    variant: str
    model: str
    pipeline: str
    cassette: str
    collected: int = 0
    selected: int = 0
    status: BatchStatus = BatchStatus.PENDING
    reason: str | None = None
    unused_interactions: int | None = None
    unused_unknown: str | None = None
    loaded: int | None = None
    played: list[int] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchInfo:
        """Read back `asdict(info)` (sent by an xdist worker)."""
        return cls(**{**data, "status": BatchStatus(data["status"])})


@dataclass
class SuiteInfo:
    """What reports and gates need of a suite (JSON-able: xdist workers send it to the controller)."""

    name: str
    source: str
    variants: list[str]
    models: dict[str, list[str]]
    gates: dict[str, Any]
    pricing: dict[str, Any]
    cluster_by: str | None
    baseline: str
    n_cases: int
    has_transcripts: bool
    field_types: dict[str, str]

    @classmethod
    def of(cls, suite: Suite) -> SuiteInfo:
        """The info of a loaded suite."""
        return cls(
            name=suite.name,
            source=str(suite.source) if suite.source else "",
            variants=[v.name for v in suite.variants],
            models={v.name: list(v.models) for v in suite.variants},
            gates=dict(suite.gates),
            pricing=dict(suite.pricing),
            cluster_by=suite.cluster_by,
            baseline=suite.baseline_variant,
            n_cases=len(suite.dataset),
            has_transcripts=suite.dataset.has_transcripts,
            field_types={
                path: str(kind) for path, kind in categorical_fields(suite.response_model).items()
            },
        )


@dataclass
class Run:
    """A finished (or interrupted) run: its results and what became of every batch."""

    project: Project
    record_mode: RecordMode
    results: list[CaseResult]
    batches: dict[tuple[str, str], BatchInfo]
    suites: dict[str, SuiteInfo]
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    shard: tuple[int, int] | None = None
    resume: str | None = None  # the command that finishes it when it stops early (its caller's)

    @property
    def skips(self) -> list[dict[str, str]]:
        """The batches that did not run, with the reason (skipped or failed)."""
        return [
            {"suite": b.suite, "variant": b.variant, "reason": b.reason or b.status.value}
            for b in self.batches.values()
            if b.status in (BatchStatus.SKIPPED, BatchStatus.FAILED)
        ]


@dataclass(frozen=True)
class RunOptions:
    """How a run calls, records and replays."""

    record_mode: RecordMode = RecordMode.NONE
    concurrency: int = 8
    rpm: float = 0.0
    processes: int | None = None
    repeats: int | None = None
    prune_cassettes: bool = False
    block_network: bool = True
    allowed_hosts: tuple[str, ...] = ()
    client_factory: ClientFactory | None = None
    worker: bool = False
    shard: tuple[int, int] | None = None
    parent_share: float = (
        1.0  # of an even share of a forked replay (pytest's parent runs items too)
    )


def in_shard(ref: EvalRef, shard: tuple[int, int]) -> bool:
    """Whether a unit belongs to shard i of n: a stable hash of suite and case id, so a case's
    repeats and variants stay together and adding cases moves no other case."""
    index, count = shard
    key = hashlib.sha256(f"{ref.suite}\0{ref.case_id}".encode()).digest()
    return int.from_bytes(key[:8], "big") % count == index - 1


def record_command(variant: Variant, case_id: str | None = None, mode: str = "new_episodes") -> str:
    """The command that records this variant (or one of its cases)."""
    prefix = "" if variant.is_local or variant.base_url else f"{variant.api_key_env}=... "
    k = f" -k {shlex.quote(case_id)}" if case_id else ""
    return f"{prefix}pytest evals --record-mode={mode} --variant {variant.name}{k}"


class Engine:
    """Runs the selected units of registered suites, batch by batch, and keeps what became of them."""

    def __init__(
        self,
        project: Project,
        options: RunOptions | None = None,
        say: Callable[[str], None] | None = None,
        detail: Callable[[str], None] | None = None,
    ) -> None:
        self.project = project
        self.options = options or RunOptions()
        self.say = say or log.warning
        self.detail = detail or log.info
        self.suites: dict[str, Suite] = {}
        self.batches: dict[tuple[str, str], BatchInfo] = {}
        self.results: list[CaseResult] = []
        self.notes: list[str] = []
        self.started_at = dt.datetime.now(dt.UTC)
        self.interrupted = False
        self.stopped_early: str | None = None  # why the caller stopped before every unit ran (-x)
        self._worker_suites: dict[str, SuiteInfo] = {}
        self._cache: dict[EvalRef, CaseResult] = {}
        self._pending: dict[tuple[str, str], dict[EvalRef, None]] = {}
        self._deselected: set[tuple[str, str]] = set()
        self._failures: dict[tuple[str, str], EngineError] = {}
        self._audio_failures: dict[tuple[str, str], dict[str, tuple[ErrorKind, str]]] = {}
        self._shares: list[forked.ForkedShare] = []
        self._share_of: dict[EvalRef, forked.ForkedShare] = {}
        self._fork_failed = False
        self._plays_incomplete = False
        self._heap_frozen = False
        self._open_batch: tuple[str, str] | None = None
        self._cassette: cas.IndexedCassette | None = None
        self._cassette_stack = contextlib.ExitStack()
        self._server_stack = contextlib.ExitStack()
        self._server: Any = None

    # ---- suites and selection --------------------------------------------------------------
    def add_suite(self, suite: Suite) -> None:
        """Register a suite and its variants (once per name)."""
        known = self.suites.get(suite.name)
        if known is not None and known is not suite and known.source != suite.source:
            raise UsageError(
                f"two suites are named {suite.name!r}: {known.source or '(Python)'} and "
                f"{suite.source or '(Python)'}"
            )
        self.suites[suite.name] = suite
        for v in suite.variants:
            path = self.cassette_file(suite.name, v.name)
            self.batches.setdefault(
                (suite.name, v.name),
                BatchInfo(
                    suite=suite.name,
                    variant=v.name,
                    model=v.model,
                    pipeline=v.extractor_name,
                    cassette=self.project.relative(path),
                ),
            )

    def repeats_of(self, suite: Suite) -> int:
        """How many times each case of a suite runs."""
        return self.options.repeats or suite.repeats

    def refs(self, suite: Suite) -> Iterator[EvalRef]:
        """The units of a suite, variant-major so that each batch is contiguous."""
        k = self.repeats_of(suite)
        for v in suite.variants:
            for case in suite.dataset:
                for r in range(k):
                    yield EvalRef(suite.name, v.name, case.id, r)

    def item_id(self, ref: EvalRef) -> str:
        """The readable id of a unit, e.g. `local-baseline-person-0007` (`-r2` per repeat)."""
        rep = f"-r{ref.repeat + 1}" if self.repeats_of(self.suites[ref.suite]) > 1 else ""
        return f"{ref.variant}-{ref.case_id}{rep}"

    def check_variants(self, names: Iterable[str]) -> None:
        """Raise UsageError for a variant name no registered suite has."""
        known = {v for (_, v) in self.batches}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UsageError(
                f"--variant {unknown[0]!r} matches no variant; known: "
                f"{', '.join(sorted(known)) or '(none)'}"
            )

    def select(self, selected: Iterable[EvalRef], deselected: Iterable[EvalRef] = ()) -> None:
        """Fix the units that will run (grouped by batch) and the ones left out on purpose."""
        for ref in selected:
            self._pending.setdefault(ref.batch, {})[ref] = None
        self._deselected.update(r.batch for r in deselected)
        for key, info in self.batches.items():
            info.selected = len(self._pending.get(key, {}))
            suite = self.suites[key[0]]
            info.collected = len(suite.dataset) * self.repeats_of(suite)
            if info.selected == 0 and key in self._deselected:
                info.status = BatchStatus.DESELECTED

    # ---- paths and modes ---------------------------------------------------------------------
    def cassette_file(self, suite: str, variant: str) -> Path:
        """The cassette file of one batch."""
        return cas.cassette_path(self.project.cassette_dir, suite, variant)

    def _unavailable(self, suite: Suite, variant: Variant) -> EngineError | None:
        """Why a batch cannot run in this mode (None when it can)."""
        path = self.cassette_file(suite.name, variant.name)
        mode = self.options.record_mode
        if mode is RecordMode.NONE and not path.exists():
            return BatchSkipped(
                f"no cassette {self.project.relative(path)} for suite {suite.name}, variant "
                f"{variant.name}; record it with: {record_command(variant, mode='once')}"
            )
        if mode.needs_network(path) and not variant.is_local and not variant.base_url:
            if not os.environ.get(variant.api_key_env):
                return BatchFailed(
                    f"--record-mode={mode} asked to record variant {variant.name} "
                    f"({variant.model}), but {variant.api_key_env} is not set; set it, or leave "
                    "this variant out with --variant"
                )
        return None

    def secrets(self) -> list[Secret]:
        """Credentials a message must never show (the keys the suites' variants read); reprs hide them."""
        names = {v.api_key_env for s in self.suites.values() for v in s.variants}
        names |= {"OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"}
        return [Secret(os.environ[n]) for n in sorted(names) if os.environ.get(n)]

    # ---- running -----------------------------------------------------------------------------
    def result(self, ref: EvalRef) -> CaseResult:
        """This unit's result, running its whole batch the first time (BatchSkipped/BatchFailed)."""
        failure = self._failures.get(ref.batch)
        if failure is not None:
            raise failure
        if ref not in self._cache and ref in self._share_of:
            self._take_from_share(ref)
        if ref not in self._cache:
            self._run_batch_of(ref)
        result = self._cache.pop(ref)
        self.results.append(result)
        return result

    def _fail_batch(self, batch: tuple[str, str], error: EngineError) -> EngineError:
        info = self.batches[batch]
        info.status = BatchStatus.SKIPPED if isinstance(error, BatchSkipped) else BatchStatus.FAILED
        info.reason = str(error)
        self._failures[batch] = error
        return error

    def _endpoint(self, variant: Variant, live: bool) -> Endpoint:
        if variant.is_local:
            base_url = self._local_server().base_url if live else REPLAY_BASE_URL
            return Endpoint(base_url, LOCAL_API_KEY, variant.max_retries if live else 0, live)
        base_url = variant.base_url or OPENAI_BASE_URL
        # A server of the team's own (vLLM, a proxy) may need no key: a placeholder then.
        key = Secret(os.environ.get(variant.api_key_env) or NO_KEY) if live else REPLAY_API_KEY
        return Endpoint(base_url, key, variant.max_retries if live else 0, live)

    def _run_batch_of(self, ref: EvalRef) -> None:
        suite = self.suites[ref.suite]
        variant = suite.variant(ref.variant)
        unavailable = self._unavailable(suite, variant)
        if unavailable is not None:
            raise self._fail_batch(ref.batch, unavailable)
        if self.options.worker:
            refs = [ref]
        else:
            refs = [
                r
                for r in self._pending.get(ref.batch, {})
                if r not in self._cache and r not in self._share_of
            ]
            if ref not in refs:
                refs.append(ref)
        path = self.cassette_file(suite.name, variant.name)
        if self._open_batch != ref.batch:
            self._close_batch()
            if variant.is_local and self.options.record_mode.needs_network(path):
                self._local_server()  # started outside any cassette: its health checks are not recorded
            wanted = {r.case_id for r in (*self._pending.get(ref.batch, {}), ref)}
            # before the cassette opens: fetching remote audio is neither recorded nor blocked
            self._audio_failures[ref.batch] = batch_audio(suite.dataset, wanted, self.say)
            if (
                not self._heap_frozen
            ):  # once, before any cassette: a closed one must stay collectable
                forked.freeze_heap()
                self._heap_frozen = True
            try:
                self._open(ref.batch)
            except cas.CassetteFormatError as exc:
                raise self._fail_batch(
                    ref.batch,
                    BatchFailed(
                        f"{exc} -- the other batches still run; re-record this one with: "
                        f"{record_command(variant, mode='rewrite')}"
                    ),
                ) from None
        assert self._cassette is not None
        live = not self._cassette.write_protected
        info = self.batches[ref.batch]
        info.status = BatchStatus.RAN
        endpoint = self._endpoint(variant, live)
        run = functools.partial(
            run_batch,
            suite,
            variant,
            endpoint=endpoint,
            concurrency=self.options.concurrency,
            rpm=self.options.rpm,
            client_factory=self.options.client_factory,
            secrets=self.secrets(),
            audio_failures=self._audio_failures.get(ref.batch),
        )
        guard = (
            blocked_network(self.options.allowed_hosts)
            if not live and self.options.block_network
            else contextlib.nullcontext()
        )
        on_result: Callable[[EvalRef, CaseResult], None] = self._cache.__setitem__
        with guard, redacted_logs(self.secrets):
            own = refs
            if (
                not live
                and not self.options.worker
                and not self._fork_failed
                and not self.options.rpm
            ):
                shares = forked.split_shares(
                    refs,
                    forked.processes_for(self.options.processes, len(refs)),
                    self.options.parent_share,
                )
                own = shares[0]
                forks = sum(self._fork(share, run) for share in shares[1:])
                for child in self._shares:
                    child.start()
                if forks:
                    self.detail(
                        f"audio-evals: replaying {len(refs)} cases of {suite.name}/{variant.name} "
                        f"in {forks + 1} processes"
                    )
            try:
                results = asyncio.run(run(own, on_result=on_result))
            except Exception as exc:
                # not a case's failure (those are results): the batch's own, its set-up or the harness
                raise self._fail_batch(
                    ref.batch,
                    BatchFailed(
                        f"batch {suite.name}/{variant.name} stopped: {type(exc).__name__}: "
                        f"{redact(str(exc), self.secrets())} -- the other batches still run"
                    ),
                ) from None
            except BaseException:  # Ctrl-C: what completed stays (in the cassette and the cache)
                info.status = BatchStatus.INTERRUPTED
                info.reason = "interrupted mid-batch"
                self.interrupted = True
                raise
        self._settle(ref.batch, results)

    def _fork(self, refs: list[EvalRef], run: Callable[..., Any]) -> bool:
        """Replay `refs` in a child process (or here, when fork fails); whether it forked."""
        cassette = self._cassette
        assert cassette is not None

        def work(share: Sequence[EvalRef], emit: forked.Emit) -> dict[int, int]:
            before = dict(cassette.play_counts)
            asyncio.run(run(share, on_result=lambda _ref, result: emit(result)))
            return {
                i: n - before.get(i, 0)
                for i, n in cassette.play_counts.items()
                if n > before.get(i, 0)
            }

        child = forked.fork_share(refs, work)
        if child is None:
            self._fork_failed = True
            self._cache.update(asyncio.run(run(refs)))
            return False
        self._shares.append(child)
        for r in refs:
            self._share_of[r] = child
        return True

    def _take_from_share(self, ref: EvalRef) -> None:
        """Wait for a child's result for `ref`; when the child failed, its missing units are redone here."""
        share = self._share_of.pop(ref)
        result = share.take(ref)
        if result is not None:
            self._cache[ref] = result
            self._settle(ref.batch, {ref: result})
            return
        missing = share.missing()
        for r in share.refs:
            self._share_of.pop(r, None)
        self._fork_failed = self._plays_incomplete = True
        delivered, share.results = share.results, {}
        self._cache.update(delivered)  # what it delivered before failing stands
        self._settle(ref.batch, delivered)
        self.say(
            f"audio-evals: a replay process failed ({share.error}); replaying its "
            f"{len(missing)} remaining case(s) in this process"
        )

    def _settle(self, batch: tuple[str, str], results: Mapping[EvalRef, CaseResult]) -> None:
        """Mark results as computed; once the batch has all of them, free its cassette."""
        pending = self._pending.get(batch)
        if pending is not None:
            for r in results:
                pending.pop(r, None)
        if not self.options.worker and not pending and self._open_batch == batch:
            self._close_batch()  # every answer is in hand: free the cassette before the next batch

    def _local_server(self) -> Any:
        if self._server is None:
            from .local.runner import LocalServer

            self._server = self._server_stack.enter_context(LocalServer())
            self.say(f"audio-evals: started the local server at {self._server.base_url}")
        return self._server

    def _open(self, batch: tuple[str, str]) -> None:
        """Open a batch's cassette (the previous batch is closed)."""
        path = self.cassette_file(*batch)
        self._cassette = self._cassette_stack.enter_context(
            cas.open_cassette(path, self.options.record_mode)
        )
        self._open_batch = batch

    def _close_batch(self, *, abandon: bool = False) -> None:
        if self._open_batch is None:
            return
        batch, cassette = self._open_batch, self._cassette
        info = self.batches.get(batch)
        shares, self._shares = self._shares, []
        for share in shares:  # results not yet asked for are kept; plays count for hygiene
            share.close(kill=abandon)
            for r in share.refs:
                self._share_of.pop(r, None)
            delivered, share.results = share.results, {}
            self._cache.update(delivered)
            for r in delivered:
                self._pending.get(batch, {}).pop(r, None)
            if share.error is not None:
                self._plays_incomplete = True
            elif cassette is not None:
                cassette.merge_plays(share.played)
        if cassette is not None and info is not None and not self.options.worker:
            if self._plays_incomplete:
                info.unused_interactions, info.played = None, None
                info.unused_unknown = "a replay process failed, so its plays are unknown"
            elif cassette.write_protected:  # replayed: which recorded interactions it played
                info.loaded = cassette.loaded_count
                info.played = sorted(i for i, n in cassette.play_counts.items() if n > 0)
        complete = (
            info is not None
            and info.selected == info.collected
            and not self._plays_incomplete
            and not self._pending.get(batch)
        )
        if cassette is not None and info is not None and not self.options.worker and complete:
            mode = self.options.record_mode
            unused = (
                cassette.unused_indices()
                if mode in (RecordMode.NONE, RecordMode.ONCE, RecordMode.NEW_EPISODES)
                else []
            )
            info.unused_interactions = len(unused)
            if unused and self.options.prune_cassettes:
                cassette.drop_unused_requests = True
        if cassette is not None and complete and not abandon and self._made_no_request(batch):
            cassette.keep_empty()  # so replay runs this code offline instead of skipping it
        self._open_batch, self._cassette = None, None
        self._plays_incomplete = False
        self._cassette_stack.close()

    def _made_no_request(self, batch: tuple[str, str]) -> bool:
        """A batch recorded into a new (or rewritten) cassette whose cases all ran without error
        or request."""
        cassette, mode = self._cassette, self.options.record_mode
        if (
            cassette is None
            or not mode.records
            or self.options.worker
            or cassette.attempts
            or cassette.data
            or (mode is not RecordMode.REWRITE and self.cassette_file(*batch).exists())
        ):
            return False
        mine = [r for r in (*self.results, *self._cache.values()) if (r.suite, r.variant) == batch]
        return bool(mine) and all(r.error_kind is None for r in mine)

    # ---- xdist transport -----------------------------------------------------------------------
    def add_result(self, result: CaseResult) -> None:
        """Count a result computed elsewhere (sent by an xdist worker)."""
        self.results.append(result)

    def worker_payload(self) -> dict[str, Any]:
        """What a worker tells the controller at its end: batches and suites."""
        return {
            "batches": [asdict(b) for b in self.batches.values()],
            "suites": {name: asdict(SuiteInfo.of(s)) for name, s in self.suites.items()},
        }

    def merge_worker(self, payload: Mapping[str, Any]) -> None:
        """Merge what an xdist worker knew of batches and suites."""
        for raw in payload.get("batches", []):
            theirs = BatchInfo.from_dict(raw)
            key = (theirs.suite, theirs.variant)
            mine = self.batches.get(key)
            if mine is None:
                self.batches[key] = theirs
                continue
            mine.collected = max(mine.collected, theirs.collected)
            if theirs.status in (
                BatchStatus.SKIPPED,
                BatchStatus.FAILED,
                BatchStatus.INTERRUPTED,
            ) or (theirs.status is BatchStatus.RAN and mine.status is not BatchStatus.FAILED):
                mine.status, mine.reason = theirs.status, theirs.reason or mine.reason
        for name, raw in payload.get("suites", {}).items():
            self._worker_suites[name] = SuiteInfo(**raw)

    # ---- the end ------------------------------------------------------------------------------
    def close(self) -> Run:
        """Close the cassette and the local server; the run as it stands."""
        try:
            self._close_batch(abandon=True)
        finally:
            self._server_stack.close()
        leftover = sorted(self._cache.values(), key=run_key)
        if leftover:  # computed for units nobody asked for after an interrupt or -x
            self.results.extend(leftover)
            self._cache.clear()
        for info in self.batches.values():
            if info.status is BatchStatus.PENDING and info.selected:
                if self.interrupted:
                    info.status = BatchStatus.INTERRUPTED
                elif self.stopped_early:
                    info.status = BatchStatus.INTERRUPTED
                    info.reason = f"never run: the session stopped early ({self.stopped_early})"
        suites = {**self._worker_suites, **{n: SuiteInfo.of(s) for n, s in self.suites.items()}}
        return Run(
            project=self.project,
            record_mode=self.options.record_mode,
            results=self.results,
            batches=self.batches,
            suites=suites,
            started_at=self.started_at,
            finished_at=dt.datetime.now(dt.UTC),
            interrupted=self.interrupted,
            notes=self.notes,
            shard=self.options.shard,
        )


def _select(
    engine: Engine,
    suites: Sequence[Suite],
    variants: Iterable[str] | None,
    cases: Iterable[str] | None,
) -> list[EvalRef]:
    wanted_variants = set(variants) if variants is not None else None
    wanted_cases = set(cases) if cases is not None else None
    if wanted_variants:
        engine.check_variants(wanted_variants)
    if wanted_cases:
        known = {c.id for s in suites for c in s.dataset}
        unknown = sorted(wanted_cases - known)
        if unknown:
            raise UsageError(f"case {unknown[0]!r} is in no suite's dataset")
    selected, dropped = [], []
    shard = engine.options.shard
    for suite in suites:
        for ref in engine.refs(suite):
            keep = (wanted_variants is None or ref.variant in wanted_variants) and (
                wanted_cases is None or ref.case_id in wanted_cases
            )
            if shard is not None and not in_shard(ref, shard):
                continue  # another shard's: neither run here nor deselected on purpose
            (selected if keep else dropped).append(ref)
    engine.select(selected, dropped)
    return selected


def run_suite(
    suite: Suite | Sequence[Suite],
    *,
    record_mode: RecordMode | str = RecordMode.NONE,
    variants: Iterable[str] | None = None,
    cases: Iterable[str] | None = None,
    concurrency: int = 8,
    rpm: float = 0.0,
    processes: int | None = None,
    repeats: int | None = None,
    project: Project | None = None,
    client_factory: ClientFactory | None = None,
    block_network: bool = True,
    prune_cassettes: bool = False,
    shard: tuple[int, int] | None = None,
) -> Run:
    """Run or replay one suite (or several) and return the run: results and what became of each batch.

    Batches that cannot run in replay (no cassette) are skipped, with the reason in `run.batches`;
    a batch that was asked to record and could not is marked failed. Never raises for a case.
    `shard=(i, n)` runs only the i-th of n shares of the cases (`shards.py`), for `merge_shards`.
    """
    suites = [suite] if isinstance(suite, Suite) else list(suite)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise UsageError("run_suite() cannot run inside an event loop: await arun_suite() instead")
    engine = Engine(
        project or Project.at(_root_of(suites)),
        RunOptions(
            record_mode=RecordMode(record_mode),
            concurrency=concurrency,
            rpm=rpm,
            processes=processes,
            repeats=repeats,
            prune_cassettes=prune_cassettes,
            block_network=block_network,
            client_factory=client_factory,
            shard=shard,
        ),
    )
    try:
        for s in suites:
            engine.add_suite(s)
        for ref in _select(engine, suites, variants, cases):
            with contextlib.suppress(BatchSkipped, BatchFailed):
                engine.result(ref)
    except KeyboardInterrupt:  # what completed is kept: the caller may still report it
        engine.interrupted = True
        raise RunInterrupted(engine.close()) from None
    except BaseException:
        engine.close()
        raise
    return engine.close()


async def arun_suite(suite: Suite | Sequence[Suite], **options: Any) -> Run:
    """`run_suite` for callers inside an event loop (a notebook, an async app): runs it in a thread."""
    return await asyncio.to_thread(run_suite, suite, **options)


def _root_of(suites: Sequence[Suite]) -> Path | None:
    from .project import find_root

    for s in suites:
        if s.source is not None:
            return find_root(Path(s.source).parent)
    return None
