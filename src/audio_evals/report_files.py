"""A run's report folders (reports/runs/<UTC stamp>/ and reports/latest/): CSVs, summary.md, run.json, report.html."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import atomic_write, staging_for, swap_folder
from .html_report import AudioMode, HtmlOptions, HtmlPage, build_page
from .report import Report
from .run_info import RUN_INFO, RunInfo
from .shown_cases import DEFAULT_MAX_CASE_ROWS

_KEYS = frozenset(
    {"audio", "embed_audio_max_mb", "max_slice_columns", "max_case_rows", "all_pairs"}
)


class ReportConfigError(ValueError):
    """A [tool.audio-evals.report] setting that cannot be used, naming where it came from."""


@dataclass(frozen=True)
class ReportSettings:
    """The project's report settings: audio in report.html, heatmap width, cases table rows, which variants are compared."""

    html: HtmlOptions = field(default_factory=HtmlOptions)
    all_pairs: bool = False

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], origin: str) -> ReportSettings:
        """Read the `report` table of [tool.audio-evals] (origin names it in errors)."""
        table = settings.get("report", {})
        if not isinstance(table, Mapping):
            raise ReportConfigError(f"{origin}: report must be a table")
        problems = [
            f"unknown key {k!r} (known: {', '.join(sorted(_KEYS))})"
            for k in table
            if k not in _KEYS
        ]
        audio = table.get("audio", str(AudioMode.AUTO))
        if audio not in set(AudioMode):
            problems.append(f"audio must be one of {', '.join(AudioMode)}, got {audio!r}")
        size = table.get("embed_audio_max_mb", 10)
        if isinstance(size, bool) or not isinstance(size, int | float) or size < 0:
            problems.append(f"embed_audio_max_mb must be a number >= 0, got {size!r}")
        columns = table.get("max_slice_columns", 40)
        if isinstance(columns, bool) or not isinstance(columns, int) or columns < 1:
            problems.append(f"max_slice_columns must be an integer >= 1, got {columns!r}")
        rows = table.get("max_case_rows", DEFAULT_MAX_CASE_ROWS)
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            problems.append(f"max_case_rows must be an integer >= 1, got {rows!r}")
        all_pairs = table.get("all_pairs", False)
        if not isinstance(all_pairs, bool):
            problems.append(f"all_pairs must be true or false, got {all_pairs!r}")
        if problems:
            raise ReportConfigError(f"{origin}: " + "; ".join(problems))
        return cls(
            HtmlOptions(AudioMode(audio), int(size * 1024 * 1024), columns, rows),
            all_pairs=all_pairs,
        )


def write_folder(
    report: Report, folder: Path, info: RunInfo, page: HtmlPage, links_from: Path | None = None
) -> None:
    """Write one report folder: the CSVs and summary.md, run.json and report.html, each atomically
    (report.html's links working from `links_from`, default: that folder)."""
    report.write(folder, headline=info.headline, gates=info.gates)
    atomic_write(folder / RUN_INFO, info.to_json())
    page.write(folder, links_from=links_from)


def publish(
    report: Report,
    reports_dir: Path,
    info: RunInfo,
    options: HtmlOptions | None = None,
    *,
    stamp: str | None = None,
) -> list[Path]:
    """Write reports/runs/<stamp>/ and replace reports/latest/ with a copy whose audio links work from there."""
    stamp = stamp or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    page = build_page(report, info, options)
    run = reports_dir / "runs" / stamp
    write_folder(report, run, info, page)
    latest = reports_dir / "latest"
    staging = staging_for(latest)
    shutil.copytree(run, staging)
    page.write(staging, links_from=latest)
    swap_folder(staging, latest)
    return [latest, run]


def publish_folder(
    report: Report, folder: Path, info: RunInfo, options: HtmlOptions | None = None
) -> Path:
    """Write one report folder (e.g. the `-o` of `audio-evals merge`), swapped in whole."""
    staging = staging_for(folder)
    write_folder(report, staging, info, build_page(report, info, options), links_from=folder)
    swap_folder(staging, folder)
    return folder
