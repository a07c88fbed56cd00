"""Benchmark 5: loading a large dataset (it is on the start-up path of every run) and validating it.

Writes N rows over N distinct short clips (WAV, with every tenth clip FLAC and every tenth MP3)
and times `load_dataset` (header checks of every clip, labels against a nested model, paths) and,
at a smaller size, `audio-evals validate`'s full decode of every clip.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Figure, base_parser, finish, judged, load, median, work_dir  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from audio_evals.datasets import load_dataset  # noqa: E402
from audio_evals.validation import validate_dataset  # noqa: E402

BENCH = "dataset_load"
TARGET_LOAD_S = 1.0  # 10,000 rows: "must not take seconds"


class Caller(BaseModel):
    """A nested part of the label."""

    first_name: str
    phone: str | None = None


class Call(BaseModel):
    """The benchmark's label: a nested model, a list and scalars."""

    caller: Caller
    reason: str
    callback: bool = False
    topics: list[str] = []


def write_dataset(root: Path, rows: int) -> Path:
    """`rows` rows over as many distinct 0.2 s clips (8 kHz), mostly WAV, some FLAC and MP3."""
    audio = root / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    lines = []
    for i in range(rows):
        suffix = "flac" if i % 10 == 1 else "mp3" if i % 10 == 2 else "wav"
        path = audio / f"c{i:05d}.{suffix}"
        pcm = (rng.standard_normal(1600) * 2000).astype("int16")
        if suffix == "mp3":
            sf.write(path, pcm, 8000, format="MP3")
        else:
            sf.write(path, pcm, 8000)
        lines.append(
            json.dumps(
                {
                    "file_name": f"audio/{path.name}",
                    "id": f"c{i:05d}",
                    "expected": {
                        "caller": {"first_name": f"Name{i}", "phone": None},
                        "reason": "billing",
                        "topics": ["a", "b"],
                    },
                    "tags": {"speaker": f"s{i % 7}"},
                    "transcript": "hello there",
                }
            )
        )
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def main() -> int:
    """Time load_dataset at 1,000 and 10,000 rows and validate at 1,000 rows."""
    parser = base_parser(__doc__ or "")
    args = parser.parse_args()
    started = time.perf_counter()
    sizes = (200, 1000) if args.short else (1000, 10_000)
    figures: list[Figure] = []
    print(f"{BENCH}: sizes {sizes}, load {load()}")
    with work_dir(args.work, args.keep) as work:
        timings: dict[int, float] = {}
        cpu_s: dict[int, float] = {}
        for n in sizes:
            root = write_dataset(work / f"ds{n}", n)
            subprocess.run(["sync"], check=False)
            load_dataset(root, Call)  # warm: the OS file cache, as on a second run
            runs, cpu = [], []
            for _ in range(3):
                t0, c0 = time.perf_counter(), time.process_time()
                dataset = load_dataset(root, Call)
                runs.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            assert len(dataset) == n
            timings[n], cpu_s[n] = median(runs), median(cpu)
            print(
                f"  load_dataset, {n:,} rows: {timings[n]:.3f} s wall, {cpu_s[n]:.3f} s CPU "
                f"({timings[n] / n * 1e6:.0f} us/row; load {load()})"
            )
        small = sizes[0]
        t0 = time.perf_counter()
        report = validate_dataset(work / f"ds{small}", Call)
        validate_s = time.perf_counter() - t0
        assert report.ok, report.problems[:3]
        print(f"  validate (decodes every clip), {small:,} rows: {validate_s:.2f} s")
    big = sizes[-1]
    target = TARGET_LOAD_S * big / 10_000
    figures.append(
        judged(
            BENCH,
            f"load_dataset, {big:,} rows (median of 3, warm cache)",
            f"{timings[big]:.3f} s",
            f"<= {target:g} s",
            timings[big] <= target,
        )
    )
    figures.append(Figure(BENCH, f"per row at {big:,} rows", f"{timings[big] / big * 1e6:.0f} us"))
    figures.append(Figure(BENCH, f"load_dataset CPU time, {big:,} rows", f"{cpu_s[big]:.3f} s"))
    figures.append(Figure(BENCH, f"validate (full decode), {small:,} rows", f"{validate_s:.2f} s"))
    details = {"timings": timings, "cpu": cpu_s, "validate_s": validate_s}
    finish(BENCH, figures, args.json, started, details)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
