"""Fixtures for the local server tests: one server per session, paths to shared speech."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from audio_evals.local import LocalServer

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
REAL_SPEECH = SHARED / "real-speech"
PERSON_WAV = REAL_SPEECH / "instructor" / "openai-audio-example_output.wav"


def shared_file(*parts: str) -> Path:
    """Path of a file under shared/, or skip the test when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared speech file not found: {path} (shared/ sits next to the repo)")
    return path


def audio_part(path: Path, fmt: str = "wav") -> dict:
    """An OpenAI chat content part with the file's audio."""
    data = base64.b64encode(path.read_bytes()).decode()
    return {"type": "input_audio", "input_audio": {"data": data, "format": fmt}}


@pytest.fixture(scope="session")
def local_server() -> Iterator[LocalServer]:
    """The local OpenAI-compatible server, started once for the whole session."""
    with LocalServer(seed=1) as server:
        yield server


@pytest.fixture
def server(local_server: LocalServer) -> LocalServer:
    """The session server with its counters zeroed."""
    local_server.reset_stats()
    return local_server


@pytest.fixture
def client(server: LocalServer) -> OpenAI:
    """A plain openai client on the local server (no retries, so faults surface)."""
    return OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0, timeout=30)


@pytest.fixture
def person_wav() -> Path:
    """The instructor example recording (2.2 s, 24 kHz)."""
    return shared_file("real-speech", "instructor", "openai-audio-example_output.wav")


REPORT: list[str] = []


@pytest.fixture
def report() -> list[str]:
    """Lines for the 'local server measurements' section of the terminal summary."""
    return REPORT


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the measured figures (WER, clean vs degraded) at the end of the run."""
    if REPORT:
        terminalreporter.section("audio-evals local server measurements")
        for line in REPORT:
            terminalreporter.write_line(line)
