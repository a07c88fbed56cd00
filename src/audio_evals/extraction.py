"""The audio extraction: instructor + the openai SDK, exactly as an application calls OpenAI."""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2
import instructor
import openai
from instructor.core.exceptions import InstructorRetryException
from instructor.processing.multimodal import Audio
from openai import AsyncOpenAI
from pydantic import BaseModel

from .cassettes import (
    LATENCY_HEADER,
    LIVE_LATENCIES,
    CannotOverwriteExistingCassetteException,
    CassetteFormatError,
)
from .datasets import Case
from .suites import Variant

_MODES = {"tools": instructor.Mode.TOOLS, "json_schema": instructor.Mode.JSON_SCHEMA}


@dataclass
class _Trace:
    statuses: list[int] = field(default_factory=list)
    recorded_ms: list[float | None] = field(default_factory=list)
    live_ms: list[float] = field(default_factory=list)


_TRACE: contextvars.ContextVar[_Trace | None] = contextvars.ContextVar(
    "audio_evals_trace", default=None
)


class _HarnessReportsFailures(logging.Filter):
    """Drops instructor's per-attempt error logs inside harness extractions (each failure is reported once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _TRACE.get() is None


logging.getLogger("instructor.v2.retry").addFilter(_HarnessReportsFailures())


async def _on_response(response: Any) -> None:
    trace = _TRACE.get()
    if trace is None:
        return
    trace.statuses.append(response.status_code)
    value = response.headers.get(LATENCY_HEADER)
    try:
        trace.recorded_ms.append(float(value) if value is not None else None)
    except ValueError:
        trace.recorded_ms.append(None)


@dataclass
class Extraction:
    """What one extraction returned: the record or the error, with usage, latency and transcript."""

    predicted: BaseModel | None
    error_kind: str | None = None
    error: str | None = None
    latency_ms: float = 0.0
    latency_source: str = "measured"
    usage: dict[str, Any] = field(default_factory=dict)
    transcription_usage: dict[str, Any] = field(default_factory=dict)
    transcript: str | None = None
    http_calls: int = 0
    served_model: str | None = None

    @property
    def ok(self) -> bool:
        """Whether a record came back."""
        return self.error_kind is None and self.predicted is not None


def classify_error(exc: BaseException) -> tuple[str, str]:
    """An error kind (`cassette_miss`, `timeout`, `http_429`, `connection`, `validation`, ...) and message."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        chain.append(node)
        node = node.__cause__ or node.__context__
    for err in chain:
        if isinstance(err, CannotOverwriteExistingCassetteException):
            return "cassette_miss", "no recorded interaction matches this request"
        if isinstance(err, CassetteFormatError):
            return "cassette_error", str(err)
    for err in chain:
        if isinstance(err, openai.APITimeoutError):
            return "timeout", "the request timed out"
        if isinstance(err, openai.APIStatusError):
            message = err.message
            body = err.body
            if isinstance(body, dict) and isinstance(body.get("message"), str):
                message = body["message"]
            return f"http_{err.status_code}", message
        if isinstance(err, openai.APIConnectionError):
            return "connection", str(err) or "connection error"
    failed = getattr(exc, "failed_attempts", None)
    if isinstance(exc, InstructorRetryException) and failed:
        last = failed[-1].exception
        return "validation", _short(f"{type(last).__name__}: {last}")
    root = chain[-1]
    return "error", _short(f"{type(root).__name__}: {root}")


def _short(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _usage_dict(usage: Any) -> dict[str, Any]:
    if usage is None:
        return {}
    if hasattr(usage, "model_dump"):
        return usage.model_dump(mode="json", exclude_none=True)
    if isinstance(usage, dict):
        return dict(usage)
    return {}


@functools.cache
def _schema_model(response_model: type[BaseModel]) -> type[BaseModel]:
    """The model wrapped once, as instructor wraps it on every call: its schema cache then hits."""
    if issubclass(response_model, instructor.OpenAISchema):
        return response_model
    return instructor.openai_schema(response_model)


@functools.cache
def _ssl_context() -> Any:
    """The TLS context httpx would build for each client, built once (reading CA files takes ~20 ms)."""
    return httpx2.create_ssl_context()


class Extractor:
    """Runs one variant's extraction for cases through an AsyncOpenAI client wrapped by instructor."""

    def __init__(
        self,
        variant: Variant,
        response_model: type[BaseModel],
        *,
        base_url: str | None,
        api_key: str,
        max_retries: int,
    ) -> None:
        self.variant = variant
        self.response_model = response_model
        self._schema_model = _schema_model(response_model)
        http_client = openai.DefaultAsyncHttpxClient(
            event_hooks={"response": [_on_response]}, verify=_ssl_context()
        )
        self.raw = AsyncOpenAI(
            base_url=base_url,
            api_key=api_key,
            max_retries=max_retries,
            timeout=variant.timeout,
            http_client=http_client,
        )
        self.client = instructor.from_openai(self.raw, mode=_MODES[variant.mode])

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.raw.close()

    async def extract(self, case: Case) -> Extraction:
        """Extract a record from one case's audio (or transcript), never raising for API failures."""
        trace = _Trace()
        token = _TRACE.set(trace)
        live_token = LIVE_LATENCIES.set(trace.live_ms)
        started = time.perf_counter()
        result = Extraction(predicted=None)
        try:
            await self._extract_into(case, result)
        except Exception as exc:  # every failure becomes a failed case, not a crashed run
            result.predicted = None
            result.error_kind, result.error = classify_error(exc)
            total = getattr(exc, "total_usage", None)
            if total is not None and not result.usage:
                result.usage = _usage_dict(total)
        finally:
            _TRACE.reset(token)
            LIVE_LATENCIES.reset(live_token)
        measured = (time.perf_counter() - started) * 1000.0
        result.http_calls = len(trace.statuses)
        replayed = [v for v in trace.recorded_ms if v is not None]
        if trace.statuses and len(replayed) + len(trace.live_ms) == len(trace.statuses):
            # every answer is (now) in the cassette: report the latency stored with it, in record and replay alike
            result.latency_ms = round(sum(replayed) + sum(trace.live_ms), 1)
            result.latency_source = "recorded"
        else:
            result.latency_ms = round(measured, 1)
            result.latency_source = "measured"
        return result

    async def _extract_into(self, case: Case, result: Extraction) -> None:
        variant = self.variant
        if variant.pipeline == "direct":
            content: list[Any] = [variant.prompt, Audio.from_path(case.audio_path)]
            messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
            params = {"modalities": ["text"], **variant.params}
        else:
            if variant.pipeline == "transcribe_then_extract":
                transcription = await self.raw.audio.transcriptions.create(
                    model=variant.transcription_model or "whisper-1",
                    file=(case.audio_path.name, case.read_audio()),
                )
                result.transcript = transcription.text
                result.transcription_usage = _usage_dict(getattr(transcription, "usage", None))
            else:
                if not case.transcript:
                    raise ValueError(
                        f"case {case.id} has no reference transcript for extract_from_transcript"
                    )
                result.transcript = case.transcript
            messages = [
                {"role": "system", "content": variant.prompt},
                {"role": "user", "content": result.transcript or ""},
            ]
            params = {k: v for k, v in variant.params.items() if k not in {"modalities", "audio"}}
        predicted, completion = await self.client.chat.completions.create_with_completion(
            model=variant.model,
            response_model=self._schema_model,
            messages=messages,
            max_retries=variant.validation_retries,
            **params,
        )
        result.predicted = predicted
        result.usage = _usage_dict(getattr(completion, "usage", None))
        result.served_model = getattr(completion, "model", None)


def dump_prediction(predicted: BaseModel | None) -> str:
    """A record as compact JSON (empty string for none)."""
    if predicted is None:
        return ""
    return json.dumps(predicted.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
