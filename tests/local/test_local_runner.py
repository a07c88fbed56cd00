"""LocalServer lifecycle and the serve command line."""

from __future__ import annotations

import argparse
import socket

import httpx2
import pytest

from audio_evals.local import LocalServer, LocalServerError
from audio_evals.local.serve import add_serve_arguments, settings_from_args


def test_serve_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args(
        [
            "--port",
            "0",
            "--rate-429",
            "0.1",
            "--latency-ms",
            "50",
            "--api-key",
            "k",
            "--fail-first",
            "2",
        ]
    )
    settings = settings_from_args(args)
    assert settings.api_key == "k"
    assert (
        settings.faults.rate_429 == 0.1
        and settings.faults.latency_ms == 50
        and settings.faults.fail_first == 2
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--rate-500", "1.5"])


def test_port_in_use_gives_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(LocalServerError, match="cannot listen"):
            LocalServer(port=port, preload=False, startup_timeout=20).start()


def test_stop_ends_the_process() -> None:
    server = LocalServer(preload=False).start()
    url = server.base_url
    assert server.running and httpx2.get(url + "/models").status_code == 200
    proc = server._proc
    server.stop()
    assert proc is not None and proc.poll() is not None
    assert not server.running
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(url + "/models", timeout=2)
    with pytest.raises(LocalServerError):
        _ = server.base_url


def test_stats_shape(local_server: LocalServer) -> None:
    stats = local_server.reset_stats()
    assert set(stats) == {
        "requests",
        "in_flight",
        "max_in_flight",
        "by_status",
        "by_path",
        "faults",
    }
    assert stats["requests"] == 0
