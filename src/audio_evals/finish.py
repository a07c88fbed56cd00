"""End of a pytest evals session: build the report, write it, judge the gates, report them to pytest."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .gates import (
    FAILED,
    NOT_EVALUATED,
    GateConfigError,
    GateResult,
    GateRules,
    Scope,
    evaluate,
    gates_markdown,
    parse_rules,
    project_settings,
    read_baseline,
    write_baseline,
)
from .pricing import PriceTable, load_price_table
from .report import Report, build_report, field_table

if TYPE_CHECKING:
    from .plugin import EvalSession

GATE_NODE_PREFIX = "audio-evals::gates::"


@dataclass
class Outcome:
    """What the session ended with: the report, gate verdicts, hygiene notes and where files went."""

    report: Report
    gates: list[GateResult]
    hygiene: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def write_terminal(self, tr: Any) -> None:
        """Print the per-field tables, hygiene and the gates in pytest's terminal summary."""
        tr.write_sep("=", "audio-evals: field accuracy (95% CI, n)")
        report = self.report
        if report.cases.empty:
            tr.write_line("no case was scored")
        for suite in sorted(set(report.cases["suite"])) if not report.cases.empty else []:
            tr.write_line(f"suite {suite}")
            for line in field_table(report.fields, suite).splitlines():
                tr.write_line("  " + line)
            sv = report.variants[report.variants["suite"] == suite]
            for _, r in sv.iterrows():
                cost = r["cost_per_case_usd"]
                cost_text = "cost unknown" if cost != cost else f"${cost * 1000:.2f}/1k cases"
                tr.write_line(
                    f"  {r['variant']}: exact record {100 * r['exact_accuracy']:.1f}% "
                    f"[{100 * r['ci_low']:.0f}, {100 * r['ci_high']:.0f}] n={int(r['n'])}, errors {int(r['errors'])}, "
                    f"p95 {r['latency_p95_ms']:.0f} ms ({r['latency_source']}), {cost_text}"
                )
            comp = report.comparison
            if not comp.empty:
                sc = comp[(comp["suite"] == suite) & (comp["field"] == "(record)")]
                for _, c in sc.iterrows():
                    tr.write_line(
                        f"  {c['variant_b']} vs {c['variant_a']} (exact record): "
                        f"{100 * c['diff']:+.1f} pts [{100 * c['ci_low']:+.0f}, {100 * c['ci_high']:+.0f}] -> "
                        f"{c['verdict']}"
                    )
        for skip in report.skips:
            tr.write_line(f"not run: {skip['suite']}/{skip['variant']}: {skip['reason']}")
        for note in self.hygiene:
            tr.write_line(f"cassettes: {note}")
        for note in self.notes:
            tr.write_line(note)
        if self.gates:
            failed = [g for g in self.gates if g.status == FAILED]
            tr.write_sep("=", f"audio-evals gates: {len(failed)} failed of {len(self.gates)}")
            for g in self.gates:
                mark = {"passed": "PASS", "failed": "FAIL", NOT_EVALUATED: "N/E "}[g.status]
                tr.write_line(f"{mark} {g.name}: {g.detail}")
        for path in self.written:
            tr.write_line(f"report written: {path}")


def _rules(state: EvalSession, settings: dict[str, Any]) -> list[GateRules]:
    rules: list[GateRules] = []
    project = settings.get("gates")
    if project:
        rules.append(
            parse_rules(project, f"{state.rootpath / 'pyproject.toml'} [tool.audio-evals.gates]")
        )
    for name, info in sorted(state.suite_infos().items()):
        if info.get("gates"):
            rules.append(parse_rules(info["gates"], f"{info['source']} [gates]", suite=name))
    return rules


def _scopes(state: EvalSession, results_keys: set[tuple[str, str]]) -> list[Scope]:
    skipped = {(s["suite"], s["variant"]): s["reason"] for s in state.skips}
    return [
        Scope(
            suite=b.suite,
            variant=b.variant,
            ran=(b.suite, b.variant) in results_keys,
            deselected_on_purpose=b.deselected_on_purpose,
            skipped_reason=skipped.get((b.suite, b.variant)),
        )
        for b in state.batches.values()
    ]


def _prices(state: EvalSession, settings: dict[str, Any]) -> dict[str, PriceTable]:
    base = dict(settings.get("pricing", {}))
    out = {}
    for name, info in state.suite_infos().items():
        out[name] = load_price_table({**base, **info.get("pricing", {})} or None)
    return out


def _hygiene(state: EvalSession) -> list[str]:
    notes = []
    prunable = False
    prune = state.config.getoption("prune_cassettes")
    for b in sorted(state.batches.values(), key=lambda b: (b.suite, b.variant)):
        if b.unused_interactions:
            verb = "removed" if prune else "unused (never replayed)"
            notes.append(f"{b.cassette}: {b.unused_interactions} interaction(s) {verb}")
            prunable = True
        elif b.unused_unknown:
            notes.append(f"{b.cassette}: unused interactions not counted: {b.unused_unknown}")
    library = state.cassette_dir
    if library.is_dir() and state.suites:
        known = {(b.suite, b.variant) for b in state.batches.values()}
        suites_here = set(state.suites)
        for path in sorted(library.glob("*/*.yaml")):
            suite, variant = path.parent.name, path.stem
            orphan = (suite in suites_here and (suite, variant) not in known) or (
                suite not in suites_here and _all_suites_collected(state)
            )
            if orphan:
                rel = (
                    path.relative_to(state.rootpath)
                    if path.is_relative_to(state.rootpath)
                    else path
                )
                if prune:
                    path.unlink()
                    notes.append(f"{rel}: removed (no such suite/variant)")
                else:
                    notes.append(
                        f"{rel}: cassette of a suite/variant that no longer exists (--prune-cassettes)"
                    )
                    prunable = True
    if prunable and not prune:
        notes.append("run pytest evals --prune-cassettes to remove them")
    return notes


def _all_suites_collected(state: EvalSession) -> bool:
    evals = state.rootpath / "evals"
    names = (
        {p.name[: -len(".eval.toml")] for p in evals.rglob("*.eval.toml")}
        if evals.is_dir()
        else set()
    )
    return names <= set(state.suites)


def _write(report: Report, folder: Path, gate_md: str) -> list[Path]:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run = folder / "runs" / stamp
    report.write(run, "\n## Gates\n\n" + gate_md)
    latest = folder / "latest"
    tmp = folder / ".latest.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(run, tmp)
    if latest.exists():
        shutil.rmtree(latest)
    tmp.rename(latest)
    return [latest, run]


def _gate_report(result: GateResult) -> pytest.TestReport:
    outcome = {"passed": "passed", "failed": "failed", NOT_EVALUATED: "skipped"}[result.status]
    nodeid = GATE_NODE_PREFIX + result.name
    longrepr: Any = None
    if outcome == "failed":
        longrepr = f"gate failed: {result.name}\n{result.detail}"
    elif outcome == "skipped":
        longrepr = ("audio-evals", 0, f"not evaluated: {result.detail}")
    return pytest.TestReport(
        nodeid=nodeid,
        location=("audio-evals", None, f"gate {result.name}"),
        keywords={},
        outcome=outcome,
        longrepr=longrepr,
        when="call",
        user_properties=[("detail", result.detail)],
    )


def finish_session(state: EvalSession, session: pytest.Session) -> Outcome:
    """Build and write the report, judge the gates, and feed gate verdicts to pytest."""
    try:
        settings = project_settings(state.rootpath)
        rules = _rules(state, settings)
    except GateConfigError as exc:
        raise pytest.UsageError(f"audio-evals gates: {exc}") from None
    infos = state.suite_infos()
    cluster_by = {name: info.get("cluster_by") for name, info in infos.items()}
    results = sorted(state.results, key=lambda r: (r.suite, r.variant, r.case_id, r.repeat))
    report = build_report(
        results, skips=state.skips, prices=_prices(state, settings), cluster_by=cluster_by
    )
    ran = {(r.suite, r.variant) for r in results}
    regression_paths = [r.regression.baseline for r in rules if r.regression is not None]
    baseline_path = state.rootpath / (
        regression_paths[0] if regression_paths else "reports/baseline.json"
    )
    notes: list[str] = []
    try:
        baseline = read_baseline(baseline_path)
    except GateConfigError as exc:
        raise pytest.UsageError(f"audio-evals: {exc}") from None
    gates = evaluate(report, rules, _scopes(state, ran), baseline) if results or rules else []
    gate_md = gates_markdown(gates)
    written = _write(report, state.reports_dir, gate_md) if results else []
    if state.config.getoption("update_baseline") and results:
        write_baseline(report, baseline_path)
        notes.append(f"baseline written: {baseline_path}")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary and results:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(report.markdown() + "\n## Gates\n\n" + gate_md)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if gates and reporter is not None:
        reporter.ensure_newline()
        reporter.write_sep("-", "audio-evals gates")
    for g in gates:
        session.config.hook.pytest_runtest_logreport(report=_gate_report(g))
    if any(g.failed for g in gates):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    return Outcome(report, gates, hygiene=_hygiene(state), written=written, notes=notes)


def gate_results(outcome: Outcome | None) -> Sequence[GateResult]:
    """The gate verdicts of a finished session."""
    return outcome.gates if outcome else []
