"""What a run was (headline: when, commit, record mode, suites, variants, n) and its saved run.json."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from .gates import GateResult, GateStatus

if TYPE_CHECKING:
    from .report import Report
    from .run_record import RunRecord

RUN_INFO = "run.json"
RUN_INFO_FORMAT = 1


@dataclass(frozen=True)
class RunHeadline:
    """The first thing a report says: when, which commit, record mode, what ran and on how many cases."""

    when: str
    record_mode: str
    suites: tuple[str, ...]
    variants: tuple[str, ...]
    cases: int
    results: int
    commit: str | None = None
    dirty: bool = False
    not_run: tuple[str, ...] = ()
    root: str = ""
    version: str = ""

    def commit_text(self) -> str:
        """The commit as shown: short hash, '(uncommitted changes)' when dirty, 'not a git checkout'."""
        if not self.commit:
            return "not a git checkout"
        return self.commit + (" (with uncommitted changes)" if self.dirty else "")

    def items(self) -> list[tuple[str, str]]:
        """The headline as (label, text) pairs, in display order."""
        return [
            ("when", self.when),
            ("commit", self.commit_text()),
            ("record mode", self.record_mode),
            ("suites", ", ".join(self.suites) or "none"),
            ("variants run", ", ".join(self.variants) or "none"),
            ("not run", ", ".join(self.not_run) or "none"),
            ("n", f"{self.cases} cases, {self.results} scored runs (case x variant x repeat)"),
        ]

    def markdown(self) -> str:
        """The headline as a Markdown list."""
        return "\n".join(f"- **{label}**: {text}" for label, text in self.items()) + "\n"


def git_commit(root: Path) -> tuple[str | None, bool]:
    """The checked-out commit of a git project (short hash) and whether tracked files changed; (None, False) otherwise."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if head.returncode != 0:
            return None, False
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, False
    return head.stdout.strip() or None, bool(status.stdout.strip())


def _version() -> str:
    try:
        return metadata.version("audio-evals")
    except metadata.PackageNotFoundError:
        return ""


def make_headline(
    report: Report,
    *,
    record_mode: str,
    root: Path,
    when: dt.datetime | None = None,
) -> RunHeadline:
    """The headline of a run from its report (suites, variants, n), the record mode and the project's git commit."""
    cases = report.cases
    commit, dirty = git_commit(root)
    ran: list[str] = []
    suites_ran: list[str] = []
    if not cases.empty:
        pairs = cases[["suite", "variant"]].drop_duplicates()
        ran = list(
            dict.fromkeys(
                f"{s}/{v}"
                for s, v in zip(pairs["suite"].tolist(), pairs["variant"].tolist(), strict=True)
            )
        )
        suites_ran = pairs["suite"].unique().tolist()
    suites = sorted({*suites_ran, *(s["suite"] for s in report.skips)})
    n_cases = int(cases[["suite", "case_id"]].drop_duplicates().shape[0]) if not cases.empty else 0
    moment = (when or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return RunHeadline(
        when=moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
        record_mode=record_mode,
        suites=tuple(suites),
        variants=tuple(ran),
        cases=n_cases,
        results=len(cases),
        commit=commit,
        dirty=dirty,
        not_run=tuple(f"{s['suite']}/{s['variant']}" for s in report.skips),
        root=str(root),
        version=_version(),
    )


@dataclass(frozen=True)
class RunInfo:
    """What a saved run folder needs besides its CSVs to be rendered again: the headline and the gates."""

    headline: RunHeadline
    gates: tuple[GateResult, ...] = ()
    record: RunRecord | None = None

    def to_json(self) -> str:
        """run.json's text."""
        doc = {
            "format": RUN_INFO_FORMAT,
            "headline": asdict(self.headline),
            "gates": [asdict(g) for g in self.gates],
            "run": asdict(self.record) if self.record is not None else None,
        }
        return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, source: Path) -> RunInfo:
        """Read run.json's text back (source names the file in errors)."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(doc, dict) or doc.get("format") != RUN_INFO_FORMAT:
            raise ValueError(f"{source}: not a run.json of format {RUN_INFO_FORMAT}")
        try:
            head = dict(doc["headline"])
            for key in ("suites", "variants", "not_run"):
                head[key] = tuple(head.get(key, ()))
            headline = RunHeadline(**head)
            gates = tuple(
                GateResult(**{**g, "status": GateStatus(g["status"])}) for g in doc.get("gates", [])
            )
            from .run_record import RunRecord

            record = RunRecord.from_dict(doc["run"]) if doc.get("run") else None
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{source}: unreadable run.json ({exc})") from None
        return cls(headline, gates, record)


def read_run_info(folder: Path) -> RunInfo:
    """The run.json of a saved report folder."""
    path = folder / RUN_INFO
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: is {folder} a report folder written by pytest evals?"
        )
    return RunInfo.from_json(path.read_text(encoding="utf-8"), path)
