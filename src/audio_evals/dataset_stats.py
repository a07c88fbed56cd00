"""`stats`: what a dataset holds: rows, audio durations, tag counts and label distributions per field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import soundfile as sf

from .dataset_files import read_rows
from .problems import ProblemList

MISSING = "(missing)"
EMPTY_LIST = "(empty list)"


def _ordered_counts(frame: pd.DataFrame, key: str, **extra: tuple[str, str]) -> pd.DataFrame:
    """Rows per (key, value), keys in first-seen order, values by falling count then name."""
    order = list(dict.fromkeys(frame[key]))
    counts = (
        frame.groupby([key, "value"], sort=False).agg(rows=("id", "nunique"), **extra).reset_index()
    )
    counts["_key"] = counts[key].map({k: i for i, k in enumerate(order)})
    counts = counts.sort_values(["_key", "rows", "value"], ascending=[True, False, True])
    return counts.drop(columns="_key").reset_index(drop=True)


@dataclass(frozen=True)
class DatasetStats:
    """A dataset's composition as pandas frames."""

    name: str
    root: Path
    audio: pd.DataFrame
    """One row per case: id, seconds, format, sample_rate, channels, transcript, must_pass."""
    tag_values: pd.DataFrame
    """One row per case and tag: id, tag, value (`(missing)` when the case lacks it), seconds."""
    label_values: pd.DataFrame
    """One row per case, label field and value: id, field, value (as shown), number (or NaN)."""

    @property
    def rows(self) -> int:
        """How many rows the dataset has."""
        return len(self.audio)

    @property
    def seconds(self) -> float:
        """Total audio duration in seconds."""
        return float(self.audio["seconds"].sum())

    def tags(self) -> pd.DataFrame:
        """Per tag and value: rows and seconds of audio."""
        return _ordered_counts(self.tag_values, "tag", seconds=("seconds", "sum"))

    def labels(self) -> pd.DataFrame:
        """Per label field and value: the rows holding it (list fields as `field[]`, per element)."""
        return _ordered_counts(self.label_values, "field")

    def fields(self) -> pd.DataFrame:
        """Per label field: rows holding it, nulls, distinct values and, for numbers, min/median/max."""
        frame = self.label_values
        grouped = frame.groupby("field", sort=False)
        summary = pd.DataFrame(
            {
                "rows": grouped["id"].nunique(),
                "null": frame[frame["value"] == "null"]
                .groupby("field", sort=False)["id"]
                .nunique(),
                "distinct": frame[frame["value"] != EMPTY_LIST]
                .groupby("field", sort=False)["value"]
                .nunique(),
                "min": grouped["number"].min(),
                "median": grouped["number"].median(),
                "max": grouped["number"].max(),
            }
        )
        summary = summary.reindex(list(dict.fromkeys(frame["field"])))
        for column in ("null", "distinct"):
            summary[column] = summary[column].fillna(0).astype(int)
        return summary.rename_axis("field").reset_index()


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _leaves(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(field, value) for every scalar of a label; list elements under `field[]`."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        if not value:
            yield f"{prefix}[]", EMPTY_LIST
        for inner in value:
            yield from _leaves(inner, f"{prefix}[]")
    else:
        yield prefix or "(expected)", value


def _number(value: Any) -> float:
    return (
        float(value)
        if isinstance(value, int | float) and not isinstance(value, bool)
        else float("nan")
    )


def dataset_stats(path: str | Path) -> DatasetStats:
    """Measure a dataset folder (no response model needed); ProblemsError lists every unreadable file."""
    dataset = read_rows(path)
    problems = ProblemList()
    audio, tags, labels = [], [], []
    for row in dataset.rows:
        file = dataset.audio_path(row)
        try:
            info = sf.info(file)
        except (sf.LibsndfileError, RuntimeError) as exc:
            problems.add(dataset.metadata, row.line, "file_name", f"cannot read {file}: {exc}")
            continue
        seconds = info.frames / info.samplerate if info.samplerate else 0.0
        transcript = row.data.get("transcript")
        audio.append(
            {
                "id": row.id,
                "seconds": seconds,
                "format": file.suffix.lower().lstrip("."),
                "sample_rate": int(info.samplerate),
                "channels": int(info.channels),
                "transcript": isinstance(transcript, str) and bool(transcript.strip()),
                "must_pass": row.data.get("must_pass") is True,
            }
        )
        tags += [
            {"id": row.id, "tag": k, "value": v, "seconds": seconds} for k, v in row.tags.items()
        ]
        labels += [
            {"id": row.id, "field": f, "value": _shown(v), "number": _number(v)}
            for f, v in _leaves(row.data["expected"], "")
        ]
    problems.raise_if_any()
    tag_values = pd.DataFrame(tags, columns=["id", "tag", "value", "seconds"])
    having = tag_values.groupby("tag", sort=False)["id"].agg(set)
    missing = [
        {"id": a["id"], "tag": tag, "value": MISSING, "seconds": a["seconds"]}
        for tag, ids in having.items()
        for a in audio
        if a["id"] not in ids
    ]
    if missing:
        tag_values = pd.concat([tag_values, pd.DataFrame(missing)], ignore_index=True)
    return DatasetStats(
        name=dataset.root.name,
        root=dataset.root,
        audio=pd.DataFrame(audio),
        tag_values=tag_values,
        label_values=pd.DataFrame(labels, columns=["id", "field", "value", "number"]),
    )


def _counts(series: pd.Series) -> str:
    return ", ".join(f"{k} {v}" for k, v in series.value_counts(sort=True).items())


def _top(frame: pd.DataFrame, key: str, top: int) -> pd.DataFrame:
    """The `top` most frequent values per key; the rest as one `(N more values)` line."""
    parts = []
    for name, group in frame.groupby(key, sort=False):
        parts.append(group.head(top))
        rest = group.iloc[top:]
        if len(rest):
            more = f"({len(rest)} more value{'' if len(rest) == 1 else 's'})"
            summary: dict[str, Any] = {key: name, "value": more, "rows": int(rest["rows"].sum())}
            if "seconds" in rest:
                summary["seconds"] = float(rest["seconds"].sum())
            parts.append(pd.DataFrame([summary]))
    return pd.concat(parts, ignore_index=True) if parts else frame


def _blank_nan(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).where(frame.notna(), None)


def stats_text(stats: DatasetStats, top: int = 10) -> str:
    """The statistics as text with Markdown tables (the `top` values per tag and field)."""
    a = stats.audio
    s = a["seconds"]
    channels = a["channels"].map(lambda c: "mono" if c == 1 else f"{c} channels")
    lines = [
        f"dataset {stats.name} ({stats.root}): {stats.rows} rows, {stats.seconds:.1f} s of audio",
        f"per-row duration (s): min {s.min():.2f}, median {s.median():.2f}, "
        f"mean {s.mean():.2f}, max {s.max():.2f}",
        f"transcripts: {int(a['transcript'].sum())} of {stats.rows} rows; "
        f"must_pass: {int(a['must_pass'].sum())} rows",
        f"audio: {_counts(a['format'])}; {_counts(a['sample_rate'].map(lambda r: f'{r} Hz'))}; "
        f"{_counts(channels)}",
        "",
        "## Tags (rows per value; share of all rows; seconds of audio)",
        "",
    ]
    if len(stats.tag_values):
        tags = _top(stats.tags(), "tag", top)
        tags["share"] = (tags["rows"] / stats.rows).map(lambda x: f"{x:.0%}")
        tags["seconds"] = tags["seconds"].map(lambda x: f"{x:.1f}")
        lines.append(tags[["tag", "value", "rows", "share", "seconds"]].to_markdown(index=False))
    else:
        lines.append("(no row has tags)")
    lines += ["", "## Label fields (list elements as field[])", ""]
    if not len(stats.label_values):
        return "\n".join([*lines, "(every label is empty)", ""])
    labels = _top(stats.labels(), "field", top)
    labels["share"] = (labels["rows"] / stats.rows).map(lambda x: f"{x:.0%}")
    lines += [
        _blank_nan(stats.fields()).to_markdown(index=False, floatfmt="g", missingval=""),
        "",
        "## Label values (rows holding each value)",
        "",
        labels[["field", "value", "rows", "share"]].to_markdown(index=False),
        "",
    ]
    return "\n".join(lines)


def stats_json(stats: DatasetStats) -> dict[str, Any]:
    """The statistics as JSON-ready data (every value, no top-N cut)."""
    s = stats.audio["seconds"]
    fields = _blank_nan(stats.fields())
    return {
        "name": stats.name,
        "root": str(stats.root),
        "rows": stats.rows,
        "seconds": round(stats.seconds, 3),
        "duration": {
            "min": round(float(s.min()), 3),
            "median": round(float(s.median()), 3),
            "mean": round(float(s.mean()), 3),
            "max": round(float(s.max()), 3),
        },
        "transcripts": int(stats.audio["transcript"].sum()),
        "must_pass": int(stats.audio["must_pass"].sum()),
        "audio": stats.audio.to_dict(orient="records"),
        "tags": stats.tags().round({"seconds": 3}).to_dict(orient="records"),
        "fields": fields.to_dict(orient="records"),
        "labels": stats.labels().to_dict(orient="records"),
    }
