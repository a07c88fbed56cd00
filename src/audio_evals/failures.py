"""Why an extraction failed: an error kind and a one-line message that names the extractor."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from .cassettes import CannotOverwriteExistingCassetteException, CassetteFormatError
from .extractors import ExtractorTimeout, NoTranscript, WrongOutput, user_frame
from .netguard import NetworkBlocked
from .results import ErrorKind

_SECRET_QUERY = re.compile(
    r"((?:[?&])(?:key|api_key|apikey|api-key|access_token|token|sig)=)[^&\s'\"]+", re.I
)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.I)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Text with known secrets, bearer tokens and credential query parameters replaced."""
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, "***")
    text = _BEARER.sub(r"\1***", text)
    return _SECRET_QUERY.sub(r"\1***", text)


def shorten(text: str, limit: int = 500) -> str:
    """The text on one line (whitespace collapsed), cut to `limit` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def exception_chain(exc: BaseException) -> list[BaseException]:
    """An exception and its causes and contexts, outermost first (each once)."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        chain.append(node)
        node = node.__cause__ or node.__context__
    return chain


def _http_status(err: BaseException) -> tuple[int, str] | None:
    """(status, message) of an HTTP error from openai, httpx/httpx2 or requests."""
    import openai

    if isinstance(err, openai.APIStatusError):
        body = err.body
        message = (
            body["message"]
            if isinstance(body, dict) and isinstance(body.get("message"), str)
            else err.message
        )
        return err.status_code, message
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None)
    if (
        isinstance(status, int)
        and status >= 400
        and type(err).__name__ in ("HTTPStatusError", "HTTPError")
    ):
        return status, str(err)
    return None


def classify(exc: BaseException, extractor: str) -> tuple[ErrorKind, str]:
    """The error kind of a failed extraction and its message, naming the extractor."""
    chain = exception_chain(exc)
    for err in chain:
        if isinstance(err, CannotOverwriteExistingCassetteException):
            explain = getattr(err.cassette, "explain_miss", None)
            why = explain(err.failed_request) if callable(explain) and err.failed_request else ""
            request = err.failed_request
            what = f"{request.method} {request.path}" if request is not None else "a request"
            return ErrorKind.CASSETTE_MISS, shorten(
                f"{extractor} sent {what} that has no recorded answer" + (f": {why}" if why else "")
            )
        if isinstance(err, CassetteFormatError):
            return ErrorKind.CASSETTE_ERROR, str(err)
        if isinstance(err, NetworkBlocked):
            return ErrorKind.NETWORK_BLOCKED, shorten(f"{extractor}: {err}")
        if isinstance(err, ExtractorTimeout):
            return ErrorKind.TIMEOUT, str(err)
        if isinstance(err, WrongOutput):
            return ErrorKind.WRONG_OUTPUT, shorten(str(err))
        if isinstance(err, NoTranscript):
            return ErrorKind.NO_TRANSCRIPT, str(err)
    import openai

    for err in chain:
        if isinstance(err, openai.APITimeoutError) or type(err).__name__ in (
            "ReadTimeout",
            "ConnectTimeout",
            "Timeout",
        ):
            return ErrorKind.TIMEOUT, f"{extractor}: the request timed out"
        status = _http_status(err)
        if status is not None:
            return ErrorKind.HTTP, shorten(f"{extractor}: HTTP {status[0]}: {status[1]}")
        if isinstance(err, openai.APIConnectionError) or type(err).__name__ in (
            "ConnectError",
            "ConnectionError",
        ):
            return ErrorKind.CONNECTION, shorten(f"{extractor}: {err or 'connection error'}")
    failed = getattr(exc, "failed_attempts", None)
    if type(exc).__name__ == "InstructorRetryException" and failed:
        last = failed[-1].exception
        return ErrorKind.VALIDATION, shorten(f"{extractor}: {type(last).__name__}: {last}")
    where = user_frame(exc)
    return ErrorKind.EXTRACTOR, shorten(
        f"{extractor} raised {type(exc).__name__}: {exc}" + (f" (at {where})" if where else "")
    )


class _HarnessReportsFailures(logging.Filter):
    """Drops instructor's per-attempt error logs (each failed case is reported once, by the harness)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from .traffic import current_key

        return current_key() is None


logging.getLogger("instructor.v2.retry").addFilter(_HarnessReportsFailures())
