"""Tests for audio_evals.pricing: price table, usage parsing and cost, on real recorded traffic."""

from __future__ import annotations

import base64
import gzip
import io
import json
import math
import wave
from pathlib import Path

import pytest
import yaml

from audio_evals.pricing import (
    ModelPrice,
    PriceTable,
    Usage,
    cost_usd,
    load_price_table,
    usage_from_response,
)

REAL_TRAFFIC = Path(__file__).resolve().parents[1].parent / "shared" / "real-traffic"


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return load_price_table()


# --------------------------------------------------------------------------- price table


def test_default_table_meta_and_prices(table):
    assert table.as_of == "2026-11"
    assert table.currency == "USD"
    assert table.source == "OpenAI model pages as read in 2026-11"
    expected = {
        "gpt-audio": (2.5, 10, 32, 64),
        "gpt-audio-1.5": (2.5, 10, 32, 64),
        "gpt-4o-audio-preview": (2.5, 10, 40, 80),
        "gpt-4o-mini-audio-preview": (0.15, 0.6, 10, 20),
        "local-baseline": (0, 0, 0, 0),
        "local-baseline-mini": (0, 0, 0, 0),
    }
    for name, prices in expected.items():
        price = table.models[name]
        got = (price.text_input, price.text_output, price.audio_input, price.audio_output)
        assert got == prices, name
    assert table.models["whisper-1"].per_minute == 0.006
    assert table.models["whisper-1"].text_input is None
    assert "gpt-audio-mini" not in table.models  # audio prices unknown: left out, not guessed


@pytest.mark.parametrize(
    ("model", "resolved"),
    [
        ("gpt-audio", "gpt-audio"),
        ("gpt-audio-2025-08-28", "gpt-audio"),
        ("GPT-Audio-2025-08-28", "gpt-audio"),
        ("openai/gpt-audio", "gpt-audio"),
        ("gpt-audio-1.5", "gpt-audio-1.5"),
        ("gpt-audio-1.5-2026-02-23", "gpt-audio-1.5"),
        ("gpt-4o-audio-preview-2025-06-03", "gpt-4o-audio-preview"),
        ("gpt-4o-audio-preview-2024-12-17", "gpt-4o-audio-preview"),
        ("gpt-4o-audio-preview-2024-10-01", "gpt-4o-audio-preview-2024-10-01"),
        ("gpt-4o-mini-audio-preview-2024-12-17", "gpt-4o-mini-audio-preview"),
        ("gpt-audio-latest", "gpt-audio"),  # longest known prefix
        ("whisper-1", "whisper-1"),
        ("local-baseline-mini", "local-baseline-mini"),
    ],
)
def test_lookup_resolves(table, model, resolved):
    price = table.lookup(model)
    assert price is not None and price.name == resolved


@pytest.mark.parametrize(
    "model",
    [
        "gpt-audio-mini",  # a sibling model, never priced as gpt-audio
        "gpt-audio-mini-2025-10-06",
        "gpt-audio-2",  # a different version
        "gpt-4o-transcribe",
        "gpt-realtime",
        "whisper-2",
        "local-baseline-large",
        "",
    ],
)
def test_lookup_unknown_is_none(table, model):
    assert table.lookup(model) is None
    assert table.cost_usd(model, Usage(text_input_tokens=10)) is None


def test_overrides_win_field_by_field(tmp_path):
    overrides = {
        "gpt-audio": {"audio_input": 30},
        "gpt-audio-mini": {"text_input": 0.6, "text_output": 2.4},
        "My-Deployment": {"text_input": 1, "text_output": 2, "audio_input": 3, "audio_output": 4},
    }
    table = load_price_table(overrides)
    gpt_audio = table.models["gpt-audio"]
    assert (gpt_audio.audio_input, gpt_audio.audio_output, gpt_audio.text_input) == (30, 64, 2.5)
    assert table.lookup("my-deployment").audio_output == 4
    # a partial price: text-only calls are priced, audio calls are unknown (never 0)
    assert table.cost_usd("gpt-audio-mini", Usage(text_input_tokens=1_000_000)) == pytest.approx(
        0.6
    )
    assert table.cost_usd("gpt-audio-mini", Usage(audio_input_tokens=1)) is None

    custom = tmp_path / "prices.toml"
    custom.write_text('[meta]\nas_of = "2030-01"\n[models."x"]\ntext_input = 1\n')
    loaded = load_price_table({"x": {"text_output": 5}}, path=custom)
    assert loaded.as_of == "2030-01" and loaded.source is None
    assert (loaded.models["x"].text_input, loaded.models["x"].text_output) == (1, 5)
    assert "gpt-audio" not in loaded.models


@pytest.mark.parametrize(
    "overrides",
    [
        {"gpt-audio": {"audio_in": 30}},  # typo in a field name
        {"gpt-audio": {"audio_input": -1}},
        {"gpt-audio": {"audio_input": "cheap"}},
        {"gpt-audio": 30},
    ],
)
def test_bad_overrides_are_rejected(overrides):
    with pytest.raises(ValueError):
        load_price_table(overrides)


# --------------------------------------------------------------------------- usage and cost


def test_usage_addition():
    a = Usage(1, 2, 3, 4, 5, 1.5)
    b = Usage(10, 20, 30, 40, 50, 2.0)
    assert a + b == Usage(11, 22, 33, 44, 55, 3.5)
    assert sum([a, b]) == a + b
    assert sum([], Usage()) == Usage()
    assert (a.input_tokens, a.output_tokens, a.total_tokens) == (3, 9, 12)


@pytest.mark.parametrize(
    "body",
    [None, {}, {"usage": None}, {"usage": "n/a"}, [], "text", {"usage": {"prompt_tokens": None}}],
)
def test_usage_missing_fields_are_zero(body):
    assert usage_from_response(body) == Usage()


def test_usage_parsing_rules():
    # text input = prompt_tokens - audio_tokens when text_tokens is absent
    chat = {
        "usage": {
            "prompt_tokens": 50,
            "completion_tokens": 30,
            "prompt_tokens_details": {"audio_tokens": 40, "cached_tokens": 8},
            "completion_tokens_details": {"audio_tokens": 20},
        }
    }
    assert usage_from_response(chat) == Usage(10, 40, 8, 10, 20, 0.0)
    # only the details are present
    details_only = {"usage": {"prompt_tokens_details": {"text_tokens": 7, "audio_tokens": 3}}}
    assert usage_from_response(details_only) == Usage(7, 3, 0, 0, 0, 0.0)
    # a bare usage block is accepted too; junk values count 0
    assert usage_from_response({"prompt_tokens": "12", "completion_tokens": True}) == Usage(12)
    # transcription usage, both shapes
    assert usage_from_response({"usage": {"type": "duration", "seconds": 7}}).audio_seconds == 7
    tokens = {
        "usage": {
            "type": "tokens",
            "input_tokens": 14,
            "input_token_details": {"text_tokens": 4, "audio_tokens": 10},
            "output_tokens": 5,
        }
    }
    assert usage_from_response(tokens) == Usage(4, 10, 0, 5, 0, 0.0)


def test_cost_components_and_unknown_prices():
    price = ModelPrice("m", text_input=2, text_output=8, audio_input=40, audio_output=80)
    usage = Usage(1_000_000, 500_000, 100, 250_000, 125_000, 0.0)
    assert cost_usd(price, usage) == pytest.approx(2 + 20 + 2 + 10)
    assert cost_usd(price, Usage()) == 0.0
    assert math.isnan(cost_usd(price, Usage(audio_seconds=60)))  # no per-minute price
    assert cost_usd(ModelPrice("w", per_minute=0.006), Usage(audio_seconds=90)) == pytest.approx(
        0.009
    )


# --------------------------------------------------------------------------- real traffic


def _require(name: str) -> Path:
    path = REAL_TRAFFIC / name
    if not path.is_file():
        pytest.skip(f"recorded OpenAI traffic not available: {path} (shared/real-traffic missing)")
    return path


def _header(headers: dict, name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) else value
    return ""


def _vcr_interactions(name: str) -> list[tuple[object, dict]]:
    from vcr.serialize import deserialize
    from vcr.serializers import yamlserializer

    text = _require(name).read_text()
    requests, responses = deserialize(text, yamlserializer)[:2]
    out = []
    for request, response in zip(requests, responses, strict=True):
        body = response["body"]["string"]
        if "gzip" in _header(response["headers"], "Content-Encoding"):
            body = gzip.decompress(body)
        try:
            out.append((request, json.loads(body)))
        except (UnicodeDecodeError, json.JSONDecodeError):
            out.append((request, {}))  # SSE stream or raw audio
    return out


def _expected_chat_cost(price: ModelPrice, usage: dict) -> float:
    """Hand computation from the recorded usage numbers and the table's prices."""
    details_in = usage["prompt_tokens_details"]
    details_out = usage["completion_tokens_details"]
    return (
        details_in["text_tokens"] * price.text_input
        + details_in["audio_tokens"] * price.audio_input
        + details_out["text_tokens"] * price.text_output
        + details_out["audio_tokens"] * price.audio_output
    ) / 1_000_000


@pytest.mark.parametrize(
    ("cassette", "request_model", "snapshot", "family"),
    [
        ("mirascope__openai_gpt_audio.yaml", "gpt-audio", "gpt-audio-2025-08-28", "gpt-audio"),
        (
            "logfire__test_chat_completions_with_audio_input.yaml",
            "gpt-4o-audio-preview",
            "gpt-4o-audio-preview-2025-06-03",
            "gpt-4o-audio-preview",
        ),
    ],
)
def test_real_chat_completion_usage_and_cost(table, cassette, request_model, snapshot, family):
    [(request, body)] = _vcr_interactions(cassette)
    assert json.loads(request.body)["model"] == request_model
    assert body["model"] == snapshot
    recorded = body["usage"]

    usage = usage_from_response(body)
    assert usage.audio_input_tokens == recorded["prompt_tokens_details"]["audio_tokens"] > 0
    assert usage.text_input_tokens == recorded["prompt_tokens_details"]["text_tokens"]
    assert usage.cached_input_tokens == recorded["prompt_tokens_details"]["cached_tokens"]
    assert usage.text_output_tokens == recorded["completion_tokens_details"]["text_tokens"]
    assert usage.audio_output_tokens == recorded["completion_tokens_details"]["audio_tokens"]
    assert usage.input_tokens == recorded["prompt_tokens"]
    assert usage.total_tokens == recorded["total_tokens"]

    price = table.lookup(snapshot)
    assert price is not None and price.name == family
    assert table.lookup(request_model) == price
    expected = _expected_chat_cost(price, recorded)
    assert cost_usd(price, usage) == pytest.approx(expected, rel=1e-12)
    assert table.cost_usd(snapshot, usage) == pytest.approx(expected, rel=1e-12)
    assert expected > 0


def _input_audio(request: object) -> tuple[str, bytes]:
    for message in json.loads(request.body)["messages"]:
        for part in message["content"] if isinstance(message["content"], list) else []:
            if part.get("type") == "input_audio":
                data = part["input_audio"]
                return data["format"], base64.b64decode(data["data"])
    raise AssertionError("no input_audio in the recorded request")


def test_real_audio_tokens_are_about_ten_per_second():
    [(request, body)] = _vcr_interactions("logfire__test_chat_completions_with_audio_input.yaml")
    fmt, audio = _input_audio(request)
    assert fmt == "wav"
    with wave.open(io.BytesIO(audio)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert seconds == pytest.approx(0.2)
    assert usage_from_response(body).audio_input_tokens == round(10 * seconds)

    [(request, body)] = _vcr_interactions("mirascope__openai_gpt_audio.yaml")
    fmt, audio = _input_audio(request)
    assert fmt == "mp3"
    soundfile = pytest.importorskip("soundfile")
    try:
        seconds = soundfile.info(io.BytesIO(audio)).duration
    except RuntimeError:
        pytest.skip("this libsndfile cannot read mp3")
    rate = usage_from_response(body).audio_input_tokens / seconds
    assert 9.0 <= rate <= 10.5  # 25 tokens for a 2.59 s clip


def test_real_token_transcription_usage(table):
    interactions = _vcr_interactions("logfire__test_voice_pipeline.yaml")
    transcriptions = [
        (req, body) for req, body in interactions if req.uri.endswith("/audio/transcriptions")
    ]
    assert len(transcriptions) == 1
    request, body = transcriptions[0]
    recorded = body.get("usage")
    if not recorded:
        pytest.skip("the recorded transcription has no usage block")
    assert b'name="model"\r\n\r\ngpt-4o-transcribe\r\n' in request.body
    assert recorded["type"] == "tokens"

    usage = usage_from_response(body)
    details = recorded["input_token_details"]
    assert usage.audio_input_tokens == details["audio_tokens"]
    assert usage.text_input_tokens == details["text_tokens"]
    assert usage.text_output_tokens == recorded["output_tokens"]
    assert usage.total_tokens == recorded["total_tokens"]

    # gpt-4o-transcribe is not in the shipped table: cost unknown, never 0 ...
    assert table.lookup("gpt-4o-transcribe") is None
    assert table.cost_usd("gpt-4o-transcribe", usage) is None
    # ... until the suite config supplies its prices (illustrative numbers, not a price claim)
    configured = load_price_table(
        {"gpt-4o-transcribe": {"text_input": 2.0, "audio_input": 5.0, "text_output": 9.0}}
    )
    expected = (
        details["text_tokens"] * 2.0
        + details["audio_tokens"] * 5.0
        + recorded["output_tokens"] * 9.0
    ) / 1_000_000
    assert configured.cost_usd("gpt-4o-transcribe", usage) == pytest.approx(expected, rel=1e-12)


def test_real_duration_transcription_usage(table):
    # go-vcr v2 cassette (not vcrpy-loadable): the response body is plain JSON text
    cassette = yaml.safe_load(_require("ai-gateway__audio-transcription-basic.yaml").read_text())
    [interaction] = cassette["interactions"]
    assert interaction["request"]["url"].endswith("/v1/audio/transcriptions")
    body = json.loads(interaction["response"]["body"])
    recorded = body["usage"]
    assert recorded["type"] == "duration"

    usage = usage_from_response(body)
    assert usage.audio_seconds == recorded["seconds"]
    assert usage.total_tokens == 0
    price = table.lookup("whisper-1")
    expected = recorded["seconds"] / 60 * price.per_minute
    assert cost_usd(price, usage) == pytest.approx(expected, rel=1e-12)
