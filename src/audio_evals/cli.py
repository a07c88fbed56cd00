"""`audio-evals`: commands that are not a test run (serve, compare, import, validate, schema)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .report import (
    RECORD_FIELD,
    Report,
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
    return pd.DataFrame(rows)


def _cmd_compare(args: argparse.Namespace) -> int:
    try:
        a, b = load_report(Path(args.a)), load_report(Path(args.b))
    except FileNotFoundError as exc:
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
    from .dataset_commands import add_dataset_commands

    add_dataset_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `audio-evals` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
