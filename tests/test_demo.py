"""The committed demo: suites load, datasets are what synth + augment make, cassettes carry no audio or secret."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from audio_evals.cassettes import CASSETTE_FORMAT
from audio_evals.cli import main
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
def test_demo_dataset_is_rebuilt_by_synth_and_augment_from_its_specs(
    dataset: str, tmp_path: Path
) -> None:
    """The commands of datasets/README.md rebuild every committed row and audio file, byte for byte."""
    for tool in ("flite", "espeak-ng", "sox"):
        require_tool(tool)
    specs = REPO / "datasets" / "specs"
    clean, rebuilt = tmp_path / f"{dataset}-tts", tmp_path / dataset
    assert main(["synth", str(specs / f"{dataset}.synth.toml"), "-o", str(clean)]) == 0
    plan = specs / f"{dataset}.augment.toml"
    assert main(["augment", str(clean), "--plan", str(plan), "-o", str(rebuilt)]) == 0

    committed = REPO / "datasets" / dataset
    committed_rows = (committed / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    rebuilt_rows = (rebuilt / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rebuilt_rows) == len(committed_rows)
    for committed_row, rebuilt_row in zip(committed_rows, rebuilt_rows, strict=True):
        assert rebuilt_row == committed_row
    assert (rebuilt / "metadata.jsonl").read_bytes() == (committed / "metadata.jsonl").read_bytes()

    def digests(root: Path) -> dict[str, str]:
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "audio").iterdir())
        }

    committed_audio, rebuilt_audio = digests(committed), digests(rebuilt)
    named = {json.loads(line)["file_name"] for line in committed_rows}
    assert set(committed_audio) == named  # no stray committed file escapes the comparison
    assert len(rebuilt_audio) == len(committed_rows)
    for name, digest in committed_audio.items():
        assert rebuilt_audio.get(name) == digest, (
            f"{dataset}/{name} differs from its rebuild (tool versions: datasets/README.md)"
        )
    assert rebuilt_audio == committed_audio


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
    with (tmp_path / "pytest" / "latest" / "comparison.csv").open(encoding="utf-8") as fh:
        pairs = {
            (r["variant_a"], r["variant_b"]) for r in csv.DictReader(fh) if r["suite"] == "intake"
        }
    assert pairs == {
        ("builtin", "app"),
        ("builtin", "app-mini"),
    }  # the suite's `baseline = "builtin"`


ASYNC_SCRIPT = """
import asyncio, sys
from audio_evals import arun_suite, build_report, load_suite, run_suite

suite = load_suite("evals/person.eval.toml")


async def main():
    return await arun_suite(suite, variants=["local-baseline", "local-oracle"])


ran = asyncio.run(main())
again = run_suite(suite, variants=["local-baseline", "local-oracle"])
report = build_report(ran)
assert [r.to_json() for r in ran.results] == [r.to_json() for r in again.results]
print(len(ran.results), len(report.results), sorted(ran.batches), "pytest" in sys.modules)
"""


def test_the_async_twin_replays_what_run_suite_does_and_neither_imports_pytest() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", ASYNC_SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split("\n")[0] == (
        "64 128 [('person', 'gpt-audio-1.5'), ('person', 'gpt-audio-mini'), "
        "('person', 'local-baseline'), ('person', 'local-mini'), ('person', 'local-oracle'), "
        "('person', 'local-pipeline')] False"
    )


def test_audio_evals_run_replays_a_suite_without_pytest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:

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
    assert "not run (no cassette): person/gpt-audio-1.5, person/gpt-audio-mini" in out


def test_init_makes_a_project_whose_pytest_passes_at_once(tmp_path: Path) -> None:
    project = tmp_path / "new"
    proc = subprocess.run(
        [sys.executable, "-m", "audio_evals.cli", "init", str(project)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    steps = [line for line in proc.stdout.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")]
    assert len(steps) == 3 and "audio-evals import" in steps[0]
    for made in (
        "pyproject.toml",
        "conftest.py",
        ".gitignore",
        ".github/workflows/evals.yml",
        "evals/example.eval.toml",
        "evals/extract.py",
        "datasets/example/metadata.schema.json",
        "datasets/mine/metadata.schema.json",
        "reports/baseline.json",
    ):
        assert (project / made).is_file(), made
    run = run_pytest(project)  # pytest, as the new user runs it: testpaths = evals
    assert run.returncode == 0, run.stdout + run.stderr
    assert "18 passed, 3 skipped" in run.stdout  # 6 cases, 12 gates; gpt-audio-mini: no cassette
    assert "audio-evals gates: 0 failed of 12" in run.stdout
    assert "local server" not in run.stdout.lower()  # replayed from the template's cassettes
    cases = (project / "reports" / "latest" / "cases.csv").read_text(encoding="utf-8")
    assert "evals.extract:extract" in cases  # the custom extractor ran
    again = subprocess.run(
        [sys.executable, "-m", "audio_evals.cli", "init", str(project)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 1 and "nothing was written" in again.stderr
