"""Audio never lands in a cassette, whatever the request shape: found by its bytes, not its field name."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from audio_evals.bodies import differences, digest, is_audio, normalise_body, requested_model
from audio_evals.pricing import usage_from_response

from .conftest import REPO, require_tool, write_tone

WAV = (REPO / "datasets" / "person" / "audio" / "person-0001.wav").read_bytes()
MP3 = (REPO / "datasets" / "person" / "audio" / "person-0002.mp3").read_bytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def containers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The same tone in every container teams send (made by sox and ffmpeg, real files)."""
    folder = tmp_path_factory.mktemp("containers")
    wav = write_tone(folder / "tone.wav", seconds=1.0)
    out = {"wav": wav.read_bytes(), "mp3": MP3}
    sox = require_tool("sox")
    for suffix in ("flac", "ogg", "aiff"):
        subprocess.run([sox, str(wav), str(folder / f"tone.{suffix}")], check=True)
        out[suffix] = (folder / f"tone.{suffix}").read_bytes()
    ffmpeg = require_tool("ffmpeg")
    for suffix, codec in (("m4a", "aac"), ("webm", "libopus")):
        subprocess.run(
            [
                ffmpeg,
                "-v",
                "error",
                "-y",
                "-i",
                str(wav),
                "-c:a",
                codec,
                str(folder / f"tone.{suffix}"),
            ],
            check=True,
        )
        out[suffix] = (folder / f"tone.{suffix}").read_bytes()
    return out


def test_every_container_is_recognised_by_its_magic_bytes(containers: dict[str, bytes]) -> None:
    for name, data in containers.items():
        assert is_audio(data[:16]), name
    for not_audio in (b"%PDF-1.7\n", b"\x89PNG\r\n\x1a\n", b'{"a": 1}', b"GIF89a", b"hello world!"):
        assert not is_audio(not_audio)


@pytest.mark.parametrize(
    "shape",
    ["openai_input_audio", "data_uri", "gemini_inline_data", "anywhere_nested", "urlsafe"],
)
def test_base64_audio_at_any_json_path_becomes_the_digest_of_its_bytes(
    shape: str, containers: dict[str, bytes]
) -> None:
    audio = containers["flac"]
    encoded = base64.urlsafe_b64encode(audio).decode() if shape == "urlsafe" else b64(audio)
    bodies = {
        "openai_input_audio": {"messages": [{"content": [{"input_audio": {"data": encoded}}]}]},
        "data_uri": {"audio_url": f"data:audio/flac;base64,{encoded}"},
        "gemini_inline_data": {
            "contents": [{"parts": [{"inline_data": {"mime_type": "audio/flac", "data": encoded}}]}]
        },
        "anywhere_nested": {"payload": {"clips": [{"blob": encoded, "name": "x"}]}},
        "urlsafe": {"clip": encoded},
    }
    raw = json.dumps(bodies[shape]).encode()
    once = normalise_body(raw, "application/json")
    assert once is not None and len(once) < 400
    assert digest(audio).encode() in once  # sha256 of the bytes: what `sha256sum clip.flac` prints
    assert normalise_body(once, "application/json") == once  # idempotent (vcrpy filters twice)


def test_non_audio_base64_and_text_stay_as_they_are() -> None:
    image = b64(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    body = json.dumps({"image": image, "text": "A" * 200, "prompt": "Extract the name"}).encode()
    assert json.loads(normalise_body(body, "application/json") or b"") == json.loads(body)


def test_a_raw_audio_body_and_a_multipart_part_without_a_filename_are_digested() -> None:
    raw = normalise_body(WAV, "audio/wav")
    assert raw is not None and json.loads(raw) == {
        "audio": {"bytes": len(WAV), "data": digest(WAV)}
    }
    boundary = "xyz"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="blob"\r\n\r\n'
        ).encode()
        + MP3
        + f"\r\n--{boundary}--\r\n".encode()
    )
    parsed = json.loads(normalise_body(body, f"multipart/form-data; boundary={boundary}") or b"")
    assert parsed["multipart/form-data"]["blob"]["data"] == digest(MP3)
    assert (
        requested_model(normalise_body(body, f"multipart/form-data; boundary={boundary}"))
        == "whisper-1"
    )


def test_the_nearest_miss_names_the_paths_that_differ() -> None:
    stored = {"model": "m", "messages": [{"content": ["Extract", "sha256:" + "a" * 64]}], "t": 0}
    asked = {"model": "m", "messages": [{"content": ["Extract!", "sha256:" + "b" * 64]}], "t": 0}
    assert differences(stored, asked) == [
        "messages[0].content[0] (value differs)",
        "messages[0].content[1] (audio differs)",
    ]


def test_gemini_usage_metadata_is_priced_like_openai_usage(tmp_path: Path) -> None:
    usage = usage_from_response(
        {
            "usageMetadata": {
                "promptTokenCount": 250,
                "candidatesTokenCount": 40,
                "promptTokensDetails": [
                    {"modality": "TEXT", "tokenCount": 50},
                    {"modality": "AUDIO", "tokenCount": 200},
                ],
            }
        }
    )
    assert (usage.text_input_tokens, usage.audio_input_tokens, usage.text_output_tokens) == (
        50,
        200,
        40,
    )
