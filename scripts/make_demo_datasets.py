#!/usr/bin/env python3
"""Build the committed demo datasets (datasets/person, datasets/appointment) reproducibly.

Every case is a sentence written as natural speech, read by a text-to-speech voice
(flite slt/rms/awb or espeak-ng en-us), then put through one acoustic condition
(clean, telephone, noisy) with sox and a seeded numpy generator. The label of a
case is the truth of its sentence. Nothing in the output depends on the clock or
on the order in which the file system lists things.

Usage (from the repository root):

    python scripts/make_demo_datasets.py                 # (re)write datasets/
    python scripts/make_demo_datasets.py --check         # regenerate in a temp dir and compare
    python scripts/make_demo_datasets.py --verify --wer  # validate rows; pocketsphinx WER table

Needs flite, espeak-ng and sox with MP3 support (Debian: flite espeak-ng sox libsox-fmt-mp3).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from pydantic import BaseModel

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from evals.models import (  # noqa: E402
    SYMPTOMS,
    AppointmentRequest,
    Caller,
    Person,
    Service,
)

BASE_SEED = 20270303
"""Root of every random choice (the noise); change it and the noisy audio changes."""

CONDITIONS: tuple[str, ...] = ("clean", "telephone", "noisy")
CLEAN_RATE = 16000
TELEPHONE_RATE = 8000
PEAK_DBFS = -3.0
MAX_PAUSE_S = 0.3
PAD_S = 0.1
SNR_RANGE_DB = (5.0, 10.0)
MP3_KBPS = 24
DURATION_TOLERANCE_S = 0.25
RENDERINGS_PER_SENTENCE = 2
ROW_KEYS: tuple[str, ...] = ("file_name", "id", "expected", "tags", "transcript")
REQUIRED_TAGS: tuple[str, ...] = ("speaker", "condition", "voice_engine")


@dataclass(frozen=True)
class Voice:
    """A text-to-speech voice: the speaker tag, its engine and the engine's voice name."""

    speaker: str
    engine: str
    voice: str

    def command(self, text: str, out: Path) -> list[str]:
        """Return the argv that speaks `text` into the WAV file `out`."""
        if self.engine == "flite":
            return ["flite", "-voice", self.voice, "-t", text, "-o", str(out)]
        if self.engine == "espeak-ng":
            return ["espeak-ng", "-v", self.voice, "-s", "150", "-w", str(out), text]
        raise ValueError(f"unknown voice engine {self.engine!r}")


VOICES: tuple[Voice, ...] = (
    Voice("flite-slt", "flite", "slt"),
    Voice("flite-rms", "flite", "rms"),
    Voice("flite-awb", "flite", "awb"),
    Voice("espeak-ng-en-us", "espeak-ng", "en-us"),
)


# --------------------------------------------------------------------------- sentences

PERSON_SENTENCES: tuple[tuple[str, Person], ...] = (
    ("Hi, my name is Jason and I am twenty years old.", Person(name="Jason", age=20)),
    ("This is Maria, I'm thirty four.", Person(name="Maria", age=34)),
    ("Hello there. Name's David. Age forty one.", Person(name="David", age=41)),
    ("Good morning, I'm Emily and I'm twenty seven years old.", Person(name="Emily", age=27)),
    ("My name is Michael. I am sixty three years old.", Person(name="Michael", age=63)),
    ("Hey, this is Sarah. I just turned nineteen.", Person(name="Sarah", age=19)),
    ("Robert here, fifty five years old.", Person(name="Robert", age=55)),
    ("Hello, my name is Linda, and I am seventy two.", Person(name="Linda", age=72)),
    ("The name's Kevin. I'm thirty eight.", Person(name="Kevin", age=38)),
    ("Hi! I'm Anna, age forty six.", Person(name="Anna", age=46)),
    (
        "Good afternoon. This is Thomas speaking, I am thirty years old.",
        Person(name="Thomas", age=30),
    ),
    ("My name is Laura and I'm eighty one years old.", Person(name="Laura", age=81)),
    ("Hi, I am Karen. My age is fifty two.", Person(name="Karen", age=52)),
    ("Hi, my name is Lisa and I'm fifteen.", Person(name="Lisa", age=15)),
    # Two sentences with a distracting second number: the label is the speaker's own age.
    ("I'm Susan. My daughter is ten and I am thirty nine.", Person(name="Susan", age=39)),
    (
        "Hello, this is Mark. I'll be fifty next month, so I'm forty nine.",
        Person(name="Mark", age=49),
    ),
)


def _appointment(
    first_name: str,
    service: Service,
    day: date,
    *,
    last_name: str | None = None,
    at: time | None = None,
    urgent: bool = False,
    callback_number: str | None = None,
    symptoms: Sequence[str] = (),
) -> AppointmentRequest:
    """Build one appointment label (keyword-only optional fields keep the table readable)."""
    return AppointmentRequest(
        caller=Caller(first_name=first_name, last_name=last_name),
        service=service,
        date=day,
        time=at,
        urgent=urgent,
        callback_number=callback_number,
        symptoms=list(symptoms),
    )


S = Service
APPOINTMENT_SENTENCES: tuple[tuple[str, AppointmentRequest], ...] = (
    (
        "Hello, this is Sarah Johnson. I'd like a cleaning on the third of March, twenty twenty"
        " seven, at ten thirty a m. My number is five five five, zero one two three.",
        _appointment(
            "Sarah",
            S.CLEANING,
            date(2027, 3, 3),
            last_name="Johnson",
            at=time(10, 30),
            callback_number="5550123",
        ),
    ),
    (
        "Hi, I'm Tom. I need a checkup on April fifth, twenty twenty seven."
        " It's urgent, I have a fever and a cough.",
        _appointment("Tom", S.CHECKUP, date(2027, 4, 5), urgent=True, symptoms=["fever", "cough"]),
    ),
    (
        "Hi, Maria Garcia here. I have a toothache and need a filling on January twelfth,"
        " twenty twenty seven, at two p m.",
        _appointment(
            "Maria",
            S.FILLING,
            date(2027, 1, 12),
            last_name="Garcia",
            at=time(14, 0),
            symptoms=["toothache"],
        ),
    ),
    (
        "It's David. A vaccination on October twentieth, twenty twenty seven, at nine fifteen"
        " a m, please. Call me on five five five, zero one nine eight.",
        _appointment(
            "David", S.VACCINATION, date(2027, 10, 20), at=time(9, 15), callback_number="5550198"
        ),
    ),
    (
        "Emily Brown speaking. I keep getting a headache and would like a consultation on"
        " June eighth, twenty twenty seven.",
        _appointment(
            "Emily", S.CONSULTATION, date(2027, 6, 8), last_name="Brown", symptoms=["headache"]
        ),
    ),
    (
        "This is Michael Smith. Can I book a blood test for February twenty second,"
        " twenty twenty seven, at eight a m?",
        _appointment("Michael", S.BLOOD_TEST, date(2027, 2, 22), last_name="Smith", at=time(8, 0)),
    ),
    (
        "Kevin Miller here. Please book me a cleaning on September fourteenth, twenty twenty"
        " seven, at three thirty p m. It's not urgent.",
        _appointment("Kevin", S.CLEANING, date(2027, 9, 14), last_name="Miller", at=time(15, 30)),
    ),
    (
        "Hi, I'm Anna. I'd like a consultation for my back pain on the first of July, twenty"
        " twenty seven. Call me on five five five, oh one one two.",
        _appointment(
            "Anna",
            S.CONSULTATION,
            date(2027, 7, 1),
            callback_number="5550112",
            symptoms=["back pain"],
        ),
    ),
    (
        "This is Robert Wilson. I lost a filling, it's urgent. Can I come in on May"
        " nineteenth, twenty twenty seven, at one forty five p m?",
        _appointment(
            "Robert", S.FILLING, date(2027, 5, 19), last_name="Wilson", at=time(13, 45), urgent=True
        ),
    ),
    (
        "Hello, this is Karen. I'd like a vaccination on December sixth, twenty twenty seven.",
        _appointment("Karen", S.VACCINATION, date(2027, 12, 6)),
    ),
    (
        "I'm Daniel Lee. I have a cough and a sore throat. Could I get a checkup on August"
        " thirtieth, twenty twenty seven, at four p m?",
        _appointment(
            "Daniel",
            S.CHECKUP,
            date(2027, 8, 30),
            last_name="Lee",
            at=time(16, 0),
            symptoms=["cough", "sore throat"],
        ),
    ),
    (
        "Laura Davis here. I need a blood test on March seventeenth, twenty twenty seven."
        " My number is five five five, zero one six five.",
        _appointment(
            "Laura", S.BLOOD_TEST, date(2027, 3, 17), last_name="Davis", callback_number="5550165"
        ),
    ),
    (
        "This is Peter, it's urgent. I have a bad headache and nausea. A consultation on"
        " April twenty eighth, twenty twenty seven, at noon, please.",
        _appointment(
            "Peter",
            S.CONSULTATION,
            date(2027, 4, 28),
            at=time(12, 0),
            urgent=True,
            symptoms=["headache", "nausea"],
        ),
    ),
    (
        "Hi, Nancy Clark here. A cleaning on January twenty fifth, twenty twenty seven,"
        " please. Call me back at five five five, zero one three nine.",
        _appointment(
            "Nancy", S.CLEANING, date(2027, 1, 25), last_name="Clark", callback_number="5550139"
        ),
    ),
    (
        "Hello, it's George. Just a routine checkup on June fifteenth, twenty twenty seven,"
        " at ten a m. No rush.",
        _appointment("George", S.CHECKUP, date(2027, 6, 15), at=time(10, 0)),
    ),
    (
        "Hi, I'm Mark. I need a vaccination on February ninth, twenty twenty seven, at two"
        " thirty p m. It's urgent, I have a fever.",
        _appointment(
            "Mark",
            S.VACCINATION,
            date(2027, 2, 9),
            at=time(14, 30),
            urgent=True,
            symptoms=["fever"],
        ),
    ),
)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its folder name, its response model and its sentences."""

    name: str
    model: type[BaseModel]
    sentences: tuple[tuple[str, BaseModel], ...]


DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec("person", Person, PERSON_SENTENCES),
    DatasetSpec("appointment", AppointmentRequest, APPOINTMENT_SENTENCES),
)


@dataclass(frozen=True)
class Case:
    """One row to build: which sentence, which voice, which condition, which file."""

    dataset: str
    index: int
    text: str
    label: BaseModel
    voice: Voice
    condition: str
    audio_format: str

    @property
    def id(self) -> str:
        """The row id, e.g. person-0007."""
        return f"{self.dataset}-{self.index + 1:04d}"

    @property
    def file_name(self) -> str:
        """The audio path relative to the dataset folder."""
        return f"audio/{self.id}.{self.audio_format}"


def plan_cases(spec: DatasetSpec) -> list[Case]:
    """Assign every rendering a voice, a condition and a format, deterministically.

    Case k reads sentence k // 2 with voice k mod 4 under condition k mod 3: as 4 and 3
    are coprime, every 12 consecutive cases cover the 12 voice x condition cells once,
    and the two renderings of a sentence differ in both voice and condition. Telephone
    cases are MP3 in the 1st, 3rd, ... block of 12 and 8 kHz WAV in the others, so each
    voice gets both formats.
    """
    cases: list[Case] = []
    n = len(spec.sentences) * RENDERINGS_PER_SENTENCE
    for k in range(n):
        text, label = spec.sentences[k // RENDERINGS_PER_SENTENCE]
        condition = CONDITIONS[k % len(CONDITIONS)]
        fmt = "mp3" if condition == "telephone" and (k // 12) % 2 == 0 else "wav"
        cases.append(Case(spec.name, k, text, label, VOICES[k % len(VOICES)], condition, fmt))
    return cases


# --------------------------------------------------------------------------- label checks

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen"
    " fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINALS = {
    1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 7: "seventh",
    8: "eighth", 9: "ninth", 10: "tenth", 11: "eleventh", 12: "twelfth", 13: "thirteenth",
    14: "fourteenth", 15: "fifteenth", 16: "sixteenth", 17: "seventeenth", 18: "eighteenth",
    19: "nineteenth", 20: "twentieth", 30: "thirtieth",
}  # fmt: skip
_MONTHS = (
    "January February March April May June July August September October November December"
).split()


def number_words(n: int) -> str:
    """Spell 0..99 in words as the sentences do ("forty one")."""
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])


def ordinal_words(n: int) -> str:
    """Spell a day of the month as an ordinal ("twenty second")."""
    if n in _ORDINALS:
        return _ORDINALS[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + " " + _ORDINALS[ones]


def time_phrases(t: time) -> list[str]:
    """Ways the sentences may say a time of day: always with a m / p m, or "noon"."""
    if t == time(12, 0):
        return ["noon"]
    hour = t.hour % 12 or 12
    suffix = "a m" if t.hour < 12 else "p m"
    minute = "" if t.minute == 0 else " " + number_words(t.minute)
    return [f"{number_words(hour)}{minute} {suffix}"]


def normalise_words(text: str) -> str:
    """Lowercase, drop punctuation (keep apostrophes) and join "a m"/"p m" into am/pm."""
    text = re.sub(r"[^a-z' ]+", " ", text.lower())
    text = re.sub(r"\b([ap]) m\b", r"\1m", text)
    return " ".join(text.split())


def check_label(text: str, label: BaseModel) -> list[str]:
    """Return the ways in which a label does not follow from its sentence (empty if none)."""
    spoken = " " + normalise_words(text) + " "
    problems: list[str] = []

    def said(phrase: str) -> bool:
        return f" {normalise_words(phrase)} " in spoken

    if isinstance(label, Person):
        if not said(label.name):
            problems.append(f"name {label.name!r} not spoken")
        if not said(number_words(label.age)):
            problems.append(f"age {label.age} not spoken as {number_words(label.age)!r}")
    elif isinstance(label, AppointmentRequest):
        c = label.caller
        for part in (c.first_name, c.last_name):
            if part is not None and not said(part):
                problems.append(f"caller name {part!r} not spoken")
        if not said(label.service.value):
            problems.append(f"service {label.service.value!r} not spoken")
        month, day = _MONTHS[label.date.month - 1], ordinal_words(label.date.day)
        if not (said(f"{month} {day}") or said(f"the {day} of {month}")):
            problems.append(f"date {label.date} not spoken as month and ordinal day")
        if label.date.year != 2027 or not said("twenty twenty seven"):
            problems.append("year must be 2027 and spoken")
        if label.time is not None and not any(said(p) for p in time_phrases(label.time)):
            problems.append(f"time {label.time} not spoken")
        says_urgent = said("urgent") and not said("not urgent")
        if label.urgent != says_urgent:
            problems.append(f"urgent={label.urgent} but the sentence says otherwise")
        if label.callback_number is not None:
            digits = [_ONES[int(d)] for d in label.callback_number]
            spoken_digits = " ".join(
                w for w in spoken.replace(" oh ", " zero ").split() if w in _ONES[:10]
            )
            if " ".join(digits) not in spoken_digits:
                problems.append(f"callback number {label.callback_number} not spoken")
        elif said("number") or said("call me"):
            problems.append("a number is spoken but callback_number is null")
        for symptom in label.symptoms:
            if symptom not in SYMPTOMS:
                problems.append(f"symptom {symptom!r} outside the vocabulary")
            if not said(symptom):
                problems.append(f"symptom {symptom!r} not spoken")
        for symptom in SYMPTOMS:
            if said(symptom) and symptom not in label.symptoms:
                problems.append(f"symptom {symptom!r} spoken but not labelled")
    return problems


# --------------------------------------------------------------------------- audio


class ToolMissingError(RuntimeError):
    """A required external program (or one of its features) is not available."""


def require_tools() -> None:
    """Fail with a clear message naming the first missing tool or feature."""
    hints = {"flite": "flite", "espeak-ng": "espeak-ng", "sox": "sox"}
    for tool, package in hints.items():
        if shutil.which(tool) is None:
            raise ToolMissingError(
                f"required tool {tool!r} was not found on PATH (Debian: apt-get install {package})"
            )
    voices = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
    for v in VOICES:
        if v.engine == "flite" and v.voice not in voices:
            raise ToolMissingError(f"flite has no voice {v.voice!r} (flite -lv lists: {voices})")
    sox_help = subprocess.run(["sox", "-h"], capture_output=True, text=True).stdout
    formats = re.search(r"AUDIO FILE FORMATS:(.*)", sox_help)
    if formats is None or "mp3" not in formats.group(1).split():
        raise ToolMissingError("sox cannot write MP3 (Debian: apt-get install libsox-fmt-mp3)")


def run(argv: Sequence[str]) -> None:
    """Run a command; raise with its stderr if it fails."""
    proc = subprocess.run(list(argv), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {argv}\n{proc.stderr}")


def synthesise(voice: Voice, text: str, work: Path) -> Path:
    """Speak `text` with `voice` and return a 16 kHz mono 16-bit WAV at PEAK_DBFS peak.

    Leading and trailing silence is trimmed, pauses longer than MAX_PAUSE_S are shortened
    to it (keeps the files small) and PAD_S of silence is padded at both ends, so every
    voice starts and ends alike.
    """
    raw = work / "raw.wav"
    base = work / "base.wav"
    run(voice.command(text, raw))
    run([
        "sox", "-R", str(raw), "-r", str(CLEAN_RATE), "-c", "1", "-b", "16", str(base),
        "silence", "-l", "1", "0.02", "-45d", "-1", str(MAX_PAUSE_S), "-45d",
        "reverse", "silence", "1", "0.02", "-45d", "reverse",
        "pad", str(PAD_S), str(PAD_S), "gain", "-n", str(PEAK_DBFS),
    ])  # fmt: skip
    return base


def telephone(base: Path, out: Path) -> None:
    """Band-limit to 300-3400 Hz, compress mildly and resample to 8 kHz (WAV or MP3)."""
    encoding = ["-C", str(MP3_KBPS)] if out.suffix == ".mp3" else ["-b", "16"]
    run([
        "sox", "-R", str(base), "-r", str(TELEPHONE_RATE), "-c", "1", *encoding, str(out),
        "sinc", "300-3400", "compand", "0.02,0.15", "-60,-60,-30,-20,0,-8", "-2",
        "gain", "-n", str(PEAK_DBFS),
    ])  # fmt: skip


def case_rng(case: Case) -> np.random.Generator:
    """A generator seeded from BASE_SEED, the dataset and the case index only."""
    dataset_number = [d.name for d in DATASETS].index(case.dataset)
    return np.random.default_rng([BASE_SEED, dataset_number, case.index])


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Return `n` samples of unit-power 1/f (pink) noise."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(f), n)
    return noise / np.sqrt(np.mean(noise**2))


def active_power(x: np.ndarray, rate: int) -> float:
    """Mean power over the 20 ms frames within 40 dB of the loudest one (speech only)."""
    frame = rate // 50
    frames = x[: len(x) // frame * frame].reshape(-1, frame)
    power = np.mean(frames**2, axis=1)
    return float(np.mean(power[power >= power.max() * 1e-4]))


def add_noise(base: Path, out: Path, snr_db: float, rng: np.random.Generator) -> None:
    """Mix seeded pink noise into `base` at `snr_db` (against active speech) into 16-bit WAV."""
    pcm, rate = sf.read(base, dtype="int16")
    speech = pcm.astype(np.float64) / 32768.0
    noise = pink_noise(len(speech), rng)
    noise *= np.sqrt(active_power(speech, rate) / 10 ** (snr_db / 10))
    mix = speech + noise
    peak = float(np.max(np.abs(mix)))
    limit = 10 ** (PEAK_DBFS / 20)
    if peak > limit:
        mix *= limit / peak
    sf.write(out, np.round(mix * 32767).astype(np.int16), rate, subtype="PCM_16")


def render_case(case: Case, dataset_dir: Path, work: Path) -> dict[str, str]:
    """Write the audio of one case; return its tags."""
    out = dataset_dir / case.file_name
    base = synthesise(case.voice, case.text, work)
    tags = {
        "speaker": case.voice.speaker,
        "condition": case.condition,
        "voice_engine": case.voice.engine,
        "format": case.audio_format,
    }
    if case.condition == "clean":
        shutil.copyfile(base, out)
    elif case.condition == "telephone":
        telephone(base, out)
    elif case.condition == "noisy":
        rng = case_rng(case)
        snr_db = round(float(rng.uniform(*SNR_RANGE_DB)), 1)
        add_noise(base, out, snr_db, rng)
        tags["snr_db"] = f"{snr_db:.1f}"
    else:
        raise ValueError(f"unknown condition {case.condition!r}")
    return tags


def row_json(row: dict[str, Any]) -> str:
    """Serialise one metadata row as one canonical JSON line (key order as given)."""
    return json.dumps(row, ensure_ascii=False, separators=(", ", ": "))


def build_dataset(spec: DatasetSpec, out_root: Path, log: Callable[[str], None]) -> None:
    """Write `out_root/<name>/metadata.jsonl` and its audio; remove stale audio files."""
    dataset_dir = out_root / spec.name
    audio_dir = dataset_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    cases = plan_cases(spec)
    for case in cases:
        problems = check_label(case.text, case.label)
        if problems:
            raise ValueError(f"{case.id}: label does not follow from the sentence: {problems}")
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="demo-tts-") as tmp:
        for case in cases:
            tags = render_case(case, dataset_dir, Path(tmp))
            row = {
                "file_name": case.file_name,
                "id": case.id,
                "expected": case.label.model_dump(mode="json"),
                "tags": tags,
                "transcript": case.text,
            }
            rows.append(row_json(row))
            log(f"  {case.id} {case.voice.speaker:16s} {case.condition:9s} {case.file_name}")
    wanted = {Path(c.file_name).name for c in cases}
    for stale in sorted(audio_dir.iterdir()):
        if stale.name not in wanted and re.fullmatch(
            rf"{spec.name}-\d{{4}}\.(wav|mp3)", stale.name
        ):
            stale.unlink()
            log(f"  removed stale {stale}")
    (dataset_dir / "metadata.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")


def build(out_root: Path, specs: Iterable[DatasetSpec], quiet: bool = False) -> None:
    """Build every dataset in `specs` under `out_root`."""
    require_tools()

    def log(msg: str) -> None:
        if not quiet:
            print(msg, flush=True)

    for spec in specs:
        log(f"{spec.name}: {len(spec.sentences)} sentences x {RENDERINGS_PER_SENTENCE}")
        build_dataset(spec, out_root, log)


# --------------------------------------------------------------------------- check / verify


def audio_duration(path: Path) -> float:
    """Duration in seconds as soundfile decodes it."""
    info = sf.info(str(path))
    return info.frames / info.samplerate


def check(out_root: Path, specs: Sequence[DatasetSpec]) -> bool:
    """Regenerate into a temp dir and compare with `out_root`; print a report; True if same."""
    ok = True
    with tempfile.TemporaryDirectory(prefix="demo-check-") as tmp:
        fresh_root = Path(tmp)
        build(fresh_root, specs, quiet=True)
        for spec in specs:
            committed, fresh = out_root / spec.name, fresh_root / spec.name
            meta_c, meta_f = committed / "metadata.jsonl", fresh / "metadata.jsonl"
            if not meta_c.exists():
                print(f"{spec.name}: metadata.jsonl MISSING in {committed}")
                ok = False
            elif meta_c.read_bytes() != meta_f.read_bytes():
                print(f"{spec.name}: metadata.jsonl DIFFERS from a fresh build")
                diff = difflib.unified_diff(
                    meta_c.read_text(encoding="utf-8").splitlines(),
                    meta_f.read_text(encoding="utf-8").splitlines(),
                    "committed",
                    "fresh",
                    n=0,
                    lineterm="",
                )
                for line in list(diff)[:12]:
                    print(f"    {line}")
                ok = False
            else:
                print(f"{spec.name}: metadata.jsonl identical")
            names_f = {p.name for p in (fresh / "audio").iterdir()}
            names_c = (
                {p.name for p in (committed / "audio").iterdir()} if committed.exists() else set()
            )
            identical = same_duration = 0
            for name in sorted(names_f | names_c):
                pc, pf = committed / "audio" / name, fresh / "audio" / name
                if name not in names_c:
                    print(f"  audio/{name}: MISSING from {committed / 'audio'}")
                    ok = False
                elif name not in names_f:
                    print(f"  audio/{name}: EXTRA (not produced by the script)")
                    ok = False
                elif pc.read_bytes() == pf.read_bytes():
                    identical += 1
                else:
                    dc, df = audio_duration(pc), audio_duration(pf)
                    if abs(dc - df) <= DURATION_TOLERANCE_S:
                        same_duration += 1
                    else:
                        print(f"  audio/{name}: DIFFERS, duration {dc:.3f}s vs fresh {df:.3f}s")
                        ok = False
            print(
                f"  audio: {identical} byte-identical, {same_duration} differ in bytes but "
                f"match in duration (within {DURATION_TOLERANCE_S}s)"
            )
    print("check: OK" if ok else "check: FAILED (run without --check to regenerate)")
    return ok


def verify(out_root: Path, specs: Sequence[DatasetSpec]) -> bool:
    """Validate every committed row: keys, ids, audio readable, label valid; True if all pass."""
    ok = True
    for spec in specs:
        dataset_dir = out_root / spec.name
        raw = (dataset_dir / "metadata.jsonl").read_bytes()
        errors: list[str] = []
        if not raw.endswith(b"\n"):
            errors.append("metadata.jsonl does not end with a newline")
        ids: list[str] = []
        for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
            row = json.loads(line)
            where = f"line {n} ({row.get('id')})"
            if tuple(row) != ROW_KEYS:
                errors.append(f"{where}: keys {tuple(row)} != {ROW_KEYS}")
            if row_json(row) != line:
                errors.append(f"{where}: not in canonical form")
            ids.append(row["id"])
            path = dataset_dir / row["file_name"]
            try:
                data, _ = sf.read(str(path))
                if len(data) == 0:
                    errors.append(f"{where}: {path} has no samples")
            except Exception as exc:
                errors.append(f"{where}: cannot read {path}: {exc}")
            try:
                label = spec.model.model_validate(row["expected"])
            except Exception as exc:
                errors.append(f"{where}: expected does not validate: {exc}")
            else:
                errors.extend(f"{where}: {p}" for p in check_label(row["transcript"], label))
            tags = row["tags"]
            for key in REQUIRED_TAGS:
                if not isinstance(tags.get(key), str):
                    errors.append(f"{where}: tag {key!r} missing or not a string")
            if not all(isinstance(v, str) for v in tags.values()):
                errors.append(f"{where}: a tag value is not a string")
            if not row["transcript"].strip():
                errors.append(f"{where}: empty transcript")
        if len(set(ids)) != len(ids):
            errors.append("ids are not unique")
        if ids != sorted(ids):
            errors.append("rows are not sorted by id")
        size = sum(p.stat().st_size for p in dataset_dir.rglob("*") if p.is_file())
        print(f"{spec.name}: {len(ids)} rows, {size / 1e6:.2f} MB, {len(errors)} problem(s)")
        for e in errors:
            print(f"  {e}")
        ok = ok and not errors
    return ok


# --------------------------------------------------------------------------- WER


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance between two word lists (substitutions, deletions, insertions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        current = [i]
        for j, h in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def decode_pocketsphinx(path: Path, decoder: Any) -> str:
    """Decode one file with pocketsphinx (resampled to 16 kHz mono 16-bit) and return words."""
    from math import gcd

    from scipy.signal import resample_poly

    data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    x = data.mean(axis=1)
    if rate != CLEAN_RATE:
        g = gcd(rate, CLEAN_RATE)
        x = resample_poly(x, CLEAN_RATE // g, rate // g)
    pcm = (np.clip(x, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def wer_report(out_root: Path, specs: Sequence[DatasetSpec]) -> str:
    """Decode every file with pocketsphinx; return markdown WER tables per condition and speaker."""
    from pocketsphinx import Decoder

    decoder = Decoder(loglevel="FATAL")
    lines: list[str] = []
    for spec in specs:
        dataset_dir = out_root / spec.name
        errs: dict[tuple[str, str], int] = defaultdict(int)
        words: dict[tuple[str, str], int] = defaultdict(int)
        worst: list[tuple[float, str, str]] = []
        for line in (dataset_dir / "metadata.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            ref = normalise_words(row["transcript"]).split()
            hyp = normalise_words(decode_pocketsphinx(dataset_dir / row["file_name"], decoder))
            e = word_errors(ref, hyp.split())
            key = (row["tags"]["speaker"], row["tags"]["condition"])
            errs[key] += e
            words[key] += len(ref)
            worst.append((e / len(ref), row["id"], hyp))
        speakers = [v.speaker for v in VOICES]

        def cell(
            keys: list[tuple[str, str]],
            errs: dict[tuple[str, str], int] = errs,
            words: dict[tuple[str, str], int] = words,
        ) -> str:
            n = sum(words[k] for k in keys)
            return f"{100 * sum(errs[k] for k in keys) / n:.1f}" if n else "-"

        lines.append(f"### {spec.name}: WER % (pocketsphinx 5.1.1, default en-us model)")
        lines.append("")
        lines.append("| speaker | " + " | ".join(CONDITIONS) + " | all |")
        lines.append("|---|" + "---:|" * (len(CONDITIONS) + 1))
        for s in speakers:
            row_cells = [cell([(s, c)]) for c in CONDITIONS]
            lines.append(
                f"| {s} | " + " | ".join(row_cells) + f" | {cell([(s, c) for c in CONDITIONS])} |"
            )
        all_cells = [cell([(s, c) for s in speakers]) for c in CONDITIONS]
        every = cell([(s, c) for s in speakers for c in CONDITIONS])
        lines.append("| **all** | " + " | ".join(all_cells) + f" | {every} |")
        lines.append("")
        worst.sort(key=lambda t: (-t[0], t[1]))
        lines.append("Highest per-file WER: " + ", ".join(f"{i} {w:.0%}" for w, i, _ in worst[:3]))
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "datasets",
                        help="root folder of the datasets (default: %(default)s)")  # fmt: skip
    parser.add_argument("--dataset", choices=[d.name for d in DATASETS], action="append",
                        help="only this dataset (repeatable; default: all)")  # fmt: skip
    parser.add_argument("--check", action="store_true",
                        help="regenerate in a temp dir and compare with --out; write nothing")  # fmt: skip
    parser.add_argument("--verify", action="store_true",
                        help="validate the rows and audio under --out; write nothing")  # fmt: skip
    parser.add_argument("--wer", action="store_true",
                        help="print pocketsphinx word error rates of the audio under --out")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="print less")
    args = parser.parse_args(argv)
    specs = [d for d in DATASETS if args.dataset is None or d.name in args.dataset]
    try:
        if args.check:
            return 0 if check(args.out, specs) else 1
        if args.verify or args.wer:
            ok = verify(args.out, specs) if args.verify else True
            if args.wer:
                print(wer_report(args.out, specs))
            return 0 if ok else 1
        build(args.out, specs, quiet=args.quiet)
        return 0 if verify(args.out, specs) else 1
    except ToolMissingError as exc:
        print(f"make_demo_datasets: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
