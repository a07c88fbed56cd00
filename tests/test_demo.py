"""The committed demo: suites load, datasets are what the script makes, cassettes carry no audio or secret."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from audio_evals.suites import load_suite

from .conftest import REPO, require_tool


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
        assert doc["metadata"]["audio_evals"]["format"] == 1, path
        per_interaction = len(text.encode()) / max(1, len(doc["interactions"]))
        assert per_interaction < 8_000, f"{path}: {per_interaction:.0f} bytes per interaction"
        for inter in doc["interactions"]:
            assert set(inter["request"]["headers"]) <= {"content-type"}, path
            assert not {"set-cookie", "openai-organization", "openai-project"} & set(
                inter["response"]["headers"]
            )
            body = inter["request"]["body"] or ""
            assert "UklGR" not in body and "SUQz" not in body, (
                f"{path}: base64 audio in a request body"
            )
