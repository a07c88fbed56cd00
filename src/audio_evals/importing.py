"""`audio-evals import`: labels from CSV, TSV, JSONL, a spreadsheet or a Hugging Face dataset
into the audiofolder layout (`metadata.jsonl`, `audio/`, `metadata.schema.json`).

Columns: `file_name` (relative to the source file, or absolute), optional `id`, `transcript`,
`must_pass` and `tags.<name>`; every other column is a label field by its dotted name
(`caller.name`). A cell of a list, dict or model field is read as JSON; an empty cell is null
where the model allows it (else the field's default applies, or it is missing). A column that maps
to no field is an error naming it. Audio is copied (or hard-linked with `link=True`) byte for
byte, never converted. Every row is validated against the response model and every problem is
reported together; nothing is written unless all rows are good, and the output folder appears
whole (built beside it, then renamed).
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .audio import SUFFIXES, AudioFileError, probe, sniff
from .datasets import (
    METADATA_FILE,
    SCHEMA_KEY,
    DatasetError,
    _accepted_keys,
    load_dataset,
    unwrap_annotation,
)
from .files import atomic_copy, atomic_write
from .limits import CHAT_AUDIO_FORMATS, OPENAI_LIMITS
from .problems import Problem, ProblemKind
from .schema import SCHEMA_FILE, write_schema

AUDIO_DIR = "audio"
ROW_KEYS = ("file_name", "id", "transcript", "must_pass")
TAG_PREFIX = "tags."
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


class SourceKind(StrEnum):
    """Where labels are imported from."""

    CSV = "csv"
    TSV = "tsv"
    JSONL = "jsonl"
    XLSX = "xlsx"
    HUGGING_FACE = "huggingface"


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote: the dataset folder, its rows and how the audio got there."""

    out: Path
    source_kind: SourceKind
    rows: int
    copied: int
    linked: int
    ids_derived: bool


@dataclass
class _Row:
    line: int
    cells: dict[str, Any]
    audio_bytes: bytes | None = None  # a Hugging Face Audio cell holding the file's bytes
    audio_name: str | None = None


@dataclass
class _Source:
    kind: SourceKind
    path: Path  # the file named in problems
    base: Path  # relative file_name cells are relative to this folder
    columns: list[str]
    rows: list[_Row]
    audio_column: str | None = None


@dataclass(frozen=True)
class _Step:
    key: str
    annotation: Any
    nullable: bool


@dataclass
class _Node:
    step: _Step | None = None
    column: str | None = None
    children: dict[str, _Node] = field(default_factory=dict)


_EMPTY = object()


def import_dataset(
    source: Any,
    out: str | Path,
    model: type[BaseModel],
    *,
    link: bool = False,
    overwrite: bool = False,
    split: str | None = None,
) -> ImportResult:
    """Import `source` (a label file, a saved or in-memory Hugging Face dataset) into `out`."""
    out = Path(out)
    src = _read_source(source, split)
    problems: list[Problem] = []

    def problem(line: int | None, column: str | None, kind: ProblemKind, message: str) -> None:
        problems.append(Problem(src.path, line, column, kind, message))

    if out.exists() and not out.is_dir():
        raise DatasetError(out, None, None, "the output path exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DatasetError(
            out,
            None,
            None,
            "the output folder exists and is not empty (pass overwrite=True / --overwrite "
            "to replace it)",
        )
    tree, column_paths, header_missing = _plan_columns(src, model, problem)
    ids_derived = "id" not in src.columns
    planned: list[tuple[_Row, str, dict[str, Any], dict[str, str], str | None, bool]] = []
    seen_ids: dict[str, int] = {}
    for row in src.rows:
        before = len(problems)
        expected = _expected(tree, row.cells)
        dumped: dict[str, Any] | None = None
        skipped = False
        try:
            dumped = model.model_validate(expected).model_dump(mode="json", by_alias=True)
        except ValidationError as exc:
            for err in exc.errors():
                loc = tuple(str(p) for p in err["loc"])
                if err["type"] == "missing" and loc in header_missing:
                    skipped = True
                    continue  # reported once, at the header
                column = _column_for(loc, column_paths)
                message = (
                    "not valid JSON (a cell of a list, dict or model field holds JSON, "
                    'e.g. ["a", "b"])'
                    if isinstance(err.get("input"), _BadJson)
                    else f"does not validate against {model.__name__}: {err['msg']}"
                )
                problem(
                    row.line,
                    column or ".".join(str(p) for p in err["loc"]),
                    ProblemKind.LABEL,
                    message,
                )
        case_id = _text(row.cells.get("id"))
        if "id" in src.columns and case_id is None:
            problem(row.line, "id", ProblemKind.TYPE, "empty id (give every row an id)")
        if case_id is not None:
            if case_id in seen_ids:
                problem(
                    row.line,
                    "id",
                    ProblemKind.DUPLICATE_ID,
                    f"duplicate id {case_id!r} (first on line {seen_ids[case_id]})",
                )
            seen_ids.setdefault(case_id, row.line)
        tags = {}
        for column in src.columns:
            if column.startswith(TAG_PREFIX):
                tag = _text(row.cells.get(column))
                if tag is not None:
                    tags[column[len(TAG_PREFIX) :]] = tag
        transcript = _text(row.cells.get("transcript"))
        must_pass = _flag(row.cells.get("must_pass"))
        if must_pass is None:
            problem(row.line, "must_pass", ProblemKind.TYPE, "must be true/false, yes/no or 1/0")
        if dumped is None and len(problems) == before and not skipped:  # never unreported
            problem(
                row.line, None, ProblemKind.LABEL, f"does not validate against {model.__name__}"
            )
        if dumped is not None and len(problems) == before:
            planned.append((row, case_id or "", dumped, tags, transcript, bool(must_pass)))
    audio = _plan_audio(src, src.rows, problem)
    if problems:
        raise DatasetError.of(problems)
    if ids_derived:
        ids = _derived_ids([audio[r.line][1] for r, *_ in planned])
        planned = [(p[0], ids[i], *p[2:]) for i, p in enumerate(planned)]
    return _write(out, src, model, planned, audio, link, ids_derived)


# ------------------------------------------------------------------------------- sources


def _read_source(source: Any, split: str | None) -> _Source:
    if type(source).__module__.split(".")[0] == "datasets":
        return _hf_source(source, Path(f"<{type(source).__name__} in memory>"), split)
    path = Path(source)
    if path.is_dir():
        if any(
            (path / n).is_file() for n in ("dataset_info.json", "state.json", "dataset_dict.json")
        ):
            import datasets

            return _hf_source(datasets.load_from_disk(str(path)), path, split)
        for name in ("metadata.csv", "metadata.tsv", "metadata.jsonl"):
            if (path / name).is_file():
                return _read_source(path / name, split)
        raise DatasetError(
            path,
            None,
            None,
            "not a label file nor a saved Hugging Face dataset (expected metadata.csv, "
            "metadata.jsonl or the folder written by datasets' save_to_disk)",
        )
    if not path.is_file():
        raise DatasetError(path, None, None, "no such file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return _table(path, SourceKind.CSV if suffix == ".csv" else SourceKind.TSV)
    if suffix == ".jsonl":
        return _jsonl(path)
    if suffix == ".xlsx":
        return _xlsx(path)
    hint = {
        ".xls": "save it as .xlsx",
        ".json": "write one JSON object per line (.jsonl)",
        ".parquet": "load it with datasets.load_dataset('parquet', ...) and import that dataset",
    }.get(suffix, "use CSV, TSV, JSONL, XLSX or a saved Hugging Face dataset")
    raise DatasetError(path, None, None, f"unsupported label file {suffix or '(none)'!r}: {hint}")


def _table(path: Path, kind: SourceKind) -> _Source:
    import pandas as pd

    try:
        frame = pd.read_csv(
            path,
            sep="\t" if kind is SourceKind.TSV else ",",
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8-sig",
        )
    except UnicodeDecodeError as exc:
        raise DatasetError(
            path, None, None, f"not UTF-8 text ({exc.reason}); save it as UTF-8"
        ) from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise DatasetError(path, None, None, f"unreadable {kind.upper()}: {exc}") from None
    return _frame_source(frame, path, kind)


def _xlsx(path: Path) -> _Source:
    import pandas as pd

    try:
        frame = pd.read_excel(path, dtype=object, engine="openpyxl")
    except ImportError as exc:
        raise DatasetError(
            path,
            None,
            None,
            f"reading .xlsx needs openpyxl: pip install 'audio-evals[import]' ({exc})",
        ) from None
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        raise DatasetError(path, None, None, f"unreadable spreadsheet: {exc}") from None
    return _frame_source(frame, path, SourceKind.XLSX)


def _frame_source(frame: Any, path: Path, kind: SourceKind) -> _Source:
    columns = [str(c).strip() for c in frame.columns]
    rows = [
        _Row(i + 2, dict(zip(columns, values, strict=True)))
        for i, values in enumerate(frame.itertuples(index=False, name=None))
    ]
    return _Source(kind, path, path.parent, columns, rows)


def _jsonl(path: Path) -> _Source:
    rows: list[_Row] = []
    columns: dict[str, None] = {}
    problems = []
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            problems.append(Problem(path, lineno, None, ProblemKind.ENCODING, "not UTF-8"))
            continue
        except (ValueError, RecursionError) as exc:
            message = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
            problems.append(
                Problem(path, lineno, None, ProblemKind.JSON, f"unreadable JSON ({message})")
            )
            continue
        if not isinstance(row, dict):
            problems.append(Problem(path, lineno, None, ProblemKind.JSON, "not a JSON object"))
            continue
        columns.update(dict.fromkeys(str(k) for k in row))
        rows.append(_Row(lineno, row))
    if problems:
        raise DatasetError.of(problems)
    return _Source(SourceKind.JSONL, path, path.parent, list(columns), rows)


def _hf_source(dataset: Any, where: Path, split: str | None) -> _Source:
    import datasets

    if isinstance(dataset, datasets.DatasetDict):
        splits = list(dataset)
        if split is None and len(splits) != 1:
            raise DatasetError(
                where, None, None, f"the dataset has splits {splits}: choose one with --split"
            )
        chosen = split or splits[0]
        if chosen not in dataset:
            raise DatasetError(where, None, None, f"no split {chosen!r} (splits: {splits})")
        dataset = dataset[chosen]
    elif split is not None:
        raise DatasetError(where, None, None, "--split given, but the dataset has no splits")
    audio_columns = [n for n, f in dataset.features.items() if isinstance(f, datasets.Audio)]
    if len(audio_columns) > 1:
        raise DatasetError(where, None, None, f"several Audio columns {audio_columns}: keep one")
    audio_column = audio_columns[0] if audio_columns else None
    if audio_column is not None:
        dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
    columns = [c for c in dataset.column_names if c != audio_column]
    rows = []
    for i, record in enumerate(dataset):
        row = _Row(i + 1, {c: record[c] for c in columns})
        if audio_column is not None:
            cell = record[audio_column] or {}
            row.audio_bytes = cell.get("bytes")
            row.audio_name = cell.get("path")
            if row.audio_bytes is None and row.audio_name:
                row.cells["file_name"] = row.audio_name
        rows.append(row)
    if audio_column is not None and "file_name" not in columns:
        columns.append("file_name")
    return _Source(SourceKind.HUGGING_FACE, where, Path.cwd(), columns, rows, audio_column)


# ------------------------------------------------------------------------------- columns


def _plan_columns(
    src: _Source, model: type[BaseModel], problem: Any
) -> tuple[_Node, dict[tuple[str, ...], str], set[tuple[str, ...]]]:
    """The column tree, each label path's column, and the required paths no column gives."""
    root = _Node()
    paths: dict[tuple[str, ...], str] = {}
    if "file_name" not in src.columns:
        problem(
            None,
            "file_name",
            ProblemKind.MISSING_KEY,
            "no file_name column (the audio file of each row)",
        )
    for column in src.columns:
        if column in ROW_KEYS or column.startswith(TAG_PREFIX):
            if column.startswith(TAG_PREFIX) and len(column) == len(TAG_PREFIX):
                problem(
                    None, column, ProblemKind.UNKNOWN_KEY, "a tag column needs a name: tags.<name>"
                )
            continue
        steps, error = _resolve(model, column)
        if error:
            problem(None, column, ProblemKind.UNKNOWN_LABEL, f"column maps to nothing: {error}")
            continue
        node = root
        for step in steps:
            node = node.children.setdefault(step.key, _Node(step))
        node.column = column
        paths[tuple(s.key for s in steps)] = column
    for node in _nodes(root):
        if node.column is not None and node.children:
            inner = ", ".join(repr(c) for c in _columns_under(node) if c != node.column)
            problem(
                None,
                node.column,
                ProblemKind.UNKNOWN_LABEL,
                f"the column overlaps {inner}: give the whole object or its fields, not both",
            )
            node.children = {}
    missing: set[tuple[str, ...]] = set()
    for node, path, cls in _model_nodes(root, (), model):
        accepted = _accepted_keys(cls)
        for name, info in cls.model_fields.items():
            keys = [k for k, v in accepted.items() if v == name]
            if info.is_required() and not any(k in node.children for k in keys):
                where = ".".join((*path, name))
                missing.add((*path, keys[0] if keys else name))
                problem(
                    None,
                    where,
                    ProblemKind.MISSING_KEY,
                    f"no column for the required field {where!r} of {model.__name__}",
                )
    return root, paths, missing


def _model_nodes(
    node: _Node, path: tuple[str, ...], cls: type[BaseModel]
) -> Iterator[tuple[_Node, tuple[str, ...], type[BaseModel]]]:
    """The root and every nested-model node given field by field (not as one JSON column)."""
    yield node, path, cls
    for key, child in node.children.items():
        assert child.step is not None
        inner = child.step.annotation
        if child.column is None and isinstance(inner, type) and issubclass(inner, BaseModel):
            yield from _model_nodes(child, (*path, key), inner)


def _nodes(node: _Node) -> Iterator[_Node]:
    yield node
    for child in node.children.values():
        yield from _nodes(child)


def _columns_under(node: _Node) -> Iterator[str]:
    if node.column:
        yield node.column
    for child in node.children.values():
        yield from _columns_under(child)


def _resolve(model: type[BaseModel], column: str) -> tuple[list[_Step], str | None]:
    steps: list[_Step] = []
    cls: type[BaseModel] | None = model
    parts = column.split(".")
    for i, part in enumerate(parts):
        if cls is None:
            return steps, f"{'.'.join(parts[:i])!r} is not a nested model, it has no field {part!r}"
        keys = _accepted_keys(cls)
        if part not in keys:
            return steps, f"{cls.__name__} has no field {part!r}"
        info = cls.model_fields[keys[part]]
        inner, nullable = unwrap_annotation(info.annotation)
        steps.append(_Step(part, inner, nullable))
        cls = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None
    return steps, None


def _structured(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_structured(unwrap_annotation(a)[0]) for a in typing.get_args(annotation))
    if origin in (list, tuple, set, frozenset, dict) or annotation in (
        list,
        tuple,
        set,
        frozenset,
        dict,
    ):
        return True
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _expected(node: _Node, cells: Mapping[str, Any]) -> dict[str, Any]:
    value = _node_value(node, cells)
    return {} if value is _EMPTY else value


def _node_value(node: _Node, cells: Mapping[str, Any]) -> Any:
    if node.column is not None:
        raw = cells.get(node.column)
        if _empty(raw):
            return _EMPTY
        assert node.step is not None
        return _cell(raw, node.step.annotation)
    out: dict[str, Any] = {}
    for key, child in node.children.items():
        value = _node_value(child, cells)
        if value is _EMPTY:
            assert child.step is not None
            if child.step.nullable:
                out[key] = None
            continue  # the default applies, or pydantic reports the field missing
        out[key] = value
    if node.step is not None and all(v is None for v in out.values()):
        return _EMPTY
    return out


def _cell(raw: Any, annotation: Any) -> Any:
    if isinstance(raw, str) and _structured(annotation):
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            return _BadJson(raw)
    if hasattr(raw, "to_pydatetime"):
        raw = raw.to_pydatetime()
    if annotation is str and isinstance(raw, int | float) and not isinstance(raw, bool):
        if isinstance(raw, float) and raw.is_integer():
            return str(int(raw))
        return str(raw)
    return raw


class _BadJson(str):
    """A cell that should hold JSON but does not (pydantic then names it)."""


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NaTType", "NAType")


def _text(value: Any) -> str | None:
    if _empty(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _flag(value: Any) -> bool | None:
    if _empty(value):
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if isinstance(value, int | float):
        text = str(int(value)) if float(value).is_integer() else text
    return True if text in _TRUE else False if text in _FALSE else None


def _column_for(loc: tuple[Any, ...], paths: Mapping[tuple[str, ...], str]) -> str | None:
    keys = tuple(str(p) for p in loc)
    for n in range(len(keys), 0, -1):
        if keys[:n] in paths:
            return paths[keys[:n]]
    return None


# ---------------------------------------------------------------------------------- audio


def _plan_audio(
    src: _Source, rows: list[_Row], problem: Any
) -> dict[int, tuple[Path | bytes, str]]:
    """Per line: the audio's source (a file or bytes) and its name under audio/."""
    planned: dict[int, tuple[Path | bytes, str]] = {}
    taken: dict[str, Path | bytes] = {}
    for row in rows:
        if row.audio_bytes is not None:
            fmt = sniff(row.audio_bytes[:12])
            name = Path(row.audio_name or "").name
            if fmt is None:
                problem(
                    row.line,
                    src.audio_column,
                    ProblemKind.AUDIO,
                    "the audio bytes are in no format the harness reads",
                )
                continue
            suffix = Path(name).suffix.lower()
            if SUFFIXES.get(suffix) is not fmt:
                name = (Path(name).stem or f"row-{row.line}") + f".{fmt}"
            planned[row.line] = (row.audio_bytes, _unique(name, row.audio_bytes, taken))
            continue
        cell = _text(row.cells.get("file_name"))
        if cell is None:
            problem(row.line, "file_name", ProblemKind.MISSING_KEY, "empty file_name")
            continue
        given = src.base / cell
        try:
            info = probe(given)
        except AudioFileError as exc:
            missing = not given.exists()
            problem(
                row.line,
                "file_name",
                ProblemKind.AUDIO,
                f"audio file not found: {given}" if missing else f"{given}: {exc}",
            )
            continue
        except OSError as exc:
            problem(row.line, "file_name", ProblemKind.PATH, f"{given}: {exc.strerror or exc}")
            continue
        over = OPENAI_LIMITS.size_problem(
            info.sent_bytes(CHAT_AUDIO_FORMATS)
        ) or OPENAI_LIMITS.duration_problem(info.duration)
        if over:
            problem(row.line, "file_name", ProblemKind.LIMIT, f"{given}: {over}")
        try:
            relative = Path(os.path.normpath(given)).relative_to(os.path.normpath(src.base))
            name = relative.as_posix() if ".." not in relative.parts else given.name
        except ValueError:
            name = given.name
        planned[row.line] = (given, _unique(name, given.resolve(), taken))
    return planned


def _unique(name: str, source: Path | bytes, taken: dict[str, Path | bytes]) -> str:
    """`name`, or `name` with a digest of its source when another source has it."""
    name = re.sub(r"[^\w.\-/]", "_", name).lstrip("/") or "audio"
    owner = taken.get(name)
    if owner is None or owner == source:
        taken[name] = source
        return name
    digest = hashlib.sha256(
        source if isinstance(source, bytes) else str(source).encode()
    ).hexdigest()
    path = Path(name)
    unique = str(path.with_name(f"{path.stem}-{digest[:8]}{path.suffix}"))
    taken[unique] = source
    return unique


def _derived_ids(names: list[str]) -> list[str]:
    """Ids from the audio file names (their stems), with the path added where stems repeat."""
    stems = [Path(n).stem for n in names]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    return [
        stem if counts[stem] == 1 else str(Path(name).with_suffix("")).replace("/", "-")
        for stem, name in zip(stems, names, strict=True)
    ]


# ---------------------------------------------------------------------------------- write


def _write(
    out: Path,
    src: _Source,
    model: type[BaseModel],
    planned: list[tuple[_Row, str, dict[str, Any], dict[str, str], str | None, bool]],
    audio: dict[int, tuple[Path | bytes, str]],
    link: bool,
    ids_derived: bool,
) -> ImportResult:
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.import-", dir=out.parent))
    try:
        copied = linked = 0
        lines = []
        for row, case_id, expected, tags, transcript, must_pass in planned:
            origin, name = audio[row.line]
            target = stage / AUDIO_DIR / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                pass  # the same source file, named by an earlier row
            elif isinstance(origin, bytes):
                atomic_write(target, origin)
                copied += 1
            elif link and _hardlink(origin, target):
                linked += 1
            else:
                atomic_copy(origin, target)
                copied += 1
            record: dict[str, Any] = {
                SCHEMA_KEY: SCHEMA_FILE,
                "file_name": f"{AUDIO_DIR}/{name}",
                "id": case_id,
                "expected": expected,
            }
            if tags:
                record["tags"] = tags
            if transcript is not None:
                record["transcript"] = transcript
            if must_pass:
                record["must_pass"] = True
            lines.append(json.dumps(record, ensure_ascii=False))
        atomic_write(stage / METADATA_FILE, "\n".join(lines) + "\n")
        write_schema(stage, model)
        load_dataset(stage, model)  # the written dataset loads as any other
        _replace_dir(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return ImportResult(out, src.kind, len(planned), copied, linked, ids_derived)


def _hardlink(source: Path, target: Path) -> bool:
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            return False
        raise
    return True


def _replace_dir(stage: Path, out: Path) -> None:
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.replace(stage, out)
        return
    old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
    os.replace(out, old)
    os.replace(stage, out)
    shutil.rmtree(old, ignore_errors=True)
