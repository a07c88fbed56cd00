"""Results -> pandas frames -> tables: accuracy with intervals, paired comparisons, cost, latency."""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from rapidfuzz.distance import Levenshtein

from .confusion import CONFUSION_COLUMNS, confusion_frame, confusion_markdown
from .files import atomic_write
from .frame_files import write_csv, write_parquet
from .gates import GateResult, gates_markdown
from .pricing import PriceTable, Usage, load_price_table, usage_from_response
from .results import CaseResult
from .run_keys import RUN_KEYS, case_positions, in_report_order
from .slices import RECORD_FIELD, SLICE_COLUMNS, slices_frame, slices_markdown
from .stats import (
    PairedResult,
    accuracy_summary,
    adjusted_label,
    adjusted_verdict,
    consistency,
    holm_adjust,
    min_detectable_difference,
    paired_comparison,
)

if TYPE_CHECKING:
    from .run_info import RunHeadline
    from .run_record import RunRecord

RESULTS_PARQUET = "results.parquet"
CASES_PARQUET = "cases.parquet"
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


def _strings(values: list[Any]) -> Any:
    """A column of strings in pandas' default string dtype, built by Arrow; other values as given (pandas infers)."""
    try:
        arr = pa.array(values, type=pa.large_string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return values
    return values if arr.null_count else pd.array(arr, dtype="str")


def _rounded(values: list[Any]) -> np.ndarray:
    """round(float(v), 6) of each value, rounding each distinct value once."""
    if values.count(None):  # float(None) fails; numpy would make it NaN and the mean with it
        raise TypeError("a field row's score is None: results must carry a number for every field")
    raw = np.array(values, dtype=float)
    unique, inverse = np.unique(raw.view(np.uint64), return_inverse=True)  # -0.0 apart from 0.0
    rounded = np.array([round(v, 6) for v in unique.view(np.float64).tolist()], dtype=float)
    return rounded[inverse.reshape(-1)]


def results_frame(results: Iterable[CaseResult]) -> pd.DataFrame:
    """One row per (suite, variant, case, repeat, field), in a stable order."""
    ordered = in_report_order(results)
    fields = [f for r in ordered for f in r.fields]
    if not fields:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    run_of_row = np.repeat(np.arange(len(ordered)), [len(r.fields) for r in ordered])

    def per_run(values: list[Any]) -> Any:
        column = _strings(values)
        return (
            column.take(run_of_row)
            if isinstance(column, pd.api.extensions.ExtensionArray)
            else np.array(column, dtype=object)[run_of_row]
        )

    columns: dict[str, Any] = {
        "suite": per_run([r.suite for r in ordered]),
        "variant": per_run([r.variant for r in ordered]),
        "case_id": per_run([r.case_id for r in ordered]),
        "repeat": np.array([r.repeat for r in ordered], dtype=np.int64)[run_of_row],
        "field": _strings([f["field"] for f in fields]),
        "kind": _strings([f.get("kind", "") for f in fields]),
        "expected": _strings([f.get("expected", "") for f in fields]),
        "predicted": _strings([f.get("predicted", "") for f in fields]),
        "correct": np.array([f["correct"] for f in fields], dtype=bool),
        "score": _rounded([f["score"] for f in fields]),
        "outcome": _strings([f.get("outcome", "") for f in fields]),
        "optional": np.array([f.get("optional", False) for f in fields], dtype=bool),
        "error": per_run([str(r.error_kind or "") for r in ordered]),
        "error_message": per_run([r.error or "" for r in ordered]),
    }
    return pd.DataFrame(columns)


def word_error_rate(reference: str | None, hypothesis: str | None) -> float | None:
    """Word error rate of a transcript against its reference (None when either is missing)."""
    if not reference or hypothesis is None:
        return None
    ref = _normalise_words(reference).split()
    if not ref:
        return None
    hyp = _normalise_words(hypothesis).split()
    return Levenshtein.distance(ref, hyp) / len(ref) if hyp else 1.0


class _WordChars(dict[int, str]):
    """str.translate's table for WER: letters and digits lower-cased, apostrophes kept, the rest a space."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        value = ch.lower() if ch.isalnum() or ch in " '" else " "
        self[code] = value
        return value


_WORD_CHARS = _WordChars()


def _normalise_words(text: str) -> str:
    return " ".join(text.translate(_WORD_CHARS).split())


def case_usage_and_cost(result: CaseResult, table: PriceTable) -> tuple[Usage, float | None]:
    """A case's summed usage and cost over its answered calls (None when any call's cost is unknown)."""
    total: Usage | None = None
    cost: float | None = 0.0
    for call in result.calls:
        if not 200 <= call.status < 300:
            continue
        usage = usage_from_response(call.usage) if call.usage else Usage()
        if call.is_transcription and not usage.audio_seconds and not usage.total_tokens:
            usage = Usage(audio_seconds=float(result.audio_seconds or 0.0))
        total = usage if total is None else total + usage
        price = (
            table.cost_usd(call.model or result.model, usage)
            if usage.total_tokens or usage.audio_seconds
            else None  # an answer without usage: its cost is unknown, not zero
        )
        cost = None if cost is None or price is None else cost + price
    return total or Usage(), cost


def project_relative(path: str, root: Path | None) -> str:
    """A path relative to the project root when it lies under it (POSIX separators), else as given."""
    if not path or root is None or not os.path.isabs(path):
        return path
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return path


class _RelativePaths:
    """project_relative for many paths, resolving each folder once."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.absolute_root = os.path.abspath(root) if root is not None else ""
        self.folders: dict[str, str | None] = {}

    def __call__(self, path: str) -> str:
        if not path or self.root is None or not os.path.isabs(path):
            return path
        full = os.path.abspath(path)
        folder, name = os.path.split(full)
        if not name or full == self.absolute_root:
            return project_relative(path, self.root)
        if folder not in self.folders:
            try:
                self.folders[folder] = Path(folder).relative_to(self.absolute_root).as_posix()
            except ValueError:
                self.folders[folder] = None
        relative = self.folders[folder]
        if relative is None:
            return path
        return name if relative == "." else f"{relative}/{name}"


def cases_frame(
    results: Iterable[CaseResult],
    prices: Mapping[str, PriceTable] | None = None,
    root: Path | None = None,
) -> pd.DataFrame:
    """One row per (suite, variant, case, repeat): outcome, exact record, tokens, cost, latency, transcript, audio."""
    given = list(results)
    ordered = in_report_order(given)
    if not ordered:
        return pd.DataFrame()
    default_prices = load_price_table()
    relative = _RelativePaths(root)
    usage_cost = [
        case_usage_and_cost(r, (prices or {}).get(r.suite, default_prices)) for r in ordered
    ]
    columns: dict[str, Any] = {
        "suite": _strings([r.suite for r in ordered]),
        "variant": _strings([r.variant for r in ordered]),
        "case_id": _strings([r.case_id for r in ordered]),
        "repeat": [r.repeat for r in ordered],
        "model": _strings([r.model for r in ordered]),
        "pipeline": _strings([r.pipeline for r in ordered]),
        "error": _strings([str(r.error_kind or "") for r in ordered]),
        "error_message": _strings([r.error or "" for r in ordered]),
        "exact": [r.error_kind is None and all(f["correct"] for f in r.fields) for r in ordered],
        "fields_correct": [sum(1 for f in r.fields if f["correct"]) for r in ordered],
        "fields": [len(r.fields) for r in ordered],
        "must_pass": [r.must_pass for r in ordered],
        "latency_ms": [r.latency_ms for r in ordered],
        "latency_source": _strings([str(r.latency_source) for r in ordered]),
        "text_input_tokens": [u.text_input_tokens for u, _ in usage_cost],
        "audio_input_tokens": [u.audio_input_tokens for u, _ in usage_cost],
        "text_output_tokens": [u.text_output_tokens for u, _ in usage_cost],
        "audio_output_tokens": [u.audio_output_tokens for u, _ in usage_cost],
        "cost_usd": [c for _, c in usage_cost],
        "audio_seconds": [r.audio_seconds for r in ordered],
        "audio_path": _strings([relative(r.audio_path) for r in ordered]),
        "audio_conversion": _strings([r.audio_conversion or "" for r in ordered]),
        "transcript": _strings([r.transcript or "" for r in ordered]),
        "reference_transcript": _strings([r.reference_transcript or "" for r in ordered]),
        "wer": [word_error_rate(r.reference_transcript, r.transcript) for r in ordered],
        "predicted": _strings([r.predicted for r in ordered]),
        "expected": _strings([r.expected for r in ordered]),
    }
    # tag columns in order of first appearance in the results as given, each result's sorted
    tag_keys = list(dict.fromkeys(k for r in given for k in sorted(r.tags)))
    for key in tag_keys:
        columns[f"tag.{key}"] = _strings([r.tags.get(key) for r in ordered])
    return pd.DataFrame(columns)


def _cluster_labels(
    frame: pd.DataFrame, cases: pd.DataFrame | None, tag: str | None
) -> np.ndarray | None:
    """Each row's cluster, its case's value of the tag as text ('' for a row without a case); None without the tag."""
    column = f"tag.{tag}"
    if not tag or cases is None or column not in cases.columns:
        return None
    labels = np.array([str(v) for v in cases[column].tolist()] + [""], dtype=object)
    return labels[case_positions(frame, cases)]  # position -1: the trailing ''


def _clusters(
    labels: np.ndarray | None, case_ids: np.ndarray, repeats: np.ndarray, rows: np.ndarray
) -> list[str] | None:
    """The clusters of a group of rows: the tag's values, else the case when runs repeat, else none."""
    if labels is not None:
        return labels[rows].tolist()
    if np.unique(repeats[rows]).size > 1:
        return case_ids[rows].tolist()
    return None


def _labels_by_suite(
    frame: pd.DataFrame, cases: pd.DataFrame | None, cluster_by: Mapping[str, str | None] | None
) -> dict[str, np.ndarray | None]:
    """The cluster labels of every row of `frame` for each suite's cluster_by tag (computed once per tag)."""
    by_tag: dict[str | None, np.ndarray | None] = {}
    out: dict[str, np.ndarray | None] = {}
    for suite in frame["suite"].unique().tolist():
        tag = (cluster_by or {}).get(suite)
        if tag not in by_tag:
            by_tag[tag] = _cluster_labels(frame, cases, tag)
        out[suite] = by_tag[tag]
    return out


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
    pairs = results[["suite", "field"]].drop_duplicates()
    field_order = {
        (s, f): i
        for i, (s, f) in enumerate(
            zip(pairs["suite"].tolist(), pairs["field"].tolist(), strict=True)
        )
    }
    labels = _labels_by_suite(results, cases, cluster_by)
    correct = results["correct"].to_numpy(dtype=bool)
    scores = results["score"].to_numpy(dtype=float)
    optional = results["optional"].to_numpy(dtype=bool)
    repeats = results["repeat"].to_numpy()
    case_ids = results["case_id"].to_numpy(dtype=object)
    outcome_codes, outcome_names = pd.factorize(results["outcome"])
    code = {str(name): i for i, name in enumerate(outcome_names.tolist())}

    def count(rows: np.ndarray, outcome: str) -> int:
        return int(np.count_nonzero(outcome_codes[rows] == code[outcome])) if outcome in code else 0

    groups = results.groupby(["suite", "variant", "field"], sort=False).indices
    for (suite, variant, fld), rows_ in groups.items():
        clusters = _clusters(labels[suite], case_ids, repeats, rows_)
        summary = accuracy_summary(correct[rows_], clusters=clusters)
        tp = count(rows_, "match") + count(rows_, "mismatch")
        spurious = count(rows_, "spurious")
        missed = count(rows_, "missed")
        is_optional = bool(optional[rows_].any())
        precision = tp / (tp + spurious) if is_optional and (tp + spurious) else math.nan
        recall = tp / (tp + missed) if is_optional and (tp + missed) else math.nan
        f1 = (
            2 * precision * recall / (precision + recall)
            if is_optional and precision + recall > 0
            else math.nan
        )
        row = {
            "suite": suite,
            "variant": variant,
            "field": fld,
            "n": summary.n,
            "correct": int(correct[rows_].sum()),
            "accuracy": summary.accuracy,
            "ci_low": summary.ci_low,
            "ci_high": summary.ci_high,
            "ci_method": summary.method,
            "mean_score": float(pd.Series(scores[rows_]).mean()),
            "missed": missed,
            "spurious": spurious,
            "presence_precision": precision,
            "presence_recall": recall,
            "presence_f1": f1,
            "consistency": math.nan,
            "_order": field_order[(suite, fld)],
        }
        if np.unique(repeats[rows_]).size > 1:
            group = results.iloc[rows_]
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
    labels = _labels_by_suite(cases, cases, cluster_by)
    repeats = cases["repeat"].to_numpy()
    case_ids = cases["case_id"].to_numpy(dtype=object)
    groups = cases.groupby(["suite", "variant"], sort=True).indices
    for (suite, variant), rows_ in sorted(groups.items()):
        group = cases.iloc[rows_]
        clusters = _clusters(labels[suite], case_ids, repeats, rows_)
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
                "latency_source": ",".join(sorted(group["latency_source"].unique().tolist())),
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


class _SuiteUnits:
    """A suite's scored units (each field of each run, and each run's exact record) keyed by (case, repeat) in sorted order."""

    def __init__(self, results: pd.DataFrame, cases: pd.DataFrame) -> None:
        units = pd.concat(
            [
                results[["variant", "field", "case_id", "repeat"]].assign(
                    score=results["correct"].to_numpy(dtype=float)
                ),
                cases[["variant", "case_id", "repeat"]].assign(
                    field=RECORD_FIELD, score=cases["exact"].to_numpy(dtype=float)
                ),
            ],
            ignore_index=True,
        )
        keyed = units.groupby(["case_id", "repeat"], sort=True)
        self.code = (
            keyed.ngroup().to_numpy()
        )  # each unit's (case, repeat), numbered in sorted order
        keys = keyed.size().index
        self.case_id = np.asarray(keys.get_level_values("case_id"), dtype=object)
        self.repeat = np.asarray(keys.get_level_values("repeat"))
        self.score = units["score"].to_numpy()
        self.rows = units.groupby(["variant", "field"], sort=False).indices
        self.cases = cases

    def paired(self, a: str, b: str, fld: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The (case, repeat) codes both variants scored on a field, in sorted order, and their scores."""
        empty = np.array([], dtype=np.int64)
        rows_a, rows_b = self.rows.get((a, fld), empty), self.rows.get((b, fld), empty)
        common, ia, ib = np.intersect1d(self.code[rows_a], self.code[rows_b], return_indices=True)
        return common, self.score[rows_a][ia], self.score[rows_b][ib]

    def tag_labels(self, variant: str, column: str) -> np.ndarray:
        """Per (case, repeat) code, the variant's case's tag value as text ('' where it has no run)."""
        labels = np.full(self.case_id.size, "", dtype=object)
        sel = self.cases[self.cases["variant"] == variant]
        index = pd.MultiIndex.from_arrays([self.case_id, self.repeat])
        codes = index.get_indexer(pd.MultiIndex.from_frame(sel[["case_id", "repeat"]]))
        labels[codes] = [str(v) for v in sel[column].tolist()]
        return labels


def comparison_row(suite: str, fld: str, a: str, b: str, res: PairedResult) -> dict[str, Any]:
    """One row of a comparison table from a paired result."""
    return {
        "suite": suite,
        "field": fld,
        "variant_a": a,
        "variant_b": b,
        "n": res.n,
        "n_clusters": res.n_clusters,
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
        "label": str(res.label),
        "discordance": res.discordance,
    }


def adjust_comparisons(frame: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Holm-adjust the p-values of a run's comparisons together; labels, verdicts and detectable differences follow."""
    if frame.empty:
        return frame.assign(p_adjusted=[], comparisons=[], mdd=[])
    out = frame.copy()
    out["p_adjusted"] = holm_adjust(out["p_value"].to_numpy(dtype=float))
    m = int(out["p_adjusted"].notna().sum())
    out["comparisons"] = m
    per_test_alpha = alpha / max(m, 1)
    out["mdd"] = [
        min_detectable_difference(int(k), float(d), alpha=per_test_alpha)
        if int(k) > 0 and math.isfinite(float(d))
        else math.nan
        for k, d in zip(out["n_clusters"], out["discordance"], strict=True)
    ]
    labels = [
        adjusted_label(lo, hi, p, alpha)
        for lo, hi, p in zip(out["ci_low"], out["ci_high"], out["p_adjusted"], strict=True)
    ]
    out["label"] = [str(label) for label in labels]
    out["verdict"] = [
        adjusted_verdict(
            label,
            diff=float(r.diff),
            p_value=float(r.p_value),
            p_adjusted=float(r.p_adjusted),
            comparisons=m,
            n=int(r.n),
            n_clusters=int(r.n_clusters),
            mdd=float(r.mdd),
            alpha=alpha,
        )
        for label, r in zip(labels, out.itertuples(index=False), strict=True)
    ]
    return out


def comparison_pairs(
    variants: Sequence[str], baseline: str | None, all_pairs: bool = False
) -> list[tuple[str, str]]:
    """The (A, B) pairs to compare: each variant against the baseline (default: the first), or every pair."""
    if all_pairs:
        return list(itertools.combinations(variants, 2))
    base = baseline if baseline is not None else (variants[0] if variants else None)
    if base not in variants:
        return []
    return [(base, v) for v in variants if v != base]


def _ordered(ran: Iterable[str], declared: Sequence[str]) -> list[str]:
    """Variants that ran, in declared order (any not declared after, alphabetically)."""
    position = {v: i for i, v in enumerate(declared)}
    return sorted(dict.fromkeys(ran), key=lambda v: (position.get(v, len(position)), v))


def per_case_scores(report: Report, suite: str, variant: str, fld: str) -> pd.Series:
    """Per case (mean over repeats) correctness of one field, or of the exact record, of a variant."""
    if fld == RECORD_FIELD:
        sel = report.cases[(report.cases["suite"] == suite) & (report.cases["variant"] == variant)]
        return sel.groupby("case_id")["exact"].mean().astype(float)
    res = report.results
    sel = res[(res["suite"] == suite) & (res["variant"] == variant) & (res["field"] == fld)]
    return sel.groupby("case_id")["correct"].mean().astype(float)


COMPARISON_COLUMNS = [
    "suite",
    "field",
    "variant_a",
    "variant_b",
    "n",
    "n_clusters",
    "accuracy_a",
    "accuracy_b",
    "diff",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "comparisons",
    "mdd",
    "discordance",
    "wins",
    "losses",
    "ties",
    "method",
    "verdict",
    "label",
]


def comparison_frame(
    results: pd.DataFrame,
    cases: pd.DataFrame,
    cluster_by: Mapping[str, str | None] | None = None,
    *,
    baselines: Mapping[str, str | None] | None = None,
    variant_order: Mapping[str, Sequence[str]] | None = None,
    all_pairs: bool = False,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Paired comparisons (diff = B - A) of each variant with its suite's baseline, or of all pairs, Holm-adjusted together."""
    rows: list[dict[str, Any]] = []
    adjusted = ("p_adjusted", "comparisons", "mdd")
    columns = [c for c in COMPARISON_COLUMNS if c not in adjusted]
    if results.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    for suite, sres in results.groupby("suite", sort=True):
        variants = _ordered(sres["variant"].unique().tolist(), (variant_order or {}).get(suite, ()))
        suite_pairs = comparison_pairs(variants, (baselines or {}).get(suite), all_pairs)
        if not suite_pairs:
            continue
        fields = [RECORD_FIELD, *sres["field"].unique().tolist()]
        tag = (cluster_by or {}).get(suite)
        tag_col = f"tag.{tag}" if tag and f"tag.{tag}" in cases.columns else None
        units = _SuiteUnits(sres, cases[cases["suite"] == suite])
        for a, b in suite_pairs:
            tags = units.tag_labels(a, tag_col) if tag_col else None
            for fld in fields:
                common, score_a, score_b = units.paired(a, b, fld)
                if not common.size:
                    continue
                if tags is not None:
                    clusters: list[str] | None = tags[common].tolist()
                elif np.unique(units.repeat[common]).size > 1:
                    clusters = [str(c) for c in units.case_id[common].tolist()]
                else:
                    clusters = None
                res = paired_comparison(score_a, score_b, clusters=clusters)
                rows.append(comparison_row(suite, fld, a, b, res))
    return adjust_comparisons(pd.DataFrame(rows, columns=columns), alpha)[COMPARISON_COLUMNS]


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
    slices: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SLICE_COLUMNS))
    confusion: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CONFUSION_COLUMNS))
    notes: list[str] = field(default_factory=list)
    scopes: list[Any] = field(default_factory=list)
    root: Path | None = None
    headline: RunHeadline | None = None
    run: RunRecord | None = None  # complete or partial: run.json, and a banner atop summary.md

    def write(
        self,
        folder: Path,
        *,
        headline: RunHeadline | None = None,
        gates: Sequence[GateResult] | None = None,
    ) -> None:
        """Write the CSVs (results, cases, fields, variants, comparison, ablation, slices, confusion), results.parquet, cases.parquet and summary.md."""
        folder.mkdir(parents=True, exist_ok=True)
        write_csv(self.results, folder / "results.csv")
        write_parquet(self.results, folder / RESULTS_PARQUET)
        write_csv(self.cases, folder / "cases.csv")
        write_parquet(self.cases, folder / CASES_PARQUET)
        write_csv(self.fields, folder / "fields.csv")
        write_csv(self.variants, folder / "variants.csv")
        write_csv(self.comparison, folder / "comparison.csv")
        write_csv(self.ablation, folder / "ablation.csv")
        write_csv(self.slices, folder / "slices.csv")
        write_csv(self.confusion, folder / "confusion.csv")
        atomic_write(folder / "summary.md", self.markdown(headline=headline, gates=gates))

    def markdown(
        self, *, headline: RunHeadline | None = None, gates: Sequence[GateResult] | None = None
    ) -> str:
        """The whole run as Markdown: headline and gate verdicts first, then each suite."""
        out = [self.run.banner, ""] if self.run is not None and self.run.banner else []
        out += ["# audio-evals report", ""]
        if headline is not None:
            out += [headline.markdown()]
        if gates is not None:
            out += ["## Gates", "", gates_markdown(gates)]
        if self.notes:
            out += [f"> {note}" for note in self.notes]
            out.append("")
        for suite in sorted(self.cases["suite"].unique().tolist()) if not self.cases.empty else []:
            out += self._suite_markdown(suite)
        if self.skips:
            out += ["## Not run", ""]
            out += [f"- `{s['suite']}` / `{s['variant']}`: {s['reason']}" for s in self.skips]
            out.append("")
        return "\n".join(out)

    def _suite_markdown(self, suite: str) -> list[str]:
        out = [f"## Suite `{suite}`", ""]
        out += ["### Field accuracy (95% interval, n)", ""]
        out += [field_table(self.fields, suite, markdown=True), ""]
        quality = quality_table(self.fields, suite)
        if quality:
            out += [
                "### Partial credit (presence precision/recall for optional fields)",
                "",
                quality,
                "",
            ]
        out += ["### Variants: exact record, latency, tokens, cost", ""]
        out += [variant_table(self.variants, suite), ""]
        comp = self.comparison[self.comparison["suite"] == suite]
        if not comp.empty:
            m = int(comp["comparisons"].iloc[0])
            out += [
                "### Paired comparison (diff = B - A, 95% interval; "
                f"p Holm-adjusted over the run's {m} comparisons)",
                "",
                comparison_table(comp),
                "",
            ]
        slices = slices_markdown(self.slices, suite)
        if slices:
            out += ["### Accuracy by slice", "", slices]
        confusion = confusion_markdown(self.confusion, suite)
        if confusion:
            out += ["### Confusion tables", "", confusion]
        abl = self.ablation[self.ablation["suite"] == suite] if not self.ablation.empty else None
        if abl is not None and not abl.empty:
            out += [
                "### Misheard or misextracted: error left when the reference transcript is given as text",
                "",
            ]
            out += [ablation_table(abl), ""]
        wrong = self.cases[(self.cases["suite"] == suite) & ~self.cases["exact"].astype(bool)]
        out += [f"### Wrong cases ({len(wrong)})", ""]
        out += [wrong_cases_table(wrong, self.results), ""]
        return out


def percent(x: float | None) -> str:
    """A rate as `12.3%` ('–' when there is none)."""
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def percent_interval(lo: float | None, hi: float | None) -> str:
    """An interval of rates as `[10, 40]` ('' when there is none)."""
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
                cell = f"{percent(r0['accuracy'])} {percent_interval(r0['ci_low'], r0['ci_high'])} n={int(r0['n'])}"
                if r0["missed"] or r0["spurious"]:
                    cell += f" (missed {int(r0['missed'])}, spurious {int(r0['spurious'])})"
            else:
                cell = f"{percent(r0['accuracy'])} {percent_interval(r0['ci_low'], r0['ci_high'])}"
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
                "exact record": f"{percent(r['exact_accuracy'])} {percent_interval(r['ci_low'], r['ci_high'])} n={int(r['n'])}",
                "errors": int(r["errors"]),
                "latency mean/p50/p95 ms": f"{r['latency_mean_ms']:.0f} / {r['latency_p50_ms']:.0f} / "
                f"{r['latency_p95_ms']:.0f} ({r['latency_source']})",
                "tokens in (audio) / out": f"{r['input_tokens_per_case']:.0f} ({r['audio_input_tokens_per_case']:.0f})"
                f" / {r['output_tokens_per_case']:.0f}",
                "cost / case": "unknown" if math.isnan(cost) else f"${cost:.5f}",
                "cost / 1k cases": "unknown" if math.isnan(cost) else f"${1000 * cost:.2f}",
                "WER": percent(r["wer"]),
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
                "A acc": percent(r["accuracy_a"]),
                "B acc": percent(r["accuracy_b"]),
                "B - A": f"{100 * r['diff']:+.1f} pts {percent_interval(r['ci_low'], r['ci_high'])}",
                "p": f"{r['p_value']:.3g}",
                "p (Holm)": f"{r['p_adjusted']:.3g}",
                "detectable": _mdd(r["mdd"]),
                "wins/losses/ties": f"{int(r['wins'])}/{int(r['losses'])}/{int(r['ties'])}",
                "verdict": r["verdict"],
            }
        )
    return pd.DataFrame(rows).to_markdown(index=False)


def _mdd(value: float) -> str:
    return "none" if not math.isfinite(value) else f">= {100 * value:.0f} pts"


def quality_table(fields: pd.DataFrame, suite: str) -> str:
    """Per variant and field: mean partial-credit score; presence precision/recall for optional fields."""
    sf = fields[fields["suite"] == suite]
    rows = []
    for _, r in sf.iterrows():
        optional = not math.isnan(r["presence_precision"]) or not math.isnan(r["presence_recall"])
        rows.append(
            {
                "variant": r["variant"],
                "field": r["field"],
                "partial credit": f"{r['mean_score']:.3f}",
                "presence precision": percent(r["presence_precision"]) if optional else "",
                "presence recall": percent(r["presence_recall"]) if optional else "",
                "missed / spurious": f"{int(r['missed'])} / {int(r['spurious'])}"
                if optional
                else "",
            }
        )
    return pd.DataFrame(rows).to_markdown(index=False) if rows else ""


def ablation_table(abl: pd.DataFrame) -> str:
    """The oracle-transcript ablation as Markdown."""
    rows = []
    for _, r in abl.iterrows():
        rows.append(
            {
                "field": r["field"],
                "audio variant": r["audio_variant"],
                "audio acc": percent(r["accuracy_audio"]),
                "text variant": r["text_variant"],
                "text acc": percent(r["accuracy_text"]),
                "error left as text": percent(r["error_remaining_as_text"]),
            }
        )
    return pd.DataFrame(rows).to_markdown(index=False)


def wrong_cases_table(wrong: pd.DataFrame, results: pd.DataFrame, limit: int = 40) -> str:
    """Wrong cases with their wrong fields (expected -> predicted)."""
    if wrong.empty:
        return "(none)"
    rows = []
    shown = wrong.head(limit)
    keys = RUN_KEYS
    candidates = results[results["case_id"].isin(shown["case_id"].unique())]
    wrong_fields = candidates[~candidates["correct"].astype(bool)].merge(shown[keys], on=keys)
    details: dict[tuple[Any, ...], list[str]] = {}
    for r in wrong_fields.to_dict("records"):
        details.setdefault(tuple(r[k] for k in keys), []).append(
            f"{r['field']}: {r['expected'] or '∅'} → {r['predicted'] or '∅'} ({r['outcome']})"
        )
    for _, c in shown.iterrows():
        detail = "; ".join(details.get(tuple(c[k] for k in keys), []))
        rows.append(
            {
                "variant": c["variant"],
                "case": c["case_id"] + (f" r{int(c['repeat']) + 1}" if c["repeat"] else ""),
                "audio": c.get("audio_path", ""),
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
    baselines: Mapping[str, str | None] | None = None,
    variant_order: Mapping[str, Sequence[str]] | None = None,
    all_pairs: bool = False,
    field_types: Mapping[str, Mapping[str, str]] | None = None,
    root: Path | None = None,
) -> Report:
    """All frames of a run from its results.

    baselines names a suite's baseline variant (absent or None: the first variant that ran, in
    variant_order); all_pairs compares every pair instead. field_types (suite -> field path ->
    enum/literal/bool) selects the confusion tables. root makes audio paths project-relative.
    """
    rf = results_frame(results)
    cf = cases_frame(results, prices, root)
    ff = fields_frame(rf, cf, cluster_by)
    vf = variants_frame(cf, cluster_by)
    comp = comparison_frame(
        rf,
        cf,
        cluster_by=cluster_by,
        baselines=baselines,
        variant_order=variant_order,
        all_pairs=all_pairs,
    )
    pipelines = {(r.suite, r.variant): r.pipeline for r in results}
    abl = ablation_frame(ff, pipelines)
    notes = []
    ran = {(r.suite, r.variant) for r in results}
    for suite, base in sorted((baselines or {}).items()):
        if base and not all_pairs and (suite, base) not in ran and any(s == suite for s, _ in ran):
            notes.append(
                f"suite {suite}: its baseline variant {base} did not run, so no variant of it is "
                "compared (run the baseline, or name another)"
            )
    return Report(
        rf,
        cf,
        ff,
        vf,
        comp,
        abl,
        list(skips),
        slices_frame(rf, cf),
        confusion_frame(rf, field_types or {}),
        notes,
        root=root,
    )


def load_report(folder: Path) -> Report:
    """Read a saved run back (for `audio-evals compare`)."""

    required = {
        "results.csv": RESULT_COLUMNS,
        "cases.csv": ["suite", "variant", "case_id", "repeat", "exact", "error", "audio_path"],
        "comparison.csv": COMPARISON_COLUMNS,
    }

    def read(name: str) -> pd.DataFrame:
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: is {folder} a report folder written by pytest evals?"
            )
        try:
            frame = pd.read_csv(
                path,
                keep_default_na=False,
                na_values=[""],
                dtype={"expected": str, "predicted": str, "error": str, "error_message": str},
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not a readable CSV ({exc})") from None
        missing = [c for c in required.get(name, []) if c not in frame.columns]
        if missing and not (frame.empty and name == "comparison.csv"):
            raise ValueError(
                f"{path}: lacks column(s) {', '.join(missing)}: written by an older audio-evals? "
                "Run pytest evals again to write the folder anew"
            )
        return frame

    def optional(name: str, columns: list[str]) -> pd.DataFrame:
        path = folder / name
        if not path.is_file() or not path.read_text(encoding="utf-8").strip():
            return pd.DataFrame(columns=columns)
        frame = read(name)
        return frame if not frame.empty else pd.DataFrame(columns=columns)

    results = read("results.csv")
    results["expected"] = results["expected"].fillna("")
    results["predicted"] = results["predicted"].fillna("")
    results["error"] = results["error"].fillna("")
    cases = read("cases.csv")
    cases["error"] = cases["error"].fillna("")
    for column in (
        "error_message",
        "transcript",
        "reference_transcript",
        "audio_path",
        "audio_conversion",
    ):
        if column in cases.columns:
            cases[column] = ["" if pd.isna(v) else str(v) for v in cases[column]]
    slices = optional("slices.csv", SLICE_COLUMNS)
    slices["slice"] = slices["slice"].astype(str)
    confusion = optional("confusion.csv", CONFUSION_COLUMNS)
    for column in ("expected", "predicted"):
        confusion[column] = confusion[column].astype(str)
    return Report(
        results,
        cases,
        read("fields.csv"),
        read("variants.csv"),
        read("comparison.csv"),
        optional("ablation.csv", []),
        [],
        slices,
        confusion,
    )


def dumps_json(obj: Any) -> str:
    """Stable JSON for files that are committed (baseline)."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
