"""Benchmark 7: audio that lives elsewhere: loading a remote dataset, a cold fetch, a warm check.

Serves N distinct 1 s clips (16 kHz 16-bit WAV, 32 KB each) with Python's `http.server` in a
process of its own on loopback and times, through the harness's own functions:

- `load_dataset` of 10,000 rows whose `file_name` is a URL (no network: only the place each clip
  will have in the cache is worked out);
- a cold `fetch_audio` of the N clips into an empty cache (8 at a time): files/s and MiB/s over
  loopback measure the harness's own cost, not a network's;
- a warm `fetch_audio` of the same clips in a fresh process (each file hashed, its header read,
  as the first batch of a CI run with a restored cache does), and the requests the server saw
  during it (target: none).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    Figure,
    base_parser,
    finish,
    judged,
    load,
    median,
    work_dir,
    write_wav,
)
from pydantic import BaseModel  # noqa: E402

from audio_evals.audio_cache import CACHE_ENV  # noqa: E402
from audio_evals.datasets import load_dataset  # noqa: E402
from audio_evals.remote_audio import AudioOutcome, fetch_audio  # noqa: E402

BENCH = "remote_fetch"
TARGET_LOAD_S = 1.0  # 10,000 remote rows: as fast as local ones
TARGET_WARM_MS = 2.0  # per clip, first check in a process (hash + header)
LOAD_ROWS = 10_000


class Label(BaseModel):
    """The benchmark's label."""

    digit: int


def write_store(store: Path, n: int) -> None:
    """N distinct 1 s clips."""
    store.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for i in range(n):
        path = store / f"c{i:05d}.wav"
        if not path.exists():
            write_wav(path, (rng.standard_normal(16_000) * 2000).astype("int16"))


def write_rows(folder: Path, base_url: str, n: int) -> Path:
    """A dataset of n rows whose file_name is a URL (ids c00000...)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {
                "file_name": f"{base_url}c{i % 100_000:05d}.wav",
                "id": f"r{i}",
                "expected": {"digit": 1},
            }
        )
        for i in range(n)
    ]
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def serve(store: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m http.server` on a free loopback port, its request log in `log`."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        cwd=store,
        stdout=subprocess.PIPE,
        stderr=log.open("wb"),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    port = re.search(r"port (\d+)", line)
    assert port, line
    return proc, f"http://127.0.0.1:{port.group(1)}/"


def requests(log: Path) -> int:
    """GETs the server has logged."""
    return log.read_text(errors="replace").count('"GET ')


def warm_check(dataset: Path) -> None:
    """In a fresh process: time fetch_audio on a warm cache; print JSON."""
    ds = load_dataset(dataset, Label)
    t0 = time.perf_counter()
    report = fetch_audio(ds, progress=False)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "cached": report.count(AudioOutcome.CACHED)}))


def main() -> int:
    """Load 10,000 remote rows, fetch N clips cold, check them warm in a fresh process."""
    if len(sys.argv) == 3 and sys.argv[1] == "--warm-check":
        warm_check(Path(sys.argv[2]))
        return 0
    parser = base_parser(__doc__ or "")
    args = parser.parse_args()
    started = time.perf_counter()
    n = 300 if args.short else 2000
    figures: list[Figure] = []
    print(f"{BENCH}: {n} clips, load {load()}")
    with work_dir(args.work, args.keep) as work:
        os.environ[CACHE_ENV] = str(work / "cache")
        store = work / "store"
        write_store(store, n)
        log = work / "server.log"
        server, base_url = serve(store, log)
        try:
            big = write_rows(work / "load", base_url, LOAD_ROWS)
            load_dataset(big, Label)  # warm: imports and the OS file cache
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                loaded = load_dataset(big, Label)
                runs.append(time.perf_counter() - t0)
            assert len(loaded) == LOAD_ROWS and requests(log) == 0
            load_s = median(runs)
            print(f"  load_dataset, {LOAD_ROWS:,} remote rows: {load_s:.3f} s (no request)")

            dataset = write_rows(work / "fetch", base_url, n)
            t0 = time.perf_counter()
            report = fetch_audio(load_dataset(dataset, Label), progress=False)
            cold_s = time.perf_counter() - t0
            assert report.fetched == n, report.summary()
            mib = report.fetched_bytes / 2**20
            cold_requests = requests(log)
            print(f"  cold fetch: {report.summary()}; {cold_requests} requests")

            proc = subprocess.run(
                [sys.executable, __file__, "--warm-check", str(dataset)],
                capture_output=True,
                text=True,
                check=True,
                env=os.environ,
            )
            warm = json.loads(proc.stdout.strip().splitlines()[-1])
            warm_requests = requests(log) - cold_requests
            assert warm["cached"] == n
            print(
                f"  warm check in a fresh process: {warm['seconds']:.3f} s, {warm_requests} requests"
            )
        finally:
            server.terminate()
            server.wait(10)
    figures.append(
        judged(
            BENCH,
            f"load_dataset, {LOAD_ROWS:,} rows with URLs (median of 3)",
            f"{load_s:.3f} s",
            f"<= {TARGET_LOAD_S:g} s",
            load_s <= TARGET_LOAD_S,
        )
    )
    figures.append(
        Figure(
            BENCH, f"cold fetch over loopback, {n:,} clips of 32 KB", f"{n / cold_s:.0f} files/s"
        )
    )
    figures.append(Figure(BENCH, "  the same in MiB/s", f"{mib / cold_s:.1f} MiB/s"))
    per_clip_ms = warm["seconds"] / n * 1000
    figures.append(
        judged(
            BENCH,
            f"warm check per clip, fresh process ({n:,} clips, {warm['seconds']:.2f} s)",
            f"{per_clip_ms:.2f} ms",
            f"<= {TARGET_WARM_MS:g} ms",
            per_clip_ms <= TARGET_WARM_MS,
        )
    )
    figures.append(
        judged(BENCH, "requests during the warm check", str(warm_requests), "0", warm_requests == 0)
    )
    details = {"load_s": load_s, "cold_s": cold_s, "warm": warm, "n": n}
    finish(BENCH, figures, args.json, started, details)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
