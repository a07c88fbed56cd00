"""A socket-level guard: while replaying, no code may open a network connection.

vcrpy answers the HTTP clients it patches before any socket opens; this guard catches the rest
(an unpatched client, a raw socket) the way pytest-recording's `--block-network` does, by
refusing `socket.connect` for internet families. Unix sockets stay allowed.
"""

from __future__ import annotations

import contextlib
import functools
import re
import socket
import threading
from collections.abc import Iterator, Sequence
from typing import Any

_INET = (socket.AF_INET, socket.AF_INET6)
_lock = threading.Lock()
_depth = 0
_originals: dict[str, Any] = {}
_allowed: list[re.Pattern[str]] = []


class NetworkBlocked(ConnectionRefusedError):
    """A connection attempted while the network is blocked (replay)."""


def _host_of(address: Any) -> str:
    return str(address[0]) if isinstance(address, tuple) and address else str(address)


@functools.cache
def allowed_patterns(allowed_hosts: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """Each allowed host as a regex, plus the addresses a plain host name resolves to (a socket
    connects to an address, not a name), as pytest-recording's `--allowed-hosts` does; resolved
    once per process, not at every batch."""
    patterns = []
    for host in allowed_hosts:
        try:
            patterns.append(re.compile(host))
        except re.error as exc:
            raise ValueError(f"allowed host {host!r} is not a regular expression ({exc})") from None
        if re.fullmatch(r"[A-Za-z0-9.-]+", host):
            with contextlib.suppress(OSError, UnicodeError):
                for *_, sockaddr in socket.getaddrinfo(host, None):
                    patterns.append(re.compile(re.escape(str(sockaddr[0])) + r"\Z"))
    return tuple(patterns)


def _allows(host: str) -> bool:
    return any(pattern.match(host) for pattern in _allowed)


def _guarded(name: str) -> Any:
    original = _originals[name]

    def connect(sock: socket.socket, address: Any) -> Any:
        if sock.family in _INET and not _allows(_host_of(address)):
            raise NetworkBlocked(
                f"network blocked in replay: a connection to {_host_of(address)}:"
                f"{address[1] if isinstance(address, tuple) and len(address) > 1 else '?'} "
                "was refused (the request has no recorded answer)"
            )
        return original(sock, address)

    return connect


@contextlib.contextmanager
def blocked_network(allowed_hosts: Sequence[str] = ()) -> Iterator[None]:
    """Refuse internet connections inside this block (nestable; hosts matching a regex of
    `allowed_hosts` pass)."""
    global _depth
    patterns = allowed_patterns(tuple(allowed_hosts))
    with _lock:
        if _depth == 0:
            _allowed[:] = patterns
            for name in ("connect", "connect_ex"):
                _originals[name] = getattr(socket.socket, name)
                setattr(socket.socket, name, _guarded(name))
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for name, original in _originals.items():
                    setattr(socket.socket, name, original)
                _originals.clear()
