"""The dataset loader: audiofolder layout, and errors that name file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from audio_evals.datasets import DatasetError, load_dataset

from .conftest import write_tone


class Person(BaseModel):
    name: str
    age: int


def make(tmp_path: Path, rows: list[object], audio: tuple[str, ...] = ("a.wav", "b.wav")) -> Path:
    root = tmp_path / "ds"
    for name in audio:
        write_tone(root / "audio" / name)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def row(i: str = "p1", file: str = "audio/a.wav", **extra: object) -> dict[str, object]:
    return {"file_name": file, "id": i, "expected": {"name": "Jason", "age": 20}, **extra}


def test_loads_valid_rows_with_tags_and_transcript(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        [
            row("p1", tags={"speaker": "slt", "condition": "clean"}, transcript="my name is jason"),
            row("p2", "audio/b.wav", must_pass=True),
        ],
    )
    ds = load_dataset(root, Person)
    assert [c.id for c in ds] == ["p1", "p2"]
    assert ds.cases[0].expected == Person(name="Jason", age=20)
    assert ds.cases[0].tags == {"speaker": "slt", "condition": "clean"}
    assert ds.cases[0].transcript == "my name is jason"
    assert ds.cases[1].must_pass and ds.cases[1].line == 2
    assert ds.cases[0].audio_format == "wav"
    assert not ds.has_transcripts


@pytest.mark.parametrize(
    ("rows", "line", "field", "words"),
    [
        ([row("p1", "audio/missing.wav")], 1, "file_name", "audio file not found"),
        ([row("p1"), row("p1", "audio/b.wav")], 2, "id", "duplicate id 'p1' (first on line 1)"),
        (
            [
                row("p1"),
                {**row("p2", "audio/b.wav"), "expected": {"name": "Jason", "age": "twenty"}},
            ],
            2,
            "expected.age",
            "does not validate against Person",
        ),
        ([row("p1", "audio/a.flac")], 1, "file_name", "unsupported audio format '.flac'"),
        ([row("p1"), '{"file_name": "audio/b.wav", "id": '], 2, None, "unreadable JSON"),
        ([{"id": "p1", "expected": {}}], 1, "file_name", "missing required key"),
        ([row("p1", speaker="x")], 1, "speaker", "unknown key"),
        ([row("p1", tags={"speaker": 3})], 1, "tags", "object of strings"),
    ],
)
def test_errors_name_file_line_and_field(
    tmp_path: Path, rows: list[object], line: int, field: str | None, words: str
) -> None:
    root = make(tmp_path, rows)
    with pytest.raises(DatasetError) as err:
        load_dataset(root, Person)
    assert err.value.line == line
    assert err.value.field == field
    assert words in str(err.value)
    assert str(root / "metadata.jsonl") in str(err.value)


def test_audio_whose_header_does_not_match_is_refused(tmp_path: Path) -> None:
    root = make(tmp_path, [row("p1", "audio/c.wav")])
    (root / "audio" / "c.wav").write_bytes(b"ID3\x03\x00not a wav at all")
    with pytest.raises(DatasetError, match=r"is not a wav file"):
        load_dataset(root, Person)


def test_missing_metadata_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no metadata.jsonl"):
        load_dataset(tmp_path / "nothing", Person)
