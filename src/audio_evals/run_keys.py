"""The key of a scored run (suite, variant, case, repeat): report order, uniqueness, and which case row a field row belongs to."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .results import CaseResult, run_key

RUN_KEYS = ["suite", "variant", "case_id", "repeat"]


class DuplicateRunError(ValueError):
    """Two results for the same (suite, variant, case, repeat): a report would count the run twice."""


def in_report_order(results: Iterable[CaseResult]) -> list[CaseResult]:
    """Results sorted by their run key (stable; DuplicateRunError when a key repeats)."""
    ordered = sorted(results, key=run_key)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if run_key(before) == run_key(after):
            suite, variant, case_id, repeat = run_key(after)
            raise DuplicateRunError(
                f"two results for suite {suite}, variant {variant}, case {case_id}, repeat "
                f"{repeat}: a run holds each case once per repeat (were two runs merged?)"
            )
    return ordered


def case_positions(
    rows: pd.DataFrame, cases: pd.DataFrame, keys: Sequence[str] = RUN_KEYS
) -> np.ndarray:
    """For each row, the position of its run in `cases` (-1 when it has none); cases' keys are unique."""
    if rows.empty or cases.empty:
        return np.full(len(rows), -1, dtype=np.int64)
    index = pd.MultiIndex.from_frame(cases[list(keys)])
    if not index.is_unique:
        raise DuplicateRunError("the cases frame holds a run twice")
    return np.asarray(index.get_indexer(pd.MultiIndex.from_frame(rows[list(keys)])), dtype=np.int64)
