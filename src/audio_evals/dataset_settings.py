"""Dataset-level settings: an optional `dataset.toml` beside `metadata.jsonl`, strictly validated.

```toml
allow_outside_paths = false   # true: file_name may leave the folder (../x.wav, /abs/x.wav, a symlink out)

[limits]                      # default: OpenAI's (audio_evals.limits)
max_bytes = 26214400          # the largest audio file as sent, in bytes
max_seconds = 1500            # the longest clip, in seconds

[remote]                      # audio that lives elsewhere, read through fsspec (audio_evals.remote_audio)
root = "s3://acme-calls/2026/"   # a row's relative file_name is read under this URL
cache = "~/.cache/audio-evals/audio"   # the local audio cache (AUDIO_EVALS_AUDIO_CACHE overrides it)
jobs = 8                      # files fetched at once
retries = 3                   # further attempts after a transient error, with backoff
timeout = 300                 # seconds one file may take

[remote.options.s3]           # fsspec storage options per protocol (never credentials)
endpoint_url = "https://storage.example.com"
```

Unknown keys and wrong types are errors naming the file and key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .limits import OPENAI_LIMITS, AudioLimits

SETTINGS_FILE = "dataset.toml"
_TOP_KEYS = {"allow_outside_paths", "limits", "remote"}
_LIMIT_KEYS = {"max_bytes", "max_seconds"}
_REMOTE_KEYS = {"root", "cache", "jobs", "retries", "timeout", "options"}
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
"""What makes a `file_name` (or a remote root) a URL: a scheme and `://`."""
# Storage options that hold credentials: those come from the environment, never from a file in git.
_SECRET_OPTION = re.compile(
    r"(^|_)(key|secret|token|password|passwd|credentials?|connection_string|auth|authorization"
    r"|cookies?|signature)$",
    re.I,
)
_NON_SECRET_VALUES = {"anon", "google_default", "cache", "cloud", "browser"}  # gcsfs token modes


def is_url(text: str) -> bool:
    """Whether a `file_name` (or a root) is a URL: a scheme and `://`."""
    return bool(URL.match(text))


@dataclass(frozen=True)
class RemoteSettings:
    """Where a dataset's remote audio lives and how it is fetched (`[remote]` in dataset.toml)."""

    root: str | None = None
    cache: str | None = None
    jobs: int = 8
    retries: int = 3
    timeout: float = 300.0
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def is_remote(self, file_name: str) -> bool:
        """Whether a row's audio is read through fsspec (a URL, or any row under a remote root)."""
        return self.root is not None or is_url(file_name)


@dataclass(frozen=True)
class DatasetSettings:
    """What a dataset's `dataset.toml` says (the defaults when it has none)."""

    allow_outside_paths: bool = False
    limits: AudioLimits = field(default_factory=lambda: OPENAI_LIMITS)
    remote: RemoteSettings = field(default_factory=RemoteSettings)


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
    remote = RemoteSettings()
    table = data.get("remote", {})
    if not isinstance(table, dict):
        problems.append(SettingsProblem("remote", "must be a table ([remote])"))
    else:
        remote, more = _remote(table)
        problems += more
    return DatasetSettings(allow_outside_paths=allow, limits=limits, remote=remote), problems


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


def _remote(table: dict[str, Any]) -> tuple[RemoteSettings, list[SettingsProblem]]:
    problems = [
        SettingsProblem(f"remote.{key}", f"unknown key (known: {', '.join(sorted(_REMOTE_KEYS))})")
        for key in sorted(set(table) - _REMOTE_KEYS)
    ]
    default = RemoteSettings()
    root = table.get("root")
    if root is not None and (not isinstance(root, str) or not is_url(root)):
        problems.append(
            SettingsProblem("remote.root", "must be a URL such as 's3://bucket/folder/'")
        )
        root = None
    cache = table.get("cache")
    if cache is not None and (not isinstance(cache, str) or not cache.strip()):
        problems.append(SettingsProblem("remote.cache", "must be a folder path"))
        cache = None
    counts: dict[str, int] = {}
    for key, least in (("jobs", 1), ("retries", 0)):
        value = table.get(key, getattr(default, key))
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            problems.append(SettingsProblem(f"remote.{key}", f"must be a whole number >= {least}"))
            value = getattr(default, key)
        counts[key] = value
    timeout = table.get("timeout", default.timeout)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout < float("inf")
    ):
        problems.append(SettingsProblem("remote.timeout", "must be a number of seconds > 0"))
        timeout = default.timeout
    options, more = _options(table.get("options", {}))
    return (
        RemoteSettings(root, cache, counts["jobs"], counts["retries"], float(timeout), options),
        problems + more,
    )


def _options(table: Any) -> tuple[dict[str, dict[str, Any]], list[SettingsProblem]]:
    """Storage options per protocol; a key that would hold a credential is refused."""
    if not isinstance(table, dict):
        return {}, [SettingsProblem("remote.options", "must be a table of tables per protocol")]
    problems: list[SettingsProblem] = []
    options: dict[str, dict[str, Any]] = {}
    for protocol, values in table.items():
        where = f"remote.options.{protocol}"
        if not isinstance(values, dict):
            problems.append(
                SettingsProblem(
                    where,
                    "must be a table of fsspec storage options, e.g. "
                    '[remote.options.s3] endpoint_url = "..."',
                )
            )
            continue
        secrets = _secret_keys(values, where)
        problems += [
            SettingsProblem(
                key,
                "looks like a credential; credentials never go in a file: give them through "
                "the environment (AWS_ACCESS_KEY_ID, GOOGLE_APPLICATION_CREDENTIALS, "
                "AZURE_STORAGE_KEY, HF_TOKEN, ...) or your cloud's login",
            )
            for key in secrets
        ]
        if not secrets:
            options[protocol] = values
    return options, problems


def _secret_keys(values: Mapping[str, Any], where: str) -> list[str]:
    found = []
    for key, value in values.items():
        if isinstance(value, dict):
            found += _secret_keys(value, f"{where}.{key}")
        elif _SECRET_OPTION.search(key) and not (
            key == "token" and isinstance(value, str) and value in _NON_SECRET_VALUES
        ):
            found.append(f"{where}.{key}")
    return found
