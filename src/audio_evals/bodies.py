"""Request bodies as cassettes store and match them: every audio payload becomes its digest.

Audio is recognised by what it is, not by where it sits: a JSON string anywhere in the body
(`input_audio.data`, a `data:` URI, Gemini's `inline_data.data`, ...) that decodes from base64 to
bytes starting with an audio container's magic number, a multipart part holding audio, or a raw
audio body. Each becomes `sha256:<hex>` of the audio bytes (the `sha256sum` of a clip sent as is).
Normalising is idempotent: vcrpy applies it to a live request and again before saving.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import json
import re
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

DIGEST_PREFIX = "sha256:"
_MIN_B64_AUDIO = 64  # shorter strings cannot hold a clip worth replacing
_B64_HEAD = re.compile(r"^[A-Za-z0-9+/_-]{24}")
_DATA_URI = re.compile(r"^data:(?P<mime>[A-Za-z0-9.+/-]*)(?P<params>(;[^,;]+)*);base64,", re.ASCII)


def digest(data: bytes) -> str:
    """The `sha256:<hex>` digest that stands for an audio payload in cassettes."""
    return DIGEST_PREFIX + hashlib.sha256(data).hexdigest()


def is_audio(head: bytes) -> bool:
    """Whether bytes start like an audio container (WAV, MP3, FLAC, Ogg, MP4/M4A, AIFF, WebM, ...)."""
    if len(head) < 4:
        return False
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return True
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return True
    if head[:4] in (b"fLaC", b"OggS", b".snd", b"caff", b"\x1a\x45\xdf\xa3"):
        return True
    if head[:5] == b"#!AMR" or head[:3] == b"ID3":
        return True
    if head[4:8] == b"ftyp":  # MP4 family: m4a, mp4, 3gp
        return True
    if head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # 11 frame-sync bits
        return head[1] & 0x06 != 0 or head[1] & 0xF6 == 0xF0  # MPEG layer I-III, or AAC ADTS
    return False


_URLSAFE = str.maketrans("-_", "+/")


def _b64decode(text: str) -> bytes | None:
    """Strict base64 (standard or URL-safe alphabet), decoded in C; None when it is not base64."""
    try:
        if "-" in text or "_" in text:
            text = text.translate(_URLSAFE)
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def _audio_in_base64(text: str) -> bytes | None:
    """The audio bytes a base64 string holds, or None when it is not base64 audio."""
    if len(text) < _MIN_B64_AUDIO or not _B64_HEAD.match(text):
        return None
    head = _b64decode(text[:24])
    if head is None or not is_audio(head):
        return None
    return _b64decode(text.strip())


def _replace_string(value: str) -> str:
    if len(value) < _MIN_B64_AUDIO or value.startswith(DIGEST_PREFIX):
        return value
    match = _DATA_URI.match(value)
    if match:
        payload = value[match.end() :]
        if payload.startswith(DIGEST_PREFIX):
            return value
        audio = _audio_in_base64(payload)
        if audio is None and match.group("mime").startswith("audio/"):
            audio = _b64decode(payload)
        return value[: match.end()] + digest(audio) if audio is not None else value
    audio = _audio_in_base64(value)
    return digest(audio) if audio is not None else value


def _replace_audio(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _replace_audio(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace_audio(v) for v in node]
    if isinstance(node, str):
        return _replace_string(node)
    return node


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, no spaces)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _normalise_multipart(body: bytes, content_type: str) -> bytes:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None or is_audio(payload[:16]):
            fields[name] = {
                "filename": filename,
                "content_type": part.get_content_type(),
                "bytes": len(payload),
                "data": digest(payload),
            }
        else:
            fields[name] = _replace_string(payload.decode("utf-8", "replace"))
    return canonical({"multipart/form-data": fields})


@functools.lru_cache(maxsize=8)
def normalise_body(body: bytes | None, content_type: str = "") -> bytes | None:
    """The request body as stored and matched: audio payloads become digests, JSON is canonical."""
    if not body:
        return body
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        if content_type.startswith("multipart/form-data"):
            return _normalise_multipart(body, content_type)
        if is_audio(body[:16]):
            return canonical({"audio": {"bytes": len(body), "data": digest(body)}})
        return body
    return canonical(_replace_audio(parsed))


def json_body(body: bytes | None) -> Any:
    """A normalised body parsed back (None when it is not JSON)."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def requested_model(normalised: bytes | None) -> str | None:
    """The `model` a normalised request body names (JSON or multipart), if any."""
    parsed = json_body(normalised)
    if not isinstance(parsed, dict):
        return None
    if isinstance(parsed.get("multipart/form-data"), dict):
        parsed = parsed["multipart/form-data"]
    model = parsed.get("model")
    return model if isinstance(model, str) else None


def differences(stored: Any, asked: Any, path: str = "", limit: int = 6) -> list[str]:
    """Dotted paths where two parsed bodies differ (the nearest miss, explained)."""
    out: list[str] = []
    if isinstance(stored, dict) and isinstance(asked, dict):
        for key in sorted(set(stored) | set(asked), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in stored:
                out.append(f"{sub} (not in the recording)")
            elif key not in asked:
                out.append(f"{sub} (only in the recording)")
            else:
                out += differences(stored[key], asked[key], sub, limit)
            if len(out) >= limit:
                break
    elif isinstance(stored, list) and isinstance(asked, list) and len(stored) == len(asked):
        for i, (a, b) in enumerate(zip(stored, asked, strict=True)):
            out += differences(a, b, f"{path}[{i}]", limit)
            if len(out) >= limit:
                break
    elif stored != asked:
        what = "audio" if str(stored).startswith(DIGEST_PREFIX) else "value"
        out.append(f"{path or '(body)'} ({what} differs)")
    return out[:limit]
