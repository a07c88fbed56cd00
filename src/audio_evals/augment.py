"""`augment`: derived datasets with the same labels under acoustic conditions, per row or for all rows."""

from __future__ import annotations

import os
import tomllib
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .conditions import AudioFormat, Condition, ConditionKind, apply_condition
from .dataset_files import MetadataRow, RawDataset, audio_file_name, read_rows, writing_dataset
from .problems import ProblemList

PLAN_KEYS = frozenset({"seed", "format", "apply"})
BLOCK_KEYS = frozenset({"condition", "format", "ids", "where"})


@dataclass(frozen=True)
class PlanBlock:
    """One `[[apply]]` block of a plan: a condition for the rows it selects (all rows if none named)."""

    condition: Condition
    audio_format: AudioFormat | None = None
    ids: frozenset[str] = frozenset()
    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def selects(self, row: MetadataRow) -> bool:
        """Whether the block applies to a row (listed by id, or matching every `where` tag)."""
        if self.ids:
            return row.id in self.ids
        tags = row.tags
        return all(tags.get(k) in values for k, values in self.where.items())


@dataclass(frozen=True)
class Plan:
    """Which condition each row gets, with the seed of the random draws (noise, ranges)."""

    blocks: tuple[PlanBlock, ...]
    seed: tuple[int, ...] = (0,)
    audio_format: AudioFormat | None = None


@dataclass(frozen=True)
class Derivation:
    """One output row: a source row (and its position) under a condition, with its new id."""

    source: MetadataRow
    position: int
    condition: Condition
    audio_format: AudioFormat
    id: str


@dataclass(frozen=True)
class AugmentResult:
    """What `augment` wrote."""

    out: Path
    rows: int
    conditions: Mapping[str, int]


def parse_seed(value: int | str | Sequence[int]) -> tuple[int, ...]:
    """A seed as numpy SeedSequence entropy: an integer, or integers (a list, or `a,b` text)."""
    if isinstance(value, str):
        try:
            value = [int(part) for part in value.split(",")]
        except ValueError:
            raise ValueError(
                f"seed {value!r} is not an integer or integers separated by commas"
            ) from None
    seed = (value,) if isinstance(value, int) else tuple(value)
    if not seed or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seed):
        raise ValueError(f"seed {value!r} must be a non-negative integer or a list of them")
    return seed


def _format(value: Any, path: Path, where: str, problems: ProblemList) -> AudioFormat | None:
    if value is None:
        return None
    try:
        return AudioFormat(value)
    except ValueError:
        problems.add(path, None, where, f"{value!r} is not one of {', '.join(AudioFormat)}")
        return None


def load_plan(path: str | Path) -> Plan:
    """Read a plan (`.toml`: seed, format, [[apply]] blocks), checking everything at once."""
    path = Path(path)
    problems = ProblemList()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.add(path, None, None, "plan file not found")
        raw = {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        problems.add(path, None, None, f"not a readable TOML file ({exc})")
        raw = {}
    problems.raise_if_any()
    for key in sorted(set(raw) - PLAN_KEYS):
        problems.add(path, None, key, f"unknown key (known: {', '.join(sorted(PLAN_KEYS))})")
    seed: tuple[int, ...] = (0,)
    if "seed" in raw:
        try:
            seed = parse_seed(raw["seed"])
        except ValueError as exc:
            problems.add(path, None, "seed", str(exc))
    default_format = _format(raw.get("format"), path, "format", problems)
    blocks_raw = raw.get("apply")
    if (
        not isinstance(blocks_raw, list)
        or not blocks_raw
        or not all(isinstance(b, dict) for b in blocks_raw)
    ):
        problems.add(path, None, "apply", "a plan needs [[apply]] blocks, each with a condition")
        blocks_raw = []
    blocks = []
    for i, block in enumerate(blocks_raw, start=1):
        where = f"apply[{i}]"
        for key in sorted(set(block) - BLOCK_KEYS):
            problems.add(
                path,
                None,
                f"{where}.{key}",
                f"unknown key (known: {', '.join(sorted(BLOCK_KEYS))})",
            )
        try:
            condition = Condition.parse(str(block.get("condition", "")))
        except ValueError as exc:
            problems.add(path, None, f"{where}.condition", str(exc))
            continue
        ids = block.get("ids", [])
        if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
            problems.add(path, None, f"{where}.ids", "must be a list of row ids")
            ids = []
        selection: dict[str, tuple[str, ...]] = {}
        tags = block.get("where", {})
        if not isinstance(tags, dict):
            problems.add(path, None, f"{where}.where", "must be a table of tag = value or [values]")
            tags = {}
        for tag, values in tags.items():
            values = [values] if isinstance(values, str) else values
            if (
                not isinstance(values, list)
                or not values
                or not all(isinstance(v, str) for v in values)
            ):
                problems.add(
                    path, None, f"{where}.where.{tag}", "must be a string or a list of strings"
                )
                continue
            selection[tag] = tuple(values)
        if ids and selection:
            problems.add(path, None, where, "select rows by ids or by where, not both")
        blocks.append(
            PlanBlock(
                condition,
                _format(block.get("format"), path, f"{where}.format", problems),
                frozenset(ids),
                selection,
            )
        )
    problems.raise_if_any()
    return Plan(tuple(blocks), seed, default_format)


def _source_format(dataset: RawDataset, row: MetadataRow) -> AudioFormat:
    return AudioFormat.of(dataset.audio_path(row)) or AudioFormat.WAV


def derive_rows(dataset: RawDataset, plan: Plan, plan_path: Path | None = None) -> list[Derivation]:
    """Assign every row its condition: a row in several blocks is rendered once per block (ids suffixed)."""
    problems = ProblemList()
    where = plan_path or dataset.metadata
    known = {row.id for row in dataset.rows}
    chosen: list[list[PlanBlock]] = [[] for _ in dataset.rows]
    for i, block in enumerate(plan.blocks, start=1):
        for missing in sorted(set(block.ids) - known):
            problems.add(where, None, f"apply[{i}].ids", f"no row has id {missing!r}")
        hits = 0
        for position, row in enumerate(dataset.rows):
            if block.selects(row):
                chosen[position].append(block)
                hits += 1
        if hits == 0 and not block.ids:
            problems.add(where, None, f"apply[{i}].where", "selects no row")
    problems.raise_if_any()
    derived = []
    for position, (row, blocks) in enumerate(zip(dataset.rows, chosen, strict=True)):
        if not blocks:  # not selected: kept as it is
            blocks = [PlanBlock(Condition(ConditionKind.CLEAN), _source_format(dataset, row))]
        for block in blocks:
            fmt = block.audio_format or plan.audio_format or _source_format(dataset, row)
            new_id = row.id if len(blocks) == 1 else f"{row.id}-{block.condition.slug}"
            derived.append(Derivation(row, position, block.condition, fmt, new_id))
    ids = Counter(d.id for d in derived)
    for d in derived:
        if ids[d.id] > 1:
            problems.add(
                where,
                None,
                "apply",
                f"two output rows would have id {d.id!r} (a row is selected twice for {d.condition})",
            )
            ids[d.id] = 1
    problems.raise_if_any()
    return derived


def derived_tags(
    tags: Mapping[str, str], condition: Condition, fmt: AudioFormat, values: Mapping[str, str]
) -> dict[str, str]:
    """A row's tags under a condition: `condition` set in place (`noisy+telephone` when chained), `format`, parameters."""
    new = dict(tags)
    old = new.get("condition")
    if condition.kind == ConditionKind.CLEAN:
        new["condition"] = old or condition.tag
    else:
        new["condition"] = condition.tag if old in (None, "clean") else f"{old}+{condition.tag}"
    new["format"] = fmt.value
    new.update(values)
    return new


def augment(
    dataset: str | Path,
    out: str | Path,
    *,
    conditions: Sequence[str | Condition] = (),
    plan: str | Path | Plan | None = None,
    audio_format: AudioFormat | str | None = None,
    seed: int | str | Sequence[int] | None = None,
    force: bool = False,
    jobs: int | None = None,
) -> AugmentResult:
    """Write `dataset` under conditions to `out`: every row under each of `conditions`, or per row by `plan`.

    Labels, transcripts and other keys are copied verbatim; the `condition` and `format` tags and a
    condition's parameter (`snr_db`, ...) are set. Row i's random draws come from
    `numpy.random.default_rng([*seed, i])`, so a rebuild gives the same bytes.
    """
    if bool(conditions) == (plan is not None):
        raise ValueError("give conditions or a plan (exactly one of them)")
    source = read_rows(dataset)
    plan_path = Path(plan) if isinstance(plan, str | Path) else None
    if plan_path is not None:
        plan = load_plan(plan_path)
    elif plan is None:
        parsed = [c if isinstance(c, Condition) else Condition.parse(c) for c in conditions]
        plan = Plan(tuple(PlanBlock(c) for c in parsed))
    assert isinstance(plan, Plan)
    if audio_format is not None:
        plan = Plan(plan.blocks, plan.seed, AudioFormat(audio_format))
    if seed is not None:
        plan = Plan(plan.blocks, parse_seed(seed), plan.audio_format)
    derived = derive_rows(source, plan, plan_path)
    entropy = plan.seed
    with writing_dataset(out, force=force) as writer:
        targets = [writer.path_for(audio_file_name(d.id, d.audio_format), d.id) for d in derived]

        def render(d: Derivation, target: Path) -> dict[str, str]:
            rng = np.random.default_rng([*entropy, d.position])
            return apply_condition(
                d.condition, source.audio_path(d.source), target, d.audio_format, rng
            )

        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
            futures = [pool.submit(render, d, t) for d, t in zip(derived, targets, strict=True)]
            values = [f.result() for f in futures]
        for d, target, params in zip(derived, targets, values, strict=True):
            row = dict(d.source.data)
            row["id"] = d.id
            row["file_name"] = target.relative_to(writer.staging).as_posix()
            row["tags"] = derived_tags(d.source.tags, d.condition, d.audio_format, params)
            writer.add_row(row)
    counts = Counter(str(d.condition) for d in derived)
    return AugmentResult(Path(out), len(derived), dict(counts))
