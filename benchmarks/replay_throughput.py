"""Benchmark 1: replay throughput of `pytest evals` vs the naive pytest-recording way, and its scaling."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    MODEL,
    PROMPTS,
    SUITE,
    Figure,
    ProjectSpec,
    Recorder,
    base_parser,
    expect_passed,
    finish,
    judged,
    load,
    naive_cmd,
    ours_cmd,
    print_profile,
    run,
    variant_names,
    work_dir,
)

BENCH = "replay_throughput"
TARGET_IPS = 500.0
TARGET_RATIO = 4.0
TARGET_SCALING = 1.5


def timed_replays(
    commands: dict[str, tuple[list[str], Path, int]], repeats: int
) -> dict[str, list[float]]:
    """Run each (command, project, expected items) `repeats` times, interleaved; wall times per name."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for rep in range(repeats):
        for name, (cmd, root, items) in commands.items():
            result = run(cmd, root)
            expect_passed(result, items, f"replay {name}")
            walls[name].append(result.wall)
            print(f"  run {rep + 1}/{repeats} {name:<14} {result.wall:7.2f} s  (load {load()})")
    return walls


def floor(project: Path, calls: int) -> dict[str, float]:
    """Milliseconds per call of the same instructor/openai call against an in-memory transport (no vcrpy)."""
    import httpx2
    import instructor
    import openai
    from instructor.processing.multimodal import Audio
    from openai import AsyncOpenAI

    from audio_evals.bodies import normalise_body
    from audio_evals.cassettes import match_key
    from audio_evals.runner import score_result
    from audio_evals.suites import load_suite
    from audio_evals.traffic import CaseTraffic

    cassette = project / "cassettes" / SUITE / f"{variant_names(1)[0]}.yaml"
    text = cassette.read_text(encoding="utf-8")
    second = text.find("\n- request:", text.find("- request:") + 1)  # the first interaction only
    head = text if second < 0 else text[: second + 1]
    interaction = yaml.load(head, Loader=yaml.CSafeLoader)["interactions"][0]
    answer = interaction["response"]["body"]["string"].encode()
    stored = json.loads(interaction["request"]["body"])
    suite = load_suite(project / "evals" / f"{SUITE}.eval.toml", root=project)
    case = suite.dataset.cases[0]
    variant = suite.variants[0]

    def handler(request: Any) -> Any:
        return httpx2.Response(200, headers={"content-type": "application/json"}, content=answer)

    b64 = base64.b64encode(case.read_audio()).decode()
    body_holder: dict[str, bytes] = {}

    def capture(request: Any) -> Any:
        body_holder["body"] = request.read()
        return handler(request)

    async def measure() -> dict[str, float]:
        raw = AsyncOpenAI(
            base_url="http://localhost/v1",
            api_key="sk-floor",
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(transport=httpx2.MockTransport(capture)),
        )
        client = instructor.from_openai(raw)

        async def instructor_call() -> Any:
            return await client.chat.completions.create_with_completion(
                model=MODEL,
                response_model=suite.response_model,
                messages=[
                    {"role": "user", "content": [PROMPTS[0], Audio.from_path(case.audio_path)]}
                ],
                max_retries=1,
                modalities=["text"],
            )

        async def sdk_call() -> Any:
            return await raw.chat.completions.create(
                model=MODEL,
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": PROMPTS[0]},
                            {"type": "input_audio", "input_audio": {"data": b64, "format": "wav"}},
                        ],
                    }
                ],
                tools=stored["tools"],
                tool_choice=stored["tool_choice"],
                modalities=["text"],
            )

        out: dict[str, float] = {}
        for name, fn in (("instructor_call", instructor_call), ("sdk_call", sdk_call)):
            for _ in range(max(5, calls // 10)):
                await fn()
            started = time.perf_counter()
            for _ in range(calls):
                await fn()
            out[name] = (time.perf_counter() - started) / calls * 1000.0
        await raw.close()
        return out

    out = asyncio.run(measure())
    body = body_holder["body"]

    class _Req:
        method = "POST"
        uri = "http://localhost/v1/chat/completions"
        headers = {"content-type": "application/json"}

    req = _Req()
    req.body = body  # type: ignore[attr-defined]
    started = time.perf_counter()
    for _ in range(calls):
        normalise_body.cache_clear()
        match_key(req)
    out["match_key_uncached"] = (time.perf_counter() - started) / calls * 1000.0
    predicted = suite.response_model(name="Jason", age=20)
    started = time.perf_counter()
    for _ in range(calls):
        score_result(suite, variant, case, 0, predicted, None, CaseTraffic("c/0"), 1.0)
    out["score_result"] = (time.perf_counter() - started) / calls * 1000.0
    started = time.perf_counter()
    for _ in range(calls):
        suite.dataset.case(suite.dataset.cases[-1].id)
    out["dataset_case_last"] = (time.perf_counter() - started) / calls * 1000.0
    out["n_cases"] = float(len(suite.dataset))
    out["run_batch_item"] = in_process_replay(project)
    return out


def in_process_replay(project: Path) -> float:
    """Milliseconds per item of the library's `run_suite` replaying every batch in this process."""
    from audio_evals import Project, load_suite, run_suite

    suite = load_suite(project / "evals" / f"{SUITE}.eval.toml", root=project)
    best = float("inf")
    for _ in range(2):  # the first pass also pays lazy imports and first-call caches
        started = time.perf_counter()
        run = run_suite(suite, project=Project.at(project), processes=1)
        errors = [r for r in run.results if r.error_kind]
        expected = len(suite.variants) * len(suite.dataset)
        if len(run.results) != expected or errors:
            raise RuntimeError(f"in-process replay: {len(errors)} errors, e.g. {errors[:1]}")
        best = min(best, (time.perf_counter() - started) / expected * 1000.0)
    return best


def profile_replay(root: Path, out: Path) -> dict[str, Any]:
    """Replay the project once under pyinstrument; print and return the breakdown."""
    cmd = [
        sys.executable,
        "-m",
        "pyinstrument",
        "-r",
        "pyisession",
        "-o",
        str(out),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "evals",
    ]
    result = run(cmd, root)
    if result.returncode != 0 or not out.exists():
        raise RuntimeError(f"profiled replay failed:\n{result.tail()}")
    return print_profile("ours, replay under pyinstrument", out)


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = base_parser(__doc__ or "")
    parser.add_argument("--cases", type=int, default=None, help="N (default 1000, short 200)")
    parser.add_argument("--variants", type=int, default=2, help="V (default 2)")
    parser.add_argument("--seconds", type=float, default=3.0, help="audio seconds per case")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs each (3, short 2)")
    parser.add_argument(
        "--scale",
        default=None,
        help="N,N for the scaling check with tiny clips (full default 1000,10000; short: off)",
    )
    parser.add_argument("--floor-calls", type=int, default=300, help="calls per floor figure")
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the pyinstrument run (off in --short)"
    )
    parser.add_argument(
        "--xdist", action="store_true", help="also time the replay under pytest-xdist -n 2"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    n = args.cases or (200 if args.short else 1000)
    v = args.variants
    repeats = args.repeats or (2 if args.short else 3)
    scale = args.scale if args.scale is not None else ("" if args.short else "1000,10000")
    sizes = [int(x) for x in scale.split(",") if x.strip()]
    figures: list[Figure] = []
    details: dict[str, Any] = {"n": n, "v": v, "seconds": args.seconds, "repeats": repeats}
    print(f"{BENCH}: N={n} cases x V={v} variants, {args.seconds:g} s audio each, load {load()}")
    with work_dir(args.work, args.keep) as work, Recorder(work) as recorder:
        main_spec = ProjectSpec(n_cases=n, variants=v, seconds=args.seconds, naive=True)
        main_root = recorder.project(main_spec)
        one_root = recorder.subset(main_spec, 1)
        scale_roots: dict[int, Path] = {}
        if sizes:  # one recording of the largest size; the smaller suites are its first cases
            largest = ProjectSpec(n_cases=max(sizes), kind="tiny")
            for size in [*sizes, 1]:
                scale_roots[size] = (
                    recorder.project(largest)
                    if size == largest.n_cases
                    else recorder.subset(largest, size)
                )
        recorder.close()  # replay is offline: nothing may reach a server
        details["record_seconds"] = dict(recorder.record_seconds)
        items = main_spec.items
        walls = timed_replays(
            {
                "ours-1case": (ours_cmd(), one_root, v),
                "ours": (ours_cmd(), main_root, items),
                "naive-1case": (naive_cmd(), one_root, v),
                "naive": (naive_cmd(), main_root, items),
            },
            repeats,
        )
        details["walls"] = walls
        best = {name: min(values) for name, values in walls.items()}
        ours_work = best["ours"] - best["ours-1case"]
        naive_work = best["naive"] - best["naive-1case"]
        ours_ips = items / ours_work
        naive_ips = items / naive_work
        figures += [
            Figure(BENCH, f"ours: wall, {items} items (min of {repeats})", f"{best['ours']:.2f} s"),
            Figure(
                BENCH,
                "ours: pytest start-up (same command, 1-case suite)",
                f"{best['ours-1case']:.2f} s",
            ),
            Figure(BENCH, "ours: end-to-end items/s", f"{items / best['ours']:.0f}"),
            judged(
                BENCH,
                "ours: harness items/s = items/(wall - start-up)",
                f"{ours_ips:.0f}",
                f">= {TARGET_IPS:.0f}",
                ours_ips >= TARGET_IPS,
            ),
            Figure(
                BENCH, f"naive: wall, {items} tests (min of {repeats})", f"{best['naive']:.2f} s"
            ),
            Figure(
                BENCH,
                "naive: pytest start-up (same command, 1-case module)",
                f"{best['naive-1case']:.2f} s",
            ),
            Figure(BENCH, "naive: harness items/s", f"{naive_ips:.0f}"),
            judged(
                BENCH,
                "ours / naive, harness items/s",
                f"{ours_ips / naive_ips:.2f}x",
                f">= {TARGET_RATIO:g}x",
                ours_ips / naive_ips >= TARGET_RATIO,
            ),
            Figure(BENCH, "ours / naive, end-to-end wall", f"{best['naive'] / best['ours']:.2f}x"),
        ]
        if sizes:
            scale_walls = timed_replays(
                {
                    f"tiny-{size}": (ours_cmd(), root, max(size, 1))
                    for size, root in sorted(scale_roots.items())
                },
                repeats,
            )
            details["scale_walls"] = scale_walls
            base = min(scale_walls["tiny-1"])
            per_item = {
                size: (min(scale_walls[f"tiny-{size}"]) - base) / size * 1000.0 for size in sizes
            }
            details["per_item_ms"] = per_item
            for size in sizes:
                figures.append(
                    Figure(
                        BENCH,
                        f"per-item cost at N={size} (40 ms clips)",
                        f"{per_item[size]:.2f} ms",
                    )
                )
            if len(sizes) >= 2:
                lo, hi = sizes[0], sizes[-1]
                ratio = per_item[hi] / per_item[lo]
                figures.append(
                    judged(
                        BENCH,
                        f"per-item cost N={hi} / N={lo}",
                        f"{ratio:.2f}x",
                        f"<= {TARGET_SCALING:g}x",
                        ratio <= TARGET_SCALING,
                    )
                )
        fl = floor(main_root, args.floor_calls)
        details["floor_ms"] = fl
        per_item = 1000.0 / ours_ips
        print(
            "\n-- floor: the same call against an in-memory httpx2 transport "
            f"({args.floor_calls} sequential calls; load {load()}) --"
        )
        for label, value in (
            (
                f"instructor create_with_completion + Audio.from_path ({args.seconds:g} s WAV)",
                fl["instructor_call"],
            ),
            ("openai SDK alone (pre-built messages, base64 audio)", fl["sdk_call"]),
            ("audio-evals match_key on the full body (uncached)", fl["match_key_uncached"]),
            ("audio-evals score_result (Person, 2 fields)", fl["score_result"]),
            (
                f"Dataset.case(id) of the last of {int(fl['n_cases'])} cases (linear scan)",
                fl["dataset_case_last"],
            ),
            (
                "run_batch replay in-process (cassette, vcrpy, scoring; no pytest) per item",
                fl["run_batch_item"],
            ),
            ("pytest evals harness work per item (timed runs above)", per_item),
        ):
            print(f"  {value:7.3f} ms  {label}")
        figures += [
            Figure(
                BENCH, "floor: instructor+openai call, in-memory", f"{fl['instructor_call']:.2f} ms"
            ),
            Figure(BENCH, "floor: openai SDK alone, in-memory", f"{fl['sdk_call']:.2f} ms"),
            Figure(
                BENCH,
                "floor: call-only ceiling (1 core)",
                f"{1000.0 / fl['instructor_call']:.0f} items/s",
            ),
            Figure(
                BENCH, "run_batch replay in-process, per item", f"{fl['run_batch_item']:.2f} ms"
            ),
            Figure(BENCH, "pytest evals harness work, per item", f"{per_item:.2f} ms"),
        ]
        if args.xdist:
            result = run(ours_cmd("-n", "2"), main_root)
            expect_passed(result, items, "replay under -n 2")
            print(f"\n  pytest evals -n 2: {result.wall:.2f} s wall (load {load()})")
            details["xdist_wall"] = result.wall
            figures.append(
                Figure(
                    BENCH,
                    "ours under -n 2: end-to-end wall",
                    f"{result.wall:.2f} s",
                    note=f"{best['ours']:.2f} s without -n",
                )
            )
        if args.no_profile or args.short:
            pass
        elif importlib.util.find_spec("pyinstrument") is None:
            print("\n  (no pyinstrument installed: `pip install pyinstrument` for the profile)")
        else:
            details["profile"] = profile_replay(main_root, work / "replay.pyisession")
    finish(BENCH, figures, args.json, started, details)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
