"""Sharded runs: each CI job runs a stable share of the cases and saves a partial run; `merge_shards`
puts the shares back together into the one run whose report and gates are those of an unsharded run.

A shard folder holds `shard.json` (which shard of how many, the commit, the record mode, what
became of each batch, which recorded interactions it played, the suites) and `results.jsonl`
(one scored case per line). Merging refuses a missing, duplicated or foreign shard.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import __version__
from .cassettes import RecordMode
from .engine import BatchInfo, BatchStatus, Run, SuiteInfo
from .files import atomic_write, staging_for, swap_folder
from .project import Project
from .results import CaseResult, run_key
from .run_info import git_commit

SHARD_FORMAT = 1
SHARD_FILE = "shard.json"
RESULTS_FILE = "results.jsonl"


class ShardError(ValueError):
    """A shard argument or folder that cannot be used, or shards that do not make one run."""


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` (1-based, e.g. `2/4`) as (I, N)."""
    index, sep, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        shard = (0, 0)
    if not sep or not 1 <= shard[0] <= shard[1]:
        raise ShardError(f"--shard wants I/N with 1 <= I <= N (e.g. 2/4), got {text!r}")
    return shard


def shard_folder(reports_dir: Path, shard: tuple[int, int]) -> Path:
    """Where shard I of N is saved: `<reports>/shards/<I>-of-<N>/`."""
    return reports_dir / "shards" / f"{shard[0]}-of-{shard[1]}"


def _fingerprint(suites: dict[str, SuiteInfo]) -> str:
    """What the shards must agree on: every suite, its variants, cases and gates."""
    doc = json.dumps({k: asdict(v) for k, v in sorted(suites.items())}, sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def write_shard(run: Run, folder: Path) -> Path:
    """Save a sharded run's results, batches and plays into `folder` (swapped in whole)."""
    if run.shard is None:
        raise ShardError("write_shard needs a run made with a shard (run_suite(shard=(i, n)))")
    commit, dirty = git_commit(run.project.root)
    doc = {
        "format": SHARD_FORMAT,
        "harness_version": __version__,
        "shard": list(run.shard),
        "commit": commit,
        "dirty": dirty,
        "record_mode": str(run.record_mode),
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "interrupted": run.interrupted,
        "notes": run.notes,
        "suites_fingerprint": _fingerprint(run.suites),
        "suites": {name: asdict(info) for name, info in sorted(run.suites.items())},
        "batches": [asdict(b) for b in run.batches.values()],
    }
    staging = staging_for(folder)
    staging.mkdir(parents=True)
    results = sorted(run.results, key=run_key)
    atomic_write(staging / RESULTS_FILE, "".join(r.to_json() + "\n" for r in results))
    atomic_write(
        staging / SHARD_FILE, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n"
    )
    swap_folder(staging, folder)
    return folder


def _read(folder: Path) -> tuple[dict[str, Any], list[CaseResult]]:
    path = folder / SHARD_FILE
    if not path.is_file():
        raise ShardError(f"{folder}: no {SHARD_FILE}: not a shard folder written by --shard")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShardError(f"{path}: not readable ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != SHARD_FORMAT:
        raise ShardError(f"{path}: not a shard of format {SHARD_FORMAT}")
    results = []
    with (folder / RESULTS_FILE).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            try:
                results.append(CaseResult.from_json(line))
            except (ValueError, TypeError, KeyError) as exc:
                raise ShardError(
                    f"{folder / RESULTS_FILE}:{lineno}: not a result ({exc})"
                ) from None
    return doc, results


def _merge_batch(mine: BatchInfo, theirs: BatchInfo) -> None:
    """Fold another shard's account of the same batch into `mine` (plays united)."""
    mine.selected += theirs.selected
    order = [BatchStatus.FAILED, BatchStatus.INTERRUPTED, BatchStatus.SKIPPED, BatchStatus.RAN]
    order += [BatchStatus.DESELECTED, BatchStatus.PENDING]
    if order.index(theirs.status) < order.index(mine.status):
        mine.status, mine.reason = theirs.status, theirs.reason
    mine.unused_unknown = mine.unused_unknown or theirs.unused_unknown
    mine.loaded = mine.loaded if mine.loaded is not None else theirs.loaded
    if theirs.played is not None:
        mine.played = sorted(set(mine.played or ()) | set(theirs.played))


def merge_shards(folders: Sequence[Path], project: Project | None = None) -> Run:
    """The run the shards make together (ShardError: missing, duplicated or foreign shards)."""
    if not folders:
        raise ShardError("merge needs the shard folders")
    read = [(folder, *_read(folder)) for folder in folders]
    counts = {tuple(doc["shard"])[1] for _, doc, _ in read}
    if len(counts) != 1:
        raise ShardError(f"the shards split the run differently: N = {sorted(counts)}")
    count = counts.pop()
    seen: dict[int, Path] = {}
    for folder, doc, _ in read:
        index = doc["shard"][0]
        if index in seen:
            raise ShardError(f"shard {index}/{count} given twice: {seen[index]} and {folder}")
        seen[index] = folder
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        raise ShardError(
            f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing: the merged run would "
            "silently hold fewer cases"
        )
    first_folder, first, _ = read[0]
    for folder, doc, _ in read[1:]:
        for key, what in (
            ("commit", "commit"),
            ("dirty", "working tree"),
            ("suites_fingerprint", "suites (variants, cases, gates)"),
            ("record_mode", "record mode"),
        ):
            if doc.get(key) != first.get(key):
                raise ShardError(
                    f"{folder} and {first_folder} come from different runs: their {what} differ "
                    f"({doc.get(key)!r} vs {first.get(key)!r})"
                )
    batches: dict[tuple[str, str], BatchInfo] = {}
    for _, doc, _ in read:
        for raw in doc["batches"]:
            info = BatchInfo.from_dict(raw)
            key = (info.suite, info.variant)
            if key in batches:
                _merge_batch(batches[key], info)
            else:
                batches[key] = info
    for info in batches.values():  # unused interactions, counted over every shard's plays
        complete = info.selected == info.collected and not info.unused_unknown
        if complete and info.loaded is not None:
            info.unused_interactions = info.loaded - len(info.played or ())
    results = [r for _, _, rs in sorted(read, key=lambda t: t[1]["shard"][0]) for r in rs]
    keys = [run_key(r) for r in results]
    if len(set(keys)) != len(keys):
        raise ShardError("the shards overlap: a case was run by two of them")
    return Run(
        project=project or Project.at(),
        record_mode=RecordMode(first["record_mode"]),
        results=results,
        batches=batches,
        suites={name: SuiteInfo(**raw) for name, raw in first["suites"].items()},
        started_at=min(dt.datetime.fromisoformat(d["started_at"]) for _, d, _ in read),
        finished_at=max(
            (dt.datetime.fromisoformat(d["finished_at"]) for _, d, _ in read if d["finished_at"]),
            default=None,
        ),
        interrupted=any(d["interrupted"] for _, d, _ in read),
        notes=[note for _, d, _ in read for note in d.get("notes", [])],
    )


def shard_lines(run: Run, folder: Path) -> Iterable[str]:
    """What a shard's run prints: its share, where it is saved, how to merge."""
    assert run.shard is not None
    index, count = run.shard
    yield (
        f"audio-evals shard {index}/{count}: {len(run.results)} results saved to {folder} "
        "(no gate is judged on a shard)"
    )
    yield f"merge the {count} shards with: audio-evals merge <reports>/shards/*-of-{count} -o reports/latest"
