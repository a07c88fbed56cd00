"""Bad input, reported whole: every problem with its file, line, field and kind, raised together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

SHOWN_PROBLEMS = 20
"""Problems an error message lists (the rest are counted; `audio-evals validate` lists them all)."""


class ProblemKind(StrEnum):
    """What kind of thing is wrong with a user's file."""

    FILE = "file"
    ENCODING = "encoding"
    JSON = "json"
    MISSING_KEY = "missing_key"
    UNKNOWN_KEY = "unknown_key"
    TYPE = "type"
    DUPLICATE_ID = "duplicate_id"
    PATH = "path"
    AUDIO = "audio"
    LIMIT = "limit"
    LABEL = "label"
    UNKNOWN_LABEL = "unknown_label"
    SETTINGS = "settings"
    SPEC = "spec"
    REMOTE = (
        "remote"  # remote audio: a store's backend not installed, a file that cannot be fetched
    )


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a user's file: where (file, line, field), its kind and what."""

    path: Path
    line: int | None
    field: str | None
    kind: ProblemKind
    message: str

    def __str__(self) -> str:
        where = str(self.path) + (f":{self.line}" if self.line is not None else "")
        what = f" field {self.field!r}:" if self.field else ""
        return f"{where}:{what} {self.message}"


class ProblemsError(ValueError):
    """Every problem found in the input, so a user fixes them all in one pass; the first one's
    place is also in `.path`, `.line`, `.field` and `.message`."""

    title = "problems"

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("a ProblemsError needs at least one problem")
        self.problems = list(problems)
        first = self.problems[0]
        self.path, self.line, self.field, self.message = (
            first.path,
            first.line,
            first.field,
            first.message,
        )
        if len(self.problems) == 1:
            super().__init__(str(first))
            return
        shown = [f"  {p}" for p in self.problems[:SHOWN_PROBLEMS]]
        more = len(self.problems) - len(shown)
        super().__init__(
            f"{len(self.problems)} {self.title}:\n"
            + "\n".join(shown)
            + (f"\n  ... and {more} more (audio-evals validate lists them all)" if more else "")
        )


class ProblemList:
    """Collects problems while a file is checked; `raise_if_any()` at the end."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(
        self,
        path: Path,
        line: int | None,
        field: str | None,
        message: str,
        kind: ProblemKind = ProblemKind.SPEC,
    ) -> None:
        """Note one problem."""
        self.problems.append(Problem(path, line, field, kind, message))

    def __bool__(self) -> bool:
        return bool(self.problems)

    def raise_if_any(self) -> None:
        """Raise a ProblemsError holding every problem noted (by file and line), if there is one."""
        if self.problems:
            raise ProblemsError(sorted(self.problems, key=lambda p: (str(p.path), p.line or 0)))
