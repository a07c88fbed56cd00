"""Benchmark 2: cassette bytes per interaction, audio-evals (digested audio) vs pytest-recording (full body)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    SUITE,
    Figure,
    ProjectSpec,
    Recorder,
    base_parser,
    case_ids,
    finish,
    judged,
    load,
    variant_names,
    work_dir,
)

BENCH = "cassette_size"
TARGET_REQUEST_BYTES = 8 * 1024
TARGET_RATIO = 50.0


def interaction_bytes(interaction: dict[str, Any]) -> tuple[int, int]:
    """Bytes of one interaction and of its request part, serialised as vcrpy writes cassettes."""
    from vcr.serializers import yamlserializer

    whole = len(yamlserializer.serialize(interaction).encode("utf-8"))
    request = len(yamlserializer.serialize(interaction["request"]).encode("utf-8"))
    return whole, request


def load_yaml(path: Path) -> dict[str, Any]:
    """A cassette file as plain data."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def measure(root: Path, spec: ProjectSpec) -> list[dict[str, Any]]:
    """Per case: audio bytes, ours and naive bytes per interaction and per request part."""
    from audio_evals.bodies import digest

    variant = variant_names(1)[0]
    ours_file = root / "cassettes" / SUITE / f"{variant}.yaml"
    ours = load_yaml(ours_file)["interactions"]
    rows = []
    for case_id, seconds in zip(case_ids(spec), spec.durations, strict=True):
        audio = root / "datasets" / SUITE / "audio" / f"{case_id}.wav"
        data = audio.read_bytes()
        mark = digest(data)  # the sha256 of the clip, as the cassette names it
        mine = [i for i in ours if mark in str(i["request"]["body"])]
        if len(mine) != 1:
            raise RuntimeError(
                f"{ours_file}: expected one interaction for {case_id}, got {len(mine)}"
            )
        naive_file = (
            root / "naive" / "cassettes" / "test_naive" / f"test_extract[{variant}-{case_id}].yaml"
        )
        naive = load_yaml(naive_file)["interactions"]
        if len(naive) != 1:
            raise RuntimeError(f"{naive_file}: expected one interaction, got {len(naive)}")
        o_whole, o_req = interaction_bytes(mine[0])
        n_whole, n_req = interaction_bytes(naive[0])
        body = json.loads(mine[0]["request"]["body"])
        rows.append(
            {
                "seconds": seconds,
                "wav_bytes": len(data),
                "ours_interaction": o_whole,
                "ours_request": o_req,
                "ours_request_body": len(str(mine[0]["request"]["body"]).encode()),
                "has_schema": "tools" in body,
                "naive_interaction": n_whole,
                "naive_request": n_req,
                "naive_file": naive_file.stat().st_size,
            }
        )
    rows_total = ours_file.stat().st_size
    for row in rows:
        row["ours_file_share"] = rows_total / len(rows)
    return rows


def main() -> int:
    """Record 1 s, 10 s and 60 s clips both ways and print the bytes per interaction."""
    parser = base_parser(__doc__ or "")
    parser.add_argument(
        "--durations", default="1,10,60", help="audio seconds per case (default 1,10,60)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    durations = tuple(float(x) for x in args.durations.split(","))
    spec = ProjectSpec(n_cases=len(durations), kind="durations", durations=durations, naive=True)
    figures: list[Figure] = []
    print(f"{BENCH}: durations {args.durations} s (16 kHz mono 16-bit WAV), load {load()}")
    with work_dir(args.work, args.keep) as work, Recorder(work) as recorder:
        root = recorder.project(spec)
        rows = measure(root, spec)
    print(
        f"\n  {'audio':>6} {'WAV':>10} | {'ours/inter.':>11} {'ours req.':>9} | "
        f"{'naive/inter.':>12} {'naive req.':>10} | {'req. ratio':>10}"
    )
    for row in rows:
        ratio = row["naive_request"] / row["ours_request"]
        print(
            f"  {row['seconds']:>5g}s {row['wav_bytes']:>10,} | {row['ours_interaction']:>11,} "
            f"{row['ours_request']:>9,} | {row['naive_interaction']:>12,} {row['naive_request']:>10,} | "
            f"{ratio:>9.0f}x"
        )
    print(
        "  (bytes as vcrpy's YAML serialiser writes them; the request part holds the prompt, the "
        "tool schema and, for ours, the audio digest)"
    )
    for row in rows:
        s = f"{row['seconds']:g} s"
        figures.append(
            judged(
                BENCH,
                f"ours: request bytes per interaction, {s}",
                f"{row['ours_request']:,} B",
                f"<= {TARGET_REQUEST_BYTES:,} B",
                row["ours_request"] <= TARGET_REQUEST_BYTES and row["has_schema"],
            )
        )
        figures.append(
            Figure(BENCH, f"ours: interaction bytes, {s}", f"{row['ours_interaction']:,} B")
        )
        figures.append(
            Figure(BENCH, f"naive: interaction bytes, {s}", f"{row['naive_interaction']:,} B")
        )
        ratio = row["naive_request"] / row["ours_request"]
        if row["seconds"] == 10:
            figures.append(
                judged(
                    BENCH,
                    "naive / ours, request bytes, 10 s",
                    f"{ratio:.0f}x",
                    f">= {TARGET_RATIO:g}x",
                    ratio >= TARGET_RATIO,
                )
            )
        else:
            figures.append(Figure(BENCH, f"naive / ours, request bytes, {s}", f"{ratio:.0f}x"))
    finish(BENCH, figures, args.json, started, {"rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
