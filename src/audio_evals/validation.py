"""`audio-evals validate`: every check of the loader plus decoding every clip, all problems at once.

The loader's checks (JSON, keys, unique ids, labels against the model with unknown keys refused,
paths inside the folder, the audio header, the API's size and duration limits) run on every row;
then each clip whose path and header are fine is decoded in full: a clip that does not decode, or
whose decoded length, sample rate or channel count disagrees with its header, is a problem too.
Remote audio is fetched into the cache first (`remote_audio`), and every row's `sha256` is checked.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel
from tabulate import tabulate

from .audio import AudioFileError, AudioInfo, decode, probe
from .datasets import read_dataset
from .problems import Problem, ProblemKind

# A decoded length may differ a little from a header's (MP3 encoder delay, AAC padding).
_LENGTH_TOLERANCE_S = 0.1
_LENGTH_TOLERANCE = 0.05


@dataclass
class ValidationReport:
    """Every problem found in a dataset, and what its usable cases hold."""

    metadata: Path
    problems: list[Problem]
    cases: int
    rows_with_audio: int
    formats: Counter[str] = field(default_factory=Counter)
    sample_rates: Counter[int] = field(default_factory=Counter)
    channels: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the dataset has no problem."""
        return not self.problems

    def summary(self) -> str:
        """One line about the cases: count, total duration, formats, rates and channels."""

        def counts(counter: Counter) -> str:
            return ", ".join(f"{k} x{n}" for k, n in sorted(counter.items(), key=str))

        return (
            f"{self.cases} cases, {self.seconds:.1f} s of audio; formats {counts(self.formats)}; "
            f"sample rates {counts(self.sample_rates)}; channels {counts(self.channels)}"
        )


def validate_dataset(
    path: str | Path, model: type[BaseModel], *, progress: bool | None = None
) -> ValidationReport:
    """Check every row and decode every clip of the dataset at `path`; never raises for data."""
    from .remote_audio import ensure_audio

    loaded = read_dataset(path, model)
    report = ValidationReport(loaded.meta, list(loaded.problems), len(loaded.cases), 0)
    by_line = {c.line: c for c in loaded.cases}
    fetched = ensure_audio(loaded.cases, loaded.settings, loaded.meta, progress=progress)
    report.problems += fetched.problems()
    clips = dict(loaded.audio)
    urls: dict[int, str] = {}  # a remote clip is named by its URL, not its place in the cache
    for status in fetched.statuses:
        if status.error is not None:
            clips.pop(status.case.line, None)
        elif status.case.remote is not None:
            clips[status.case.line] = status.case.audio_path
            urls[status.case.line] = status.case.remote.shown
    for line, audio in sorted(clips.items()):
        report.rows_with_audio += 1
        case = by_line.get(line)
        try:
            info = case.audio if case is not None and case.audio is not None else probe(audio)
            problem = _decode_problem(audio, info)
        except AudioFileError as exc:
            problem = f"{audio}: {exc}"
        if problem and line in urls:
            problem = problem.replace(str(audio), urls[line])
        if problem:
            report.problems.append(
                Problem(loaded.meta, line, "file_name", ProblemKind.AUDIO, problem)
            )
        elif case is not None:
            report.formats[str(info.format)] += 1
            report.sample_rates[info.sample_rate] += 1
            report.channels[info.channels] += 1
            report.seconds += info.duration
    report.problems.sort(key=lambda p: (str(p.path), p.line or 0))
    return report


def _decode_problem(audio: Path, info: AudioInfo) -> str | None:
    samples, rate = decode(audio)
    decoded = len(samples) / rate
    if rate != info.sample_rate:
        return f"{audio}: the header says {info.sample_rate} Hz, the audio decodes at {rate} Hz"
    if samples.shape[1] != info.channels:
        return (
            f"{audio}: the header says {info.channels} channels, the audio decodes to "
            f"{samples.shape[1]}"
        )
    gap = abs(decoded - info.duration)
    if gap > _LENGTH_TOLERANCE_S and gap > _LENGTH_TOLERANCE * info.duration:
        return (
            f"{audio}: the header says {info.duration:.2f} s, the audio decodes to "
            f"{decoded:.2f} s (a truncated or damaged file?)"
        )
    return None


def problems_table(problems: list[Problem]) -> str:
    """The problems as a plain-text table: file, line, field, kind and what is wrong."""
    rows = [
        [_shown(p.path), p.line if p.line is not None else "", p.field or "", p.kind, p.message]
        for p in problems
    ]
    return tabulate(rows, headers=["file", "line", "field", "kind", "problem"], tablefmt="simple")


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
