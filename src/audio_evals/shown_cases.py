"""Which runs report.html's cases table carries when a suite has more than the page can hold: whole cases, those with an error or a wrong field first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_MAX_CASE_ROWS = 10_000


@dataclass(frozen=True)
class ShownCases:
    """The runs (rows of the cases frame) a suite's cases table shows, and what it leaves out."""

    runs: pd.DataFrame
    total_runs: int
    total_cases: int
    shown_cases: int
    errored_cases: int
    wrong_cases: int

    @property
    def complete(self) -> bool:
        """Whether every run of the suite is shown."""
        return len(self.runs) == self.total_runs


def select_cases(runs: pd.DataFrame, limit: int) -> ShownCases:
    """A suite's runs cut to whole cases within `limit` runs (one case at least): errored, then wrong, then the rest."""
    case_ids = runs["case_id"].to_numpy(dtype=object)
    codes, order = pd.factorize(case_ids)  # cases in order of first appearance
    errored = np.zeros(len(order), dtype=bool)
    wrong = np.zeros(len(order), dtype=bool)
    np.logical_or.at(errored, codes, runs["error"].to_numpy(dtype=object) != "")
    np.logical_or.at(wrong, codes, ~runs["exact"].to_numpy(dtype=bool))
    wrong &= ~errored
    sizes = np.bincount(codes, minlength=len(order))
    if len(runs) <= limit:
        keep = np.ones(len(order), dtype=bool)
    else:
        rank = np.where(errored, 0, np.where(wrong, 1, 2))
        ranked = np.argsort(rank, kind="stable")
        fits = np.cumsum(sizes[ranked]) <= limit
        fits[0] = True
        keep = np.zeros(len(order), dtype=bool)
        keep[ranked[fits]] = True
    return ShownCases(
        runs=runs[keep[codes]],
        total_runs=len(runs),
        total_cases=len(order),
        shown_cases=int(keep.sum()),
        errored_cases=int(errored.sum()),
        wrong_cases=int(wrong.sum()),
    )
