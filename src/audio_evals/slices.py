"""Accuracy by slice: per tag value (speaker, condition, ...) and per audio duration bucket."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from .stats import accuracy_summary, wilson_interval

RECORD_FIELD = "(record)"
DURATION = "audio duration"
NO_TAG = "(none)"
UNKNOWN_DURATION = "unknown"
# Bucket edges in seconds: [0, 3), [3, 6), [6, 10), [10, 20), [20, 60), [60, inf).
DURATION_EDGES = (0.0, 3.0, 6.0, 10.0, 20.0, 60.0)
SLICE_COLUMNS = [
    "suite",
    "variant",
    "field",
    "dimension",
    "slice",
    "slice_order",
    "n",
    "correct",
    "accuracy",
    "ci_low",
    "ci_high",
]


def duration_bucket(seconds: float | None) -> str:
    """The bucket label of a clip duration ('3–6 s'), 'unknown' when it is not known."""
    if seconds is None or not isinstance(seconds, int | float) or math.isnan(seconds):
        return UNKNOWN_DURATION
    for low, high in zip(DURATION_EDGES, DURATION_EDGES[1:], strict=False):
        if low <= seconds < high:
            return f"{low:g}–{high:g} s"
    return f"≥ {DURATION_EDGES[-1]:g} s"


def _bucket_order(label: str) -> int:
    labels = [duration_bucket(edge) for edge in DURATION_EDGES]
    return labels.index(label) if label in labels else len(labels)


def _case_slices(cases: pd.DataFrame) -> pd.DataFrame:
    """One row per (suite, variant, case, repeat, dimension): the case's slice in that dimension."""
    keys = ["suite", "variant", "case_id", "repeat"]
    frames = []
    for column in (c for c in cases.columns if c.startswith("tag.")):
        part = cases[keys].copy()
        part["dimension"] = column[len("tag.") :]
        values = cases[column]
        part["slice"] = values.where(values.notna() & (values.astype(str) != ""), NO_TAG).astype(
            str
        )
        part["slice_order"] = 0
        frames.append(part)
    part = cases[keys].copy()
    part["dimension"] = DURATION
    part["slice"] = [duration_bucket(s) for s in cases["audio_seconds"]]
    part["slice_order"] = [_bucket_order(s) for s in part["slice"]]
    frames.append(part)
    return pd.concat(frames, ignore_index=True)


def slices_frame(results: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """Per (suite, variant, field or exact record, dimension, slice): n, correct, accuracy, 95% interval."""
    if results.empty or cases.empty:
        return pd.DataFrame(columns=SLICE_COLUMNS)
    keys = ["suite", "variant", "case_id", "repeat"]
    units = pd.concat(
        [
            results[[*keys, "field", "correct"]],
            cases[keys].assign(field=RECORD_FIELD, correct=cases["exact"].astype(bool)),
        ],
        ignore_index=True,
    )
    field_order = {RECORD_FIELD: -1} | {f: i for i, f in enumerate(dict.fromkeys(results["field"]))}
    joined = units.merge(_case_slices(cases), on=keys, how="inner", validate="many_to_many")
    by = ["suite", "variant", "field", "dimension", "slice_order", "slice"]
    grouped = joined.groupby(by, sort=False)
    counts = grouped.agg(
        n=("correct", "size"), correct=("correct", "sum"), repeats=("repeat", "nunique")
    )
    repeated = set(counts.index[counts["repeats"] > 1])
    rows: list[dict[str, Any]] = []
    for key, n, correct in zip(
        counts.index, counts["n"].tolist(), counts["correct"].tolist(), strict=True
    ):
        suite, variant, fld, dim, order, value = key
        if key in repeated:  # runs of one clip are not independent: cluster by case
            group = grouped.get_group(key)
            summary = accuracy_summary(
                group["correct"].astype(bool).tolist(), clusters=list(group["case_id"])
            )
            low, high = summary.ci_low, summary.ci_high
        else:
            low, high = wilson_interval(int(correct), int(n))
        rows.append(
            {
                "suite": suite,
                "variant": variant,
                "field": fld,
                "dimension": dim,
                "slice": value,
                "slice_order": int(order),
                "n": int(n),
                "correct": int(correct),
                "accuracy": correct / n,
                "ci_low": low,
                "ci_high": high,
                "_field_order": field_order.get(fld, len(field_order)),
                "_dim_order": 1 if dim == DURATION else 0,
            }
        )
    frame = pd.DataFrame(rows)
    frame = frame.sort_values(
        ["suite", "variant", "_dim_order", "dimension", "_field_order", "slice_order", "slice"],
        kind="stable",
    )
    return frame.drop(columns=["_field_order", "_dim_order"]).reset_index(drop=True)[SLICE_COLUMNS]


def slice_values(slices: pd.DataFrame) -> list[str]:
    """The slice values of one dimension in display order (tags alphabetically, '(none)' last)."""
    ordered = slices.drop_duplicates("slice").copy()
    ordered["_none"] = ordered["slice"] == NO_TAG
    ordered = ordered.sort_values(["slice_order", "_none", "slice"], kind="stable")
    return list(ordered["slice"])


def slices_markdown(slices: pd.DataFrame, suite: str) -> str:
    """Per dimension of one suite: a (variant, field) x slice table of accuracy and n."""
    sel = slices[slices["suite"] == suite]
    if sel.empty:
        return ""
    out: list[str] = []
    for dim in dict.fromkeys(sel["dimension"]):
        sd = sel[sel["dimension"] == dim]
        values = slice_values(sd)
        table = []
        for (variant, fld), group in sd.groupby(["variant", "field"], sort=False):
            cells = group.set_index("slice")
            row = {"variant": variant, "field": fld}
            for v in values:
                if v in cells.index:
                    c = cells.loc[v]
                    row[v] = f"{100 * c['accuracy']:.0f}% n={int(c['n'])}"
                else:
                    row[v] = ""
            table.append(row)
        out += [f"#### By {dim}", "", pd.DataFrame(table).to_markdown(index=False), ""]
    return "\n".join(out)
