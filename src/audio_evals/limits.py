"""OpenAI's audio input limits and formats, in one place, with where each number comes from.

- ``MAX_AUDIO_BYTES``: 25 MiB (26,214,400 bytes) per audio file. OpenAI's speech-to-text guide
  (platform.openai.com/docs/guides/speech-to-text): "File uploads are currently limited to 25 MB";
  the Audio API FAQ (help.openai.com/en/articles/7031512): "the maximum request size is 25 MiB";
  the API's own 413 names the byte count: "Maximum content size limit (26214400) exceeded".
  OpenAI publishes no separate size for a chat completion's ``input_audio``; the harness applies
  the same ceiling to it, so one dataset is valid for every pipeline.
- ``MAX_AUDIO_SECONDS``: 1,500 s. gpt-4o-transcribe and gpt-4o-mini-transcribe answer longer audio
  with a 400 "audio duration N seconds is longer than 1500 seconds which is the maximum for this
  model" (the live API's limit, quoted in OpenAI's developer forum; the model pages do not print
  it). whisper-1 has no duration limit, only the size. The tightest enforced duration is used.
- Formats: a chat completion's ``input_audio.format`` is "wav" or "mp3" (openai-python
  ``InputAudio``: 'Currently supports "wav" and "mp3"'); the transcription endpoint takes flac,
  mp3, mp4, mpeg, mpga, m4a, ogg, wav and webm (API reference, ``file``).

A dataset may set other limits in its ``dataset.toml`` (``[limits]``), e.g. for another provider.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_AUDIO_BYTES = 25 * 1024 * 1024
MAX_AUDIO_SECONDS = 1500.0
CHAT_AUDIO_FORMATS: tuple[str, ...] = ("wav", "mp3")
TRANSCRIPTION_FORMATS: tuple[str, ...] = (
    "flac",
    "m4a",
    "mp3",
    "mp4",
    "mpeg",
    "mpga",
    "oga",
    "ogg",
    "wav",
    "webm",
)


@dataclass(frozen=True)
class AudioLimits:
    """The largest audio file (bytes, as sent) and the longest clip (seconds) an API accepts."""

    max_bytes: int = MAX_AUDIO_BYTES
    max_seconds: float = MAX_AUDIO_SECONDS

    def size_problem(self, size: int) -> str | None:
        """Why `size` bytes of audio are refused, or None when they are within the limit."""
        if size > self.max_bytes:
            return (
                f"the audio as sent is {size:,} bytes, over the API's limit of "
                f"{self.max_bytes:,} bytes ({self.max_bytes / 2**20:g} MiB)"
            )
        return None

    def duration_problem(self, seconds: float) -> str | None:
        """Why a clip of `seconds` is refused, or None when it is within the limit."""
        if seconds > self.max_seconds:
            return (
                f"the audio lasts {seconds:.1f} s, over the API's limit of {self.max_seconds:g} s"
            )
        return None


OPENAI_LIMITS = AudioLimits()
