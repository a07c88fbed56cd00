"""Text-to-speech voices (flite, espeak-ng, OpenAI's /v1/audio/speech) rendered as clean 16 kHz WAV."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio_tools import (
    PEAK_DBFS,
    ToolError,
    espeak_voice_exists,
    flite_voices,
    require_program,
    run_program,
)

CLEAN_RATE = 16000
"""Sample rate of every synthesised clip (16-bit mono WAV)."""
MAX_PAUSE_S = 0.3
"""Pauses longer than this are shortened to it (keeps clips small, voices alike)."""
PAD_S = 0.1
"""Silence padded at both ends after trimming."""
SILENCE_THRESHOLD = "-45d"
ESPEAK_WORDS_PER_MINUTE = 150
OPENAI_PCM_RATE = 24000
"""OpenAI's `pcm` speech format: raw 24 kHz 16-bit signed little-endian mono samples, no header."""
OPENAI_MAX_INPUT_CHARS = 4096
"""The speech endpoint's input limit (openai SDK: SpeechCreateParams.input)."""
DEFAULT_OPENAI_TTS_MODEL = "gpt-4o-mini-tts"


class TtsEngine(StrEnum):
    """Where a voice comes from."""

    FLITE = "flite"
    ESPEAK_NG = "espeak-ng"
    OPENAI = "openai"


@dataclass(frozen=True)
class Voice:
    """A voice as `engine:name` (`flite:slt`, `espeak-ng:en-us`, `openai:alloy`)."""

    engine: TtsEngine
    name: str

    @classmethod
    def parse(cls, text: str) -> Voice:
        """Read `engine:name`; ValueError saying what is accepted."""
        engine, sep, name = text.strip().partition(":")
        engines = ", ".join(e.value for e in TtsEngine)
        if not sep or not name.strip():
            raise ValueError(f"voice {text!r} is not engine:name (engines: {engines})")
        try:
            return cls(TtsEngine(engine), name.strip())
        except ValueError:
            raise ValueError(
                f"voice {text!r}: unknown engine {engine!r} (engines: {engines})"
            ) from None

    @property
    def speaker(self) -> str:
        """The `speaker` tag of clips in this voice, e.g. `flite-slt`."""
        return f"{self.engine.value}-{self.name}"

    def __str__(self) -> str:
        return f"{self.engine.value}:{self.name}"


def check_local_voices(voices: Sequence[Voice]) -> None:
    """A ToolError naming the first missing program or voice that rendering `voices` needs."""
    require_program("sox")
    for voice in voices:
        if voice.engine == TtsEngine.FLITE and voice.name not in flite_voices():
            raise ToolError(
                f"flite has no voice {voice.name!r} (flite -lv lists: {', '.join(flite_voices())})"
            )
        if voice.engine == TtsEngine.ESPEAK_NG and not espeak_voice_exists(voice.name):
            raise ToolError(
                f"espeak-ng has no voice {voice.name!r} (espeak-ng --voices lists them)"
            )


def speak_local(voice: Voice, text: str, raw: Path) -> None:
    """Speak `text` with a local engine into the WAV file `raw` (the engine's own format)."""
    if voice.engine == TtsEngine.FLITE:
        argv = ["flite", "-voice", voice.name, "-t", text, "-o", str(raw)]
    elif voice.engine == TtsEngine.ESPEAK_NG:
        wpm = str(ESPEAK_WORDS_PER_MINUTE)
        argv = ["espeak-ng", "-v", voice.name, "-s", wpm, "-w", str(raw), "--", text]
    else:
        raise ValueError(f"{voice} is not a local voice")
    run_program(argv)


def write_openai_pcm(pcm: bytes, raw: Path) -> None:
    """Wrap OpenAI `pcm` speech (24 kHz, 16-bit LE, mono) into the WAV file `raw`."""
    if len(pcm) < 2 or len(pcm) % 2:
        raise ToolError(f"the speech endpoint returned {len(pcm)} bytes, not 16-bit PCM samples")
    sf.write(raw, np.frombuffer(pcm, dtype="<i2"), OPENAI_PCM_RATE, subtype="PCM_16")


def clean_speech(raw: Path, out: Path) -> None:
    """Make a TTS clip uniform: 16 kHz mono 16-bit WAV, silences trimmed and capped, padded, -3 dBFS peak."""
    run_program([
        "sox", "-R", str(raw), "-r", str(CLEAN_RATE), "-c", "1", "-b", "16", str(out),
        "silence", "-l", "1", "0.02", SILENCE_THRESHOLD, "-1", str(MAX_PAUSE_S), SILENCE_THRESHOLD,
        "reverse", "silence", "1", "0.02", SILENCE_THRESHOLD, "reverse",
        "pad", str(PAD_S), str(PAD_S), "gain", "-n", str(PEAK_DBFS),
    ])  # fmt: skip


class OpenAISpeech:
    """Speech from an OpenAI-compatible `/v1/audio/speech` endpoint through the openai SDK."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str,
        concurrency: int = 4,
        max_retries: int = 3,
        timeout: float = 120.0,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.api_key = api_key
        self.concurrency = max(1, concurrency)
        self.max_retries = max_retries
        self.timeout = timeout

    async def _speak_all(self, requests: Sequence[tuple[str, str]]) -> list[bytes]:
        from openai import AsyncOpenAI

        client = AsyncOpenAI(
            base_url=self.base_url,
            api_key=self.api_key,
            max_retries=self.max_retries,
            timeout=self.timeout,
        )
        gate = asyncio.Semaphore(self.concurrency)

        async def speak(voice: str, text: str) -> bytes:
            async with gate:
                response = await client.audio.speech.create(
                    model=self.model, voice=voice, input=text, response_format="pcm"
                )
                return response.content

        try:
            return list(await asyncio.gather(*(speak(v, t) for v, t in requests)))
        finally:
            await client.close()

    def speak_all(self, requests: Sequence[tuple[str, str]]) -> list[bytes]:
        """The 24 kHz PCM audio of each (voice name, text), in order, fetched concurrently."""
        return asyncio.run(self._speak_all(requests))
