"""Word error rate of the local models on real human speech with reference transcripts."""

from __future__ import annotations

import json
import math
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf
from openai import OpenAI

from audio_evals.local import LocalServer
from conftest import REAL_SPEECH


def normalize(text: str) -> str:
    """Lower-case words without punctuation."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def corpus(tmp: Path) -> list[tuple[str, Path, str]]:
    """(name, audio, reference) for the English clips whose reference is a human transcript."""
    items: list[tuple[str, Path, str]] = []
    ds = REAL_SPEECH / "mozilla-deepspeech"
    if (ds / "LDC93S1.wav").exists():
        ref = (ds / "LDC93S1.txt").read_text().split(maxsplit=2)[2]
        items.append(("timit LDC93S1", ds / "LDC93S1.wav", ref))
        labels = {e["file"]: e["transcript"] for e in json.loads((ds / "labels.json").read_text())}
        items.append(
            (
                "deepspeech new-home",
                ds / "new-home-in-the-stars-16k.wav",
                labels["new-home-in-the-stars-16k.wav"],
            )
        )
    sr = REAL_SPEECH / "speech_recognition" / "english.wav"
    if sr.exists():
        items.append(("speech_recognition english", sr, "one two three"))
    ps = REAL_SPEECH / "pocketsphinx"
    for wav in sorted((ps / "librivox").glob("*.wav")):
        items.append((f"librivox {wav.stem[-4:]}", wav, wav.with_suffix(".txt").read_text()))
    if (ps / "forever" / "input_2_16k.wav").exists():
        items.append(
            (
                "pocketsphinx forever",
                ps / "forever" / "input_2_16k.wav",
                (ps / "forever" / "input_2_16k.txt").read_text(),
            )
        )
    if (ps / "goforward.raw").exists():  # headerless 16 kHz PCM: wrap it in a WAV
        pcm = np.frombuffer((ps / "goforward.raw").read_bytes(), dtype="<i2")
        wav = tmp / "goforward.wav"
        sf.write(wav, pcm, 16000, subtype="PCM_16")
        items.append(("pocketsphinx goforward", wav, (ps / "goforward.txt").read_text()))
    cards = ps / "cards" / "cards.transcription"
    if cards.exists():
        for line in cards.read_text().splitlines():
            m = re.match(r"<s>(.*)</s>\s*\((\d+)\)", line.strip())
            if m and (ps / "cards" / f"{m.group(2)}.wav").exists():
                items.append(
                    (f"cards {m.group(2)}", ps / "cards" / f"{m.group(2)}.wav", m.group(1))
                )
    return items


def transcribe_all(server: LocalServer, model: str, paths: list[Path]) -> list[str]:
    client = OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0, timeout=120)

    def one(path: Path) -> str:
        with open(path, "rb") as f:
            return client.audio.transcriptions.create(model=model, file=f).text

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(one, paths))


def test_wer_on_real_speech(server: LocalServer, tmp_path: Path, report: list[str]) -> None:
    items = corpus(tmp_path)
    if len(items) < 3:
        pytest.skip(f"real-speech clips not found under {REAL_SPEECH}")
    refs = [normalize(ref) for _, _, ref in items]
    seconds = sum(sf.info(str(p)).duration for _, p, _ in items)
    results: dict[str, float] = {}
    lines = [
        f"WER on {len(items)} real English clips ({seconds:.0f} s of human speech, transcription endpoint):"
    ]
    hyps_by_model = {}
    for model in ("local-baseline", "local-baseline-mini"):
        hyps = [normalize(h) for h in transcribe_all(server, model, [p for _, p, _ in items])]
        hyps_by_model[model] = hyps
        results[model] = jiwer.wer(refs, hyps)
        lines.append(f"  {model:<20} corpus WER {results[model]:.3f}")
    for (name, _, _), ref, base, mini in zip(
        items,
        refs,
        hyps_by_model["local-baseline"],
        hyps_by_model["local-baseline-mini"],
        strict=True,
    ):
        lines.append(
            f"    {name:<27} base {jiwer.wer(ref, base):.2f}  mini {jiwer.wer(ref, mini):.2f}  | {base!r}"
        )
    print("\n" + "\n".join(lines))
    report.extend(lines)
    for wer in results.values():
        assert math.isfinite(wer) and wer >= 0
    # clean, read English speech gives a non-empty transcript from the full model
    assert all(
        hyps_by_model["local-baseline"][i]
        for i, (n, _, _) in enumerate(items)
        if n.startswith(("timit", "librivox"))
    )
