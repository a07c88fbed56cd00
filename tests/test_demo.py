"""The committed demo: suites load, datasets are what the script makes, cassettes carry no audio or secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from audio_evals.cassettes import CASSETTE_FORMAT
from audio_evals.suites import load_suite

from .conftest import REPO, require_tool, run_pytest


@pytest.mark.parametrize("suite", ["person", "appointment"])
def test_demo_suites_load_and_validate_every_row(suite: str) -> None:
    loaded = load_suite(REPO / "evals" / f"{suite}.eval.toml", root=REPO)
    assert len(loaded.dataset) >= 24
    assert loaded.dataset.has_transcripts
    tags = {(c.tags["speaker"], c.tags["condition"]) for c in loaded.dataset}
    assert {s for s, _ in tags} >= {"flite-slt", "flite-rms", "flite-awb", "espeak-ng-en-us"}
    assert {c for _, c in tags} == {"clean", "telephone", "noisy"}
    assert {c.audio_format for c in loaded.dataset} == {"wav", "mp3"}
    names = [v.name for v in loaded.variants]
    assert "local-baseline" in names and any(n.startswith("gpt-audio") for n in names)


@pytest.mark.parametrize("dataset", ["person", "appointment"])
def test_demo_dataset_is_reproduced_by_its_script(dataset: str) -> None:
    for tool in ("flite", "espeak-ng", "sox"):
        require_tool(tool)
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "make_demo_datasets.py"),
            "--check",
            "--dataset",
            dataset,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{dataset}: metadata.jsonl identical" in proc.stdout


def test_committed_cassettes_are_small_and_hold_no_audio_or_secret() -> None:
    files = sorted((REPO / "cassettes").rglob("*.yaml"))
    assert files, "the demo commits its cassettes"
    for path in files:
        text = path.read_text(encoding="utf-8")
        doc = yaml.safe_load(text)
        assert doc["metadata"]["audio_evals"]["format"] == CASSETTE_FORMAT, path
        per_interaction = len(text.encode()) / max(1, len(doc["interactions"]))
        assert per_interaction < 8_000, f"{path}: {per_interaction:.0f} bytes per interaction"
        for inter in doc["interactions"]:
            assert {h.lower() for h in inter["request"]["headers"]} <= {
                "content-type",
                "x-audio-evals-case",
            }, path
            assert not {"set-cookie", "openai-organization", "openai-project"} & set(
                inter["response"]["headers"]
            )
            body = inter["request"]["body"] or ""
            assert "UklGR" not in body and "SUQz" not in body, (
                f"{path}: base64 audio in a request body"
            )


def test_a_script_without_pytest_writes_the_results_of_pytest_evals(tmp_path: Path) -> None:
    script = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "run_without_pytest.py"),
            "--reports-dir",
            str(tmp_path / "script"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert script.returncode == 0, script.stdout + script.stderr
    assert "0 of 53 gates failed" in script.stdout
    proc = run_pytest(REPO, "evals", "--reports-dir", str(tmp_path / "pytest"))
    assert proc.returncode == 0, proc.stdout
    for name in ("results.csv", "cases.csv", "fields.csv", "comparison.csv"):
        ours = (tmp_path / "script" / "latest" / name).read_bytes()
        assert ours == (tmp_path / "pytest" / "latest" / name).read_bytes(), name
    results = (tmp_path / "script" / "latest" / "results.csv").read_text(encoding="utf-8")
    assert len(results.splitlines()) > 2000  # every replayed case of every suite, field by field


def test_audio_evals_run_replays_a_suite_without_pytest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audio_evals.cli import main

    code = main(
        [
            "run",
            str(REPO / "evals" / "person.eval.toml"),
            "--root",
            str(REPO),
            "--reports-dir",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "suite person" in out and "audio-evals gates: 0 failed" in out
    results = (tmp_path / "latest" / "results.csv").read_text(encoding="utf-8").splitlines()
    assert len(results) == 1 + 4 * 32 * 2  # 4 replayed variants x 32 cases x 2 fields
    assert "not run: person/gpt-audio-1.5" in out
