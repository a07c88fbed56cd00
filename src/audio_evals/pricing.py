"""Token usage and cost accounting for OpenAI audio models.

Prices live in ``prices.toml`` (shipped in the package, dated, with a source
note) and can be overridden from the suite / pyproject config. A model that is
not in the table, or a usage kind whose price is not known, gives an unknown
cost (``None`` from :meth:`PriceTable.cost_usd`, ``nan`` from :func:`cost_usd`),
never 0.

Cached input tokens are recorded in :class:`Usage` but not priced separately:
they are part of the input token counts and are charged at the full input price,
so a reported cost is an upper bound when prompt caching applied.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "ModelPrice",
    "PriceTable",
    "Usage",
    "cost_usd",
    "load_price_table",
    "usage_from_response",
]

PRICE_FIELDS = ("text_input", "text_output", "audio_input", "audio_output", "per_minute")

_DATED_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_VERSION_SEGMENT = re.compile(r"^v?\d{1,3}(\.\d+)*$")
# A prefix match never crosses into a sibling model: "gpt-audio-mini" is not "gpt-audio".
_VARIANT_WORDS = frozenset(
    {"mini", "nano", "micro", "pro", "turbo", "max", "lite", "large", "medium", "small"}
    | {"realtime", "transcribe", "tts", "search", "flash", "hd", "diarize"}
)


@dataclass(frozen=True)
class ModelPrice:
    """Prices of one model: USD per 1M tokens, or per minute of audio; None means unknown."""

    name: str
    text_input: float | None = None
    text_output: float | None = None
    audio_input: float | None = None
    audio_output: float | None = None
    per_minute: float | None = None


@dataclass(frozen=True)
class Usage:
    """Token and audio-duration usage of one or more API calls."""

    text_input_tokens: int = 0
    audio_input_tokens: int = 0
    cached_input_tokens: int = 0
    text_output_tokens: int = 0
    audio_output_tokens: int = 0
    audio_seconds: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        """Sum of two usages."""
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Usage)))

    def __radd__(self, other: object) -> Usage:
        """Support ``sum(usages)`` (which starts from 0)."""
        if other == 0:
            return self
        return NotImplemented

    @property
    def input_tokens(self) -> int:
        """All input tokens (text + audio; cached ones are included in these)."""
        return self.text_input_tokens + self.audio_input_tokens

    @property
    def output_tokens(self) -> int:
        """All output tokens (text + audio)."""
        return self.text_output_tokens + self.audio_output_tokens

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class PriceTable:
    """Model prices with their date, currency and source."""

    models: Mapping[str, ModelPrice] = field(default_factory=dict)
    as_of: str | None = None
    currency: str = "USD"
    source: str | None = None

    def lookup(self, model: str) -> ModelPrice | None:
        """Price of a model: exact name, else its dated snapshot's base name, else the longest known prefix."""
        name = (model or "").strip().lower()
        name = name.removeprefix("openai/")
        if not name:
            return None
        if name in self.models:
            return self.models[name]
        base = _DATED_SNAPSHOT.sub("", name)
        if base in self.models:
            return self.models[base]
        for candidate in dict.fromkeys((base, name)):
            for known in sorted(self.models, key=len, reverse=True):
                if not candidate.startswith(known + "-"):
                    continue
                segment = candidate[len(known) + 1 :].split("-", 1)[0]
                if segment in _VARIANT_WORDS or _VERSION_SEGMENT.match(segment):
                    continue
                return self.models[known]
        return None

    def cost_usd(self, model: str, usage: Usage) -> float | None:
        """Cost of a usage for a model; None when the model or a needed price is unknown."""
        price = self.lookup(model)
        if price is None:
            return None
        cost = cost_usd(price, usage)
        return None if math.isnan(cost) else cost


def _price_value(model: str, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"price {model}.{key} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"price {model}.{key} must be a finite number >= 0, got {value!r}")
    return number


def _merge_models(
    target: dict[str, dict[str, float]], tables: Mapping[str, Any], origin: str
) -> None:
    for model, spec in tables.items():
        if not isinstance(spec, Mapping):
            raise ValueError(f"{origin}: prices for {model!r} must be a table, got {spec!r}")
        unknown = set(spec) - set(PRICE_FIELDS)
        if unknown:
            raise ValueError(
                f"{origin}: unknown price field(s) {sorted(unknown)} for {model!r}; "
                f"expected some of {list(PRICE_FIELDS)}"
            )
        entry = target.setdefault(str(model).strip().lower(), {})
        for key, value in spec.items():
            entry[key] = _price_value(model, key, value)


def load_price_table(
    overrides: Mapping[str, Mapping[str, float]] | None = None, path: Path | None = None
) -> PriceTable:
    """Load prices from prices.toml (or path) with overrides from config winning field by field."""
    if path is None:
        raw = resources.files("audio_evals").joinpath("prices.toml").read_bytes()
        origin = "audio_evals/prices.toml"
    else:
        raw = Path(path).read_bytes()
        origin = str(path)
    data = tomllib.loads(raw.decode("utf-8"))
    meta = data.get("meta", {})
    merged: dict[str, dict[str, float]] = {}
    _merge_models(merged, data.get("models", {}), origin)
    if overrides:
        _merge_models(merged, overrides, "price overrides")
    models = {name: ModelPrice(name=name, **spec) for name, spec in merged.items()}
    return PriceTable(
        models=models,
        as_of=str(meta["as_of"]) if "as_of" in meta else None,
        currency=str(meta.get("currency", "USD")),
        source=str(meta["source"]) if "source" in meta else None,
    )


def _component(quantity: float, rate: float | None, per: float) -> float:
    if quantity <= 0:
        return 0.0
    if rate is None:
        return math.nan
    return quantity * rate / per


def cost_usd(price: ModelPrice, usage: Usage) -> float:
    """Cost in USD of a usage at a model's prices; nan when a used kind has no known price."""
    return (
        _component(usage.text_input_tokens, price.text_input, 1e6)
        + _component(usage.audio_input_tokens, price.audio_input, 1e6)
        + _component(usage.text_output_tokens, price.text_output, 1e6)
        + _component(usage.audio_output_tokens, price.audio_output, 1e6)
        + _component(usage.audio_seconds, price.per_minute, 60.0)
    )


# --------------------------------------------------------------------------- parsing


def _count(value: object) -> int:
    """A non-negative token count from a JSON value; anything else counts as 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and math.isfinite(value):
        return max(int(value), 0)
    if isinstance(value, str):
        try:
            return max(int(value.strip()), 0)
        except ValueError:
            return 0
    return 0


def _seconds(value: object) -> float:
    if isinstance(value, bool):
        return 0.0
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


def _table(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _has(mapping: Mapping[str, Any], key: str) -> bool:
    return mapping.get(key) is not None


def _split(total_key: str, details: Mapping[str, Any], usage: Mapping[str, Any]) -> tuple[int, int]:
    """(text, audio) tokens: text = total - audio when the total is present, else details.text_tokens."""
    audio = _count(details.get("audio_tokens"))
    if _has(usage, total_key):
        return max(_count(usage.get(total_key)) - audio, 0), audio
    return _count(details.get("text_tokens")), audio


def _gemini_usage(meta: Mapping[str, Any]) -> Usage:
    """Usage of a Gemini `generateContent` answer (`usageMetadata`, audio from its modality details)."""

    def by_modality(key: str, modality: str) -> int:
        details = meta.get(key)
        if not isinstance(details, list):
            return 0
        return sum(
            _count(d.get("tokenCount"))
            for d in details
            if isinstance(d, Mapping) and d.get("modality") == modality
        )

    prompt = _count(meta.get("promptTokenCount"))
    audio_in = by_modality("promptTokensDetails", "AUDIO")
    output = _count(meta.get("candidatesTokenCount")) + _count(meta.get("thoughtsTokenCount"))
    audio_out = by_modality("candidatesTokensDetails", "AUDIO")
    return Usage(
        text_input_tokens=max(prompt - audio_in, 0),
        audio_input_tokens=audio_in,
        cached_input_tokens=_count(meta.get("cachedContentTokenCount")),
        text_output_tokens=max(output - audio_out, 0),
        audio_output_tokens=audio_out,
    )


def usage_from_response(body: Mapping[str, Any] | Any) -> Usage:
    """Usage of an OpenAI chat completion, transcription, Responses or Realtime body, or of a Gemini answer."""
    if hasattr(body, "model_dump") and not isinstance(body, Mapping):
        body = body.model_dump()
    if not isinstance(body, Mapping):
        return Usage()
    if isinstance(body.get("usageMetadata"), Mapping):
        return _gemini_usage(body["usageMetadata"])
    usage = body.get("usage") if "usage" in body else body
    if not isinstance(usage, Mapping):
        return Usage()

    if usage.get("type") == "duration":  # whisper-1 style transcription usage
        return Usage(audio_seconds=_seconds(usage.get("seconds")))

    if any(_has(usage, k) for k in ("prompt_tokens", "completion_tokens", "prompt_tokens_details")):
        inp = _table(usage.get("prompt_tokens_details"))
        out = _table(usage.get("completion_tokens_details"))
        text_in, audio_in = _split("prompt_tokens", inp, usage)
        text_out, audio_out = _split("completion_tokens", out, usage)
        return Usage(
            text_input_tokens=text_in,
            audio_input_tokens=audio_in,
            cached_input_tokens=_count(inp.get("cached_tokens")),
            text_output_tokens=text_out,
            audio_output_tokens=audio_out,
        )

    # token-based transcription usage ({"type": "tokens", ...}), Responses API and Realtime usage
    inp = _table(usage.get("input_token_details") or usage.get("input_tokens_details"))
    out = _table(usage.get("output_token_details") or usage.get("output_tokens_details"))
    text_in, audio_in = _split("input_tokens", inp, usage)
    text_out, audio_out = _split("output_tokens", out, usage)
    return Usage(
        text_input_tokens=text_in,
        audio_input_tokens=audio_in,
        cached_input_tokens=_count(inp.get("cached_tokens")),
        text_output_tokens=text_out,
        audio_output_tokens=audio_out,
    )
