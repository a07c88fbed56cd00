"""`audio-evals compare` and `audio-evals validate` on real files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from audio_evals.cli import main
from audio_evals.report import build_report
from audio_evals.results import Call, CaseResult, LatencySource


def result(case: str, correct: bool, variant: str = "v") -> CaseResult:
    field = {
        "field": "name",
        "correct": correct,
        "score": 1.0 if correct else 0.0,
        "kind": "text",
        "expected": "Jason",
        "predicted": "Jason" if correct else "Mason",
        "outcome": "match" if correct else "mismatch",
        "optional": False,
    }
    return CaseResult(
        suite="person",
        variant=variant,
        case_id=case,
        repeat=0,
        model="local-baseline",
        pipeline="direct",
        tags={"speaker": "slt"},
        must_pass=False,
        error_kind=None,
        error=None,
        expected='{"name": "Jason"}',
        predicted=json.dumps({"name": field["predicted"]}),
        fields=[field],
        calls=[
            Call(
                "POST",
                "/v1/chat/completions",
                200,
                "local-baseline",
                usage={
                    "usage": {
                        "prompt_tokens": 100,
                        "completion_tokens": 10,
                        "prompt_tokens_details": {"audio_tokens": 30},
                    }
                },
                latency_ms=120.0,
            )
        ],
        latency_ms=120.0,
        latency_source=LatencySource.RECORDED,
    )


def test_compare_two_saved_runs_pairs_cases_and_gives_a_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_run = [result(f"c{i:02d}", True) for i in range(20)]
    branch = [result(f"c{i:02d}", i >= 12) for i in range(20)]  # 12 cases lost, none won
    build_report(main_run).write(tmp_path / "main")
    build_report(branch).write(tmp_path / "branch")
    assert main([" compare".strip(), str(tmp_path / "main"), str(tmp_path / "branch")]) == 0
    out = capsys.readouterr().out
    assert "worse (-60.0 pts" in out
    frame = pd.read_csv(tmp_path / "branch" / "compare" / "comparison.csv")
    row = frame[frame["field"] == "name"].iloc[0]
    assert (row["n"], row["wins"], row["losses"], row["ties"]) == (20, 0, 12, 8)
    assert row["label"] == "worse" and row["p_value"] < 0.001


def test_compare_names_a_folder_that_is_not_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", str(tmp_path / "nope"), str(tmp_path / "nope2")]) == 2
    assert "results.csv not found: is" in capsys.readouterr().err


def test_validate_reports_the_dataset_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(__file__).resolve().parents[1]
    assert main(["validate", str(root / "evals" / "person.eval.toml")]) == 0
    assert "ok: suite person: 32 cases" in capsys.readouterr().out
    bad = tmp_path / "ds"
    bad.mkdir()
    (bad / "metadata.jsonl").write_text(
        '{"file_name": "a.wav", "id": "x", "expected": {}}\n', encoding="utf-8"
    )
    assert main(["validate", str(bad), "--model", "evals.models:Person"]) == 1
    err = capsys.readouterr().err
    assert f"problem(s) in {bad / 'metadata.jsonl'}" in err
    assert any(
        line.split()[1:4] == ["1", "file_name", "audio"] and "audio file not found" in line
        for line in err.splitlines()
        if line.strip()
    )
