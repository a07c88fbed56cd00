"""The end of a run: its report, its gate verdicts, the baseline and the cassette hygiene notes.

`build_report(run)`, `gate_rules(run)`, `evaluate_gates(report, rules)` and `write_report(...)`
are library calls; `finish(run, ...)` does all of them the way `pytest evals` does and returns an
`Outcome` whose `lines` the pytest plugin (or a script) prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import BatchStatus, Run
from .gates import (
    GateConfigError,
    GateResult,
    GateRules,
    Scope,
    evaluate,
    merge_baseline,
    parse_rules,
    read_baseline,
    write_baseline,
)
from .pricing import PriceTable, load_price_table
from .report import Report
from .report import build_report as report_from_results
from .report_files import ReportSettings, publish, publish_folder
from .results import run_key
from .run_info import RunInfo, make_headline
from .run_record import run_record, unfinished_reason
from .terminal import Line, summary_lines

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
        subset = (
            f"ran on {b.selected} of its {b.collected} cases (-k/--case)"
            if 0 < b.selected < b.collected and unfinished is None
            else None
        )
        scopes.append(
            Scope(
                suite=b.suite,
                variant=b.variant,
                ran=(b.suite, b.variant) in ran and unfinished is None and subset is None,
                deselected_on_purpose=b.status is BatchStatus.DESELECTED,
                skipped_reason=b.reason
                if b.status in (BatchStatus.SKIPPED, BatchStatus.FAILED)
                else None,
                unfinished=unfinished,
                subset=subset,
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


def report_settings(run: Run) -> ReportSettings:
    """The project's `[tool.audio-evals.report]` settings (ReportConfigError when one is wrong)."""
    return ReportSettings.from_settings(
        run.project.settings, f"{run.project.root / 'pyproject.toml'} [tool.audio-evals.report]"
    )


def build_report(run: Run) -> Report:
    """All frames of a run (results, cases, fields, variants, comparisons, slices) with its headline."""
    results = sorted(run.results, key=run_key)
    report = report_from_results(
        results,
        skips=run.skips,
        prices=_prices(run),
        cluster_by={name: info.cluster_by for name, info in run.suites.items()},
        baselines={name: info.baseline for name, info in run.suites.items()},
        variant_order={name: info.variants for name, info in run.suites.items()},
        all_pairs=report_settings(run).all_pairs,
        field_types={name: info.field_types for name, info in run.suites.items()},
        root=run.project.root,
    )
    report.scopes = _scopes(run)
    report.run = run_record(run)
    report.headline = make_headline(
        report, record_mode=str(run.record_mode), root=run.project.root, when=run.started_at
    )
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
    report: Report,
    reports_dir: Path,
    *,
    gates: Iterable[GateResult] = (),
    run: Run | None = None,
    folder: Path | None = None,
) -> list[Path]:
    """Write the report into `reports_dir/runs/<UTC time>/` and as `reports_dir/latest/` (or into
    `folder` alone): the CSVs, summary.md, run.json and report.html (the HTML settings are the
    project's when `run` is given)."""
    if report.headline is None:
        raise ValueError(
            "write_report needs a report made by build_report(run) (it has no headline)"
        )
    html = report_settings(run).html if run is not None else None
    info = RunInfo(report.headline, tuple(gates), report.run)
    if folder is not None:
        return [publish_folder(report, folder, info, html)]
    return publish(report, reports_dir, info, html)


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

    def lines(self, *, all_gates: bool = False) -> list[Line]:
        """The short terminal summary: field tables, variants, verdicts, notes, gates, the report."""
        notes = [f"cassettes: {note}" for note in self.hygiene] + self.notes
        return summary_lines(
            self.report, self.gates, written=self.written, notes=notes, all_gates=all_gates
        )


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
    folder: Path | None = None,
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
        write_report(report, run.project.reports_dir, gates=gates, run=run, folder=folder)
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
            fh.write(report.markdown(headline=report.headline, gates=gates))
    return Outcome(
        report,
        gates,
        hygiene=hygiene(run, prune=prune, all_suites_collected=all_suites_collected),
        written=written,
        notes=notes,
    )


__all__ = [
    "GateConfigError",
    "Outcome",
    "build_report",
    "evaluate_gates",
    "finish_run",
    "gate_rules",
    "write_report",
]
