"""The OpenAI-compatible FastAPI application: chat completions, transcriptions, models, stats."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from audio_evals.limits import CHAT_AUDIO_FORMATS, OPENAI_LIMITS, TRANSCRIPTION_FORMATS
from audio_evals.local.asr import AudioDecodeError, Transcript, TranscriptionService
from audio_evals.local.faults import FaultConfig, FaultHeaderError, FaultInjector, FaultPlan, Stats
from audio_evals.local.filler import fill_schema

log = logging.getLogger("audio_evals.local")

# model name -> recogniser configuration (see asr.RECOGNIZERS)
MODELS: dict[str, str] = {"local-baseline": "base", "local-baseline-mini": "mini"}
MODEL_CREATED = 1_767_225_600  # 2026-01-01, fixed so /v1/models is stable
AUDIO_TOKENS_PER_SECOND = 10
TRANSCRIPTION_RESPONSE_FORMATS = ("json", "text", "verbose_json", "srt", "vtt")
ROLES = {"system", "developer", "user", "assistant", "tool", "function"}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class ServerSettings:
    """Everything that configures one local server."""

    faults: FaultConfig = field(default_factory=FaultConfig)
    api_key: str | None = None
    asr_workers: int = 2
    preload: bool = True
    default_year: int | None = None


class APIError(Exception):
    """An error answered in OpenAI's shape: {"error": {message, type, param, code}}."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Keep the parts of the error."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """Return the JSON body of the error."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        """Return the error as a response."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def _fault_error(plan: FaultPlan) -> APIError:
    if plan.status == 429:
        seconds = plan.retry_after_ms / 1000
        return APIError(
            429,
            "Rate limit reached for requests (injected by the audio-evals local server). "
            f"Please try again in {seconds:g}s.",
            type="requests",
            code="rate_limit_exceeded",
            headers={
                "retry-after": f"{seconds:g}",
                "retry-after-ms": str(plan.retry_after_ms),
                "x-ratelimit-remaining-requests": "0",
            },
        )
    if plan.status == 503:
        return APIError(
            503,
            "The engine is currently overloaded, please try again later. "
            "(injected by the audio-evals local server)",
            type="server_error",
            code="overloaded",
        )
    return APIError(
        plan.status or 500,
        "The server had an error while processing your request. Sorry about that! "
        "(injected by the audio-evals local server)",
        type="server_error",
        code="server_error",
    )


class LocalMiddleware:
    """ASGI middleware: request statistics, API-key check and fault injection for /v1/*."""

    def __init__(self, app: Callable[..., Awaitable[None]], state: ServerState) -> None:
        """Wrap the FastAPI app."""
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http" or scope["path"].startswith("/stats"):
            await self.app(scope, receive, send)
            return
        stats = self.state.stats
        path = scope["path"]
        stats.begin(path)
        status: dict[str, str] = {"value": "incomplete"}

        async def send_and_track(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["value"] = str(message["status"])
            await send(message)

        try:
            if path.startswith("/v1/") or path == "/v1":
                await self._v1(scope, receive, send_and_track, status)
            else:
                await self.app(scope, receive, send_and_track)
        finally:
            stats.end(status["value"])

    async def _v1(self, scope: Scope, receive: Receive, send: Send, status: dict[str, str]) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = self.state.settings.api_key
        if key is not None:
            auth = headers.get("authorization", "")
            given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            if given != key:
                shown = (given[:3] + "*" * 6 + given[-4:]) if len(given) > 8 else (given or "")
                message = (
                    f"Incorrect API key provided: {shown}."
                    if given
                    else "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                )
                err = APIError(401, message, code="invalid_api_key")
                await err.response()(scope, receive, send)
                return
        body = await _read_body(receive)
        try:
            plan = self.state.injector.plan(scope["method"], scope["path"], headers, body)
        except FaultHeaderError as exc:
            err = APIError(
                400,
                f"X-Audio-Evals-Fault: {exc}",
                param="X-Audio-Evals-Fault",
                code="invalid_value",
            )
            await err.response()(scope, receive, send)
            return
        self.state.stats.fault(plan.names)
        if plan.latency_ms > 0:
            await asyncio.sleep(plan.latency_ms / 1000)
        if plan.slow_ms > 0:
            await asyncio.sleep(plan.slow_ms / 1000)
        if plan.status is not None:
            await _fault_error(plan).response()(scope, receive, send)
            return
        if plan.drop:
            # headers and a piece of the body, then the connection closes without the rest
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"4096"),
                    ],
                }
            )
            await send(
                {"type": "http.response.body", "body": b'{"id": "chatcmpl-', "more_body": True}
            )
            status["value"] = "dropped"
            return
        scope["audio_evals.fault_plan"] = plan
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


class DropLogFilter(logging.Filter):
    """Hides uvicorn's error line for connections the server dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but the one about an incomplete response."""
        return "without completing response" not in str(record.msg)


class ServerState:
    """Shared state of one server: settings, recogniser, fault injector and stats."""

    def __init__(self, settings: ServerSettings) -> None:
        """Build the parts from the settings."""
        self.settings = settings
        self.asr = TranscriptionService(workers=settings.asr_workers)
        self.injector = FaultInjector(settings.faults)
        self.stats = Stats()


# ---------------------------------------------------------------------------- helpers


def _estimate_tokens(text: str) -> int:
    return max(0, math.ceil(len(text) / 4))


def _require_model(model: Any) -> str:
    if not isinstance(model, str) or not model:
        raise APIError(400, "you must provide a model parameter", param="model")
    if model not in MODELS:
        raise APIError(
            404,
            f"The model `{model}` does not exist or you do not have access to it. "
            f"Models served here: {', '.join(MODELS)}.",
            param="model",
            code="model_not_found",
        )
    return model


@dataclass
class AudioPart:
    """One audio part of a chat request."""

    data: bytes
    fmt: str
    param: str


@dataclass
class ParsedChat:
    """The parts of a chat request the local model needs."""

    audio: list[AudioPart]
    last_user_text: str
    prompt_text: str


def _parse_messages(messages: Any) -> ParsedChat:
    if messages is None:
        raise APIError(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list) or not messages:
        raise APIError(
            400,
            "Invalid 'messages': expected a non-empty array of messages.",
            param="messages",
            code="invalid_type" if not isinstance(messages, list) else "empty_array",
        )
    audio: list[AudioPart] = []
    last_user_text = ""
    prompt_chunks: list[str] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise APIError(
                400,
                f"Invalid type for 'messages[{i}]': expected an object.",
                param=f"messages[{i}]",
                code="invalid_type",
            )
        role = msg.get("role")
        if role not in ROLES:
            raise APIError(
                400,
                f"Invalid value: {role!r}. Supported values are: {', '.join(sorted(ROLES))}.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
        content = msg.get("content")
        texts: list[str] = []
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                param = f"messages[{i}].content[{j}]"
                if not isinstance(part, dict):
                    raise APIError(
                        400,
                        f"Invalid type for '{param}': expected an object.",
                        param=param,
                        code="invalid_type",
                    )
                ptype = part.get("type")
                if ptype == "text":
                    text = part.get("text")
                    if not isinstance(text, str):
                        raise APIError(
                            400,
                            f"Missing required parameter: '{param}.text'.",
                            param=f"{param}.text",
                            code="missing_required_parameter",
                        )
                    texts.append(text)
                elif ptype == "input_audio":
                    audio.append(_parse_audio_part(part, param))
                elif ptype == "refusal" and role == "assistant":
                    continue
                else:
                    raise APIError(
                        400,
                        f"Invalid value: {ptype!r}. The local models accept content parts of type "
                        "'text' and 'input_audio'.",
                        param=f"{param}.type",
                        code="invalid_value",
                    )
        elif content is not None:
            raise APIError(
                400,
                f"Invalid type for 'messages[{i}].content'.",
                param=f"messages[{i}].content",
                code="invalid_type",
            )
        elif role not in ("assistant",):
            raise APIError(
                400,
                f"Missing required parameter: 'messages[{i}].content'.",
                param=f"messages[{i}].content",
                code="missing_required_parameter",
            )
        if msg.get("tool_calls"):
            prompt_chunks.append(json.dumps(msg["tool_calls"], sort_keys=True))
        prompt_chunks.extend(texts)
        if role == "user":
            last_user_text = "\n".join(texts)
    return ParsedChat(audio, last_user_text, "\n".join(prompt_chunks))


def _parse_audio_part(part: dict[str, Any], param: str) -> AudioPart:
    spec = part.get("input_audio")
    if not isinstance(spec, dict):
        raise APIError(
            400,
            f"Missing required parameter: '{param}.input_audio'.",
            param=f"{param}.input_audio",
            code="missing_required_parameter",
        )
    fmt = spec.get("format")
    if fmt not in CHAT_AUDIO_FORMATS:
        raise APIError(
            400,
            f"Invalid value: {fmt!r}. Supported values are: 'wav' and 'mp3'.",
            param=f"{param}.input_audio.format",
            code="invalid_value",
        )
    data = spec.get("data")
    if not isinstance(data, str) or not data:
        raise APIError(
            400,
            f"Missing required parameter: '{param}.input_audio.data'.",
            param=f"{param}.input_audio.data",
            code="missing_required_parameter",
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise APIError(
            400,
            f"Invalid '{param}.input_audio.data': expected base64-encoded audio.",
            param=f"{param}.input_audio.data",
            code="invalid_value",
        ) from None
    return AudioPart(raw, fmt, f"{param}.input_audio.data")


def _find_embedded_schema(text: str) -> dict[str, Any] | None:
    """Find a JSON schema written into the prompt (instructor's JSON/MD_JSON modes)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    tries = 0
    while start != -1 and tries < 200:
        tries += 1
        try:
            obj, _ = decoder.raw_decode(text, start)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("properties"), dict):
            return obj
        start = text.find("{", start + 1)
    return None


@dataclass
class Plan:
    """How to answer a chat request: a tool call, JSON content, or plain text."""

    kind: str  # "tool", "json", "text"
    schema: dict[str, Any] | None = None
    tool_name: str | None = None


def _answer_plan(body: dict[str, Any], prompt_text: str) -> Plan:
    tools = body.get("tools")
    tool_choice = body.get("tool_choice")
    if tools is not None:
        if not isinstance(tools, list):
            raise APIError(
                400,
                "Invalid type for 'tools': expected an array.",
                param="tools",
                code="invalid_type",
            )
        for i, tool in enumerate(tools):
            fn = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise APIError(
                    400,
                    f"Missing required parameter: 'tools[{i}].function.name'.",
                    param=f"tools[{i}].function.name",
                    code="missing_required_parameter",
                )
    if tools and tool_choice != "none":
        chosen = tools[0]
        if isinstance(tool_choice, dict):
            name = (tool_choice.get("function") or {}).get("name")
            match = [t for t in tools if t["function"]["name"] == name]
            if not match:
                raise APIError(
                    400,
                    f"Invalid value for 'tool_choice': no function named {name!r} in 'tools'.",
                    param="tool_choice",
                    code="invalid_value",
                )
            chosen = match[0]
        elif tool_choice not in (None, "auto", "required"):
            raise APIError(
                400,
                f"Invalid value for 'tool_choice': {tool_choice!r}.",
                param="tool_choice",
                code="invalid_value",
            )
        params = chosen["function"].get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, dict):
            raise APIError(
                400,
                "Invalid 'parameters': expected a JSON schema object.",
                param="tools[0].function.parameters",
                code="invalid_type",
            )
        return Plan("tool", params, chosen["function"]["name"])
    rf = body.get("response_format")
    if rf is not None:
        if not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object", "json_schema"):
            raise APIError(
                400,
                "Invalid 'response_format': type must be one of 'text', 'json_object', 'json_schema'.",
                param="response_format",
                code="invalid_value",
            )
        if rf["type"] == "json_schema":
            js = rf.get("json_schema")
            if not isinstance(js, dict):
                raise APIError(
                    400,
                    "Missing required parameter: 'response_format.json_schema'.",
                    param="response_format.json_schema",
                    code="missing_required_parameter",
                )
            schema = (
                js.get("schema")
                if js.get("schema") is not None
                else {"type": "object", "properties": {}}
            )
            if not isinstance(schema, dict):
                raise APIError(
                    400,
                    "Invalid 'response_format.json_schema.schema': expected an object.",
                    param="response_format.json_schema.schema",
                    code="invalid_type",
                )
            return Plan("json", schema)
        if rf["type"] == "json_object":
            return Plan(
                "json", _find_embedded_schema(prompt_text) or {"type": "object", "properties": {}}
            )
    return Plan("text")


def _break_json(value: Any) -> str:
    """Tool arguments that are not valid JSON (the 'bad_json' fault)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text[:-1] + ',"' if text.endswith("}") else text + "}{"


def _mismatch(value: Any, schema: dict[str, Any]) -> Any:
    """JSON that does not match the schema (the 'schema_mismatch' fault): wrong types, a required field gone."""
    if not isinstance(value, dict):
        return {"unexpected": value}
    wrong: dict[str, Any] = {}
    for k, v in value.items():
        if isinstance(v, bool):
            wrong[k] = "not a boolean"
        elif isinstance(v, int | float):
            wrong[k] = "not a number"
        elif isinstance(v, str):
            wrong[k] = {"unexpected": "object"}
        elif isinstance(v, list):
            wrong[k] = "not a list"
        else:
            wrong[k] = 12345
    required = schema.get("required") or list(value)
    if required:
        wrong.pop(required[0], None)
    return wrong


def _usage(prompt_text: str, audio_seconds: list[float], completion: str) -> dict[str, Any]:
    audio_tokens = sum(math.ceil(s * AUDIO_TOKENS_PER_SECOND) for s in audio_seconds)
    text_tokens = _estimate_tokens(prompt_text) + 3
    completion_tokens = max(1, _estimate_tokens(completion))
    return {
        "prompt_tokens": text_tokens + audio_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": text_tokens + audio_tokens + completion_tokens,
        "prompt_tokens_details": {
            "audio_tokens": audio_tokens,
            "cached_tokens": 0,
            "text_tokens": text_tokens,
        },
        "completion_tokens_details": {
            "audio_tokens": 0,
            "reasoning_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
            "text_tokens": completion_tokens,
        },
    }


def _segments(tr: Transcript) -> list[dict[str, Any]]:
    groups: list[list[Any]] = []
    for w in tr.words:
        if groups and w.start - groups[-1][-1].end <= 0.6 and len(groups[-1]) < 30:
            groups[-1].append(w)
        else:
            groups.append([w])
    out = []
    for i, g in enumerate(groups):
        out.append(
            {
                "id": i,
                "seek": 0,
                "start": round(g[0].start, 2),
                "end": round(g[-1].end, 2),
                "text": " " + " ".join(w.word for w in g),
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.0,
            }
        )
    if not out and tr.text:
        out.append(
            {
                "id": 0,
                "seek": 0,
                "start": 0.0,
                "end": round(tr.duration, 2),
                "text": " " + tr.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.0,
            }
        )
    return out


def _clock(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _subtitles(segments: list[dict[str, Any]], vtt: bool) -> str:
    lines = ["WEBVTT", ""] if vtt else []
    for seg in segments:
        if not vtt:
            lines.append(str(seg["id"] + 1))
        sep = "." if vtt else ","
        lines.append(f"{_clock(seg['start'], sep)} --> {_clock(seg['end'], sep)}")
        lines.append(seg["text"].strip())
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")


# ---------------------------------------------------------------------------- app


def create_app(settings: ServerSettings | None = None) -> Any:
    """Build the ASGI application (FastAPI wrapped in the stats/auth/fault middleware)."""
    settings = settings or ServerSettings()
    state = ServerState(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        """Start the recogniser workers with the server and stop them with it."""
        if settings.preload:  # load a decoder in the background: startup stays fast
            state.asr.warm()
        try:
            yield
        finally:
            state.asr.close()

    app = FastAPI(
        title="audio-evals local OpenAI-compatible server",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.local = state

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return APIError(400, f"Invalid request: {exc.errors()}").response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = f"Invalid URL ({request.method} {request.url.path})"
        elif exc.status_code == 405:
            message = f"Method not allowed ({request.method} {request.url.path})"
        else:
            message = str(exc.detail)
        return APIError(exc.status_code, message).response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return APIError(
            500,
            f"The local server had an error while processing your request ({type(exc).__name__}: {exc}).",
            type="server_error",
            code="server_error",
        ).response()

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Say the server is up."""
        return {"status": "ok"}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        """Return the request counters."""
        return state.stats.snapshot()

    @app.post("/stats/reset")
    async def stats_reset() -> dict[str, Any]:
        """Zero the request counters."""
        state.stats.reset()
        return state.stats.snapshot()

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        """List the local models (OpenAI list shape)."""
        return {"object": "list", "data": [_model_card(m) for m in MODELS]}

    @app.get("/v1/models/{model}")
    async def get_model(model: str) -> dict[str, Any]:
        """Describe one local model."""
        _require_model(model)
        return _model_card(model)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        """Answer a chat completion: tool call, JSON content or the transcript."""
        raw = await request.body()
        body = _parse_json_body(raw)
        model = body.get("model")
        if model is None:
            raise APIError(
                400,
                "you must provide a model parameter",
                param="model",
                code="missing_required_parameter",
            )
        _require_model(model)
        parsed = _parse_messages(body.get("messages"))
        n = body.get("n")
        n = 1 if n is None else n
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 8:
            raise APIError(
                400,
                "Invalid 'n': expected an integer from 1 to 8.",
                param="n",
                code="invalid_value",
            )
        plan = _answer_plan(body, parsed.prompt_text)
        transcripts = await _transcribe_parts(state, parsed.audio, MODELS[model])
        source = (
            " ".join(t.text for t in transcripts if t.text)
            if parsed.audio
            else parsed.last_user_text
        )
        fault: FaultPlan = request.scope.get("audio_evals.fault_plan") or FaultPlan()
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "annotations": [],
        }
        digest = hashlib.sha256(raw).hexdigest()
        if plan.kind in ("tool", "json"):
            assert plan.schema is not None
            value = fill_schema(plan.schema, source, default_year=settings.default_year)
            if fault.schema_mismatch:
                value = _mismatch(value, plan.schema)
            text = (
                _break_json(value)
                if fault.bad_json
                else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            )
        else:
            text = source
        if plan.kind == "tool":
            message["tool_calls"] = [
                {
                    "id": f"call_{digest[:24]}",
                    "type": "function",
                    "function": {"name": plan.tool_name, "arguments": text},
                }
            ]
            finish = "tool_calls"
        else:
            message["content"] = text
            finish = "stop"
        tools_text = json.dumps(
            body.get("tools") or body.get("response_format") or "", sort_keys=True
        )
        usage = _usage(parsed.prompt_text + tools_text, [t.duration for t in transcripts], text)
        completion = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": i, "message": message, "logprobs": None, "finish_reason": finish}
                for i in range(n)
            ],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_audio_evals_local",
        }
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _stream(completion, include_usage), media_type="text/event-stream"
            )
        return JSONResponse(completion)

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        """Transcribe an uploaded audio file (whisper-1 compatible)."""
        try:
            form = await request.form()
        except Exception as exc:
            raise APIError(
                400,
                f"Could not parse the multipart form: {exc}. Send 'file' and 'model' as multipart/form-data.",
                code="invalid_request",
            ) from None
        model = form.get("model")
        if model is None:
            raise APIError(
                400,
                "Missing required parameter: 'model'.",
                param="model",
                code="missing_required_parameter",
            )
        _require_model(str(model))
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise APIError(
                400,
                "Missing required parameter: 'file'.",
                param="file",
                code="missing_required_parameter",
            )
        response_format = str(form.get("response_format") or "json")
        if response_format not in TRANSCRIPTION_RESPONSE_FORMATS:
            raise APIError(
                400,
                f"Invalid value: {response_format!r}. Supported values are: "
                + ", ".join(f"'{f}'" for f in TRANSCRIPTION_RESPONSE_FORMATS)
                + ".",
                param="response_format",
                code="invalid_value",
            )
        filename = upload.filename or ""
        ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if ext and ext not in TRANSCRIPTION_FORMATS:
            raise APIError(
                400,
                f"Invalid file format. Supported formats: {list(TRANSCRIPTION_FORMATS)}",
                param="file",
                code="invalid_value",
            )
        data = await upload.read()
        granularities = [str(g) for g in form.getlist("timestamp_granularities[]")]
        part = AudioPart(data, ext or "", "file")
        (tr,) = await _transcribe_parts(state, [part], MODELS[str(model)])
        usage = {"type": "duration", "seconds": int(math.ceil(tr.duration))}
        if response_format == "text":
            return PlainTextResponse(tr.text + "\n")
        if response_format == "json":
            return JSONResponse({"text": tr.text, "usage": usage})
        segments = _segments(tr)
        if response_format in ("srt", "vtt"):
            return PlainTextResponse(_subtitles(segments, response_format == "vtt"))
        out: dict[str, Any] = {
            "task": "transcribe",
            "language": "english",
            "duration": round(tr.duration, 3),
            "text": tr.text,
            "segments": segments if "segment" in granularities or not granularities else [],
            "usage": usage,
        }
        if "word" in granularities:
            out["words"] = [
                {"word": w.word, "start": round(w.start, 2), "end": round(w.end, 2)}
                for w in tr.words
            ]
        return JSONResponse(out)

    from audio_evals.local.speech import register_speech

    register_speech(app)
    return LocalMiddleware(app, state)


def _model_card(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": MODEL_CREATED, "owned_by": "audio-evals"}


def _parse_json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise APIError(
            400,
            "We could not parse the JSON body of your request. The API expects a JSON payload "
            "(Content-Type: application/json).",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise APIError(400, "The JSON body of your request must be an object.", code="invalid_json")
    return body


async def _transcribe_parts(
    state: ServerState, parts: list[AudioPart], config: str
) -> list[Transcript]:
    for part in parts:
        _check_limits(part)
    results = []
    for part in parts:
        try:
            results.append(await state.asr.transcribe(part.data, part.fmt or None, config))
        except AudioDecodeError as exc:
            raise APIError(
                400,
                f"Audio file might be corrupted or unsupported: could not decode the audio ({exc}).",
                param=part.param,
                code="invalid_value",
            ) from None
    return results


async def _stream(completion: dict[str, Any], include_usage: bool) -> AsyncIterator[bytes]:
    base = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    for choice in completion["choices"]:
        msg = choice["message"]
        first: dict[str, Any] = {
            "role": "assistant",
            "content": "" if msg.get("content") is not None else None,
        }
        if msg.get("tool_calls"):
            call = msg["tool_calls"][0]
            first["tool_calls"] = [
                {
                    "index": 0,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
            ]
        yield _sse(
            base | {"choices": [{"index": choice["index"], "delta": first, "finish_reason": None}]}
        )
        if msg.get("tool_calls"):
            args = msg["tool_calls"][0]["function"]["arguments"]
            delta: dict[str, Any] = {"tool_calls": [{"index": 0, "function": {"arguments": args}}]}
        else:
            delta = {"content": msg.get("content") or ""}
        yield _sse(
            base | {"choices": [{"index": choice["index"], "delta": delta, "finish_reason": None}]}
        )
        yield _sse(
            base
            | {
                "choices": [
                    {
                        "index": choice["index"],
                        "delta": {},
                        "finish_reason": choice["finish_reason"],
                    }
                ]
            }
        )
    if include_usage:
        yield _sse(base | {"choices": [], "usage": completion["usage"]})
    yield b"data: [DONE]\n\n"


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


def _check_limits(part: AudioPart) -> None:
    """Refuse audio over OpenAI's input limits, with OpenAI's status and wording."""
    if len(part.data) > OPENAI_LIMITS.max_bytes:
        raise APIError(
            413,
            f"{OPENAI_LIMITS.max_bytes}: Maximum content size limit ({OPENAI_LIMITS.max_bytes}) "
            f"exceeded ({len(part.data)} bytes read)",
            param=part.param,
            code="invalid_value",
        )
    import soundfile

    try:
        seconds = float(soundfile.info(io.BytesIO(part.data)).duration)
    except Exception:  # not decodable here: the recogniser reports it as a 400
        return
    if seconds > OPENAI_LIMITS.max_seconds:
        raise APIError(
            400,
            f"audio duration {seconds:g} seconds is longer than {OPENAI_LIMITS.max_seconds:g} "
            "seconds which is the maximum for this model",
            param=part.param,
            code="invalid_value",
        )
