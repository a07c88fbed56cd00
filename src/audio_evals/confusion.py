"""Confusion tables of categorical fields (enum, Literal, bool): expected value x predicted value."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

EMPTY = "∅"
ERRORED = "(error)"
CONFUSION_COLUMNS = ["suite", "variant", "field", "field_type", "expected", "predicted", "count"]


def confusion_frame(
    results: pd.DataFrame, field_types: Mapping[str, Mapping[str, str]]
) -> pd.DataFrame:
    """Per (suite, variant, categorical field, expected, predicted): how many runs; errors predict '(error)'."""
    if results.empty:
        return pd.DataFrame(columns=CONFUSION_COLUMNS)
    frames = []
    for suite, types in field_types.items():
        if not types:
            continue
        sel = results[(results["suite"] == suite) & results["field"].isin(list(types))]
        if sel.empty:
            continue
        part = pd.DataFrame(
            {
                "suite": sel["suite"],
                "variant": sel["variant"],
                "field": sel["field"],
                "field_type": sel["field"].map(lambda f, t=types: str(t[f])),
                "expected": sel["expected"].astype(str).where(sel["expected"] != "", EMPTY),
                "predicted": sel["predicted"].astype(str).where(sel["predicted"] != "", EMPTY),
            }
        )
        part.loc[sel["error"].astype(str) != "", "predicted"] = ERRORED
        frames.append(part)
    if not frames:
        return pd.DataFrame(columns=CONFUSION_COLUMNS)
    joined = pd.concat(frames, ignore_index=True)
    counts = (
        joined.groupby(
            ["suite", "variant", "field", "field_type", "expected", "predicted"], sort=True
        )
        .size()
        .rename("count")
        .reset_index()
    )
    return counts[CONFUSION_COLUMNS]


def confusion_labels(table: pd.DataFrame) -> list[str]:
    """The values of one confusion table in display order: alphabetical, then ∅, then (error)."""
    values = set(table["expected"]) | set(table["predicted"])
    tail = [v for v in (EMPTY, ERRORED) if v in values]
    return sorted(values - {EMPTY, ERRORED}) + tail


def confusion_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """One (suite, variant, field)'s counts as a square expected x predicted frame."""
    labels = confusion_labels(table)
    matrix = table.pivot_table(
        index="expected", columns="predicted", values="count", aggfunc="sum", fill_value=0
    )
    return matrix.reindex(index=labels, columns=labels, fill_value=0).astype(int)


def confusion_markdown(confusion: pd.DataFrame, suite: str) -> str:
    """Every confusion table of one suite as Markdown (rows: expected, columns: predicted)."""
    sel = confusion[confusion["suite"] == suite]
    out: list[str] = []
    for (fld, variant), table in sel.groupby(["field", "variant"], sort=False):
        matrix = confusion_matrix(table)
        shown = matrix.copy()
        shown.index = [f"expected {v}" for v in shown.index]
        out += [
            f"#### `{fld}` ({table['field_type'].iloc[0]}), {variant}: expected (rows) x predicted (columns)",
            "",
            shown.to_markdown(),
            "",
        ]
    return "\n".join(out)
