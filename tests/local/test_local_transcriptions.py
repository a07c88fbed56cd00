"""The whisper-1 compatible transcription endpoint, through the openai SDK."""

from __future__ import annotations

import pytest
from openai import BadRequestError, NotFoundError, OpenAI

from conftest import shared_file
from tests.conftest import write_tone


@pytest.fixture
def english_wav():
    return shared_file("real-speech", "speech_recognition", "english.wav")


def test_json(client: OpenAI, english_wav) -> None:
    with open(english_wav, "rb") as f:
        out = client.audio.transcriptions.create(model="local-baseline", file=f)
    assert out.text == "one two three"
    assert out.usage is not None and out.usage.type == "duration" and out.usage.seconds == 3


def test_text(client: OpenAI, english_wav) -> None:
    with open(english_wav, "rb") as f:
        out = client.audio.transcriptions.create(
            model="local-baseline", file=f, response_format="text"
        )
    assert isinstance(out, str) and out.strip() == "one two three"


def test_verbose_json_with_words(client: OpenAI, english_wav) -> None:
    with open(english_wav, "rb") as f:
        out = client.audio.transcriptions.create(
            model="local-baseline",
            file=f,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
            language="en",
            prompt="digits",
        )
    assert out.language == "english"
    assert 2.7 < out.duration < 2.8
    assert out.text == "one two three"
    assert out.segments and " ".join(s.text.strip() for s in out.segments) == out.text
    assert [w.word for w in out.words] == ["one", "two", "three"]
    assert all(0 <= w.start < w.end <= out.duration + 0.05 for w in out.words)


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles(client: OpenAI, english_wav, fmt: str) -> None:
    with open(english_wav, "rb") as f:
        out = client.audio.transcriptions.create(
            model="local-baseline", file=f, response_format=fmt
        )
    assert "-->" in out and "one" in out
    assert out.startswith("WEBVTT") == (fmt == "vtt")


def test_flac_and_stereo_are_decoded(client: OpenAI) -> None:
    flac = shared_file("real-speech", "openai-whisper", "jfk.flac")
    with open(flac, "rb") as f:
        out = client.audio.transcriptions.create(model="local-baseline-mini", file=f)
    print(f"\njfk.flac (mini): {out.text!r}")
    assert out.text


@pytest.mark.parametrize("seconds", [0.05, 0.06, 0.5])
def test_audio_with_no_speech_gives_an_empty_transcript(
    client: OpenAI, tmp_path, seconds: float
) -> None:
    tone = write_tone(tmp_path / "tone.wav", seconds=seconds)
    with open(tone, "rb") as f:
        out = client.audio.transcriptions.create(model="local-baseline", file=f)
    assert out.text == ""


def test_unknown_model(client: OpenAI, english_wav) -> None:
    with open(english_wav, "rb") as f, pytest.raises(NotFoundError) as err:
        client.audio.transcriptions.create(model="whisper-1", file=f)
    assert err.value.body["code"] == "model_not_found"


def test_unsupported_file_format(client: OpenAI) -> None:
    with pytest.raises(BadRequestError) as err:
        client.audio.transcriptions.create(model="local-baseline", file=("notes.txt", b"hello"))
    assert err.value.body["param"] == "file"
    assert "Invalid file format" in err.value.body["message"]


def test_undecodable_file(client: OpenAI) -> None:
    with pytest.raises(BadRequestError) as err:
        client.audio.transcriptions.create(
            model="local-baseline", file=("broken.wav", b"RIFF" + b"\0" * 64)
        )
    assert err.value.body["code"] == "invalid_value"
    assert "could not decode" in err.value.body["message"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK's own log.warn
def test_bad_response_format(client: OpenAI, english_wav) -> None:
    with open(english_wav, "rb") as f, pytest.raises(BadRequestError) as err:
        client.audio.transcriptions.create(model="local-baseline", file=f, response_format="yaml")  # type: ignore[arg-type]
    assert err.value.body["param"] == "response_format"
