"""report.html of the demo, opened in headless Chromium: offline, complete, filterable, audible, escaped."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from audio_evals.html_report import share_out

from .conftest import REPO, chromium_path, launch_chromium, run_pytest

SCRIPT_LABEL = "<script>document.title='pwned'</script>"
TAG_LABEL = "<img src=x onerror=\"document.title='pwned'\">"
SAID = "<b id=said>I am Jason</b> & twenty"
HEARD = "<i id=heard>I am Jason</i></td></tr><tr><td>"
ANSWER = "<u id=answer>20</u>"
ARTIFACTS = REPO / "reports" / "artifacts"


def _demo_project(root: Path) -> str:
    """A copy of the demo whose first non-clean person case has a label and a tag holding markup."""
    for name in ("evals", "datasets", "cassettes", "demo_app"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(REPO / "conftest.py", root / "conftest.py")
    (root / "reports").mkdir()
    shutil.copy(REPO / "reports" / "baseline.json", root / "reports" / "baseline.json")
    meta = root / "datasets" / "person" / "metadata.jsonl"
    rows = [json.loads(line) for line in meta.read_text(encoding="utf-8").splitlines()]
    target = next(r for r in rows if r["tags"]["condition"] != "clean")
    target["expected"]["name"] = SCRIPT_LABEL
    target["tags"]["speaker"] = TAG_LABEL
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(target["id"])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo run (pytest evals, replayed from the cassettes): its project root and the marked case."""
    root = tmp_path_factory.mktemp("demo")
    case_id = _demo_project(root)
    proc = run_pytest(root, "evals", "-q")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    gates = next(i for i, line in enumerate(lines) if "audio-evals gates: 0 failed" in line)
    report = [i for i, line in enumerate(lines) if line.startswith("report: ")]
    assert report and report[0] > gates, "the report's path comes after the gates"
    assert lines[report[0]].startswith("report: reports/latest/report.html (also in reports/runs/")
    return root, case_id


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p, executable)
        yield b
        b.close()


class Page:
    """A page opened from disk, with every console message, page error and request it made."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1300, "height": 1000})
        self.console: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.resolve().as_uri(), wait_until="load")
        self.page.wait_for_selector("tr.case-row")

    def errors(self) -> list[str]:
        return [m for m in self.console if m.startswith(("error", "pageerror"))]

    def network(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file:", "data:"))]


def _rows(page: Any, suite: str) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(
        f"#cases-suite-{suite} tr.case-row",
        """rows => rows.map(r => ({
            variant: r.children[1].textContent,
            fields: [...r.querySelectorAll('table.fieldvals tr')].map(t => ({
                name: t.querySelector('.fname').textContent,
                expected: t.querySelector('.exp').textContent,
                predicted: t.querySelector('.pred').textContent,
                bad: t.classList.contains('bad')})),
        }))""",
    )


def _play_first_clip(page: Any, suite: str) -> dict[str, Any]:
    handle = page.wait_for_function(
        """async (suite) => {
            const audio = document.querySelector(`#cases-suite-${suite} audio.clip`);
            audio.preload = 'auto';
            audio.muted = true;
            await audio.play();
            await new Promise(r => setTimeout(r, 300));
            return audio.readyState >= 4 ? {ready: audio.readyState, paused: audio.paused,
                time: audio.currentTime, src: audio.getAttribute('src').slice(0, 40)} : null;
        }""",
        arg=suite,
        timeout=20_000,
    )
    return handle.json_value()


def report_command(run: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`audio-evals report RUN_DIR ARGS...` in a process of its own; it must succeed."""
    proc = subprocess.run(
        [sys.executable, "-m", "audio_evals.cli", "report", str(run), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_demo_report_opens_offline_with_headline_gates_plots_and_tables(
    demo: tuple[Path, str], browser: Any
) -> None:
    root, _ = demo
    path = root / "reports" / "latest" / "report.html"
    page = Page(browser, path)
    p = page.page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report-html.png"
    p.screenshot(path=str(shot))
    print(f"screenshot: {shot}")
    assert page.errors() == []
    assert page.network() == [], "the page must load nothing from the network"
    assert page.requests == [path.resolve().as_uri()], "assets are inlined: one request, the page"
    header = p.inner_text("header")
    assert "Gates PASSED" in header and "record mode" in header and "commit" in header
    assert "person/local-baseline" in header and "101 cases" in header
    # per suite: the field chart and table, the trade-off and forest plots, one heatmap per variant
    for suite, variants in (("person", 4), ("appointment", 4)):
        section = f"#suite-{suite}"
        assert p.locator(f"{section} table.fields").count() == 1
        assert p.locator(f"{section} table.comparison").count() == 1
        assert p.locator(f"{section} figure svg").count() == 3 + variants
        assert "Holm-adjusted over the run's" in p.inner_text(section)
    # partial credit for every field, presence precision/recall for the optional ones
    fields = p.inner_text("#suite-appointment table.fields")
    assert fields.count(" · score ") >= 4 and "presence P " in fields and "(missed " in fields
    assert "presence P " not in p.inner_text("#suite-person table.fields")  # nothing optional
    # confusion tables for the enum (service) and the bool (urgent), one per variant
    confusion = p.locator("#suite-appointment table.confusion-table")
    assert confusion.count() == 2 * 4
    assert p.locator("#suite-person table.confusion-table").count() == 0
    assert p.locator("#gates").count() == 1
    assert p.title().startswith("audio-evals report")


def test_cases_table_filters_by_variant_field_outcome_and_tag(
    demo: tuple[Path, str], browser: Any
) -> None:
    root, _ = demo
    page = Page(browser, root / "reports" / "latest" / "report.html")
    p = page.page
    ui = "#cases-suite-person"
    assert "of 128)" in p.inner_text(f"{ui} .count")
    p.select_option(f"{ui} select[data-filter=variant]", label="local-mini")
    rows = _rows(p, "person")
    assert rows and {r["variant"] for r in rows} == {"local-mini"}
    assert p.inner_text(f"{ui} .count").endswith("of 32 (of 128)")
    p.select_option(f"{ui} select[data-filter=field]", label="age")
    p.select_option(f"{ui} select[data-filter=outcome]", value="wrong")
    rows = _rows(p, "person")
    assert rows, "local-mini gets some ages wrong"
    for r in rows:
        age = next(f for f in r["fields"] if f["name"] == "age")
        assert age["bad"] and age["expected"] != age["predicted"]
    wrong_ages = len(rows)
    p.select_option(f"{ui} select[data-filter=outcome]", value="correct")
    right = _rows(p, "person")
    assert all(not next(f for f in r["fields"] if f["name"] == "age")["bad"] for r in right)
    assert wrong_ages + len(right) == 32
    p.select_option(f"{ui} select[data-filter=outcome]", value="")
    p.select_option(f"{ui} select[data-filter=tag]", label="condition = noisy")
    noisy = p.eval_on_selector_all(
        f"{ui} tr.case-row", "rows => rows.map(r => r.querySelector('td').textContent)"
    )
    assert noisy and all("condition: noisy" in text for text in noisy)
    assert page.errors() == []


def test_cases_table_sorts_by_a_column(demo: tuple[Path, str], browser: Any) -> None:
    root, _ = demo
    page = Page(browser, root / "reports" / "latest" / "report.html")
    p = page.page
    ui = "#cases-suite-appointment"
    p.click(f"{ui} th[data-sort=latency]")
    first = p.eval_on_selector_all(
        f"{ui} tr.case-row", "rows => rows.map(r => parseInt(r.lastChild.textContent))"
    )
    assert first == sorted(first)
    p.click(f"{ui} th[data-sort=latency]")
    second = p.eval_on_selector_all(
        f"{ui} tr.case-row", "rows => rows.map(r => parseInt(r.lastChild.textContent))"
    )
    assert second == sorted(second, reverse=True) and second[0] >= first[-1]


def test_embedded_audio_plays(demo: tuple[Path, str], browser: Any) -> None:
    root, _ = demo
    page = Page(browser, root / "reports" / "latest" / "report.html")
    state = _play_first_clip(page.page, "person")
    assert state["ready"] == 4 and state["src"].startswith("data:audio/")
    assert not state["paused"] and state["time"] > 0
    assert page.network() == [] and page.errors() == []


def test_labels_and_tags_holding_markup_are_shown_as_text(
    demo: tuple[Path, str], browser: Any
) -> None:
    root, case_id = demo
    page = Page(browser, root / "reports" / "latest" / "report.html")
    p = page.page
    ui = "#cases-suite-person"
    p.fill(f"{ui} input[data-filter=search]", case_id)
    rows = _rows(p, "person")
    assert rows
    names = {next(f for f in r["fields"] if f["name"] == "name")["expected"] for r in rows}
    assert names == {SCRIPT_LABEL}
    chips = p.eval_on_selector_all(f"{ui} .chip", "cs => cs.map(c => c.textContent)")
    assert f"speaker: {TAG_LABEL}" in chips
    assert p.locator(f"{ui} img").count() == 0 and p.locator(f"{ui} td script").count() == 0
    heatmap_text = p.inner_text("#suite-person")
    assert f"speaker: {TAG_LABEL}" in heatmap_text, "the heatmap's column label is text too"
    assert p.title() != "pwned"
    html = (root / "reports" / "latest" / "report.html").read_text(encoding="utf-8")
    assert SCRIPT_LABEL not in html and "<img src=x" not in html
    assert page.errors() == []


def test_transcripts_and_answers_holding_markup_are_shown_as_text(
    demo: tuple[Path, str], browser: Any, tmp_path: Path
) -> None:
    """What a model heard and answered is data too: a run folder whose transcript, reference
    transcript and predicted value hold markup, rendered by `audio-evals report`."""
    root, case_id = demo
    run = tmp_path / "run"
    shutil.copytree(root / "reports" / "latest", run)
    cases = pd.read_csv(run / "cases.csv", dtype=str, keep_default_na=False)
    mine = (cases["case_id"] == case_id) & (cases["suite"] == "person")
    cases.loc[mine, "transcript"] = HEARD
    cases.loc[mine, "reference_transcript"] = SAID
    cases.to_csv(run / "cases.csv", index=False)
    results = pd.read_csv(run / "results.csv", dtype=str, keep_default_na=False)
    mine = (
        (results["case_id"] == case_id)
        & (results["suite"] == "person")
        & (results["field"] == "age")
    )
    results.loc[mine, "predicted"] = ANSWER
    results.to_csv(run / "results.csv", index=False)
    report_command(run)
    page = Page(browser, run / "report.html")
    p = page.page
    ui = "#cases-suite-person"
    p.fill(f"{ui} input[data-filter=search]", case_id)

    def text(selector: str) -> list[str]:
        return p.eval_on_selector_all(f"{ui} {selector}", "xs => xs.map(x => x.textContent)")

    assert set(text("td.transcript .heard")) == {f"heard: {HEARD}"}
    assert set(text("td.transcript .said")) == {f"said: {SAID}"}
    assert ANSWER in set(text("table.fieldvals .pred"))
    assert p.locator(f"{ui} b#said, {ui} i#heard, {ui} u#answer").count() == 0
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "<b id=said>" not in html and "<i id=heard>" not in html and "<u id=answer>" not in html
    assert page.errors() == []


def test_report_command_links_audio_that_plays_from_disk(
    demo: tuple[Path, str], browser: Any, tmp_path: Path
) -> None:
    root, _ = demo
    run = tmp_path / "run"
    shutil.copytree(root / "reports" / "latest", run)
    proc = report_command(run, "--audio", "link")
    path = run / "report.html"
    assert proc.stdout.strip() == f"written: {path}"
    html = path.read_text(encoding="utf-8")
    assert "data:audio/" not in html and len(html) < 3_000_000
    page = Page(browser, path)
    state = _play_first_clip(page.page, "person")
    assert state["ready"] == 4 and not state["src"].startswith("data:")
    assert page.network() == [] and page.errors() == []
    clip = [u for u in page.requests if u.endswith((".wav", ".mp3"))]
    assert clip and all(u.startswith(f"{(root / 'datasets').resolve().as_uri()}/") for u in clip)


def test_report_command_cuts_the_cases_table_and_says_where_every_run_is(
    demo: tuple[Path, str], browser: Any, tmp_path: Path
) -> None:
    root, _ = demo
    run = tmp_path / "run"
    shutil.copytree(root / "reports" / "latest", run)
    assert (run / "results.parquet").is_file() and (run / "cases.parquet").is_file()
    report_command(run, "--max-case-rows", "40")
    page = Page(browser, run / "report.html")
    p = page.page
    assert page.errors() == [] and page.network() == []
    cases = pd.read_csv(run / "cases.csv", keep_default_na=False)
    quota = share_out(cases.groupby("suite").size().to_dict(), 40)
    cut = [s for s, n in cases.groupby("suite").size().items() if n > quota[s]]
    assert {"person", "appointment"} <= set(cut)
    for suite in cut:
        ui = f"#suite-{suite}"
        note = p.inner_text(f"{ui} p.left-out")
        assert "runs left out are in the files beside this page: results.parquet" in note
        rows = p.eval_on_selector_all(
            f"{ui} tr.case-row",
            "rows => rows.map(r => [r.querySelector('.case-id').textContent,"
            " r.children[2].textContent])",
        )
        n = len(rows)
        assert 0 < n <= quota[suite] and f"This table holds {n} of the suite's" in note
        assert p.inner_text(f"{ui} span.count") == f"rows 1–{n} of {n} (of {n})"
        by_case: dict[str, list[str]] = {}
        for case_id, result in rows:
            by_case.setdefault(case_id, []).append(result)
        per_case = cases[cases["suite"] == suite].groupby("case_id").size()
        assert all(len(v) == per_case[c] for c, v in by_case.items()), "whole cases"
        assert all(any(r != "exact" for r in v) for v in by_case.values()), "wrong ones first"
