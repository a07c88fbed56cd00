"""Clinic intake: a caller's voicemail in, an `AppointmentRequest` out (the demo's application code).

This is what a team's own extraction looks like, and what `evals/intake.eval.toml` evaluates
next to the harness's built-in call: its own system message and a few-shot example, the audio
trimmed of leading silence before it is sent, and a post-processed field (the callback number
reduced to its digits). It knows nothing of the eval harness.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import instructor
import numpy as np
import soundfile
from instructor.processing.multimodal import Audio
from openai import OpenAI

from .schema import AppointmentRequest

SYSTEM = (
    "You are the intake assistant of Riverside Clinic. You listen to voicemails from callers who "
    "want an appointment and fill in the booking form. Only write down what the caller says: "
    "leave optional fields empty when they are not said, and never guess a callback number."
)
EXAMPLE_VOICEMAIL = (
    "Hello, this is Tom Baker. I'd like a checkup on the fourth of May twenty twenty seven at "
    "nine a m. You can call me back at five five five, zero one nine nine."
)
EXAMPLE_FORM = AppointmentRequest.model_validate(
    {
        "caller": {"first_name": "Tom", "last_name": "Baker"},
        "service": "checkup",
        "date": "2027-05-04",
        "time": "09:00:00",
        "urgent": False,
        "callback_number": "5550199",
        "symptoms": [],
    }
)
SILENCE_DBFS = -40.0
KEEP_BEFORE_S = 0.1


def make_client(
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    max_retries: int = 2,
) -> instructor.Instructor:
    """The application's OpenAI client, wrapped by instructor (tools mode: audio models reject json_schema)."""
    raw = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)
    return instructor.from_openai(raw, mode=instructor.Mode.TOOLS)


def trim_leading_silence(path: Path) -> bytes:
    """The clip as 16-bit WAV without its leading silence (0.1 s kept before the first sound)."""
    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    level = np.abs(samples).max(axis=1)
    loud = np.flatnonzero(level >= 10 ** (SILENCE_DBFS / 20))
    start = max(0, int(loud[0]) - int(KEEP_BEFORE_S * rate)) if loud.size else 0
    out = io.BytesIO()
    soundfile.write(out, samples[start:], rate, subtype="PCM_16", format="WAV")
    return out.getvalue()


def digits_only(number: str | None) -> str | None:
    """A phone number as its digits ('555-0123' -> '5550123'); None when it has none."""
    digits = re.sub(r"\D", "", number or "")
    return digits or None


def extract_intake(path: Path, *, client: instructor.Instructor, model: str) -> AppointmentRequest:
    """Fill the booking form from one voicemail."""
    wav = trim_leading_silence(path)
    audio = Audio(
        source=str(path), data=base64.b64encode(wav).decode("ascii"), media_type="audio/wav"
    )
    form = client.chat.completions.create(
        model=model,
        response_model=AppointmentRequest,
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Voicemail: {EXAMPLE_VOICEMAIL}"},
            {"role": "assistant", "content": EXAMPLE_FORM.model_dump_json()},
            {"role": "user", "content": ["Fill in the booking form from this voicemail.", audio]},
        ],
        max_retries=1,
        modalities=["text"],
        temperature=0,
    )
    return form.model_copy(update={"callback_number": digits_only(form.callback_number)})
