"""The dataset loader: audiofolder layout, and errors that name file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field
from scipy.signal import resample_poly

from audio_evals.datasets import DatasetError, load_dataset
from audio_evals.problems import ProblemKind

from .conftest import shared_path, write_tone


class Person(BaseModel):
    name: str
    age: int


def make(
    tmp_path: Path, rows: list[object], audio: tuple[str, ...] = ("a.wav", "b.wav", "a.xyz")
) -> Path:
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
        ([row("p1", "audio/a.xyz")], 1, "file_name", "unsupported audio format '.xyz'"),
        ([row("p1"), '{"file_name": "audio/b.wav", "id": '], 2, None, "unreadable JSON"),
        ([{"id": "p1", "expected": {}}], 1, "file_name", "missing required key"),
        ([row("p1", speaker="x")], 1, "speaker", "unknown key"),
        ([{**row("p1"), "id": None}], 1, "id", "must be a non-empty string"),
        ([row("p1", None)], 1, "file_name", "must be a non-empty relative path"),
        ([row("p1", tags={"speaker": 3})], 1, "tags.speaker", "tag values must be strings"),
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
    with pytest.raises(DatasetError, match=r"named '.wav' but its header says a mp3 file"):
        load_dataset(root, Person)


def test_missing_metadata_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no metadata.jsonl"):
        load_dataset(tmp_path / "nothing", Person)


class Caller(BaseModel):
    first_name: str
    phone: str | None = None


class Callback(BaseModel):
    caller: Caller
    callback_number: str | None = None
    items: list[Caller] = []


def callback_row(i: str, expected: dict[str, object], file: str = "audio/a.wav") -> dict:
    return {"file_name": file, "id": i, "expected": expected}


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        [
            row("p1", "audio/missing.wav"),
            {**row("p2", "audio/b.wav"), "expected": {"name": 3, "age": "x"}},
            row("p1", "audio/b.wav", speaker="x"),
            "not json",
            row("p4"),
        ],
    )
    with pytest.raises(DatasetError) as err:
        load_dataset(root, Person)
    found = [(p.line, p.field, p.kind) for p in err.value.problems]
    assert found == [
        (1, "file_name", ProblemKind.AUDIO),
        (2, "expected.name", ProblemKind.LABEL),
        (2, "expected.age", ProblemKind.LABEL),
        (3, "speaker", ProblemKind.UNKNOWN_KEY),
        (3, "id", ProblemKind.DUPLICATE_ID),
        (4, None, ProblemKind.JSON),
    ]
    # the first problem stays in the compatibility attributes; the message lists them all
    assert (err.value.line, err.value.field) == (1, "file_name")
    assert "6 problems in the dataset" in str(err.value)
    assert str(err.value).count(str(root / "metadata.jsonl")) == 6


def test_an_unknown_label_key_is_an_error_not_a_null(tmp_path: Path) -> None:
    # before: callback_numbr was dropped, callback_number became None and scored as correct
    root = make(
        tmp_path,
        [
            callback_row("c1", {"caller": {"first_name": "Ana"}, "callback_numbr": "555"}),
            callback_row(
                "c2",
                {"caller": {"first_name": "Bo", "fone": "1"}, "items": [{"first_nam": "x"}]},
                "audio/b.wav",
            ),
        ],
    )
    with pytest.raises(DatasetError) as err:
        load_dataset(root, Callback)
    assert [(p.line, p.field, p.kind) for p in err.value.problems] == [
        (1, "expected.callback_numbr", ProblemKind.UNKNOWN_LABEL),
        (2, "expected.caller.fone", ProblemKind.UNKNOWN_LABEL),
        (2, "expected.items[0].first_nam", ProblemKind.UNKNOWN_LABEL),
        (2, "expected.items[0].first_name", ProblemKind.LABEL),
    ]
    assert "Callback has no field 'callback_numbr'" in str(err.value)


def test_unknown_keys_inside_lists_of_models_are_found(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        [
            callback_row(
                "c1", {"caller": {"first_name": "Ana"}, "items": [{"first_name": "x", "fon": "1"}]}
            )
        ],
    )
    with pytest.raises(DatasetError) as err:
        load_dataset(root, Callback)
    assert err.value.field == "expected.items[0].fon"


def test_aliases_and_models_that_allow_extra_keys(tmp_path: Path) -> None:
    class Aliased(BaseModel):
        model_config = ConfigDict(extra="allow")
        name: str = Field(alias="fullName")

    root = make(tmp_path, [callback_row("a1", {"fullName": "Ana", "nickname": "A"})])
    assert load_dataset(root, Aliased).cases[0].expected.name == "Ana"

    class AliasOnly(BaseModel):
        name: str = Field(alias="fullName")
        age: int = 0

    root = make(tmp_path / "2", [callback_row("a1", {"fullName": "Ana", "name": "x"})])
    with pytest.raises(DatasetError) as err:  # "name" is ignored by pydantic here: refused
        load_dataset(root, AliasOnly)
    assert err.value.field == "expected.name"


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_paths_that_leave_the_folder_are_refused_unless_allowed(tmp_path: Path, kind: str) -> None:
    outside = write_tone(tmp_path / "outside" / "x.wav")
    root = make(tmp_path, [])
    if kind == "dotdot":
        file_name = "../outside/x.wav"
    elif kind == "absolute":
        file_name = str(outside)
    else:
        (root / "audio" / "link.wav").symlink_to(outside)
        file_name = "audio/link.wav"
    (root / "metadata.jsonl").write_text(json.dumps(row("p1", file_name)) + "\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(root, Person)
    assert (err.value.line, err.value.field) == (1, "file_name")
    assert err.value.problems[0].kind == ProblemKind.PATH
    assert "leads outside the dataset folder" in str(err.value)
    assert "allow_outside_paths = true in dataset.toml" in str(err.value)
    (root / "dataset.toml").write_text("allow_outside_paths = true\n")
    ds = load_dataset(root, Person)
    assert ds.cases[0].audio_path.resolve() == outside.resolve()
    assert ds.settings.allow_outside_paths


def test_paths_inside_the_folder_through_dotdot_and_symlinks_are_fine(tmp_path: Path) -> None:
    root = make(tmp_path, [row("p1", "audio/../audio/a.wav"), row("p2", "audio/in.wav")])
    (root / "audio" / "in.wav").symlink_to(root / "audio" / "b.wav")
    assert [c.id for c in load_dataset(root, Person)] == ["p1", "p2"]


def test_dataset_toml_is_strict(tmp_path: Path) -> None:
    root = make(tmp_path, [row("p1")])
    (root / "dataset.toml").write_text(
        'allow_outside_path = true\nallow_outside_paths = "yes"\n[limits]\nmax_bytes = -1\nmax_sec = 3\n'
    )
    with pytest.raises(DatasetError) as err:
        load_dataset(root, Person)
    assert [(p.path.name, p.field) for p in err.value.problems] == [
        ("dataset.toml", "allow_outside_path"),
        ("dataset.toml", "allow_outside_paths"),
        ("dataset.toml", "limits.max_sec"),
        ("dataset.toml", "limits.max_bytes"),
    ]
    (root / "dataset.toml").write_text("allow_outside_paths = [\n")
    with pytest.raises(DatasetError, match="unreadable TOML"):
        load_dataset(root, Person)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"file_name": "audio/a.wav", "id": "caf\xe9"}', "not UTF-8 text (byte 0xe9 at column"),
        (b'{"file_name": "audio/a.wav",\x00 "id": "p"}', "a NUL byte at column 29"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deep"),
        (b'{"id": "p", "n": ' + b"9" * 5000 + b"}", "unreadable JSON value (Exceeds the limit"),
    ],
    ids=["latin-1", "nul", "deep", "long-int"],
)
def test_hostile_lines_name_file_and_line(tmp_path: Path, raw: bytes, words: str) -> None:
    # before: UnicodeDecodeError, RecursionError and ValueError ended in raw tracebacks
    root = make(tmp_path, [row("p1")])
    with (root / "metadata.jsonl").open("ab") as fh:
        fh.write(raw + b"\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(root, Person)
    assert (err.value.path, err.value.line) == (root / "metadata.jsonl", 2)
    assert words in str(err.value)


@pytest.mark.parametrize(
    ("file_name", "words"),
    [
        ("audio/a\u0000.wav", "contains a NUL character"),
        ("audio/" + "x" * 300 + ".wav", "file name too long"),
        ("audio/loop.wav", "symlink loop"),
    ],
    ids=["nul", "too-long", "loop"],
)
def test_hostile_file_names_name_file_line_and_key(
    tmp_path: Path, file_name: str, words: str
) -> None:
    root = make(tmp_path, [row("p1", file_name)])
    (root / "audio" / "loop.wav").symlink_to(root / "audio" / "loop.wav")
    with pytest.raises(DatasetError) as err:
        load_dataset(root, Person)
    assert (err.value.line, err.value.field) == (1, "file_name")
    assert words in str(err.value)


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    root = make(tmp_path, [row("p1")])
    meta = root / "metadata.jsonl"
    meta.write_bytes(b"\xef\xbb\xbf" + meta.read_bytes())
    assert [c.id for c in load_dataset(root, Person)] == ["p1"]


def test_a_schema_reference_is_accepted_and_checked(tmp_path: Path) -> None:
    root = make(tmp_path, [{"$schema": "metadata.schema.json", **row("p1")}])
    assert len(load_dataset(root, Person)) == 1
    root = make(tmp_path / "2", [{"$schema": 3, **row("p1")}])
    with pytest.raises(DatasetError, match="must be a string"):
        load_dataset(root, Person)


def test_a_hugging_face_metadata_csv_says_csv_is_not_loaded_and_how_to_import(
    tmp_path: Path,
) -> None:
    root = tmp_path / "hf"
    write_tone(root / "a.wav")
    (root / "metadata.csv").write_text("file_name,name,age\na.wav,Ana,30\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(root, Person)
    message = str(err.value)
    assert "found metadata.csv" in message and "CSV labels are not loaded directly" in message
    assert f"audio-evals import {root / 'metadata.csv'} -o" in message
    with pytest.raises(DatasetError, match="CSV labels are not loaded directly"):
        load_dataset(root / "metadata.csv", Person)


def _speech(tmp_path: Path, name: str, **kwargs: object) -> Path:
    """The real spoken words of shared/ (english.wav, "one two three") written as `name`."""
    samples, rate = sf.read(shared_path("real-speech", "speech_recognition", "english.wav"))
    if kwargs.get("subtype") == "OPUS":  # Opus runs at 48 kHz
        samples, rate = resample_poly(samples, 160, 147), 48000
    path = tmp_path / "ds" / "audio" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, **kwargs)
    return path


@pytest.mark.parametrize(
    ("name", "kwargs", "fmt", "codec"),
    [
        ("s.flac", {}, "flac", "PCM_16"),
        ("s.ogg", {"format": "OGG", "subtype": "VORBIS"}, "ogg", "VORBIS"),
        ("s.opus", {"format": "OGG", "subtype": "OPUS"}, "ogg", "OPUS"),
        ("s.aiff", {}, "aiff", "PCM_16"),
        ("s.wav", {"subtype": "PCM_24"}, "wav", "PCM_24"),
    ],
)
def test_flac_ogg_opus_aiff_and_any_wav_load(
    tmp_path: Path, name: str, kwargs: dict, fmt: str, codec: str
) -> None:
    path = _speech(tmp_path, name, **kwargs)
    root = path.parent.parent
    (root / "metadata.jsonl").write_text(json.dumps(row("p1", f"audio/{name}")) + "\n")
    case = load_dataset(root, Person).cases[0]
    assert case.audio_format == fmt
    assert case.audio is not None and case.audio.codec == codec
    assert case.audio.duration == pytest.approx(2.745, abs=0.01)


def test_audio_over_the_api_size_limit_is_refused_at_load_with_the_limit_named(
    tmp_path: Path,
) -> None:
    # 900 s of near-silence: a small FLAC, but 28.8 MB as the WAV a chat completion is sent
    root = tmp_path / "ds"
    (root / "audio").mkdir(parents=True)
    sf.write(root / "audio" / "long.flac", np.zeros(900 * 16000, dtype="int16"), 16000)
    (root / "metadata.jsonl").write_text(json.dumps(row("p1", "audio/long.flac")) + "\n")
    with pytest.raises(DatasetError) as err:
        load_dataset(root, Person)
    assert err.value.problems[0].kind == ProblemKind.LIMIT
    assert "28,800,044 bytes, over the API's limit of 26,214,400 bytes (25 MiB)" in str(err.value)
    (root / "dataset.toml").write_text("[limits]\nmax_bytes = 30_000_000\n")
    assert len(load_dataset(root, Person)) == 1


def test_audio_over_the_api_duration_limit_is_refused_at_load(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "audio").mkdir(parents=True)
    sf.write(root / "audio" / "long.wav", np.zeros(1501 * 8000, dtype="int16"), 8000, "PCM_U8")
    (root / "metadata.jsonl").write_text(json.dumps(row("p1", "audio/long.wav")) + "\n")
    with pytest.raises(DatasetError, match=r"lasts 1501.0 s, over the API's limit of 1500 s"):
        load_dataset(root, Person)
