"""Labeled audio datasets in the Hugging Face "audiofolder" layout: load, validate, iterate."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

AUDIO_SUFFIXES: Mapping[str, str] = {".wav": "wav", ".mp3": "mp3"}
METADATA_FILE = "metadata.jsonl"
_KNOWN_KEYS = {"file_name", "id", "expected", "tags", "transcript", "must_pass"}


class DatasetError(ValueError):
    """A dataset row or file that cannot be used, with the file, line and field that is wrong."""

    def __init__(self, path: Path, line: int | None, field: str | None, message: str) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.message = message
        where = str(path) + (f":{line}" if line is not None else "")
        what = f" field {field!r}:" if field else ":"
        super().__init__(f"{where}:{what} {message}")


@dataclass(frozen=True)
class Case:
    """One labeled recording: its audio file, the expected record and its tags."""

    id: str
    audio_path: Path
    expected: BaseModel
    tags: Mapping[str, str] = field(default_factory=dict)
    transcript: str | None = None
    must_pass: bool = False
    line: int = 0

    @property
    def audio_format(self) -> str:
        """The audio container, `wav` or `mp3`."""
        return AUDIO_SUFFIXES[self.audio_path.suffix.lower()]

    def read_audio(self) -> bytes:
        """The audio file's bytes, read now (cases do not hold audio in memory)."""
        return self.audio_path.read_bytes()


@dataclass(frozen=True)
class Dataset:
    """A validated set of cases bound to one response model."""

    name: str
    root: Path
    response_model: type[BaseModel]
    cases: tuple[Case, ...]

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    def __len__(self) -> int:
        return len(self.cases)

    @property
    def has_transcripts(self) -> bool:
        """Whether every case carries a reference transcript."""
        return bool(self.cases) and all(c.transcript for c in self.cases)

    def filter(self, predicate: Callable[[Case], bool], name: str | None = None) -> Dataset:
        """A dataset of the cases that satisfy `predicate` (e.g. one condition or speaker)."""
        kept = tuple(c for c in self.cases if predicate(c))
        if not kept:
            raise DatasetError(self.root / METADATA_FILE, None, None, "the filter keeps no case")
        return Dataset(
            name=name or self.name, root=self.root, response_model=self.response_model, cases=kept
        )

    def case(self, case_id: str) -> Case:
        """The case with this id."""
        for c in self.cases:
            if c.id == case_id:
                return c
        raise KeyError(case_id)


def _looks_like(audio: Path) -> bool:
    with audio.open("rb") as fh:
        head = fh.read(12)
    if audio.suffix.lower() == ".wav":
        return head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE"
    return head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def _pydantic_field(loc: tuple[Any, ...]) -> str:
    return "expected" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def load_dataset(
    path: str | Path, response_model: type[BaseModel], name: str | None = None
) -> Dataset:
    """Load `<path>/metadata.jsonl`, validating every row before returning anything."""
    given = Path(path)
    meta = given if given.is_file() else given / METADATA_FILE
    root = meta.parent
    if not meta.is_file():
        raise DatasetError(
            meta, None, None, f"no {METADATA_FILE} found (expected the audiofolder layout)"
        )
    cases: list[Case] = []
    seen: dict[str, int] = {}
    with meta.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            cases.append(_parse_row(meta, root, lineno, raw, response_model, seen))
    if not cases:
        raise DatasetError(meta, None, None, "the dataset has no rows")
    return Dataset(
        name=name or root.name, root=root, response_model=response_model, cases=tuple(cases)
    )


def _parse_row(
    meta: Path,
    root: Path,
    lineno: int,
    raw: str,
    response_model: type[BaseModel],
    seen: dict[str, int],
) -> Case:
    try:
        row = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            meta, lineno, None, f"unreadable JSON ({exc.msg} at column {exc.colno})"
        ) from None
    if not isinstance(row, dict):
        raise DatasetError(meta, lineno, None, f"expected a JSON object, got {type(row).__name__}")
    for key in ("file_name", "id", "expected"):
        if key not in row:
            raise DatasetError(meta, lineno, key, "missing required key")
    unknown = sorted(set(row) - _KNOWN_KEYS)
    if unknown:
        raise DatasetError(
            meta, lineno, unknown[0], f"unknown key (known: {', '.join(sorted(_KNOWN_KEYS))})"
        )
    case_id = row["id"]
    if not isinstance(case_id, str) or not case_id.strip():
        raise DatasetError(meta, lineno, "id", "must be a non-empty string")
    if case_id in seen:
        raise DatasetError(
            meta, lineno, "id", f"duplicate id {case_id!r} (first on line {seen[case_id]})"
        )
    seen[case_id] = lineno
    file_name = row["file_name"]
    if not isinstance(file_name, str) or not file_name:
        raise DatasetError(meta, lineno, "file_name", "must be a non-empty relative path")
    audio = (root / file_name).resolve()
    if audio.suffix.lower() not in AUDIO_SUFFIXES:
        raise DatasetError(
            meta,
            lineno,
            "file_name",
            f"unsupported audio format {audio.suffix or '(none)'!r} in {file_name!r}; use .wav or .mp3",
        )
    if not audio.is_file():
        raise DatasetError(meta, lineno, "file_name", f"audio file not found: {root / file_name}")
    if audio.stat().st_size == 0:
        raise DatasetError(meta, lineno, "file_name", f"audio file is empty: {root / file_name}")
    if not _looks_like(audio):
        raise DatasetError(
            meta,
            lineno,
            "file_name",
            f"{root / file_name} is not a {AUDIO_SUFFIXES[audio.suffix.lower()]} file (its header does not match)",
        )
    try:
        expected = response_model.model_validate(row["expected"])
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DatasetError(
            meta,
            lineno,
            _pydantic_field(tuple(first["loc"])),
            f"label does not validate against {response_model.__name__}: {first['msg']}"
            + (f" ({len(exc.errors())} errors)" if len(exc.errors()) > 1 else ""),
        ) from None
    tags = row.get("tags", {}) or {}
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise DatasetError(meta, lineno, "tags", "must be an object of strings")
    transcript = row.get("transcript")
    if transcript is not None and not isinstance(transcript, str):
        raise DatasetError(meta, lineno, "transcript", "must be a string")
    must_pass = row.get("must_pass", False)
    if not isinstance(must_pass, bool):
        raise DatasetError(meta, lineno, "must_pass", "must be true or false")
    return Case(
        id=case_id,
        audio_path=audio,
        expected=expected,
        tags=dict(tags),
        transcript=transcript,
        must_pass=must_pass,
        line=lineno,
    )
