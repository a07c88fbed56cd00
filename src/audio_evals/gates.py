"""Quality gates: field thresholds, exact-record, cost and latency limits, and regression vs a baseline."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if (
    TYPE_CHECKING
):  # pandas and the report are imported when gates are judged, not when rules are read
    from .report import Report

BASELINE_VERSION = 1


class GateStatus(StrEnum):
    """A gate's verdict."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_EVALUATED = "not evaluated"


PASSED, FAILED, NOT_EVALUATED = GateStatus.PASSED, GateStatus.FAILED, GateStatus.NOT_EVALUATED
_RULE_KEYS = frozenset(
    {
        "max_error_rate",
        "min_accuracy",
        "on",
        "min_exact_accuracy",
        "max_cost_per_case",
        "max_p95_latency_ms",
        "variants",
        "regression",
    }
)
_REGRESSION_KEYS = frozenset({"baseline", "max_drop", "alpha", "test", "enabled"})


class GateConfigError(ValueError):
    """A gate rule that cannot be read, naming where it came from."""


@dataclass(frozen=True)
class GateResult:
    """One judged gate: what it checked, the numbers that decided it and its status."""

    name: str
    status: GateStatus
    measured: float | None
    threshold: float | None
    detail: str

    @property
    def failed(self) -> bool:
        """Whether this gate blocks the merge."""
        return self.status == FAILED


@dataclass(frozen=True)
class Regression:
    """Regression rule: fail when a field drops by more than max_drop and the paired test says so."""

    baseline: str = "reports/baseline.json"
    max_drop: float = 0.05
    alpha: float = 0.05
    test: str = "paired"
    enabled: bool = True


@dataclass(frozen=True)
class GateRules:
    """Gate rules for one scope (the project or one suite)."""

    min_accuracy: Mapping[str, float] = field(default_factory=dict)
    on: str = "point"
    min_exact_accuracy: Mapping[str, float] = field(default_factory=dict)
    max_cost_per_case: Mapping[str, float] = field(default_factory=dict)
    max_p95_latency_ms: Mapping[str, float] = field(default_factory=dict)
    max_error_rate: Mapping[str, float] = field(default_factory=lambda: {"*": 0.0})
    variants: tuple[str, ...] = ()
    regression: Regression | None = None
    origin: str = ""


def _floats(table: Any, origin: str, key: str) -> dict[str, float]:
    if not isinstance(table, Mapping):
        raise GateConfigError(f"{origin}: {key} must be a table of numbers")
    out = {}
    for k, v in table.items():
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise GateConfigError(f"{origin}: {key}[{k!r}] must be a number, got {v!r}")
        out[str(k)] = float(v)
    return out


def _check_regression(reg: Regression, origin: str) -> None:
    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    if not number(reg.max_drop) or not 0 <= reg.max_drop <= 1:
        raise GateConfigError(
            f"{origin}: regression.max_drop must be a number in [0, 1], got {reg.max_drop!r}"
        )
    if not number(reg.alpha) or not 0 < reg.alpha < 1:
        raise GateConfigError(
            f"{origin}: regression.alpha must be a number in (0, 1), got {reg.alpha!r}"
        )
    if not isinstance(reg.baseline, str) or not reg.baseline:
        raise GateConfigError(f"{origin}: regression.baseline must be a path, got {reg.baseline!r}")
    if not isinstance(reg.enabled, bool):
        raise GateConfigError(
            f"{origin}: regression.enabled must be true or false, got {reg.enabled!r}"
        )
    if reg.test not in ("paired", "none"):
        raise GateConfigError(
            f"{origin}: regression.test must be 'paired' or 'none', got {reg.test!r}"
        )


def parse_rules(table: Mapping[str, Any], origin: str, suite: str | None = None) -> GateRules:
    """Read a gates table; in a suite file, keys name fields of that suite only."""
    unknown = sorted(set(table) - _RULE_KEYS)
    if unknown:
        raise GateConfigError(
            f"{origin}: unknown gate key {unknown[0]!r} (known: {', '.join(sorted(_RULE_KEYS))})"
        )
    on = table.get("on", "point")
    if on not in ("point", "lower_bound"):
        raise GateConfigError(f"{origin}: on must be 'point' or 'lower_bound', got {on!r}")

    min_accuracy = _floats(table.get("min_accuracy", {}), origin, "min_accuracy")
    if suite is not None:
        min_accuracy = {f"{suite}:{k}": v for k, v in min_accuracy.items()}

    reg = table.get("regression")
    regression = None
    if reg is not None:
        if not isinstance(reg, Mapping):
            raise GateConfigError(f"{origin}: regression must be a table")
        bad = sorted(set(reg) - _REGRESSION_KEYS)
        if bad:
            raise GateConfigError(f"{origin}: unknown regression key {bad[0]!r}")
        regression = Regression(**{k: reg[k] for k in reg})
        _check_regression(regression, origin)
    variants = table.get("variants", ())
    if isinstance(variants, str):
        variants = (variants,)
    if not isinstance(variants, list | tuple) or not all(
        isinstance(v, str) and v for v in variants
    ):
        raise GateConfigError(
            f"{origin}: variants must be a list of variant names or globs, got {variants!r}"
        )
    exact = table.get("min_exact_accuracy", {})
    if suite is not None and isinstance(exact, int | float):
        exact = {suite: exact}
    cost = table.get("max_cost_per_case", {})
    if suite is not None and isinstance(cost, int | float):
        cost = {suite: cost}
    p95 = table.get("max_p95_latency_ms", {})
    if suite is not None and isinstance(p95, int | float):
        p95 = {suite: p95}
    errors = table.get("max_error_rate", 0.0)
    if isinstance(errors, int | float) and not isinstance(errors, bool):
        errors = {suite or "*": errors}
    error_rates = _floats(errors, origin, "max_error_rate")
    if any(not 0 <= v <= 1 for v in error_rates.values()):
        raise GateConfigError(f"{origin}: max_error_rate must be a rate in [0, 1]")
    return GateRules(
        min_accuracy=min_accuracy,
        on=on,
        min_exact_accuracy=_floats(exact, origin, "min_exact_accuracy"),
        max_cost_per_case=_floats(cost, origin, "max_cost_per_case"),
        max_p95_latency_ms=_floats(p95, origin, "max_p95_latency_ms"),
        max_error_rate=error_rates,
        variants=tuple(variants),
        regression=regression,
        origin=origin,
    )


@dataclass(frozen=True)
class Scope:
    """What the run did with one (suite, variant): ran, deselected on purpose, skipped, or unfinished.

    `unfinished` is why a batch that was asked to run has nothing a gate may judge (it failed,
    it was interrupted, every case of it errored): every gate on it fails with that reason.
    `subset` says a batch ran on some of its cases only (-k, --case): its gates are not evaluated.
    """

    suite: str
    variant: str
    ran: bool
    deselected_on_purpose: bool
    skipped_reason: str | None
    unfinished: str | None = None
    subset: str | None = None


def _match(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


def _split_key(key: str) -> tuple[str, str]:
    suite, sep, fld = key.partition(":")
    return (suite, fld) if sep else (suite, "*")


def _variants_for(
    rules: GateRules, scopes: Sequence[Scope], suite: str
) -> list[tuple[Scope, bool]]:
    """The (scope, explicit) pairs a rule judges in one suite."""
    out = []
    for s in scopes:
        if s.suite != suite:
            continue
        if rules.variants:
            if any(_match(p, s.variant) for p in rules.variants):
                explicit = any(not any(ch in p for ch in "*?[") for p in rules.variants)
                out.append((s, explicit))
        elif s.ran or s.deselected_on_purpose or s.unfinished:
            out.append((s, False))
    return out


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def _unmatched_names(rule: GateRules, scopes: Sequence[Scope]) -> list[GateResult]:
    """Failed gates for literal suite or variant names that match nothing (a typo must not pass)."""
    suites = {s.suite for s in scopes}
    variants = {s.variant for s in scopes}
    out = []
    keys = [*(_split_key(k)[0] for k in rule.min_accuracy), *rule.min_exact_accuracy]
    keys += [*rule.max_cost_per_case, *rule.max_p95_latency_ms]
    for suite in dict.fromkeys(keys):
        if not _is_glob(suite) and suite not in suites:
            out.append(
                GateResult(
                    f"gate rules for suite {suite}",
                    FAILED,
                    None,
                    None,
                    f"never scored: no suite named {suite!r} (known: {', '.join(sorted(suites))}) in {rule.origin}",
                )
            )
    for variant in rule.variants:
        if not _is_glob(variant) and variant not in variants:
            out.append(
                GateResult(
                    f"gate rules for variant {variant}",
                    FAILED,
                    None,
                    None,
                    f"never scored: no variant named {variant!r} (known: {', '.join(sorted(variants))}) "
                    f"in {rule.origin}",
                )
            )
    return out


def _not_run(scope: Scope, name: str, threshold: float | None) -> GateResult:
    if scope.unfinished:
        return GateResult(name, FAILED, None, threshold, f"not judged: {scope.unfinished}")
    if scope.deselected_on_purpose:
        return GateResult(
            name, NOT_EVALUATED, None, threshold, "deselected on purpose (--variant/-k)"
        )
    if scope.subset:
        return GateResult(
            name, NOT_EVALUATED, None, threshold, f"{scope.subset}: a gate judges whole variants"
        )
    reason = scope.skipped_reason or "no case of it was scored"
    return GateResult(name, FAILED, None, threshold, f"never scored: {reason}")


def _judged(report: Report, scopes: Sequence[Scope]) -> list[Scope]:
    """The scopes with every one whose cases all errored marked unfinished: such a run is judged on nothing."""
    variants = report.variants
    errored: dict[tuple[str, str], int] = {}
    if not variants.empty:
        for _, row in variants.iterrows():
            if int(row["n"]) and int(row["errors"]) == int(row["n"]):
                errored[(row["suite"], row["variant"])] = int(row["n"])
    out = []
    for s in scopes:
        n = errored.get((s.suite, s.variant))
        if s.ran and n is not None:
            s = dataclasses.replace(
                s, ran=False, unfinished=f"every case errored ({n} of {n}): nothing was scored"
            )
        out.append(s)
    return out


def evaluate(
    report: Report,
    rules: Sequence[GateRules],
    scopes: Sequence[Scope],
    baseline: Mapping[str, Any] | None = None,
) -> list[GateResult]:
    """Judge every rule on this run's report."""
    out: list[GateResult] = []
    fields = report.fields
    scopes = _judged(report, scopes)
    suites = sorted({s.suite for s in scopes})
    for rule in rules:
        out += _unmatched_names(rule, scopes)
        for key, threshold in rule.min_accuracy.items():
            suite_pat, field_pat = _split_key(key)
            for suite in (s for s in suites if _match(suite_pat, s)):
                for scope, _explicit in _variants_for(rule, scopes, suite):
                    sel = fields[(fields["suite"] == suite) & (fields["variant"] == scope.variant)]
                    matched = (
                        [f for f in dict.fromkeys(sel["field"]) if _match(field_pat, f)]
                        if len(sel)
                        else []
                    )
                    label = f"min_accuracy {suite}/{scope.variant}:{field_pat}"
                    if not scope.ran:
                        out.append(_not_run(scope, f"{label} >= {threshold:g}", threshold))
                        continue
                    if not matched:
                        if "*" in field_pat or "?" in field_pat:
                            continue
                        out.append(
                            GateResult(
                                f"{label} >= {threshold:g}",
                                FAILED,
                                None,
                                threshold,
                                f"never scored: suite {suite} has no field {field_pat!r}",
                            )
                        )
                        continue
                    for fld in matched:
                        row = sel[sel["field"] == fld].iloc[0]
                        value = float(
                            row["ci_low"] if rule.on == "lower_bound" else row["accuracy"]
                        )
                        ok = not math.isnan(value) and value >= threshold
                        interval = (
                            f"95% CI [{row['ci_low']:.3f}, {row['ci_high']:.3f}], n={int(row['n'])}"
                        )
                        if rule.on == "lower_bound":
                            measured = f"95% lower bound {value:.3f} (accuracy {row['accuracy']:.3f}, {interval})"
                        else:
                            measured = f"accuracy {value:.3f} ({interval})"
                        out.append(
                            GateResult(
                                f"min_accuracy {suite}/{scope.variant}:{fld} >= {threshold:g}",
                                PASSED if ok else FAILED,
                                value,
                                threshold,
                                f"{measured} {'>=' if ok else '<'} {threshold:g}",
                            )
                        )
        out += _variant_rules(report, rule, scopes, suites)
        if rule.regression is not None and rule.regression.enabled:
            out += _regression(report, rule, scopes, suites, baseline)
    unique: dict[str, GateResult] = {}
    for gate in out:  # the project's rules and a suite's may judge the same thing: once
        unique.setdefault(gate.name, gate)
    return list(unique.values())


def _variant_rules(
    report: Report, rule: GateRules, scopes: Sequence[Scope], suites: list[str]
) -> list[GateResult]:
    out: list[GateResult] = []
    variants = report.variants
    if not variants.empty:
        variants = variants.assign(error_rate=variants["errors"] / variants["n"])
    checks = (
        ("max_error_rate", rule.max_error_rate, "error_rate", "<="),
        ("min_exact_accuracy", rule.min_exact_accuracy, "exact_accuracy", ">="),
        ("max_cost_per_case", rule.max_cost_per_case, "cost_per_case_usd", "<="),
        ("max_p95_latency_ms", rule.max_p95_latency_ms, "latency_p95_ms", "<="),
    )
    for gate, table, column, op in checks:
        for suite_pat, threshold in table.items():
            for suite in (s for s in suites if _match(suite_pat, s)):
                for scope, _ in _variants_for(rule, scopes, suite):
                    name = f"{gate} {suite}/{scope.variant} {op} {threshold:g}"
                    if not scope.ran:
                        out.append(_not_run(scope, name, threshold))
                        continue
                    row = variants[
                        (variants["suite"] == suite) & (variants["variant"] == scope.variant)
                    ]
                    if row.empty:
                        out.append(GateResult(name, FAILED, None, threshold, "never scored"))
                        continue
                    r = row.iloc[0]
                    value = float(r[column])
                    if column == "exact_accuracy" and rule.on == "lower_bound":
                        value = float(r["ci_low"])
                    if math.isnan(value):
                        out.append(
                            GateResult(
                                name,
                                FAILED,
                                None,
                                threshold,
                                f"{column} unknown (model {r['model']} has no price?)",
                            )
                        )
                        continue
                    ok = value >= threshold if op == ">=" else value <= threshold
                    detail = f"{column} {value:.6g} {op if ok else ('<' if op == '>=' else '>')} {threshold:g}"
                    if column == "exact_accuracy":
                        detail += (
                            f" (95% CI [{r['ci_low']:.3f}, {r['ci_high']:.3f}], n={int(r['n'])})"
                        )
                    if column == "error_rate":
                        detail = (
                            f"{int(r['errors'])} of {int(r['n'])} cases errored "
                            f"({100 * value:.1f}% {op if ok else '>'} {100 * threshold:g}%)"
                        )
                    out.append(GateResult(name, PASSED if ok else FAILED, value, threshold, detail))
    return out


def baseline_from_report(report: Report) -> dict[str, Any]:
    """The baseline document: per suite, variant and field, accuracy and per-case correctness."""
    from . import report as report_mod

    doc: dict[str, Any] = {"version": BASELINE_VERSION, "suites": {}}
    res = report.results
    for (suite, variant), group in res.groupby(["suite", "variant"], sort=True):
        entry: dict[str, Any] = {}
        fields = [report_mod.RECORD_FIELD, *dict.fromkeys(group["field"])]
        for fld in fields:
            per_case = report_mod.per_case_scores(report, suite, variant, fld)
            entry[fld] = {
                "accuracy": round(float(per_case.mean()), 6),
                "n": int(len(per_case)),
                "cases": {str(k): round(float(v), 6) for k, v in sorted(per_case.items())},
            }
        doc["suites"].setdefault(suite, {})[variant] = entry
    return doc


def merge_baseline(
    old: Mapping[str, Any] | None,
    report: Report,
    subsets: Collection[tuple[str, str]] = (),
) -> tuple[dict[str, Any], list[str]]:
    """The baseline updated with what this run scored, every other entry kept, and a line per change.

    A (suite, variant) that ran in full replaces its entry. One that ran on a subset of its cases
    (`subsets`: `-k`, `--case`) updates those cases only: the other cases keep their recorded
    values, and each field's accuracy and n are recomputed over the merged cases.
    """
    new = baseline_from_report(report)
    merged: dict[str, Any] = {
        "version": BASELINE_VERSION,
        "suites": {k: dict(v) for k, v in ((old or {}).get("suites") or {}).items()},
    }
    changes: list[str] = []
    for suite, variants in new["suites"].items():
        for variant, entry in variants.items():
            before = merged["suites"].get(suite, {}).get(variant)
            subset = (suite, variant) in subsets
            if subset and before is not None:
                entry = _merge_cases(before, entry)
            merged["suites"].setdefault(suite, {})[variant] = entry
            if before is None:
                cases = len(next(iter(entry.values()))["cases"]) if entry else 0
                changes.append(f"{suite}/{variant}: added ({len(entry)} fields, {cases} cases)")
                continue
            for fld, now in entry.items():
                was = before.get(fld)
                if was is None:
                    changes.append(
                        f"{suite}/{variant}:{fld}: added at {100 * now['accuracy']:.1f}%"
                    )
                elif was.get("cases") != now["cases"]:
                    changes.append(
                        f"{suite}/{variant}:{fld}: {100 * was['accuracy']:.1f}% -> "
                        f"{100 * now['accuracy']:.1f}% (n {was['n']} -> {now['n']})"
                    )
            if not subset:
                for fld in sorted(set(before) - set(entry)):
                    changes.append(f"{suite}/{variant}:{fld}: removed (no longer scored)")
            if subset:
                ran = len(next(iter(new["suites"][suite][variant].values()))["cases"])
                changes.append(
                    f"{suite}/{variant}: {ran} case(s) ran (a subset): only their values were "
                    "updated, the other cases keep their baseline values"
                )
    merged["suites"] = {k: merged["suites"][k] for k in sorted(merged["suites"])}
    return merged, changes


def _merge_cases(before: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """A variant's baseline entry with the cases of `entry` updated and every other case kept."""
    out = {fld: dict(value) for fld, value in before.items()}
    for fld, now in entry.items():
        cases = {**(before.get(fld) or {}).get("cases", {}), **now["cases"]}
        cases = dict(sorted(cases.items()))
        out[fld] = {
            "accuracy": round(sum(cases.values()) / len(cases), 6) if cases else 0.0,
            "n": len(cases),
            "cases": cases,
        }
    return out


def write_baseline(doc: Mapping[str, Any], path: Path) -> None:
    """Write a baseline document atomically."""
    from .files import atomic_write
    from .report import dumps_json

    atomic_write(path, dumps_json(doc))


def read_baseline(path: Path) -> dict[str, Any] | None:
    """The committed baseline, or None when there is none."""
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GateConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if doc.get("version") != BASELINE_VERSION:
        raise GateConfigError(
            f"{path}: baseline version {doc.get('version')!r} is not {BASELINE_VERSION}; "
            "rewrite it with pytest evals --update-baseline"
        )
    return doc


def _regression(
    report: Report,
    rule: GateRules,
    scopes: Sequence[Scope],
    suites: list[str],
    baseline: Mapping[str, Any] | None,
) -> list[GateResult]:
    import pandas as pd

    from .report import per_case_scores
    from .stats import paired_comparison

    reg = rule.regression
    assert reg is not None
    if baseline is None:
        return [
            GateResult(
                f"regression vs {reg.baseline}",
                NOT_EVALUATED,
                None,
                None,
                f"no baseline at {reg.baseline}: write one with pytest evals --update-baseline",
            )
        ]
    out: list[GateResult] = []
    for suite in suites:
        for scope, _ in _variants_for(rule, scopes, suite):
            base_fields = baseline.get("suites", {}).get(suite, {}).get(scope.variant)
            if base_fields is None:
                continue
            name_prefix = f"regression {suite}/{scope.variant}"
            if not scope.ran:
                out.append(_not_run(scope, name_prefix, None))
                continue
            for fld, base in base_fields.items():
                now = per_case_scores(report, suite, scope.variant, fld)
                before = pd.Series(base["cases"], dtype=float)
                common = sorted(set(before.index) & set(now.index))
                name = f"{name_prefix}:{fld} drop <= {reg.max_drop:g}"
                if not common:
                    out.append(
                        GateResult(
                            name, FAILED, None, reg.max_drop, "never scored: no case in common"
                        )
                    )
                    continue
                a = before[common].to_numpy()
                b = now[common].to_numpy()
                drop = float(a.mean() - b.mean())
                if drop <= reg.max_drop:
                    out.append(
                        GateResult(
                            name,
                            PASSED,
                            drop,
                            reg.max_drop,
                            f"{100 * a.mean():.1f}% -> {100 * b.mean():.1f}% on n={len(common)} "
                            f"(drop {100 * drop:+.1f} pts)",
                        )
                    )
                    continue
                if reg.test == "none":
                    out.append(
                        GateResult(
                            name,
                            FAILED,
                            drop,
                            reg.max_drop,
                            f"dropped {100 * drop:.1f} pts ({100 * a.mean():.1f}% -> {100 * b.mean():.1f}%, "
                            f"n={len(common)}) > {100 * reg.max_drop:.1f}",
                        )
                    )
                    continue
                res = paired_comparison(a, b, alpha=reg.alpha)
                significant = res.label == "worse"
                detail = (
                    f"dropped {100 * drop:.1f} pts ({100 * a.mean():.1f}% -> {100 * b.mean():.1f}%, n={len(common)}); "
                    f"paired diff 95% CI [{100 * res.ci_low:+.1f}, {100 * res.ci_high:+.1f}] pts, "
                    f"p={res.p_value:.3g} ({res.method})"
                )
                if significant:
                    out.append(
                        GateResult(
                            name, FAILED, drop, reg.max_drop, detail + ": significant regression"
                        )
                    )
                else:
                    out.append(
                        GateResult(
                            name,
                            PASSED,
                            drop,
                            reg.max_drop,
                            detail
                            + f": not significant at alpha={reg.alpha:g}, passes with a note",
                        )
                    )
    return out


def gates_markdown(results: Iterable[GateResult]) -> str:
    """The gate verdicts as a Markdown table (for summary.md and $GITHUB_STEP_SUMMARY)."""
    rows = list(results)
    if not rows:
        return "No gates configured.\n"
    failed = sum(r.failed for r in rows)
    icon = {PASSED: "✅ passed", FAILED: "❌ failed", NOT_EVALUATED: "➖ not evaluated"}
    lines = [
        f"**{'FAILED' if failed else 'PASSED'}**: {len(rows) - failed} of {len(rows)} gates passed or not evaluated, "
        f"{failed} failed.",
        "",
        "| gate | status | detail |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{r.name}` | {icon[r.status]} | {r.detail} |" for r in rows]
    return "\n".join(lines) + "\n"
