"""What a run produces: units of work, the HTTP calls of a case, and scored case results."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import jiter


class ErrorKind(StrEnum):
    """Why a case has no record: the kinds a report counts and a failed item names."""

    CASSETTE_MISS = "cassette_miss"
    CASSETTE_ERROR = "cassette_error"
    NETWORK_BLOCKED = "network_blocked"
    TIMEOUT = "timeout"
    HTTP = "http"
    CONNECTION = "connection"
    VALIDATION = "validation"
    EXTRACTOR = "extractor"
    WRONG_OUTPUT = "wrong_output"
    NO_TRANSCRIPT = "no_transcript"
    AUDIO_FETCH = "audio_fetch"  # remote audio that could not be fetched (after retries)
    AUDIO_INVALID = "audio_invalid"  # audio that is not what its row says (sha256, header, limits)
    HARNESS = "harness"


class LatencySource(StrEnum):
    """Where a case's latency comes from."""

    RECORDED = "recorded"
    MEASURED = "measured"


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
class Call:
    """One HTTP call a case made, as the cassette saw it: endpoint, model, status, usage, latency."""

    method: str
    path: str
    status: int
    model: str | None = None
    served_model: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None
    replayed: bool = True

    @property
    def is_transcription(self) -> bool:
        """Whether this call went to a transcription endpoint (priced per audio minute)."""
        return self.path.rstrip("/").endswith("/audio/transcriptions")


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
    error_kind: ErrorKind | None
    error: str | None
    expected: str
    predicted: str
    fields: list[dict[str, Any]]
    calls: list[Call] = field(default_factory=list)
    latency_ms: float = 0.0
    latency_source: LatencySource = LatencySource.MEASURED
    transcript: str | None = None
    reference_transcript: str | None = None
    audio_seconds: float | None = None
    audio_path: str = ""
    audio_conversion: str | None = None

    def to_json(self) -> str:
        """Serialise for transport between pytest processes (xdist) and storage."""
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, text: str) -> CaseResult:
        """Read back a result written by `to_json` (short strings shared: 100,000 results take half the memory)."""
        try:
            data = jiter.from_json(text.encode("utf-8"), cache_mode="all")
        except UnicodeEncodeError:  # a lone surrogate, which only the json module reads back
            data = json.loads(text)
        data["calls"] = [Call(**c) for c in data.get("calls", [])]
        if data.get("error_kind") is not None:
            data["error_kind"] = ErrorKind(data["error_kind"])
        data["latency_source"] = LatencySource(data["latency_source"])
        return cls(**data)

    @property
    def wrong_fields(self) -> list[str]:
        """Dotted paths of fields that were not correct."""
        return [f["field"] for f in self.fields if not f["correct"]]


def run_key(result: CaseResult) -> tuple[str, str, str, int]:
    """A result's (suite, variant, case_id, repeat), the order every report frame follows."""
    return (result.suite, result.variant, result.case_id, result.repeat)
