"""Replay opens no socket under `pytest evals`: code that reaches around vcrpy fails its case;
`--allowed-hosts` (regexes, as pytest-recording's) lets chosen hosts through."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import both, run_pytest
from .conftest import suite_text, variant, write_dataset, write_project

APP = """
import os
import socket

from evals.models import Person


def extract(case, variant):
    '''Asks a service of its own over a raw socket (nothing vcrpy patches), then answers.'''
    with socket.create_connection(("127.0.0.1", int(os.environ["SIDE_PORT"])), timeout=5) as s:
        s.sendall(b"ping")
    return Person(name="Jason", age=20)
"""


@pytest.fixture
def side_service() -> Iterator[tuple[int, list[int]]]:
    """A loopback TCP service that counts the connections it accepts."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def test_replay_blocks_a_raw_socket_unless_its_host_is_allowed(
    tmp_path: Path, side_service: tuple[int, list[int]]
) -> None:
    port, accepted = side_service
    env = {"SIDE_PORT": str(port)}
    root = write_project(
        tmp_path,
        {"intro": suite_text("people", variant("v", extract="evals.app:extract"))},
        files={"evals/app.py": APP},
    )
    write_dataset(root, "people", [("a", "jason"), ("b", "maria")])
    recorded = run_pytest(root, "evals", "--record-mode=once", env=env)
    assert recorded.returncode == 0, both(recorded)
    assert len(accepted) == 2  # recording runs the code as it is

    blocked = run_pytest(root, "evals", "-rf", env=env)
    assert blocked.returncode == 1, both(blocked)
    assert len(accepted) == 2  # replay connected nowhere
    assert blocked.stdout.count("network blocked in replay: a connection to 127.0.0.1:") >= 2
    assert "network_blocked" in blocked.stdout

    allowed = run_pytest(root, "evals", r"--allowed-hosts=127\.0\.0\.\d+", env=env)
    assert allowed.returncode == 0, both(allowed)
    assert len(accepted) == 4
    by_name = run_pytest(root, "evals", "--allowed-hosts=localhost", env=env)
    assert by_name.returncode == 0, both(by_name)  # a name allows the addresses it resolves to
    assert len(accepted) == 6

    bad = run_pytest(root, "evals", "--allowed-hosts=127.0.0.(", env=env)
    assert bad.returncode == 4, both(bad)
    assert "--allowed-hosts: allowed host '127.0.0.(' is not a regular expression" in both(bad)
