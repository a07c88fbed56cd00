"""`audio-evals validate` and `audio-evals schema`, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from audio_evals.cli import main
from audio_evals.schema import row_schema

from .conftest import REPO, shared_path, write_tone

DIGITS = ("real-speech", "free-spoken-digit-dataset", "recordings")


def dataset(tmp_path: Path, rows: list[dict], files: dict[str, Path]) -> Path:
    root = tmp_path / "ds"
    (root / "audio").mkdir(parents=True)
    for name, source in files.items():
        (root / "audio" / name).write_bytes(source.read_bytes())
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_validate_shows_every_problem_as_a_table_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jfk = shared_path("real-speech", "openai-whisper", "jfk.flac")
    root = dataset(tmp_path, [], {"ok.flac": jfk, "zero.wav": shared_path(*DIGITS, "0_theo_0.wav")})
    (root / "audio" / "cut.flac").write_bytes(jfk.read_bytes()[: jfk.stat().st_size // 2])
    rows = [
        {"file_name": "audio/ok.flac", "id": "a", "expected": {"name": "JFK", "age": 43}},
        {"file_name": "audio/cut.flac", "id": "b", "expected": {"name": "JFK", "age": 43}},
        {"file_name": "audio/zero.wav", "id": "a", "expected": {"name": "Theo", "agee": 1}},
        {"file_name": "../../etc/passwd.wav", "id": "d", "expected": {"name": "x", "age": 1}},
    ]
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["validate", str(root), "--model", "evals.models:Person"])
    assert code == 1
    err = capsys.readouterr().err
    assert "5 problem(s) in" in err
    lines = err.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("file"))
    assert lines[header].split() == ["file", "line", "field", "kind", "problem"]
    table = "\n".join(lines[header:])
    for line, fld, kind, words in [
        (2, "file_name", "audio", "does not decode"),
        (3, "expected.agee", "unknown_label", "Person has no field 'agee'"),
        (3, "expected.age", "label", "Field required"),
        (3, "id", "duplicate_id", "duplicate id 'a' (first on line 1)"),
        (4, "file_name", "path", "leads outside the dataset folder"),
    ]:
        match = [
            r for r in table.splitlines() if f" {line} " in r and f" {fld} " in r and kind in r
        ]
        assert match and words in match[0], (line, fld, table)


def test_validate_summarises_a_good_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {f"{d}.wav": shared_path(*DIGITS, f"{d}_george_0.wav") for d in (1, 2)}
    rows = [
        {"file_name": f"audio/{d}.wav", "id": str(d), "expected": {"name": "G", "age": d}}
        for d in (1, 2)
    ]
    root = dataset(tmp_path, rows, files)
    assert main(["validate", str(root), "--model", "evals.models:Person"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: dataset ds: 2 cases,")
    assert "formats wav x2; sample rates 8000 x2; channels 1 x2" in out


def test_validate_imports_the_model_as_pytest_does_from_any_folder(tmp_path: Path) -> None:
    """Run from a sub-folder of a project whose models live under `pythonpath`."""
    project = tmp_path / "proj"
    (project / "lib" / "shop").mkdir(parents=True)
    (project / "lib" / "shop" / "__init__.py").write_text("")
    (project / "lib" / "shop" / "models.py").write_text(
        "from pydantic import BaseModel\nclass Order(BaseModel):\n    item: str\n"
    )
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["lib"]\n')
    write_tone(project / "data" / "orders" / "a.wav")
    (project / "data" / "orders" / "metadata.jsonl").write_text(
        json.dumps({"file_name": "a.wav", "id": "a", "expected": {"item": "tea"}}) + "\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "audio_evals.cli",
            "validate",
            "orders",
            "--model",
            "shop.models:Order",
        ],
        cwd=project / "data",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "ok: dataset orders: 1 cases" in run.stdout
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "audio_evals.cli",
            "validate",
            "orders",
            "--model",
            "shop.nope:Order",
        ],
        cwd=project / "data",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert "cannot import 'shop.nope:Order'" in missing.stderr
    assert f"imported as pytest would from {project}" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_schema_is_written_beside_the_rows_and_referenced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"a.wav": shared_path(*DIGITS, "1_theo_0.wav")}
    rows = [{"file_name": "audio/a.wav", "id": "a", "expected": {"name": "Theo", "age": 1}}]
    root = dataset(tmp_path, rows, files)
    with (root / "metadata.jsonl").open("a") as fh:
        fh.write("\n")
    assert main(["schema", str(root), "--model", "evals.models:Person"]) == 0
    assert "1 rows reference it" in capsys.readouterr().out
    schema = json.loads((root / "metadata.schema.json").read_text())
    row = json.loads((root / "metadata.jsonl").read_text().splitlines()[0])
    assert row == {"$schema": "metadata.schema.json", **rows[0]}
    person = schema["$defs"]["Person"]
    assert person["required"] == ["name", "age"] and person["additionalProperties"] is False
    assert schema["properties"]["expected"] == {"$ref": "#/$defs/Person"}
    # the schema accepts the row and flags a typo, as the loader does
    import jsonschema

    jsonschema.validate(row, schema)
    with pytest.raises(jsonschema.ValidationError, match="agee"):
        jsonschema.validate({**row, "expected": {"name": "x", "age": 1, "agee": 2}}, schema)
    # running it again changes nothing
    before = (root / "metadata.jsonl").read_bytes()
    assert main(["schema", str(root), "--model", "evals.models:Person"]) == 0
    assert (root / "metadata.jsonl").read_bytes() == before


def test_schema_of_nested_models_closes_every_object() -> None:
    sys.path.insert(0, str(REPO))
    from evals.models import AppointmentRequest

    schema = row_schema(AppointmentRequest)
    closed = [d.get("additionalProperties") for d in schema["$defs"].values() if "properties" in d]
    assert closed and all(c is False for c in closed)
