"""Wrong numbers: an errored case, a subset baseline, a key that is not set, concurrent replays.

Real `pytest evals` runs in scratch projects recorded against the real local server.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

KEY = "sk-right-key-0123456789"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# ---- an errored case is wrong on every field; a run where every call fails passes no gate --------

ALL_GATES = """
[tool.audio-evals.gates]
min_accuracy = { "*:*" = 0.0 }
min_exact_accuracy = { "*" = 0.0 }
max_cost_per_case = { "*" = 1.0 }
max_p95_latency_ms = { "*" = 1e9 }
max_error_rate = 1.0

[tool.audio-evals.gates.regression]
max_drop = 0.05
test = "none"
"""


def test_a_run_where_every_call_fails_passes_no_gate(tmp_path: Path) -> None:
    """Every call is refused (401). `age` is labelled empty, so an errored case scored as
    `both_empty` would be right; every gate is as lenient as it can be (even 100% errors
    allowed); the baseline has every field at 0%, so no drop is possible. Still nothing passes."""
    with LocalServer(api_key=KEY, preload=False) as server:
        root = write_project(
            tmp_path,
            {"intro": suite_text("people", variant("v", server.base_url, api_key_env="WRONG"))},
            pyproject=ALL_GATES,
        )
        write_dataset(root, "people", [("a", "jason"), ("b", "maria")], {"name": "X", "age": None})
        zero = {"accuracy": 0.0, "n": 2, "cases": {"a": 0.0, "b": 0.0}}
        baseline = {"(record)": zero, "name": zero, "age": zero}
        (root / "reports").mkdir()
        (root / "reports" / "baseline.json").write_text(
            json.dumps({"version": 1, "suites": {"intro": {"v": baseline}}})
        )
        proc = run_pytest(root, "evals", "--record-mode=all", env={"WRONG": "sk-wrong-key-987654"})
    assert proc.returncode == 1, both(proc)
    gates = gate_lines(proc.stdout)
    assert sorted(gates) == [
        "max_cost_per_case intro/v <= 1",
        "max_error_rate intro/v <= 1",
        "max_p95_latency_ms intro/v <= 1e+09",
        "min_accuracy intro/v:* >= 0",
        "min_exact_accuracy intro/v >= 0",
        "regression intro/v",
    ], gates
    assert {status for status, _ in gates.values()} == {"FAIL"}, gates
    assert gates["min_accuracy intro/v:* >= 0"] == (
        "FAIL",
        "not judged: every case errored (2 of 2): nothing was scored",
    )
    assert "HTTP 401" in proc.stdout
    rows = read_csv(root / "reports" / "latest" / "results.csv")
    assert [(r["field"], r["outcome"], r["correct"]) for r in rows] == [
        ("name", "error", "False"),
        ("age", "error", "False"),
    ] * 2
    variants = read_csv(root / "reports" / "latest" / "variants.csv")
    assert [(v["n"], v["errors"]) for v in variants] == [("2", "2")]


# ---- the error-rate gate by default: one errored case in a gated variant fails the run ----------

APP = """
from evals.models import Person


def extract(case, variant):
    \"\"\"Right on every case but one, which raises.\"\"\"
    if case.id == "b":
        raise RuntimeError("the app broke on this clip")
    return Person(name="Jason", age=20)
"""

LENIENT = """
[tool.audio-evals.gates]
min_accuracy = { "*:*" = 0.0 }
"""


def test_one_errored_case_fails_the_default_error_rate_gate(tmp_path: Path) -> None:
    """No `max_error_rate` configured: the default (0) fails a variant with 1 errored case of 3,
    while the accuracy gates, as lenient as they can be, pass on the 2 that were scored."""
    root = write_project(
        tmp_path,
        {"intro": suite_text("people", variant("v", extract="evals.app:extract"))},
        pyproject=LENIENT,
        files={"evals/app.py": APP},
    )
    write_dataset(root, "people", [("a", "jason"), ("b", "jason"), ("c", "jason")])
    proc = run_pytest(root, "evals", "--record-mode=once", "-v")
    assert proc.returncode == 1, both(proc)
    gates = gate_lines(proc.stdout)
    status, detail = gates["max_error_rate intro/v <= 0"]
    assert status == "FAIL", gates
    assert "0.333" in detail or "33.3%" in detail, detail
    assert gates["min_accuracy intro/v:name >= 0"][0] == "PASS", gates
    assert "evals.app:extract raised RuntimeError: the app broke on this clip" in proc.stdout
    variants = read_csv(root / "reports" / "latest" / "variants.csv")
    assert [(v["n"], v["errors"]) for v in variants] == [("3", "1")]
    rows = read_csv(root / "reports" / "latest" / "results.csv")
    assert {(r["case_id"], r["outcome"]) for r in rows if r["case_id"] == "b"} == {("b", "error")}


# ---- --update-baseline on a subset: one suite, --variant, -k --------------------------------------

SUBSET_CASES = [("c1", "jason"), ("c2", "maria"), ("c3", "jason")]


@pytest.fixture(scope="module")
def two_suites(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two suites of two local variants each, recorded once (the plugin starts the local server)."""
    root = write_project(
        tmp_path_factory.mktemp("baseline"),
        {
            "alpha": suite_text("people", variant("a"), variant("b")),
            "beta": suite_text("people", variant("a"), variant("b")),
        },
    )
    write_dataset(root, "people", SUBSET_CASES)
    proc = run_pytest(root, "evals", "--record-mode=once", "--eval-concurrency=2")
    assert proc.returncode == 0, both(proc)
    return root


def baseline_of(root: Path) -> dict[str, Any]:
    return json.loads((root / "reports" / "baseline.json").read_text(encoding="utf-8"))


def mark(root: Path, entries: list[tuple[str, str]], cases: tuple[str, ...] = ("c2",)) -> None:
    """Put the marker 0.5 (no single-repeat run gives it) on `cases` of every field of `entries`."""
    doc = baseline_of(root)
    for suite, var in entries:
        for value in doc["suites"][suite][var].values():
            for case in cases:
                value["cases"][case] = 0.5
    (root / "reports" / "baseline.json").write_text(json.dumps(doc), encoding="utf-8")


def marked(root: Path, suite: str, var: str, case: str = "c2") -> bool:
    entry = baseline_of(root)["suites"][suite][var]
    return all(value["cases"][case] == 0.5 for value in entry.values())


def test_update_baseline_on_a_subset_updates_what_ran_keeps_the_rest_and_refuses_failed_gates(
    two_suites: Path, tmp_path: Path
) -> None:
    root = copy_project(two_suites, tmp_path / "project")
    full = run_pytest(root, "evals", "--update-baseline")
    assert full.returncode == 0, both(full)
    assert "baseline written: reports/baseline.json" in full.stdout
    doc = baseline_of(root)
    assert {s: sorted(v) for s, v in doc["suites"].items()} == {
        "alpha": ["a", "b"],
        "beta": ["a", "b"],
    }
    assert all(
        value["n"] == 3 for s in doc["suites"].values() for e in s.values() for value in e.values()
    )
    assert min(v["accuracy"] for v in doc["suites"]["alpha"]["a"].values()) < 1, (
        "premise (for the regression below): the local model gets some field of alpha/a wrong"
    )

    # one suite: the other suite's entries are kept as they were
    mark(root, [("alpha", "a"), ("beta", "a"), ("beta", "b")])
    one = run_pytest(root, "evals/alpha.eval.toml", "--update-baseline")
    assert one.returncode == 0, both(one)
    assert not marked(root, "alpha", "a")  # what ran was updated
    assert marked(root, "beta", "a") and marked(root, "beta", "b")  # the rest was kept
    assert "alpha/a:name: " in one.stdout and "beta/" not in one.stdout  # it says what changed

    # --variant: the other variant of the same suite is kept
    mark(root, [("alpha", "a"), ("alpha", "b")])
    chosen = run_pytest(root, "evals", "--variant", "a", "--update-baseline")
    assert chosen.returncode == 0, both(chosen)
    assert not marked(root, "alpha", "a") and not marked(root, "beta", "a")
    assert marked(root, "alpha", "b")

    # -k on some cases of a variant: only those cases change, the others keep their values
    mark(root, [("alpha", "a")], cases=("c1", "c2"))
    before = baseline_of(root)["suites"]["alpha"]["a"]
    picked = run_pytest(root, "evals/alpha.eval.toml", "-k", "a-c1", "--update-baseline")
    assert picked.returncode == 0, both(picked)
    assert "alpha/a: 1 case(s) ran (a subset): only their values were updated" in picked.stdout
    after = baseline_of(root)["suites"]["alpha"]["a"]
    assert set(after) == set(before)
    for fld, value in after.items():
        assert value["n"] == 3, (fld, value)
        assert value["cases"]["c2"] == 0.5  # not run: kept
        assert value["cases"]["c3"] == before[fld]["cases"]["c3"]
        assert value["cases"]["c1"] in (0.0, 1.0)  # ran: its real value again
        assert value["accuracy"] == pytest.approx(sum(value["cases"].values()) / 3, abs=1e-6)

    # a failed gate (here a regression: any drop fails) refuses the update unless forced
    doc = baseline_of(root)
    for value in doc["suites"]["alpha"]["a"].values():
        value.update(accuracy=1.0, cases={"c1": 1.0, "c2": 1.0, "c3": 1.0})
    (root / "reports" / "baseline.json").write_text(json.dumps(doc), encoding="utf-8")
    written = (root / "reports" / "baseline.json").read_bytes()
    (root / "pyproject.toml").write_text(
        (root / "pyproject.toml").read_text()
        + '[tool.audio-evals.gates]\nvariants = ["a"]\n'
        + '[tool.audio-evals.gates.regression]\nmax_drop = 0.0\ntest = "none"\n',
        encoding="utf-8",
    )
    refused = run_pytest(root, "evals", "--update-baseline")
    assert refused.returncode == 1, both(refused)
    assert "baseline NOT written: " in refused.stdout
    assert "gate(s) failed (first: regression alpha/a:" in refused.stdout
    assert "pass --force-baseline" in refused.stdout
    assert (root / "reports" / "baseline.json").read_bytes() == written

    forced = run_pytest(root, "evals", "--update-baseline", "--force-baseline")
    assert "baseline written: reports/baseline.json" in forced.stdout, both(forced)
    assert "alpha/a:name: 100.0% -> " in forced.stdout
    assert (root / "reports" / "baseline.json").read_bytes() != written


# ---- recording without the key is a failure, not a skip ------------------------------------------


def test_recording_a_variant_whose_key_is_not_set_fails_with_the_reason(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        {
            "hosted": suite_text(
                "people",
                '[[variants]]\nname = "mini"\nmodel = "gpt-audio-mini"\n',
                '[[variants]]\nname = "own-key"\nmodel = "gpt-audio-mini"\napi_key_env = "MY_KEY"\n',
            )
        },
    )
    write_dataset(root, "people", [("c1", "jason"), ("c2", "maria")])
    proc = run_pytest(root, "evals", "--record-mode=once", "-v")
    out = proc.stdout
    assert proc.returncode == 1, both(proc)
    items = [line for line in out.splitlines() if line.startswith("evals/hosted.eval.toml::")]
    assert len(items) == 4 and all(" FAILED " in line for line in items), items  # none skipped
    assert out.rstrip().splitlines()[-1].startswith("===") and "5 failed in" in out  # + the gate
    assert (
        "--record-mode=once asked to record variant mini (gpt-audio-mini), but OPENAI_API_KEY "
        "is not set; set it, or leave this variant out with --variant" in out
    )
    assert "but MY_KEY is not set" in out
    # said once per batch; the batch's other item fails too, pointing at the first
    assert out.count("asked to record variant mini") == 2  # the failure and its summary line
    assert (
        "batch hosted/mini failed; the reason is given once, at "
        "evals/hosted.eval.toml::hosted[mini-c1]" in out
    )
    assert not (root / "cassettes").exists()
    assert "FAIL complete run: PARTIAL RUN (a batch did not run to its end): 0 of 4" in out


# ---- identical requests of different cases and repeats: each gets its own interaction -----------


@pytest.fixture(scope="module")
def jittery_server() -> Iterator[LocalServer]:
    """A local server whose latency varies per request (0-300 ms), so interactions differ."""
    with LocalServer(latency_ms=1, latency_jitter_ms=300, seed=3) as server:
        yield server


def latencies(root: Path) -> dict[str, float]:
    """Per case key (`<id>/<repeat>`), the latency the report gives."""
    rows = read_csv(root / "reports" / "latest" / "cases.csv")
    assert all(r["latency_source"] == "recorded" for r in rows)
    return {f"{r['case_id']}/{r['repeat']}": float(r["latency_ms"]) for r in rows}


def test_identical_requests_of_two_cases_and_repeats_get_their_own_interactions(
    tmp_path: Path, jittery_server: LocalServer
) -> None:
    """64 cases of the same clip, twice each: 128 identical requests. Replayed under xdist and in
    forked processes, each (case, repeat) gets the latency recorded for it, not its neighbour's."""
    root = write_project(
        tmp_path, {"same": suite_text("clips", variant("v", jittery_server.base_url))}
    )
    write_dataset(root, "clips", [(f"c{i:02d}", "jason") for i in range(64)])
    rec = run_pytest(root, "evals", "--record-mode=once", "--repeats", "2")
    assert rec.returncode == 0, both(rec)
    recorded = {case_of(i): latency_of(i) for i in interactions(root / "cassettes/same/v.yaml")}
    assert len(recorded) == 128
    assert len(set(recorded.values())) > 100, "the premise: recorded latencies differ"
    assert latencies(root) == recorded

    xdist = run_pytest(root, "evals", "--repeats", "2", "-n", "2")
    assert xdist.returncode == 0, both(xdist)
    assert latencies(root) == recorded

    forked = run_pytest(root, "evals", "--repeats", "2", "--eval-processes", "2", "-v")
    assert forked.returncode == 0, both(forked)
    assert "replaying 128 cases of same/v in 2 processes" in forked.stdout
    assert latencies(root) == recorded
