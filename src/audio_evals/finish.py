"""The end of a run: its report, its gate verdicts, the baseline and the cassette hygiene notes.

`build_report(run)`, `gate_rules(run)`, `evaluate_gates(report, rules)` and `write_report(...)`
are library calls; `finish(run, ...)` does all of them the way `pytest evals` does and returns an
`Outcome` whose `lines` the pytest plugin (or a script) prints.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import BatchStatus, Run
from .files import replace_folder
from .gates import (
    FAILED,
    NOT_EVALUATED,
    GateConfigError,
    GateResult,
    GateRules,
    Scope,
    evaluate,
    gates_markdown,
    merge_baseline,
    parse_rules,
    read_baseline,
    write_baseline,
)
from .pricing import PriceTable, load_price_table
from .report import Report, field_table
from .report import build_report as report_from_results
from .run_record import run_record, unfinished_reason

DEFAULT_BASELINE = "reports/baseline.json"


def gate_rules(run: Run) -> list[GateRules]:
    """The gate rules of a run: the project's `[tool.audio-evals.gates]`, then each suite's `[gates]`."""
    rules: list[GateRules] = []
    project = run.project.settings.get("gates")
    if project:
        origin = f"{run.project.root / 'pyproject.toml'} [tool.audio-evals.gates]"
        rules.append(parse_rules(project, origin))
    for name, info in sorted(run.suites.items()):
        if info.gates:
            rules.append(parse_rules(info.gates, f"{info.source or name} [gates]", suite=name))
    return rules


def _scopes(run: Run) -> list[Scope]:
    ran = {(r.suite, r.variant) for r in run.results}
    scopes = []
    for b in run.batches.values():
        unfinished = unfinished_reason(b)
        scopes.append(
            Scope(
                suite=b.suite,
                variant=b.variant,
                ran=(b.suite, b.variant) in ran and unfinished is None,
                deselected_on_purpose=b.status is BatchStatus.DESELECTED,
                skipped_reason=b.reason
                if b.status in (BatchStatus.SKIPPED, BatchStatus.FAILED)
                else None,
                unfinished=unfinished,
            )
        )
    return scopes


def _subsets(run: Run) -> set[tuple[str, str]]:
    """The batches that ran on a subset of their cases (`-k`, `--case`): a baseline keeps the rest."""
    return {key for key, b in run.batches.items() if 0 < b.selected < b.collected}


def _prices(run: Run) -> dict[str, PriceTable]:
    base = dict(run.project.settings.get("pricing", {}))
    return {
        name: load_price_table({**base, **info.pricing} or None)
        for name, info in run.suites.items()
    }


def build_report(run: Run) -> Report:
    """All frames of a run (results, cases, fields, variants, comparisons) with its scopes."""
    results = sorted(run.results, key=lambda r: (r.suite, r.variant, r.case_id, r.repeat))
    report = report_from_results(
        results,
        skips=run.skips,
        prices=_prices(run),
        cluster_by={name: info.cluster_by for name, info in run.suites.items()},
    )
    report.scopes = _scopes(run)
    report.root = run.project.root
    report.run = run_record(run)
    return report


def baseline_path(rules: Sequence[GateRules], root: Path) -> Path:
    """The baseline file the regression rules name (the first one), relative to the root."""
    named = [r.regression.baseline for r in rules if r.regression is not None]
    return root / (named[0] if named else DEFAULT_BASELINE)


def evaluate_gates(
    report: Report, rules: Sequence[GateRules], *, baseline: Mapping[str, Any] | None = None
) -> list[GateResult]:
    """Judge the rules on a report (the regression baseline is read from the rules' path when not given)."""
    if baseline is None and any(r.regression is not None for r in rules):
        baseline = read_baseline(baseline_path(rules, report.root or Path.cwd()))
    partial = report.run.gate() if report.run is not None else None
    if not rules and report.results.empty:
        return [partial] if partial else []
    return ([partial] if partial else []) + evaluate(report, rules, report.scopes, baseline)


def write_report(
    report: Report, reports_dir: Path, *, gates: Iterable[GateResult] = (), latest: bool = True
) -> list[Path]:
    """Write the report into `reports_dir/runs/<UTC time>/` and, by default, as `reports_dir/latest/`."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = reports_dir / "runs" / stamp
    report.write(run_dir, "\n## Gates\n\n" + gates_markdown(list(gates)))
    if not latest:
        return [run_dir]
    replace_folder(run_dir, reports_dir / "latest")
    return [reports_dir / "latest", run_dir]


@dataclass(frozen=True)
class Line:
    """One line of the terminal summary; `sep` set for a separator line (pytest's `write_sep`)."""

    text: str
    sep: str | None = None


@dataclass
class Outcome:
    """What a run ended with: the report, gate verdicts, notes and where files went."""

    report: Report
    gates: list[GateResult]
    hygiene: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether a gate failed."""
        return any(g.failed for g in self.gates)

    @property
    def lines(self) -> list[Line]:
        """The terminal summary: per-field tables, hygiene, notes and the gates."""
        out = [Line("audio-evals: field accuracy (95% CI, n)", "=")]
        report = self.report
        if report.cases.empty:
            out.append(Line("no case was scored"))
        for suite in sorted(set(report.cases["suite"])) if not report.cases.empty else []:
            out.append(Line(f"suite {suite}"))
            out += [Line("  " + line) for line in field_table(report.fields, suite).splitlines()]
            for _, r in report.variants[report.variants["suite"] == suite].iterrows():
                cost = r["cost_per_case_usd"]
                cost_text = "cost unknown" if cost != cost else f"${cost * 1000:.2f}/1k cases"
                out.append(
                    Line(
                        f"  {r['variant']}: exact record {100 * r['exact_accuracy']:.1f}% "
                        f"[{100 * r['ci_low']:.0f}, {100 * r['ci_high']:.0f}] n={int(r['n'])}, "
                        f"errors {int(r['errors'])}, p95 {r['latency_p95_ms']:.0f} ms "
                        f"({r['latency_source']}), {cost_text}"
                    )
                )
            comp = report.comparison
            if not comp.empty:
                for _, c in comp[
                    (comp["suite"] == suite) & (comp["field"] == "(record)")
                ].iterrows():
                    out.append(
                        Line(
                            f"  {c['variant_b']} vs {c['variant_a']} (exact record): "
                            f"{100 * c['diff']:+.1f} pts [{100 * c['ci_low']:+.0f}, "
                            f"{100 * c['ci_high']:+.0f}] -> {c['verdict']}"
                        )
                    )
        out += [Line(f"not run: {s['suite']}/{s['variant']}: {s['reason']}") for s in report.skips]
        out += [Line(f"cassettes: {note}") for note in self.hygiene]
        out += [Line(note) for note in self.notes]
        if self.gates:
            failed = [g for g in self.gates if g.status == FAILED]
            out.append(Line(f"audio-evals gates: {len(failed)} failed of {len(self.gates)}", "="))
            marks = {"passed": "PASS", "failed": "FAIL", NOT_EVALUATED: "N/E "}
            out += [Line(f"{marks[g.status]} {g.name}: {g.detail}") for g in self.gates]
        out += [Line(f"report written: {path}") for path in self.written]
        return out


def hygiene(run: Run, *, prune: bool, all_suites_collected: bool) -> list[str]:
    """Cassette notes: unused interactions, and cassettes of suites/variants that no longer exist."""
    notes = []
    prunable = False
    for b in sorted(run.batches.values(), key=lambda b: (b.suite, b.variant)):
        if b.unused_interactions:
            verb = "removed" if prune else "unused (never replayed)"
            notes.append(f"{b.cassette}: {b.unused_interactions} interaction(s) {verb}")
            prunable = True
        elif b.unused_unknown:
            notes.append(f"{b.cassette}: unused interactions not counted: {b.unused_unknown}")
    library = run.project.cassette_dir
    if library.is_dir() and run.suites:
        known = set(run.batches)
        for path in sorted(library.glob("*/*.yaml")):
            suite, variant = path.parent.name, path.stem
            orphan = (suite in run.suites and (suite, variant) not in known) or (
                suite not in run.suites and all_suites_collected
            )
            if not orphan:
                continue
            rel = run.project.relative(path)
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


def finish_run(
    run: Run,
    *,
    update_baseline: bool = False,
    force_baseline: bool = False,
    prune: bool = False,
    all_suites_collected: bool = False,
    write: bool = True,
) -> Outcome:
    """Build and write the report, judge the gates, update the baseline when asked (GateConfigError)."""
    rules = gate_rules(run)
    report = build_report(run)
    path = baseline_path(rules, run.project.root)
    baseline = read_baseline(path)
    gates = evaluate_gates(report, rules, baseline=baseline)
    notes: list[str] = []
    partial = report.run is not None and not report.run.complete
    if report.run is not None and partial:
        notes.append(f"audio-evals: {report.run.summary}")
    written = (
        write_report(report, run.project.reports_dir, gates=gates)
        if write and (run.results or partial)
        else []
    )
    if update_baseline and run.results:
        failed = [g for g in gates if g.failed]
        if partial:
            notes.append(
                "baseline NOT written: the run is partial (not even with --force-baseline)"
            )
        elif failed and not force_baseline:
            notes.append(
                f"baseline NOT written: {len(failed)} gate(s) failed (first: {failed[0].name}); "
                "fix them, or pass --force-baseline to accept this run as the new baseline"
            )
        else:
            doc, changes = merge_baseline(baseline, report, _subsets(run))
            write_baseline(doc, path)
            notes.append(
                f"baseline written: {run.project.relative(path)} ({len(changes)} change(s))"
            )
            notes += [f"  {change}" for change in changes]
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary and run.results:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(report.markdown() + "\n## Gates\n\n" + gates_markdown(gates))
    return Outcome(
        report,
        gates,
        hygiene=hygiene(run, prune=prune, all_suites_collected=all_suites_collected),
        written=written,
        notes=notes,
    )


__all__ = [
    "GateConfigError",
    "Line",
    "Outcome",
    "build_report",
    "evaluate_gates",
    "finish_run",
    "gate_rules",
    "write_report",
]
