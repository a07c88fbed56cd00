"""`synth` with OpenAI voices: the real openai SDK against the local /v1/audio/speech, recorded and replayed by vcrpy."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from audio_evals.cassettes import CASSETTE_FORMAT
from audio_evals.cli import main
from audio_evals.local import LocalServer

from .conftest import require_tool

SECRET = "sk-test-do-not-store-4242"
ROWS = [
    {"text": "Hi, my name is Jason and I am twenty years old.", "expected": {"name": "Jason", "age": 20}},
    {"text": "This is Maria, I'm thirty four.", "expected": {"name": "Maria", "age": 34}},
    {"text": "Robert here, fifty five years old.", "expected": {"name": "Robert", "age": 55}},
]  # fmt: skip
SPEC = """
response_model = "evals.models:Person"
voices = ["openai:alloy", "openai:onyx"]
tts_model = "local-tts"
utterances = "people.jsonl"
"""


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    require_tool("flite")
    require_tool("sox")
    with LocalServer(preload=False) as running:
        yield running


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def make_spec(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "people.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = folder / "people.synth.toml"
    spec.write_text(SPEC, encoding="utf-8")
    return spec


def test_recorded_speech_calls_rebuild_the_dataset_offline_with_no_secret_stored(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = make_spec(tmp_path / "spec", ROWS)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    recorded = tmp_path / "recorded"
    before = server.stats()["by_path"].get("/v1/audio/speech", 0)
    assert main(["synth", str(spec), "-o", str(recorded), "--base-url", server.base_url]) == 0
    assert server.stats()["by_path"]["/v1/audio/speech"] - before == len(ROWS)

    cassette = tmp_path / "spec" / "people.synth.tts.yaml"  # the default: beside the spec
    text = cassette.read_text(encoding="utf-8")
    assert SECRET not in text and "authorization" not in text.lower()
    doc = yaml.safe_load(text)
    assert doc["metadata"]["audio_evals"]["format"] == CASSETTE_FORMAT
    bodies = [json.loads(i["request"]["body"]) for i in doc["interactions"]]
    assert sorted((b["voice"], b["input"]) for b in bodies) == sorted(
        [("alloy", ROWS[0]["text"]), ("onyx", ROWS[1]["text"]), ("alloy", ROWS[2]["text"])]
    )
    assert {b["response_format"] for b in bodies} == {"pcm"}
    assert all(set(i["request"]["headers"]) == {"content-type"} for i in doc["interactions"])

    rows = [json.loads(x) for x in (recorded / "metadata.jsonl").read_text().splitlines()]
    assert [r["tags"]["speaker"] for r in rows] == ["openai-alloy", "openai-onyx", "openai-alloy"]
    assert {r["tags"]["voice_engine"] for r in rows} == {"openai"}

    # offline: no key, no server URL, replay only
    monkeypatch.delenv("OPENAI_API_KEY")
    replayed = tmp_path / "replayed"
    calls = server.stats()["by_path"]["/v1/audio/speech"]
    assert main(["synth", str(spec), "-o", str(replayed), "--record-mode", "none"]) == 0
    assert server.stats()["by_path"]["/v1/audio/speech"] == calls
    assert digests(replayed) == digests(recorded)


def test_replay_names_a_call_the_cassette_lacks(
    server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = make_spec(tmp_path / "spec", ROWS[:1])
    assert main(["synth", str(spec), "-o", str(tmp_path / "a"), "--base-url", server.base_url]) == 0
    make_spec(tmp_path / "spec", ROWS[:2])  # one more utterance, not recorded
    capsys.readouterr()
    code = main(["synth", str(spec), "-o", str(tmp_path / "b"), "--record-mode", "none"])
    assert code == 1
    err = capsys.readouterr().err
    assert "has no recording of a speech call" in err and "new_episodes" in err
    assert "Traceback" not in err
    assert not (tmp_path / "b").exists()
    # new_episodes records the new call and keeps the old one
    args = ["--base-url", server.base_url, "--record-mode", "new_episodes"]
    assert main(["synth", str(spec), "-o", str(tmp_path / "c"), *args]) == 0
    assert (
        len(
            yaml.safe_load((tmp_path / "spec" / "people.synth.tts.yaml").read_text())[
                "interactions"
            ]
        )
        == 2
    )


def test_recording_without_a_key_or_replaying_without_a_cassette_is_refused_up_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    spec = make_spec(tmp_path / "spec", ROWS[:1])
    assert main(["synth", str(spec), "-o", str(tmp_path / "a")]) == 1
    assert "needs an API key in OPENAI_API_KEY" in capsys.readouterr().err
    assert main(["synth", str(spec), "-o", str(tmp_path / "a"), "--record-mode", "none"]) == 1
    assert "no cassette" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
