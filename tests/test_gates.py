"""Quality gates end to end: a scratch project recorded once against the local server, then judged.

The dataset is the two real-speech clips of tests/test_plugin.py, each used for six rows (12 cases):
the local reference model hears the name in the "jason" clip right and the one in the "marcelo" clip
wrong, so `name` scores 6/12 and a baseline that had all 12 right is a significant regression
(McNemar exact, 6 discordant pairs: p = 0.031).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from .conftest import SHARED, both, gate_lines, require_shared
from .conftest import run_pytest as run_pytest_quiet


def run_pytest(root: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """pytest with -v, so the terminal lists every gate (PASS lines too), as this module reads them."""
    return run_pytest_quiet(root, *args, "-v", **kwargs)


JASON = SHARED / "real-speech" / "instructor" / "openai-audio-example_output.wav"
MARCELO = SHARED / "real-traffic" / "assets" / "pydantic-ai__marcelo.mp3"
N_PER_CLIP = 6
CASE_IDS = [f"{clip}-{i}" for i in range(N_PER_CLIP) for clip in ("jason", "marcelo")]

MODELS = """
from pydantic import BaseModel, Field


class Intro(BaseModel):
    name: str = Field(description="The speaker's first name")
    age: int | None = Field(default=None, description="The speaker's age in years, if said")
"""

# Two local variants with the same model (so `--variant other` can deselect local-baseline) and one
# hosted variant that is never recorded here (no key): its cassette is missing, so it is skipped.
SUITE = """
dataset = "datasets/intro"
response_model = "evals.models:Intro"
prompt = "Extract the following information from the audio"

[[variants]]
name = "local-baseline"
model = "local-baseline"
base_url = "local"

[[variants]]
name = "other"
model = "local-baseline"
base_url = "local"

[[variants]]
name = "gpt-audio-1.5"
model = "gpt-audio-1.5"
"""

PYPROJECT_HEAD = "[project]\nname = 'scratch'\nversion = '0'\n"


def write_project(root: Path) -> Path:
    """Pyproject without gates, the response model, the suite and a 12-row real-speech dataset."""
    (root / "evals").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT_HEAD, encoding="utf-8")
    (root / "evals" / "__init__.py").write_text("", encoding="utf-8")
    (root / "evals" / "models.py").write_text(MODELS, encoding="utf-8")
    (root / "evals" / "intro.eval.toml").write_text(SUITE, encoding="utf-8")
    data = root / "datasets" / "intro"
    (data / "audio").mkdir(parents=True, exist_ok=True)
    shutil.copy(JASON, data / "audio" / "jason.wav")
    shutil.copy(MARCELO, data / "audio" / "marcelo.mp3")
    rows = []
    for case_id in CASE_IDS:
        if case_id.startswith("jason"):
            row = {"file_name": "audio/jason.wav", "expected": {"name": "Jason", "age": 20}}
        else:
            row = {"file_name": "audio/marcelo.mp3", "expected": {"name": "Marcelo", "age": None}}
        rows.append({"file_name": row["file_name"], "id": case_id, "expected": row["expected"]})
    write_rows(root, rows)
    return root


def read_rows(root: Path) -> list[dict[str, Any]]:
    meta = root / "datasets" / "intro" / "metadata.jsonl"
    return [json.loads(line) for line in meta.read_text(encoding="utf-8").splitlines() if line]


def write_rows(root: Path, rows: list[dict[str, Any]]) -> None:
    meta = root / "datasets" / "intro" / "metadata.jsonl"
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def set_gates(root: Path, gates_toml: str) -> None:
    """Replace the project's gate configuration (the text after `[tool.audio-evals.gates]`)."""
    (root / "pyproject.toml").write_text(
        PYPROJECT_HEAD + "\n[tool.audio-evals.gates]\n" + gates_toml.strip() + "\n",
        encoding="utf-8",
    )


def write_baseline(
    root: Path, name_cases: dict[str, int], rel: str = "reports/baseline.json"
) -> Path:
    """A hand-written baseline of a previous local-baseline run: `name` per case (1 right, 0 wrong)."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "version": 1,
        "suites": {
            "intro": {
                "local-baseline": {
                    "name": {
                        "accuracy": sum(name_cases.values()) / len(name_cases),
                        "n": len(name_cases),
                        "cases": name_cases,
                    }
                }
            }
        },
    }
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


# The measured numbers of the `name` field (6 of 12 right): point, Wilson 95% interval, n.
NAME_NUMBERS = r"accuracy 0\.500 \(.*95% CI \[0\.254, 0\.746\], n=12\)"


def assert_gate(
    gates: dict[str, tuple[str, str]], name: str, status: str, detail_pattern: str
) -> None:
    """The gate is listed with this status and a detail that matches the pattern in full."""
    assert name in gates, f"gate {name!r} not listed; listed: {sorted(gates)}"
    got_status, detail = gates[name]
    assert got_status == status, (name, gates[name])
    assert re.fullmatch(detail_pattern, detail), f"{name}: {detail!r} !~ {detail_pattern!r}"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scratch project recorded once; the plugin starts the local server itself."""
    require_shared(JASON, MARCELO)
    root = write_project(tmp_path_factory.mktemp("gates-recorded"))
    # Concurrency 2: the first call per clip decodes, the rest hit the server's transcript cache
    # (at the default 8, all twelve identical calls decode at once on two cores: ~20 s).
    proc = run_pytest(
        root,
        "evals",
        "--record-mode=once",
        "--eval-concurrency=2",
        "--variant=local-baseline",
        "--variant=other",
    )
    assert proc.returncode == 0, both(proc)
    files = sorted(p.name for p in (root / "cassettes" / "intro").glob("*.yaml"))
    assert files == ["local-baseline.yaml", "other.yaml"], files
    return root


@pytest.fixture(scope="module")
def heard(recorded: Path) -> dict[str, str]:
    """What the local model predicted for `name` per case; checks the premise of this module."""
    with (recorded / "reports" / "latest" / "results.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["variant"] == "local-baseline"]
    names = {r["case_id"]: r for r in rows if r["field"] == "name"}
    right = sorted(c for c, r in names.items() if r["correct"] == "True")
    assert right == sorted(c for c in CASE_IDS if c.startswith("jason")), (
        "premise: the local model gets the jason clip's name right and the marcelo clip's wrong; "
        f"it came back as {[(c, r['predicted']) for c, r in sorted(names.items())]}"
    )
    assert all(r["correct"] == "True" for r in rows if r["field"] == "age")
    return {c: r["predicted"] for c, r in names.items()}


@pytest.fixture
def project(recorded: Path, heard: dict[str, str], tmp_path: Path) -> Path:
    dest = tmp_path / "project"
    shutil.copytree(recorded, dest)
    shutil.rmtree(dest / "reports", ignore_errors=True)
    return dest


# ---- 1. pass, 2. threshold miss ------------------------------------------------------------


def test_passing_gates_exit_0_and_are_listed_as_pass_with_their_numbers(project: Path) -> None:
    set_gates(
        project,
        """
        min_accuracy = {"intro:name" = 0.4, "intro:age" = 0.9}
        min_exact_accuracy = {"intro" = 0.3}
        max_cost_per_case = {"*" = 0.01}
        """,
    )
    proc = run_pytest(project, "evals")
    assert proc.returncode == 0, both(proc)
    gates = gate_lines(proc.stdout)
    assert "audio-evals gates: 0 failed of 10" in proc.stdout  # + no errored case, per variant
    assert_gate(
        gates,
        "max_error_rate intro/local-baseline <= 0",
        "PASS",
        r"0 of 12 cases errored \(0\.0% <= 0%\)",
    )
    assert_gate(
        gates, "min_accuracy intro/local-baseline:name >= 0.4", "PASS", NAME_NUMBERS + " >= 0.4"
    )
    assert_gate(
        gates, "min_accuracy intro/other:age >= 0.9", "PASS", r"accuracy 1\.000 \(.*n=12\) >= 0\.9"
    )
    assert_gate(
        gates,
        "min_exact_accuracy intro/local-baseline >= 0.3",
        "PASS",
        r"exact_accuracy 0\.5 >= 0\.3 \(95% CI \[0\.254, 0\.746\], n=12\)",
    )
    assert_gate(
        gates, "max_cost_per_case intro/other <= 0.01", "PASS", r"cost_per_case_usd 0 <= 0\.01"
    )
    # the hosted variant without a cassette was skipped, not judged by default
    assert not [g for g in gates if "gpt-audio-1.5" in g]
    assert "34 passed, 12 skipped" in proc.stdout


def test_threshold_miss_exits_1_naming_field_threshold_and_measured_value(project: Path) -> None:
    set_gates(
        project,
        """
        min_accuracy = {"intro:name" = 0.99, "intro:age" = 0.9}
        variants = ["local-baseline"]
        """,
    )
    proc = run_pytest(project, "evals")
    out = proc.stdout
    assert proc.returncode == 1, both(proc)
    assert "audio-evals gates: 1 failed of 3" in out
    gates = gate_lines(out)
    assert_gate(
        gates, "min_accuracy intro/local-baseline:name >= 0.99", "FAIL", NAME_NUMBERS + " < 0.99"
    )
    assert gates["min_accuracy intro/local-baseline:age >= 0.9"][0] == "PASS"
    # the gate is a failed test item of pytest's own; the cases themselves all passed
    assert "1 failed, 26 passed, 12 skipped" in out
    assert "gate failed: min_accuracy intro/local-baseline:name >= 0.99" in out


def test_lower_bound_floor_fails_where_the_point_estimate_passes(project: Path) -> None:
    """A suite's own [gates] table with on = "lower_bound": 0.500 >= 0.4 but its 95% low 0.254 < 0.4."""
    suite = project / "evals" / "intro.eval.toml"
    suite.write_text(
        suite.read_text(encoding="utf-8")
        + '\n[gates]\non = "lower_bound"\nmin_accuracy = {name = 0.4}\nvariants = ["local-baseline"]\n',
        encoding="utf-8",
    )
    set_gates(project, 'min_accuracy = {"intro:name" = 0.4}\nvariants = ["other"]')
    proc = run_pytest(project, "evals")
    assert proc.returncode == 1, both(proc)
    gates = gate_lines(proc.stdout)
    assert_gate(gates, "min_accuracy intro/other:name >= 0.4", "PASS", NAME_NUMBERS + " >= 0.4")
    assert_gate(
        gates,
        "min_accuracy intro/local-baseline:name >= 0.4",
        "FAIL",
        r"95% lower bound 0\.254 \(accuracy 0\.500, 95% CI \[0\.254, 0\.746\], n=12\) < 0\.4",
    )


# ---- 3. regression vs baseline --------------------------------------------------------------


def test_regression_vs_baseline_significant_fails_and_small_drop_passes_with_a_note(
    project: Path,
) -> None:
    set_gates(
        project,
        """
        variants = ["local-baseline"]

        [tool.audio-evals.gates.regression]
        max_drop = 0.05
        alpha = 0.05
        test = "paired"
        """,
    )
    baseline = project / "reports" / "baseline.json"
    first = run_pytest(project, "evals", "--update-baseline")
    assert first.returncode == 0, both(first)
    assert gate_lines(first.stdout)["regression vs reports/baseline.json"][0] == "N/E"
    assert "baseline written: reports/baseline.json" in first.stdout
    doc = json.loads(baseline.read_text(encoding="utf-8"))
    assert doc["version"] == 1
    written = doc["suites"]["intro"]["local-baseline"]["name"]
    assert written["n"] == 12 and written["accuracy"] == 0.5
    assert written["cases"] == {c: (1.0 if c.startswith("jason") else 0.0) for c in CASE_IDS}
    assert set(doc["suites"]["intro"]) == {"local-baseline", "other"}

    # A better previous run: every name right. Now 6 of 12 are wrong, all of them discordant.
    write_baseline(project, dict.fromkeys(CASE_IDS, 1))
    worse = run_pytest(project, "evals")
    assert worse.returncode == 1, both(worse)
    status, detail = gate_lines(worse.stdout)["regression intro/local-baseline:name drop <= 0.05"]
    assert status == "FAIL"
    assert detail.startswith("dropped 50.0 pts (100.0% -> 50.0%, n=12)")
    assert "p=0.0312 (mcnemar-exact+newcombe): significant regression" in detail

    # Two cases worse than before: 16.7 pts is above max_drop, but p = 0.5 is not significant.
    near = {c: int(c.startswith("jason") or c in ("marcelo-0", "marcelo-1")) for c in CASE_IDS}
    write_baseline(project, near)
    small = run_pytest(project, "evals")
    assert small.returncode == 0, both(small)
    status, detail = gate_lines(small.stdout)["regression intro/local-baseline:name drop <= 0.05"]
    assert status == "PASS"
    assert detail.startswith("dropped 16.7 pts (66.7% -> 50.0%, n=12)")
    assert detail.endswith("not significant at alpha=0.05, passes with a note")


def test_regression_baseline_path_from_the_regression_table_is_used(project: Path) -> None:
    set_gates(
        project,
        'variants = ["local-baseline"]\n'
        "[tool.audio-evals.gates.regression]\n"
        'baseline = "ci/baseline.json"\n',
    )
    write_baseline(project, dict.fromkeys(CASE_IDS, 1), rel="ci/baseline.json")
    proc = run_pytest(project, "evals")
    assert "regression vs ci/baseline.json" not in proc.stdout, "the baseline at ci/ is not found"
    status, detail = gate_lines(proc.stdout)["regression intro/local-baseline:name drop <= 0.05"]
    assert status == "FAIL" and "significant regression" in detail
    assert proc.returncode == 1


# ---- 4. must_pass ---------------------------------------------------------------------------


def test_must_pass_case_fails_its_own_item_with_field_expected_and_predicted(
    project: Path, heard: dict[str, str]
) -> None:
    rows = read_rows(project)
    for row in rows:
        if row["id"] in ("jason-0", "marcelo-0"):
            row["must_pass"] = True
    write_rows(project, rows)
    proc = run_pytest(project, "evals", "--variant", "local-baseline", "-v")
    out = proc.stdout
    assert proc.returncode == 1, both(proc)
    assert "evals/intro.eval.toml::intro[local-baseline-marcelo-0] FAILED" in out
    assert "evals/intro.eval.toml::intro[local-baseline-jason-0] PASSED" in out
    # other marcelo rows are wrong too, but not must_pass: they pass as items
    assert "evals/intro.eval.toml::intro[local-baseline-marcelo-1] PASSED" in out
    assert (
        "must_pass case marcelo-0 got 1 field(s) wrong: "
        f"name: expected 'Marcelo', got {heard['marcelo-0']!r}" in out
    )
    assert "1 failed, 11 passed" in out
    assert "Traceback" not in out


# ---- 5. junit XML ----------------------------------------------------------------------------


def test_junitxml_has_the_gates_as_test_cases_with_failures(project: Path) -> None:
    set_gates(
        project,
        """
        min_accuracy = {"intro:name" = 0.99, "intro:age" = 0.9}
        variants = ["local-baseline"]
        [tool.audio-evals.gates.regression]
        max_drop = 0.05
        """,
    )
    proc = run_pytest(project, "evals", "--junitxml=report.xml")
    assert proc.returncode == 1, both(proc)
    tree = ET.parse(project / "report.xml")
    cases = {
        tc.get("name", ""): tc
        for tc in tree.iter("testcase")
        if "gates" in tc.get("classname", "") + tc.get("name", "")
    }
    assert set(cases) == {
        "min_accuracy intro/local-baseline:name >= 0.99",
        "min_accuracy intro/local-baseline:age >= 0.9",
        "max_error_rate intro/local-baseline <= 0",
        "regression vs reports/baseline.json",
    }
    assert {tc.get("classname") for tc in cases.values()} == {"audio-evals.gates"}
    failed = cases["min_accuracy intro/local-baseline:name >= 0.99"]
    failure = failed.find("failure")
    assert failure is not None
    assert "accuracy 0.500" in (failure.get("message") or "") and "< 0.99" in (failure.text or "")
    passed = cases["min_accuracy intro/local-baseline:age >= 0.9"]
    assert passed.find("failure") is None and passed.find("skipped") is None
    not_evaluated = cases["regression vs reports/baseline.json"]
    assert not_evaluated.find("failure") is None
    assert not_evaluated.find("skipped") is not None
    suite = tree.getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert suite is not None and suite.get("failures") == "1"


# ---- 6. xdist --------------------------------------------------------------------------------


def test_same_verdict_under_xdist(project: Path) -> None:
    set_gates(
        project,
        """
        min_accuracy = {"intro:name" = 0.99, "intro:age" = 0.9}
        min_exact_accuracy = {"intro" = 0.3}
        """,
    )
    write_baseline(project, dict.fromkeys(CASE_IDS, 1))
    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text(encoding="utf-8")
        + "[tool.audio-evals.gates.regression]\nmax_drop = 0.05\n",
        encoding="utf-8",
    )
    single = run_pytest(project, "evals")
    parallel = run_pytest(project, "evals", "-n", "2")
    assert single.returncode == 1, both(single)
    assert parallel.returncode == single.returncode, both(parallel)
    assert gate_lines(parallel.stdout) == gate_lines(single.stdout)
    assert len(gate_lines(single.stdout)) == 9
    assert "audio-evals gates: 3 failed of 9" in parallel.stdout


# ---- 7. no silent pass -------------------------------------------------------------------------


def test_gate_naming_a_variant_that_was_never_scored_fails(project: Path) -> None:
    set_gates(project, 'min_accuracy = {"intro:name" = 0.4}\nvariants = ["gpt-audio-1.5"]')
    proc = run_pytest(project, "evals")
    assert proc.returncode == 1, both(proc)
    status, detail = gate_lines(proc.stdout)["min_accuracy intro/gpt-audio-1.5:name >= 0.4"]
    assert status == "FAIL"
    assert detail.startswith("never scored: no cassette cassettes/intro/gpt-audio-1.5.yaml")
    assert "24 passed, 12 skipped" in proc.stdout


def test_variant_deselected_on_purpose_is_not_evaluated_and_does_not_fail(project: Path) -> None:
    set_gates(project, 'min_accuracy = {"intro:name" = 0.4}')
    proc = run_pytest(project, "evals", "--variant", "other")
    assert proc.returncode == 0, both(proc)
    gates = gate_lines(proc.stdout)
    assert gates["min_accuracy intro/local-baseline:name >= 0.4"] == (
        "N/E",
        "deselected on purpose (--variant/-k)",
    )
    assert gates["min_accuracy intro/other:name >= 0.4"][0] == "PASS"
    assert "audio-evals gates: 0 failed of 6" in proc.stdout


@pytest.mark.parametrize(
    ("gates", "typo"),
    [
        ('min_accuracy = {"intor:name" = 0.99}', "intor"),
        ('min_accuracy = {"intro:name" = 0.99}\nvariants = ["gpt-audio-15"]', "gpt-audio-15"),
    ],
    ids=["suite-typo", "variant-typo"],
)
def test_gate_naming_an_unknown_suite_or_variant_does_not_pass_silently(
    project: Path, gates: str, typo: str
) -> None:
    set_gates(project, gates)
    proc = run_pytest(project, "evals", "--variant", "local-baseline")
    assert proc.returncode in (1, 4), both(proc)
    assert typo in both(proc)


# ---- 8. GitHub step summary ------------------------------------------------------------------


def test_github_step_summary_receives_the_markdown_gate_table(
    project: Path, tmp_path: Path
) -> None:
    set_gates(project, 'min_accuracy = {"intro:name" = 0.99, "intro:age" = 0.9}')
    summary = tmp_path / "step-summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    proc = run_pytest(
        project, "evals", "--variant", "local-baseline", env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert proc.returncode == 1, both(proc)
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n"), "the summary file is appended to, not replaced"
    gates = text[text.index("## Gates") :]
    # local-baseline ran; other and gpt-audio-1.5 were deselected on purpose
    assert "**FAILED**: 8 of 9 gates passed or not evaluated, 1 failed." in gates
    assert "| gate | status | detail |\n| --- | --- | --- |\n" in gates
    assert re.search(
        r"^\| `min_accuracy intro/local-baseline:name >= 0\.99` \| ❌ failed \| "
        + NAME_NUMBERS
        + r" < 0\.99 \|$",
        gates,
        re.MULTILINE,
    ), gates
    assert "| `min_accuracy intro/local-baseline:age >= 0.9` | ✅ passed |" in gates
    assert (
        "| `min_accuracy intro/other:age >= 0.9` | ➖ not evaluated | "
        "deselected on purpose (--variant/-k) |" in gates
    )


# ---- 9. invalid configuration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gates", "message"),
    [
        (
            'min_acuracy = {"intro:name" = 0.9}',
            "[tool.audio-evals.gates]: unknown gate key 'min_acuracy'",
        ),
        (
            'min_accuracy = {"intro:name" = "high"}',
            "[tool.audio-evals.gates]: min_accuracy['intro:name'] must be a number, got 'high'",
        ),
    ],
    ids=["unknown-key", "string-for-number"],
)
def test_invalid_gate_config_is_a_usage_error_naming_file_and_key(
    project: Path, gates: str, message: str
) -> None:
    set_gates(project, gates)
    proc = run_pytest(project, "evals", "--variant", "local-baseline")
    assert proc.returncode == 4, both(proc)
    assert f"ERROR: audio-evals gates: {project / 'pyproject.toml'} {message}" in proc.stderr
    assert "Traceback" not in both(proc)


def test_regression_max_drop_as_a_string_is_a_usage_error(project: Path) -> None:
    set_gates(project, '[tool.audio-evals.gates.regression]\nmax_drop = "5%"')
    write_baseline(project, dict.fromkeys(CASE_IDS, 1))
    proc = run_pytest(project, "evals", "--variant", "local-baseline")
    assert "Traceback" not in both(proc)
    assert proc.returncode == 4, both(proc)
    assert "pyproject.toml" in proc.stderr and "max_drop" in proc.stderr


# ---- terminal display ---------------------------------------------------------------------------


def test_verbose_output_names_gates_verbatim(project: Path) -> None:
    set_gates(project, 'min_accuracy = {"intro:name" = 0.4}\nvariants = ["local-baseline"]')
    proc = run_pytest(project, "evals", "-v")
    assert proc.returncode == 0, both(proc)
    assert "audio-evals::gates::min_accuracy intro/local-baseline:name >= 0.4 PASSED" in proc.stdout
