"""What a case's audio is (format, rate, channels, duration from its header) and the bytes sent for it.

Datasets hold audio as teams have it: WAV, MP3, FLAC, OGG (Vorbis or Opus), M4A (AAC) and AIFF, at
any sample rate and channel count. ``probe`` reads only the header (tens of microseconds for most
formats: it runs for every row at load). ``decode`` reads every sample (``audio-evals validate``).
``prepare_for_api`` returns what is actually sent to an endpoint that accepts only some formats
(a chat completion takes wav and mp3): a file in an accepted format is sent byte for byte; any
other is decoded and written as 16-bit PCM WAV at its own sample rate and channel count, by
libsndfile (soundfile) or, for M4A, ffmpeg's decoder. The conversion is deterministic (same file,
same libraries -> same bytes -> same cassette digest) and described in ``PreparedAudio.conversion``.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from .limits import CHAT_AUDIO_FORMATS

_WAV_HEADER_BYTES = 44
_PCM16_BYTES = 2


class AudioFormat(StrEnum):
    """An audio container the harness reads."""

    WAV = "wav"
    MP3 = "mp3"
    FLAC = "flac"
    OGG = "ogg"
    M4A = "m4a"
    AIFF = "aiff"


SUFFIXES: Mapping[str, AudioFormat] = {
    ".wav": AudioFormat.WAV,
    ".mp3": AudioFormat.MP3,
    ".flac": AudioFormat.FLAC,
    ".ogg": AudioFormat.OGG,
    ".oga": AudioFormat.OGG,
    ".opus": AudioFormat.OGG,
    ".m4a": AudioFormat.M4A,
    ".aif": AudioFormat.AIFF,
    ".aiff": AudioFormat.AIFF,
    ".aifc": AudioFormat.AIFF,
}


class AudioFileError(ValueError):
    """An audio file that cannot be read (the message says why; the caller names the file)."""


@dataclass(frozen=True)
class AudioInfo:
    """An audio file's header: container, codec, sample rate, channels, frames and size on disk."""

    format: AudioFormat
    codec: str
    sample_rate: int
    channels: int
    frames: int
    size_bytes: int

    @property
    def duration(self) -> float:
        """The clip's length in seconds."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    def sent_bytes(self, accepted: Collection[str] = CHAT_AUDIO_FORMATS) -> int:
        """How many bytes `prepare_for_api` sends for this file to an API taking `accepted`."""
        if self.format in accepted:
            return self.size_bytes
        return _WAV_HEADER_BYTES + self.frames * self.channels * _PCM16_BYTES


@dataclass(frozen=True)
class PreparedAudio:
    """The bytes sent to an API, their format and how they were made (None: the file as is)."""

    data: bytes
    format: AudioFormat
    conversion: str | None
    filename: str


def format_for_suffix(path: Path) -> AudioFormat | None:
    """The audio format a file name's suffix promises, or None for an unsupported suffix."""
    return SUFFIXES.get(path.suffix.lower())


def sniff(head: bytes) -> AudioFormat | None:
    """The container named by a file's first 12 bytes, or None when none is recognised."""
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return AudioFormat.WAV
    if head[:4] == b"fLaC":
        return AudioFormat.FLAC
    if head[:4] == b"OggS":
        return AudioFormat.OGG
    if head[4:8] == b"ftyp":
        return AudioFormat.M4A
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return AudioFormat.AIFF
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return AudioFormat.MP3
    return None


def probe(path: Path) -> AudioInfo:
    """Read the header of `path` (its suffix names the format; the header must agree)."""
    expected = format_for_suffix(path)
    if expected is None:
        raise AudioFileError(
            f"unsupported audio format {path.suffix or '(no suffix)'!r}; "
            f"use one of {', '.join(sorted(SUFFIXES))}"
        )
    try:
        with path.open("rb") as fh:
            head = fh.read(_HEAD_BYTES)
            size = fh.seek(0, io.SEEK_END)
    except OSError as exc:
        raise AudioFileError(f"cannot read the audio file: {exc.strerror or exc}") from None
    if size == 0:
        raise AudioFileError("the audio file is empty")
    found = sniff(head[:12])
    if found is not expected:
        what = f"a {found} file" if found else "no audio format the harness knows"
        raise AudioFileError(
            f"the file is named {path.suffix!r} but its header says {what}; "
            "rename it or convert it (its content decides how it is read)"
        )
    if expected is AudioFormat.M4A:
        return _probe_m4a(path, size)
    fast = _wav_header(head, size) if expected is AudioFormat.WAV else None
    if fast is None and expected is AudioFormat.FLAC:
        fast = _flac_header(head, size)
    if fast is not None:
        return fast
    import soundfile

    try:
        info = soundfile.info(str(path))
    except Exception as exc:  # libsndfile raises LibsndfileError, RuntimeError, ...
        raise AudioFileError(f"unreadable {expected} header: {_sf_message(exc)}") from None
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioFileError(f"the {expected} header gives no sample rate or channel count")
    return AudioInfo(expected, info.subtype, info.samplerate, info.channels, info.frames, size)


def decode(path: Path) -> tuple[np.ndarray, int]:
    """Every sample of `path` as 16-bit PCM (frames x channels) and the sample rate."""
    info = probe(path)
    if info.format is AudioFormat.M4A:
        return _ffmpeg_decode(path, info), info.sample_rate
    import soundfile

    try:
        samples, rate = soundfile.read(str(path), dtype="int16", always_2d=True)
    except Exception as exc:
        raise AudioFileError(
            f"the {info.format} audio does not decode: {_sf_message(exc)}"
        ) from None
    if len(samples) == 0:
        raise AudioFileError(f"the {info.format} audio decodes to no samples")
    return samples, int(rate)


def prepare_for_api(path: Path, accepted: Collection[str] = CHAT_AUDIO_FORMATS) -> PreparedAudio:
    """The bytes to send for `path` to an API that takes only `accepted` formats, and how made."""
    info = probe(path)
    if info.format in accepted:
        return PreparedAudio(path.read_bytes(), info.format, None, path.name)
    samples, rate = decode(path)
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    decoder = "ffmpeg" if info.format is AudioFormat.M4A else f"libsndfile {_libsndfile_version()}"
    conversion = (
        f"{info.format} ({info.codec}, {info.sample_rate} Hz, {info.channels} ch) -> "
        f"wav (PCM_16, {rate} Hz, {samples.shape[1]} ch) by {decoder}"
    )
    return PreparedAudio(buffer.getvalue(), AudioFormat.WAV, conversion, path.stem + ".wav")


def _libsndfile_version() -> str:
    import soundfile

    return str(soundfile.__libsndfile_version__)


def _sf_message(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith("Error opening") and ": " in text else text


def _ffmpeg_decode(path: Path, info: AudioInfo) -> np.ndarray:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioFileError(
            "M4A/AAC audio needs ffmpeg to decode (apt-get install ffmpeg), which is not installed"
        )
    proc = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0"]
        + ["-f", "s16le", "-acodec", "pcm_s16le", "-ac", str(info.channels), "-"],
        capture_output=True,
        timeout=600,
    )
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AudioFileError(
            "the m4a audio does not decode: " + (message[-1] if message else "ffmpeg failed")
        )
    samples = np.frombuffer(proc.stdout, dtype="<i2")
    if samples.size == 0:
        raise AudioFileError("the m4a audio decodes to no samples")
    # the decoder also returns the encoder's padding after the end the header's edit list gives
    return samples.reshape(-1, info.channels)[: info.frames]


# ------------------------------------------------------------------- WAV and FLAC headers
# Read in Python from the first bytes (~10x faster than opening the file with libsndfile):
# the common cases only; anything else (compressed WAV codecs, a streamed WAV with no data
# size, a FLAC without a sample count) goes to libsndfile.

_HEAD_BYTES = 4096
_WAV_CODECS = {(1, 8): "PCM_U8", (1, 16): "PCM_16", (1, 24): "PCM_24", (1, 32): "PCM_32"}
_WAV_CODECS |= {(3, 32): "FLOAT", (3, 64): "DOUBLE", (6, 8): "ALAW", (7, 8): "ULAW"}
_EXTENSIBLE = 0xFFFE


def _wav_header(head: bytes, size: int) -> AudioInfo | None:
    if head[:4] != b"RIFF":
        return None
    pos, fmt, data_size = 12, None, None
    while pos + 8 <= len(head):
        chunk, length = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if chunk == b"fmt " and length >= 16 and pos + 8 + length <= len(head):
            fmt = head[pos + 8 : pos + 8 + length]
        elif chunk == b"data":
            data_size = min(length, size - pos - 8)
            break
        pos += 8 + length + (length & 1)
    if fmt is None or data_size is None or data_size <= 0:
        return None
    tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]
    codec = _WAV_CODECS.get((tag, bits))
    if codec is None or channels <= 0 or rate <= 0 or block_align != channels * bits // 8:
        return None
    return AudioInfo(AudioFormat.WAV, codec, rate, channels, data_size // block_align, size)


def _flac_header(head: bytes, size: int) -> AudioInfo | None:
    # fLaC, then the STREAMINFO block: its 4-byte header and 34 bytes of stream facts
    if len(head) < 42 or head[4] & 0x7F != 0:
        return None
    bits = int.from_bytes(head[18:26], "big")
    rate = bits >> 44
    channels = ((bits >> 41) & 0x7) + 1
    depth = ((bits >> 36) & 0x1F) + 1
    frames = bits & 0xFFFFFFFFF
    if rate <= 0 or frames <= 0 or depth not in (8, 16, 24):
        return None
    codec = "PCM_S8" if depth == 8 else f"PCM_{depth}"
    return AudioInfo(AudioFormat.FLAC, codec, rate, channels, frames, size)


# ----------------------------------------------------------------------------- M4A header

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}
_AAC_RATES = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
    7350,
)


def _probe_m4a(path: Path, size: int) -> AudioInfo:
    """Duration, rate and channels of the first audio track of an MP4/M4A file (no decoding)."""
    try:
        with path.open("rb") as fh:
            moov = _find_box(fh, b"moov", 0, size)
            if moov is None:
                raise AudioFileError("the m4a file has no 'moov' box (an unfinished recording?)")
            fh.seek(moov[0])
            tree = fh.read(moov[1] - moov[0])
    except OSError as exc:
        raise AudioFileError(f"cannot read the audio file: {exc.strerror or exc}") from None
    boxes = _boxes(tree, b"moov/")
    movie_scale = _movie_timescale(boxes.get(b"moov/mvhd", []))
    for trak in boxes.get(b"moov/trak", []):
        sub = _boxes(trak)
        hdlr = sub.get(b"mdia/hdlr", [b""])[0]
        if hdlr[8:12] != b"soun":
            continue
        rate, channels, codec = _audio_entry(sub.get(b"mdia/minf/stbl/stsd", [b""])[0])
        seconds = _track_seconds(sub, movie_scale)
        if rate <= 0 or channels <= 0 or seconds is None:
            raise AudioFileError("the m4a audio track's header gives no rate, channels or length")
        return AudioInfo(AudioFormat.M4A, codec, rate, channels, round(seconds * rate), size)
    raise AudioFileError("the m4a file has no audio track")


def _find_box(fh: io.BufferedReader, kind: bytes, start: int, end: int) -> tuple[int, int] | None:
    pos = start
    while pos + 8 <= end:
        fh.seek(pos)
        header = fh.read(16)
        length, name = struct.unpack(">I4s", header[:8])
        body = pos + 8
        if length == 1:
            length = struct.unpack(">Q", header[8:16])[0]
            body = pos + 16
        elif length == 0:
            length = end - pos
        if length < 8:
            raise AudioFileError(f"the m4a file has a corrupt box at byte {pos}")
        if name == kind:
            return body, min(pos + length, end)
        pos += length
    return None


def _boxes(data: bytes, prefix: bytes = b"") -> dict[bytes, list[bytes]]:
    """Every box in `data` by its path ('moov/trak/mdia/...'), nested containers opened."""
    found: dict[bytes, list[bytes]] = {}
    pos = 0
    while pos + 8 <= len(data):
        length, name = struct.unpack(">I4s", data[pos : pos + 8])
        body = pos + 8
        if length == 1:
            length = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            body = pos + 16
        elif length == 0:
            length = len(data) - pos
        if length < 8:
            break
        content = data[body : pos + length]
        key = prefix + name
        found.setdefault(key, []).append(content)
        if name in _CONTAINERS and name != b"trak":
            for sub, items in _boxes(content, key + b"/").items():
                found.setdefault(sub, []).extend(items)
        pos += length
    return found


def _movie_timescale(mvhd: list[bytes]) -> int:
    if not mvhd:
        return 0
    box = mvhd[0]
    return struct.unpack(">I", box[20:24] if box[0] == 1 else box[12:16])[0]


def _track_seconds(sub: dict[bytes, list[bytes]], movie_scale: int) -> float | None:
    elst = sub.get(b"edts/elst", [])
    if elst and movie_scale:
        box = elst[0]
        version, count = box[0], struct.unpack(">I", box[4:8])[0]
        total, pos = 0, 8
        for _ in range(count):
            if version == 1:
                seg, media_time = struct.unpack(">Qq", box[pos : pos + 16])
                pos += 20
            else:
                seg, media_time = struct.unpack(">Ii", box[pos : pos + 8])
                pos += 12
            if media_time != -1:  # -1 is an empty edit (a pause before the track)
                total += seg
        if total:
            return total / movie_scale
    mdhd = sub.get(b"mdia/mdhd", [])
    if not mdhd:
        return None
    box = mdhd[0]
    if box[0] == 1:
        scale, length = struct.unpack(">IQ", box[20:32])
    else:
        scale, length = struct.unpack(">II", box[12:20])
    return length / scale if scale else None


def _audio_entry(stsd: bytes) -> tuple[int, int, str]:
    """Sample rate, channels and codec of the first sample entry (from the AAC config if any)."""
    if len(stsd) < 8 + 36:
        return 0, 0, ""
    entry = stsd[8:]
    codec = entry[4:8].decode("latin-1")
    channels = struct.unpack(">H", entry[24:26])[0]
    rate = struct.unpack(">I", entry[32:36])[0] >> 16
    esds = entry.find(b"esds")
    if esds >= 0:
        asc = _aac_config(entry[esds + 8 :])
        if asc is not None:
            aot, asc_rate, config = asc
            codec = f"AAC (object type {aot})"
            rate = asc_rate or rate
            if config == 1 and aot == 29:  # HE-AAC v2: parametric stereo
                channels = 2
            elif 1 <= config <= 6:
                channels = config
            elif config == 7:
                channels = 8
    return rate, channels, codec


def _aac_config(esds: bytes) -> tuple[int, int, int] | None:
    """(audio object type, sample rate, channel configuration) from an esds box's DecoderSpecificInfo."""
    pos = 0
    while pos < len(esds):
        tag = esds[pos]
        pos += 1
        length = 0
        for _ in range(4):
            if pos >= len(esds):
                return None
            byte = esds[pos]
            pos += 1
            length = (length << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        if tag == 0x03:  # ES_Descriptor: id(2) flags(1) [+ optional fields]
            flags = esds[pos + 2]
            pos += 3
            if flags & 0x80:
                pos += 2
            if flags & 0x40:
                pos += 1 + esds[pos]
            if flags & 0x20:
                pos += 2
        elif tag == 0x04:  # DecoderConfigDescriptor: 13 fixed bytes, then DecoderSpecificInfo
            pos += 13
        elif tag == 0x05:
            bits = int.from_bytes(esds[pos : pos + length], "big")
            width = length * 8
            if width < 16:
                return None
            aot = bits >> (width - 5)
            index = (bits >> (width - 9)) & 0xF
            if index == 0xF:
                if width < 40:
                    return None
                rate = (bits >> (width - 33)) & 0xFFFFFF
                config = (bits >> (width - 37)) & 0xF
            else:
                rate = _AAC_RATES[index] if index < len(_AAC_RATES) else 0
                config = (bits >> (width - 13)) & 0xF
            return aot, rate, config
        else:
            pos += length
    return None
