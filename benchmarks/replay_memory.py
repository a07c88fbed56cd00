"""Benchmark 4: peak RSS of a `pytest evals` replay at N and 10 N cases, measured from the outside."""

from __future__ import annotations

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
    parser.add_argument("--repeats", type=int, default=2, help="replays per size (max RSS kept)")
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
        roots = {size: recorder.project(ProjectSpec(n_cases=size, kind="tiny")) for size in sizes}
        roots[1] = recorder.subset(ProjectSpec(n_cases=sizes[0], kind="tiny"), 1)
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
