"""Secrets: a key, an organization or a project id is never printed or written, on any path.

Canary credentials are set in the environment of real `pytest evals` runs against the real local
server (which requires one of the canary keys), every failure path we know is provoked, and
every byte the runs print or write is searched for them.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from audio_evals.local import LocalServer

from ..conftest import both, run_pytest
from .conftest import (
    copy_project,
    interactions,
    suite_text,
    variant,
    write_dataset,
    write_project,
)

KEY = "sk-canary-KEY-5f1d7a3c9e2b4d6f8a0c"
WRONG_KEY = "sk-canary-WRONG-0a2c4e6f8b1d3f5a7c9e"
ORG = "org-canaryORG7f3a9c1e5b"
PROJECT = "proj_canaryPROJ2d4f6a8c0e"
CANARIES = (KEY, WRONG_KEY, ORG, PROJECT)
ENV = {
    "OPENAI_API_KEY": KEY,
    "CANARY_KEY": KEY,
    "WRONG_KEY": WRONG_KEY,
    "OPENAI_ORG_ID": ORG,
    "OPENAI_PROJECT_ID": PROJECT,
}
# Every pytest option that shows more of a failure, and every channel logs can take.
LOUD = (
    "-l",
    "--tb=long",
    "-vv",
    "--junitxml=junit.xml",
    "-o",
    "junit_logging=all",
    "--log-level=DEBUG",
    "--log-file=pytest.log",
    "--log-file-level=DEBUG",
    "--log-cli-level=DEBUG",
)

EXTRACTORS = '''
import logging
import os

import httpx


def raises_with_the_key(case, variant):
    """Puts the key, the organization and the project in an exception message."""
    raise ValueError(
        f"refused key {variant.api_key} for {os.environ['OPENAI_ORG_ID']} / "
        f"{os.environ['OPENAI_PROJECT_ID']}"
    )


def key_in_query(case, variant):
    """Sends the key as a URL query parameter (as Gemini's ?key= does); the server says 400."""
    logging.getLogger("user.code").info("calling %s?key=%s", variant.base_url, variant.api_key)
    response = httpx.post(
        f"{variant.base_url}/chat/completions?key={variant.api_key}",
        headers={"Authorization": f"Bearer {variant.api_key}"},
        json={"model": variant.model, "messages": []},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


async def too_slow(case, variant):
    """A call the server answers after 5 s, with a 1 s timeout."""
    return await variant.openai.chat.completions.create(
        model=variant.model,
        messages=[{"role": "user", "content": "hello"}],
        extra_headers={"X-Audio-Evals-Fault": "slow=5000"},
    )


async def faulty(case, variant):
    """A request the server refuses (400, a fault header it cannot parse) or fails once (500)."""
    from instructor.processing.multimodal import Audio

    fault = "no-such-fault" if case.id.startswith("jason") else "500-once"
    return await variant.instructor.chat.completions.create(
        model=variant.model,
        response_model=variant.response_model,
        messages=[{"role": "user", "content": [variant.prompt, Audio.from_path(case.audio_path)]}],
        extra_headers={"X-Audio-Evals-Fault": fault},
    )
'''

API_TESTS = '''
import logging
import os
from pathlib import Path

import pytest

from audio_evals import Suite, Variant, load_dataset
from evals.models import Person

ROOT = Path(__file__).resolve().parents[1]
DATA = load_dataset(ROOT / "datasets" / "people", Person)
BROKEN = Suite(
    name="api-broken", dataset=DATA, response_model=Person,
    variants=(Variant(name="broken", model="local-baseline", base_url=os.environ["SERVER"],
                      api_key_env="CANARY_KEY", extract="no_such_module:extract"),),
)
WORKING = Suite(
    name="api-body", dataset=DATA, response_model=Person,
    variants=(Variant(name="ok", model="local-baseline", base_url=os.environ["SERVER"],
                      api_key_env="CANARY_KEY"),),
)


@pytest.mark.audio_eval(BROKEN)
def test_extractor_that_cannot_import(audio_eval_result):
    """The engine fails the batch (its extractor does not import) inside the fixture."""


@pytest.mark.audio_eval(WORKING)
def test_body_that_fails_holding_the_key(audio_eval_result):
    """A test body with the key in a local, in its output, in a log record and in an assertion."""
    key = os.environ["CANARY_KEY"]
    print("the key is", key)
    logging.getLogger("user.test").warning("key=%s", key)
    assert audio_eval_result.predicted == key
'''


def suites(server: str) -> dict[str, str]:
    """One suite per failure path (the `people` dataset: two clips)."""
    url = server
    return {
        "bad_url": suite_text("people", variant("v", base_url="http://[::1")),
        "raises": suite_text(
            "people",
            variant("v", url, api_key_env="CANARY_KEY", extract="evals.paths:raises_with_the_key"),
        ),
        "query": suite_text(
            "people",
            variant("v", url, api_key_env="CANARY_KEY", extract="evals.paths:key_in_query"),
        ),
        "unauthorized": suite_text("people", variant("v", url, api_key_env="WRONG_KEY")),
        "timeout": suite_text(
            "people",
            variant("v", url, api_key_env="CANARY_KEY", extract="evals.paths:too_slow", timeout=1),
        ),
        "faults": suite_text(
            "people", variant("v", url, api_key_env="CANARY_KEY", extract="evals.paths:faulty")
        ),
        "answers": suite_text("people", variant("v", url, api_key_env="CANARY_KEY")),
    }


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """The local server, answering only the canary key (401 to any other)."""
    with LocalServer(api_key=KEY) as running:
        yield running


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, server: LocalServer) -> Path:
    """Every failure path recorded at once, with every option that shows more."""
    root = write_project(
        tmp_path_factory.mktemp("secrets"),
        suites(server.base_url),
        files={"evals/paths.py": EXTRACTORS, "evals/test_api.py": API_TESTS},
    )
    write_dataset(root, "people", [("jason-1", "jason"), ("maria-1", "maria")])
    env = {**ENV, "SERVER": server.base_url}
    proc = run_pytest(root, "evals", "--record-mode=once", *LOUD, env=env)
    (root / "record.out").write_text(both(proc), encoding="utf-8")
    assert proc.returncode == 1, both(proc)
    return root


def leaks(root: Path) -> list[str]:
    """Every file under `root` that holds a canary, with the canary."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace")
            found += [f"{path.relative_to(root)}: {c}" for c in CANARIES if c in text]
    return found


def test_a_key_is_never_printed_or_written_on_any_failure_path(recorded: Path) -> None:
    out = (recorded / "record.out").read_text(encoding="utf-8")
    # each failure path was taken, and said what happened without the secrets
    assert "key 'variants[0].base_url': must be 'local' or an http(s) URL" in out
    assert "raised ValueError: refused key *** for *** / ***" in out
    assert "?key=***" in out  # the URL as httpx logged it and as the error names it
    assert "HTTP 401: Incorrect API key provided" in out
    assert "[timeout]" in out
    assert "batch api-broken/broken stopped: ModuleNotFoundError" in out
    assert "the key is ***" in out and "key=***" in out  # the test body's output and log record
    assert (recorded / "junit.xml").is_file() and (recorded / "pytest.log").is_file()
    assert list((recorded / "reports" / "latest").glob("*.csv"))
    assert list((recorded / "cassettes").rglob("*.yaml"))
    assert leaks(recorded) == []


def test_a_replay_miss_and_xdist_workers_print_no_secret(recorded: Path, tmp_path: Path) -> None:
    project = copy_project(recorded, tmp_path / "project")
    suite = project / "evals" / "answers.eval.toml"
    suite.write_text(suite.read_text().replace("Extract the", "Please extract the"))
    env = {**ENV, "SERVER": "http://127.0.0.1:9/v1"}
    miss = run_pytest(project, "evals", *LOUD, env=env)
    assert "cassette miss in cassettes/answers/v.yaml" in miss.stdout, both(miss)
    parallel = run_pytest(project, "evals", "-n", "2", "-l", "--tb=long", "-vv", env=env)
    assert "cassette miss" in parallel.stdout, both(parallel)
    for proc in (miss, parallel):
        assert proc.returncode == 1
        assert not [c for c in CANARIES if c in both(proc)]
    assert leaks(project) == []


def test_a_401_or_a_refused_request_is_never_recorded(recorded: Path, tmp_path: Path) -> None:
    """Only answers are recorded: a 401 (wrong key), a 400 (a fault header the server refuses)
    and a 500 the client retried leave nothing; the retried request's 200 is recorded."""
    library = recorded / "cassettes"
    assert not (library / "unauthorized" / "v.yaml").exists()  # every call was a 401
    assert not (library / "query" / "v.yaml").exists()  # every call was a 400
    faults = interactions(library / "faults" / "v.yaml")
    assert [i["response"]["status"]["code"] for i in faults] == [200]
    assert [i["request"]["headers"]["x-audio-evals-case"] for i in faults] == [["maria-1/0"]]
    answers = interactions(library / "answers" / "v.yaml")
    assert [i["response"]["status"]["code"] for i in answers] == [200, 200]

    # replayed, the refused calls are not answers: no cassette (skipped), or a miss (failed)
    project = copy_project(recorded, tmp_path / "project")
    proc = run_pytest(project, "evals", "-rA", env={**ENV, "SERVER": "http://127.0.0.1:9/v1"})
    out = proc.stdout
    assert re.search(r"^SKIPPED \[2\] .*: no cassette cassettes/unauthorized/v\.yaml", out, re.M), (
        out
    )
    assert "FAILED evals/faults.eval.toml::faults[v-jason-1] - cassette miss" in out
    assert "cassette miss in cassettes/faults/v.yaml (suite faults, variant v, case jason-1)" in out
    assert "PASSED evals/faults.eval.toml::faults[v-maria-1]" in out
    assert "PASSED evals/answers.eval.toml::answers[v-jason-1]" in out


def test_secret_reprs_hide_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a traceback with -l prints of the engine's endpoint and secrets: never the value."""
    from audio_evals.engine import Engine
    from audio_evals.project import Project
    from audio_evals.suites import Variant

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    engine = Engine(Project.at(Path(__file__).parent))
    endpoint = engine._endpoint(Variant(name="v", model="m", base_url="http://h/v1"), True)
    assert endpoint.api_key == KEY  # the value is there to be used...
    shown = repr(endpoint) + repr(engine.secrets())
    assert KEY not in shown and "'***'" in shown  # ...and never shown


def test_log_records_and_reports_are_redacted() -> None:
    """The two channels no message of ours controls: log records and pytest reports."""
    import logging

    from audio_evals.redaction import redact_report, redacted_logs

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    log = logging.getLogger("reliability.redaction")
    log.addHandler(Keep())
    log.setLevel(logging.DEBUG)
    try:
        with redacted_logs(lambda: [KEY]):
            log.debug("POST /v1?key=%s and %s", "abc12345", KEY)
            try:
                raise RuntimeError(f"boom {KEY}")
            except RuntimeError:
                log.exception("failed")
        log.info("after: %s", KEY)  # outside the block: untouched
    finally:
        log.handlers.clear()
    assert records[0].getMessage() == "POST /v1?key=*** and ***"
    assert KEY not in (records[1].exc_text or "") and "boom ***" in (records[1].exc_text or "")
    assert records[2].getMessage() == f"after: {KEY}"

    report = pytest.TestReport(
        "t", ("t", 0, "t"), {}, "failed", textwrap.dedent(f"key = '{KEY}'"), "call", [("out", KEY)]
    )
    redact_report(report, [KEY])
    assert report.longrepr == "key = '***'" and report.sections == [("out", "***")]
