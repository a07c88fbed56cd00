"""`POST /v1/audio/speech` on the local server: OpenAI's text-to-speech request, spoken by flite."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from audio_evals.audio_tools import ToolError, flite_voices, require_sox_format, run_program
from audio_evals.local.app import APIError, _parse_json_body
from audio_evals.tts import OPENAI_MAX_INPUT_CHARS, OPENAI_PCM_RATE, TtsEngine, Voice, speak_local

SPEECH_MODEL = "local-tts"
"""The speech model served here (flite voices)."""
VOICES: dict[str, str] = {
    "alloy": "slt",
    "ash": "rms",
    "ballad": "awb",
    "coral": "slt",
    "echo": "rms",
    "fable": "awb",
    "onyx": "kal16",
    "nova": "slt",
    "sage": "rms",
    "shimmer": "slt",
    "verse": "awb",
    "marin": "slt",
    "cedar": "rms",
}
"""OpenAI's built-in voice names -> the flite voice that reads them here."""
# response_format -> (media type, sox output options); everything at 24 kHz mono as OpenAI sends it
FORMATS: dict[str, tuple[str, list[str]]] = {
    "mp3": ("audio/mpeg", ["-C", "64"]),
    "wav": ("audio/wav", ["-b", "16"]),
    "flac": ("audio/flac", ["-b", "16"]),
    "pcm": ("audio/pcm", ["-b", "16", "-e", "signed-integer", "-L", "-t", "raw"]),
}
UNSERVED_FORMATS = ("opus", "aac")
SPEED_RANGE = (0.25, 4.0)


def _render(text: str, flite_voice: str, response_format: str, speed: float) -> bytes:
    """Speak `text` with a flite voice and encode it as OpenAI would send it."""
    _, options = FORMATS[response_format]
    if response_format == "mp3":
        require_sox_format("mp3")
    with tempfile.TemporaryDirectory(prefix="local-tts-") as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / f"out.{response_format}"
        speak_local(Voice(TtsEngine.FLITE, flite_voice), text, raw)
        effects = [] if speed == 1.0 else ["tempo", "-s", f"{speed:g}"]
        run_program(
            [
                "sox",
                "-R",
                str(raw),
                "-r",
                str(OPENAI_PCM_RATE),
                "-c",
                "1",
                *options,
                str(out),
                *effects,
            ]
        )
        return out.read_bytes()


def _parameters(body: dict[str, Any]) -> tuple[str, str, str, float]:
    """(input, flite voice, response_format, speed) of a request, or an OpenAI-shaped error."""
    for name in ("model", "input", "voice"):
        if name not in body:
            raise APIError(
                400,
                f"Missing required parameter: '{name}'.",
                param=name,
                code="missing_required_parameter",
            )
    if body["model"] != SPEECH_MODEL:
        raise APIError(
            404,
            f"The model `{body['model']}` does not exist or you do not have access to it. "
            f"Speech models served here: {SPEECH_MODEL}.",
            param="model",
            code="model_not_found",
        )
    text = body["input"]
    if not isinstance(text, str) or not text.strip():
        raise APIError(
            400, "'input' must be a non-empty string.", param="input", code="invalid_value"
        )
    if len(text) > OPENAI_MAX_INPUT_CHARS:
        raise APIError(
            400,
            f"'input' is {len(text)} characters long; the maximum is {OPENAI_MAX_INPUT_CHARS}.",
            param="input",
            code="string_above_max_length",
        )
    voice = body["voice"]
    if not isinstance(voice, str) or voice not in VOICES:
        raise APIError(
            400,
            f"Invalid value for 'voice': {voice!r}. Voices served here: {', '.join(VOICES)} "
            "(custom voices are not).",
            param="voice",
            code="invalid_value",
        )
    response_format = body.get("response_format", "mp3")
    if response_format not in FORMATS:
        served = ", ".join(FORMATS)
        reason = " (not served by the local server)" if response_format in UNSERVED_FORMATS else ""
        raise APIError(
            400,
            f"Invalid value for 'response_format': {response_format!r}{reason}. Supported here: {served}.",
            param="response_format",
            code="invalid_value",
        )
    speed = body.get("speed", 1.0)
    if (
        not isinstance(speed, int | float)
        or isinstance(speed, bool)
        or not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]
    ):
        raise APIError(
            400,
            f"Invalid value for 'speed': {speed!r}; it must be from {SPEED_RANGE[0]} to {SPEED_RANGE[1]}.",
            param="speed",
            code="invalid_value",
        )
    return text, VOICES[voice], response_format, float(speed)


def register_speech(app: FastAPI) -> None:
    """Add the `/v1/audio/speech` route to the local server's application."""

    @app.post("/v1/audio/speech")
    async def speech(request: Request) -> Response:
        """Answer a text-to-speech request with audio bytes (flite voices, 24 kHz mono)."""
        text, voice, response_format, speed = _parameters(_parse_json_body(await request.body()))
        try:
            if voice not in flite_voices():
                raise ToolError(f"flite on the server host has no voice {voice!r}")
            audio = await asyncio.to_thread(_render, text, voice, response_format, speed)
        except ToolError as exc:
            raise APIError(
                500, f"The local server could not speak the text: {exc}", type="server_error"
            ) from None
        return Response(audio, media_type=FORMATS[response_format][0])
