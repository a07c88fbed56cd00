"""What a saved report says about its run: complete or partial, why, and the command that finishes it.

A run is partial when it was interrupted (Ctrl-C) or when a batch that was selected did not run
to its end (it failed, or the session stopped before it). A partial report is labelled where a
reader of the folder sees it (the first line of summary.md, `run.json`), and it passes no gate.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .cassettes import RecordMode
from .engine import BatchStatus
from .gates import FAILED, GateResult

if TYPE_CHECKING:
    from .engine import BatchInfo, Run

COMPLETE_GATE = "complete run"


def unfinished_reason(batch: BatchInfo) -> str | None:
    """Why a selected batch has no complete set of results (None when it ran, or was not asked to:
    a batch whose items were all skipped on purpose, or deselected, is not unfinished)."""
    if batch.status is BatchStatus.FAILED:
        return f"failed: {batch.reason}"
    if batch.status is BatchStatus.INTERRUPTED:
        return batch.reason or "interrupted before it started"
    return None


def resume_command(args: Sequence[str], record_mode: RecordMode, program: str = "pytest") -> str:
    """The command that completes an interrupted run: the same one, recording only what is missing.

    A recording run resumes with `--record-mode=new_episodes` (what was recorded replays, the
    rest is recorded); `all` re-records everything again, and a replay is simply run again.
    """
    kept: list[str] = []
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
            continue
        if arg == "--record-mode":
            skip_next = True
            continue
        if arg.startswith("--record-mode="):
            continue
        kept.append(arg)
    if record_mode in (RecordMode.ONCE, RecordMode.NEW_EPISODES, RecordMode.REWRITE):
        kept.append(f"--record-mode={RecordMode.NEW_EPISODES}")
    elif record_mode is RecordMode.ALL:
        kept.append(f"--record-mode={RecordMode.ALL}")
    return shlex.join([program, *kept])


@dataclass(frozen=True)
class BatchRecord:
    """One (suite, variant) of the run: what became of it and how many of its units have results."""

    suite: str
    variant: str
    status: str
    selected: int
    results: int
    reason: str | None


@dataclass(frozen=True)
class RunRecord:
    """The run behind a report: complete or partial, why, and the command that finishes it."""

    complete: bool
    interrupted: bool
    record_mode: str
    started_at: str
    finished_at: str | None
    problems: tuple[str, ...]
    resume: str | None
    batches: tuple[BatchRecord, ...]

    @property
    def counts(self) -> tuple[int, int]:
        """(units with a result, units selected) over every batch."""
        return sum(b.results for b in self.batches), sum(b.selected for b in self.batches)

    @property
    def summary(self) -> str:
        """One sentence: why the run is partial, what it holds, and how to finish it."""
        done, selected = self.counts
        why = "interrupted" if self.interrupted else "a batch did not run to its end"
        text = (
            f"PARTIAL RUN ({why}): {done} of {selected} selected cases have results "
            f"({'; '.join(self.problems)}). What completed is in this report"
        )
        if self.record_mode != RecordMode.NONE:
            text += " and in the cassettes"
        text += "; no gate passes on a partial run."
        if self.resume:
            text += f" Resume with: {self.resume}"
        return text

    @property
    def banner(self) -> str:
        """The Markdown line at the top of summary.md ("" for a complete run)."""
        return "" if self.complete else f"> **{self.summary}**"

    def gate(self) -> GateResult | None:
        """The failed gate of a partial run (None for a complete one)."""
        if self.complete:
            return None
        return GateResult(COMPLETE_GATE, FAILED, None, None, self.summary)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Read back `asdict(record)` (from run.json)."""
        return cls(
            **{
                **data,
                "problems": tuple(data["problems"]),
                "batches": tuple(BatchRecord(**b) for b in data["batches"]),
            }
        )


def run_record(run: Run) -> RunRecord:
    """The record of a run: complete or partial (interrupted, a batch that failed or never ran)."""
    have = Counter((r.suite, r.variant) for r in run.results)
    batches, problems = [], []
    for b in sorted(run.batches.values(), key=lambda b: (b.suite, b.variant)):
        why = unfinished_reason(b)
        if why is not None:  # a failed batch's reason is said where it failed, and under "not run"
            short = "failed" if b.status is BatchStatus.FAILED else why
            done = have[(b.suite, b.variant)]
            problems.append(f"{b.suite}/{b.variant}: {short}, {done} of {b.selected} have results")
        batches.append(
            BatchRecord(
                suite=b.suite,
                variant=b.variant,
                status=str(b.status),
                selected=b.selected,
                results=have[(b.suite, b.variant)],
                reason=b.reason,
            )
        )
    if run.interrupted and not problems:
        problems.append("interrupted after its last batch")
    complete = not problems
    resume = None
    if not complete:
        resume = run.resume or resume_command(["evals"], run.record_mode)
    return RunRecord(
        complete=complete,
        interrupted=run.interrupted,
        record_mode=str(run.record_mode),
        started_at=run.started_at.isoformat(),
        finished_at=run.finished_at.isoformat() if run.finished_at else None,
        problems=tuple(problems),
        resume=resume,
        batches=tuple(batches),
    )
