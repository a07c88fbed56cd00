"""The HTTP traffic of one case: which case a request belongs to, and the calls it made.

The runner opens a `CaseTraffic` around each extraction (a context variable, so it follows the
extraction into the threads and tasks it starts through asyncio); the cassette tags every request
with the case's key and reports each answer it plays or records here. Usage, latency and the
transcript of a case therefore come from its recorded traffic, whatever code made the calls.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .results import Call

CASE_HEADER = "x-audio-evals-case"
LATENCY_HEADER = "x-audio-evals-latency-ms"
_USAGE_KEYS = ("usage", "usageMetadata")


def case_key(case_id: str, repeat: int) -> str:
    """The key that ties an interaction to its case and repeat (safe in a header and in YAML)."""
    return f"{quote(case_id, safe='')}/{repeat}"


@dataclass
class CaseTraffic:
    """What one case's extraction sent and got back."""

    key: str
    calls: list[Call] = field(default_factory=list)
    transcripts: list[str] = field(default_factory=list)
    conversion: str | None = None


_CURRENT: contextvars.ContextVar[CaseTraffic | None] = contextvars.ContextVar(
    "audio_evals_case_traffic", default=None
)


@contextlib.contextmanager
def case_traffic(case_id: str, repeat: int) -> Iterator[CaseTraffic]:
    """Attribute the HTTP calls made inside this block to one case."""
    traffic = CaseTraffic(case_key(case_id, repeat))
    token = _CURRENT.set(traffic)
    try:
        yield traffic
    finally:
        _CURRENT.reset(token)


def note_conversion(conversion: str) -> None:
    """Record how the current case's audio was converted before it was sent."""
    traffic = _CURRENT.get()
    if traffic is not None:
        traffic.conversion = conversion


def current_key() -> str | None:
    """The case key of the extraction running in this context (None outside one)."""
    traffic = _CURRENT.get()
    return traffic.key if traffic is not None else None


def _response_json(response: Mapping[str, Any]) -> Any:
    body = response.get("body", {})
    raw = body.get("string") if isinstance(body, Mapping) else None
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def latency_of(response: Mapping[str, Any]) -> float | None:
    """The latency stored with a recorded response, in ms (None when it has none)."""
    values = response.get("headers", {}).get(LATENCY_HEADER)
    value = values[0] if isinstance(values, list) and values else values
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def observe(
    method: str,
    path: str,
    model: str | None,
    response: Mapping[str, Any],
    *,
    latency_ms: float | None,
    replayed: bool,
) -> None:
    """Note one answered call of the current case (nothing outside a case)."""
    traffic = _CURRENT.get()
    if traffic is None:
        return
    status = response.get("status", {}).get("code", 0)
    parsed = _response_json(response)
    usage: dict[str, Any] = {}
    served = None
    if isinstance(parsed, dict):
        usage = {k: parsed[k] for k in _USAGE_KEYS if isinstance(parsed.get(k), dict)}
        served = parsed.get("model") or parsed.get("modelVersion")
    call = Call(
        method=method,
        path=path,
        status=int(status),
        model=model,
        served_model=served if isinstance(served, str) else None,
        usage=usage,
        latency_ms=latency_ms,
        replayed=replayed,
    )
    traffic.calls.append(call)
    if call.is_transcription and isinstance(parsed, dict) and isinstance(parsed.get("text"), str):
        traffic.transcripts.append(parsed["text"])
