"""Acoustic conditions for `augment`: telephone band, noise at an SNR, speed, reverb, clipping (sox, numpy)."""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio_tools import PEAK_DBFS, ToolError, require_sox_format, run_program

TELEPHONE_RATE = 8000
TELEPHONE_BAND = "300-3400"
MP3_KBPS = 24
"""Bit rate of MP3 output (speech-grade)."""
REVERB_TAIL_S = 0.3
"""Silence added at the end before reverb, so the tail is not cut."""


class AudioFormat(StrEnum):
    """An audio container a tool writes."""

    WAV = "wav"
    MP3 = "mp3"

    @classmethod
    def of(cls, path: Path) -> AudioFormat | None:
        """The format of a file by its suffix (None for another one)."""
        try:
            return cls(path.suffix.lower().lstrip("."))
        except ValueError:
            return None


class ConditionKind(StrEnum):
    """What a condition does to the audio."""

    CLEAN = "clean"
    TELEPHONE = "telephone"
    NOISE = "noise"
    SPEED = "speed"
    REVERB = "reverb"
    CLIP = "clip"


@dataclass(frozen=True)
class Parameter:
    """A condition's numeric parameter: its tag, its rounding, its default and its allowed range."""

    tag: str
    decimals: int
    default: float | None
    minimum: float
    maximum: float
    meaning: str


PARAMETERS: dict[ConditionKind, Parameter] = {
    ConditionKind.NOISE: Parameter("snr_db", 1, None, -20.0, 60.0, "signal-to-noise ratio in dB"),
    ConditionKind.SPEED: Parameter("speed", 2, None, 0.25, 4.0, "tempo factor"),
    ConditionKind.REVERB: Parameter("reverberance", 0, 50.0, 0.0, 100.0, "reverberance in %"),
    ConditionKind.CLIP: Parameter("clip_db", 1, 12.0, 0.1, 40.0, "gain in dB driven into clipping"),
}
CONDITION_TAGS: dict[ConditionKind, str] = {
    ConditionKind.CLEAN: "clean",
    ConditionKind.TELEPHONE: "telephone",
    ConditionKind.NOISE: "noisy",
    ConditionKind.SPEED: "speed",
    ConditionKind.REVERB: "reverb",
    ConditionKind.CLIP: "clipped",
}
CONDITION_SYNTAX = (
    "clean, telephone, noise:SNR, speed:F, reverb[:R], clip[:DB] (a value may be a range LOW-HIGH)"
)
_NUMBER = r"-?\d+(?:\.\d+)?"
_PARAM = re.compile(rf"^(?P<low>{_NUMBER})(?:\s*(?:-|to)\s*(?P<high>{_NUMBER}))?$")


@dataclass(frozen=True)
class Condition:
    """A condition with its parameter: fixed (`noise:10`) or drawn per row from a range (`noise:5-10`)."""

    kind: ConditionKind
    low: float | None = None
    high: float | None = None

    @classmethod
    def parse(cls, text: str) -> Condition:
        """Read `kind[:value]` or `kind:low-high`; ValueError saying what is accepted."""
        name, _, value = text.strip().partition(":")
        try:
            kind = ConditionKind(name.strip().lower())
        except ValueError:
            raise ValueError(
                f"unknown condition {text!r} (conditions: {CONDITION_SYNTAX})"
            ) from None
        parameter = PARAMETERS.get(kind)
        if parameter is None:
            if value:
                raise ValueError(f"condition {kind.value!r} takes no value (got {text!r})")
            return cls(kind)
        if not value.strip():
            if parameter.default is None:
                raise ValueError(
                    f"condition {kind.value!r} needs a {parameter.meaning}: {kind.value}:VALUE or {kind.value}:LOW-HIGH"
                )
            return cls(kind, parameter.default, parameter.default)
        found = _PARAM.match(value.strip())
        if found is None:
            raise ValueError(f"condition {text!r}: {value!r} is not a number or a range LOW-HIGH")
        low = float(found["low"])
        high = float(found["high"]) if found["high"] is not None else low
        if low > high:
            raise ValueError(f"condition {text!r}: the range's low end is above its high end")
        if low < parameter.minimum or high > parameter.maximum:
            raise ValueError(
                f"condition {text!r}: the {parameter.meaning} must be within "
                f"{parameter.minimum:g} to {parameter.maximum:g}"
            )
        return cls(kind, low, high)

    def __str__(self) -> str:
        if self.low is None or self.high is None:
            return self.kind.value
        value = f"{self.low:g}" if self.low == self.high else f"{self.low:g}-{self.high:g}"
        return f"{self.kind.value}:{value}"

    @property
    def slug(self) -> str:
        """The condition in an id suffix: `telephone`, `noise5-10`, `speed1.1`."""
        return str(self).replace(":", "")

    @property
    def tag(self) -> str:
        """The value of the `condition` tag it gives a row (`noisy` for noise)."""
        return CONDITION_TAGS[self.kind]

    def draw(self, rng: np.random.Generator) -> float | None:
        """The parameter for one row: the fixed value, or a uniform draw from the range, rounded."""
        parameter = PARAMETERS.get(self.kind)
        if parameter is None or self.low is None or self.high is None:
            return None
        if self.low == self.high:
            return self.low
        return round(float(rng.uniform(self.low, self.high)), parameter.decimals)


# --------------------------------------------------------------------------- DSP


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` samples of unit-power 1/f (pink) noise."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(f), n)
    return noise / np.sqrt(np.mean(noise**2))


def active_power(x: np.ndarray, rate: int) -> float:
    """Mean power over the 20 ms frames within 40 dB of the loudest one (speech, not pauses)."""
    frame = rate // 50
    if len(x) < frame:
        return float(np.mean(x**2))
    frames = x[: len(x) // frame * frame].reshape(-1, frame)
    power = np.mean(frames**2, axis=1)
    return float(np.mean(power[power >= power.max() * 1e-4]))


def _read_mono(path: Path) -> tuple[np.ndarray, int]:
    try:
        data, rate = sf.read(path, dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise ToolError(f"cannot decode {path}: {exc}") from None
    if data.shape[0] == 0:
        raise ToolError(f"{path} has no samples")
    return (data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)), int(rate)


def _write_pcm16(x: np.ndarray, rate: int, dst: Path, fmt: AudioFormat) -> None:
    pcm = np.round(x * 32767).astype(np.int16)
    if fmt == AudioFormat.WAV:
        sf.write(dst, pcm, rate, subtype="PCM_16")
        return
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "pcm.wav"
        sf.write(wav, pcm, rate, subtype="PCM_16")
        _sox(wav, dst, fmt)


def _encoding(fmt: AudioFormat) -> list[str]:
    if fmt == AudioFormat.MP3:
        require_sox_format("mp3")
        return ["-C", str(MP3_KBPS)]
    return ["-b", "16"]


def _sox(
    src: Path,
    dst: Path,
    fmt: AudioFormat,
    effects: list[str] | None = None,
    rate: int | None = None,
) -> None:
    """sox with repeatable dither (-R): src -> dst in `fmt`, mono when effects are applied."""
    output = (["-r", str(rate)] if rate else []) + (["-c", "1"] if effects else [])
    run_program(["sox", "-R", str(src), *output, *_encoding(fmt), str(dst), *(effects or [])])


def _add_noise(
    src: Path, dst: Path, fmt: AudioFormat, snr_db: float, rng: np.random.Generator
) -> None:
    speech, rate = _read_mono(src)
    power = active_power(speech, rate)
    if power <= 0.0:
        raise ToolError(f"{src} is silent: there is no speech to set an SNR against")
    noise = pink_noise(len(speech), rng)
    noise *= np.sqrt(power / 10 ** (snr_db / 10))
    mix = speech + noise
    peak = float(np.max(np.abs(mix)))
    limit = 10 ** (PEAK_DBFS / 20)
    if peak > limit:
        mix *= limit / peak
    _write_pcm16(mix, rate, dst, fmt)


def _clip(src: Path, dst: Path, fmt: AudioFormat, gain_db: float) -> None:
    x, rate = _read_mono(src)
    clipped = np.clip(x * 10 ** (gain_db / 20), -1.0, 1.0) * 10 ** (PEAK_DBFS / 20)
    _write_pcm16(clipped, rate, dst, fmt)


def apply_condition(
    condition: Condition, src: Path, dst: Path, fmt: AudioFormat, rng: np.random.Generator
) -> dict[str, str]:
    """Write `src` under `condition` to `dst` in `fmt`; return the tags that record its parameter."""
    value = condition.draw(rng)
    parameter = PARAMETERS.get(condition.kind)
    tags = (
        {}
        if parameter is None or value is None
        else {parameter.tag: f"{value:.{parameter.decimals}f}"}
    )
    gain = ["gain", "-n", str(PEAK_DBFS)]
    kind = condition.kind
    if kind == ConditionKind.CLEAN:
        if AudioFormat.of(src) == fmt:
            shutil.copyfile(src, dst)
        else:
            _sox(src, dst, fmt)
    elif kind == ConditionKind.TELEPHONE:
        effects = [
            "sinc",
            TELEPHONE_BAND,
            "compand",
            "0.02,0.15",
            "-60,-60,-30,-20,0,-8",
            "-2",
            *gain,
        ]
        _sox(src, dst, fmt, effects, rate=TELEPHONE_RATE)
    elif kind == ConditionKind.NOISE:
        assert value is not None
        _add_noise(src, dst, fmt, value, rng)
    elif kind == ConditionKind.SPEED:
        _sox(src, dst, fmt, ["tempo", "-s", f"{value:g}", *gain])
    elif kind == ConditionKind.REVERB:
        _sox(src, dst, fmt, ["pad", "0", str(REVERB_TAIL_S), "reverb", f"{value:g}", *gain])
    elif kind == ConditionKind.CLIP:
        assert value is not None
        _clip(src, dst, fmt, value)
    else:
        raise AssertionError(f"unhandled condition {kind}")
    return tags
