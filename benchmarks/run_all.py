"""Run every benchmark, one subprocess each, and print all figures with PASS/MISS against the targets.

    python benchmarks/run_all.py --short        # CI sizes, a few minutes
    python benchmarks/run_all.py                # the sizes the targets name (about 20 minutes)
    python benchmarks/run_all.py --markdown F   # also write the figure table as Markdown

Exit status: 0 when every benchmark ran (a MISS is a figure, not a crash), 1 when one failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, Figure, load, machine, print_figures  # noqa: E402

BENCHMARKS = (
    "replay_throughput",
    "cassette_size",
    "live_concurrency",
    "replay_memory",
    "dataset_load",
    "report_scale",
    "remote_fetch",
    "report_1m",
    "scale",
)


def run_one(name: str, short: bool, out: Path) -> tuple[int, float]:
    """Run one benchmark script with its output streaming through; (exit status, seconds)."""
    cmd = [sys.executable, str(BENCH_DIR / f"{name}.py"), "--json", str(out)]
    if short:
        cmd.append("--short")
    print(f"\n$ {' '.join(['python', f'benchmarks/{name}.py', *cmd[2:]])}", flush=True)
    started = time.perf_counter()
    returncode = subprocess.run(cmd, check=False).returncode
    return returncode, time.perf_counter() - started


def markdown(figures: list[Figure], mode: str, info: dict[str, Any]) -> str:
    """The figures as a Markdown table, with the machine they were measured on."""
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/run_all.py{mode}` on "
        f"{info['cores']} cores ({info['cpu'] or 'unknown CPU'}), Python {info['python']}.",
        "",
        "| benchmark | figure | value | target | status |",
        "|---|---|---:|---|---|",
    ]
    for f in figures:
        lines.append(f"| {f.bench} | {f.name} | {f.value} | {f.target} | {f.status} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    """Run the selected benchmarks and print the combined figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--short", action="store_true", help="CI sizes")
    parser.add_argument(
        "--only", action="append", choices=BENCHMARKS, help="run only this benchmark (repeatable)"
    )
    parser.add_argument("--markdown", default=None, help="write the figure table here as Markdown")
    args = parser.parse_args()
    names = args.only or list(BENCHMARKS)
    started = time.perf_counter()
    print(f"benchmarks ({'short' if args.short else 'full'}): {', '.join(names)}; load {load()}")
    figures: list[Figure] = []
    failed: list[str] = []
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="audio-evals-bench-") as tmp:
        for name in names:
            out = Path(tmp) / f"{name}.json"
            returncode, seconds[name] = run_one(name, args.short, out)
            if returncode != 0 or not out.exists():
                failed.append(f"{name} (exit status {returncode})")
                continue
            data = json.loads(out.read_text(encoding="utf-8"))
            figures += [Figure(**f) for f in data["figures"]]
    judged = [f for f in figures if f.status in {"PASS", "MISS"}]
    print_figures("all benchmarks: figures with a target", judged)
    timing = ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items())
    passed = sum(f.status == "PASS" for f in judged)
    print(
        f"\n{passed} of {len(judged)} targets met; {len(failed)} benchmark(s) failed; "
        f"{time.perf_counter() - started:.0f} s in all ({timing}); load {load()}"
    )
    if args.markdown:
        mode = " --short" if args.short else ""
        Path(args.markdown).write_text(markdown(figures, mode, machine()), encoding="utf-8")
        print(f"figure table written: {args.markdown}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
