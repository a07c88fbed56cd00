"""A real HTTP server on loopback that serves a folder, counts requests and answers faults on demand."""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any


class FileServer:
    """Serves `folder` at http://127.0.0.1:<port>/; `requests` counts GETs per path; `faults`
    maps a path to statuses answered (in order) before the file is served."""

    def __init__(self, folder: Path, delay: float = 0.0) -> None:
        self.folder = folder
        self.delay = delay  # seconds each GET takes before it is answered
        self.requests: Counter[str] = Counter()
        self.faults: dict[str, list[int]] = {}
        self.in_flight = 0
        self.peak = 0  # the most GETs answered at once
        self._lock = threading.Lock()
        handler = functools.partial(_Handler, self, directory=str(folder))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The server's root URL, ending in '/'."""
        return f"http://127.0.0.1:{self.port}/"

    def url(self, path: str) -> str:
        """The URL of a file under the folder."""
        return self.base_url + path

    @property
    def total(self) -> int:
        """Every GET answered so far."""
        with self._lock:
            return sum(self.requests.values())

    def count(self, path: str) -> None:
        with self._lock:
            self.requests[path] += 1

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def fault(self, path: str) -> int | None:
        with self._lock:
            queue = self.faults.get(path)
            return queue.pop(0) if queue else None

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


class _Handler(SimpleHTTPRequestHandler):
    def __init__(self, server_state: FileServer, *args: Any, **kwargs: Any) -> None:
        self.state = server_state
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.state.enter()
        try:
            time.sleep(self.state.delay)
            self._get()
        finally:
            self.state.leave()

    def _get(self) -> None:
        path = self.path.split("?", 1)[0].lstrip("/")
        self.state.count(path)
        status = self.state.fault(path)
        if status is not None:
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass
