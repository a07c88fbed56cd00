"""The extraction contract: a variant calls `fn(case, variant)`; the built-in extractors follow it too.

An extractor is any function, sync or async, that takes a `CaseInput` (id, audio path,
reference transcript, tags; never the label) and a `VariantConfig` (model, prompt, params and
the resolved endpoint: base URL and API key) and returns an instance of the suite's response
model, or data that validates into it. Whatever HTTP it makes goes through the variant's
cassette. Sync functions run in a thread of their own, so a batch stays concurrent.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import sys
import threading
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import pybase64
from pydantic import BaseModel, ValidationError

from .audio import PreparedAudio, prepare_for_api
from .limits import CHAT_AUDIO_FORMATS, TRANSCRIPTION_FORMATS
from .traffic import note_conversion


class Pipeline(StrEnum):
    """The built-in extractors."""

    DIRECT = "direct"
    TRANSCRIBE_THEN_EXTRACT = "transcribe_then_extract"
    EXTRACT_FROM_TRANSCRIPT = "extract_from_transcript"


class Mode(StrEnum):
    """How instructor asks for structured output (OpenAI's audio models take tools only)."""

    TOOLS = "tools"
    JSON_SCHEMA = "json_schema"


class Secret(str):
    """A credential: its repr never shows it (tracebacks and logs print reprs)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'" if self else "''"


@dataclass(frozen=True)
class CaseInput:
    """What an extractor gets of a case: its audio, reference transcript and tags, never its label."""

    id: str
    audio_path: Path
    transcript: str | None
    tags: Mapping[str, str]
    repeat: int = 0

    def read_audio(self) -> bytes:
        """The audio file's bytes."""
        return self.audio_path.read_bytes()

    def prepared_audio(self, accepted: Collection[str] = CHAT_AUDIO_FORMATS) -> PreparedAudio:
        """The bytes to send to an API that takes only `accepted` formats (a FLAC becomes 16-bit
        WAV, deterministically); a conversion is recorded with the case's result."""
        prepared = prepare_for_api(self.audio_path, accepted)
        if prepared.conversion:
            note_conversion(prepared.conversion)
        return prepared


ClientFactory = Callable[["VariantConfig"], Any]


class BatchClients:
    """The clients of one batch, built on first use and closed when the batch ends."""

    def __init__(self, factory: ClientFactory | None) -> None:
        self.factory = factory
        self.lock = threading.RLock()
        self.built: dict[str, Any] = {}

    def get(self, name: str, build: Callable[[], Any]) -> Any:
        with self.lock:
            if name not in self.built:
                self.built[name] = build()
            return self.built[name]

    async def aclose(self) -> None:
        """Close every client built (an instructor wrapper: the client it wraps)."""
        for client in self.built.values():
            for target in (client, getattr(client, "client", None)):
                method = getattr(target, "aclose", None) or getattr(target, "close", None)
                if callable(method):
                    result = method()
                    if inspect.isawaitable(result):
                        await result
                    break
        self.built.clear()


@dataclass(frozen=True)
class VariantConfig:
    """What an extractor gets of its variant: model, prompt, parameters and the resolved endpoint."""

    suite: str
    name: str
    model: str
    prompt: str
    params: Mapping[str, Any]
    response_model: type[BaseModel]
    base_url: str
    api_key: Secret = field(repr=False)
    live: bool = False
    timeout: float = 120.0
    max_retries: int = 0
    validation_retries: int = 1
    mode: Mode = Mode.TOOLS
    transcription_model: str | None = None
    clients: BatchClients = field(
        default_factory=lambda: BatchClients(None), repr=False, compare=False
    )

    @property
    def openai(self) -> Any:
        """An `AsyncOpenAI` client for this variant's endpoint (one per batch)."""
        return self.clients.get("openai", self._build_openai)

    @property
    def instructor(self) -> Any:
        """The batch's `AsyncOpenAI` client wrapped by instructor in this variant's mode."""
        import instructor

        modes = {Mode.TOOLS: instructor.Mode.TOOLS, Mode.JSON_SCHEMA: instructor.Mode.JSON_SCHEMA}
        return self.clients.get(
            "instructor", lambda: instructor.from_openai(self.openai, mode=modes[self.mode])
        )

    @property
    def client(self) -> Any:
        """What the project's client factory builds for this variant, once per batch (run_suite's
        `client_factory`, or a conftest's `pytest_audio_evals_client`); else the batch's `openai`."""
        factory = self.clients.factory
        if factory is not None:
            built = self.clients.get("client", lambda: factory(self))
            if built is not None:
                return built
        return self.openai

    def _build_openai(self) -> Any:
        import openai

        return openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=self.api_key,
            max_retries=self.max_retries,
            timeout=self.timeout,
            http_client=openai.DefaultAsyncHttpxClient(verify=_ssl_context()),
        )


@functools.cache
def _ssl_context() -> Any:
    """The TLS context httpx would build for each client, built once (reading CA files takes ~20 ms)."""
    import httpx2

    return httpx2.create_ssl_context()


@functools.cache
def schema_model(response_model: type[BaseModel]) -> type[BaseModel]:
    """The model wrapped once, as instructor wraps it on every call: its schema cache then hits."""
    import instructor

    if issubclass(response_model, instructor.OpenAISchema):
        return response_model
    return instructor.openai_schema(response_model)


# ---- the built-in extractors ---------------------------------------------------------------


async def direct(case: CaseInput, variant: VariantConfig) -> BaseModel:
    """The seed's call: a user message `[prompt, Audio]` to an audio chat model through instructor."""
    from instructor.processing.multimodal import Audio

    prepared = case.prepared_audio()
    audio = Audio(
        source=str(case.audio_path),
        data=pybase64.b64encode(prepared.data).decode("ascii"),
        media_type=f"audio/{prepared.format}",
    )
    content: list[Any] = [variant.prompt, audio]
    return await variant.instructor.chat.completions.create(
        model=variant.model,
        response_model=schema_model(variant.response_model),
        messages=[{"role": "user", "content": content}],
        max_retries=variant.validation_retries,
        **{"modalities": ["text"], **variant.params},
    )


async def _from_text(variant: VariantConfig, text: str) -> BaseModel:
    params = {k: v for k, v in variant.params.items() if k not in {"modalities", "audio"}}
    return await variant.instructor.chat.completions.create(
        model=variant.model,
        response_model=schema_model(variant.response_model),
        messages=[
            {"role": "system", "content": variant.prompt},
            {"role": "user", "content": text},
        ],
        max_retries=variant.validation_retries,
        **params,
    )


async def transcribe_then_extract(case: CaseInput, variant: VariantConfig) -> BaseModel:
    """Transcribe with the transcription endpoint, then extract from the transcript with a text call."""
    prepared = case.prepared_audio(TRANSCRIPTION_FORMATS)
    transcription = await variant.openai.audio.transcriptions.create(
        model=variant.transcription_model or "whisper-1",
        file=(prepared.filename, prepared.data),
    )
    return await _from_text(variant, transcription.text)


class NoTranscript(ValueError):
    """A case without the reference transcript an extractor needs."""


async def extract_from_transcript(case: CaseInput, variant: VariantConfig) -> BaseModel:
    """Extract from the case's reference transcript (the ablation: what was said, as text)."""
    if not case.transcript:
        raise NoTranscript(f"case {case.id} has no reference transcript to extract from")
    return await _from_text(variant, case.transcript)


BUILTINS: Mapping[Pipeline, Callable[[CaseInput, VariantConfig], Awaitable[BaseModel]]] = {
    Pipeline.DIRECT: direct,
    Pipeline.TRANSCRIBE_THEN_EXTRACT: transcribe_then_extract,
    Pipeline.EXTRACT_FROM_TRANSCRIPT: extract_from_transcript,
}


# ---- calling an extractor ------------------------------------------------------------------


class ExtractorTimeout(TimeoutError):
    """An extractor that did not return within its variant's timeout."""


class WrongOutput(TypeError):
    """An extractor that returned something that is not (and does not validate into) the model."""


def function_name(fn: Callable[..., Any]) -> str:
    """`module:qualname` of a function (how suites and messages name extractors)."""
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{module}:{name}"


def _in_thread(fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
    """Run a sync function in a daemon thread (a hung one never blocks the run's exit)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def deliver(outcome: Callable[[], None]) -> None:
        try:
            loop.call_soon_threadsafe(settle, outcome)
        except RuntimeError:  # the batch is over (the case timed out): nobody waits any more
            pass

    def target() -> None:
        try:
            value = context.run(fn, *args)
        except BaseException as exc:  # delivered to the awaiting case, never lost
            deliver(functools.partial(future.set_exception, exc))
        else:
            deliver(functools.partial(future.set_result, value))

    threading.Thread(target=target, name="audio-evals-extract", daemon=True).start()
    return future


async def call_extractor(
    fn: Callable[..., Any], name: str, case: CaseInput, variant: VariantConfig
) -> BaseModel:
    """Call an extractor within its variant's timeout and return its record as the response model."""
    if inspect.iscoroutinefunction(fn):
        pending: Awaitable[Any] = fn(case, variant)
    else:
        pending = _in_thread(fn, case, variant)
    try:
        value = await asyncio.wait_for(pending, timeout=variant.timeout)
    except TimeoutError:
        raise ExtractorTimeout(
            f"{name} did not return within {variant.timeout:g} s (the variant's timeout)"
        ) from None
    if inspect.isawaitable(value):  # a sync function that returned a coroutine
        value = await asyncio.wait_for(value, timeout=variant.timeout)
    return coerce_output(value, name, variant.response_model)


def coerce_output(value: Any, name: str, model: type[BaseModel]) -> BaseModel:
    """The extractor's return value as an instance of the response model, or WrongOutput."""
    if isinstance(value, model):
        return value
    if isinstance(value, BaseModel):
        raise WrongOutput(f"{name} returned a {type(value).__name__}, not a {model.__name__}")
    if value is None or not isinstance(value, Mapping | str | bytes):
        raise WrongOutput(
            f"{name} returned {type(value).__name__}, not a {model.__name__} "
            "(or a mapping / JSON that validates into it)"
        )
    try:
        if isinstance(value, Mapping):
            return model.model_validate(value)
        return model.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise WrongOutput(
            f"{name} returned data that does not validate as {model.__name__}: "
            f"{where}: {first['msg']}"
            + (f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else "")
        ) from None


def user_frame(exc: BaseException) -> str | None:
    """`file:line` of the innermost frame of the project's own code in an exception's traceback."""
    prefixes = tuple({sys.prefix, sys.base_prefix, str(Path(__file__).resolve().parent)})
    found = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith(prefixes) and not filename.startswith("<"):
            found = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found
