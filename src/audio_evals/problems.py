"""Bad input found by a dataset tool: every problem with its file, line and field, raised together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a user's file: where (file, line, field) and what."""

    path: Path
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = str(self.path) + (f":{self.line}" if self.line is not None else "")
        what = f" field {self.field!r}:" if self.field else ""
        return f"{where}:{what} {self.message}"


class ProblemsError(ValueError):
    """Every problem found in the input, so a user can fix them all in one pass (by file and line)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: (str(p.path), p.line or 0)))
        count = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{count} problem{'' if count == 1 else 's'}:\n{lines}")


class ProblemList:
    """Collects problems while a file is checked; `raise_if_any()` at the end."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: Path, line: int | None, field: str | None, message: str) -> None:
        """Note one problem."""
        self.problems.append(Problem(path, line, field, message))

    def __bool__(self) -> bool:
        return bool(self.problems)

    def raise_if_any(self) -> None:
        """Raise a ProblemsError holding every problem noted, if there is one."""
        if self.problems:
            raise ProblemsError(self.problems)
