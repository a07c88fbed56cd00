"""Benchmark 3: live (record-mode all) wall time at concurrency C against the local server with latency L."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    SUITE,
    Figure,
    ProjectSpec,
    base_parser,
    finish,
    judged,
    load,
    work_dir,
    write_project,
)

BENCH = "live_concurrency"
TARGET_RATIO = 1.25


def scenario(
    root: Path, n: int, concurrency: int, latency_ms: float, rate_429: float, seed: int
) -> dict[str, Any]:
    """One live run: run_batch inside open_cassette(record mode "all") against a fresh local server."""
    from audio_evals.cassettes import cassette_path, open_cassette, read_interactions
    from audio_evals.local.runner import LocalServer
    from audio_evals.results import EvalRef
    from audio_evals.runner import Endpoint, run_batch
    from audio_evals.suites import load_suite

    with LocalServer(latency_ms=latency_ms, rate_429=rate_429, seed=seed) as server:
        suite = load_suite(root / "evals" / f"{SUITE}.eval.toml", root=root)
        variant = suite.variants[0]
        cases = list(suite.dataset)
        endpoint = Endpoint(server.base_url, "sk-local", max_retries=5, live=True)
        warm_path = cassette_path(root / "cassettes", suite.name, "warm")
        with open_cassette(warm_path, "all"):  # the server's ASR cache now holds the clip
            asyncio.run(
                run_batch(
                    suite,
                    variant,
                    [EvalRef(suite.name, variant.name, cases[0].id)],
                    endpoint=endpoint,
                )
            )
        server.reset_stats()
        refs = [EvalRef(suite.name, variant.name, c.id) for c in cases]
        path = cassette_path(root / "cassettes", suite.name, f"{variant.name}-{rate_429:g}")
        started = time.perf_counter()
        with open_cassette(path, "all"):
            batch_started = time.perf_counter()
            results = asyncio.run(
                run_batch(
                    suite,
                    variant,
                    refs,
                    endpoint=Endpoint(server.base_url, "sk-local", variant.max_retries, live=True),
                    concurrency=concurrency,
                )
            )
            batch = time.perf_counter() - batch_started
        wall = time.perf_counter() - started
        stats = server.stats()
    lost = [r for r in refs if r not in results or results[r].error_kind]
    errors = sorted({results[r].error_kind or "" for r in lost if r in results})
    statuses = {str(k): int(v) for k, v in (stats.get("by_status") or {}).items()}
    return {
        "wall": wall,
        "batch": batch,
        "ideal": n * latency_ms / 1000.0 / concurrency,
        "lost": len(lost),
        "errors": errors,
        "requests": int(stats.get("requests", 0)),
        "by_status": statuses,
        "retries": int(stats.get("requests", 0)) - n,
        "max_in_flight": int(stats.get("max_in_flight", 0)),
        "recorded": len(read_interactions(path)),
        "max_retries": variant.max_retries,
    }


def main() -> int:
    """Run the live benchmark with and without injected 429s and print the figures."""
    parser = base_parser(__doc__ or "")
    parser.add_argument("--requests", type=int, default=200, help="N (default 200)")
    parser.add_argument("--concurrency", type=int, default=16, help="C (default 16)")
    parser.add_argument("--latency-ms", type=float, default=500.0, help="L (default 500)")
    parser.add_argument("--rate-429", type=float, default=0.1, help="share of 429s (default 0.1)")
    parser.add_argument("--seconds", type=float, default=1.0, help="the shared clip's seconds")
    parser.add_argument("--seed", type=int, default=1, help="the server's fault seed")
    args = parser.parse_args()
    started = time.perf_counter()
    n = args.requests  # the target's sizes take about 25 s, so --short keeps them
    c = args.concurrency
    latency = args.latency_ms
    figures: list[Figure] = []
    details: dict[str, Any] = {"n": n, "c": c, "latency_ms": latency}
    print(
        f"{BENCH}: N={n} requests, C={c}, L={latency:g} ms, one {args.seconds:g} s clip for all "
        f"(run_batch inside open_cassette, record mode 'all'), load {load()}"
    )
    with work_dir(args.work, args.keep) as work:
        spec = ProjectSpec(n_cases=n, same_audio=True, seconds=args.seconds)
        root = work / "projects" / f"live_{spec.key}"
        write_project(root, spec, "http://127.0.0.1:9/v1")  # run_batch gets the live base_url
        floor = scenario(root, n, c, 0.0, 0.0, args.seed)
        details["no latency"] = floor
        print(
            f"  L=0 (CPU floor: client SDK + vcrpy + server, no sleeping): {floor['wall']:.2f} s for "
            f"{n} requests = {1000 * floor['wall'] / n:.1f} ms per request (load {load()})"
        )
        figures.append(
            Figure(
                BENCH,
                "L=0: wall of the same N requests",
                f"{floor['wall']:.2f} s",
                note="the excess over ideal below is about this: CPU per request x N",
            )
        )
        for label, rate in (("no faults", 0.0), (f"{args.rate_429:.0%} 429s", args.rate_429)):
            out = scenario(root, n, c, latency, rate, args.seed)
            details[label] = out
            ratio = out["wall"] / out["ideal"]
            print(
                f"  {label:<10} wall {out['wall']:.2f} s (batch {out['batch']:.2f} s), ideal "
                f"{out['ideal']:.2f} s, ratio {ratio:.3f}; requests {out['requests']}, statuses "
                f"{out['by_status']}, max in flight {out['max_in_flight']}, lost {out['lost']} "
                f"{out['errors'] or ''}, recorded {out['recorded']} (load {load()})"
            )
            figures += [
                Figure(BENCH, f"{label}: wall (batch + cassette write)", f"{out['wall']:.2f} s"),
                Figure(BENCH, f"{label}: ideal N*L/C", f"{out['ideal']:.2f} s"),
                judged(
                    BENCH,
                    f"{label}: wall / ideal",
                    f"{ratio:.3f}x",
                    f"<= {TARGET_RATIO:g}x",
                    ratio <= TARGET_RATIO,
                )
                if rate == 0.0
                else Figure(  # the target bounds the fault-free run; with 429s it asks for no loss
                    BENCH,
                    f"{label}: wall / ideal",
                    f"{ratio:.3f}x",
                    note="retried requests wait retry-after and take another L",
                ),
                judged(
                    BENCH,
                    f"{label}: lost results (missing or errored)",
                    str(out["lost"]),
                    "== 0",
                    out["lost"] == 0 and out["recorded"] == n,
                ),
                Figure(
                    BENCH,
                    f"{label}: ideal + L=0 wall + retried slots",
                    f"{out['ideal'] + floor['wall'] + out['retries'] * (latency + 100.0) / 1000.0 / c:.2f} s",
                    note="a model: ideal + CPU floor + each retry's extra L + 100 ms retry-after, over C",
                ),
                Figure(
                    BENCH,
                    f"{label}: retries seen in /stats",
                    str(out["retries"]),
                    note=f"by status {out['by_status']}; max in flight {out['max_in_flight']}",
                ),
            ]
    finish(BENCH, figures, args.json, started, details)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
