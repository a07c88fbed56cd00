"""Lost or unreadable results: Ctrl-C, a broken suite, an unreadable cassette, a typo, -x.

Real `pytest evals` runs in scratch projects; Ctrl-C is a real SIGINT sent to a recording run
against a slow real local server, in the middle of a batch.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from audio_evals.local import LocalServer

from ..conftest import both, gate_lines, run_pytest
from .conftest import (
    case_of,
    copy_project,
    interactions,
    latency_of,
    suite_text,
    variant,
    write_dataset,
    write_project,
)

EIGHT = [(f"c{i}", "jason" if i % 2 else "maria") for i in range(8)]
FLOOR = '[tool.audio-evals.gates]\nmin_accuracy = { "*:*" = 0.0 }\n'

# pytest in a child process with Python's own SIGINT handler, whatever the parent ignores
# (a shell starts background jobs with SIGINT ignored, and children inherit that).
INTERRUPTIBLE = (
    "import signal, sys, pytest; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.exit(pytest.main(sys.argv[1:]))"
)


# ---- Ctrl-C in the middle of a recording batch ----------------------------------------------------


@pytest.fixture(scope="module")
def slow_server() -> Iterator[LocalServer]:
    """A local server that answers every call after 0.8 s."""
    with LocalServer(latency_ms=800) as server:
        yield server


def answered(server: LocalServer) -> int:
    return int(server.stats()["by_status"].get("200", 0))


def test_ctrl_c_mid_batch_leaves_a_partial_report_and_the_command_that_resumes(
    tmp_path: Path, slow_server: LocalServer
) -> None:
    root = write_project(
        tmp_path,
        {
            "slow": suite_text(
                "people", variant("a", slow_server.base_url), variant("b", slow_server.base_url)
            )
        },
        pyproject=FLOOR,
    )
    write_dataset(root, "people", EIGHT)
    slow_server.reset_stats()
    args = ["evals", "--record-mode=once", "--eval-concurrency=2"]
    with (root / "interrupted.out").open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", INTERRUPTIBLE, *args],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while answered(slow_server) < 3 and time.monotonic() < deadline:
            assert child.poll() is None, (root / "interrupted.out").read_text()
            time.sleep(0.05)
        assert answered(slow_server) >= 3, "the recording never got going"
        child.send_signal(signal.SIGINT)  # 3 of batch a's 8 answers are in, more are in flight
        assert child.wait(timeout=120) == pytest.ExitCode.INTERRUPTED
    printed = (root / "interrupted.out").read_text()

    # what completed is in the cassette and in the report, case for case
    cassette = root / "cassettes" / "slow" / "a.yaml"
    kept = {case_of(i): latency_of(i) for i in interactions(cassette)}
    assert 1 <= len(kept) < 8, kept
    assert not (root / "cassettes" / "slow" / "b.yaml").exists()
    latest = root / "reports" / "latest"
    rows = (latest / "cases.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert sorted(f"{r.split(',')[2]}/0" for r in rows) == sorted(kept)

    # the saved folder says it is partial, where a reader looks first, and how to finish it
    resume = "pytest evals --eval-concurrency=2 --record-mode=new_episodes"
    summary = (latest / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith(
        f"> **PARTIAL RUN (interrupted): {len(kept)} of 16 selected cases have results "
        f"(slow/a: interrupted mid-batch, {len(kept)} of 8 have results; "
        "slow/b: interrupted before it started, 0 of 8 have results)."
    ), summary[:400]
    assert f"Resume with: {resume}**" in summary.splitlines()[0]
    record = json.loads((latest / "run.json").read_text(encoding="utf-8"))["run"]
    assert (record["complete"], record["interrupted"], record["resume"]) == (False, True, resume)
    assert [(b["variant"], b["status"], b["results"]) for b in record["batches"]] == [
        ("a", "interrupted", len(kept)),
        ("b", "interrupted", 0),
    ]
    # ... and no gate passes on it
    gates = gate_lines(printed)
    assert gates and {s for s, _ in gates.values()} == {"FAIL"}, gates
    assert gates["complete run"][1].startswith("PARTIAL RUN (interrupted)")
    assert f"Resume with: {resume}" in printed

    # the command it names finishes the run: what was recorded replays, the rest is recorded
    shutil.copytree(latest, tmp_path / "partial")
    finished = run_pytest(root, *shlex.split(resume)[1:])
    assert finished.returncode == 0, both(finished)
    now = {case_of(i): latency_of(i) for i in interactions(cassette)}
    assert len(now) == 8 and {k: now[k] for k in kept} == kept
    assert len(interactions(root / "cassettes" / "slow" / "b.yaml")) == 8
    record = json.loads((latest / "run.json").read_text(encoding="utf-8"))["run"]
    assert record["complete"] is True and record["resume"] is None
    assert not (latest / "summary.md").read_text(encoding="utf-8").startswith("> **PARTIAL")

    # comparing with the partial folder says it is one
    compare = subprocess.run(
        [
            sys.executable,
            "-m",
            "audio_evals.cli",
            "compare",
            str(tmp_path / "partial"),
            str(latest),
        ],
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr
    warning = f"audio-evals compare: warning: A ({tmp_path / 'partial'}) is a PARTIAL RUN"
    assert warning in compare.stderr
    assert "B (" not in compare.stderr


def test_ctrl_c_during_audio_evals_run_also_leaves_a_partial_report(
    tmp_path: Path, slow_server: LocalServer
) -> None:
    """The same without pytest: `audio-evals run` reports what completed, marked partial."""
    root = write_project(
        tmp_path,
        {"slow": suite_text("people", variant("a", slow_server.base_url))},
        pyproject=FLOOR,
    )
    write_dataset(root, "people", EIGHT[:4])
    slow_server.reset_stats()
    code = INTERRUPTIBLE.replace("import signal, sys, pytest", "import signal, sys").replace(
        "pytest.main(sys.argv[1:])", "__import__('audio_evals.cli').cli.main()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, "run", "--record-mode", "once", "--concurrency", "1"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while answered(slow_server) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    printed, _ = child.communicate(timeout=120)
    assert child.returncode == 130, printed
    resume = "audio-evals run --concurrency 1 --record-mode=new_episodes"
    assert f"Resume with: {resume}" in printed
    record = json.loads((root / "reports" / "latest" / "run.json").read_text(encoding="utf-8"))[
        "run"
    ]
    done = len(interactions(root / "cassettes" / "slow" / "a.yaml"))
    assert (record["complete"], record["resume"]) == (False, resume)
    assert 1 <= record["batches"][0]["results"] == done < 4
    finished = subprocess.run(
        [sys.executable, "-m", "audio_evals.cli", *shlex.split(resume)[1:]],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    record = json.loads((root / "reports" / "latest" / "run.json").read_text(encoding="utf-8"))[
        "run"
    ]
    assert record["complete"] is True and record["batches"][0]["results"] == 4


# ---- a replay project: broken suites, unreadable cassettes, typos, -x ------------------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Suite `good` with variants a and b, recorded once against the local server."""
    root = write_project(
        tmp_path_factory.mktemp("lost"),
        {"good": suite_text("people", variant("a"), variant("b"))},
        pyproject=FLOOR,
    )
    write_dataset(root, "people", [("c1", "jason"), ("c2", "maria"), ("c3", "jason")])
    proc = run_pytest(root, "evals", "--record-mode=once", "--eval-concurrency=2")
    assert proc.returncode == 0, both(proc)
    return root


@pytest.fixture
def project(recorded: Path, tmp_path: Path) -> Path:
    return copy_project(recorded, tmp_path / "project")


def test_a_broken_suite_fails_alone_and_the_other_suites_run_and_are_judged(
    project: Path,
) -> None:
    write_dataset(project, "rows", [("r1", "jason"), ("r2", "maria")])
    meta = project / "datasets" / "rows" / "metadata.jsonl"
    meta.write_text(meta.read_text().replace('"id": "r2"', '"id": "r2", '), encoding="utf-8")
    evals = project / "evals"
    (evals / "bad_row.eval.toml").write_text(suite_text("rows", variant("a")), encoding="utf-8")
    (evals / "bad_toml.eval.toml").write_text("dataset = \n", encoding="utf-8")
    proc = run_pytest(project, "evals", "-v")
    out = proc.stdout
    assert proc.returncode == 1, both(proc)
    assert "error during collection" not in out and "Interrupted" not in out
    assert "Traceback" not in both(proc)
    for broken in ("bad_row", "bad_toml"):  # one failed item each
        assert re.search(rf"^evals/{broken}\.eval\.toml::\S+ FAILED", out, re.M), out
    assert "datasets/rows/metadata.jsonl:2" in out  # the broken row, by file and line
    assert "bad_toml.eval.toml:1: invalid TOML" in out  # the broken file, by line
    assert out.count(" PASSED") >= 6  # good's six cases ran...
    gates = gate_lines(out)  # ...and were judged, alone: nothing fails for the broken ones
    assert gates == {
        "min_accuracy good/a:name >= 0": gates["min_accuracy good/a:name >= 0"],
        "min_accuracy good/a:age >= 0": gates["min_accuracy good/a:age >= 0"],
        "min_accuracy good/b:name >= 0": gates["min_accuracy good/b:name >= 0"],
        "min_accuracy good/b:age >= 0": gates["min_accuracy good/b:age >= 0"],
        "max_error_rate good/a <= 0": gates["max_error_rate good/a <= 0"],
        "max_error_rate good/b <= 0": gates["max_error_rate good/b <= 0"],
    }
    assert {s for s, _ in gates.values()} == {"PASS"}


# How a cassette can be unreadable as a whole, and what its batch's first item then says.
CORRUPTIONS = {
    "a": (  # invalid YAML at the top
        lambda text: "interactions: [\n" + text,
        r"cassettes/good/a\.yaml:3: not a readable cassette \(while parsing",
    ),
    "c": (  # truncated
        lambda text: text[: len(text) // 2],
        r"cassettes/good/c\.yaml: has no audio-evals metadata block at its end",
    ),
    "d": (  # a tag that runs `touch` if the file is loaded unsafely
        lambda text: "!!python/object/apply:os.system ['touch PWNED']\n",
        r"cassettes/good/d\.yaml: not a readable cassette \(.*python/object/apply:os\.system",
    ),
    "e": (  # another harness version's format
        lambda text: text.replace("format: 2", "format: 99"),
        r"cassettes/good/e\.yaml: cassette format 99 is not format 2",
    ),
}


def test_an_unreadable_cassette_fails_its_batch_once_and_the_other_batches_run(
    project: Path,
) -> None:
    """Variants c, d and e make the same requests as a (their cassettes start as copies of a's):
    a, c, d and e each get a cassette broken a different way; b's is fine."""
    suite = project / "evals" / "good.eval.toml"
    suite.write_text(suite.read_text() + variant("c") + variant("d") + variant("e"))
    good = (project / "cassettes" / "good" / "a.yaml").read_text(encoding="utf-8")
    for name, (corrupt, _message) in CORRUPTIONS.items():
        (project / "cassettes" / "good" / f"{name}.yaml").write_text(corrupt(good))
    proc = run_pytest(project, "evals", "-v")
    out = proc.stdout
    assert proc.returncode == 1, both(proc)
    assert not (project / "PWNED").exists(), "a cassette ran code"
    assert "Traceback" not in both(proc)
    for name, (_corrupt, message) in CORRUPTIONS.items():
        # one clear message for the batch, at its first item, with what to do; every item fails
        first = out[out.index(f"_ good[{name}-c1] _") :].splitlines()[1]
        assert re.search(message, first), first
        assert first.endswith(
            "-- the other batches still run; re-record this one with: "
            f"pytest evals --record-mode=rewrite --variant {name}"
        )
        for case in ("c2", "c3"):
            assert f"evals/good.eval.toml::good[{name}-{case}] FAILED" in out
        said = f"the reason is given once, at evals/good.eval.toml::good[{name}-c1]"
        assert out.count(said) == 2
        assert gate_lines(out)[f"min_accuracy good/{name}:* >= 0"][0] == "FAIL"
    # the other batch ran and was judged, the report was written (and says it is partial)
    assert all(f"good[b-c{i}] PASSED" in out for i in (1, 2, 3))
    assert gate_lines(out)["min_accuracy good/b:name >= 0"][0] == "PASS"
    summary = (project / "reports" / "latest" / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith("> **PARTIAL RUN (a batch did not run to its end): 3 of 15")


def test_a_variant_typo_is_a_usage_error_and_nothing_else(project: Path) -> None:
    """The gates name the variants they judge (as the demo's do), so a selection that ran none of
    them would have something to report: a typo must still end in the usage error alone."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    head = "[tool.audio-evals.gates]\n"
    pyproject.write_text(text.replace(head, head + 'variants = ["a", "b"]\n'), encoding="utf-8")
    proc = run_pytest(project, "evals", "--variant", "bb")
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, both(proc)
    assert "--variant 'bb' matches no variant; known: a, b" in proc.stderr
    assert "gate" not in both(proc).lower()
    assert not (project / "reports").exists()


def test_a_session_stopped_early_is_partial_and_its_gates_fail(project: Path) -> None:
    """With -x, the first failing case stops the session: the batches after it never run."""
    meta = project / "datasets" / "people" / "metadata.jsonl"
    rows = meta.read_text(encoding="utf-8").splitlines()
    first = json.loads(rows[0])
    first["must_pass"] = True
    first["expected"] = {"name": "Nobody", "age": 99}  # so its case fails
    meta.write_text("\n".join([json.dumps(first), *rows[1:]]) + "\n", encoding="utf-8")
    proc = run_pytest(project, "evals", "-x")
    assert proc.returncode == 1, both(proc)
    gates = gate_lines(proc.stdout)
    assert gates["min_accuracy good/b:* >= 0"] == (
        "FAIL",
        "not judged: never run: the session stopped early (stopping after 1 failures)",
    )
    assert gates["complete run"][0] == "FAIL"
    record = json.loads((project / "reports" / "latest" / "run.json").read_text(encoding="utf-8"))[
        "run"
    ]
    assert [(b["variant"], b["status"], b["results"]) for b in record["batches"]] == [
        ("a", "ran", 3),  # the whole batch ran at its first item: every result is kept
        ("b", "interrupted", 0),
    ]


def test_a_test_skipped_on_purpose_does_not_make_the_run_partial(project: Path) -> None:
    """A Python-API test marked skip never asks for its results: that is a choice, not a loss."""
    (project / "evals" / "test_skipped.py").write_text(
        "from pathlib import Path\n"
        "import pytest\n"
        "from audio_evals import load_suite\n"
        "SUITE = load_suite(Path(__file__).with_name('good.eval.toml')).derive('good-api')\n\n"
        "@pytest.mark.skip(reason='not today')\n"
        "@pytest.mark.audio_eval(SUITE)\n"
        "def test_skipped(audio_eval_result):\n"
        "    pass\n",
        encoding="utf-8",
    )
    proc = run_pytest(project, "evals")
    assert proc.returncode == 0, both(proc)
    assert " 6 skipped" in proc.stdout
    record = json.loads((project / "reports" / "latest" / "run.json").read_text(encoding="utf-8"))[
        "run"
    ]
    assert record["complete"] is True, record
