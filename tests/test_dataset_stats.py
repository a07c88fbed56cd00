"""`audio-evals stats`: rows, durations, tag counts and label distributions, checked against independent counts."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from audio_evals.cli import main
from audio_evals.dataset_stats import EMPTY_LIST, MISSING, dataset_stats
from audio_evals.problems import ProblemsError

from .conftest import REPO, require_tool, write_tone

ROWS = [
    {"id": "r1", "seconds": 0.5, "tags": {"speaker": "ann", "room": "office"},
     "expected": {"caller": {"name": "Ann", "phone": None}, "age": 30, "urgent": True, "symptoms": ["cough", "fever"]}},
    {"id": "r2", "seconds": 1.0, "tags": {"speaker": "bob"},
     "expected": {"caller": {"name": "Bob", "phone": "555"}, "age": 40, "urgent": False, "symptoms": []}},
    {"id": "r3", "seconds": 1.5, "tags": {"speaker": "ann", "room": "car"},
     "expected": {"caller": {"name": "Ann", "phone": None}, "age": 41, "urgent": False, "symptoms": ["fever"]}},
]  # fmt: skip


@pytest.fixture
def small(tmp_path: Path) -> Path:
    folder = tmp_path / "small"
    lines = []
    for row in ROWS:
        write_tone(folder / "audio" / f"{row['id']}.wav", seconds=row["seconds"])
        lines.append(
            json.dumps(
                {
                    "file_name": f"audio/{row['id']}.wav",
                    "id": row["id"],
                    "expected": row["expected"],
                    "tags": row["tags"],
                    **({"transcript": "hello"} if row["id"] != "r2" else {}),
                    **({"must_pass": True} if row["id"] == "r3" else {}),
                }
            )
        )
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_durations_tags_and_labels_of_a_small_dataset(small: Path) -> None:
    stats = dataset_stats(small)
    assert stats.rows == 3
    assert stats.audio["seconds"].tolist() == [r["seconds"] for r in ROWS]
    assert stats.seconds == sum(r["seconds"] for r in ROWS)
    assert stats.audio["transcript"].tolist() == [True, False, True]
    assert stats.audio["must_pass"].tolist() == [False, False, True]

    tags = {(t, v): (n, s) for t, v, n, s in stats.tags().itertuples(index=False)}
    assert tags == {
        ("speaker", "ann"): (2, 2.0),
        ("speaker", "bob"): (1, 1.0),
        ("room", "office"): (1, 0.5),
        ("room", "car"): (1, 1.5),
        ("room", MISSING): (1, 1.0),
    }
    labels = {(f, v): n for f, v, n in stats.labels().itertuples(index=False)}
    assert labels == {
        ("caller.name", "Ann"): 2,
        ("caller.name", "Bob"): 1,
        ("caller.phone", "null"): 2,
        ("caller.phone", "555"): 1,
        ("age", "30"): 1,
        ("age", "40"): 1,
        ("age", "41"): 1,
        ("urgent", "false"): 2,
        ("urgent", "true"): 1,
        ("symptoms[]", "fever"): 2,
        ("symptoms[]", "cough"): 1,
        ("symptoms[]", EMPTY_LIST): 1,
    }
    fields = stats.fields().set_index("field")
    assert fields.loc["caller.phone", ["rows", "null", "distinct"]].tolist() == [3, 2, 2]
    assert fields.loc["symptoms[]", ["rows", "distinct"]].tolist() == [3, 2]
    assert fields.loc["age", ["min", "median", "max"]].tolist() == [30.0, 40.0, 41.0]
    assert fields.loc["urgent"].isna()["min"]  # booleans are not numbers


def test_the_cli_prints_tables_or_json(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(small)]) == 0
    out = capsys.readouterr().out
    assert "3 rows, 3.0 s of audio" in out
    assert "min 0.50, median 1.00, mean 1.00, max 1.50" in out
    assert "transcripts: 2 of 3 rows; must_pass: 1 rows" in out
    missing = [line.split("|")[1:5] for line in out.splitlines() if "(missing)" in line]
    assert [[c.strip() for c in cells] for cells in missing] == [["room", "(missing)", "1", "33%"]]
    assert main(["stats", str(small), "--top", "1"]) == 0
    assert "(1 more value)" in capsys.readouterr().out
    assert main(["stats", str(small), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rows"] == 3 and data["seconds"] == 3.0
    assert {"field": "age", "rows": 3, "null": 0, "distinct": 3, "min": 30.0, "median": 40.0, "max": 41.0} in data["fields"]  # fmt: skip


@pytest.mark.parametrize("dataset", ["person", "appointment"])
def test_demo_stats_agree_with_sox_and_a_plain_count(dataset: str) -> None:
    require_tool("soxi")
    folder = REPO / "datasets" / dataset
    stats = dataset_stats(folder)
    rows = [json.loads(x) for x in (folder / "metadata.jsonl").read_text().splitlines()]
    assert stats.rows == len(rows)
    for row, seconds in zip(rows, stats.audio["seconds"], strict=True):
        soxi = subprocess.run(
            ["soxi", "-D", str(folder / row["file_name"])],
            capture_output=True,
            text=True,
            check=True,
        )
        assert abs(float(soxi.stdout) - seconds) < 0.01, row["id"]
    counted = Counter((t, v) for r in rows for t, v in r["tags"].items())
    reported = {(t, v): n for t, v, n, _ in stats.tags().itertuples(index=False) if v != MISSING}
    assert reported == dict(counted)
    conditions = Counter(r["tags"]["condition"] for r in rows)
    assert {v: n for (t, v), n in reported.items() if t == "condition"} == dict(conditions)


def test_a_dataset_without_tags_or_label_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tone(tmp_path / "bare" / "audio" / "a.wav", seconds=0.25)
    (tmp_path / "bare" / "metadata.jsonl").write_text(
        '{"file_name": "audio/a.wav", "id": "a", "expected": {}}\n', encoding="utf-8"
    )
    assert main(["stats", str(tmp_path / "bare")]) == 0
    out = capsys.readouterr().out
    assert "1 rows, 0.2 s of audio" in out
    assert "(no row has tags)" in out and "(every label is empty)" in out
    assert main(["stats", str(tmp_path / "bare"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["tags"], data["fields"], data["labels"]) == ([], [], [])


def test_unreadable_audio_is_listed_for_every_row(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    (folder / "audio").mkdir(parents=True)
    for name in ("a", "b"):
        (folder / "audio" / f"{name}.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (folder / "metadata.jsonl").write_text(
        '{"file_name": "audio/a.wav", "id": "a", "expected": {}}\n'
        '{"file_name": "audio/b.wav", "id": "b", "expected": {}}\n',
        encoding="utf-8",
    )
    with pytest.raises(ProblemsError) as caught:
        dataset_stats(folder)
    assert [(p.line, p.field) for p in caught.value.problems] == [
        (1, "file_name"),
        (2, "file_name"),
    ]
