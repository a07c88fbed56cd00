"""Benchmark 7: the report of 1M result rows (100,000 scored runs x 10 fields) merged from 4 shards.

A synthetic run of a 10-field booking schema, scored by the real scorer (`score_fields`), with
tags, durations, usage, transcripts and 1% errored cases, saved as 4 shards by `write_shard`.
`audio-evals merge` reads them back and writes the one report folder (every frame, the CSVs, the
Parquet files, summary.md, run.json, report.html, the gates): its wall time and peak RSS
(`/usr/bin/time -v`) are the figures judged against the targets. A second child process times
each phase (reading the shards, each frame, each file) with its peak RSS so far.

    python benchmarks/report_1m.py            # 100,000 cases x 1 variant, 50,000 cases x 2 variants
    python benchmarks/report_1m.py --short    # 5,000 cases x 2 variants (CI)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import resource
import shutil
import sys
import time
import wave
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Figure, base_parser, finish, judged, load, run, work_dir  # noqa: E402

from audio_evals.cassettes import RecordMode  # noqa: E402
from audio_evals.engine import BatchInfo, BatchStatus, Run, SuiteInfo  # noqa: E402
from audio_evals.field_types import categorical_fields  # noqa: E402
from audio_evals.project import Project  # noqa: E402
from audio_evals.results import Call, CaseResult, ErrorKind, LatencySource  # noqa: E402
from audio_evals.runner import dump_record  # noqa: E402
from audio_evals.scoring import Outcome, score_fields  # noqa: E402
from audio_evals.shards import shard_folder, write_shard  # noqa: E402

BENCH = "report_1m"
TARGET_S = 30.0
TARGET_RSS_MIB = 2048.0
SHARDS = 4
SUITE = "calls"
FULL_LAYOUTS = ((100_000, 1), (50_000, 2))
SHORT_LAYOUTS = ((5_000, 2),)
VARIANTS = (
    ("baseline", "gpt-audio", "direct", 0.93),
    ("candidate", "gpt-audio-1.5", "transcribe_then_extract", 0.95),
)
SPEAKERS = [f"spk-{i:03d}" for i in range(400)]
CONDITIONS = ("clean", "telephone", "noisy", "far-field")
FIRST = ("Sarah", "Tom", "Maria", "Ahmed", "Li", "Olga", "Kwame", "Ines", "Raj", "Eva", "Jonas")
LAST = ("Johnson", "Garcia", "Nguyen", "Okafor", "Schmidt", "O'Neil", None)
SYMPTOMS = ("fever", "cough", "toothache", "headache", "swelling")
PYPROJECT = """\
[tool.audio-evals.gates]
min_accuracy = { "*:*" = 0.5 }
max_error_rate = 0.05
"""


class Service(StrEnum):
    CHECKUP = "checkup"
    CLEANING = "cleaning"
    FILLING = "filling"
    CONSULTATION = "consultation"
    EXTRACTION = "extraction"


class Caller(BaseModel):
    first_name: str
    last_name: str | None = None


class Booking(BaseModel):
    """Ten scored fields: two nested, an enum, a bool, a Literal, a list, an int, optional ones."""

    caller: Caller
    service: Service
    date: str
    time: str | None = None
    urgent: bool = False
    callback_number: str | None = None
    language: Literal["en", "es", "fr", "de"] = "en"
    symptoms: list[str] = []
    party_size: int = 1


def _tone(path: Path) -> None:
    """A real 0.1 s 8 kHz WAV file (the cases' clips are hard links to it)."""
    rate = 8000
    samples = (2000 * np.sin(2 * np.pi * 440 * np.arange(rate // 10) / rate)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def _expected(i: int) -> Booking:
    return Booking(
        caller=Caller(first_name=FIRST[i % len(FIRST)], last_name=LAST[(i // 3) % len(LAST)]),
        service=list(Service)[(i * 7) % len(Service)],
        date=f"2027-{1 + i % 12:02d}-{1 + (i // 12) % 28:02d}",
        time=f"{8 + i % 10:02d}:{(i % 4) * 15:02d}" if i % 3 else None,
        urgent=i % 5 == 0,
        callback_number=f"+1 555 {i:07d}" if i % 2 else None,
        language=("en", "es", "fr", "de")[(i // 7) % 4],
        symptoms=list(SYMPTOMS[i % 5 : i % 5 + (i % 3)]),
        party_size=1 + i % 4,
    )


def _predicted(expected: Booking, skill: float, rng: np.random.Generator) -> Booking:
    """The label with each field wrong (or omitted, or invented) with probability 1 - skill."""
    wrong = rng.random(10) > skill
    update: dict[str, Any] = {}
    caller = expected.caller
    if wrong[0]:
        caller = caller.model_copy(update={"first_name": caller.first_name[:-1] + "h"})
    if wrong[1]:
        caller = caller.model_copy(update={"last_name": None if caller.last_name else "Smith"})
    update["caller"] = caller
    services = list(Service)
    if wrong[2]:
        update["service"] = services[(services.index(expected.service) + 1) % len(services)]
    if wrong[3]:
        update["date"] = expected.date[:-1] + str((int(expected.date[-1]) + 1) % 10)
    if wrong[4]:
        update["time"] = None if expected.time else "09:00"
    if wrong[5]:
        update["urgent"] = not expected.urgent
    if wrong[6]:
        update["callback_number"] = None if expected.callback_number else "+1 555 0000000"
    if wrong[7]:
        update["language"] = "en" if expected.language != "en" else "es"
    if wrong[8]:
        update["symptoms"] = [*expected.symptoms, "nausea"]
    if wrong[9]:
        update["party_size"] = expected.party_size + 1
    return expected.model_copy(update=update)


def _transcript(b: Booking) -> str:
    last = f" {b.caller.last_name}" if b.caller.last_name else ""
    when = f" at {b.time}" if b.time else ""
    call = f" Call me back on {b.callback_number}." if b.callback_number else ""
    return (
        f"Hi, this is {b.caller.first_name}{last}. I'd like to book a {b.service.value} for "
        f"{b.party_size} on {b.date}{when}.{call}"
    )


def _calls(model: str, pipeline: str, rng: np.random.Generator, seconds: float) -> list[Call]:
    audio_tokens = int(seconds * 10)
    chat = Call(
        method="POST",
        path="/v1/chat/completions",
        status=200,
        model=model,
        served_model=model,
        usage={
            "usage": {
                "prompt_tokens": 180 + audio_tokens,
                "completion_tokens": 60,
                "prompt_tokens_details": {"audio_tokens": audio_tokens, "text_tokens": 180},
                "completion_tokens_details": {"audio_tokens": 0, "text_tokens": 60},
            }
        },
        latency_ms=round(float(rng.uniform(400, 2500)), 1),
    )
    if pipeline == "direct":
        return [chat]
    transcription = Call(
        method="POST",
        path="/v1/audio/transcriptions",
        status=200,
        model="whisper-1",
        served_model="whisper-1",
        usage={"usage": {"type": "duration", "seconds": round(seconds)}},
        latency_ms=round(float(rng.uniform(300, 900)), 1),
    )
    return [transcription, chat]


def synthetic_results(
    root: Path, n_cases: int, n_variants: int, seed: int = 7
) -> Iterator[CaseResult]:
    """Each case under each variant, scored by the real scorer; 1% of the runs errored."""
    rng = np.random.default_rng(seed)
    audio = root / "datasets" / SUITE / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    for i in range(n_cases):
        case_id = f"call-{i:06d}"
        clip = audio / f"{case_id}.wav"
        master = audio / f"_tone-{i // 50_000}.wav"  # a file takes at most 65,000 links
        if not master.exists():
            _tone(master)
        if not clip.exists():
            os.link(master, clip)
        expected = _expected(i)
        reference = _transcript(expected)
        tags = {
            "speaker": SPEAKERS[int(rng.integers(len(SPEAKERS)))],
            "condition": CONDITIONS[i % len(CONDITIONS)],
        }
        seconds = round(float(rng.uniform(2.0, 90.0)), 3)
        for name, model, pipeline, skill in VARIANTS[:n_variants]:
            errored = rng.random() < 0.01
            predicted = None if errored else _predicted(expected, skill, rng)
            rows = [s.as_row() for s in score_fields(expected, predicted, model=Booking)]
            if errored:
                for row in rows:
                    row.update(correct=False, score=0.0, outcome=str(Outcome.ERROR), predicted="")
            calls = _calls(model, pipeline, rng, seconds)
            transcript = None
            if pipeline != "direct" and predicted is not None:
                transcript = _transcript(predicted)
            yield CaseResult(
                suite=SUITE,
                variant=name,
                case_id=case_id,
                repeat=0,
                model=model,
                pipeline=pipeline,
                tags=tags,
                must_pass=i % 50 == 0,
                error_kind=ErrorKind.TIMEOUT if errored else None,
                error="the call timed out after 60 s (read timeout)" if errored else None,
                expected=dump_record(expected),
                predicted=dump_record(predicted),
                fields=rows,
                calls=[] if errored else calls,
                latency_ms=round(sum(c.latency_ms or 0.0 for c in calls), 1),
                latency_source=LatencySource.RECORDED,
                transcript=transcript,
                reference_transcript=reference,
                audio_seconds=seconds,
                audio_path=str(clip),
            )


def write_project(root: Path, n_cases: int, n_variants: int) -> list[Path]:
    """A project (pyproject.toml with gates) and its run saved as SHARDS shard folders."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    project = Project.at(root)
    variants = VARIANTS[:n_variants]
    info = SuiteInfo(
        name=SUITE,
        source=f"evals/{SUITE}.eval.toml",
        variants=[v[0] for v in variants],
        models={v[0]: [v[1]] for v in variants},
        gates={},
        pricing={},
        cluster_by=None,
        baseline=variants[0][0],
        n_cases=n_cases,
        has_transcripts=True,
        field_types={k: str(t) for k, t in categorical_fields(Booking).items()},
    )
    shares: list[list[CaseResult]] = [[] for _ in range(SHARDS)]
    for r in synthetic_results(root, n_cases, n_variants):
        shares[int(r.case_id.rsplit("-", 1)[1]) % SHARDS].append(r)
    folders = []
    now = dt.datetime.now(dt.UTC)
    for index, results in enumerate(shares, start=1):
        batches = {}
        for name, model, pipeline, _ in variants:
            n = sum(1 for r in results if r.variant == name)
            batches[(SUITE, name)] = BatchInfo(
                suite=SUITE,
                variant=name,
                model=model,
                pipeline=pipeline,
                cassette=f"cassettes/{SUITE}/{name}.yaml",
                collected=n_cases,
                selected=n,
                status=BatchStatus.RAN,
            )
        shard_run = Run(
            project=project,
            record_mode=RecordMode.NONE,
            results=results,
            batches=batches,
            suites={SUITE: info},
            started_at=now,
            finished_at=now,
            shard=(index, SHARDS),
        )
        folders.append(write_shard(shard_run, shard_folder(project.reports_dir, (index, SHARDS))))
        shares[index - 1] = []
    return folders


# ---------------------------------------------------------------- the per-phase child


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phases(root: Path, out: Path) -> dict[str, Any]:
    """`audio-evals merge`'s steps in this process: the shards read, then the report built and written, each step timed."""
    from audio_evals import finish, html_report, report, report_files
    from audio_evals.shards import merge_shards

    steps: list[dict[str, Any]] = []

    def timed(owner: Any, name: str, label: str) -> None:
        real = getattr(owner, name)

        def step(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return real(*args, **kwargs)
            finally:
                steps.append(
                    {
                        "phase": label,
                        "s": time.perf_counter() - t0,
                        "cpu_s": time.process_time() - c0,
                        "rss_mib": _rss_mib(),
                    }
                )

        setattr(owner, name, step)

    for name in ("results_frame", "cases_frame", "fields_frame", "variants_frame"):
        timed(report, name, name.replace("_", " "))
    for name in ("comparison_frame", "slices_frame", "confusion_frame"):
        timed(report, name, name.replace("_", " "))
    timed(finish, "evaluate_gates", "gates")
    timed(report_files, "build_page", "report.html built")
    timed(report.Report, "write", "CSVs, Parquet, summary.md written")
    timed(html_report.HtmlPage, "write", "report.html written")
    start_rss = _rss_mib()
    folders = sorted((root / "reports" / "shards").glob(f"*-of-{SHARDS}"))
    t0, c0 = time.perf_counter(), time.process_time()
    run_ = merge_shards(folders, Project.at(root))
    read = {"s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "rss_mib": _rss_mib()}
    t0, c0 = time.perf_counter(), time.process_time()
    built = finish.build_report(run_)
    gates = finish.evaluate_gates(built, finish.gate_rules(run_))
    finish.write_report(built, root / "reports", gates=gates, run=run_, folder=out)
    span = {"s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "rss_mib": _rss_mib()}
    return {"start_rss_mib": start_rss, "read": read, "report": span, "steps": steps}


def _cpu_seconds(time_v: str) -> float:
    """User + system seconds from /usr/bin/time -v's report."""
    found = re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", time_v)
    return sum(float(x) for x in found)


def _figure(judge: bool, name: str, value: str, target: str, ok: bool, note: str = "") -> Figure:
    """A figure judged against its target, or shown beside it (INFO) when the size is not the target's."""
    if judge:
        return judged(BENCH, name, value, target, ok, note)
    return Figure(BENCH, name, value, f"{target} at 1M rows", "INFO", note)


def measure(work: Path, n_cases: int, n_variants: int) -> tuple[list[Figure], dict[str, Any]]:
    """Generate (or reuse) one layout's shards; time `audio-evals merge` and the in-process steps."""
    rows = n_cases * n_variants * 10
    plural = "s" if n_variants > 1 else ""
    size = f"{n_cases:,} cases x {n_variants} variant{plural}, {rows:,} rows"
    root = work / f"{n_cases}x{n_variants}"
    marker = root / "shards-complete"
    t0 = time.perf_counter()
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        write_project(root, n_cases, n_variants)
        marker.write_text("ok\n", encoding="utf-8")
        print(f"  {size}: shards generated in {time.perf_counter() - t0:.1f} s")
    shard_files = list((root / "reports" / "shards").rglob("results.jsonl"))
    shard_mb = sum(f.stat().st_size for f in shard_files) / 1e6
    out = root / "merged"
    shutil.rmtree(out, ignore_errors=True)
    shards = [str(p) for p in sorted((root / "reports" / "shards").glob(f"*-of-{SHARDS}"))]
    cli = str(Path(sys.executable).with_name("audio-evals"))
    merged = run([cli, "merge", *shards, "-o", str(out), "--root", str(root)], root, time_v=True)
    if merged.returncode not in (0, 1) or not (out / "report.html").is_file():
        raise RuntimeError(f"audio-evals merge failed ({merged.returncode}):\n{merged.tail()}")
    rss_mib = (merged.max_rss_kb or 0) / 1024
    cpu_s = _cpu_seconds(merged.stderr)
    written = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
    print(
        f"  {size}: audio-evals merge {merged.wall:.2f} s (CPU {cpu_s:.1f} s), peak RSS "
        f"{rss_mib:.0f} MiB (exit {merged.returncode}: errored cases); results.jsonl {shard_mb:.0f} MB"
    )
    print("    " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(written.items())))
    child = run([sys.executable, str(Path(__file__).resolve()), "--phases", str(root)], root)
    if child.returncode != 0:
        raise RuntimeError(f"phases child failed:\n{child.tail()}")
    timing = json.loads(child.stdout.strip().splitlines()[-1])
    read, span = timing["read"], timing["report"]
    print(
        f"  the same in one process: start-up {timing['start_rss_mib']:.0f} MiB; shards read in "
        f"{read['s']:.2f} s (CPU {read['cpu_s']:.2f} s, peak RSS {read['rss_mib']:.0f} MiB); "
        f"report built and written in {span['s']:.2f} s (CPU {span['cpu_s']:.2f} s, peak RSS "
        f"{span['rss_mib']:.0f} MiB), of which:"
    )
    for s in timing["steps"]:
        print(
            f"    {s['phase']:<34} {s['s']:6.2f} s  CPU {s['cpu_s']:6.2f} s  "
            f"peak RSS so far {s['rss_mib']:5.0f} MiB"
        )
    # the targets are the 1M-row ones: at --short sizes the figures are shown, not judged
    judge = rows >= 1_000_000
    figures = [
        _figure(
            judge,
            f"report built and written from the results ({size})",
            f"{span['s']:.2f} s",
            f"< {TARGET_S:g} s",
            span["s"] < TARGET_S,
            f"CPU {span['cpu_s']:.1f} s",
        ),
        _figure(
            judge,
            f"audio-evals merge of {SHARDS} shards: peak RSS ({size})",
            f"{rss_mib:.0f} MiB",
            f"< {TARGET_RSS_MIB:.0f} MiB",
            0 < rss_mib < TARGET_RSS_MIB,
        ),
        Figure(
            BENCH,
            f"audio-evals merge of {SHARDS} shards: wall, reading them included ({size})",
            f"{merged.wall:.2f} s",
            note=f"CPU {cpu_s:.1f} s",
        ),
        Figure(
            BENCH, f"report.html size ({size})", f"{written.get('report.html', 0) / 1e6:.2f} MB"
        ),
    ]
    details = {
        "merge_s": merged.wall,
        "merge_cpu_s": cpu_s,
        "merge_rss_mib": rss_mib,
        "files": written,
        "in_process": timing,
    }
    return figures, details


def main() -> int:
    """Generate the shards, time `audio-evals merge` on them, then each step in one process."""
    parser = base_parser(__doc__ or "")
    parser.add_argument(
        "--phases", default=None, help="internal: time each step on a generated project (ROOT)"
    )
    parser.add_argument("--cases", type=int, default=None, help="cases (one layout)")
    parser.add_argument("--variants", type=int, choices=(1, 2), default=None)
    args = parser.parse_args()
    if args.phases:
        root = Path(args.phases)
        out = root / "phases-out"
        print(json.dumps(phases(root, out)))
        shutil.rmtree(out, ignore_errors=True)
        return 0
    started = time.perf_counter()
    if args.cases:
        layouts: tuple[tuple[int, int], ...] = ((args.cases, args.variants or 2),)
    else:
        layouts = SHORT_LAYOUTS if args.short else FULL_LAYOUTS
    print(f"{BENCH}: (cases, variants) {layouts} x 10 fields, {SHARDS} shards; load {load()}")
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    with work_dir(args.work, args.keep) as work:
        for n_cases, n_variants in layouts:
            found, details[f"{n_cases}x{n_variants}"] = measure(work, n_cases, n_variants)
            figures += found
    finish(BENCH, figures, args.json, started, details)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
