"""Synthetic speech (flite): the baseline extracts what is said, and degraded audio makes it worse."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import instructor
import jiwer
import numpy as np
import pytest
import soundfile as sf
from openai import OpenAI
from pydantic import BaseModel, Field
from scipy.signal import resample_poly

from audio_evals.local import LocalServer
from conftest import audio_part


class CallInfo(BaseModel):
    """What a caller says about themselves."""

    name: str | None = None
    age: int | None = None
    phone_number: str | None = Field(None, description="phone number, digits only")
    urgent: bool | None = None
    appointment_date: dt.date | None = None
    appointment_time: dt.time | None = None
    date_of_birth: dt.date | None = None


SENTENCES: list[tuple[str, dict[str, Any]]] = [
    ("my name is david and i am thirty four years old", {"name": "David", "age": 34}),
    ("hi this is sarah and i am twenty nine years old", {"name": "Sarah", "age": 29}),
    (
        "i would like to book an appointment on march third twenty twenty seven at three thirty p m",
        {"appointment_date": dt.date(2027, 3, 3), "appointment_time": dt.time(15, 30)},
    ),
    (
        "this is urgent my phone number is five five five one two three four",
        {"urgent": True, "phone_number": "5551234"},
    ),
    (
        "my name is linda and my date of birth is july fourth nineteen eighty two",
        {"name": "Linda", "date_of_birth": dt.date(1982, 7, 4)},
    ),
]


def telephone(x: np.ndarray) -> np.ndarray:
    """Band-limit 16 kHz audio to a telephone-like 8 kHz sampling rate and back."""
    return resample_poly(resample_poly(x, 1, 2), 2, 1)


def add_noise(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """Add white noise at the given signal-to-noise ratio (fixed seed)."""
    rng = np.random.default_rng(seed)
    power = float(np.mean(x**2))
    return x + rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), len(x))


CONDITIONS = {
    "clean": lambda x: x,
    "8 kHz band": telephone,
    "8 kHz + noise 20 dB": lambda x: add_noise(telephone(x), 20),
}


def normalize(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower().replace("p m", "pm")))


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    flite = shutil.which("flite")
    if flite is None:
        pytest.skip("flite is not installed (apt-get install flite) - cannot synthesise speech")
    out = tmp_path_factory.mktemp("flite")
    paths = []
    for i, (text, _) in enumerate(SENTENCES):
        path = out / f"s{i}.wav"
        subprocess.run(
            [flite, "-voice", "slt", "-t", text, "-o", str(path)], check=True, capture_output=True
        )
        paths.append(path)
    return paths


def degrade(path: Path, condition: str, out_dir: Path) -> Path:
    x, rate = sf.read(path, dtype="float64")
    y = np.clip(CONDITIONS[condition](x), -1, 1)
    out = out_dir / f"{path.stem}-{condition.replace(' ', '_')}.wav"
    sf.write(out, y, rate, subtype="PCM_16")
    return out


def run_case(server: LocalServer, model: str, path: Path) -> tuple[str, dict[str, Any]]:
    """Transcript (plain chat answer) and extraction (instructor) for one clip."""
    raw = OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0, timeout=60)
    transcript = (
        raw.chat.completions.create(
            model=model, messages=[{"role": "user", "content": [audio_part(path)]}]
        )
        .choices[0]
        .message.content
    )
    client = instructor.from_openai(raw, mode=instructor.Mode.TOOLS)
    info = client.chat.completions.create(
        model=model,
        response_model=CallInfo,
        max_retries=0,
        messages=[
            {"role": "system", "content": "Extract the caller's details from the audio."},
            {"role": "user", "content": [audio_part(path)]},
        ],
    )
    return transcript or "", info.model_dump()


def field_accuracy(found: list[dict[str, Any]]) -> float:
    hits = total = 0
    for (_, expected), got in zip(SENTENCES, found, strict=True):
        for key, value in expected.items():
            total += 1
            hits += got.get(key) == value
    return hits / total


def test_clean_vs_degraded(
    server: LocalServer, voices: list[Path], tmp_path: Path, report: list[str]
) -> None:
    refs = [normalize(text) for text, _ in SENTENCES]
    jobs = [("local-baseline", c) for c in CONDITIONS] + [("local-baseline-mini", "clean")]
    tasks = [(job, degrade(p, job[1], tmp_path)) for job in jobs for p in voices]
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda t: run_case(server, t[0][0], t[1]), tasks))
    rows = {}
    for k, job in enumerate(jobs):
        results = outcomes[k * len(voices) : (k + 1) * len(voices)]
        hyps = [normalize(t) for t, _ in results]
        rows[job] = (jiwer.wer(refs, hyps), field_accuracy([r for _, r in results]), results)
    lines = [
        f"Synthetic speech (flite slt, {len(SENTENCES)} sentences, {sum(len(e) for _, e in SENTENCES)} fields):"
    ]
    for (model, condition), (wer, acc, _) in rows.items():
        lines.append(f"  {model:<20} {condition:<20} WER {wer:.3f}  field accuracy {acc:.2f}")
    clean = rows[("local-baseline", "clean")]
    for (text, _), (_, info) in zip(SENTENCES, clean[2], strict=True):
        shown = {k: (str(v) if v is not None else None) for k, v in info.items() if v is not None}
        lines.append(f"    clean: {text!r} -> {shown}")
    print("\n" + "\n".join(lines))
    report.extend(lines)

    # the full model gets most fields right from clean synthetic speech
    assert clean[1] >= 0.6
    # the hardest degradation is clearly worse than clean, in transcript and extraction
    worst = rows[("local-baseline", "8 kHz + noise 20 dB")]
    assert worst[0] > clean[0]
    assert worst[1] < clean[1]
