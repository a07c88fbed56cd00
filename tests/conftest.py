"""Shared fixtures for the harness's own tests."""

from __future__ import annotations

import math
import os
import re
import shutil
import struct
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def require_shared(*paths: Path) -> None:
    """Skip the test, with the reason, when any of these files under ../shared is absent."""
    for path in paths:
        if not path.exists():
            pytest.skip(
                f"{path} is absent (../shared is beside the repo in CI and on developer machines)"
            )


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    require_shared(path)
    return path


def run_pytest(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run pytest in a subprocess in a scratch project, as a user would (no key, no CI summary)."""
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "PYTEST_")) and k != "GITHUB_STEP_SUMMARY"
    }
    full_env.update(env or {})
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",
            "-rs",
            *args,
        ],
        cwd=root,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def write_tone(path: Path, seconds: float = 0.5, rate: int = 16000, freq: float = 440.0) -> Path:
    """Write a real 16-bit mono WAV file holding a sine tone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(seconds * rate)
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(n)
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return path


def require_tool(name: str) -> str:
    """The path of a Debian tool, or skip with the reason when it is missing."""
    found = shutil.which(name)
    if not found:
        pytest.skip(f"`{name}` is not installed (apt-get install {name}); .ci/run installs it")
    return found


# Flags that work for Debian's chromium here: no sandbox (root), no GPU, nothing that phones home.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
)


def chromium_path() -> str:
    """Debian's chromium, or skip with the reason (.ci/run installs it)."""
    found = shutil.which("chromium")
    if not found:
        pytest.skip("`chromium` is not installed (apt-get install chromium); .ci/run installs it")
    return found


def launch_chromium(playwright: Any, executable: str) -> Any:
    """A headless chromium from the system's binary, driven by Playwright (which downloads none)."""
    return playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))


GATE_LINE = re.compile(r"^(PASS|FAIL|N/E) +(.+?): (.*)$")


def both(proc: subprocess.CompletedProcess[str]) -> str:
    """stdout and stderr of a run."""
    return proc.stdout + proc.stderr


def gate_lines(out: str) -> dict[str, tuple[str, str]]:
    """The gate verdicts of the terminal summary: name -> (PASS|FAIL|N/E, detail)."""
    _, sep, section = out.partition("audio-evals gates: ")
    assert sep, f"no gate section in the output:\n{out}"
    found = {}
    for line in section.splitlines()[1:]:
        m = GATE_LINE.match(line)
        if m:
            found[m.group(2)] = (m.group(1), m.group(3))
    return found
