"""Batches of cases for one suite and variant: bounded concurrency, rate limit, scoring into results."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .datasets import Case
from .extraction import Extraction, Extractor, dump_prediction
from .scoring import score_fields
from .suites import Suite, Variant


@dataclass(frozen=True)
class EvalRef:
    """One unit of work: a case of a suite under a variant, at a repeat index."""

    suite: str
    variant: str
    case_id: str
    repeat: int = 0

    @property
    def batch(self) -> tuple[str, str]:
        """The (suite, variant) batch this unit belongs to (one cassette)."""
        return (self.suite, self.variant)


@dataclass
class CaseResult:
    """A scored extraction: everything the report needs for one (suite, variant, case, repeat)."""

    suite: str
    variant: str
    case_id: str
    repeat: int
    model: str
    pipeline: str
    tags: dict[str, str]
    must_pass: bool
    error_kind: str | None
    error: str | None
    expected: str
    predicted: str
    fields: list[dict[str, Any]]
    usage: dict[str, Any] = field(default_factory=dict)
    transcription_usage: dict[str, Any] = field(default_factory=dict)
    latency_ms: float = 0.0
    latency_source: str = "measured"
    transcript: str | None = None
    reference_transcript: str | None = None
    audio_seconds: float | None = None
    audio_path: str = ""
    served_model: str | None = None
    transcription_model: str | None = None

    def to_json(self) -> str:
        """Serialise for transport between pytest processes (xdist) and storage."""
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, text: str) -> CaseResult:
        """Read back a result written by `to_json`."""
        return cls(**json.loads(text))

    @property
    def wrong_fields(self) -> list[str]:
        """Dotted paths of fields that were not correct."""
        return [f["field"] for f in self.fields if not f["correct"]]


def audio_seconds(case: Case) -> float | None:
    """Duration of a case's audio, read from its header (None when unknown)."""
    try:
        import soundfile

        return round(float(soundfile.info(str(case.audio_path)).duration), 3)
    except Exception:  # a duration is a nicety for cost; never fail a case on it
        return None


def score_result(
    suite: Suite, variant: Variant, case: Case, repeat: int, extraction: Extraction
) -> CaseResult:
    """Score one extraction field by field against the case's label."""
    scores = score_fields(
        case.expected,
        extraction.predicted,
        model=suite.response_model,
        config=suite.scoring or None,
    )
    return CaseResult(
        suite=suite.name,
        variant=variant.name,
        case_id=case.id,
        repeat=repeat,
        model=variant.model,
        pipeline=variant.pipeline,
        tags=dict(case.tags),
        must_pass=case.must_pass,
        error_kind=extraction.error_kind,
        error=extraction.error,
        expected=dump_prediction(case.expected),
        predicted=dump_prediction(extraction.predicted),
        fields=[s.as_row() for s in scores],
        usage=extraction.usage,
        transcription_usage=extraction.transcription_usage,
        latency_ms=extraction.latency_ms,
        latency_source=extraction.latency_source,
        transcript=extraction.transcript,
        reference_transcript=case.transcript,
        audio_seconds=audio_seconds(case),
        audio_path=str(case.audio_path),
        served_model=extraction.served_model,
        transcription_model=variant.transcription_model
        if variant.pipeline == "transcribe_then_extract"
        else None,
    )


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
    base_url: str | None,
    api_key: str,
    max_retries: int,
    concurrency: int = 8,
    rpm: float = 0,
    on_result: Callable[[EvalRef, CaseResult], None] | None = None,
) -> dict[EvalRef, CaseResult]:
    """Run the extractions of one (suite, variant) batch concurrently; repeats of a case run in order."""
    extractor = Extractor(
        variant, suite.response_model, base_url=base_url, api_key=api_key, max_retries=max_retries
    )
    limiter = RateLimiter(rpm)
    gate = asyncio.Semaphore(max(1, concurrency))
    by_case: dict[str, list[EvalRef]] = {}
    for ref in refs:
        by_case.setdefault(ref.case_id, []).append(ref)
    results: dict[EvalRef, CaseResult] = {}

    async def one_case(case_refs: list[EvalRef]) -> None:
        case = suite.dataset.case(case_refs[0].case_id)
        for ref in sorted(case_refs, key=lambda r: r.repeat):
            async with gate:
                await limiter.wait()
                try:
                    extraction = await extractor.extract(case)
                except Exception as exc:  # a harness fault on one case must not take the batch down
                    extraction = Extraction(
                        predicted=None, error_kind="harness", error=f"{type(exc).__name__}: {exc}"
                    )
            result = score_result(suite, variant, case, ref.repeat, extraction)
            results[ref] = result
            if on_result is not None:
                on_result(ref, result)

    try:
        await asyncio.gather(*(one_case(case_refs) for case_refs in by_case.values()))
    finally:
        await extractor.aclose()
    return results


def field_rows(result: CaseResult) -> list[dict[str, Any]]:
    """The per-field rows of one result, with the case columns the report needs."""
    base: Mapping[str, Any] = {
        "suite": result.suite,
        "variant": result.variant,
        "case_id": result.case_id,
        "repeat": result.repeat,
        "error": result.error_kind or "",
    }
    return [{**base, **row} for row in result.fields]
