"""End of a pytest evals session: build the report, write it, judge the gates, report them to pytest."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .gates import (
    NOT_EVALUATED,
    GateConfigError,
    GateResult,
    GateRules,
    Scope,
    evaluate,
    parse_rules,
    project_settings,
    read_baseline,
    write_baseline,
)
from .pricing import PriceTable, load_price_table
from .report import Report, build_report
from .report_files import ReportConfigError, ReportSettings, publish
from .run_info import RunInfo, make_headline
from .terminal import LineKind, summary_lines

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
        """Print the short summary (field tables, variants, verdicts, gates, report path) in pytest's terminal."""
        notes = [f"cassettes: {note}" for note in self.hygiene] + self.notes
        lines = summary_lines(
            self.report,
            self.gates,
            written=self.written,
            notes=notes,
        )
        for line in lines:
            if line.kind == LineKind.SEP:
                tr.write_sep("=", line.text)
            else:
                tr.write_line(line.text)


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
    try:
        report_settings = ReportSettings.from_settings(
            settings, f"{state.rootpath / 'pyproject.toml'} [tool.audio-evals.report]"
        )
    except ReportConfigError as exc:
        raise pytest.UsageError(f"audio-evals report: {exc}") from None
    infos = state.suite_infos()
    cluster_by = {name: info.get("cluster_by") for name, info in infos.items()}
    results = sorted(state.results, key=lambda r: (r.suite, r.variant, r.case_id, r.repeat))
    report = build_report(
        results,
        skips=state.skips,
        prices=_prices(state, settings),
        cluster_by=cluster_by,
        baselines={name: info.get("baseline") for name, info in infos.items()},
        variant_order={name: info.get("variants", []) for name, info in infos.items()},
        all_pairs=report_settings.all_pairs,
        field_types={name: info.get("field_types", {}) for name, info in infos.items()},
        root=state.rootpath,
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
    info = RunInfo(
        make_headline(report, record_mode=state.record_mode, root=state.rootpath), tuple(gates)
    )
    written = publish(report, state.reports_dir, info, report_settings.html) if results else []
    if state.config.getoption("update_baseline") and results:
        write_baseline(report, baseline_path)
        notes.append(f"baseline written: {baseline_path}")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary and results:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(report.markdown(headline=info.headline, gates=gates))
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
