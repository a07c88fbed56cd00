"""Replaying a large batch in forked processes: same results, exact hygiene, and a failed child loses nothing."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from audio_evals import forked
from audio_evals.results import CaseResult, EvalRef

from .conftest import run_pytest, write_tone

CASES = 2 * forked.MIN_SHARE + 2

MODELS = """
from pydantic import BaseModel, Field


class Person(BaseModel):
    name: str | None = Field(default=None, description="The speaker's first name")
    age: int | None = Field(default=None, description="The speaker's age in years")
"""

SUITE = """
dataset = "datasets/tones"
response_model = "evals.models:Person"
prompt = "Extract the following information from the audio"

[[variants]]
name = "local-baseline"
model = "local-baseline"
base_url = "local"
"""

# A child that dies the moment it is forked, as a crashed or OOM-killed replay process would.
CRASHING_CHILD = """
import os

os.register_at_fork(after_in_child=lambda: os._exit(7))
"""


def refs(cases: int, repeats: int = 1) -> list[EvalRef]:
    """Units of one batch in pytest order: case by case, repeats in order."""
    return [EvalRef("s", "v", f"c{i:03d}", r) for i in range(cases) for r in range(repeats)]


def result(ref: EvalRef) -> CaseResult:
    """A scored result for `ref` (fields as the scorer writes them)."""
    return CaseResult(
        suite=ref.suite,
        variant=ref.variant,
        case_id=ref.case_id,
        repeat=ref.repeat,
        model="m",
        pipeline="direct",
        tags={},
        must_pass=False,
        error_kind=None,
        error=None,
        expected='{"name": "A"}',
        predicted='{"name": "A"}',
        fields=[{"field": "name", "correct": True, "score": 1.0}],
    )


# ---- splitting ---------------------------------------------------------------------------
def test_shares_cover_the_batch_in_order_with_the_parent_first() -> None:
    units = refs(200, repeats=2)
    shares = forked.split_shares(units, 2)
    assert len(shares) == 2
    assert [r for share in shares for r in share] == units
    assert len(shares[0]) == len(shares[1])  # a library run: the parent has nothing else to do
    assert shares[0][0] == units[0]
    under_pytest = forked.split_shares(units, 2, forked.PYTEST_PARENT_SHARE)
    assert [r for share in under_pytest for r in share] == units
    assert len(under_pytest[0]) < len(under_pytest[1])  # the parent also runs every pytest item


def test_repeats_of_a_case_stay_in_one_share() -> None:
    for processes in (2, 3, 4):
        shares = forked.split_shares(refs(131, repeats=3), processes)
        owner = {}
        for i, share in enumerate(shares):
            for ref in share:
                assert owner.setdefault(ref.case_id, i) == i
        assert len(shares) == processes


def test_small_batches_are_not_split() -> None:
    assert forked.processes_for(8, forked.MIN_SHARE * 2 - 1) == 1
    assert forked.processes_for(1, 10_000) == 1
    if forked.fork_supported() and threading.active_count() == 1:
        assert forked.processes_for(2, forked.MIN_SHARE * 2) == 2
        assert forked.processes_for(8, forked.MIN_SHARE * 3) == 3
        assert forked.processes_for(None, 10**6) == forked.available_cpus()
    assert forked.split_shares(refs(1), 4) == [refs(1)]


# ---- one forked share, real fork and pipe --------------------------------------------------
needs_fork = pytest.mark.skipif(not forked.fork_supported(), reason="fork() replay is Linux-only")


@needs_fork
def test_a_share_streams_every_result_and_its_plays_back() -> None:
    units = refs(300)

    def work(share: Sequence[EvalRef], emit: forked.Emit) -> dict[int, int]:
        for ref in share:
            emit(result(ref))
        return {i: 1 for i in range(len(share))}

    child = forked.fork_share(units, work)
    assert child is not None
    child.start()
    got = [child.take(ref) for ref in reversed(units)]  # out of order: the pipe never blocks
    child.close()
    assert [g.case_id if g else None for g in got] == [r.case_id for r in reversed(units)]
    assert got[0] == result(units[-1])
    assert child.error is None and child.played == {i: 1 for i in range(300)}
    assert child.missing() == []


@needs_fork
def test_a_failing_share_says_why_and_names_what_it_did_not_deliver() -> None:
    units = refs(10)

    def work(share: Sequence[EvalRef], emit: forked.Emit) -> dict[int, int]:
        for ref in share[:4]:
            emit(result(ref))
        raise RuntimeError("disk on fire")

    child = forked.fork_share(units, work)
    assert child is not None
    child.start()
    assert child.take(units[0]) == result(units[0])
    assert child.take(units[9]) is None
    child.close()
    assert child.error == "RuntimeError: disk on fire"
    assert child.missing() == units[4:]


@needs_fork
def test_a_stalled_share_is_ended_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forked, "STALL_SECONDS", 1.0)
    units = refs(3)

    def work(share: Sequence[EvalRef], emit: forked.Emit) -> dict[int, int]:
        emit(result(share[0]))
        time.sleep(3600)  # as a child stuck on a lock would
        return {}

    child = forked.fork_share(units, work)
    assert child is not None
    child.start()
    assert child.take(units[0]) == result(units[0])
    started = time.monotonic()
    assert child.take(units[1]) is None
    assert time.monotonic() - started < 30
    child.close()
    assert child.error is not None and "sent nothing for 1 s and was ended" in child.error
    assert child.missing() == units[1:]


def test_a_process_with_other_threads_does_not_fork() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert forked.processes_for(2, 10_000) == 1
    finally:
        stop.set()
        thread.join()


# ---- end to end: pytest evals on a recorded project of CASES cases ---------------------------
def write_project(root: Path) -> Path:
    """A project of CASES distinct real WAV tones, one local variant."""
    (root / "evals").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'scratch'\nversion = '0'\n")
    (root / "evals" / "__init__.py").write_text("")
    (root / "evals" / "models.py").write_text(MODELS)
    (root / "evals" / "tones.eval.toml").write_text(SUITE)
    data = root / "datasets" / "tones"
    rows = []
    for i in range(CASES):
        write_tone(data / "audio" / f"t{i:03d}.wav", seconds=0.05, freq=200.0 + 7 * i)
        expected = {"name": "Tone", "age": i}
        rows.append(
            json.dumps(
                {"id": f"t{i:03d}", "file_name": f"audio/t{i:03d}.wav", "expected": expected}
            )
        )
    (data / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not forked.fork_supported():
        pytest.skip("fork() replay is Linux-only")
    root = write_project(tmp_path_factory.mktemp("tones"))
    proc = run_pytest(root, "evals", "--record-mode=once")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_pytest(root, "evals", "--eval-processes=1")
    yield root


@pytest.fixture
def project(recorded: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "project"
    shutil.copytree(recorded, dest)
    return dest


def results_csv(root: Path) -> bytes:
    return (root / "reports" / "latest" / "results.csv").read_bytes()


def test_forked_replay_gives_the_results_of_one_process(recorded: Path, project: Path) -> None:
    proc = run_pytest(project, "evals", "--eval-processes=2", "-v")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"replaying {CASES} cases of tones/local-baseline in 2 processes" in proc.stdout
    assert f"{CASES} passed" in proc.stdout
    assert results_csv(project) == results_csv(recorded)
    assert "unused" not in proc.stdout


def test_forked_replay_counts_unused_interactions_exactly(project: Path) -> None:
    meta = project / "datasets" / "tones" / "metadata.jsonl"
    rows = meta.read_text().splitlines()
    meta.write_text("\n".join(rows[:-1]) + "\n")  # the last case's interaction is now unused
    proc = run_pytest(project, "evals", "--eval-processes=2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cassettes/tones/local-baseline.yaml: 1 interaction(s) unused" in proc.stdout
    proc = run_pytest(project, "evals", "--eval-processes=2", "--prune-cassettes")
    assert "1 interaction(s) removed" in proc.stdout
    cassette = (project / "cassettes" / "tones" / "local-baseline.yaml").read_text()
    assert cassette.count("- request:") == CASES - 1
    proc = run_pytest(project, "evals", "--eval-processes=2")  # the kept ones are the used ones
    assert proc.returncode == 0 and f"{CASES - 1} passed" in proc.stdout, proc.stdout
    assert "unused" not in proc.stdout


def test_a_crashed_replay_process_loses_no_result(recorded: Path, project: Path) -> None:
    (project / "conftest.py").write_text(CRASHING_CHILD)
    proc = run_pytest(project, "evals", "--eval-processes=2", "--prune-cassettes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "a replay process failed (the replay process ended before sending" in proc.stdout
    assert f"{CASES} passed" in proc.stdout
    assert results_csv(project) == results_csv(recorded)
    assert "unused interactions not counted: a replay process failed" in proc.stdout
    cassette = (project / "cassettes" / "tones" / "local-baseline.yaml").read_text()
    assert cassette.count("- request:") == CASES  # nothing pruned on unknown plays


def test_bad_process_count_is_a_usage_error(project: Path) -> None:
    proc = run_pytest(project, "evals", "--eval-processes=0")
    assert proc.returncode == 4
    assert "expected a positive number or 'auto', got '0'" in proc.stderr
