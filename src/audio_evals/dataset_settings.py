"""Dataset-level settings: an optional `dataset.toml` beside `metadata.jsonl`, strictly validated.

```toml
allow_outside_paths = false   # true: file_name may leave the folder (../x.wav, /abs/x.wav, a symlink out)

[limits]                      # default: OpenAI's (audio_evals.limits)
max_bytes = 26214400          # the largest audio file as sent, in bytes
max_seconds = 1500            # the longest clip, in seconds
```

Unknown keys and wrong types are errors naming the file and key. Later settings that concern a
whole dataset (remote audio, a cache) belong here too.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .limits import OPENAI_LIMITS, AudioLimits

SETTINGS_FILE = "dataset.toml"
_TOP_KEYS = {"allow_outside_paths", "limits"}
_LIMIT_KEYS = {"max_bytes", "max_seconds"}


@dataclass(frozen=True)
class DatasetSettings:
    """What a dataset's `dataset.toml` says (the defaults when it has none)."""

    allow_outside_paths: bool = False
    limits: AudioLimits = field(default_factory=lambda: OPENAI_LIMITS)


@dataclass(frozen=True)
class SettingsProblem:
    """One thing wrong in `dataset.toml`: the key (None for the whole file) and why."""

    key: str | None
    message: str


def read_settings(root: Path) -> tuple[DatasetSettings, list[SettingsProblem]]:
    """The settings of the dataset folder `root`, and every problem found in its `dataset.toml`."""
    path = root / SETTINGS_FILE
    if not path.is_file():
        return DatasetSettings(), []
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        return DatasetSettings(), [SettingsProblem(None, f"not UTF-8 text ({exc.reason})")]
    except tomllib.TOMLDecodeError as exc:
        return DatasetSettings(), [SettingsProblem(None, f"unreadable TOML ({exc})")]
    except OSError as exc:
        return DatasetSettings(), [SettingsProblem(None, f"cannot read it: {exc.strerror or exc}")]
    problems = [
        SettingsProblem(key, f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
        for key in sorted(set(data) - _TOP_KEYS)
    ]
    allow = data.get("allow_outside_paths", False)
    if not isinstance(allow, bool):
        problems.append(SettingsProblem("allow_outside_paths", "must be true or false"))
        allow = False
    limits = OPENAI_LIMITS
    table = data.get("limits", {})
    if not isinstance(table, dict):
        problems.append(SettingsProblem("limits", "must be a table ([limits])"))
    else:
        limits, more = _limits(table)
        problems += more
    return DatasetSettings(allow_outside_paths=allow, limits=limits), problems


def _limits(table: dict[str, Any]) -> tuple[AudioLimits, list[SettingsProblem]]:
    problems = [
        SettingsProblem(f"limits.{key}", f"unknown key (known: {', '.join(sorted(_LIMIT_KEYS))})")
        for key in sorted(set(table) - _LIMIT_KEYS)
    ]
    max_bytes = table.get("max_bytes", OPENAI_LIMITS.max_bytes)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        problems.append(SettingsProblem("limits.max_bytes", "must be a whole number of bytes > 0"))
        max_bytes = OPENAI_LIMITS.max_bytes
    max_seconds = table.get("max_seconds", OPENAI_LIMITS.max_seconds)
    if (
        isinstance(max_seconds, bool)
        or not isinstance(max_seconds, int | float)
        or not 0 < max_seconds < float("inf")
    ):
        problems.append(SettingsProblem("limits.max_seconds", "must be a number of seconds > 0"))
        max_seconds = OPENAI_LIMITS.max_seconds
    return AudioLimits(max_bytes=max_bytes, max_seconds=float(max_seconds)), problems
