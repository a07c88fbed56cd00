"""Dataset folders as files: metadata.jsonl rows read verbatim, a whole folder written atomically."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .dataset_settings import is_url, read_settings
from .datasets import METADATA_FILE
from .problems import ProblemKind, ProblemList
from .remote_sources import shown_url

AUDIO_DIR = "audio"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class MetadataRow:
    """One metadata.jsonl row exactly as written (key order kept), with its line number."""

    line: int
    data: dict[str, Any]

    @property
    def id(self) -> str:
        """The row's id."""
        return str(self.data["id"])

    @property
    def tags(self) -> dict[str, str]:
        """The row's tags (empty if it has none)."""
        return dict(self.data.get("tags") or {})


@dataclass(frozen=True)
class RawDataset:
    """A dataset folder's rows as raw JSON, for tools that copy or count rows without a response model."""

    root: Path
    rows: tuple[MetadataRow, ...]

    @property
    def metadata(self) -> Path:
        """The metadata.jsonl file."""
        return self.root / METADATA_FILE

    def audio_path(self, row: MetadataRow) -> Path:
        """The audio file of a row."""
        return self.root / row.data["file_name"]


def read_rows(path: str | Path) -> RawDataset:
    """Read `<path>/metadata.jsonl` verbatim, checking ids, audio files and tags; ProblemsError lists every problem."""
    given = Path(path)
    meta = given if given.is_file() else given / METADATA_FILE
    root = meta.parent
    problems = ProblemList()
    try:
        raw = meta.read_bytes()
    except FileNotFoundError:
        problems.add(
            meta, None, None, f"no {METADATA_FILE} found (expected the audiofolder layout)"
        )
        problems.raise_if_any()
        raise AssertionError("unreachable") from None
    except OSError as exc:
        problems.add(meta, None, None, f"cannot read it ({exc.strerror or exc})")
        problems.raise_if_any()
        raise AssertionError("unreachable") from None
    rows: list[MetadataRow] = []
    seen: dict[str, int] = {}
    resolved_root = root.resolve()
    remote = read_settings(root)[0].remote
    for lineno, line_bytes in enumerate(raw.removeprefix(b"\xef\xbb\xbf").splitlines(), start=1):
        if not line_bytes.strip():
            continue
        try:
            data = json.loads(line_bytes.decode("utf-8"))
        except UnicodeDecodeError:
            problems.add(meta, lineno, None, "not UTF-8 text")
            continue
        except (json.JSONDecodeError, RecursionError) as exc:
            detail = (
                f"{exc.msg} at column {exc.colno}"
                if isinstance(exc, json.JSONDecodeError)
                else "nested too deeply"
            )
            problems.add(meta, lineno, None, f"unreadable JSON ({detail})")
            continue
        if not isinstance(data, dict):
            problems.add(meta, lineno, None, f"expected a JSON object, got {type(data).__name__}")
            continue
        ok = True
        for key in ("file_name", "id", "expected"):
            if key not in data:
                problems.add(meta, lineno, key, "missing required key")
                ok = False
        row_id = data.get("id")
        if "id" in data and (not isinstance(row_id, str) or not row_id.strip()):
            problems.add(meta, lineno, "id", "must be a non-empty string")
            ok = False
        elif isinstance(row_id, str) and row_id in seen:
            problems.add(
                meta, lineno, "id", f"duplicate id {row_id!r} (first on line {seen[row_id]})"
            )
            ok = False
        elif isinstance(row_id, str):
            seen[row_id] = lineno
        file_name = data.get("file_name")
        if "file_name" in data:
            if not isinstance(file_name, str) or not file_name:
                problems.add(meta, lineno, "file_name", "must be a non-empty relative path")
                ok = False
            elif remote.is_remote(file_name):
                problems.add(
                    meta,
                    lineno,
                    "file_name",
                    f"remote audio ({shown_url(file_name if is_url(file_name) else str(remote.root))}): "
                    "this command reads audio in the dataset folder only",
                    ProblemKind.REMOTE,
                )
                ok = False
            else:
                audio = root / file_name
                try:
                    inside = audio.resolve().is_relative_to(resolved_root)
                except (OSError, RuntimeError):
                    inside = False
                if not inside:
                    problems.add(
                        meta, lineno, "file_name", f"{file_name!r} leaves the dataset folder"
                    )
                    ok = False
                elif not audio.is_file():
                    problems.add(meta, lineno, "file_name", f"audio file not found: {audio}")
                    ok = False
                elif audio.stat().st_size == 0:
                    problems.add(meta, lineno, "file_name", f"audio file is empty: {audio}")
                    ok = False
        tags = data.get("tags", {})
        if tags is not None and (
            not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())
        ):
            problems.add(meta, lineno, "tags", "must be an object of strings")
            ok = False
        if ok:
            rows.append(MetadataRow(lineno, data))
    if not rows and not problems:
        problems.add(meta, None, None, "the dataset has no rows")
    problems.raise_if_any()
    return RawDataset(root, tuple(rows))


def row_json(row: Mapping[str, Any]) -> str:
    """One metadata row as one canonical JSON line (key order as given, UTF-8 kept)."""
    return json.dumps(row, ensure_ascii=False, separators=(", ", ": "))


def audio_file_name(row_id: str, audio_format: str) -> str:
    """The file name a tool gives a row's audio: `audio/<id>.<format>`, unsafe characters replaced."""
    return f"{AUDIO_DIR}/{_UNSAFE.sub('_', row_id)}.{audio_format}"


class DatasetWriter:
    """Builds a dataset folder beside `out` and puts it in place only when complete (`commit`)."""

    def __init__(self, out: str | Path, *, force: bool = False) -> None:
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise FileExistsError(f"{self.out} exists and is not a folder")
        if self.out.is_dir() and any(self.out.iterdir()) and not force:
            raise FileExistsError(
                f"{self.out} exists and is not empty; pass --force (force=True) to replace its "
                f"{METADATA_FILE} and {AUDIO_DIR}/ (other files in it are kept)"
            )
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", dir=self.out.parent))
        umask = os.umask(0)
        os.umask(umask)
        self.staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 would become the dataset folder's mode
        self.audio_dir = self.staging / AUDIO_DIR
        self.audio_dir.mkdir()
        self.rows: list[dict[str, Any]] = []
        self._names: dict[str, str] = {}

    def path_for(self, file_name: str, row_id: str) -> Path:
        """Where to write the audio of `file_name` (a path under audio/); each name once."""
        if file_name in self._names:
            raise ValueError(
                f"rows {self._names[file_name]!r} and {row_id!r} would both write {file_name}"
            )
        self._names[file_name] = row_id
        return self.staging / file_name

    def add_row(self, row: dict[str, Any]) -> None:
        """Append a metadata row (written by commit, in the order added)."""
        self.rows.append(row)

    def commit(self) -> Path:
        """Write metadata.jsonl and move the folder (or its metadata and audio/) into place."""
        meta = self.staging / METADATA_FILE
        meta.write_text("".join(row_json(r) + "\n" for r in self.rows), encoding="utf-8")
        if not self.out.exists() or (self.out.is_dir() and not any(self.out.iterdir())):
            with contextlib.suppress(FileNotFoundError):
                self.out.rmdir()
            os.replace(self.staging, self.out)
            return self.out
        old_audio = self.out / AUDIO_DIR
        retired = None
        if old_audio.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{AUDIO_DIR}.old.", dir=self.out))
            os.replace(old_audio, retired / AUDIO_DIR)
        os.replace(self.audio_dir, old_audio)
        os.replace(meta, self.out / METADATA_FILE)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
        shutil.rmtree(self.staging, ignore_errors=True)
        return self.out

    def discard(self) -> None:
        """Remove the staging folder (nothing was put in place)."""
        shutil.rmtree(self.staging, ignore_errors=True)


@contextlib.contextmanager
def writing_dataset(out: str | Path, *, force: bool = False) -> Iterator[DatasetWriter]:
    """A DatasetWriter put in place when the block completes; if the block fails, nothing is."""
    writer = DatasetWriter(out, force=force)
    try:
        yield writer
        writer.commit()
    finally:
        writer.discard()
