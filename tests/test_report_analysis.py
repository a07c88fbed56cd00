"""Slices, confusion tables, field types, baseline comparisons with Holm, the run folder and the terminal lines."""

from __future__ import annotations

import json
import math
import re
from enum import StrEnum
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel
from statsmodels.stats.multitest import multipletests

from audio_evals.confusion import EMPTY, ERRORED, confusion_matrix
from audio_evals.field_types import FieldType, categorical_fields
from audio_evals.gates import FAILED, PASSED, GateResult
from audio_evals.html_report import AudioMode, HtmlOptions
from audio_evals.report import RECORD_FIELD, build_report, load_report
from audio_evals.report_files import ReportConfigError, ReportSettings, publish
from audio_evals.results import CaseResult, ErrorKind
from audio_evals.run_info import RunInfo, make_headline, read_run_info
from audio_evals.runner import dump_record
from audio_evals.scoring import score_fields
from audio_evals.slices import DURATION, NO_TAG, UNKNOWN_DURATION, duration_bucket
from audio_evals.terminal import LineKind, not_run_lines, summary_lines

from .conftest import write_tone


class Mood(StrEnum):
    HAPPY = "happy"
    SAD = "sad"
    ANGRY = "angry"


class Inner(BaseModel):
    flag: bool | None = None


class Call(BaseModel):
    name: str
    mood: Mood
    lang: Literal["en", "fr"] | None = None
    urgent: bool = False
    inner: Inner = Inner()


def _result(
    case: int,
    variant: str,
    expected: Call,
    predicted: Call | None,
    *,
    tags: dict[str, str],
    seconds: float | None,
    audio: str = "",
    error: str | None = None,
) -> CaseResult:
    scores = score_fields(expected, predicted, model=Call)
    return CaseResult(
        suite="calls",
        variant=variant,
        case_id=f"c{case:03d}",
        repeat=0,
        model="local-baseline",
        pipeline="direct",
        tags=tags,
        must_pass=False,
        error_kind=ErrorKind(error) if error else None,
        error="boom" if error else None,
        expected=dump_record(expected),
        predicted=dump_record(predicted),
        fields=[s.as_row() for s in scores],
        latency_ms=100.0 + case,
        audio_seconds=seconds,
        audio_path=audio,
    )


def _run(
    n: int = 40, variants: tuple[str, ...] = ("a", "b", "c"), audio_dir: Path | None = None
) -> list[CaseResult]:
    """A seeded synthetic run: each variant gets moods right with its own rate; one case errors."""
    rng = np.random.default_rng(7)
    moods = list(Mood)
    out = []
    rates = {"a": 0.5, "b": 0.9, "c": 0.55, "d": 0.5}
    for i in range(n):
        expected = Call(
            name=f"N{i}", mood=moods[i % 3], lang="en" if i % 2 else None, urgent=i % 4 == 0
        )
        tags = {"speaker": f"s{i % 3}"} if i % 5 else {}
        tags["condition"] = "noisy" if i % 2 else "clean"
        seconds = None if i == 0 else 1.0 + (i % 12)
        audio = ""
        if audio_dir is not None:
            audio = str(write_tone(audio_dir / f"c{i:03d}.wav", seconds=0.05))
        for v in variants:
            if v == "a" and i == 1:
                out.append(
                    _result(
                        i, v, expected, None, tags=tags, seconds=seconds, audio=audio, error="http"
                    )
                )
                continue
            mood = expected.mood if rng.random() < rates[v] else moods[(i + 1) % 3]
            predicted = expected.model_copy(update={"mood": mood, "urgent": expected.urgent})
            out.append(_result(i, v, expected, predicted, tags=tags, seconds=seconds, audio=audio))
    return out


FIELD_TYPES = {"calls": {k: str(t) for k, t in categorical_fields(Call).items()}}


def test_categorical_fields_come_from_the_response_model() -> None:
    assert categorical_fields(Call) == {
        "mood": FieldType.ENUM,
        "lang": FieldType.LITERAL,
        "urgent": FieldType.BOOL,
        "inner.flag": FieldType.BOOL,
    }

    class Item(BaseModel):
        kind: Literal["a", "b"]

    class Order(BaseModel):
        items: list[Item]
        note: str | None = None

    assert categorical_fields(Order) == {}, "list items and free text get no confusion table"


def test_slices_count_every_run_once_per_dimension_and_match_a_direct_count() -> None:
    report = build_report(_run(), field_types=FIELD_TYPES)
    slices = report.slices
    for (variant, fld, dim), group in slices.groupby(["variant", "field", "dimension"]):
        assert group["n"].sum() == 40, (variant, fld, dim)  # nothing dropped, nothing counted twice
    by_speaker = slices[(slices["dimension"] == "speaker") & (slices["variant"] == "b")]
    assert set(by_speaker["slice"]) == {"s0", "s1", "s2", NO_TAG}
    res = report.results
    cases = report.cases[report.cases["variant"] == "b"].set_index("case_id")
    mood_b = res[(res["variant"] == "b") & (res["field"] == "mood")].copy()
    mood_b["speaker"] = [
        cases.loc[c, "tag.speaker"] if isinstance(cases.loc[c, "tag.speaker"], str) else NO_TAG
        for c in mood_b["case_id"]
    ]
    direct = mood_b.groupby("speaker")["correct"].agg(["size", "sum"])
    row = by_speaker[by_speaker["field"] == "mood"].set_index("slice")
    for speaker, counts in direct.iterrows():
        assert row.loc[speaker, "n"] == counts["size"]
        assert row.loc[speaker, "correct"] == counts["sum"]
        assert (
            row.loc[speaker, "ci_low"]
            <= row.loc[speaker, "accuracy"]
            <= row.loc[speaker, "ci_high"]
        )
    record = slices[(slices["field"] == RECORD_FIELD) & (slices["variant"] == "a")]
    assert set(record["dimension"]) == {"speaker", "condition", DURATION}
    durations = record[record["dimension"] == DURATION].set_index("slice")
    assert durations.loc[UNKNOWN_DURATION, "n"] == 1
    assert list(durations.index)[-1] == UNKNOWN_DURATION


def test_duration_buckets() -> None:
    assert duration_bucket(0.0) == "0–3 s"
    assert duration_bucket(2.999) == "0–3 s"
    assert duration_bucket(3.0) == "3–6 s"
    assert duration_bucket(59.0) == "20–60 s"
    assert duration_bucket(600.0) == "≥ 60 s"
    assert duration_bucket(None) == UNKNOWN_DURATION
    assert duration_bucket(math.nan) == UNKNOWN_DURATION


def test_confusion_tables_count_each_run_and_show_errors_and_empty_values() -> None:
    report = build_report(_run(), field_types=FIELD_TYPES)
    conf = report.confusion
    assert set(conf["field"]) == {"mood", "lang", "urgent", "inner.flag"}
    for (variant, fld), table in conf.groupby(["variant", "field"]):
        assert table["count"].sum() == 40, (variant, fld)
    mood_a = confusion_matrix(conf[(conf["variant"] == "a") & (conf["field"] == "mood")])
    assert list(mood_a.columns)[-1] == ERRORED and mood_a[ERRORED].sum() == 1
    res = report.results
    sel = res[(res["variant"] == "a") & (res["field"] == "mood")]
    assert sum(int(mood_a.loc[m.value, m.value]) for m in Mood) == int(sel["correct"].sum())
    lang = confusion_matrix(conf[(conf["variant"] == "b") & (conf["field"] == "lang")])
    assert EMPTY in lang.index and lang.loc[EMPTY, EMPTY] == 20
    assert (
        "mood" in report.markdown() and "expected (rows) x predicted (columns)" in report.markdown()
    )


def test_variants_are_compared_with_the_baseline_and_p_values_are_holm_adjusted() -> None:
    results = _run()
    default = build_report(results, variant_order={"calls": ["c", "a", "b"]})
    comp = default.comparison
    assert set(zip(comp["variant_a"], comp["variant_b"], strict=True)) == {("c", "a"), ("c", "b")}
    fields = default.results["field"].nunique() + 1
    assert len(comp) == 2 * fields and (comp["comparisons"] == 2 * fields).all()
    expected = multipletests(comp["p_value"].to_numpy(), method="holm")[1]
    np.testing.assert_allclose(comp["p_adjusted"].to_numpy(), expected)
    mood = comp[(comp["field"] == "mood") & (comp["variant_b"] == "b")].iloc[0]
    assert mood["label"] == "better" and mood["p_adjusted"] < 0.05
    assert f"Holm-adjusted over {2 * fields} comparisons" in mood["verdict"]
    named = build_report(results, baselines={"calls": "b"})
    assert set(named.comparison["variant_a"]) == {"b"}
    every = build_report(results, all_pairs=True)
    assert len(every.comparison) == 3 * fields
    missing = build_report([r for r in results if r.variant != "b"], baselines={"calls": "b"})
    assert missing.comparison.empty
    assert missing.notes == [
        "suite calls: its baseline variant b did not run, so no variant of it is compared "
        "(run the baseline, or name another)"
    ]


def test_publish_writes_both_folders_with_working_audio_links_and_run_json(tmp_path: Path) -> None:
    root = tmp_path / "project"
    results = _run(n=12, audio_dir=root / "datasets" / "calls" / "audio")
    report = build_report(results, field_types=FIELD_TYPES, root=root)
    assert report.cases["audio_path"].str.startswith("datasets/calls/audio/").all()
    gates = (
        GateResult("min_accuracy calls/a:mood >= 0.9", FAILED, 0.5, 0.9, "accuracy 0.5 < 0.9"),
    )
    info = RunInfo(make_headline(report, record_mode="none", root=root), gates)
    written = publish(report, root / "reports", info, HtmlOptions(audio=AudioMode.LINK), stamp="T1")
    assert written == [root / "reports" / "latest", root / "reports" / "runs" / "T1"]
    for folder in written:
        names = {p.name for p in folder.iterdir()}
        assert {"report.html", "run.json", "slices.csv", "confusion.csv", "summary.md"} <= names
        assert not [n for n in names if n.endswith(".tmp")]
        text = (folder / "report.html").read_text(encoding="utf-8")
        data = json.loads(
            re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text)[1]
        )
        prefix = data["audioPrefix"]
        links = [prefix + shown if src is None else src for shown, src in data["audio"]]
        assert len(links) == 12 and all(not s.startswith("data:") for s in links)
        assert all((folder / s).resolve().is_file() for s in links), links[:2]
    summary = (written[0] / "summary.md").read_text(encoding="utf-8")
    assert summary.index("**record mode**") < summary.index("## Gates") < summary.index("## Suite")
    assert "**FAILED**" in summary.split("## Suite")[0]
    assert "datasets/calls/audio/c001.wav" in summary, "wrong cases name their audio"
    back = read_run_info(written[1])
    assert back == info
    loaded = load_report(written[1])
    assert len(loaded.slices) == len(report.slices) and len(loaded.confusion) == len(
        report.confusion
    )


def test_auto_embeds_small_audio_and_links_large(tmp_path: Path) -> None:
    root = tmp_path / "project"
    results = _run(n=6, variants=("a",), audio_dir=root / "audio")
    report = build_report(results, root=root)
    info = RunInfo(make_headline(report, record_mode="none", root=root))
    small = publish(report, root / "r1", info, HtmlOptions(embed_max_bytes=10_000_000), stamp="x")
    assert "data:audio/wav;base64," in (small[0] / "report.html").read_text(encoding="utf-8")
    large = publish(report, root / "r2", info, HtmlOptions(embed_max_bytes=1000), stamp="x")
    assert "data:audio/" not in (large[0] / "report.html").read_text(encoding="utf-8")


def test_report_settings_name_every_problem() -> None:
    settings = ReportSettings.from_settings(
        {"report": {"audio": "link", "embed_audio_max_mb": 2, "all_pairs": True}}, "pyproject"
    )
    assert (
        settings.html.audio == AudioMode.LINK and settings.html.embed_max_bytes == 2 * 1024 * 1024
    )
    assert settings.all_pairs
    with pytest.raises(ReportConfigError) as err:
        ReportSettings.from_settings(
            {"report": {"audio": "inline", "all_pairs": "yes", "colour": 1}}, "pyproject.toml [x]"
        )
    message = str(err.value)
    assert message.startswith("pyproject.toml [x]: ")
    assert "unknown key 'colour'" in message and "audio must be one of" in message
    assert "all_pairs must be true or false" in message


def test_terminal_summary_is_short_and_ends_with_the_report_path(tmp_path: Path) -> None:
    report = build_report(
        _run(n=12),
        skips=[
            {
                "suite": "calls",
                "variant": v,
                "reason": f"no cassette cassettes/calls/{v}.yaml for suite calls, variant {v}; "
                f"record it with: OPENAI_API_KEY=... pytest evals --record-mode=once --variant {v}",
            }
            for v in ("gpt-x", "gpt-y")
        ]
        + [{"suite": "calls", "variant": "z", "reason": "OPENAI_API_KEY is not set"}],
    )
    gates = [GateResult("g1", PASSED, 1.0, 0.5, "ok")]
    lines = summary_lines(report, gates, written=[tmp_path / "latest", tmp_path / "runs" / "T"])
    texts = [line.text for line in lines]
    assert lines[0].kind == LineKind.SEP
    variant_lines = [t for t in texts if t.startswith("  a: exact record")]
    assert len(variant_lines) == 1
    verdicts = [t for t in texts if " vs a (exact record)" in t]
    assert len(verdicts) == 2, "each variant against the baseline, not every pair"
    assert (
        "not run (no cassette): calls/gpt-x, calls/gpt-y; record them with: OPENAI_API_KEY=... "
        "pytest evals --record-mode=once --variant gpt-x --variant gpt-y"
    ) in texts
    assert "not run: calls/z: OPENAI_API_KEY is not set" in texts
    assert "PASS g1: ok" not in texts  # a passed gate is counted, listed with -v
    assert "1 gate(s) passed (each listed with -v, in summary.md and report.html)" in texts
    every = summary_lines(report, gates, all_gates=True)
    assert "PASS g1: ok" in [line.text for line in every]
    assert texts[-1] == (
        f"report: {tmp_path / 'latest' / 'report.html'} (also in {tmp_path / 'runs' / 'T'}/)"
    )


def test_not_run_lines_keep_reasons_without_a_command() -> None:
    skips = [{"suite": "s", "variant": "v", "reason": "something else"}]
    assert not_run_lines(skips) == ["not run: s/v: something else"]


def test_report_command_explains_a_folder_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audio_evals.cli import main

    assert main(["report", str(tmp_path)]) == 2
    assert "results.csv not found" in capsys.readouterr().err
    report = build_report(_run(n=6, variants=("a", "b")))
    report.write(tmp_path / "run")
    assert main(["report", str(tmp_path / "run")]) == 2
    assert "run.json not found" in capsys.readouterr().err
    comparison = tmp_path / "run" / "comparison.csv"
    frame = pd.read_csv(comparison).drop(columns=["p_adjusted"])
    frame.to_csv(comparison, index=False)
    assert main(["report", str(tmp_path / "run")]) == 2
    assert "lacks column(s) p_adjusted" in capsys.readouterr().err


def test_heatmap_keeps_the_most_populous_slices_and_says_what_it_left_out(tmp_path: Path) -> None:
    from audio_evals.html_report import build_page

    report = build_report(_run(n=12, variants=("a",)))
    info = RunInfo(make_headline(report, record_mode="none", root=tmp_path))
    html = build_page(report, info, HtmlOptions(max_slice_columns=4)).render(tmp_path)
    # condition (2 values), speaker (4) and duration (5) share 4 columns: 1 + 1 + 1 at least each
    assert "Too many slices to draw them all" in html
    assert "speaker: 1 of 4 values shown; audio duration: 1 of 5 values shown" in html
    full = build_page(report, info, HtmlOptions()).render(tmp_path)
    assert "Too many slices" not in full


def test_share_out_keeps_small_parts_whole() -> None:
    from audio_evals.html_report import share_out

    assert share_out({"condition": 3, "speaker": 200, "duration": 6}, 40) == {
        "condition": 3,
        "speaker": 31,
        "duration": 6,
    }
    assert share_out({"a": 2, "b": 2}, 40) == {"a": 2, "b": 2}
    assert share_out({"a": 50, "b": 50}, 40) == {"a": 20, "b": 20}
    assert share_out({"a": 9, "b": 9, "c": 9}, 2) == {"a": 1, "b": 1, "c": 1}
