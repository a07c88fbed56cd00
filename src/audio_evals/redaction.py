"""Secrets kept out of what a run prints: log records (during a batch; the whole session under
pytest) and pytest's reports.

Cassettes keep secrets out by allow-list (`cassettes.py`) and error messages are redacted where
they are made (`failures.redact`). Two channels remain that carry text nobody wrote for a user:
log records of the libraries a batch calls (a URL with `?key=...` in httpx's and vcrpy's logs),
and pytest's reports (frame locals under `-l`, captured output and logs, assertion diffs). Both
are passed through `failures.redact` with the credentials the run knows.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import pluggy

from .failures import redact

if TYPE_CHECKING:  # the engine imports this module without pytest; the plugin runs under it
    import pytest

_factory_lock = threading.Lock()
hookimpl = pluggy.HookimplMarker("pytest")


def redact_record(record: logging.LogRecord, secrets: Iterable[str]) -> None:
    """Replace a log record's message (and its traceback text) by the redacted text, in place."""
    try:
        message = record.getMessage()
    except Exception:  # arguments that do not format: the handler reports that itself
        return
    clean = redact(message, secrets)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info:
        text = record.exc_text or "".join(traceback.format_exception(*record.exc_info))
        record.exc_text = redact(text.rstrip("\n"), secrets)


@contextlib.contextmanager
def redacted_logs(secrets: Callable[[], Iterable[str]]) -> Iterator[None]:
    """Redact every log record created inside this block, whatever logger or handler it goes to
    (inside a block that already redacts with the same secrets, nothing is added: a batch run
    under pytest's session-long block redacts each record once)."""
    with _factory_lock:
        previous = logging.getLogRecordFactory()
        nested = getattr(previous, "redacts_with", None) == secrets
        if not nested:

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                record = previous(*args, **kwargs)
                redact_record(record, secrets())
                return record

            factory.redacts_with = secrets  # type: ignore[attr-defined]
            logging.setLogRecordFactory(factory)
    if nested:
        yield
        return
    try:
        yield
    finally:
        with _factory_lock:
            if logging.getLogRecordFactory() is factory:
                logging.setLogRecordFactory(previous)


def redact_report(report: pytest.TestReport | pytest.CollectReport, secrets: Iterable[str]) -> None:
    """Redact a pytest report in place: its failure text and its captured output and logs."""
    hidden = list(secrets)
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        report.longrepr = (longrepr[0], longrepr[1], redact(str(longrepr[2]), hidden))
    elif longrepr is not None:
        text = str(longrepr)
        clean = redact(text, hidden)
        if clean != text:  # only then the rendered text stands in for the structured one
            report.longrepr = clean
    report.sections = [(title, redact(content, hidden)) for title, content in report.sections]


class PytestRedactor:
    """A pytest plugin: every report redacted before anyone reads it, log records for the whole session."""

    def __init__(self, secrets: Callable[[], Iterable[str]]) -> None:
        self.secrets = secrets
        self._logs = contextlib.ExitStack()

    def pytest_sessionstart(self) -> None:
        """Start redacting log records (a test body's and a conftest's too, not only a batch's)."""
        self._logs.enter_context(redacted_logs(self.secrets))

    def pytest_unconfigure(self) -> None:
        """Stop redacting log records."""
        self._logs.close()

    @hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: Any
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Redact a test's report as it is made (terminal, --junitxml and xdist all read this one)."""
        report = yield
        redact_report(report, self.secrets())
        return report

    @hookimpl(wrapper=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        """Redact a collection report as it is made."""
        report = yield
        redact_report(report, self.secrets())
        return report
