"""Benchmark 5: the report of a 5,000-case run (2 variants): time to write it, report.html's size, time to open it."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import time
import wave
from enum import StrEnum
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Figure, base_parser, finish, judged, load, work_dir  # noqa: E402

from audio_evals.field_types import categorical_fields  # noqa: E402
from audio_evals.gates import PASSED, GateResult  # noqa: E402
from audio_evals.html_report import AudioMode, HtmlOptions  # noqa: E402
from audio_evals.report import build_report  # noqa: E402
from audio_evals.report_files import publish  # noqa: E402
from audio_evals.results import CaseResult, LatencySource  # noqa: E402
from audio_evals.run_info import RunInfo, make_headline  # noqa: E402
from audio_evals.runner import dump_record  # noqa: E402
from audio_evals.scoring import score_fields  # noqa: E402
from tests.conftest import launch_chromium  # noqa: E402

BENCH = "report_scale"
TARGET_WRITE_S = 10.0
TARGET_HTML_MB = 5.0
TARGET_OPEN_S = 2.0
SPEAKERS = [f"spk-{i:02d}" for i in range(24)]
CONDITIONS = ("clean", "telephone", "noisy")
NAMES = ("Sarah", "Tom", "Maria", "Ahmed", "Li", "Olga", "Kwame", "Ines", "Raj", "Eva")
SURNAMES = ("Johnson", "Garcia", "Nguyen", "Okafor", "Schmidt", None)


class Service(StrEnum):
    CHECKUP = "checkup"
    CLEANING = "cleaning"
    FILLING = "filling"
    CONSULTATION = "consultation"


class Caller(BaseModel):
    first_name: str
    last_name: str | None = None


class Booking(BaseModel):
    caller: Caller
    service: Service
    date: str
    time: str | None = None
    urgent: bool = False
    callback_number: str | None = None
    language: Literal["en", "es", "fr"] = "en"
    symptoms: list[str] = []


def _tone(path: Path) -> None:
    """A real 0.1 s 8 kHz WAV file (the report links clips; their length does not matter)."""
    rate = 8000
    samples = (2000 * np.sin(2 * np.pi * 440 * np.arange(rate // 10) / rate)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def synthetic_run(root: Path, n: int, seed: int = 5) -> list[CaseResult]:
    """n cases x 2 variants, scored by the real scorer; variant b is a transcribe-then-extract pipeline."""
    rng = np.random.default_rng(seed)
    audio = root / "datasets" / "bookings" / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    services = list(Service)
    results = []
    for i in range(n):
        path = audio / f"booking-{i:05d}.wav"
        _tone(path)
        expected = Booking(
            caller=Caller(first_name=NAMES[i % 10], last_name=SURNAMES[i % 6]),
            service=services[i % 4],
            date=f"2027-{1 + i % 12:02d}-{1 + i % 28:02d}",
            time=f"{8 + i % 10:02d}:30:00" if i % 3 else None,
            urgent=i % 5 == 0,
            callback_number=f"555{i:04d}" if i % 2 else None,
            language=("en", "es", "fr")[i % 3],
            symptoms=["fever", "cough"][: i % 3],
        )
        transcript = (
            f"Hello, this is {expected.caller.first_name}. I'd like a {expected.service.value} "
            f"on {expected.date}."
        )
        tags = {"speaker": SPEAKERS[i % len(SPEAKERS)], "condition": CONDITIONS[i % 3]}
        seconds = float(rng.uniform(1.5, 40.0))
        for variant, skill in (("baseline", 0.75), ("candidate", 0.8)):
            update = {}
            if rng.random() > skill:
                update["service"] = services[(i + 1) % 4]
            if rng.random() > skill:
                update["caller"] = Caller(first_name="Sara", last_name=expected.caller.last_name)
            if rng.random() > skill:
                update["urgent"] = not expected.urgent
            predicted = expected.model_copy(update=update)
            scores = score_fields(expected, predicted, model=Booking)
            results.append(
                CaseResult(
                    suite="bookings",
                    variant=variant,
                    case_id=f"booking-{i:05d}",
                    repeat=0,
                    model="local-baseline",
                    pipeline="direct" if variant == "baseline" else "transcribe_then_extract",
                    tags=tags,
                    must_pass=False,
                    error_kind=None,
                    error=None,
                    expected=dump_record(expected),
                    predicted=dump_record(predicted),
                    fields=[s.as_row() for s in scores],
                    latency_ms=float(rng.uniform(300, 3000)),
                    latency_source=LatencySource.RECORDED,
                    transcript=transcript if variant == "candidate" else None,
                    reference_transcript=transcript,
                    audio_seconds=round(seconds, 3),
                    audio_path=str(path),
                )
            )
    return results


def open_in_chromium(path: Path, executable: str) -> tuple[float, int, list[str]]:
    """Seconds from navigation to the first page of cases drawn, rows in the table, errors seen."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p, executable)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        started = time.perf_counter()
        page.goto(path.resolve().as_uri(), wait_until="load")
        page.wait_for_selector("tr.case-row")
        seconds = time.perf_counter() - started
        rows = int(page.eval_on_selector_all("tr.case-row", "rows => rows.length"))
        browser.close()
    return seconds, rows, errors


def main() -> int:
    """Build a synthetic run, write its report folders, and open report.html in Chromium."""
    parser = base_parser(__doc__ or "")
    parser.add_argument("--cases", type=int, default=None, help="cases (default 5000; --short 500)")
    args = parser.parse_args()
    started = time.perf_counter()
    n = args.cases or (500 if args.short else 5000)
    print(f"{BENCH}: {n} cases x 2 variants, audio linked, load {load()}")
    figures: list[Figure] = []
    with work_dir(args.work, args.keep) as work:
        results = synthetic_run(work, n)
        field_types = {"bookings": {k: str(t) for k, t in categorical_fields(Booking).items()}}
        t0 = time.perf_counter()
        report = build_report(results, field_types=field_types, root=work)
        t1 = time.perf_counter()
        gates = (
            GateResult("min_accuracy bookings/baseline:service >= 0.5", PASSED, 0.8, 0.5, "ok"),
        )
        headline = make_headline(
            report, record_mode="none", root=work, when=dt.datetime.now(dt.UTC)
        )
        info = RunInfo(headline, gates)
        written = publish(report, work / "reports", info, HtmlOptions(audio=AudioMode.LINK))
        t2 = time.perf_counter()
        html = written[0] / "report.html"
        size_mb = html.stat().st_size / 1e6
        print(
            f"  build_report {t1 - t0:.2f} s, write both folders {t2 - t1:.2f} s, "
            f"report.html {size_mb:.2f} MB, results.csv "
            f"{(written[0] / 'results.csv').stat().st_size / 1e6:.1f} MB"
        )
        executable = shutil.which("chromium")
        if executable:
            open_s, rows, errors = open_in_chromium(html, executable)
            print(f"  chromium: first page of cases drawn in {open_s:.2f} s ({rows} rows shown)")
        else:
            open_s, rows, errors = (
                float("nan"),
                0,
                ["chromium is not installed (apt-get install chromium)"],
            )
        if errors:
            print(f"  page errors: {errors[:3]}")
    size = f"{n:,} cases x 2 variants"
    figures += [
        judged(
            BENCH,
            f"report written ({size}; frames + CSVs + summary + html, 2 folders)",
            f"{t2 - t0:.2f} s",
            f"< {TARGET_WRITE_S:g} s",
            t2 - t0 < TARGET_WRITE_S,
        ),
        judged(
            BENCH,
            f"report.html size, audio linked ({size})",
            f"{size_mb:.2f} MB",
            f"< {TARGET_HTML_MB:g} MB",
            size_mb < TARGET_HTML_MB,
        ),
        judged(
            BENCH,
            f"report.html opens in chromium, cases drawn ({size})",
            f"{open_s:.2f} s",
            f"< {TARGET_OPEN_S:g} s",
            open_s < TARGET_OPEN_S and not errors and rows > 0,
            ""
            if not errors
            else f"not opened: {errors[0]}"
            if not rows
            else f"{len(errors)} page errors",
        ),
    ]
    finish(BENCH, figures, args.json, started, {"cases": n, "variants": 2})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
