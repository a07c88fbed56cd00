"""`synth`: render a spec of labelled utterances into a dataset folder with text-to-speech voices."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audio_tools import ToolError
from .cassettes import CannotOverwriteExistingCassetteException, RecordMode, open_cassette
from .dataset_files import audio_file_name, writing_dataset
from .failures import exception_chain
from .problems import ProblemList
from .synth_spec import SynthSpec, Utterance, load_spec
from .tts import (
    OpenAISpeech,
    TtsEngine,
    Voice,
    check_local_voices,
    clean_speech,
    speak_local,
    write_openai_pcm,
)

CLEAN_CONDITION = "clean"
SYNTH_FORMAT = "wav"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"


@dataclass(frozen=True)
class PlannedRow:
    """One row to render: its id, its utterance and the voice that reads it."""

    id: str
    utterance: Utterance
    voice: Voice

    @property
    def file_name(self) -> str:
        """The audio path relative to the dataset folder."""
        return audio_file_name(self.id, SYNTH_FORMAT)

    def row(self) -> dict[str, Any]:
        """The metadata row: file_name, id, expected, tags, transcript (and must_pass if given)."""
        tags = {
            "speaker": self.voice.speaker,
            "condition": CLEAN_CONDITION,
            "voice_engine": self.voice.engine.value,
            "format": SYNTH_FORMAT,
            **self.utterance.tags,
        }
        row: dict[str, Any] = {
            "file_name": self.file_name,
            "id": self.id,
            "expected": self.utterance.expected,
            "tags": tags,
            "transcript": self.utterance.text,
        }
        if self.utterance.must_pass is not None:
            row["must_pass"] = self.utterance.must_pass
        return row


@dataclass(frozen=True)
class SynthResult:
    """What `synth` wrote."""

    out: Path
    rows: int
    voices: tuple[str, ...]
    cassette: Path | None


def plan_rows(spec: SynthSpec, name: str) -> list[PlannedRow]:
    """Row k reads utterance k // renderings with voice k mod len(voices); ids `<name>-0001`, ..."""
    n = len(spec.utterances) * spec.renderings
    width = max(4, len(str(n)))
    planned = []
    for k in range(n):
        utterance = spec.utterances[k // spec.renderings]
        row_id = utterance.id or f"{name}-{k + 1:0{width}d}"
        planned.append(PlannedRow(row_id, utterance, spec.voices[k % len(spec.voices)]))
    problems = ProblemList()
    seen: dict[str, PlannedRow] = {}
    for row in planned:
        if row.id in seen:
            first = seen[row.id].utterance
            problems.add(
                row.utterance.source,
                row.utterance.line,
                "id",
                f"{row.utterance.origin}: id {row.id!r} is also the id of {first.origin}",
            )
        seen.setdefault(row.id, row)
    problems.raise_if_any()
    return planned


def default_cassette(spec_path: Path) -> Path:
    """Where a spec's OpenAI speech calls are recorded: beside it, `<spec>.tts.yaml`."""
    return spec_path.with_name(spec_path.name.rsplit(".", 1)[0] + ".tts.yaml")


def _cassette_miss(exc: BaseException) -> bool:
    return any(
        isinstance(e, CannotOverwriteExistingCassetteException) for e in exception_chain(exc)
    )


def _fetch_openai(
    requests: Sequence[tuple[Voice, str]],
    *,
    model: str,
    base_url: str | None,
    api_key_env: str,
    cassette: Path,
    record_mode: str,
    concurrency: int,
) -> dict[tuple[Voice, str], bytes]:
    """The PCM speech of each (voice, text), through the openai SDK inside the vcrpy cassette."""
    if record_mode not in set(RecordMode):
        raise ValueError(
            f"unknown record mode {record_mode!r}; choose from {', '.join(RecordMode)}"
        )
    key = os.environ.get(api_key_env)
    if record_mode == "none" and not cassette.is_file():
        raise ToolError(
            f"no cassette {cassette} to replay the OpenAI speech calls from; record it with "
            f"--record-mode once ({api_key_env} set, or --base-url for an OpenAI-compatible server)"
        )
    may_record = record_mode in ("all", "rewrite", "new_episodes") or (
        record_mode == "once" and not cassette.is_file()
    )
    if may_record and not key and base_url is None:
        raise ToolError(
            f"recording the OpenAI speech calls into {cassette} needs an API key in {api_key_env} "
            "(or --base-url for an OpenAI-compatible server)"
        )
    speech = OpenAISpeech(
        model=model,
        base_url=base_url,
        api_key=key or "no-key-replay-only",
        concurrency=concurrency,
        max_retries=3 if may_record else 0,  # a replay miss is final: no retries with backoff
    )
    try:
        with open_cassette(cassette, record_mode):
            audio = speech.speak_all([(v.name, t) for v, t in requests])
    except Exception as exc:
        if _cassette_miss(exc):
            raise ToolError(
                f"cassette {cassette} has no recording of a speech call this spec makes "
                f"(record mode {record_mode}); record the new calls with --record-mode new_episodes"
            ) from None
        import openai

        if isinstance(exc, openai.APIError):
            raise ToolError(f"the speech endpoint failed: {type(exc).__name__}: {exc}") from None
        raise
    return dict(zip(requests, audio, strict=True))


def synth(
    spec: SynthSpec | str | Path,
    out: str | Path,
    *,
    force: bool = False,
    jobs: int | None = None,
    base_url: str | None = None,
    api_key_env: str = DEFAULT_API_KEY_ENV,
    cassette: str | Path | None = None,
    record_mode: str = "once",
    tts_model: str | None = None,
    concurrency: int = 4,
) -> SynthResult:
    """Render every utterance of `spec` with its voices into the dataset folder `out`."""
    if not isinstance(spec, SynthSpec):
        spec = load_spec(spec)
    out = Path(out)
    planned = plan_rows(spec, spec.name or spec.path.name.split(".")[0])
    local = sorted({r.voice for r in planned if r.voice.engine != TtsEngine.OPENAI}, key=str)
    check_local_voices(local)
    groups: dict[tuple[Voice, str], list[PlannedRow]] = {}
    for row in planned:
        groups.setdefault((row.voice, row.utterance.text), []).append(row)
    remote = [g for g in groups if g[0].engine == TtsEngine.OPENAI]
    cassette_path = None
    pcm: dict[tuple[Voice, str], bytes] = {}
    if remote:
        cassette_path = Path(cassette) if cassette else default_cassette(spec.path)
        pcm = _fetch_openai(
            remote,
            model=tts_model or spec.tts_model,
            base_url=base_url,
            api_key_env=api_key_env,
            cassette=cassette_path,
            record_mode=record_mode,
            concurrency=concurrency,
        )
    with writing_dataset(out, force=force) as writer, tempfile.TemporaryDirectory() as tmp:
        targets = {
            g: [writer.path_for(r.file_name, r.id) for r in rows] for g, rows in groups.items()
        }

        def render(index: int, group: tuple[Voice, str]) -> None:
            voice, text = group
            raw = Path(tmp) / f"raw-{index}.wav"
            if voice.engine == TtsEngine.OPENAI:
                write_openai_pcm(pcm[group], raw)
            else:
                speak_local(voice, text, raw)
            first, *others = targets[group]
            clean_speech(raw, first)
            for other in others:
                shutil.copyfile(first, other)

        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
            for done in [pool.submit(render, i, g) for i, g in enumerate(groups)]:
                done.result()
        for row in planned:
            writer.add_row(row.row())
    return SynthResult(
        out=out,
        rows=len(planned),
        voices=tuple(str(v) for v in dict.fromkeys(r.voice for r in planned)),
        cassette=cassette_path,
    )
