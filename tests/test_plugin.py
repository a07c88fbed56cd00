"""`pytest evals` end to end in a scratch project: record against the real local server, then replay."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from audio_evals.cassettes import CASSETTE_FORMAT

from .conftest import SHARED, require_shared, run_pytest

pytest_plugins = ["pytester"]

JASON = SHARED / "real-speech" / "instructor" / "openai-audio-example_output.wav"
MARCELO = SHARED / "real-traffic" / "assets" / "pydantic-ai__marcelo.mp3"
CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e2b4d6f8a0c2e"

MODELS = """
from pydantic import BaseModel, Field


class Person(BaseModel):
    name: str = Field(description="The speaker's first name")
    age: int = Field(description="The speaker's age in years")


class Intro(BaseModel):
    name: str = Field(description="The speaker's first name")
    age: int | None = Field(default=None, description="The speaker's age in years, if said")
"""

SUITE = """
dataset = "datasets/intro"
response_model = "evals.models:Intro"
prompt = "Extract the following information from the audio"

[[variants]]
name = "local-baseline"
model = "local-baseline"
base_url = "local"

[[variants]]
name = "via-url"
model = "local-baseline"
base_url = "{base_url}"
api_key_env = "CANARY_KEY"

[[variants]]
name = "gpt-audio-1.5"
model = "gpt-audio-1.5"
"""


def write_project(root: Path, suite: str = SUITE, base_url: str = "http://127.0.0.1:9/v1") -> Path:
    """A minimal project: pyproject, a response model module, a two-case real-speech dataset, one suite."""
    (root / "evals").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        "[project]\nname = 'scratch'\nversion = '0'\n", encoding="utf-8"
    )
    (root / "evals" / "__init__.py").write_text("", encoding="utf-8")
    (root / "evals" / "models.py").write_text(MODELS, encoding="utf-8")
    (root / "evals" / "intro.eval.toml").write_text(
        suite.format(base_url=base_url), encoding="utf-8"
    )
    data = root / "datasets" / "intro"
    (data / "audio").mkdir(parents=True, exist_ok=True)
    shutil.copy(JASON, data / "audio" / "jason.wav")
    shutil.copy(MARCELO, data / "audio" / "marcelo.mp3")
    (data / "metadata.jsonl").write_text(
        '{"file_name": "audio/jason.wav", "id": "jason", "expected": {"name": "Jason", "age": 20}, '
        '"tags": {"speaker": "seed"}}\n'
        '{"file_name": "audio/marcelo.mp3", "id": "marcelo", "expected": {"name": "Marcelo", "age": null}, '
        '"tags": {"speaker": "marcelo"}}\n',
        encoding="utf-8",
    )
    return root


@pytest.fixture(scope="module")
def local_server() -> Iterator[object]:
    from audio_evals.local.runner import LocalServer

    with LocalServer() as server:
        yield server


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, local_server: object) -> Path:
    """A scratch project recorded once against the local server (with a canary key and org/project ids)."""
    require_shared(JASON, MARCELO)
    root = write_project(tmp_path_factory.mktemp("recorded"), base_url=local_server.base_url)  # type: ignore[attr-defined]
    proc = run_pytest(
        root,
        "evals",
        "--record-mode=once",
        "--variant=local-baseline",
        "--variant=via-url",
        env={
            "CANARY_KEY": CANARY,
            "OPENAI_ORG_ID": "org-canaryorg123",
            "OPENAI_PROJECT_ID": "proj_canaryproj",
        },
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


@pytest.fixture
def project(recorded: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "project"
    shutil.copytree(recorded, dest)
    shutil.rmtree(dest / "reports", ignore_errors=True)
    return dest


def test_record_writes_one_small_cassette_per_variant_without_audio_or_secrets(
    recorded: Path,
) -> None:
    files = sorted(
        p.relative_to(recorded).as_posix() for p in (recorded / "cassettes").rglob("*.yaml")
    )
    assert files == ["cassettes/intro/local-baseline.yaml", "cassettes/intro/via-url.yaml"]
    jason_b64_head = __import__("base64").b64encode(JASON.read_bytes()[:3000]).decode()[:200]
    for path in (recorded / "cassettes").rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        doc = yaml.safe_load(text)
        assert len(doc["interactions"]) == 2
        assert doc["metadata"]["audio_evals"]["format"] == CASSETTE_FORMAT
        assert path.stat().st_size < 20_000, "audio must be stored as a digest"
        assert jason_b64_head not in text
        assert "sha256:" in text
        for inter in doc["interactions"]:
            assert set(inter["request"]["headers"]) <= {"content-type", "x-audio-evals-case"}
            assert inter["response"]["headers"]["x-audio-evals-latency-ms"]
    for folder in ("cassettes", "reports"):
        for path in (recorded / folder).rglob("*"):
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
                for secret in (CANARY, "org-canaryorg123", "proj_canaryproj"):
                    assert secret not in text, f"{secret} leaked into {path}"


def test_replay_is_offline_and_gives_the_recorded_results(recorded: Path, project: Path) -> None:
    proc = run_pytest(project, "evals")
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "4 passed, 2 skipped" in out
    assert "local server" not in out.lower(), "replay must not start the local server"
    recorded_csv = (recorded / "reports" / "latest" / "results.csv").read_text(encoding="utf-8")
    replayed_csv = (project / "reports" / "latest" / "results.csv").read_text(encoding="utf-8")
    assert replayed_csv == recorded_csv
    # the report shows what came back
    cases = (project / "reports" / "latest" / "cases.csv").read_text(encoding="utf-8")
    assert '""name""' in cases or '"name"' in cases
    assert "audio-evals: field accuracy" in out and "name" in out and "age" in out


def test_replay_twice_gives_byte_identical_results(project: Path) -> None:
    run_pytest(project, "evals")
    first = (project / "reports" / "latest" / "results.csv").read_bytes()
    run_pytest(project, "evals")
    assert (project / "reports" / "latest" / "results.csv").read_bytes() == first


def test_variant_without_cassette_is_skipped_with_the_command_that_records_it(
    project: Path,
) -> None:
    proc = run_pytest(project, "evals")
    assert "no cassette cassettes/intro/gpt-audio-1.5.yaml" in proc.stdout
    assert (
        "OPENAI_API_KEY=... pytest evals --record-mode=once --variant gpt-audio-1.5" in proc.stdout
    )


def test_changed_prompt_is_a_cassette_miss_that_names_case_and_command(project: Path) -> None:
    suite = project / "evals" / "intro.eval.toml"
    suite.write_text(
        suite.read_text().replace("Extract the following", "Please extract the"), encoding="utf-8"
    )
    proc = run_pytest(project, "evals", "--variant", "local-baseline")
    out = proc.stdout
    assert proc.returncode == 1
    assert "2 failed" in out
    assert (
        "cassette miss in cassettes/intro/local-baseline.yaml (suite intro, variant local-baseline, "
        "case jason): direct sent POST /v1/chat/completions that has no recorded answer: nearest "
        "recorded POST /v1/chat/completions of this case differs in: messages[0].content[0].text"
        in out
    )
    assert (
        "Re-record it with: pytest evals --record-mode=new_episodes --variant local-baseline -k jason"
        in out
    )
    assert "Connection error" not in out


def test_variant_and_k_selection(project: Path) -> None:
    proc = run_pytest(project, "evals", "--variant", "via-url", "-k", "marcelo", "-v")
    assert proc.returncode == 0, proc.stdout
    assert "evals/intro.eval.toml::intro[via-url-marcelo] PASSED" in proc.stdout
    assert "1 passed, 5 deselected" in proc.stdout
    bad = run_pytest(project, "evals", "--variant", "nope")
    assert bad.returncode != 0 and "--variant 'nope' matches no variant" in bad.stderr


def test_replay_under_xdist_gives_the_same_results(project: Path) -> None:
    run_pytest(project, "evals")
    single = (project / "reports" / "latest" / "results.csv").read_bytes()
    proc = run_pytest(project, "evals", "-n", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (project / "reports" / "latest" / "results.csv").read_bytes() == single


def test_recording_under_xdist_is_refused_up_front(project: Path) -> None:
    proc = run_pytest(project, "evals", "-n", "2", "--record-mode=new_episodes")
    assert proc.returncode != 0
    assert "cannot record under pytest-xdist" in proc.stderr + proc.stdout


def test_rerecording_against_the_local_server_gives_the_same_results(
    recorded: Path, project: Path
) -> None:
    proc = run_pytest(project, "evals", "--record-mode=rewrite", "--variant", "local-baseline")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "local server" in proc.stdout.lower()
    before = (
        (recorded / "reports" / "latest" / "results.csv").read_text(encoding="utf-8").splitlines()
    )
    after = (
        (project / "reports" / "latest" / "results.csv").read_text(encoding="utf-8").splitlines()
    )
    assert after[0] == before[0]
    assert after[1:] == [line for line in before[1:] if ",local-baseline," in line]


def test_unused_interactions_are_reported_and_pruned(project: Path) -> None:
    meta = project / "datasets" / "intro" / "metadata.jsonl"
    meta.write_text(meta.read_text().splitlines()[0] + "\n", encoding="utf-8")
    proc = run_pytest(project, "evals", "--variant", "local-baseline")
    assert "cassettes/intro/local-baseline.yaml: 1 interaction(s) unused" in proc.stdout
    (project / "cassettes" / "intro" / "gone.yaml").write_text(
        "interactions: []\nversion: 1\n", encoding="utf-8"
    )
    proc = run_pytest(project, "evals", "--variant", "local-baseline", "--prune-cassettes")
    assert "1 interaction(s) removed" in proc.stdout
    assert "cassettes/intro/gone.yaml: removed" in proc.stdout
    doc = yaml.safe_load(
        (project / "cassettes" / "intro" / "local-baseline.yaml").read_text(encoding="utf-8")
    )
    assert len(doc["interactions"]) == 1
    assert not (project / "cassettes" / "intro" / "gone.yaml").exists()


def test_python_api_module_runs_through_the_same_machinery(project: Path) -> None:
    (project / "evals" / "test_intro_api.py").write_text(
        textwrap.dedent(
            """
            import json
            from pathlib import Path

            import pytest

            from audio_evals import load_suite

            SUITE = load_suite(Path(__file__).with_name("intro.eval.toml"))


            @pytest.mark.audio_eval(SUITE)
            def test_name_is_one_word(audio_eval_result):
                predicted = json.loads(audio_eval_result.predicted)
                assert len(predicted["name"].split()) <= 1
            """
        ),
        encoding="utf-8",
    )
    toml = project / "evals" / "intro.eval.toml"
    (project / "evals" / "intro.suite.toml").write_text(
        'name = "intro"\n' + toml.read_text(), encoding="utf-8"
    )
    toml.unlink()
    api = project / "evals" / "test_intro_api.py"
    api.write_text(
        api.read_text().replace('"intro.eval.toml"', '"intro.suite.toml"'), encoding="utf-8"
    )
    proc = run_pytest(project, "evals", "-v", "--variant", "local-baseline")
    assert "test_intro_api.py::test_name_is_one_word[local-baseline-jason]" in proc.stdout
    assert "suite intro" in proc.stdout


def test_broken_dataset_fails_its_suite_naming_file_line_and_field(project: Path) -> None:
    meta = project / "datasets" / "intro" / "metadata.jsonl"
    meta.write_text(meta.read_text().replace('"age": 20', '"age": "twenty"'), encoding="utf-8")
    proc = run_pytest(project, "evals")
    assert proc.returncode == 1
    assert "evals/intro.eval.toml F" in proc.stdout and "1 failed" in proc.stdout
    assert (
        "metadata.jsonl:1: field 'expected.age': label does not validate against Intro"
        in proc.stdout
    )
    assert "Traceback" not in proc.stdout


def test_seed_example_clip_as_a_one_case_suite(tmp_path: Path) -> None:
    """The instructor seed: Person(name='Jason', age=20) from its own example clip, recorded then replayed."""
    require_shared(JASON, MARCELO)
    root = write_project(
        tmp_path,
        suite=textwrap.dedent(
            """
            dataset = "datasets/seed"
            response_model = "evals.models:Person"
            prompt = "Extract the following information from the audio"

            [[variants]]
            name = "local-baseline"
            model = "local-baseline"
            base_url = "local"
            """
        ),
    )
    seed = root / "datasets" / "seed"
    (seed / "audio").mkdir(parents=True)
    shutil.copy(JASON, seed / "audio" / "output.wav")
    (seed / "metadata.jsonl").write_text(
        '{"file_name": "audio/output.wav", "id": "seed", "expected": {"name": "Jason", "age": 20}}\n',
        encoding="utf-8",
    )
    first = run_pytest(root, "evals", "--record-mode=once")
    assert first.returncode == 0, first.stdout + first.stderr
    recorded = (root / "reports" / "latest" / "cases.csv").read_text(encoding="utf-8")
    assert ",recorded," in recorded, "the latency stored with the interaction is the one reported"
    second = run_pytest(root, "evals")
    assert second.returncode == 0, second.stdout
    assert "local server" not in second.stdout
    assert (root / "reports" / "latest" / "cases.csv").read_text(encoding="utf-8") == recorded
    results = (root / "reports" / "latest" / "results.csv").read_text(encoding="utf-8").splitlines()
    assert results[0].startswith(
        "suite,variant,case_id,repeat,field,kind,expected,predicted,correct,score"
    )
    assert [line.split(",")[4] for line in results[1:]] == ["name", "age"]
    print("seed clip came back as:", [line.split(",")[6:9] for line in results[1:]])
