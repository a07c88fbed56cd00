"""The text-to-speech endpoint (`/v1/audio/speech`, flite voices), through the openai SDK."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from openai import BadRequestError, NotFoundError, OpenAI

from tests.conftest import require_tool

TEXT = "Hi, my name is Jason and I am twenty years old."


@pytest.fixture(autouse=True)
def _tools() -> None:
    require_tool("flite")
    require_tool("sox")


def speak(client: OpenAI, **overrides: object) -> bytes:
    params: dict = {"model": "local-tts", "voice": "alloy", "input": TEXT} | overrides
    return client.audio.speech.create(**params).content


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac"])
def test_each_container_decodes_at_24_khz(client: OpenAI, fmt: str) -> None:
    audio, rate = sf.read(io.BytesIO(speak(client, response_format=fmt)))
    assert rate == 24000 and audio.ndim == 1
    assert 2.0 < len(audio) / rate < 5.0
    assert np.abs(audio).max() > 0.1  # speech, not silence


def test_pcm_is_headerless_16_bit_24_khz_and_the_same_samples_as_wav(client: OpenAI) -> None:
    pcm = np.frombuffer(speak(client, response_format="pcm"), dtype="<i2")
    wav, rate = sf.read(io.BytesIO(speak(client, response_format="wav")), dtype="int16")
    assert rate == 24000
    assert np.array_equal(pcm, wav)


def test_mp3_is_the_default_and_speed_shortens_the_clip(client: OpenAI) -> None:
    assert sf.info(io.BytesIO(speak(client))).format == "MP3"
    normal, rate = sf.read(io.BytesIO(speak(client, response_format="wav")))
    fast, _ = sf.read(io.BytesIO(speak(client, response_format="wav", speed=2.0)))
    assert 0.4 < len(fast) / len(normal) < 0.6


def test_voices_differ_and_the_recogniser_hears_the_words(client: OpenAI) -> None:
    alloy = speak(client, response_format="wav")
    assert speak(client, response_format="wav", voice="onyx") != alloy
    heard = client.audio.transcriptions.create(model="local-baseline", file=("a.wav", alloy))
    assert {"jason", "twenty"} <= set(heard.text.split())


@pytest.mark.parametrize(
    ("overrides", "error", "param"),
    [
        ({"voice": "zzz"}, BadRequestError, "voice"),
        ({"model": "tts-1"}, NotFoundError, "model"),
        ({"response_format": "opus"}, BadRequestError, "response_format"),
        ({"input": "  "}, BadRequestError, "input"),
        ({"input": "a" * 4097}, BadRequestError, "input"),
        ({"speed": 9}, BadRequestError, "speed"),
    ],
)
def test_bad_requests_get_openai_shaped_errors(
    client: OpenAI, overrides: dict, error: type[Exception], param: str
) -> None:
    with pytest.raises(error) as caught:
        speak(client, **overrides)
    assert caught.value.body["param"] == param  # type: ignore[attr-defined]


def test_a_missing_parameter_is_named(client: OpenAI) -> None:
    with pytest.raises(BadRequestError, match="Missing required parameter: 'voice'"):
        client.post("/audio/speech", body={"model": "local-tts", "input": TEXT}, cast_to=bytes)
