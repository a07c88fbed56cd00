"""The local server refuses audio over OpenAI's input limits, as OpenAI does."""

from __future__ import annotations

import base64
import io

import numpy as np
import openai
import pytest
import soundfile as sf
from openai import OpenAI

from audio_evals.limits import MAX_AUDIO_BYTES, MAX_AUDIO_SECONDS
from audio_evals.local import LocalServer


def wav(seconds: float, rate: int = 8000, subtype: str = "PCM_U8") -> bytes:
    buffer = io.BytesIO()
    sf.write(
        buffer, np.zeros(int(seconds * rate), dtype="int16"), rate, format="WAV", subtype=subtype
    )
    return buffer.getvalue()


@pytest.fixture
def client(local_server: LocalServer) -> OpenAI:
    return OpenAI(base_url=local_server.base_url, api_key="sk-local", max_retries=0, timeout=120)


def test_a_transcription_upload_over_25_mib_is_a_413(client: OpenAI) -> None:
    data = wav(MAX_AUDIO_BYTES / 16000 + 1, rate=8000, subtype="PCM_16")  # just over 25 MiB
    assert len(data) > MAX_AUDIO_BYTES
    with pytest.raises(openai.APIStatusError) as err:
        client.audio.transcriptions.create(model="local-baseline", file=("big.wav", data))
    assert err.value.status_code == 413
    assert (
        f"Maximum content size limit ({MAX_AUDIO_BYTES}) exceeded ({len(data)} bytes read)"
        in str(err.value)
    )


def test_chat_audio_over_25_mib_is_a_413_naming_the_part(client: OpenAI) -> None:
    data = wav(MAX_AUDIO_BYTES / 16000 + 1, rate=8000, subtype="PCM_16")
    part = {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode(data).decode(), "format": "wav"},
    }
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(
            model="local-baseline",
            messages=[{"role": "user", "content": [{"type": "text", "text": "Who speaks?"}, part]}],
        )
    assert err.value.status_code == 413
    assert f"Maximum content size limit ({MAX_AUDIO_BYTES}) exceeded" in str(err.value)
    assert err.value.body["param"] == "messages[0].content[1].input_audio.data"


def test_audio_longer_than_the_limit_is_refused_on_both_endpoints(client: OpenAI) -> None:
    data = wav(MAX_AUDIO_SECONDS + 1)  # 1501 s of 8 kHz 8-bit audio: 12 MB, under the size limit
    words = "audio duration 1501 seconds is longer than 1500 seconds which is the maximum"
    with pytest.raises(openai.BadRequestError, match=words):
        client.audio.transcriptions.create(model="local-baseline", file=("long.wav", data))
    part = {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode(data).decode(), "format": "wav"},
    }
    with pytest.raises(openai.BadRequestError, match=words) as err:
        client.chat.completions.create(
            model="local-baseline", messages=[{"role": "user", "content": [part]}]
        )
    assert err.value.body["param"] == "messages[0].content[0].input_audio.data"


def test_audio_within_the_limits_is_accepted(client: OpenAI) -> None:
    text = client.audio.transcriptions.create(
        model="local-baseline", file=("ok.wav", wav(2.0)), response_format="text"
    )
    assert isinstance(text, str)
