"""Labeled audio datasets in the Hugging Face "audiofolder" layout: load, validate, iterate.

Loading checks every row and collects every problem before raising one `DatasetError` that lists
them all (file, line, field). Checks at load are the cheap ones (JSON, keys, ids, labels against
the response model with unknown keys refused, paths inside the folder, the audio's header and the
API's limits); decoding every sample is `audio-evals validate`'s job (`audio_evals.validation`).
A remote row (a URL in `file_name`, or a dataset with `[remote] root`) is resolved without any
network: its header, limits and `sha256` are checked when its audio is fetched
(`audio_evals.remote_audio`).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, AliasPath, BaseModel, ValidationError

from .audio import AudioFileError, AudioFormat, AudioInfo, format_for_suffix, probe
from .audio_cache import is_digest
from .dataset_settings import SETTINGS_FILE, DatasetSettings, read_settings
from .limits import CHAT_AUDIO_FORMATS
from .problems import Problem, ProblemKind, ProblemsError

if TYPE_CHECKING:
    from .remote_sources import RemoteAudio, RemoteRows

METADATA_FILE = "metadata.jsonl"
SCHEMA_KEY = "$schema"
_KNOWN_KEYS = {
    "file_name",
    "id",
    "expected",
    "tags",
    "transcript",
    "must_pass",
    "sha256",
    SCHEMA_KEY,
}
_BOM = b"\xef\xbb\xbf"
# Other label files a team may have in the folder, and how to turn them into metadata.jsonl.
_FOREIGN_METADATA = ("metadata.csv", "metadata.tsv", "metadata.xlsx")


class DatasetError(ProblemsError):
    """A dataset that cannot be used: every problem found (`.problems`), the first in `.path` etc."""

    title = "problems in the dataset"

    def __init__(
        self,
        path: Path,
        line: int | None,
        field: str | None,
        message: str,
        problems: list[Problem] | None = None,
    ) -> None:
        super().__init__(problems or [Problem(path, line, field, ProblemKind.FILE, message)])

    @classmethod
    def of(cls, problems: list[Problem]) -> DatasetError:
        """One error for all these problems (at least one)."""
        first = problems[0]
        return cls(first.path, first.line, first.field, first.message, problems)


@dataclass(frozen=True)
class Case:
    """One labeled recording: its audio file, the expected record and its tags.

    For a remote row, `audio_path` is the file its audio has in the local cache once fetched
    (`remote` says where from); `sha256` is the row's digest of the audio, when it gives one."""

    id: str
    audio_path: Path
    expected: BaseModel
    tags: Mapping[str, str] = field(default_factory=dict)
    transcript: str | None = None
    must_pass: bool = False
    line: int = 0
    audio: AudioInfo | None = None
    remote: RemoteAudio | None = None
    sha256: str | None = None

    @property
    def audio_format(self) -> AudioFormat | None:
        """The audio container, from the file name (`wav`, `mp3`, `flac`, ...)."""
        return format_for_suffix(self.audio_path)

    def read_audio(self) -> bytes:
        """The audio file's bytes, read now (cases do not hold audio in memory)."""
        return self.audio_path.read_bytes()


@dataclass(frozen=True)
class Dataset:
    """A validated set of cases bound to one response model."""

    name: str
    root: Path
    response_model: type[BaseModel]
    cases: tuple[Case, ...]
    settings: DatasetSettings = field(default_factory=DatasetSettings)
    metadata: Path | None = None

    @property
    def metadata_file(self) -> Path:
        """The metadata file the cases were read from."""
        return self.metadata or self.root / METADATA_FILE

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    def __len__(self) -> int:
        return len(self.cases)

    @property
    def has_transcripts(self) -> bool:
        """Whether every case carries a reference transcript."""
        return bool(self.cases) and all(c.transcript for c in self.cases)

    def filter(self, predicate: Callable[[Case], bool], name: str | None = None) -> Dataset:
        """A dataset of the cases that satisfy `predicate` (e.g. one condition or speaker)."""
        kept = tuple(c for c in self.cases if predicate(c))
        if not kept:
            raise DatasetError(self.root / METADATA_FILE, None, None, "the filter keeps no case")
        return Dataset(
            name=name or self.name,
            root=self.root,
            response_model=self.response_model,
            cases=kept,
            settings=self.settings,
            metadata=self.metadata,
        )

    def case(self, case_id: str) -> Case:
        """The case with this id."""
        for c in self.cases:
            if c.id == case_id:
                return c
        raise KeyError(case_id)


@dataclass
class LoadResult:
    """What reading a dataset found: the rows that are usable and every problem."""

    meta: Path
    root: Path
    settings: DatasetSettings
    cases: list[Case]
    problems: list[Problem]
    audio: dict[int, Path]  # line -> audio whose path and header are fine (labels may not be)


def load_dataset(
    path: str | Path, response_model: type[BaseModel], name: str | None = None
) -> Dataset:
    """Load `<path>/metadata.jsonl`, validating every row; all problems raise one DatasetError."""
    result = read_dataset(path, response_model)
    if result.problems:
        raise DatasetError.of(result.problems)
    return Dataset(
        name=name or result.root.name,
        root=result.root,
        response_model=response_model,
        cases=tuple(result.cases),
        settings=result.settings,
        metadata=result.meta,
    )


def metadata_path(path: str | Path) -> Path:
    """The `metadata.jsonl` a dataset argument names (the folder's, or the file itself)."""
    given = Path(path)
    return given / METADATA_FILE if given.is_dir() or not given.suffix else given


def read_dataset(path: str | Path, response_model: type[BaseModel]) -> LoadResult:
    """Read a dataset without raising: its usable cases and every problem found."""
    meta = metadata_path(path)
    root = meta.parent
    result = LoadResult(meta, root, DatasetSettings(), [], [], {})
    if meta.name != METADATA_FILE and meta.suffix.lower() in (".csv", ".tsv", ".xlsx"):
        result.problems.append(_foreign(meta, meta))
        return result
    if not meta.is_file():
        foreign = [root / n for n in _FOREIGN_METADATA if (root / n).is_file()]
        result.problems.append(
            _foreign(meta, foreign[0])
            if foreign
            else Problem(
                meta,
                None,
                None,
                ProblemKind.FILE,
                f"no {METADATA_FILE} found (expected the audiofolder layout)",
            )
        )
        return result
    settings, settings_problems = read_settings(root)
    result.settings = settings
    result.problems += [
        Problem(root / SETTINGS_FILE, None, p.key, ProblemKind.SETTINGS, p.message)
        for p in settings_problems
    ]
    try:
        raw = meta.read_bytes()
    except OSError as exc:
        result.problems.append(
            Problem(meta, None, None, ProblemKind.FILE, f"cannot read: {exc.strerror}")
        )
        return result
    reader = _RowReader(meta, root, response_model, settings)
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    rows = 0
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        rows += 1
        reader.read(lineno, line)
    result.cases = reader.cases
    result.problems += reader.problems
    result.audio = reader.audio
    if rows == 0:
        result.problems.append(
            Problem(meta, None, None, ProblemKind.FILE, "the dataset has no rows")
        )
    return result


def _foreign(meta: Path, found: Path) -> Problem:
    return Problem(
        meta,
        None,
        None,
        ProblemKind.FILE,
        f"found {found.name}, but datasets are read from {METADATA_FILE} (JSON Lines): "
        f"{found.suffix.lstrip('.').upper()} labels are not loaded directly. Convert them with "
        f"`audio-evals import {found} -o <dataset folder> --model module:Class`",
    )


class _RowReader:
    """Parses rows one at a time, keeping usable cases and every problem."""

    def __init__(
        self, meta: Path, root: Path, model: type[BaseModel], settings: DatasetSettings
    ) -> None:
        self.meta = meta
        self.root_text = str(root)
        self.real_root = os.path.realpath(root)
        self.real_prefix = os.path.join(self.real_root, "")
        self.real_folders: dict[str, str] = {}
        self.model = model
        self.settings = settings
        self.cases: list[Case] = []
        self.problems: list[Problem] = []
        self.audio: dict[int, Path] = {}
        self.seen: dict[str, int] = {}
        self._remote: RemoteRows | None = None

    @property
    def remote(self) -> RemoteRows:
        """The resolver of remote rows (made, and fsspec imported, at the first remote row)."""
        if self._remote is None:
            from .remote_sources import RemoteRows

            self._remote = RemoteRows(self.settings.remote, Path(self.root_text))
        return self._remote

    def problem(self, line: int, fld: str | None, kind: ProblemKind, message: str) -> None:
        self.problems.append(Problem(self.meta, line, fld, kind, message))

    def read(self, line: int, data: bytes) -> None:
        before = len(self.problems)
        row = self._json(line, data.rstrip(b"\r"))
        if row is None:
            return
        for key in ("file_name", "id", "expected"):
            if key not in row:
                self.problem(line, key, ProblemKind.MISSING_KEY, "missing required key")
        for key in sorted(set(row) - _KNOWN_KEYS):
            self.problem(
                line,
                key,
                ProblemKind.UNKNOWN_KEY,
                f"unknown key (known: {', '.join(sorted(_KNOWN_KEYS))})",
            )
        case_id = self._id(line, row["id"]) if "id" in row else None
        remote: RemoteAudio | None = None
        if "file_name" in row and self._is_remote(row["file_name"]):
            audio, info, remote = self._remote_audio(line, row["file_name"])
        else:
            audio, info = (
                self._audio(line, row["file_name"]) if "file_name" in row else (None, None)
            )
        sha256 = self._sha256(line, row["sha256"]) if "sha256" in row else None
        expected = self._expected(line, row.get("expected")) if "expected" in row else None
        tags = self._tags(line, row.get("tags"))
        transcript = row.get("transcript")
        if transcript is not None and not isinstance(transcript, str):
            self.problem(line, "transcript", ProblemKind.TYPE, "must be a string or null")
        must_pass = row.get("must_pass", False)
        if not isinstance(must_pass, bool):
            self.problem(line, "must_pass", ProblemKind.TYPE, "must be true or false")
        schema = row.get(SCHEMA_KEY)
        if schema is not None and not isinstance(schema, str):
            self.problem(line, SCHEMA_KEY, ProblemKind.TYPE, "must be a string (the schema file)")
        if audio is not None and remote is None:
            self.audio[line] = audio
        if len(self.problems) > before:
            return
        assert case_id is not None and audio is not None and expected is not None
        self.cases.append(
            Case(
                id=case_id,
                audio_path=audio,
                expected=expected,
                tags=tags,
                transcript=transcript,
                must_pass=must_pass,
                line=line,
                audio=info,
                remote=remote,
                sha256=sha256,
            )
        )

    def _json(self, line: int, data: bytes) -> dict[str, Any] | None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problem(
                line,
                None,
                ProblemKind.ENCODING,
                f"not UTF-8 text (byte 0x{data[exc.start]:02x} at column {exc.start + 1}); "
                "save the file as UTF-8",
            )
            return None
        if "\x00" in text:
            self.problem(
                line,
                None,
                ProblemKind.ENCODING,
                f"a NUL byte at column {text.index(chr(0)) + 1} (binary data in a text file?)",
            )
            return None
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            self.problem(
                line, None, ProblemKind.JSON, f"unreadable JSON ({exc.msg} at column {exc.colno})"
            )
            return None
        except RecursionError:
            self.problem(line, None, ProblemKind.JSON, "JSON nested too deep to read")
            return None
        except ValueError as exc:  # e.g. an integer longer than Python's 4,300-digit limit
            self.problem(line, None, ProblemKind.JSON, f"unreadable JSON value ({exc})")
            return None
        if not isinstance(row, dict):
            self.problem(
                line, None, ProblemKind.JSON, f"expected a JSON object, got {type(row).__name__}"
            )
            return None
        return row

    def _id(self, line: int, case_id: Any) -> str | None:
        if not isinstance(case_id, str) or not case_id.strip():
            self.problem(line, "id", ProblemKind.TYPE, "must be a non-empty string")
            return None
        if case_id in self.seen:
            self.problem(
                line,
                "id",
                ProblemKind.DUPLICATE_ID,
                f"duplicate id {case_id!r} (first on line {self.seen[case_id]})",
            )
            return None
        self.seen[case_id] = line
        return case_id

    def _is_remote(self, file_name: Any) -> bool:
        if not isinstance(file_name, str) or not file_name.strip() or "\x00" in file_name:
            return False  # _audio names the problem
        return self.settings.remote.is_remote(file_name)

    def _remote_audio(
        self, line: int, file_name: str
    ) -> tuple[Path | None, None, RemoteAudio | None]:
        from .remote_sources import RemoteRowError

        try:
            remote, cached = self.remote.resolve(file_name)
        except RemoteRowError as exc:
            self.problem(line, "file_name", exc.kind, str(exc))
            return None, None, None
        return cached, None, remote

    def _sha256(self, line: int, value: Any) -> str | None:
        text = value.strip().lower() if isinstance(value, str) else ""
        text = text.removeprefix("sha256:")
        if not is_digest(text):
            self.problem(
                line,
                "sha256",
                ProblemKind.TYPE,
                "must be the audio's sha256 as 64 hex digits (what `sha256sum` prints)",
            )
            return None
        return text

    def _audio(self, line: int, file_name: Any) -> tuple[Path | None, AudioInfo | None]:
        if not isinstance(file_name, str) or not file_name.strip():
            self.problem(line, "file_name", ProblemKind.TYPE, "must be a non-empty relative path")
            return None, None
        if "\x00" in file_name:
            self.problem(line, "file_name", ProblemKind.PATH, "contains a NUL character")
            return None, None
        given = os.path.join(self.root_text, file_name)
        real, error = self._real(given)
        inside = real == self.real_root or real.startswith(self.real_prefix)
        if error is not None and (error.errno != errno.ENOENT or inside):
            self.problem(line, "file_name", *_path_error(error, given))
            return None, None
        if not inside and not self.settings.allow_outside_paths:
            self.problem(
                line,
                "file_name",
                ProblemKind.PATH,
                f"{file_name!r} leads outside the dataset folder (to {real}); move the file into "
                f"the folder, or set allow_outside_paths = true in {SETTINGS_FILE}",
            )
            return None, None
        if error is not None:
            self.problem(line, "file_name", *_path_error(error, given))
            return None, None
        if not os.path.isfile(real):
            self.problem(line, "file_name", ProblemKind.AUDIO, f"not a file: {given}")
            return None, None
        path = Path(given)
        try:
            info = probe(path)
        except AudioFileError as exc:
            self.problem(line, "file_name", ProblemKind.AUDIO, f"{given}: {exc}")
            return None, None
        limits = self.settings.limits
        for reason in (
            limits.size_problem(info.sent_bytes(CHAT_AUDIO_FORMATS)),
            limits.duration_problem(info.duration),
        ):
            if reason:
                self.problem(line, "file_name", ProblemKind.LIMIT, f"{given}: {reason}")
        return path, info

    def _real(self, given: str) -> tuple[str, OSError | None]:
        """The path with every symlink resolved, and the error opening it (None: it exists).

        The real path of each folder is worked out once (a dataset's files share a few folders);
        a file that is itself a symlink, or a name ending in '.' or '..', is resolved in full."""
        folder, name = os.path.split(given)
        try:
            st = os.lstat(given)
        except OSError as exc:
            return os.path.realpath(given), exc
        if stat.S_ISLNK(st.st_mode) or name in ("", ".", ".."):
            real = os.path.realpath(given)
            try:
                os.stat(given)
            except OSError as exc:
                return real, exc
            return real, None
        real_folder = self.real_folders.get(folder)
        if real_folder is None:
            real_folder = self.real_folders[folder] = os.path.realpath(folder)
        return os.path.join(real_folder, name), None

    def _expected(self, line: int, data: Any) -> BaseModel | None:
        name = self.model.__name__
        if not isinstance(data, dict):
            self.problem(
                line,
                "expected",
                ProblemKind.TYPE,
                f"must be a JSON object (a {name}), got {type(data).__name__}",
            )
            return None
        unknown = unknown_label_keys(data, self.model, "expected")
        for path in unknown:
            self.problem(
                line,
                path,
                ProblemKind.UNKNOWN_LABEL,
                f"{name} has no field {path.rsplit('.', 1)[-1]!r} (a typo? unknown label keys "
                "would be dropped and score as correct)",
            )
        try:
            value = self.model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                self.problem(
                    line,
                    label_field(tuple(err["loc"])),
                    ProblemKind.LABEL,
                    f"label does not validate against {name}: {err['msg']}",
                )
            return None
        except RecursionError:
            self.problem(line, "expected", ProblemKind.LABEL, "label nested too deep to validate")
            return None
        return None if unknown else value

    def _tags(self, line: int, tags: Any) -> dict[str, str]:
        if tags is None:
            return {}
        if not isinstance(tags, dict):
            self.problem(line, "tags", ProblemKind.TYPE, "must be an object of strings")
            return {}
        for key, value in tags.items():
            if not isinstance(value, str):
                self.problem(
                    line,
                    f"tags.{key}",
                    ProblemKind.TYPE,
                    f"tag values must be strings, got {type(value).__name__}",
                )
        return dict(tags)


def _path_error(exc: OSError, given: str) -> tuple[ProblemKind, str]:
    if exc.errno == errno.ENOENT:
        return ProblemKind.AUDIO, f"audio file not found: {given}"
    if exc.errno == errno.ELOOP:
        return ProblemKind.PATH, f"symlink loop at {given}"
    if exc.errno == errno.ENAMETOOLONG:
        return ProblemKind.PATH, f"file name too long for the file system: {str(given)[:80]}..."
    return ProblemKind.PATH, f"cannot open {given}: {exc.strerror or exc}"


def label_field(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a dotted label path (`expected.caller.name`, `expected.items[0]`)."""
    return "expected" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def unknown_label_keys(data: Any, annotation: Any, path: str) -> list[str]:
    """Keys in `data` that validating as `annotation` would ignore (fields the model lacks)."""
    return _walk_unknown(data, _key_plan(annotation), path)


@dataclass(frozen=True)
class _KeyPlan:
    """How to look for unknown keys under one annotation (built once per annotation)."""

    kind: str  # "model", "items" (list/set/tuple[X, ...]), "tuple", "values" (dict), "" (none)
    accepted: Mapping[str, _KeyPlan] = field(default_factory=dict)
    items: tuple[_KeyPlan, ...] = ()


_NO_KEYS = _KeyPlan("")
_PLANS: dict[Any, _KeyPlan] = {}


def _key_plan(annotation: Any) -> _KeyPlan:
    try:
        return _PLANS[annotation]
    except KeyError:
        pass
    except TypeError:  # an unhashable annotation: planned each time
        return _build_plan(annotation)
    _PLANS[annotation] = _NO_KEYS  # a model that refers to itself finds this while building
    plan = _PLANS[annotation] = _build_plan(annotation)
    return plan


def _build_plan(annotation: Any) -> _KeyPlan:
    inner, _ = unwrap_annotation(annotation)
    origin = typing.get_origin(inner)
    args = typing.get_args(inner)
    if origin in (typing.Union, types.UnionType):
        models = [a for a in args if _is_model(unwrap_annotation(a)[0])]
        return _key_plan(models[0]) if len(models) == 1 else _NO_KEYS
    if _is_model(inner) and inner is not annotation:
        return _key_plan(inner)
    if _is_model(inner):
        if inner.model_config.get("extra") == "allow":
            return _NO_KEYS
        fields = inner.model_fields
        plan = _KeyPlan("model", {})
        _PLANS[inner] = plan  # recursion through this model finds the plan being filled
        accepted = typing.cast(dict[str, _KeyPlan], plan.accepted)
        for key, name in _accepted_keys(inner).items():
            accepted[key] = _key_plan(fields[name].annotation)
        return plan
    if origin in (list, set, frozenset) and args:
        return _KeyPlan("items", items=(_key_plan(args[0]),))
    if origin is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis:
            return _KeyPlan("items", items=(_key_plan(args[0]),))
        return _KeyPlan("tuple", items=tuple(_key_plan(a) for a in args))
    if origin is dict and len(args) == 2:
        return _KeyPlan("values", items=(_key_plan(args[1]),))
    return _NO_KEYS


def _walk_unknown(data: Any, plan: _KeyPlan, path: str) -> list[str]:
    kind = plan.kind
    if not kind:
        return []
    found: list[str] = []
    if kind == "model" and isinstance(data, dict):
        for key, sub in data.items():
            inner = plan.accepted.get(key)
            if inner is None:
                found.append(f"{path}.{key}")
            elif inner.kind:
                found += _walk_unknown(sub, inner, f"{path}.{key}")
    elif kind == "items" and isinstance(data, list) and plan.items[0].kind:
        for i, sub in enumerate(data):
            found += _walk_unknown(sub, plan.items[0], f"{path}[{i}]")
    elif kind == "tuple" and isinstance(data, list):
        for i, (sub, inner) in enumerate(zip(data, plan.items, strict=False)):
            found += _walk_unknown(sub, inner, f"{path}[{i}]")
    elif kind == "values" and isinstance(data, dict) and plan.items[0].kind:
        for key, sub in data.items():
            found += _walk_unknown(sub, plan.items[0], f"{path}.{key}")
    return found


def unwrap_annotation(annotation: Any) -> tuple[Any, bool]:
    """The annotation without Annotated and Optional, and whether None is allowed."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        nullable = len(rest) < len(args)
        if len(rest) == 1:
            return unwrap_annotation(rest[0])[0], nullable
        return typing.Union[tuple(rest)], nullable  # noqa: UP007
    return annotation, annotation is type(None) or annotation is Any


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _accepted_keys(cls: type[BaseModel]) -> dict[str, str]:
    """Input keys the model reads, each mapped to its field name."""
    config = cls.model_config
    by_name = bool(config.get("populate_by_name") or config.get("validate_by_name"))
    by_alias = config.get("validate_by_alias", True)
    keys: dict[str, str] = {}
    for name, info in cls.model_fields.items():
        aliases: list[str] = []
        if by_alias:
            alias = info.validation_alias or info.alias
            choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
            for choice in choices:
                if isinstance(choice, str):
                    aliases.append(choice)
                elif isinstance(choice, AliasPath) and isinstance(choice.path[0], str):
                    aliases.append(choice.path[0])
        for key in aliases:
            keys[key] = name
        if by_name or not aliases:
            keys[name] = name
    return keys
