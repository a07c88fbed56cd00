"""report.html: one self-contained page per run (headline, gates, fields, comparisons, slices, confusion, cases)."""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import plots
from .confusion import confusion_matrix
from .files import atomic_write
from .gates import FAILED, NOT_EVALUATED, PASSED, GateResult
from .report import RECORD_FIELD, Report, percent, percent_interval
from .run_info import RunInfo
from .shown_cases import DEFAULT_MAX_CASE_ROWS, ShownCases, select_cases
from .slices import DURATION, slice_values

REPORT_HTML = "report.html"
MIME = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".m4a": "audio/mp4",
    ".webm": "audio/webm",
}
_OUTCOME_CODES = {"match": "m", "mismatch": "x", "missed": "i", "spurious": "s", "both_empty": "e"}


class AudioMode(StrEnum):
    """How the cases table reaches each clip: inside the page, by a relative link, or by size."""

    AUTO = "auto"
    EMBED = "embed"
    LINK = "link"


@dataclass(frozen=True)
class HtmlOptions:
    """Choices for report.html: audio embedding, how many slice columns a heatmap shows, how many runs the cases tables carry."""

    audio: AudioMode = AudioMode.AUTO
    embed_max_bytes: int = 10 * 1024 * 1024
    max_slice_columns: int = 40
    max_case_rows: int = DEFAULT_MAX_CASE_ROWS


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """An HTML table from already-escaped cells."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(text: Any, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<td{attr}>{_e(text)}</td>"


def _json_for_script(value: Any) -> str:
    """JSON that cannot end its <script> element early (<, > and & escaped)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _asset(name: str) -> str:
    return resources.files("audio_evals").joinpath("report_assets", name).read_text("utf-8")


def _rounded(value: Any, digits: int) -> float | None:
    x = _num(value)
    return None if x is None else round(x, digits)


def _num(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


# ------------------------------------------------------------------------ page sections


def _gates_section(gates: Sequence[GateResult]) -> tuple[str, str]:
    """The verdict badge and the gates section."""
    if not gates:
        return '<div class="verdict none">no gates configured</div>', ""
    failed = [g for g in gates if g.status == FAILED]
    skipped = [g for g in gates if g.status == NOT_EVALUATED]
    passed = [g for g in gates if g.status == PASSED]
    if failed:
        badge = (
            f'<div class="verdict fail">Gates FAILED: {len(failed)} of {len(gates)} failed</div>'
        )
    else:
        badge = (
            f'<div class="verdict pass">Gates PASSED: {len(passed)} passed'
            + (f", {len(skipped)} not evaluated" if skipped else "")
            + f" of {len(gates)}</div>"
        )

    def rows(items: Sequence[GateResult]) -> list[list[str]]:
        return [
            [
                _td(g.status, "status-" + g.status.replace(" ", "-")),
                _td(g.name),
                _td(g.detail),
            ]
            for g in items
        ]

    parts = ['<section id="gates"><h2>Gates</h2>']
    if failed or skipped:
        parts.append(_table(["status", "gate", "detail"], rows([*failed, *skipped])))
    if passed:
        parts.append(
            f"<details{' open' if not failed and len(passed) <= 12 else ''}>"
            f"<summary>{len(passed)} passed</summary>"
            + _table(["status", "gate", "detail"], rows(passed))
            + "</details>"
        )
    parts.append("</section>")
    return badge, "".join(parts)


def _headline(info: RunInfo) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in info.headline.items())
    return f'<dl class="headline">{items}</dl>'


def _fields_section(report: Report, suite: str, variants: Sequence[str]) -> str:
    sf = report.fields[report.fields["suite"] == suite]
    if sf.empty:
        return ""
    order = list(dict.fromkeys(sf["field"]))
    rows = []
    for fld in order:
        cells = [_td(fld)]
        for v in variants:
            sel = sf[(sf["variant"] == v) & (sf["field"] == fld)]
            if sel.empty:
                cells.append(_td(""))
                continue
            r = sel.iloc[0]
            text = (
                f"{percent(r['accuracy'])} {percent_interval(r['ci_low'], r['ci_high'])} n={int(r['n'])}"
                f" · score {r['mean_score']:.2f}"
            )
            if not math.isnan(r["presence_precision"]) or not math.isnan(r["presence_recall"]):
                text += (
                    f" · presence P {percent(r['presence_precision'])} R {percent(r['presence_recall'])}"
                    f" (missed {int(r['missed'])}, spurious {int(r['spurious'])})"
                )
            cells.append(_td(text))
        rows.append(cells)
    chart = plots.accuracy_chart(sf, variants)
    return (
        "<h3>Fields: accuracy (95% interval), partial credit, presence</h3>"
        f"<figure>{chart}</figure>"
        + _table(["field", *(_e(v) for v in variants)], rows, "fields")
        + '<p class="note">score: mean partial credit (0–1). Presence precision/recall for '
        "optional fields: a model that invents values (spurious) has low precision, one that "
        "omits them (missed) low recall.</p>"
    )


def _variants_section(report: Report, suite: str) -> str:
    sv = report.variants[report.variants["suite"] == suite]
    if sv.empty:
        return ""
    rows = []
    for _, r in sv.iterrows():
        cost = r["cost_per_1000_usd"]
        rows.append(
            [
                _td(r["variant"]),
                _td(r["model"]),
                _td(r["pipeline"]),
                _td(
                    f"{percent(r['exact_accuracy'])} {percent_interval(r['ci_low'], r['ci_high'])} n={int(r['n'])}"
                ),
                _td(int(r["errors"]), "num"),
                _td(
                    f"{r['latency_p50_ms']:.0f} / {r['latency_p95_ms']:.0f} ({r['latency_source']})",
                    "num",
                ),
                _td("unknown" if _num(cost) is None else f"${cost:.2f}", "num"),
                _td(percent(r["wer"]), "num"),
            ]
        )
    header = ["variant", "model", "pipeline", "exact record", "errors", "latency p50 / p95 ms"]
    header += ["cost / 1k cases", "WER"]
    return (
        "<h3>Variants: exact record, cost, latency</h3>"
        + _table(header, rows, "variants")
        + f"<figure>{plots.tradeoff_chart(sv)}</figure>"
    )


def _comparison_section(report: Report, suite: str) -> str:
    comp = report.comparison[report.comparison["suite"] == suite]
    notes = [n for n in report.notes if n.startswith(f"suite {suite}:")]
    if comp.empty:
        body = "".join(f'<p class="warn">{_e(n)}</p>' for n in notes)
        return "<h3>Comparisons</h3>" + (
            body or '<p class="note">one variant ran: nothing to compare</p>'
        )
    m = int(comp["comparisons"].iloc[0])
    bases = list(dict.fromkeys(comp["variant_a"]))
    which = (
        f"each variant against the baseline <b>{_e(bases[0])}</b>"
        if len(bases) == 1
        else "every pair of variants"
    )
    rows = []
    for _, r in comp.iterrows():
        label = str(r["label"])
        rows.append(
            [
                _td(r["field"]),
                _td(f"{r['variant_b']} vs {r['variant_a']}"),
                _td(int(r["n"]), "num"),
                _td(f"{percent(r['accuracy_a'])} → {percent(r['accuracy_b'])}"),
                _td(f"{100 * r['diff']:+.1f} pts {percent_interval(r['ci_low'], r['ci_high'])}"),
                _td(f"{r['p_value']:.3g}", "num"),
                _td(f"{r['p_adjusted']:.3g}", "num"),
                _td("none" if _num(r["mdd"]) is None else f"≥ {100 * r['mdd']:.0f} pts", "num"),
                _td(r["verdict"], "label-" + label.split(" ")[0]),
            ]
        )
    header = ["field", "B vs A", "n", "A → B", "B − A (95% interval)", "p", "p (Holm)"]
    header += ["detectable at 80% power", "verdict"]
    return (
        "<h3>Comparisons (paired, diff = B − A)</h3>"
        f"<p>Compared: {which}. p-values are Holm-adjusted over the run's {m} comparisons; "
        "a verdict needs the adjusted p below 0.05 and the interval excluding 0. "
        "“detectable” is the smallest true difference this n finds with 80% power at the "
        "strictest Holm threshold.</p>"
        + "".join(f'<p class="warn">{_e(n)}</p>' for n in notes)
        + f"<figure>{plots.forest_chart(comp)}</figure>"
        + _table(header, rows, "comparison")
    )


def share_out(sizes: Mapping[str, int], total: int) -> dict[str, int]:
    """A total shared out (heatmap columns per dimension, case rows per suite): small ones whole, the rest share what is left (at least 1 each)."""
    quota = {d: 0 for d in sizes}
    left = dict(sizes)
    budget = total
    while left:
        share = max(1, budget // len(left))
        small = {d: n for d, n in left.items() if n <= share}
        if not small:
            for d in left:
                quota[d] = share
            break
        for d, n in small.items():
            quota[d] = n
            budget -= n
            del left[d]
    return quota


def _slices_section(report: Report, suite: str, options: HtmlOptions) -> str:
    ss = report.slices[report.slices["suite"] == suite] if not report.slices.empty else None
    if ss is None or ss.empty:
        return ""
    fields = [RECORD_FIELD, *dict.fromkeys(f for f in ss["field"] if f != RECORD_FIELD)]
    dims = {dim: slice_values(ss[ss["dimension"] == dim]) for dim in dict.fromkeys(ss["dimension"])}
    quota = share_out({d: len(v) for d, v in dims.items()}, options.max_slice_columns)
    columns: list[str] = []
    column_of: dict[tuple[str, str], str] = {}
    dropped: list[str] = []
    for dim, values in dims.items():
        if len(values) > quota[dim]:
            sd = ss[ss["dimension"] == dim]
            sizes = sd.groupby("slice")["n"].max().sort_values(ascending=False, kind="stable")
            keep = set(sizes.index[: quota[dim]])
            dropped.append(f"{dim}: {len(keep)} of {len(values)} values shown")
            values = [v for v in values if v in keep]
        for v in values:
            name = f"{'duration' if dim == DURATION else dim}: {v}"
            columns.append(name)
            column_of[(dim, v)] = name
    parts = [
        "<h3>Slices: accuracy by tag and by audio duration</h3>",
        '<p class="note">Rows: the exact record, then each field. Every cell gives accuracy '
        "and n (runs in that slice); slices.csv has the 95% intervals.</p>",
    ]
    if dropped:
        parts.append(
            '<p class="warn">Too many slices to draw them all (the most populous are drawn; '
            "every one is in slices.csv): " + _e("; ".join(dropped)) + "</p>"
        )
    for variant in dict.fromkeys(ss["variant"]):
        sv = ss[ss["variant"] == variant]
        cells = sv.assign(
            column=[
                column_of.get((d, v), "") for d, v in zip(sv["dimension"], sv["slice"], strict=True)
            ]
        )
        cells = cells[cells["column"] != ""]
        parts.append(f"<h4>{_e(variant)}</h4>")
        parts.append(f"<figure>{plots.heatmap_chart(cells, fields, columns)}</figure>")
    return "".join(parts)


def _confusion_section(report: Report, suite: str) -> str:
    sc = (
        report.confusion[report.confusion["suite"] == suite] if not report.confusion.empty else None
    )
    if sc is None or sc.empty:
        return ""
    parts = [
        "<h3>Confusion tables</h3>",
        '<p class="note">Categorical fields (enum, Literal, bool): rows are the expected value, '
        "columns the predicted one; ∅ is no value, (error) an extraction that failed.</p>",
    ]
    for fld, ft in sc.groupby("field", sort=False):
        parts.append(f'<h4>{_e(fld)} ({_e(ft["field_type"].iloc[0])})</h4><div class="confusion">')
        for variant, table in ft.groupby("variant", sort=False):
            matrix = confusion_matrix(table)
            labels = list(matrix.index)
            rows = []
            for exp in labels:
                total = int(matrix.loc[exp].sum())
                cells = [f"<th>{_e(exp)}</th>"]
                for pred in labels:
                    count = int(matrix.loc[exp, pred])
                    share = count / total if total else 0.0
                    shade = (
                        ""
                        if not count
                        else (
                            f' style="background: rgba({"26,127,55" if exp == pred else "207,34,46"},'
                            f'{0.12 + 0.6 * share:.2f})"'
                        )
                    )
                    cls = "num diag" if exp == pred else "num"
                    cells.append(f'<td class="{cls}"{shade}>{count}</td>')
                cells.append(_td(total, "num"))
                rows.append(cells)
            header = ["expected \\ predicted", *(_e(v) for v in labels), "n"]
            parts.append(
                f"<div><div><b>{_e(variant)}</b></div>"
                + _table(header, rows, "confusion-table")
                + "</div>"
            )
        parts.append("</div>")
    return "".join(parts)


def _ablation_section(report: Report, suite: str) -> str:
    abl = report.ablation
    if abl.empty or "suite" not in abl.columns:
        return ""
    sel = abl[abl["suite"] == suite]
    if sel.empty:
        return ""
    rows = [
        [
            _td(r["field"]),
            _td(r["audio_variant"]),
            _td(percent(r["accuracy_audio"]), "num"),
            _td(r["text_variant"]),
            _td(percent(r["accuracy_text"]), "num"),
            _td(percent(r["error_remaining_as_text"]), "num"),
        ]
        for _, r in sel.iterrows()
    ]
    return (
        "<h3>Misheard or misextracted</h3>"
        '<p class="note">Error left when the reference transcript is given as text: low means '
        "the audio variant's errors are mostly hearing, high mostly extraction.</p>"
        + _table(
            [
                "field",
                "audio variant",
                "audio acc",
                "text variant",
                "text acc",
                "error left as text",
            ],
            rows,
        )
    )


# ------------------------------------------------------------------------ cases data


@dataclass
class _Clips:
    """Each distinct audio file once: its absolute path and the index the cases refer to."""

    paths: list[Path]
    index: dict[str, int]

    def add(self, raw: str, root: Path) -> int:
        if raw not in self.index:
            path = Path(raw) if os.path.isabs(raw) else root / raw
            self.index[raw] = len(self.paths)
            self.paths.append(path)
        return self.index[raw]


def _suite_data(
    report: Report,
    suite: str,
    variants: list[str],
    shown: ShownCases,
    clips: _Clips,
    root: Path,
) -> dict[str, Any]:
    cases = shown.runs
    rows = report.results["suite"] == suite
    fields = report.results.loc[rows, "field"].unique().tolist()
    if not shown.complete:
        rows &= report.results["case_id"].isin(cases["case_id"].unique())
    res = report.results[rows]
    position = {f: i for i, f in enumerate(fields)}
    tag_columns = sorted(c for c in cases.columns if c.startswith("tag."))
    vindex = {v: i for i, v in enumerate(variants)}
    per_run: dict[tuple[str, str, int], dict[str, list[str]]] = {}
    expected: dict[str, list[str]] = {}
    columns = [
        "variant",
        "case_id",
        "repeat",
        "field",
        "expected",
        "predicted",
        "correct",
        "outcome",
    ]
    k = len(fields)
    for variant, case_id, repeat, fld, exp, pred, correct, outcome in zip(
        *(res[c].tolist() for c in columns), strict=True
    ):
        key = (variant, case_id, int(repeat))
        entry = per_run.get(key)
        if entry is None:
            entry = per_run[key] = {"pred": [""] * k, "out": ["e"] * k, "ok": ["1"] * k}
        i = position[fld]
        entry["pred"][i] = pred
        entry["out"][i] = _OUTCOME_CODES.get(outcome, "x")
        entry["ok"][i] = "1" if correct else "0"
        exp_row = expected.get(case_id)
        if exp_row is None:
            exp_row = expected[case_id] = [""] * k
        exp_row[i] = exp
    case_rows: list[list[Any]] = []
    case_index: dict[str, int] = {}
    runs: list[list[Any]] = []
    wanted = ["case_id", "variant", "repeat", "error", "error_message", "transcript"]
    wanted += ["reference_transcript", "latency_ms", "audio_path", "audio_seconds", *tag_columns]
    for r in cases[[c for c in wanted if c in cases.columns]].to_dict("records"):
        case_id = str(r["case_id"])
        if case_id not in case_index:
            case_index[case_id] = len(case_rows)
            tags = [r.get(c) for c in tag_columns]
            case_rows.append(
                [
                    case_id,
                    clips.add(str(r.get("audio_path") or ""), root),
                    _rounded(r.get("audio_seconds"), 2),
                    [
                        "" if t is None or (isinstance(t, float) and math.isnan(t)) else str(t)
                        for t in tags
                    ],
                    expected.get(case_id, [""] * len(fields)),
                    str(r.get("reference_transcript") or ""),
                ]
            )
        entry = per_run.get(
            (r["variant"], case_id, int(r["repeat"])),
            {"pred": [""] * len(fields), "out": ["i"] * len(fields), "ok": ["0"] * len(fields)},
        )
        expect = case_rows[case_index[case_id]][4]
        runs.append(
            [
                case_index[case_id],
                vindex[r["variant"]],
                int(r["repeat"]),
                str(r["error"] or ""),
                str(r.get("error_message") or ""),
                # a prediction equal to the label travels as null (the page shows the label)
                [None if p == e else p for p, e in zip(entry["pred"], expect, strict=True)],
                "".join(entry["out"]),
                "".join(entry["ok"]),
                str(r.get("transcript") or ""),
                round(_num(r.get("latency_ms")) or 0.0, 1),
            ]
        )
    return {
        "name": suite,
        "fields": fields,
        "variants": variants,
        "tagKeys": [c[len("tag.") :] for c in tag_columns],
        "cases": case_rows,
        "runs": runs,
    }


def _clip_sources(
    clips: _Clips, present: Sequence[bool], mode: AudioMode, options: HtmlOptions
) -> tuple[bool, list[str]]:
    """Whether clips are embedded, and each clip's data: URI when they are (`present`: whether
    each clip's file exists)."""
    if mode == AudioMode.LINK:
        return False, []
    total = sum(p.stat().st_size for p, here in zip(clips.paths, present, strict=True) if here)
    embed = mode == AudioMode.EMBED or total <= options.embed_max_bytes
    if not embed:
        return False, []
    sources = []
    for path, here in zip(clips.paths, present, strict=True):
        if not here:
            sources.append("")
            continue
        mime = MIME.get(path.suffix.lower(), "application/octet-stream")
        sources.append(f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}")
    return True, sources


# ------------------------------------------------------------------------ the page


@dataclass(frozen=True)
class HtmlPage:
    """A rendered report page but for its audio links, which depend on the folder it is written to."""

    top: str
    bottom: str
    data: Mapping[str, Any]
    clips: tuple[Path, ...]
    present: tuple[bool, ...]  # whether each clip's file exists (checked once, at build_page)
    embedded: tuple[str, ...] | None
    root: Path

    def write(self, folder: Path, links_from: Path | None = None) -> Path:
        """Write report.html into a folder atomically, its links working from links_from (default: that folder)."""
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / REPORT_HTML
        atomic_write(target, self.render(links_from or folder))
        return target

    def render(self, folder: Path) -> str:
        """The page's HTML for a file in this folder (links to clips relative to it)."""
        prefix = Path(os.path.relpath(os.path.abspath(self.root), os.path.abspath(folder)))
        audio: list[list[str | None]] = []
        for i, path in enumerate(self.clips):
            shown = _display_path(path, self.root)
            if self.embedded is not None:
                audio.append([shown, self.embedded[i]])
            elif not self.present[i]:
                audio.append([shown, ""])
            elif not os.path.isabs(shown):  # under the root: the prefix and the shown path
                audio.append([shown, None])
            else:
                rel = os.path.relpath(os.path.abspath(path), os.path.abspath(folder))
                audio.append([shown, quote(Path(rel).as_posix())])
        data = {**self.data, "audio": audio, "audioPrefix": quote(prefix.as_posix()) + "/"}
        return (
            self.top
            + f'<script type="application/json" id="report-data">{_json_for_script(data)}</script>'
            + self.bottom
        )


def _display_path(path: Path, root: Path) -> str:
    """The clip's path relative to the project root when it lies under it, else absolute."""
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return str(path)


def _left_out_note(shown: ShownCases, limit: int) -> str:
    """What a cut cases table leaves out, and where every run is."""
    if shown.complete:
        return ""
    return (
        f'<p class="warn left-out">This table holds {len(shown.runs):,} of the suite\'s '
        f"{shown.total_runs:,} runs ({shown.shown_cases:,} of {shown.total_cases:,} cases, "
        f"whole cases up to {limit:,} rows): first the cases with an extraction error "
        f"({shown.errored_cases:,}), then those with a wrong field ({shown.wrong_cases:,}), then "
        f"the rest. The {shown.total_runs - len(shown.runs):,} runs left out are in the files "
        "beside this page: results.parquet and results.csv (one row per field), cases.parquet "
        "and cases.csv (one row per run). [tool.audio-evals.report] max_case_rows sets how many "
        "rows the page carries.</p>"
    )


def build_page(report: Report, info: RunInfo, options: HtmlOptions | None = None) -> HtmlPage:
    """Everything of report.html that does not depend on where it is written (charts, tables, data)."""
    options = options or HtmlOptions()
    headline = info.headline
    root = Path(headline.root) if headline.root and Path(headline.root).is_dir() else Path.cwd()
    badge, gates_html = _gates_section(info.gates)
    suites = sorted(report.cases["suite"].unique().tolist()) if not report.cases.empty else []
    clips = _Clips([], {})
    data_suites = []
    sections = []
    nav = ['<a href="#gates">gates</a>'] if info.gates else []
    runs_of = {s: report.cases[report.cases["suite"] == s] for s in suites}
    quota = share_out({s: len(runs) for s, runs in runs_of.items()}, options.max_case_rows)
    for suite in suites:
        anchor = "suite-" + "".join(ch if ch.isalnum() else "-" for ch in suite)
        nav.append(f'<a href="#{_e(anchor)}">{_e(suite)}</a>')
        variants = runs_of[suite]["variant"].unique().tolist()
        n_cases = runs_of[suite]["case_id"].nunique()
        shown = select_cases(runs_of[suite], quota[suite])
        sections.append(
            f'<section id="{_e(anchor)}"><h2>Suite {_e(suite)}</h2>'
            f'<p class="note">{n_cases} cases; variants: {_e(", ".join(variants))}</p>'
            + _fields_section(report, suite, variants)
            + _variants_section(report, suite)
            + _comparison_section(report, suite)
            + _slices_section(report, suite, options)
            + _confusion_section(report, suite)
            + _ablation_section(report, suite)
            + f'<h3 id="{_e(anchor)}-cases">Cases</h3>'
            '<p class="note">Filter by variant, field, outcome and tag; click a column '
            "heading to sort. Wrong fields are highlighted; play the clip next to what the "
            "model answered.</p>"
            + _left_out_note(shown, quota[suite])
            + f'<div class="cases-root" id="cases-{_e(anchor)}" data-suite="{_e(suite)}"></div>'
            "</section>"
        )
        data_suites.append(_suite_data(report, suite, variants, shown, clips, root))
    not_run = ""
    if report.skips:
        items = "".join(
            f"<li>{_e(s['suite'])} / {_e(s['variant'])}: {_e(s['reason'])}</li>"
            for s in report.skips
        )
        not_run = f'<section id="not-run"><h2>Not run</h2><ul>{items}</ul></section>'
    notes = "".join(f'<p class="warn">{_e(n)}</p>' for n in report.notes)
    title = f"audio-evals report, {headline.when}"
    top = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{_e(title)}</title>'
        f"<style>{_asset('report.css')}</style></head><body>"
        f"<header><h1>audio-evals report</h1>{badge}{_headline(info)}{notes}</header>"
        f"<nav>{''.join(nav)}</nav><main>{gates_html}{''.join(sections)}{not_run}</main>"
    )
    bottom = f"<script>{_asset('report.js')}</script></body></html>\n"
    present = tuple(p.is_file() for p in clips.paths)
    embedded, sources = _clip_sources(clips, present, options.audio, options)
    return HtmlPage(
        top=top,
        bottom=bottom,
        data={"suites": data_suites},
        clips=tuple(clips.paths),
        present=present,
        embedded=tuple(sources) if embedded else None,
        root=root,
    )
