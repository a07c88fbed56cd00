#!/usr/bin/env python3
"""Suites that outgrow one machine: a 100,000-case suite replayed in 4 shards and merged, replay per
core against the client's own floor, forked replay's scaling, and the start-up of a rerun.

    python benchmarks/scale.py [--short] [--cases N] [--shards K] [--work DIR --keep]

1. **Shards**: an N-case suite (distinct 40 ms clips, one variant, recorded once against the local
   server through `pytest evals --record-mode=once`) replayed as `pytest evals --shard i/K` for
   each i (one after the other on this machine, as K CI jobs would run side by side), then
   `audio-evals merge`: wall and peak RSS of each, and the merged n checked against N.
2. **Per core vs the floor**: the floor is the instructor + openai call the built-in extractor
   makes, against an in-memory transport (no vcrpy, no harness); the harness's replay is
   `run_suite(processes=1)` on the same project: calls per second of the floor x 0.8 is the target.
3. **Fork scaling**: `run_suite` with one process per CPU vs one process, same batch, items/s.
4. **Start-up**: `python -c "import openai, instructor"` vs `pytest evals -k <one case>` and vs
   the 32-case person suite with its report, in this repository (medians of 3).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (  # noqa: E402
    SUITE,
    Figure,
    ProjectSpec,
    Recorder,
    base_parser,
    finish,
    judged,
    load,
    ours_cmd,
    run,
    work_dir,
)
from replay_throughput import floor  # noqa: E402

BENCH = "scale"
REPO = Path(__file__).resolve().parents[1]
TARGET_PER_CORE = 0.8
TARGET_FORK = 0.8
TARGET_RERUN = 1.5
TARGET_SUITE = 2.0


def shards(root: Path, n: int, k: int, figures: list[Figure], details: dict[str, Any]) -> None:
    """Replay the suite as K shards, then merge; figures per step."""
    walls, rss = [], []
    for i in range(1, k + 1):
        result = run(
            ours_cmd(f"--shard={i}/{k}", "--reports-dir", str(root / "bench-reports")),
            root,
            time_v=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"shard {i}/{k} failed:\n{result.tail()}")
        walls.append(result.wall)
        rss.append((result.max_rss_kb or 0) / 1024)
        print(f"  shard {i}/{k}: {result.wall:.1f} s, peak RSS {rss[-1]:.0f} MiB (load {load()})")
    folders = sorted(str(p) for p in (root / "bench-reports" / "shards").iterdir())
    merged = run(
        [
            "/usr/bin/time",
            "-v",
            sys.executable,
            "-m",
            "audio_evals.cli",
            "merge",
            *folders,
            "-o",
            str(root / "merged"),
        ],
        root,
    )
    if merged.returncode != 0:
        raise RuntimeError(f"merge failed:\n{merged.tail()}")
    merge_rss = 0.0
    for line in merged.stderr.splitlines():
        if "Maximum resident set size" in line:
            merge_rss = int(line.split()[-1]) / 1024
    lines = (root / "merged" / "results.csv").read_text(encoding="utf-8").count("\n") - 1
    figures += [
        Figure(BENCH, f"{k} shards: wall of each (s)", " / ".join(f"{w:.1f}" for w in walls)),
        Figure(BENCH, f"{k} shards: slowest shard, as {k} parallel CI jobs", f"{max(walls):.1f} s"),
        Figure(BENCH, f"{k} shards: peak RSS of the largest shard", f"{max(rss):.0f} MiB"),
        Figure(BENCH, "merge: wall (report, gates, every file)", f"{merged.wall:.1f} s"),
        Figure(BENCH, "merge: peak RSS", f"{merge_rss:.0f} MiB"),
        judged(
            BENCH,
            "merged result rows (2 fields per case)",
            f"{lines:,}",
            f"== {2 * n:,}",
            lines == 2 * n,
        ),
    ]
    details["shards"] = {
        "walls": walls,
        "rss_mib": rss,
        "merge_wall": merged.wall,
        "merge_rss_mib": merge_rss,
    }


def replay_rate(root: Path, processes: int) -> float:
    """Items per second of `run_suite` replaying the whole suite with this many processes (best of 2)."""
    code = (
        "import sys, time\n"
        "from audio_evals import Project, load_suite, run_suite\n"
        f"suite = load_suite({str(root / 'evals' / (SUITE + '.eval.toml'))!r})\n"
        f"project = Project.at({str(root)!r})\n"
        "best = 0.0\n"
        "for _ in range(2):\n"
        "    started = time.perf_counter()\n"
        f"    run = run_suite(suite, project=project, processes={processes})\n"
        "    assert not [r for r in run.results if r.error_kind], 'replay errors'\n"
        "    best = max(best, len(run.results) / (time.perf_counter() - started))\n"
        "print(best)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=3600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"run_suite replay failed:\n{proc.stderr[-3000:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def startup(figures: list[Figure], details: dict[str, Any]) -> None:
    """One-case rerun and a 32-case suite with its report, against importing openai + instructor."""

    def median_wall(cmd: list[str]) -> float:
        walls = []
        for _ in range(3):
            started = time.perf_counter()
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
            walls.append(time.perf_counter() - started)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}")
        return statistics.median(walls)

    imports = median_wall([sys.executable, "-c", "import openai, instructor"])
    one = median_wall(
        ours_cmd(
            "-k", "local-baseline-person-0007", "--reports-dir", "/tmp/audio-evals-bench-rerun"
        )
    )
    suite = median_wall(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "evals/person.eval.toml",
            "--reports-dir",
            "/tmp/audio-evals-bench-suite",
        ]
    )
    figures += [
        Figure(BENCH, "python -c 'import openai, instructor'", f"{imports:.2f} s"),
        judged(
            BENCH,
            "one-case rerun (pytest evals -k <id>) / import",
            f"{one / imports:.2f}x ({one:.2f} s)",
            f"<= {TARGET_RERUN}x",
            one / imports <= TARGET_RERUN,
        ),
        judged(
            BENCH,
            "32-case person suite with its report / import",
            f"{suite / imports:.2f}x ({suite:.2f} s)",
            f"<= {TARGET_SUITE}x",
            suite / imports <= TARGET_SUITE,
        ),
    ]
    details["startup"] = {"import": imports, "one_case": one, "person_suite": suite}


def main() -> int:
    """Run the four measurements and print their figures."""
    parser = base_parser(__doc__ or "")
    parser.add_argument("--cases", type=int, default=None, help="N (default 100000, short 2000)")
    parser.add_argument("--shards", type=int, default=4, help="K (default 4)")
    parser.add_argument("--floor-calls", type=int, default=300)
    args = parser.parse_args()
    started = time.perf_counter()
    n = args.cases or (2000 if args.short else 100_000)
    figures: list[Figure] = []
    details: dict[str, Any] = {"n": n, "shards": args.shards}
    print(f"{BENCH}: N={n} cases (40 ms clips, 1 variant) in {args.shards} shards, load {load()}")
    with work_dir(args.work, args.keep) as work, Recorder(work) as recorder:
        spec = ProjectSpec(n_cases=n, kind="tiny")
        root = recorder.project(spec)
        recorder.close()  # replay is offline
        shards(root, n, args.shards, figures, details)
        calls = floor(root, args.floor_calls)
        one = replay_rate(root, 1)
        cpus = len(__import__("os").sched_getaffinity(0))
        many = replay_rate(root, cpus)
        floor_rate = 1000.0 / calls["instructor_call"]
        figures += [
            Figure(
                BENCH,
                "floor: instructor + openai call, in-memory",
                f"{calls['instructor_call']:.2f} ms",
            ),
            judged(
                BENCH,
                "replay per core / floor (calls/s)",
                f"{one / floor_rate:.2f} ({one:.0f} vs {floor_rate:.0f}/s)",
                f">= {TARGET_PER_CORE}",
                one / floor_rate >= TARGET_PER_CORE,
            ),
            judged(
                BENCH,
                f"forked replay on {cpus} cores / one process",
                f"{many / one:.2f}x ({many:.0f}/s)",
                f">= {TARGET_FORK * cpus:.1f}x",
                many / one >= TARGET_FORK * cpus,
            ),
        ]
        details.update(
            floor=calls, per_core=one, forked=many, cpus=cpus, record=recorder.record_seconds
        )
    startup(figures, details)
    finish(BENCH, figures, args.json, started, details)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
