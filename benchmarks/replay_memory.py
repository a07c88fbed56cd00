"""Benchmark 4: peak RSS of a `pytest evals` replay at N and 10 N cases, measured from the outside."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    Figure,
    ProjectSpec,
    Recorder,
    Run,
    base_parser,
    expect_passed,
    finish,
    judged,
    load,
    ours_cmd,
    run,
    work_dir,
)

BENCH = "replay_memory"
TARGET_RATIO = 1.5
_RUSAGE_WRAPPER = (
    "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
    "print('maxrss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
    "sys.exit(rc)"
)


# Run inside a project: replay under tracemalloc and dump what is alive when the session finishes.
_SNAPSHOT_SCRIPT = """
import gc, sys, tracemalloc
import pytest

class Snapshot:
    def pytest_sessionstart(self, session):
        tracemalloc.start(8)  # after start-up imports: tracing them would take minutes

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        gc.collect()
        tracemalloc.take_snapshot().dump(sys.argv[1])

sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "evals"], plugins=[Snapshot()]))
"""


def _site(traceback: Any) -> str:
    """The innermost frame of the harness (else pytest, else anything) that allocated."""
    frames = list(traceback)  # oldest call first
    for needles in (("audio_evals/",), ("/_pytest/", "/vcr/"), ("",)):
        for frame in reversed(frames):
            if any(n in frame.filename for n in needles) and "importlib" not in frame.filename:
                short = frame.filename.split("site-packages/")[-1].split("src/")[-1]
                return f"{short}:{frame.lineno}"
    return "?"


def retained_per_case(
    work: Path, small: Path, big: Path, n_small: int, n_big: int
) -> list[tuple[str, float]]:
    """Bytes per case alive at session finish, by allocating site: tracemalloc, big minus small."""
    import tracemalloc

    script = work / "snapshot_replay.py"
    script.write_text(_SNAPSHOT_SCRIPT, encoding="utf-8")
    snaps = []
    for root in (small, big):
        out = work / f"{root.name}.snapshot"
        result = run([sys.executable, str(script), str(out)], root)
        if result.returncode != 0 or not out.exists():
            raise RuntimeError(f"tracemalloc replay of {root.name} failed:\n{result.tail()}")
        snaps.append(tracemalloc.Snapshot.load(str(out)))
    by_site: dict[str, float] = {}
    for stat in snaps[1].compare_to(snaps[0], "traceback"):
        site = _site(stat.traceback)
        by_site[site] = by_site.get(site, 0.0) + stat.size_diff
    per_case = [(site, size / (n_big - n_small)) for site, size in by_site.items()]
    return sorted(per_case, key=lambda kv: -kv[1])


def peak_rss(root: Path, items: int) -> Run:
    """Replay a project once; its peak RSS from /usr/bin/time -v (else getrusage in a wrapper)."""
    if shutil.which("/usr/bin/time"):
        result = run(ours_cmd(), root, time_v=True)
    else:
        result = run([sys.executable, "-c", _RUSAGE_WRAPPER, *ours_cmd()], root)
        for line in result.stderr.splitlines():
            if line.startswith("maxrss_kb "):
                result.max_rss_kb = int(line.split()[1])
    expect_passed(result, items, f"replay of {root.name}")
    if result.max_rss_kb is None:
        raise RuntimeError(f"no peak RSS for {root.name}:\n{result.tail()}")
    return result


def main() -> int:
    """Record tiny-clip suites of both sizes, replay each and print the peak RSS figures."""
    parser = base_parser(__doc__ or "")
    parser.add_argument(
        "--sizes", default=None, help="N,N cases (default 1000,10000; short 200,2000)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="replays per size (max RSS kept)")
    parser.add_argument(
        "--explain",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="tracemalloc: bytes retained per case by site (default: on unless --short)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    sizes = [
        int(x) for x in (args.sizes or ("200,2000" if args.short else "1000,10000")).split(",")
    ]
    method = "/usr/bin/time -v" if shutil.which("/usr/bin/time") else "getrusage(RUSAGE_CHILDREN)"
    print(
        f"{BENCH}: replays of {', '.join(map(str, sizes))} cases x 1 variant (40 ms clips), "
        f"peak RSS by {method}, load {load()}"
    )
    figures: list[Figure] = []
    details: dict[str, Any] = {"sizes": sizes, "method": method}
    with work_dir(args.work, args.keep) as work, Recorder(work) as recorder:
        largest = ProjectSpec(n_cases=max(sizes), kind="tiny")  # smaller suites: its first cases
        roots = {
            size: recorder.project(largest)
            if size == largest.n_cases
            else recorder.subset(largest, size)
            for size in [*sizes, 1]
        }
        recorder.close()
        rss: dict[int, int] = {}
        walls: dict[int, float] = {}
        for size in sorted(roots):
            results = [peak_rss(roots[size], size) for _ in range(args.repeats)]
            rss[size] = max(r.max_rss_kb or 0 for r in results)
            walls[size] = min(r.wall for r in results)
            print(
                f"  N={size:>6}: peak RSS {rss[size] / 1024:7.1f} MiB, wall {walls[size]:.2f} s "
                f"(load {load()})"
            )
        details["rss_kb"] = rss
        details["walls"] = walls
        explain = args.explain if args.explain is not None else not args.short
        if explain:
            small = 200 if 200 in roots else sizes[0]  # per-case figures need no big suite
            big_n = min(2000, sizes[-1])
            if big_n not in roots:
                roots[big_n] = recorder.subset(largest, big_n)
            if small not in roots:
                roots[small] = recorder.subset(largest, small)
            sites = retained_per_case(work, roots[small], roots[big_n], small, big_n)
            total = sum(size for _, size in sites)
            print(
                f"\n-- alive at session finish, per case (tracemalloc, N={big_n} minus N={small}): "
                f"{total / 1024:.1f} KiB --"
            )
            for site, size in sites[:12]:
                print(f"  {size / 1024:7.2f} KiB  {site}")
            details["retained_per_case"] = [(site, round(size)) for site, size in sites[:20]]
    lo, hi = sizes[0], sizes[-1]
    ratio = rss[hi] / rss[lo]
    per_interaction = (rss[hi] - rss[lo]) / (hi - lo)
    figures += [
        Figure(BENCH, "peak RSS, 1-case suite (the floor)", f"{rss[1] / 1024:.1f} MiB"),
        Figure(BENCH, f"peak RSS, N={lo}", f"{rss[lo] / 1024:.1f} MiB"),
        Figure(BENCH, f"peak RSS, N={hi}", f"{rss[hi] / 1024:.1f} MiB"),
        judged(
            BENCH,
            f"peak RSS N={hi} / N={lo}",
            f"{ratio:.2f}x",
            f"<= {TARGET_RATIO:g}x",
            ratio <= TARGET_RATIO,
        ),
        Figure(BENCH, "added RSS per case (slope)", f"{per_interaction:.1f} KiB"),
    ]
    finish(BENCH, figures, args.json, started, details)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
