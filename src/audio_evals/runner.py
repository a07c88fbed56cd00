"""Batches of cases for one suite and variant: bounded concurrency, rate limit, scoring into results."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from .datasets import Case
from .extractors import (
    BatchClients,
    CaseInput,
    ClientFactory,
    Secret,
    VariantConfig,
    call_extractor,
)
from .failures import classify, redact
from .results import CaseResult, ErrorKind, EvalRef, LatencySource
from .scoring import Outcome, score_fields
from .suites import Suite, Variant
from .traffic import CaseTraffic, case_traffic


@dataclass(frozen=True)
class Endpoint:
    """Where a batch's calls go and with which credentials (resolved for record or replay)."""

    base_url: str
    api_key: str
    max_retries: int
    live: bool


@functools.lru_cache(maxsize=65536)
def _duration(path: str) -> float | None:
    try:
        import soundfile

        return round(float(soundfile.info(path).duration), 3)
    except Exception:  # a duration is a nicety for cost and slices; never fail a case on it
        return None


def audio_seconds(case: Case) -> float | None:
    """Duration of a case's audio, from its header (read at load, else once per process)."""
    if case.audio is not None and case.audio.duration is not None:
        return round(float(case.audio.duration), 3)
    return _duration(str(case.audio_path))


def variant_config(
    suite: Suite, variant: Variant, endpoint: Endpoint, client_factory: ClientFactory | None
) -> VariantConfig:
    """What the variant's extractor gets: its settings and the resolved endpoint."""
    return VariantConfig(
        suite=suite.name,
        name=variant.name,
        model=variant.model,
        prompt=variant.prompt,
        params=dict(variant.params),
        response_model=suite.response_model,
        base_url=endpoint.base_url,
        api_key=Secret(endpoint.api_key),
        live=endpoint.live,
        timeout=variant.timeout,
        max_retries=endpoint.max_retries,
        validation_retries=variant.validation_retries,
        mode=variant.mode,
        transcription_model=variant.transcription_model,
        clients=BatchClients(client_factory),
    )


def _field_rows(
    suite: Suite, case: Case, predicted: BaseModel | None, errored: bool
) -> list[dict[str, Any]]:
    """Per-field rows; an errored case is wrong on every field (never correct by being empty)."""
    scores = score_fields(
        case.expected, predicted, model=suite.response_model, config=suite.scoring or None
    )
    rows = [s.as_row() for s in scores]
    if errored:
        for row in rows:
            row.update(correct=False, score=0.0, outcome=str(Outcome.ERROR), predicted="")
    return rows


def _latency(traffic: CaseTraffic, measured_ms: float) -> tuple[float, LatencySource]:
    """The recorded latencies of the case's calls when every call has one, else the measured time."""
    recorded = [c.latency_ms for c in traffic.calls]
    if recorded and all(v is not None for v in recorded):
        return round(sum(v for v in recorded if v is not None), 1), LatencySource.RECORDED
    return round(measured_ms, 1), LatencySource.MEASURED


def score_result(
    suite: Suite,
    variant: Variant,
    case: Case,
    repeat: int,
    predicted: BaseModel | None,
    error: tuple[ErrorKind, str] | None,
    traffic: CaseTraffic,
    measured_ms: float,
) -> CaseResult:
    """Score one extraction field by field against the case's label."""
    latency, source = _latency(traffic, measured_ms)
    return CaseResult(
        suite=suite.name,
        variant=variant.name,
        case_id=case.id,
        repeat=repeat,
        model=variant.model,
        pipeline=variant.extractor_name,
        tags=dict(case.tags),
        must_pass=case.must_pass,
        error_kind=error[0] if error else None,
        error=error[1] if error else None,
        expected=dump_record(case.expected),
        predicted=dump_record(predicted),
        fields=_field_rows(suite, case, predicted, error is not None),
        calls=list(traffic.calls),
        latency_ms=latency,
        latency_source=source,
        transcript=traffic.transcripts[-1] if traffic.transcripts else None,
        reference_transcript=case.transcript,
        audio_seconds=audio_seconds(case),
        audio_path=str(case.audio_path),
        audio_conversion=traffic.conversion,
    )


def dump_record(record: BaseModel | None) -> str:
    """A record as compact JSON (empty string for none)."""
    import json

    if record is None:
        return ""
    return json.dumps(record.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)


class RateLimiter:
    """Spaces call starts so that no more than `rpm` begin in any minute (0 = unlimited)."""

    def __init__(self, rpm: float) -> None:
        self.interval = 60.0 / rpm if rpm and rpm > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Wait for the next free slot."""
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


async def run_batch(
    suite: Suite,
    variant: Variant,
    refs: Sequence[EvalRef],
    *,
    endpoint: Endpoint,
    concurrency: int = 8,
    rpm: float = 0,
    client_factory: ClientFactory | None = None,
    secrets: Iterable[str] = (),
    on_result: Callable[[EvalRef, CaseResult], None] | None = None,
    audio_failures: Mapping[str, tuple[ErrorKind, str]] | None = None,
) -> dict[EvalRef, CaseResult]:
    """Run the extractions of one (suite, variant) batch concurrently; repeats of a case run in order.

    A case in `audio_failures` (its audio could not be had: `remote_audio.batch_audio`) fails
    with that error and its extractor is not called."""
    config = variant_config(suite, variant, endpoint, client_factory)
    fn, name = variant.extractor, variant.extractor_name
    hidden = [endpoint.api_key, *secrets]
    limiter = RateLimiter(rpm)
    gate = asyncio.Semaphore(max(1, concurrency))
    by_case: dict[str, list[EvalRef]] = {}
    for ref in refs:
        by_case.setdefault(ref.case_id, []).append(ref)
    results: dict[EvalRef, CaseResult] = {}

    async def one(case: Case, ref: EvalRef) -> CaseResult:
        inputs = CaseInput(case.id, case.audio_path, case.transcript, dict(case.tags), ref.repeat)
        predicted: BaseModel | None = None
        error: tuple[ErrorKind, str] | None = None
        with case_traffic(case.id, ref.repeat) as traffic:
            started = time.perf_counter()
            error = (audio_failures or {}).get(case.id)
            try:
                if error is None:
                    predicted = await call_extractor(fn, name, inputs, config)
            except Exception as exc:  # every failure is this case's, never the batch's
                kind, message = classify(exc, name)
                error = (kind, redact(message, hidden))
            measured = (time.perf_counter() - started) * 1000.0
        return score_result(suite, variant, case, ref.repeat, predicted, error, traffic, measured)

    cases = {case.id: case for case in suite.dataset}

    async def one_case(case_refs: list[EvalRef]) -> None:
        case = cases[case_refs[0].case_id]
        for ref in sorted(case_refs, key=lambda r: r.repeat):
            async with gate:
                await limiter.wait()
                result = await one(case, ref)
            results[ref] = result
            if on_result is not None:
                on_result(ref, result)

    try:
        await asyncio.gather(*(one_case(case_refs) for case_refs in by_case.values()))
    finally:
        await config.clients.aclose()
    return results
