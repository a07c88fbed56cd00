"""The short terminal summary of a run: field tables, one line per variant, verdicts vs baseline, gates, where the report is."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .gates import FAILED, NOT_EVALUATED, PASSED, GateResult
from .html_report import REPORT_HTML
from .report import RECORD_FIELD, Report, field_table

_RECORD_WITH = "record it with: "
_VARIANT_ARG = re.compile(r"^(?P<pre>.*?)--variant (?P<variant>\S+)(?P<post>.*)$")
_MARK = {PASSED: "PASS", FAILED: "FAIL", NOT_EVALUATED: "N/E "}


class LineKind(StrEnum):
    """A separator line (pytest's ==== title ====) or a plain line."""

    SEP = "sep"
    TEXT = "text"


@dataclass(frozen=True)
class Line:
    """One line of the terminal summary."""

    kind: LineKind
    text: str


def _text(text: str) -> Line:
    return Line(LineKind.TEXT, text)


def _shown(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def not_run_lines(skips: Sequence[dict[str, str]]) -> list[str]:
    """Skipped variants in as few lines as possible: those missing a cassette in one line with one command."""
    groups: dict[tuple[str, str], list[str]] = {}
    names: dict[tuple[str, str], list[str]] = {}
    other: list[str] = []
    for skip in skips:
        reason = skip["reason"]
        command = reason.partition(_RECORD_WITH)[2].strip()
        match = _VARIANT_ARG.match(command) if command else None
        if match is None:
            other.append(f"not run: {skip['suite']}/{skip['variant']}: {reason}")
            continue
        key = (match["pre"], match["post"])
        variants = groups.setdefault(key, [])
        if match["variant"] not in variants:
            variants.append(match["variant"])
        names.setdefault(key, []).append(f"{skip['suite']}/{skip['variant']}")
    lines = []
    for key, variants in groups.items():
        pre, post = key
        command = pre + " ".join(f"--variant {v}" for v in variants) + post
        lines.append(f"not run (no cassette): {', '.join(names[key])}; record them with: {command}")
    return lines + other


def summary_lines(
    report: Report,
    gates: Sequence[GateResult],
    *,
    written: Sequence[Path] = (),
    notes: Sequence[str] = (),
    all_gates: bool = False,
) -> list[Line]:
    """The terminal summary: per suite the field table, one line per variant and per comparison
    with the baseline, the gates that failed or were not evaluated (every gate with `all_gates`)."""
    out = [Line(LineKind.SEP, "audio-evals: field accuracy (95% CI, n)")]
    if report.cases.empty:
        out.append(_text("no case was scored"))
    for suite in sorted(report.cases["suite"].unique().tolist()) if not report.cases.empty else []:
        out.append(_text(f"suite {suite}"))
        out += [_text("  " + line) for line in field_table(report.fields, suite).splitlines()]
        sv = report.variants[report.variants["suite"] == suite]
        for _, r in sv.iterrows():
            cost = r["cost_per_case_usd"]
            cost_text = "cost unknown" if cost != cost else f"${cost * 1000:.2f}/1k cases"
            out.append(
                _text(
                    f"  {r['variant']}: exact record {100 * r['exact_accuracy']:.1f}% "
                    f"[{100 * r['ci_low']:.0f}, {100 * r['ci_high']:.0f}] n={int(r['n'])}, "
                    f"errors {int(r['errors'])}, p95 {r['latency_p95_ms']:.0f} ms "
                    f"({r['latency_source']}), {cost_text}"
                )
            )
        comp = report.comparison
        sc = (
            comp[(comp["suite"] == suite) & (comp["field"] == RECORD_FIELD)]
            if not comp.empty
            else comp
        )
        for _, c in sc.iterrows():
            out.append(
                _text(
                    f"  {c['variant_b']} vs {c['variant_a']} (exact record): "
                    f"{100 * c['diff']:+.1f} pts [{100 * c['ci_low']:+.0f}, {100 * c['ci_high']:+.0f}]"
                    f" -> {c['verdict']}"
                )
            )
    out += [_text(line) for line in not_run_lines(report.skips)]
    out += [_text(note) for note in (*report.notes, *notes)]
    if gates:
        failed = sum(g.status == FAILED for g in gates)
        out.append(Line(LineKind.SEP, f"audio-evals gates: {failed} failed of {len(gates)}"))
        shown = [g for g in gates if all_gates or g.status != PASSED]
        out += [_text(f"{_MARK[g.status]} {g.name}: {g.detail}") for g in shown]
        if len(shown) < len(gates):
            out.append(
                _text(
                    f"{len(gates) - len(shown)} gate(s) passed (each listed with -v, in summary.md "
                    "and report.html)"
                )
            )
    if written:
        also = "".join(f" (also in {_shown(path)}/)" for path in written[1:])
        out.append(_text(f"report: {_shown(written[0] / REPORT_HTML)}{also}"))
    return out
