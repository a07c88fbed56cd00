"""External audio programs (sox, flite, espeak-ng): checked up front, run with their errors kept."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Sequence

PEAK_DBFS = -3.0
"""Peak level every synthesised and every degraded clip is normalised to."""

# program -> the Debian package that provides it
DEBIAN_PACKAGES: dict[str, str] = {"sox": "sox", "flite": "flite", "espeak-ng": "espeak-ng"}


class ToolError(RuntimeError):
    """A program or service the tools need is missing, lacks a feature, or failed on an input."""


def require_program(name: str) -> str:
    """The path of a program on PATH, or a ToolError naming the package to install."""
    found = shutil.which(name)
    if found is None:
        package = DEBIAN_PACKAGES.get(name, name)
        raise ToolError(f"{name!r} was not found on PATH (Debian: apt-get install {package})")
    return found


def run_program(argv: Sequence[str]) -> None:
    """Run a program; a ToolError with its command line and stderr if it fails."""
    require_program(argv[0])
    proc = subprocess.run(list(argv), capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        stderr = proc.stderr.strip()[-2000:] or "(no error output)"
        raise ToolError(f"{argv[0]} failed (exit {proc.returncode}): {' '.join(argv)}\n{stderr}")


@functools.cache
def flite_voices() -> tuple[str, ...]:
    """The voices compiled into the installed flite (`flite -lv`)."""
    require_program("flite")
    out = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout
    return tuple(out.partition(":")[2].split())


@functools.cache
def espeak_voice_exists(name: str) -> bool:
    """Whether espeak-ng knows this voice (it exits non-zero for an unknown one)."""
    require_program("espeak-ng")
    proc = subprocess.run(["espeak-ng", "-v", name, "-q", "x"], capture_output=True, text=True)
    return proc.returncode == 0


@functools.cache
def sox_formats() -> frozenset[str]:
    """The file formats the installed sox reads and writes (`sox -h`)."""
    require_program("sox")
    out = subprocess.run(["sox", "-h"], capture_output=True, text=True).stdout
    found = re.search(r"AUDIO FILE FORMATS:(.*)", out)
    return frozenset(found.group(1).split()) if found else frozenset()


def require_sox_format(fmt: str) -> None:
    """A ToolError unless sox can handle `fmt` (MP3 needs libsox-fmt-mp3 on Debian)."""
    if fmt not in sox_formats():
        hint = " (Debian: apt-get install libsox-fmt-mp3)" if fmt == "mp3" else ""
        raise ToolError(f"sox cannot handle {fmt} files{hint}")
