"""Results -> pandas frames -> tables: accuracy with intervals, paired comparisons, cost, latency."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .files import atomic_write_text
from .pricing import PriceTable, Usage, load_price_table, usage_from_response
from .results import CaseResult
from .stats import PairedResult, accuracy_summary, consistency, paired_comparison

if TYPE_CHECKING:
    from .run_record import RunRecord

RECORD_FIELD = "(record)"
RESULT_COLUMNS = [
    "suite",
    "variant",
    "case_id",
    "repeat",
    "field",
    "kind",
    "expected",
    "predicted",
    "correct",
    "score",
    "outcome",
    "optional",
    "error",
    "error_message",
]


def results_frame(results: Iterable[CaseResult]) -> pd.DataFrame:
    """One row per (suite, variant, case, repeat, field), in a stable order."""
    rows: list[dict[str, Any]] = []
    for r in results:
        for order, f in enumerate(r.fields):
            rows.append(
                {
                    "suite": r.suite,
                    "variant": r.variant,
                    "case_id": r.case_id,
                    "repeat": r.repeat,
                    "field": f["field"],
                    "kind": f.get("kind", ""),
                    "expected": f.get("expected", ""),
                    "predicted": f.get("predicted", ""),
                    "correct": bool(f["correct"]),
                    "score": round(float(f["score"]), 6),
                    "outcome": f.get("outcome", ""),
                    "optional": bool(f.get("optional", False)),
                    "error": str(r.error_kind or ""),
                    "error_message": r.error or "",
                    "_order": order,
                }
            )
    frame = pd.DataFrame(rows, columns=[*RESULT_COLUMNS, "_order"])
    frame = frame.sort_values(["suite", "variant", "case_id", "repeat", "_order"], kind="stable")
    return frame.drop(columns="_order").reset_index(drop=True)


def word_error_rate(reference: str | None, hypothesis: str | None) -> float | None:
    """Word error rate of a transcript against its reference (None when either is missing)."""
    if not reference or hypothesis is None:
        return None
    import jiwer

    ref = _normalise_words(reference)
    hyp = _normalise_words(hypothesis)
    if not ref:
        return None
    return float(jiwer.wer(ref, hyp)) if hyp else 1.0


def _normalise_words(text: str) -> str:
    keep = [ch.lower() if ch.isalnum() or ch in " '" else " " for ch in text]
    return " ".join("".join(keep).split())


def case_usage_and_cost(result: CaseResult, table: PriceTable) -> tuple[Usage, float | None]:
    """A case's summed usage and cost over its answered calls (None when any call's cost is unknown)."""
    total, cost = Usage(), 0.0
    for call in result.calls:
        if not 200 <= call.status < 300:
            continue
        usage = usage_from_response(call.usage) if call.usage else Usage()
        if call.is_transcription and not usage.audio_seconds and not usage.total_tokens:
            usage = Usage(audio_seconds=float(result.audio_seconds or 0.0))
        total += usage
        price = (
            table.cost_usd(call.model or result.model, usage)
            if usage.total_tokens or usage.audio_seconds
            else None  # an answer without usage: its cost is unknown, not zero
        )
        cost = None if cost is None or price is None else cost + price
    return total, cost


def cases_frame(
    results: Iterable[CaseResult], prices: Mapping[str, PriceTable] | None = None
) -> pd.DataFrame:
    """One row per (suite, variant, case, repeat): outcome, exact record, tokens, cost, latency, transcript."""
    rows: list[dict[str, Any]] = []
    default_prices = load_price_table()
    for r in results:
        usage, cost = case_usage_and_cost(r, (prices or {}).get(r.suite, default_prices))
        row: dict[str, Any] = {
            "suite": r.suite,
            "variant": r.variant,
            "case_id": r.case_id,
            "repeat": r.repeat,
            "model": r.model,
            "pipeline": r.pipeline,
            "error": str(r.error_kind or ""),
            "error_message": r.error or "",
            "exact": r.error_kind is None and all(f["correct"] for f in r.fields),
            "fields_correct": sum(1 for f in r.fields if f["correct"]),
            "fields": len(r.fields),
            "must_pass": r.must_pass,
            "latency_ms": r.latency_ms,
            "latency_source": str(r.latency_source),
            "text_input_tokens": usage.text_input_tokens,
            "audio_input_tokens": usage.audio_input_tokens,
            "text_output_tokens": usage.text_output_tokens,
            "audio_output_tokens": usage.audio_output_tokens,
            "cost_usd": cost,
            "audio_seconds": r.audio_seconds,
            "audio_path": r.audio_path,
            "transcript": r.transcript or "",
            "wer": word_error_rate(r.reference_transcript, r.transcript),
            "predicted": r.predicted,
            "expected": r.expected,
        }
        for k, v in sorted(r.tags.items()):
            row[f"tag.{k}"] = v
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(["suite", "variant", "case_id", "repeat"], kind="stable").reset_index(
        drop=True
    )


def _clusters(
    group: pd.DataFrame, cases: pd.DataFrame | None, cluster_by: str | None
) -> list[str] | None:
    if cluster_by and cases is not None and f"tag.{cluster_by}" in cases.columns:
        tag = cases.set_index(["suite", "variant", "case_id", "repeat"])[f"tag.{cluster_by}"]
        keys = list(
            zip(group["suite"], group["variant"], group["case_id"], group["repeat"], strict=True)
        )
        return [str(tag.get(k, "")) for k in keys]
    if group["repeat"].nunique() > 1:
        return list(group["case_id"])
    return None


def fields_frame(
    results: pd.DataFrame,
    cases: pd.DataFrame | None = None,
    cluster_by: Mapping[str, str | None] | None = None,
) -> pd.DataFrame:
    """Per (suite, variant, field): n, correct, accuracy with 95% interval, presence P/R/F1, consistency."""
    rows: list[dict[str, Any]] = []
    if results.empty:
        return pd.DataFrame(
            columns=["suite", "variant", "field", "n", "correct", "accuracy", "ci_low", "ci_high"]
        )
    field_order = {
        (s, f): i
        for i, (s, f) in enumerate(
            dict.fromkeys(zip(results["suite"], results["field"], strict=False))
        )
    }
    for (suite, variant, fld), group in results.groupby(["suite", "variant", "field"], sort=False):
        clusters = _clusters(group, cases, (cluster_by or {}).get(suite))
        summary = accuracy_summary(group["correct"].astype(bool).tolist(), clusters=clusters)
        outcomes = group["outcome"].value_counts()
        tp = int(((group["outcome"] == "match") | (group["outcome"] == "mismatch")).sum())
        spurious = int(outcomes.get("spurious", 0))
        missed = int(outcomes.get("missed", 0))
        optional = bool(group["optional"].any())
        precision = tp / (tp + spurious) if optional and (tp + spurious) else math.nan
        recall = tp / (tp + missed) if optional and (tp + missed) else math.nan
        f1 = (
            2 * precision * recall / (precision + recall)
            if optional and precision + recall > 0
            else math.nan
        )
        row = {
            "suite": suite,
            "variant": variant,
            "field": fld,
            "n": summary.n,
            "correct": int(group["correct"].sum()),
            "accuracy": summary.accuracy,
            "ci_low": summary.ci_low,
            "ci_high": summary.ci_high,
            "ci_method": summary.method,
            "mean_score": float(group["score"].mean()),
            "missed": missed,
            "spurious": spurious,
            "presence_precision": precision,
            "presence_recall": recall,
            "presence_f1": f1,
            "consistency": math.nan,
            "_order": field_order[(suite, fld)],
        }
        if group["repeat"].nunique() > 1:
            answers = group.groupby("case_id")["predicted"].apply(list).to_dict()
            row["consistency"] = consistency(answers)
        rows.append(row)
    frame = pd.DataFrame(rows).sort_values(["suite", "variant", "_order"], kind="stable")
    return frame.drop(columns="_order").reset_index(drop=True)


def variants_frame(
    cases: pd.DataFrame, cluster_by: Mapping[str, str | None] | None = None
) -> pd.DataFrame:
    """Per (suite, variant): exact-record accuracy, errors, latency, tokens, cost, word error rate."""
    rows: list[dict[str, Any]] = []
    if cases.empty:
        return pd.DataFrame()
    for (suite, variant), group in cases.groupby(["suite", "variant"], sort=True):
        clusters = _clusters(group, cases, (cluster_by or {}).get(suite))
        summary = accuracy_summary(group["exact"].astype(bool).tolist(), clusters=clusters)
        costs = group["cost_usd"]
        cost_known = costs.notna().all()
        cost_per_case = float(costs.mean()) if cost_known else math.nan
        lat = group["latency_ms"].astype(float)
        wer = group["wer"].dropna() if "wer" in group else pd.Series(dtype=float)
        rows.append(
            {
                "suite": suite,
                "variant": variant,
                "model": group["model"].iloc[0],
                "pipeline": group["pipeline"].iloc[0],
                "cases": int(group["case_id"].nunique()),
                "n": summary.n,
                "errors": int((group["error"] != "").sum()),
                "exact_accuracy": summary.accuracy,
                "ci_low": summary.ci_low,
                "ci_high": summary.ci_high,
                "latency_mean_ms": float(lat.mean()),
                "latency_p50_ms": float(np.percentile(lat, 50)),
                "latency_p95_ms": float(np.percentile(lat, 95)),
                "latency_source": ",".join(sorted(set(group["latency_source"]))),
                "input_tokens_per_case": float(
                    (group["text_input_tokens"] + group["audio_input_tokens"]).mean()
                ),
                "audio_input_tokens_per_case": float(group["audio_input_tokens"].mean()),
                "output_tokens_per_case": float(
                    (group["text_output_tokens"] + group["audio_output_tokens"]).mean()
                ),
                "cost_per_case_usd": cost_per_case,
                "cost_per_1000_usd": cost_per_case * 1000 if cost_known else math.nan,
                "wer": float(wer.mean()) if len(wer) else math.nan,
            }
        )
    return pd.DataFrame(rows)


def _unit_scores(
    results: pd.DataFrame, cases: pd.DataFrame, suite: str, variant: str, fld: str
) -> pd.Series:
    if fld == RECORD_FIELD:
        sel = cases[(cases["suite"] == suite) & (cases["variant"] == variant)]
        return sel.set_index(["case_id", "repeat"])["exact"].astype(float)
    sel = results[
        (results["suite"] == suite) & (results["variant"] == variant) & (results["field"] == fld)
    ]
    return sel.set_index(["case_id", "repeat"])["correct"].astype(float)


def comparison_row(suite: str, fld: str, a: str, b: str, res: PairedResult) -> dict[str, Any]:
    """One row of a comparison table from a paired result."""
    return {
        "suite": suite,
        "field": fld,
        "variant_a": a,
        "variant_b": b,
        "n": res.n,
        "accuracy_a": res.mean_a,
        "accuracy_b": res.mean_b,
        "diff": res.diff,
        "ci_low": res.ci_low,
        "ci_high": res.ci_high,
        "p_value": res.p_value,
        "wins": res.wins,
        "losses": res.losses,
        "ties": res.ties,
        "method": res.method,
        "verdict": res.verdict,
        "label": res.label,
    }


def per_case_scores(report: Report, suite: str, variant: str, fld: str) -> pd.Series:
    """Per case (mean over repeats) correctness of one field, or of the exact record, of a variant."""
    if fld == RECORD_FIELD:
        sel = report.cases[(report.cases["suite"] == suite) & (report.cases["variant"] == variant)]
        return sel.groupby("case_id")["exact"].mean().astype(float)
    res = report.results
    sel = res[(res["suite"] == suite) & (res["variant"] == variant) & (res["field"] == fld)]
    return sel.groupby("case_id")["correct"].mean().astype(float)


def comparison_frame(
    results: pd.DataFrame,
    cases: pd.DataFrame,
    pairs: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    cluster_by: Mapping[str, str | None] | None = None,
) -> pd.DataFrame:
    """Paired comparison per (suite, field, variant pair) on the cases both variants scored (diff = b - a)."""
    rows: list[dict[str, Any]] = []
    columns = [
        "suite",
        "field",
        "variant_a",
        "variant_b",
        "n",
        "accuracy_a",
        "accuracy_b",
        "diff",
        "ci_low",
        "ci_high",
        "p_value",
        "wins",
        "losses",
        "ties",
        "method",
        "verdict",
        "label",
    ]
    if results.empty:
        return pd.DataFrame(columns=columns)
    for suite, sres in results.groupby("suite", sort=True):
        variants = list(dict.fromkeys(sres["variant"]))
        suite_pairs = (pairs or {}).get(suite) or list(itertools.combinations(variants, 2))
        fields = [RECORD_FIELD, *dict.fromkeys(sres["field"])]
        tag_col = f"tag.{(cluster_by or {}).get(suite)}" if (cluster_by or {}).get(suite) else None
        for a, b in suite_pairs:
            for fld in fields:
                sa = _unit_scores(results, cases, suite, a, fld)
                sb = _unit_scores(results, cases, suite, b, fld)
                joined = pd.concat(
                    [sa.rename("a"), sb.rename("b")], axis=1, join="inner"
                ).sort_index()
                if joined.empty:
                    continue
                keys = list(joined.index)
                if tag_col and tag_col in cases.columns:
                    tags = cases[(cases["suite"] == suite) & (cases["variant"] == a)].set_index(
                        ["case_id", "repeat"]
                    )[tag_col]
                    clusters: list[str] | None = [str(tags.get(k, "")) for k in keys]
                elif joined.index.get_level_values("repeat").nunique() > 1:
                    clusters = [str(k[0]) for k in keys]
                else:
                    clusters = None
                res = paired_comparison(
                    joined["a"].to_numpy(), joined["b"].to_numpy(), clusters=clusters
                )
                rows.append(comparison_row(suite, fld, a, b, res))
    return pd.DataFrame(rows, columns=columns)


def ablation_frame(fields: pd.DataFrame, pipelines: Mapping[tuple[str, str], str]) -> pd.DataFrame:
    """Per field: how much of each audio variant's error remains when the reference transcript is given as text."""
    rows: list[dict[str, Any]] = []
    for suite, sf in fields.groupby("suite", sort=True):
        oracles = [
            v
            for v in dict.fromkeys(sf["variant"])
            if pipelines.get((suite, v)) == "extract_from_transcript"
        ]
        audios = [v for v in dict.fromkeys(sf["variant"]) if pipelines.get((suite, v)) == "direct"]
        for oracle, audio in itertools.product(oracles, audios):
            o = sf[sf["variant"] == oracle].set_index("field")["accuracy"]
            a = sf[sf["variant"] == audio].set_index("field")["accuracy"]
            for fld in a.index:
                if fld not in o.index:
                    continue
                err_audio, err_text = 1 - a[fld], 1 - o[fld]
                rows.append(
                    {
                        "suite": suite,
                        "field": fld,
                        "audio_variant": audio,
                        "text_variant": oracle,
                        "accuracy_audio": a[fld],
                        "accuracy_text": o[fld],
                        "error_audio": err_audio,
                        "error_text": err_text,
                        "error_remaining_as_text": err_text / err_audio
                        if err_audio > 0
                        else math.nan,
                    }
                )
    return pd.DataFrame(rows)


@dataclass
class Report:
    """All frames of one run."""

    results: pd.DataFrame
    cases: pd.DataFrame
    fields: pd.DataFrame
    variants: pd.DataFrame
    comparison: pd.DataFrame
    ablation: pd.DataFrame
    skips: list[dict[str, str]]
    scopes: list[Any] = field(default_factory=list)
    root: Path | None = None
    run: RunRecord | None = None  # complete or partial: run.json, and a banner atop summary.md

    def write(self, folder: Path, extra_markdown: str = "") -> None:
        """Write results.csv, cases.csv, fields.csv, variants.csv, comparison.csv, ablation.csv and summary.md."""
        folder.mkdir(parents=True, exist_ok=True)
        _write_csv(self.results, folder / "results.csv")
        _write_csv(self.cases, folder / "cases.csv")
        _write_csv(self.fields, folder / "fields.csv")
        _write_csv(self.variants, folder / "variants.csv")
        _write_csv(self.comparison, folder / "comparison.csv")
        _write_csv(self.ablation, folder / "ablation.csv")
        atomic_write_text(folder / "summary.md", self.markdown() + extra_markdown)
        if self.run is not None:
            atomic_write_text(folder / self.run.FILE, self.run.to_json())

    def markdown(self) -> str:
        """The whole run as Markdown."""
        out = [self.run.banner, ""] if self.run is not None and self.run.banner else []
        out += ["# audio-evals report", ""]
        for suite in sorted(set(self.cases["suite"])) if not self.cases.empty else []:
            out += [f"## Suite `{suite}`", ""]
            out += [field_table(self.fields, suite, markdown=True), ""]
            out += ["### Variants: exact record, latency, tokens, cost", ""]
            out += [variant_table(self.variants, suite), ""]
            comp = (
                self.comparison[self.comparison["suite"] == suite]
                if not self.comparison.empty
                else None
            )
            if comp is not None and not comp.empty:
                out += ["### Paired comparison (diff = B - A, 95% interval)", ""]
                out += [comparison_table(comp), ""]
            abl = (
                self.ablation[self.ablation["suite"] == suite] if not self.ablation.empty else None
            )
            if abl is not None and not abl.empty:
                out += [
                    "### Misheard or misextracted: error left when the reference transcript is given as text",
                    "",
                ]
                out += [ablation_table(abl), ""]
            wrong = self.cases[(self.cases["suite"] == suite) & ~self.cases["exact"]]
            out += [f"### Wrong cases ({len(wrong)})", ""]
            out += [wrong_cases_table(wrong, self.results), ""]
        if self.skips:
            out += ["## Not run", ""]
            out += [f"- `{s['suite']}` / `{s['variant']}`: {s['reason']}" for s in self.skips]
            out.append("")
        return "\n".join(out)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write_text(path, frame.to_csv(index=False, float_format="%.6g", lineterminator="\n"))


def _pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _ci(lo: float, hi: float) -> str:
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (lo, hi)):
        return ""
    return f"[{100 * lo:.0f}, {100 * hi:.0f}]"


def field_table(fields: pd.DataFrame, suite: str, markdown: bool = False) -> str:
    """Per-field accuracy by variant, with n and the 95% interval."""
    sf = fields[fields["suite"] == suite]
    if sf.empty:
        return "(no results)"
    variants = list(dict.fromkeys(sf["variant"]))
    order = list(dict.fromkeys(sf["field"]))
    ns: set[int] = set()
    table = []
    for fld in order:
        row: dict[str, str] = {"field": fld}
        for v in variants:
            r = sf[(sf["variant"] == v) & (sf["field"] == fld)]
            if r.empty:
                row[v] = ""
                continue
            r0 = r.iloc[0]
            if markdown:
                cell = f"{_pct(r0['accuracy'])} {_ci(r0['ci_low'], r0['ci_high'])} n={int(r0['n'])}"
                if r0["missed"] or r0["spurious"]:
                    cell += f" (missed {int(r0['missed'])}, spurious {int(r0['spurious'])})"
            else:
                cell = f"{_pct(r0['accuracy'])} {_ci(r0['ci_low'], r0['ci_high'])}"
                ns.add(int(r0["n"]))
            row[v] = cell
        table.append(row)
    frame = pd.DataFrame(table)
    if markdown:
        return frame.to_markdown(index=False)
    n_text = f"n={ns.pop()}" if len(ns) == 1 else "n varies"
    frame = frame.rename(columns={"field": f"field ({n_text})"})
    return frame.to_string(index=False, justify="left")


def variant_table(variants: pd.DataFrame, suite: str) -> str:
    """Per variant: exact-record accuracy, errors, latency, tokens, cost."""
    sv = variants[variants["suite"] == suite]
    rows = []
    for _, r in sv.iterrows():
        cost = r["cost_per_case_usd"]
        rows.append(
            {
                "variant": r["variant"],
                "model": r["model"],
                "pipeline": r["pipeline"],
                "exact record": f"{_pct(r['exact_accuracy'])} {_ci(r['ci_low'], r['ci_high'])} n={int(r['n'])}",
                "errors": int(r["errors"]),
                "latency mean/p50/p95 ms": f"{r['latency_mean_ms']:.0f} / {r['latency_p50_ms']:.0f} / "
                f"{r['latency_p95_ms']:.0f} ({r['latency_source']})",
                "tokens in (audio) / out": f"{r['input_tokens_per_case']:.0f} ({r['audio_input_tokens_per_case']:.0f})"
                f" / {r['output_tokens_per_case']:.0f}",
                "cost / case": "unknown" if math.isnan(cost) else f"${cost:.5f}",
                "cost / 1k cases": "unknown" if math.isnan(cost) else f"${1000 * cost:.2f}",
                "WER": _pct(r["wer"]),
            }
        )
    return pd.DataFrame(rows).to_markdown(index=False) if rows else "(no results)"


def comparison_table(comp: pd.DataFrame) -> str:
    """Paired comparison rows as Markdown."""
    rows = []
    for _, r in comp.iterrows():
        rows.append(
            {
                "field": r["field"],
                "A": r["variant_a"],
                "B": r["variant_b"],
                "n": int(r["n"]),
                "A acc": _pct(r["accuracy_a"]),
                "B acc": _pct(r["accuracy_b"]),
                "B - A": f"{100 * r['diff']:+.1f} pts {_ci(r['ci_low'], r['ci_high'])}",
                "p": f"{r['p_value']:.3g}",
                "wins/losses/ties": f"{int(r['wins'])}/{int(r['losses'])}/{int(r['ties'])}",
                "verdict": r["verdict"],
            }
        )
    return pd.DataFrame(rows).to_markdown(index=False)


def ablation_table(abl: pd.DataFrame) -> str:
    """The oracle-transcript ablation as Markdown."""
    rows = []
    for _, r in abl.iterrows():
        rows.append(
            {
                "field": r["field"],
                "audio variant": r["audio_variant"],
                "audio acc": _pct(r["accuracy_audio"]),
                "text variant": r["text_variant"],
                "text acc": _pct(r["accuracy_text"]),
                "error left as text": _pct(r["error_remaining_as_text"]),
            }
        )
    return pd.DataFrame(rows).to_markdown(index=False)


def wrong_cases_table(wrong: pd.DataFrame, results: pd.DataFrame, limit: int = 40) -> str:
    """Wrong cases with their wrong fields (expected -> predicted)."""
    if wrong.empty:
        return "(none)"
    rows = []
    for _, c in wrong.head(limit).iterrows():
        sel = results[
            (results["suite"] == c["suite"])
            & (results["variant"] == c["variant"])
            & (results["case_id"] == c["case_id"])
            & (results["repeat"] == c["repeat"])
            & ~results["correct"]
        ]
        detail = "; ".join(
            f"{r['field']}: {r['expected'] or '∅'} → {r['predicted'] or '∅'} ({r['outcome']})"
            for _, r in sel.iterrows()
        )
        rows.append(
            {
                "variant": c["variant"],
                "case": c["case_id"] + (f" r{int(c['repeat']) + 1}" if c["repeat"] else ""),
                "error": c["error"],
                "wrong fields": detail or c["error_message"],
            }
        )
    text = pd.DataFrame(rows).to_markdown(index=False)
    if len(wrong) > limit:
        text += f"\n\n… and {len(wrong) - limit} more (see cases.csv)"
    return text


def build_report(
    results: Sequence[CaseResult],
    *,
    skips: Sequence[dict[str, str]] = (),
    prices: Mapping[str, PriceTable] | None = None,
    cluster_by: Mapping[str, str | None] | None = None,
) -> Report:
    """All frames of a run from its results."""
    rf = results_frame(results)
    cf = cases_frame(results, prices)
    ff = fields_frame(rf, cf, cluster_by)
    vf = variants_frame(cf, cluster_by)
    comp = comparison_frame(rf, cf, cluster_by=cluster_by)
    pipelines = {(r.suite, r.variant): r.pipeline for r in results}
    abl = ablation_frame(ff, pipelines)
    return Report(rf, cf, ff, vf, comp, abl, list(skips))


def load_report(folder: Path) -> Report:
    """Read a saved run back (for `audio-evals compare`)."""

    def read(name: str) -> pd.DataFrame:
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: is {folder} a report folder written by pytest evals?"
            )
        return pd.read_csv(
            path,
            keep_default_na=False,
            na_values=[""],
            dtype={"expected": str, "predicted": str, "error": str, "error_message": str},
        )

    results = read("results.csv")
    results["expected"] = results["expected"].fillna("")
    results["predicted"] = results["predicted"].fillna("")
    results["error"] = results["error"].fillna("")
    cases = read("cases.csv")
    cases["error"] = cases["error"].fillna("")
    return Report(
        results,
        cases,
        read("fields.csv"),
        read("variants.csv"),
        read("comparison.csv"),
        pd.DataFrame(),
        [],
    )


def dumps_json(obj: Any) -> str:
    """Stable JSON for files that are committed (baseline)."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
