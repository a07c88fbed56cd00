"""The report at scale gives the same numbers: CSV, Parquet, WER, buckets, paths, frames, duplicates, the cut cases table."""

from __future__ import annotations

import json
import os
import re
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from audio_evals import frame_files
from audio_evals.field_types import categorical_fields
from audio_evals.frame_files import write_csv
from audio_evals.html_report import HtmlOptions, build_page
from audio_evals.report import (
    CASES_PARQUET,
    RESULTS_PARQUET,
    _RelativePaths,
    build_report,
    project_relative,
    word_error_rate,
)
from audio_evals.report_files import ReportConfigError, ReportSettings
from audio_evals.results import Call as HttpCall
from audio_evals.results import CaseResult, ErrorKind
from audio_evals.run_info import RunInfo, make_headline
from audio_evals.run_keys import DuplicateRunError
from audio_evals.runner import dump_record
from audio_evals.scoring import Outcome, score_fields
from audio_evals.shown_cases import select_cases
from audio_evals.slices import duration_bucket, duration_buckets

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", "a,b", 'say "hi"', "line\nbreak", "cr\rhere", " ", "Σ", "x\r\n"]
)


class Mood(StrEnum):
    CALM = "calm"
    ANGRY = "angry"
    SAD = "sad"


class Ticket(BaseModel):
    name: str
    mood: Mood
    urgent: bool = False
    note: str | None = None
    items: list[str] = []


def _runs(
    n: int, variants: tuple[str, ...] = ("base", "cand"), repeats: int = 1, seed: int = 3
) -> list[CaseResult]:
    """Scored runs of two suites: tags missing or empty, errors, odd text, usage, transcripts; shuffled."""
    rng = np.random.default_rng(seed)
    out = []
    for suite in ("s1", "s2"):
        for i in range(n):
            expected = Ticket(
                name=["Ann", "Bo, Jr.", 'Cy "C"', "Dée"][i % 4],
                mood=list(Mood)[i % 3],
                urgent=i % 4 == 0,
                note=None if i % 3 else "call back\nlater",
                items=["a", "b,c"][: i % 3],
            )
            tags = {"speaker": ["s1", "s2", "", "s,4"][i % 4]} if i % 5 else {}
            if i % 2:
                tags["room"] = "kitchen"
            seconds = [None, 0.0, 2.5, 3.0, 59.9, 61.0, float(i)][i % 7]
            for variant in variants:
                for repeat in range(repeats):
                    errored = rng.random() < 0.1
                    predicted = None
                    if not errored:
                        update = {"mood": list(Mood)[(i + 1) % 3]} if rng.random() < 0.4 else {}
                        if rng.random() < 0.3:
                            update["name"] = expected.name.upper() + "e"
                        predicted = expected.model_copy(update=update)
                    rows = [s.as_row() for s in score_fields(expected, predicted, model=Ticket)]
                    if errored:
                        for row in rows:
                            row.update(correct=False, score=0.0, outcome=str(Outcome.ERROR))
                    usage = {"usage": {"prompt_tokens": 90 + i, "completion_tokens": 9}}
                    out.append(
                        CaseResult(
                            suite=suite,
                            variant=variant,
                            case_id=f"c{i:03d}",
                            repeat=repeat,
                            model="gpt-audio",
                            pipeline="direct",
                            tags=dict(tags),
                            must_pass=i % 7 == 0,
                            error_kind=ErrorKind.TIMEOUT if errored else None,
                            error='timed out, "60 s"' if errored else None,
                            expected=dump_record(expected),
                            predicted=dump_record(predicted),
                            fields=rows,
                            calls=[
                                HttpCall(
                                    "POST", "/v1/chat/completions", 200, "gpt-audio", usage=usage
                                )
                            ],
                            latency_ms=float(rng.uniform(100, 900)),
                            transcript=None if errored else f"this is {expected.name}",
                            reference_transcript=f"This is {expected.name}!" if i % 2 else None,
                            audio_seconds=seconds,
                            audio_path=f"/project/audio/{suite}/{i}.wav",
                        )
                    )
    order = rng.permutation(len(out))
    return [out[i] for i in order]


TYPES = {s: {k: str(t) for k, t in categorical_fields(Ticket).items()} for s in ("s1", "s2")}


# ---------------------------------------------------------------- files


@st.composite
def frames(draw: Any) -> pd.DataFrame:
    n = draw(st.integers(0, 12))
    floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
        [0.0, -0.0, 1e-300, 123456789.0, 0.1 + 0.2, 1 / 3]
    )
    columns: dict[str, Any] = {}
    for i, kind in enumerate(draw(st.lists(st.sampled_from("sifbo"), min_size=1, max_size=6))):
        if kind == "s":
            values = draw(st.lists(st.none() | TEXT, min_size=n, max_size=n))
        elif kind == "i":
            values = draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n))
        elif kind == "f":
            values = draw(st.lists(floats, min_size=n, max_size=n))
        elif kind == "b":
            values = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        else:
            item = st.none() | TEXT | st.integers() | floats | st.booleans()
            values = pd.Series(draw(st.lists(item, min_size=n, max_size=n)), dtype=object)
        columns[draw(st.sampled_from(["c", "a,b", 'q"', "é"])) + str(i)] = values
    return pd.DataFrame(columns)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames(), chunk=st.integers(1, 5))
def test_csv_writer_writes_what_pandas_writes_byte_for_byte(
    frame: pd.DataFrame, chunk: int
) -> None:
    expected = frame.to_csv(index=False, float_format="%.6g", lineterminator="\n").encode("utf-8")
    old = frame_files.CHUNK_ROWS
    frame_files.CHUNK_ROWS = chunk  # rows split into several chunks
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "f.csv"
            write_csv(frame, path)
            assert path.read_bytes() == expected
            assert os.listdir(tmp) == ["f.csv"], "no temp file is left behind"
    finally:
        frame_files.CHUNK_ROWS = old


def test_report_folder_has_parquet_files_holding_what_the_csvs_hold(tmp_path: Path) -> None:
    report = build_report(_runs(30), field_types=TYPES, root=Path("/project"))
    report.write(tmp_path)
    for name, csv_name, frame in (
        (RESULTS_PARQUET, "results.csv", report.results),
        (CASES_PARQUET, "cases.csv", report.cases),
    ):
        back = pd.read_parquet(tmp_path / name)
        pd.testing.assert_frame_equal(back, frame, check_exact=True)
        again = tmp_path / f"again-{csv_name}"
        write_csv(back, again)
        assert again.read_bytes() == (tmp_path / csv_name).read_bytes()
    assert len(pd.read_parquet(tmp_path / RESULTS_PARQUET)) == 2 * 2 * 30 * 5, "every field row"


# ---------------------------------------------------------------- per-value helpers


@settings(max_examples=400, deadline=None)
@given(reference=TEXT | st.text(max_size=40), hypothesis=st.none() | TEXT | st.text(max_size=40))
def test_word_error_rate_is_jiwers(reference: str, hypothesis: str | None) -> None:
    got = word_error_rate(reference, hypothesis)

    def words(text: str) -> str:
        return " ".join(
            "".join(c.lower() if c.isalnum() or c in " '" else " " for c in text).split()
        )

    if not reference or hypothesis is None or not words(reference):
        assert got is None
    elif not words(hypothesis):
        assert got == 1.0
    else:
        assert got == float(jiwer.wer(words(reference), words(hypothesis)))


@given(st.lists(st.none() | st.floats() | st.integers(-100, 100), max_size=30))
def test_duration_buckets_equal_duration_bucket(values: list[Any]) -> None:
    expected = [duration_bucket(v) for v in values]
    assert list(duration_buckets(pd.Series(values, dtype=object))) == expected
    numbers = [v for v in values if v is not None]
    assert list(duration_buckets(pd.Series(numbers, dtype=float))) == [
        duration_bucket(float(v)) for v in numbers
    ]


def test_relative_paths_equal_project_relative(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    paths = [
        str(root / "a" / "b.wav"),
        str(root / "b.wav"),
        str(root),
        f"{root}/",
        f"{root}//a/./c/../b.wav",
        str(tmp_path / "other" / "x.wav"),
        str(tmp_path / "proj2" / "x.wav"),
        "relative/x.wav",
        "",
        "/",
    ]
    relative = _RelativePaths(root)
    assert [relative(p) for p in paths] == [project_relative(p, root) for p in paths]
    assert relative(paths[0]) == "a/b.wav" and relative(paths[5]) == paths[5]
    assert _RelativePaths(None)(paths[0]) == paths[0]


# ---------------------------------------------------------------- frames against direct computations


def _results_rows(results: list[CaseResult]) -> pd.DataFrame:
    """results.csv's frame built the plain way: one dict per row, then a stable sort."""
    rows = [
        {
            "suite": r.suite,
            "variant": r.variant,
            "case_id": r.case_id,
            "repeat": r.repeat,
            "field": f["field"],
            "kind": f.get("kind", ""),
            "expected": f.get("expected", ""),
            "predicted": f.get("predicted", ""),
            "correct": bool(f["correct"]),
            "score": round(float(f["score"]), 6),
            "outcome": f.get("outcome", ""),
            "optional": bool(f.get("optional", False)),
            "error": str(r.error_kind or ""),
            "error_message": r.error or "",
            "_order": order,
        }
        for r in results
        for order, f in enumerate(r.fields)
    ]
    frame = pd.DataFrame(rows).sort_values(
        ["suite", "variant", "case_id", "repeat", "_order"], kind="stable"
    )
    return frame.drop(columns="_order").reset_index(drop=True)


def _slices_direct(results: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """Per (suite, variant, field, dimension, slice): n and correct, by joining every unit to its slice."""
    keys = ["suite", "variant", "case_id", "repeat"]
    units = pd.concat(
        [
            results[[*keys, "field", "correct"]],
            cases[keys].assign(field="(record)", correct=cases["exact"]),
        ]
    )
    parts = []
    for column in [c for c in cases.columns if c.startswith("tag.")] + ["audio_seconds"]:
        part = cases[keys].copy()
        if column == "audio_seconds":
            part["dimension"] = "audio duration"
            part["slice"] = [duration_bucket(s) for s in cases[column]]
        else:
            part["dimension"] = column[4:]
            values = cases[column]
            ok = values.notna() & (values.astype(str) != "")
            part["slice"] = values.where(ok, "(none)").astype(str)
        parts.append(units.merge(part, on=keys))
    joined = pd.concat(parts)
    counts = joined.groupby(["suite", "variant", "field", "dimension", "slice"]).agg(
        n=("correct", "size"), correct=("correct", "sum")
    )
    return counts.reset_index()


@pytest.mark.parametrize("repeats", [1, 3])
def test_frames_slices_and_comparisons_match_direct_computations(repeats: int) -> None:
    results = _runs(25, variants=("base", "cand", "third"), repeats=repeats)
    report = build_report(results, field_types=TYPES, cluster_by={"s1": "speaker"}, all_pairs=True)
    pd.testing.assert_frame_equal(report.results, _results_rows(results), check_exact=True)
    got = report.slices.sort_values(["suite", "variant", "field", "dimension", "slice"])
    direct = _slices_direct(report.results, report.cases)
    direct = direct.sort_values(["suite", "variant", "field", "dimension", "slice"])
    for column in ("suite", "variant", "field", "dimension", "slice", "n", "correct"):
        assert got[column].tolist() == direct[column].tolist(), column
    # every comparison pairs the same (case, repeat) units of both variants
    res, cases = report.results, report.cases
    for row in report.comparison.itertuples():
        if row.field == "(record)":
            sel, score = cases[cases["suite"] == row.suite], "exact"
        else:
            sel = res[(res["suite"] == row.suite) & (res["field"] == row.field)]
            score = "correct"
        a = sel[sel["variant"] == row.variant_a].set_index(["case_id", "repeat"])[score]
        b = sel[sel["variant"] == row.variant_b].set_index(["case_id", "repeat"])[score]
        joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
        assert row.n == len(joined)
        assert row.accuracy_a == pytest.approx(joined["a"].astype(float).mean(), abs=1e-12)
        assert row.accuracy_b == pytest.approx(joined["b"].astype(float).mean(), abs=1e-12)
        wins = (joined["b"].astype(int) > joined["a"].astype(int)).sum()
        if repeats == 1 and row.suite == "s2":  # one unit per cluster: wins are case wins
            assert row.wins == wins
    assert len(report.comparison) == 2 * 3 * 6, "3 pairs x (5 fields + the record) per suite"


def test_a_run_given_twice_is_refused_not_counted_twice() -> None:
    results = _runs(5)
    twin = next(r for r in results if r.suite == "s2" and r.case_id == "c003")
    with pytest.raises(DuplicateRunError, match="suite s2, variant .*, case c003, repeat 0"):
        build_report([*results, twin])


# ---------------------------------------------------------------- the cut cases table


def _page_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html)
    assert match
    return json.loads(match.group(1))


def test_cases_table_is_cut_to_whole_cases_errors_then_wrong_first(tmp_path: Path) -> None:
    results = _runs(40)
    report = build_report(results, field_types=TYPES)
    info = RunInfo(make_headline(report, record_mode="none", root=tmp_path))
    full = build_page(report, info, HtmlOptions()).render(tmp_path)
    assert "runs left out" not in full
    assert sum(len(s["runs"]) for s in _page_data(full)["suites"]) == len(results)

    html = build_page(report, info, HtmlOptions(max_case_rows=30)).render(tmp_path)
    data = _page_data(html)
    by_suite = {s["name"]: s for s in data["suites"]}
    for suite in ("s1", "s2"):
        runs = report.cases[report.cases["suite"] == suite]
        shown = select_cases(runs, 15)
        page = by_suite[suite]
        assert len(page["runs"]) == len(shown.runs) <= 15 and len(shown.runs) >= 14
        # whole cases: both variants of every case shown
        case_ids = [page["cases"][r[0]][0] for r in page["runs"]]
        assert all(case_ids.count(c) == 2 for c in case_ids)
        errored = set(runs.loc[runs["error"] != "", "case_id"])
        wrong = set(runs.loc[~runs["exact"], "case_id"]) - errored
        if len(errored) * 2 <= 15:
            assert errored <= set(case_ids), "every case with an error is shown first"
        assert set(case_ids) <= errored | wrong, "wrong ones before any correct one"
        note = (
            f"This table holds {len(shown.runs)} of the suite's {len(runs)} runs "
            f"({shown.shown_cases} of 40 cases, whole cases up to 15 rows): first the cases "
            f"with an extraction error ({len(errored)}), then those with a wrong field "
            f"({len(wrong)})"
        )
        assert note in html
    assert html.count("runs left out are in the files beside this page: results.parquet") == 2


def test_max_case_rows_setting_is_checked() -> None:
    settings_ = ReportSettings.from_settings({"report": {"max_case_rows": 500}}, "pyproject")
    assert settings_.html.max_case_rows == 500
    with pytest.raises(ReportConfigError, match="max_case_rows must be an integer >= 1, got 0"):
        ReportSettings.from_settings({"report": {"max_case_rows": 0}}, "pyproject")


def test_results_read_back_whole_even_with_a_lone_surrogate() -> None:
    results = _runs(3)
    odd = results[0]
    odd.transcript = "heard \ud800 here"  # a model can answer this; UTF-8 cannot hold it
    for r in results:
        back = CaseResult.from_json(r.to_json())
        assert back == r
