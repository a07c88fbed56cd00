"""Replaying one large batch in forked processes: each plays its share of a read-only cassette.

A child streams its results back as pickle frames through a pipe: both ends are the same
interpreter and code (a fork), and pickling a result costs a twentieth of its JSON.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from .results import CaseResult, EvalRef

MIN_SHARE = 64
"""Fewest units a process replays: below that a fork costs more than it saves."""

PYTEST_PARENT_SHARE = 0.9
"""Under pytest the parent also runs every item, so it takes a little less than an even share."""

STALL_SECONDS = 120.0
"""A child that sends nothing for this long is ended and its cases are redone in the parent."""

Emit = Callable[[CaseResult], None]
Work = Callable[[Sequence[EvalRef], Emit], dict[int, int]]


def fork_supported() -> bool:
    """Whether this platform can fork a replaying process safely (Linux)."""
    return hasattr(os, "fork") and sys.platform.startswith("linux")


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def processes_for(requested: int | None, units: int) -> int:
    """How many processes replay a batch of `units` (1 = no fork); `requested` None means auto.

    Only a single-threaded process forks: a lock held by another thread at fork time would
    stay held forever in the child.
    """
    if not fork_supported() or threading.active_count() > 1:
        return 1
    wanted = available_cpus() if requested is None else requested
    return max(1, min(wanted, units // MIN_SHARE))


def freeze_heap() -> None:
    """Move what is alive now (imports, suites, collected items) out of the collector's sight.

    A replay allocates many short-lived objects, so the collector runs often; each full pass
    would also walk the whole start-up heap. Called once per session, before any cassette opens
    (a cassette is cyclic garbage once closed: frozen, it would never be freed). Young garbage
    is collected first. A forked child also leaves these pages shared.
    """
    gc.collect(1)
    gc.freeze()


def split_shares(
    refs: Sequence[EvalRef], processes: int, parent_share: float = 1.0
) -> list[list[EvalRef]]:
    """The parent's share first (it is asked for first), then one per child; a case's repeats
    stay together. `parent_share` scales the parent's even share (it may have other work)."""
    groups: dict[str, list[EvalRef]] = {}
    for ref in refs:
        groups.setdefault(ref.case_id, []).append(ref)
    ordered = list(groups.values())
    if processes <= 1 or len(ordered) < 2:
        return [list(refs)]
    parent = max(1, round(len(ordered) * parent_share / processes))
    rest = ordered[parent:]
    children = min(processes - 1, len(rest))
    shares = [[r for group in ordered[:parent] for r in group]]
    for i in range(children):
        lo, hi = len(rest) * i // children, len(rest) * (i + 1) // children
        shares.append([r for group in rest[lo:hi] for r in group])
    return [s for s in shares if s]


class ForkedShare:
    """A child process replaying part of a batch; its results stream back through a pipe."""

    def __init__(self, refs: Sequence[EvalRef], pid: int, reader: IO[bytes]) -> None:
        self.refs = list(refs)
        self.pid = pid
        self.results: dict[EvalRef, CaseResult] = {}
        self.delivered: set[EvalRef] = set()
        self.played: dict[int, int] = {}
        self.error: str | None = None
        self.finished = False
        self._reader = reader
        self._cond = threading.Condition()
        self._progress = time.monotonic()
        self._thread = threading.Thread(target=self._drain, name=f"audio-evals-share-{pid}")
        self._thread.daemon = True

    def start(self) -> None:
        """Start reading the child's results (after every fork of the batch: forks stay single-threaded)."""
        if self._thread.ident is None:
            self._progress = time.monotonic()
            self._thread.start()

    def _drain(self) -> None:
        got_end = False
        try:
            while True:
                try:
                    tag, payload = pickle.load(self._reader)
                except EOFError:
                    break
                if tag == "R" and isinstance(payload, CaseResult):
                    ref = EvalRef(payload.suite, payload.variant, payload.case_id, payload.repeat)
                    with self._cond:
                        self.results[ref] = payload
                        self.delivered.add(ref)
                        self._progress = time.monotonic()
                        self._cond.notify_all()
                elif tag == "P":
                    self.played = dict(payload)
                    got_end = True
                elif tag == "E":
                    self.error = str(payload)
        except Exception as exc:  # a garbled stream: what arrived stands, the rest is redone
            self.error = self.error or f"unreadable results from the replay process: {exc}"
        finally:
            with contextlib.suppress(OSError):
                self._reader.close()
            with self._cond:
                if not got_end and self.error is None:  # (a stall already said why)
                    self.error = "the replay process ended before sending all its results"
                self.finished = True
                self._cond.notify_all()

    def _end(self, *, stalled: bool) -> None:
        """Kill the child (its pipe then closes); a stall is recorded as the reason."""
        if stalled and self.error is None:
            self.error = f"the replay process sent nothing for {STALL_SECONDS:.0f} s and was ended"
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def _stalled(self) -> bool:
        return time.monotonic() - self._progress >= STALL_SECONDS

    def take(self, ref: EvalRef) -> CaseResult | None:
        """This unit's result, waiting for it; None when the child ended (or stalled) without it."""
        with self._cond:
            while ref not in self.results and not self.finished:
                if self._stalled():
                    self._end(stalled=True)
                self._cond.wait(1.0)
            return self.results.pop(ref, None)

    def missing(self) -> list[EvalRef]:
        """Units the child will never deliver, in order (known once it has finished)."""
        with self._cond:
            if not self.finished:
                return []
            return [r for r in self.refs if r not in self.delivered]

    def close(self, *, kill: bool = False) -> None:
        """Wait for the child to end (or end it) and reap it."""
        if self._thread.ident is None:
            kill = True  # never started: nobody reads its pipe
        while True:
            if kill or self._stalled():
                self._end(stalled=not kill)
                kill = True
            if self._thread.ident is None:
                with contextlib.suppress(OSError):
                    self._reader.close()
                break
            self._thread.join(1.0)
            if not self._thread.is_alive():
                break
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def fork_share(refs: Sequence[EvalRef], work: Work) -> ForkedShare | None:
    """Fork a child that runs `work` on `refs` and streams each result back; None if fork fails."""
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return None
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.close(read_fd)
            with os.fdopen(write_fd, "wb") as out:

                def send(tag: str, payload: Any) -> None:
                    pickle.dump((tag, payload), out, protocol=pickle.HIGHEST_PROTOCOL)
                    out.flush()

                try:
                    played = work(refs, lambda result: send("R", result))
                except BaseException as exc:
                    send("E", f"{type(exc).__name__}: {' '.join(str(exc).split())}")
                    raise
                send("P", dict(played))
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    return ForkedShare(refs, pid, os.fdopen(read_fd, "rb"))
