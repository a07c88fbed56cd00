"""Speech recognition for the local models: audio decoding and pooled pocketsphinx decoders."""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import hashlib
import io
import math
import multiprocessing
import os
import queue
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

SAMPLE_RATE = 16_000
FRAMES_PER_SECOND = 100  # pocketsphinx frame rate (10 ms frames)

# Recogniser configurations, one per local model. "mini" prunes the search much harder:
# it is about 2.5x faster and clearly less accurate (see docs/local-server.md).
RECOGNIZERS: dict[str, dict[str, Any]] = {
    "base": {},
    "mini": {"beam": 1e-35, "wbeam": 1e-25, "pbeam": 1e-35, "maxhmmpf": 1500},
}


class AudioDecodeError(ValueError):
    """Raised when audio bytes cannot be decoded into samples."""


@dataclass(frozen=True)
class Word:
    """One recognised word with its start and end time in seconds."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class Transcript:
    """The result of recognising one audio clip."""

    text: str
    words: tuple[Word, ...]
    duration: float


def decode_audio(data: bytes, fmt: str | None = None) -> tuple[np.ndarray, float]:
    """Decode WAV/MP3/FLAC/OGG bytes to 16 kHz mono int16 PCM and the clip's duration in seconds."""
    import soundfile as sf
    from scipy.signal import resample_poly

    if not data:
        raise AudioDecodeError("the audio is empty")
    samples: np.ndarray | None = None
    rate = 0
    errors = []
    attempts: list[dict[str, Any]] = [{}]
    if fmt:
        attempts.append({"format": fmt.upper()})
    for kwargs in attempts:
        try:
            samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True, **kwargs)
            break
        except Exception as exc:  # soundfile raises several types (LibsndfileError, RuntimeError)
            message = re.sub(r"^Error opening <[^>]*>: ", "", str(exc))
            if message not in errors:
                errors.append(message)
    if samples is None or rate <= 0:
        raise AudioDecodeError(errors[0] if errors else "unknown audio format")
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    duration = len(mono) / float(rate)
    if rate != SAMPLE_RATE and len(mono):
        g = math.gcd(int(rate), SAMPLE_RATE)
        mono = resample_poly(mono, SAMPLE_RATE // g, int(rate) // g)
    mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
    pcm = (np.clip(mono, -1.0, 1.0) * 32767.0).astype(np.int16)
    return pcm, duration


_WORD_CLEAN = re.compile(r"\(\d+\)$")


class DecoderPool:
    """A small pool of pocketsphinx decoders of one configuration (creating one takes ~0.5 s)."""

    def __init__(self, config: dict[str, Any], size: int) -> None:
        """Keep up to `size` decoders of the given pocketsphinx configuration."""
        self.config = config
        self.size = max(1, size)
        self._idle: queue.Queue[Any] = queue.Queue()
        self._created = 0
        self._lock = threading.Lock()

    def _new(self) -> Any:
        from pocketsphinx import Decoder

        return Decoder(loglevel="FATAL", **self.config)

    def acquire(self) -> Any:
        """Take an idle decoder, creating one if the pool is not full, else wait for one."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            create = self._created < self.size
            if create:
                self._created += 1
        if create:
            try:
                return self._new()
            except Exception:
                with self._lock:
                    self._created -= 1
                raise
        return self._idle.get()

    def release(self, decoder: Any) -> None:
        """Give a decoder back to the pool."""
        self._idle.put(decoder)

    def warm(self) -> None:
        """Create one decoder ahead of the first request."""
        self.release(self.acquire())


_POOLS: dict[str, DecoderPool] = {}
_POOLS_LOCK = threading.Lock()


def _pool(config: str, size: int = 1) -> DecoderPool:
    with _POOLS_LOCK:
        if config not in _POOLS:
            _POOLS[config] = DecoderPool(RECOGNIZERS[config], size)
        return _POOLS[config]


def recognize(pcm: np.ndarray, config: str, duration: float | None = None) -> Transcript:
    """Recognise 16 kHz mono int16 PCM with the named configuration (blocking, CPU-bound)."""
    raw = pcm.astype(np.int16).tobytes()
    if duration is None:
        duration = len(pcm) / SAMPLE_RATE
    if len(raw) < 2 * SAMPLE_RATE // 20:  # under 50 ms: nothing to hear
        return Transcript("", (), duration)
    pool = _pool(config)
    decoder = pool.acquire()
    try:
        decoder.reinit_feat()  # reset feature/CMN state so results do not depend on history
        decoder.start_utt()
        decoder.process_raw(raw, False, True)
        decoder.end_utt()
        hyp = decoder.hyp()
        words = []
        for seg in decoder.seg() or ():  # None when nothing was recognised
            w = _WORD_CLEAN.sub("", seg.word)
            if not w or w.startswith(("<", "[", "+")):
                continue
            start = seg.start_frame / FRAMES_PER_SECOND
            words.append(Word(w, start, (seg.end_frame + 1) / FRAMES_PER_SECOND))
        text = " ".join(w.word for w in words) if words else (hyp.hypstr if hyp else "")
    finally:
        pool.release(decoder)
    return Transcript(text.strip(), tuple(words), duration)


def transcribe_bytes(data: bytes, fmt: str | None, config: str) -> Transcript:
    """Decode audio bytes and recognise them (blocking; runs in a worker process)."""
    pcm, duration = decode_audio(data, fmt)
    return recognize(pcm, config, duration)


def warm_worker(config: str = "base") -> int:
    """Load a decoder of the configuration in this process; return the process id."""
    _pool(config).warm()
    return os.getpid()


def _worker_init(parent: int) -> None:
    """Exit the worker if the server process goes away (so no orphan keeps running)."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


class TranscriptionService:
    """Runs recognition in worker processes (pocketsphinx holds the GIL while decoding), with a cache."""

    def __init__(self, workers: int = 2, cache_size: int = 256) -> None:
        """Start nothing yet; workers are spawned on first use or by warm()."""
        self.workers = workers
        self._executor: concurrent.futures.Executor | None = None
        self._cache: OrderedDict[tuple[str, str, str], Transcript] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _get_executor(self) -> concurrent.futures.Executor:
        with self._lock:
            if self._executor is None:
                if self.workers > 0:
                    self._executor = concurrent.futures.ProcessPoolExecutor(
                        max_workers=self.workers,
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_worker_init,
                        initargs=(os.getpid(),),
                    )
                else:  # in-process: simpler, but decoding then blocks the event loop
                    self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
            return self._executor

    def warm(self) -> None:
        """Start the workers and load the full model's decoder in each."""
        executor = self._get_executor()
        for _ in range(max(1, self.workers)):
            executor.submit(warm_worker, "base")

    async def transcribe(self, data: bytes, fmt: str | None, config: str) -> Transcript:
        """Recognise audio bytes off the event loop; identical audio is answered from the cache."""
        key = (config, fmt or "", hashlib.sha256(data).hexdigest())
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(
                self._get_executor(), transcribe_bytes, data, fmt, config
            )
        except concurrent.futures.process.BrokenProcessPool:
            with self._lock:  # a worker died: start a fresh pool for the next request
                self._executor = None
            raise
        with self._lock:
            self._cache[key] = result
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result

    def close(self) -> None:
        """Stop the workers."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
