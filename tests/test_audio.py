"""Audio formats: header probes, full decodes and the bytes prepared for a wav/mp3-only API."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_evals.audio import AudioFileError, AudioFormat, decode, prepare_for_api, probe
from audio_evals.limits import TRANSCRIPTION_FORMATS

from .conftest import require_tool, shared_path


def jfk() -> Path:
    """JFK's inaugural address: FLAC, 44.1 kHz, stereo, 24-bit, 11 s (real speech)."""
    return shared_path("real-speech", "openai-whisper", "jfk.flac")


def ffmpeg(source: Path, target: Path, *args: str) -> Path:
    tool = require_tool("ffmpeg")
    subprocess.run(
        [tool, "-nostdin", "-v", "error", "-y", "-i", str(source), *args, str(target)], check=True
    )
    return target


def test_probe_reads_the_header_of_real_flac_and_aiff() -> None:
    info = probe(jfk())
    assert (info.format, info.codec, info.sample_rate, info.channels) == (
        "flac",
        "PCM_24",
        44100,
        2,
    )
    assert info.duration == pytest.approx(11.0, abs=0.01)
    aiff = probe(shared_path("real-speech", "speech_recognition", "french.aiff"))
    assert (aiff.format, aiff.sample_rate, aiff.channels) == ("aiff", 44100, 1)


@pytest.mark.parametrize(("channels", "rate"), [(1, 44100), (2, 44100), (1, 16000)])
def test_probe_reads_m4a_headers_as_ffprobe_does(tmp_path: Path, channels: int, rate: int) -> None:
    m4a = ffmpeg(jfk(), tmp_path / "a.m4a", "-c:a", "aac", "-ac", str(channels), "-ar", str(rate))
    info = probe(m4a)
    shown = subprocess.run(
        [
            require_tool("ffprobe"),
            "-v",
            "error",
            "-show_entries",
            "stream=channels,sample_rate,duration",
        ]
        + ["-of", "default=noprint_wrappers=1", str(m4a)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    facts = dict(line.split("=") for line in shown.split())
    assert info.format == AudioFormat.M4A
    assert (info.channels, info.sample_rate) == (int(facts["channels"]), int(facts["sample_rate"]))
    assert info.duration == pytest.approx(float(facts["duration"]), abs=0.001)


def test_wav_and_mp3_are_sent_as_they_are(tmp_path: Path) -> None:
    wav = shared_path("real-speech", "speech_recognition", "english.wav")
    prepared = prepare_for_api(wav)
    assert (prepared.format, prepared.conversion) == ("wav", None)
    assert prepared.data == wav.read_bytes()
    mp3 = ffmpeg(wav, tmp_path / "e.mp3")
    assert prepare_for_api(mp3).data == mp3.read_bytes()


def test_flac_is_converted_deterministically_and_the_conversion_described() -> None:
    first, second = prepare_for_api(jfk()), prepare_for_api(jfk())
    assert first.data == second.data  # same file -> same bytes -> same cassette digest
    assert first.format == "wav" and first.filename == "jfk.wav"
    assert first.conversion is not None
    assert first.conversion.startswith(
        "flac (PCM_24, 44100 Hz, 2 ch) -> wav (PCM_16, 44100 Hz, 2 ch) by libsndfile"
    )
    samples, rate = sf.read(io.BytesIO(first.data), dtype="int16")
    original, _ = sf.read(jfk(), dtype="int16")
    assert rate == 44100 and samples.shape == original.shape
    assert np.array_equal(samples, original)  # 24 -> 16 bit is the only change
    assert len(first.data) == probe(jfk()).sent_bytes()


def test_transcription_endpoints_take_flac_as_is() -> None:
    prepared = prepare_for_api(jfk(), TRANSCRIPTION_FORMATS)
    assert (prepared.format, prepared.conversion) == ("flac", None)


@pytest.mark.parametrize("codec", ["libvorbis", "libopus", "aac"])
def test_lossy_formats_decode_and_convert_to_wav(tmp_path: Path, codec: str) -> None:
    suffix = {"libvorbis": ".ogg", "libopus": ".opus", "aac": ".m4a"}[codec]
    clip = ffmpeg(jfk(), tmp_path / f"jfk{suffix}", "-c:a", codec, "-ac", "1")
    info = probe(clip)
    prepared = prepare_for_api(clip)
    assert prepared.format == "wav" and prepared.conversion is not None
    assert len(prepared.data) == info.sent_bytes()
    samples, rate = decode(clip)
    assert rate == info.sample_rate and samples.shape[1] == 1
    assert len(samples) / rate == pytest.approx(11.0, abs=0.05)
    digests = {hashlib.sha256(prepare_for_api(clip).data).hexdigest() for _ in range(2)}
    assert len(digests) == 1


def test_header_mismatch_damage_and_unsupported_suffixes_are_clear_errors(tmp_path: Path) -> None:
    fake = tmp_path / "x.flac"
    fake.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    with pytest.raises(AudioFileError, match="named '.flac' but its header says a wav file"):
        probe(fake)
    with pytest.raises(AudioFileError, match=r"unsupported audio format '\.xyz'"):
        probe(tmp_path / "x.xyz")
    broken = tmp_path / "broken.flac"
    broken.write_bytes(jfk().read_bytes()[:2000])
    with pytest.raises(AudioFileError, match="flac audio does not decode"):
        decode(broken)
    empty = tmp_path / "e.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioFileError, match="empty"):
        probe(empty)


def test_a_flac_dataset_records_the_converted_wav_by_digest_and_notes_the_conversion(
    tmp_path: Path,
) -> None:
    """A FLAC clip recorded against the local server and replayed offline: the cassette keys the
    digest of the WAV that was sent, and cases.csv says how it was converted, in both runs."""
    from .conftest import run_pytest
    from .reliability.conftest import CLIPS, DEMO, suite_text, variant, write_project

    root = write_project(tmp_path, {"intro": suite_text("people", variant("v"))})
    folder = root / "datasets" / "people"
    (folder / "audio").mkdir(parents=True)
    samples, rate = sf.read(DEMO / CLIPS["jason"][0], dtype="int16")
    flac = folder / "audio" / "jason.flac"
    sf.write(flac, samples, rate, format="FLAC", subtype="PCM_16")
    row = {"file_name": "audio/jason.flac", "id": "a", "expected": CLIPS["jason"][1]}
    (folder / "metadata.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    sent = prepare_for_api(flac)
    assert sent.format == "wav" and sent.conversion

    for args in (("--record-mode=once",), ()):
        proc = run_pytest(root, "evals", *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        with (root / "reports" / "latest" / "cases.csv").open(encoding="utf-8") as fh:
            (case,) = list(csv.DictReader(fh))
        assert case["audio_path"] == "datasets/people/audio/jason.flac"
        assert case["audio_conversion"] == sent.conversion
        assert case["error"] == ""
    cassette = (root / "cassettes" / "intro" / "v.yaml").read_text(encoding="utf-8")
    assert "sha256:" + hashlib.sha256(sent.data).hexdigest() in cassette
    assert "sha256:" + hashlib.sha256(flac.read_bytes()).hexdigest() not in cassette
