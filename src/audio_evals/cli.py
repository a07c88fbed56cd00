"""`audio-evals`: commands that are not a test run (serve, compare, report, validate)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .html_report import AudioMode
from .report import (
    RECORD_FIELD,
    Report,
    adjust_comparisons,
    comparison_row,
    comparison_table,
    load_report,
    per_case_scores,
)
from .stats import paired_comparison


def compare_reports(a: Report, b: Report) -> pd.DataFrame:
    """Paired comparison of two saved runs, variant by variant and field by field (diff = B - A)."""
    rows = []
    keys = sorted(
        set(zip(a.cases["suite"], a.cases["variant"], strict=False))
        & set(zip(b.cases["suite"], b.cases["variant"], strict=False))
    )
    for suite, variant in keys:
        fields = [RECORD_FIELD, *dict.fromkeys(a.results[a.results["suite"] == suite]["field"])]
        for fld in fields:
            sa = per_case_scores(a, suite, variant, fld)
            sb = per_case_scores(b, suite, variant, fld)
            joined = pd.concat([sa.rename("a"), sb.rename("b")], axis=1, join="inner").sort_index()
            if joined.empty:
                continue
            res = paired_comparison(joined["a"].to_numpy(), joined["b"].to_numpy())
            rows.append(
                {
                    **comparison_row(suite, fld, f"A:{variant}", f"B:{variant}", res),
                    "variant": variant,
                }
            )
    return adjust_comparisons(pd.DataFrame(rows))


def _cmd_compare(args: argparse.Namespace) -> int:
    try:
        a, b = load_report(Path(args.a)), load_report(Path(args.b))
    except (FileNotFoundError, ValueError) as exc:
        print(f"audio-evals compare: {exc}", file=sys.stderr)
        return 2
    frame = compare_reports(a, b)
    if frame.empty:
        print(
            "audio-evals compare: the two runs share no suite/variant with cases in common",
            file=sys.stderr,
        )
        return 1
    out = Path(args.out) if args.out else Path(args.b) / "compare"
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "comparison.csv", index=False, float_format="%.6g", lineterminator="\n")
    lines = [f"# Comparison: A = {args.a}, B = {args.b} (diff = B - A, paired by case)", ""]
    for suite in sorted(set(frame["suite"])):
        lines += [f"## Suite `{suite}`", "", comparison_table(frame[frame["suite"] == suite]), ""]
    text = "\n".join(lines)
    (out / "comparison.md").write_text(text, encoding="utf-8")
    print(text)
    print(f"written: {out / 'comparison.csv'}, {out / 'comparison.md'}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .html_report import HtmlOptions, build_page
    from .run_info import read_run_info

    folder = Path(args.run_dir)
    try:
        report = load_report(folder)
        info = read_run_info(folder)
    except (FileNotFoundError, ValueError) as exc:
        print(f"audio-evals report: {exc}", file=sys.stderr)
        return 2
    if args.root:
        root = Path(args.root)
        if not root.is_dir():
            print(f"audio-evals report: --root {root} is not a folder", file=sys.stderr)
            return 2
        headline = dataclasses.replace(info.headline, root=str(root.resolve()))
        info = dataclasses.replace(info, headline=headline)
    options = HtmlOptions(AudioMode(args.audio), int(args.embed_audio_max_mb * 1024 * 1024))
    path = build_page(report, info, options).write(folder)
    print(f"written: {path}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .datasets import DatasetError, load_dataset
    from .suites import SuiteError, import_object, load_suite

    try:
        if args.path.endswith(".eval.toml"):
            suite = load_suite(args.path)
            print(
                f"ok: suite {suite.name}: {len(suite.dataset)} cases, variants {[v.name for v in suite.variants]}"
            )
            return 0
        if not args.model:
            print("audio-evals validate: a dataset needs --model module:Class", file=sys.stderr)
            return 2
        model = import_object(args.model, Path.cwd())
        ds = load_dataset(args.path, model)
        print(f"ok: dataset {ds.name}: {len(ds)} cases")
        return 0
    except (DatasetError, SuiteError, ImportError, ValueError) as exc:
        print(f"audio-evals validate: {exc}", file=sys.stderr)
        return 1


def _cmd_serve(args: argparse.Namespace) -> int:
    from .local.serve import run_serve

    return run_serve(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `audio-evals` command."""
    parser = argparse.ArgumentParser(prog="audio-evals", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="run the local OpenAI-compatible server (reference model, faults)"
    )
    from .local.serve import add_serve_arguments

    add_serve_arguments(serve)
    serve.set_defaults(func=_cmd_serve)
    compare = sub.add_parser(
        "compare", help="paired comparison of two saved report folders (e.g. main vs branch)"
    )
    compare.add_argument("a", help="report folder A (e.g. reports/main)")
    compare.add_argument("b", help="report folder B (e.g. reports/latest)")
    compare.add_argument("--out", help="where to write comparison.csv/.md (default: B/compare)")
    compare.set_defaults(func=_cmd_compare)
    report = sub.add_parser(
        "report", help="write report.html again from a saved run folder (e.g. reports/latest)"
    )
    report.add_argument("run_dir", help="a run folder written by pytest evals")
    report.add_argument(
        "--audio",
        choices=[str(mode) for mode in AudioMode],
        default=str(AudioMode.AUTO),
        help="put the clips inside the page, link them, or embed up to --embed-audio-max-mb (auto)",
    )
    report.add_argument(
        "--embed-audio-max-mb",
        type=float,
        default=10.0,
        help="auto embeds the clips when they total at most this many MiB (default 10)",
    )
    report.add_argument(
        "--root", help="project root the clips' paths are relative to (default: the run's)"
    )
    report.set_defaults(func=_cmd_report)
    validate = sub.add_parser("validate", help="validate a dataset folder or a .eval.toml suite")
    validate.add_argument("path")
    validate.add_argument("--model", help="response model module:Class (for a dataset folder)")
    validate.set_defaults(func=_cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `audio-evals` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
