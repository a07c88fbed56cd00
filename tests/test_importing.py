"""`audio-evals import`: CSV, TSV, JSONL, .xlsx and Hugging Face datasets into the audiofolder layout."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf
from pydantic import BaseModel, Field

from audio_evals.cli import main
from audio_evals.datasets import DatasetError, load_dataset
from audio_evals.importing import import_dataset
from audio_evals.problems import ProblemKind

from .conftest import require_tool, shared_path

RHINO = ("real-speech", "picovoice-rhino", "audio_samples")
DIGITS = ("real-speech", "free-spoken-digit-dataset", "recordings")


class Slots(BaseModel):
    beverage: str | None = None
    size: str | None = None
    shots: str | None = None


class CoffeeOrder(BaseModel):
    intent: str | None
    slots: Slots | None = None
    extras: list[str] = []


class SpokenDigit(BaseModel):
    digit: int = Field(ge=0, le=9)


class Callback(BaseModel):
    name: str
    phone: str
    due: date | None = None
    digits: list[int] = []


def write_csv(
    path: Path, header: list[str], rows: list[list[object]], delimiter: str = ","
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def coffee_csv(tmp_path: Path) -> Path:
    """Two real recordings of a coffee-machine command (one in context) with nested and list labels."""
    within = shared_path(*RHINO, "test_within_context.wav")
    outside = shared_path(*RHINO, "test_out_of_context.wav")
    return write_csv(
        tmp_path / "src" / "labels.csv",
        ["file_name", "id", "intent", "slots.beverage", "slots.size", "slots.shots", "extras"]
        + ["tags.language", "transcript"],
        [
            [str(within), "order-1", "orderBeverage", "americano", "medium", "double shot"]
            + ['["no sugar"]', "en", ""],
            [str(outside), "order-2", "", "", "", "", "", "en", ""],
        ],
    )


def test_csv_with_nested_and_list_columns_imports_real_speech(tmp_path: Path) -> None:
    out = tmp_path / "coffee"
    result = import_dataset(coffee_csv(tmp_path), out, CoffeeOrder)
    assert (result.rows, result.copied, result.linked, result.ids_derived) == (2, 2, 0, False)
    rows = read_rows(out)
    assert rows[0] == {
        "$schema": "metadata.schema.json",
        "file_name": "audio/test_within_context.wav",
        "id": "order-1",
        "expected": {
            "intent": "orderBeverage",
            "slots": {"beverage": "americano", "size": "medium", "shots": "double shot"},
            "extras": ["no sugar"],
        },
        "tags": {"language": "en"},
    }
    # empty cells: null where the model allows it, the default otherwise
    assert rows[1]["expected"] == {"intent": None, "slots": None, "extras": []}
    # the audio is copied byte for byte
    assert (out / "audio" / "test_within_context.wav").read_bytes() == shared_path(
        *RHINO, "test_within_context.wav"
    ).read_bytes()
    dataset = load_dataset(out, CoffeeOrder)
    assert dataset.cases[0].expected.slots == Slots(
        beverage="americano", size="medium", shots="double shot"
    )
    assert (out / "metadata.schema.json").is_file()


def test_every_row_problem_is_reported_together_and_nothing_is_written(tmp_path: Path) -> None:
    audio = shared_path(*DIGITS, "0_george_0.wav")
    source = write_csv(
        tmp_path / "labels.csv",
        ["file_name", "id", "name", "phone", "due", "digits"],
        [
            [str(audio), "a", "Ana", "555", "2024-02-30", "[1, 2]"],
            ["missing.wav", "b", "Bo", "556", "", "[1"],
            [str(audio), "a", "", "557", "", ""],
            [str(audio), "d", "Di", "", "", '["x"]'],
        ],
    )
    out = tmp_path / "out"
    with pytest.raises(DatasetError) as err:
        import_dataset(source, out, Callback)
    found = [(p.line, p.field, p.kind) for p in err.value.problems]
    assert found == [
        (2, "due", ProblemKind.LABEL),
        (3, "digits", ProblemKind.LABEL),
        (4, "name", ProblemKind.LABEL),
        (4, "id", ProblemKind.DUPLICATE_ID),
        (5, "phone", ProblemKind.LABEL),
        (5, "digits", ProblemKind.LABEL),
        (3, "file_name", ProblemKind.AUDIO),
    ]
    messages = {(p.line, p.field): p.message for p in err.value.problems}
    assert "not valid JSON" in messages[(3, "digits")]
    assert "audio file not found" in messages[(3, "file_name")]
    assert all(p.path == source for p in err.value.problems)
    assert not out.exists()


def test_a_column_that_maps_to_nothing_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_csv(
        tmp_path / "labels.csv",
        ["file_name", "intent", "slots.beverag", "slots", "intent.x"],
        [[str(shared_path(*RHINO, "test_within_context.wav")), "x", "", "", ""]],
    )
    with pytest.raises(DatasetError) as err:
        import_dataset(source, tmp_path / "out", CoffeeOrder)
    assert [(p.field, p.message) for p in err.value.problems] == [
        ("slots.beverag", "column maps to nothing: Slots has no field 'beverag'"),
        ("intent.x", "column maps to nothing: 'intent' is not a nested model, it has no field 'x'"),
    ]
    code = main(
        [
            "import",
            str(source),
            "-o",
            str(tmp_path / "out"),
            "--model",
            "tests.test_importing:CoffeeOrder",
        ]
    )
    assert code == 1
    err_text = capsys.readouterr().err
    assert "2 problem(s); nothing was written" in err_text and "slots.beverag" in err_text


def test_xlsx_with_numbers_dates_and_lists(tmp_path: Path) -> None:
    audio = shared_path(*DIGITS, "7_theo_0.wav")
    frame = pd.DataFrame(
        {
            "file_name": [str(audio)],
            "name": ["Theo"],
            "phone": [5551234],  # a number cell for a text field
            "due": [pd.Timestamp("2024-03-01")],
            "digits": ["[7, 7]"],
            "tags.speaker": ["theo"],
        }
    )
    source = tmp_path / "labels.xlsx"
    frame.to_excel(source, index=False)
    out = tmp_path / "out"
    result = import_dataset(source, out, Callback)
    assert result.source_kind == "xlsx" and result.ids_derived
    row = read_rows(out)[0]
    assert row["id"] == "7_theo_0"
    assert row["expected"] == {
        "name": "Theo",
        "phone": "5551234",
        "due": "2024-03-01",
        "digits": [7, 7],
    }
    assert row["tags"] == {"speaker": "theo"}


def test_tsv_and_jsonl_sources(tmp_path: Path) -> None:
    audio = shared_path(*DIGITS, "3_lucas_0.wav")
    tsv = write_csv(tmp_path / "l.tsv", ["file_name", "digit"], [[str(audio), "3"]], "\t")
    assert read_rows(_imported(tsv, tmp_path / "a", SpokenDigit))[0]["expected"] == {"digit": 3}
    jsonl = tmp_path / "l.jsonl"
    jsonl.write_text(
        json.dumps(
            {
                "file_name": str(shared_path(*RHINO, "test_within_context.wav")),
                "intent": "orderBeverage",
                "slots": {"beverage": "americano"},
                "extras": ["hot"],
            }
        )
        + "\n"
    )
    rows = read_rows(_imported(jsonl, tmp_path / "b", CoffeeOrder))
    assert rows[0]["expected"]["slots"] == {"beverage": "americano", "size": None, "shots": None}


def _imported(source: Path, out: Path, model: type[BaseModel]) -> Path:
    import_dataset(source, out, model)
    return out


def test_hugging_face_dataset_built_in_memory_and_saved_to_disk(tmp_path: Path) -> None:
    import datasets

    files = [shared_path(*DIGITS, f"{d}_jackson_0.wav") for d in (1, 2)]
    hf = datasets.Dataset.from_dict(
        {"audio": [str(f) for f in files], "digit": [1, 2], "tags.speaker": ["jackson"] * 2}
    ).cast_column("audio", datasets.Audio())
    out = tmp_path / "mem"
    result = import_dataset(hf, out, SpokenDigit)
    assert (result.source_kind, result.rows) == ("huggingface", 2)
    assert [r["id"] for r in read_rows(out)] == ["1_jackson_0", "2_jackson_0"]
    assert (out / "audio" / "1_jackson_0.wav").read_bytes() == files[0].read_bytes()
    saved = tmp_path / "saved"
    hf.save_to_disk(str(saved))  # the audio bytes are embedded in the arrow files
    code = main(
        [
            "import",
            str(saved),
            "-o",
            str(tmp_path / "disk"),
            "--model",
            "tests.test_importing:SpokenDigit",
        ]
    )
    assert code == 0
    assert read_rows(tmp_path / "disk") == read_rows(out)
    assert (tmp_path / "disk" / "audio" / "2_jackson_0.wav").read_bytes() == files[1].read_bytes()


def test_flac_and_ogg_recordings_are_imported_unchanged(tmp_path: Path) -> None:
    jfk = shared_path("real-speech", "openai-whisper", "jfk.flac")
    samples, rate = sf.read(shared_path(*DIGITS, "5_george_0.wav"))
    ogg = tmp_path / "src" / "five.ogg"
    ogg.parent.mkdir()
    sf.write(ogg, samples, rate, format="OGG", subtype="VORBIS")
    source = write_csv(
        tmp_path / "src" / "labels.csv",
        ["file_name", "digit"],
        [[str(jfk), "0"], ["five.ogg", "5"]],
    )
    out = tmp_path / "out"
    import_dataset(source, out, SpokenDigit)
    assert (out / "audio" / "jfk.flac").read_bytes() == jfk.read_bytes()
    assert (out / "audio" / "five.ogg").read_bytes() == ogg.read_bytes()
    loaded = load_dataset(out, SpokenDigit)
    assert [c.audio_format for c in loaded] == ["flac", "ogg"]


def test_m4a_is_imported_and_loads(tmp_path: Path) -> None:
    m4a = tmp_path / "src" / "jfk.m4a"
    m4a.parent.mkdir()
    subprocess.run(
        [
            require_tool("ffmpeg"),
            "-v",
            "error",
            "-i",
            str(shared_path("real-speech", "openai-whisper", "jfk.flac")),
            "-c:a",
            "aac",
            str(m4a),
        ],
        check=True,
    )
    source = write_csv(tmp_path / "src" / "l.csv", ["file_name", "digit"], [["jfk.m4a", "0"]])
    import_dataset(source, tmp_path / "out", SpokenDigit)
    case = load_dataset(tmp_path / "out", SpokenDigit).cases[0]
    assert case.audio is not None and case.audio.format == "m4a" and case.audio.channels == 2


def test_link_overwrite_and_stable_ids(tmp_path: Path) -> None:
    a = shared_path(*DIGITS, "4_nicolas_0.wav")
    source = tmp_path / "src"
    for sub in ("x", "y"):  # two files with the same name in different folders
        (source / sub).mkdir(parents=True)
        (source / sub / "take.wav").write_bytes(a.read_bytes())
    labels = write_csv(
        source / "l.csv", ["file_name", "digit"], [["x/take.wav", "4"], ["y/take.wav", "4"]]
    )
    out = tmp_path / "out"
    result = import_dataset(labels, out, SpokenDigit, link=True)
    assert result.linked == 2
    assert (
        os.stat(out / "audio" / "x" / "take.wav").st_ino
        == os.stat(source / "x" / "take.wav").st_ino
    )
    ids = [r["id"] for r in read_rows(out)]
    assert ids == ["x-take", "y-take"]
    with pytest.raises(DatasetError, match="exists and is not empty"):
        import_dataset(labels, out, SpokenDigit)
    import_dataset(labels, out, SpokenDigit, overwrite=True)
    assert [r["id"] for r in read_rows(out)] == ids  # derived the same way again


def test_unsupported_sources_say_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "l.json").write_text("[]")
    with pytest.raises(DatasetError, match=r"write one JSON object per line \(\.jsonl\)"):
        import_dataset(tmp_path / "l.json", tmp_path / "o", SpokenDigit)
    with pytest.raises(DatasetError, match="no file_name column"):
        import_dataset(
            write_csv(tmp_path / "n.csv", ["digit"], [["1"]]), tmp_path / "o", SpokenDigit
        )


def test_a_required_nested_field_without_a_column_is_named(tmp_path: Path) -> None:
    class Who(BaseModel):
        first: str
        last: str

    class Call(BaseModel):
        who: Who
        note: str | None = None

    source = write_csv(
        tmp_path / "l.csv",
        ["file_name", "who.first"],
        [[str(shared_path(*DIGITS, "1_lucas_0.wav")), "Lucas"]],
    )
    with pytest.raises(DatasetError) as err:
        import_dataset(source, tmp_path / "out", Call)
    assert [(p.line, p.field, p.kind) for p in err.value.problems] == [
        (None, "who.last", ProblemKind.MISSING_KEY)
    ]
