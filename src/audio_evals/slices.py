"""Accuracy by slice: per tag value (speaker, condition, ...) and per audio duration bucket."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .run_keys import case_positions
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


_BUCKET_LABELS = [duration_bucket(edge) for edge in DURATION_EDGES]
"""The bucket labels in order (the bucket each edge opens; the last is open-ended)."""


def _bucket_order(label: str) -> int:
    return _BUCKET_LABELS.index(label) if label in _BUCKET_LABELS else len(_BUCKET_LABELS)


def duration_buckets(seconds: pd.Series) -> np.ndarray:
    """duration_bucket of every value of a column (vectorised for numbers)."""
    if seconds.dtype.kind not in "iuf":
        return np.array([duration_bucket(s) for s in seconds.tolist()], dtype=object)
    values = seconds.to_numpy(dtype=float)
    # edges at or below each value: 1..5 is bucket 0..4; 6 (and 0, below the first edge) is the last
    above = np.searchsorted(np.asarray(DURATION_EDGES), values, side="right") - 1
    out = np.asarray(_BUCKET_LABELS, dtype=object)[above]
    out[np.isnan(values)] = UNKNOWN_DURATION
    return out


def _dimensions(cases: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """Each slicing dimension (every tag, then the duration) with each case's slice in it."""
    dims = []
    for column in (c for c in cases.columns if c.startswith("tag.")):
        values = cases[column]
        labels = values.where(values.notna() & (values.astype(str) != ""), NO_TAG).astype(str)
        dims.append((column[len("tag.") :], labels.to_numpy(dtype=object)))
    dims.append((DURATION, duration_buckets(cases["audio_seconds"])))
    return dims


def slices_frame(results: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """Per (suite, variant, field or exact record, dimension, slice): n, correct, accuracy, 95% interval."""
    if results.empty or cases.empty:
        return pd.DataFrame(columns=SLICE_COLUMNS)
    # units: each field row of a run with a case, then each run's exact record
    positions = case_positions(results, cases)
    kept = positions >= 0
    unit_case = np.concatenate([positions[kept], np.arange(len(cases))])
    unit_field = np.concatenate(
        [results["field"].to_numpy(dtype=object)[kept], np.full(len(cases), RECORD_FIELD, object)]
    )
    unit_correct = np.concatenate(
        [results["correct"].to_numpy(dtype=bool)[kept], cases["exact"].to_numpy(dtype=bool)]
    )
    field_order = {RECORD_FIELD: -1} | {
        f: i for i, f in enumerate(results["field"].unique().tolist())
    }
    run_codes, runs = pd.factorize(pd.MultiIndex.from_frame(cases[["suite", "variant"]]))
    field_codes, field_names = pd.factorize(unit_field)
    unit_group = run_codes[unit_case] * len(field_names) + field_codes
    case_ids = cases["case_id"].to_numpy(dtype=object)
    repeats = cases["repeat"].to_numpy()
    repeated_runs = np.unique(repeats).size > 1
    rows: list[dict[str, Any]] = []
    for dim, case_slices in _dimensions(cases):
        slice_codes, slice_names = pd.factorize(case_slices)
        # each unit's cell (run, field, slice), numbered among the cells that hold a unit
        cells, cell = np.unique(
            unit_group * len(slice_names) + slice_codes[unit_case], return_inverse=True
        )
        n = np.bincount(cell)
        correct = np.bincount(cell, weights=unit_correct)
        repeated: set[int] = set()
        if repeated_runs:  # runs of one clip are not independent: cluster by case
            pairs = np.unique(np.stack([cell, repeats[unit_case]]), axis=1)
            with_runs, count = np.unique(pairs[0], return_counts=True)
            repeated = set(with_runs[count > 1].tolist())
        rows_of = pd.Series(np.arange(cell.size)).groupby(cell).indices if repeated else {}
        for c, code in enumerate(cells.tolist()):
            group, slice_code = divmod(code, len(slice_names))
            run, fld_code = divmod(group, len(field_names))
            suite, variant = runs[run]
            fld, value = field_names[fld_code], slice_names[slice_code]
            if c in repeated:
                members = rows_of[c]
                summary = accuracy_summary(
                    unit_correct[members].tolist(),
                    clusters=case_ids[unit_case[members]].tolist(),
                )
                low, high = summary.ci_low, summary.ci_high
            else:
                low, high = wilson_interval(int(correct[c]), int(n[c]))
            rows.append(
                {
                    "suite": suite,
                    "variant": variant,
                    "field": fld,
                    "dimension": dim,
                    "slice": value,
                    "slice_order": _bucket_order(value) if dim == DURATION else 0,
                    "n": int(n[c]),
                    "correct": int(correct[c]),
                    "accuracy": int(correct[c]) / int(n[c]),
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
    for dim in sel["dimension"].unique().tolist():
        sd = sel[sel["dimension"] == dim]
        values = slice_values(sd)
        cells: dict[tuple[str, str], dict[str, str]] = {}
        for variant, fld, value, accuracy, n in zip(
            *(sd[c].tolist() for c in ("variant", "field", "slice", "accuracy", "n")), strict=True
        ):
            cells.setdefault((variant, fld), {})[value] = f"{100 * accuracy:.0f}% n={int(n)}"
        table = [
            {"variant": variant, "field": fld, **{v: row.get(v, "") for v in values}}
            for (variant, fld), row in cells.items()
        ]
        out += [f"#### By {dim}", "", pd.DataFrame(table).to_markdown(index=False), ""]
    return "\n".join(out)
