"""A project: its root, where cassettes and reports live, and its `[tool.audio-evals]` settings."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ProjectError(ValueError):
    """A project setting that cannot be read, naming the file."""


def find_root(start: Path) -> Path:
    """The nearest directory at or above `start` holding pyproject.toml (else `start`)."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return start


def read_settings(root: Path) -> dict[str, Any]:
    """The `[tool.audio-evals]` table of the project's pyproject.toml (empty when there is none)."""
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path}: invalid TOML: {exc}") from None
    table = data.get("tool", {}).get("audio-evals", {})
    if not isinstance(table, dict):
        raise ProjectError(f"{path}: [tool.audio-evals] must be a table")
    return dict(table)


@dataclass(frozen=True)
class Project:
    """Where a run reads and writes: the root, the cassette library, the reports folder."""

    root: Path
    cassette_dir: Path
    reports_dir: Path
    settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def at(
        cls,
        root: Path | str | None = None,
        *,
        cassette_dir: Path | str | None = None,
        reports_dir: Path | str | None = None,
    ) -> Project:
        """The project at `root` (default: found from the current directory)."""
        base = Path(root).resolve() if root is not None else find_root(Path.cwd())
        return cls(
            root=base,
            cassette_dir=Path(cassette_dir) if cassette_dir else base / "cassettes",
            reports_dir=Path(reports_dir) if reports_dir else base / "reports",
            settings=read_settings(base),
        )

    def relative(self, path: Path | str) -> str:
        """`path` relative to the root when it is inside it (as reports show paths)."""
        try:
            return str(Path(path).resolve().relative_to(self.root))
        except ValueError:
            return str(path)
