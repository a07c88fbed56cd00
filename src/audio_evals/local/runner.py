"""Start and stop the local OpenAI-compatible server in a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any

# urllib without proxies: the server is always on loopback
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

_FLAGS = {
    "seed": "--seed",
    "latency_ms": "--latency-ms",
    "latency_jitter_ms": "--latency-jitter-ms",
    "rate_429": "--rate-429",
    "rate_500": "--rate-500",
    "rate_503": "--rate-503",
    "rate_drop": "--rate-drop",
    "rate_slow": "--rate-slow",
    "slow_ms": "--slow-ms",
    "rate_bad_json": "--rate-bad-json",
    "rate_schema_mismatch": "--rate-schema-mismatch",
    "fail_first": "--fail-first",
    "fail_first_status": "--fail-first-status",
    "retry_after_ms": "--retry-after-ms",
    "asr_workers": "--asr-workers",
    "default_year": "--default-year",
}


class LocalServerError(RuntimeError):
    """Raised when the local server cannot be started or does not answer."""


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


class LocalServer:
    """The local server in a child process, on a free loopback port: `with LocalServer() as s: s.base_url`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        seed: int = 0,
        latency_ms: float = 0.0,
        latency_jitter_ms: float = 0.0,
        rate_429: float = 0.0,
        rate_500: float = 0.0,
        rate_503: float = 0.0,
        rate_drop: float = 0.0,
        rate_slow: float = 0.0,
        slow_ms: float = 30_000.0,
        rate_bad_json: float = 0.0,
        rate_schema_mismatch: float = 0.0,
        fail_first: int = 0,
        fail_first_status: int = 429,
        retry_after_ms: int = 100,
        asr_workers: int | None = None,
        default_year: int | None = None,
        preload: bool = True,
        startup_timeout: float = 30.0,
        log_level: str = "warning",
        python: str | None = None,
    ) -> None:
        """Keep the options; nothing starts until start() or `with`."""
        self.host = host
        self.port = port
        self.api_key = api_key
        self.options: dict[str, Any] = {
            "seed": seed,
            "latency_ms": latency_ms,
            "latency_jitter_ms": latency_jitter_ms,
            "rate_429": rate_429,
            "rate_500": rate_500,
            "rate_503": rate_503,
            "rate_drop": rate_drop,
            "rate_slow": rate_slow,
            "slow_ms": slow_ms,
            "rate_bad_json": rate_bad_json,
            "rate_schema_mismatch": rate_schema_mismatch,
            "fail_first": fail_first,
            "fail_first_status": fail_first_status,
            "retry_after_ms": retry_after_ms,
            "asr_workers": asr_workers,
            "default_year": default_year,
        }
        self.preload = preload
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self.python = python or sys.executable
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._log_path: Path | None = None
        self._finalizer: weakref.finalize | None = None
        self.bound_port: int | None = None

    # ------------------------------------------------------------------ addresses
    @property
    def url(self) -> str:
        """The server's root URL, e.g. http://127.0.0.1:PORT."""
        if self.bound_port is None:
            raise LocalServerError("the local server is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.bound_port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. http://127.0.0.1:PORT/v1."""
        return self.url + "/v1"

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------------ lifecycle
    def command(self, port_file: str | None = None) -> list[str]:
        """The command line that starts the server."""
        cmd = [
            self.python,
            "-m",
            "audio_evals.local.serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        cmd += ["--log-level", self.log_level]
        if port_file:
            cmd += ["--port-file", port_file]
        for key, flag in _FLAGS.items():
            value = self.options.get(key)
            if value is not None:
                cmd += [flag, str(value)]
        if not self.preload:
            cmd.append("--no-preload")
        return cmd

    def start(self) -> LocalServer:
        """Start the child process and wait until GET /v1/models answers."""
        if self.running:
            return self
        self._workdir = tempfile.TemporaryDirectory(prefix="audio-evals-local-")
        port_file = os.path.join(self._workdir.name, "port")
        self._log_path = Path(self._workdir.name) / "server.log"
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("AUDIO_EVALS_LOCAL_API_KEY", None)
        if self.api_key:
            env["AUDIO_EVALS_LOCAL_API_KEY"] = self.api_key  # not on the command line (ps)
        with open(self._log_path, "wb") as log:
            self._proc = subprocess.Popen(
                self.command(port_file),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        self._finalizer = weakref.finalize(self, _stop_process, self._proc)
        try:
            self._wait_ready(port_file)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, port_file: str) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise LocalServerError(
                    f"the local server exited with code {self._proc.returncode} before it was ready.\n"
                    f"command: {' '.join(self.command(port_file))}\n--- server output ---\n{self.log_tail()}"
                )
            if self.bound_port is None and os.path.exists(port_file):
                text = Path(port_file).read_text().strip()
                if text.isdigit():
                    self.bound_port = int(text)
            if self.bound_port is not None:
                try:
                    self._request("GET", "/v1/models", timeout=2.0)
                    return
                except (OSError, LocalServerError) as exc:
                    last_error = str(exc)
            time.sleep(0.05)
        raise LocalServerError(
            f"the local server did not answer GET /v1/models within {self.startup_timeout:g}s "
            f"({last_error}).\n--- server output ---\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the child process (terminate, then kill after `timeout` seconds)."""
        if self._proc is not None:
            _stop_process(self._proc, timeout)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        self._proc = None
        self.bound_port = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> LocalServer:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's output (stdout and stderr)."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_bytes()[-chars:].decode("utf-8", "replace")

    # ------------------------------------------------------------------ control
    def _request(self, method: str, path: str, timeout: float = 10.0) -> Any:
        req = urllib.request.Request(
            self.url + path, method=method, data=b"" if method == "POST" else None
        )
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with _OPENER.open(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise LocalServerError(
                f"{method} {path} answered {exc.code}: {exc.read()[:500]!r}"
            ) from None

    def stats(self) -> dict[str, Any]:
        """Request counters: requests, in_flight, max_in_flight, by_status, by_path, faults."""
        return self._request("GET", "/stats")

    def reset_stats(self) -> dict[str, Any]:
        """Zero the request counters."""
        return self._request("POST", "/stats/reset")
