"""`audio-evals`: run suites without pytest, make and check datasets, serve the local model, compare and render runs."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

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
from .shown_cases import DEFAULT_MAX_CASE_ROWS
from .stats import paired_comparison
from .terminal import LineKind

if TYPE_CHECKING:
    from .engine import Run
    from .finish import Outcome


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


def _partial(folder: Path) -> str | None:
    """What a saved report's run.json says when its run is partial (None when complete or unknown)."""
    from .run_info import read_run_info

    try:
        record = read_run_info(folder).record
    except FileNotFoundError:
        return None
    return None if record is None or record.complete else record.summary


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
    for name, folder in (("A", args.a), ("B", args.b)):
        partial = _partial(Path(folder))
        if partial:
            lines += [f"> **{name} ({folder}) is a {partial}**", ""]
            print(
                f"audio-evals compare: warning: {name} ({folder}) is a {partial}", file=sys.stderr
            )
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
    if args.max_case_rows < 1:
        print("audio-evals report: --max-case-rows must be at least 1", file=sys.stderr)
        return 2
    options = HtmlOptions(
        AudioMode(args.audio),
        int(args.embed_audio_max_mb * 1024 * 1024),
        max_case_rows=args.max_case_rows,
    )
    path = build_page(report, info, options).write(folder)
    print(f"written: {path}")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from .init import NEXT_STEPS, InitError, init_project

    try:
        result = init_project(Path(args.dir))
    except InitError as exc:
        print(f"audio-evals init: {exc}", file=sys.stderr)
        return 1
    print(f"made an eval project in {result.root} ({len(result.files)} files).")
    print(
        f"Check it: cd {result.root} && pip install -e . && pytest   (replays the example offline)"
    )
    print("Next:")
    for i, step in enumerate(NEXT_STEPS, start=1):
        print(f"  {i}. {step}")
    return 0


def _print_outcome(run: Run, outcome: Outcome) -> int:
    """Print a finished run's summary; its exit status (1: a gate failed, a case errored, interrupted)."""
    for line in outcome.lines(all_gates=True):
        print(f" {line.text} ".center(88, "=") if line.kind is LineKind.SEP else line.text)
    errored = sum(1 for r in run.results if r.error_kind)
    if run.interrupted:
        return 130  # as a shell reports a command ended by Ctrl-C
    return 1 if outcome.failed or errored else 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from .finish import finish_run
    from .gates import GateConfigError
    from .project import Project, ProjectError
    from .shards import ShardError, merge_shards

    try:
        run = merge_shards([Path(d) for d in args.shards], Project.at(args.root))
        outcome = finish_run(run, folder=Path(args.out))
    except (ShardError, ProjectError, GateConfigError) as exc:
        print(f"audio-evals merge: {exc}", file=sys.stderr)
        return 2
    return _print_outcome(run, outcome)


def _cmd_run(args: argparse.Namespace) -> int:
    from .engine import RunInterrupted, UsageError, run_suite
    from .finish import finish_run
    from .gates import GateConfigError
    from .project import Project, ProjectError
    from .run_record import resume_command
    from .shards import ShardError, parse_shard
    from .suites import SUITE_SUFFIX, SuiteError, import_object, load_suite

    try:
        project = Project.at(
            args.root, reports_dir=args.reports_dir, cassette_dir=args.cassette_dir
        )
        paths = [Path(p) for p in args.suites] or sorted(
            (project.root / "evals").rglob(f"*{SUITE_SUFFIX}")
        )
        if not paths:
            print(
                f"audio-evals run: no {SUITE_SUFFIX} file under {project.root / 'evals'}",
                file=sys.stderr,
            )
            return 2
        suites = [load_suite(p, root=project.root) for p in paths]
        factory = import_object(args.client_factory, project.root) if args.client_factory else None
        try:
            run = run_suite(
                suites,
                record_mode=args.record_mode,
                variants=args.variant or None,
                cases=args.case or None,
                concurrency=args.concurrency,
                processes=args.processes,
                project=project,
                client_factory=factory,
                shard=parse_shard(args.shard) if args.shard else None,
            )
        except RunInterrupted as stop:  # Ctrl-C: report what completed, marked partial
            run = stop.run
        run.resume = resume_command(args.argv, run.record_mode, program="audio-evals")
        if run.shard is not None:
            from .shards import shard_folder, shard_lines, write_shard

            folder = write_shard(run, shard_folder(project.reports_dir, run.shard))
            print("\n".join(shard_lines(run, folder)))
            return 1 if any(r.error_kind for r in run.results) else 0
        outcome = finish_run(run, write=not args.no_write)
    except (SuiteError, ProjectError, GateConfigError, UsageError, ShardError, ImportError) as exc:
        print(f"audio-evals run: {exc}", file=sys.stderr)
        return 2
    return _print_outcome(run, outcome)


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
    merge = sub.add_parser(
        "merge", help="one report and one gate verdict from the shards of a sharded run"
    )
    merge.add_argument("shards", nargs="+", help="shard folders (<reports>/shards/I-of-N)")
    merge.add_argument(
        "-o", "--out", required=True, help="the report folder to write (e.g. reports/latest)"
    )
    merge.add_argument("--root", default=None, help="project root (default: found from here)")
    merge.set_defaults(func=_cmd_merge)
    init = sub.add_parser("init", help="make a working eval project (green at once) to start from")
    init.add_argument("dir", nargs="?", default=".", help="the folder (default: the current one)")
    init.set_defaults(func=_cmd_init)
    run = sub.add_parser(
        "run", help="run or replay suites without pytest, write the report, judge the gates"
    )
    run.add_argument("suites", nargs="*", help="suite files (default: every evals/**/*.eval.toml)")
    run.add_argument(
        "--record-mode", default="none", choices=["none", "once", "new_episodes", "all", "rewrite"]
    )
    run.add_argument(
        "--variant", action="append", default=[], help="run only this variant (repeatable)"
    )
    run.add_argument(
        "--case", action="append", default=[], help="run only this case id (repeatable)"
    )
    run.add_argument(
        "--concurrency", type=int, default=8, help="concurrent calls per batch (default 8)"
    )
    run.add_argument(
        "--processes", type=int, default=None, help="replay processes (default: one per CPU)"
    )
    run.add_argument(
        "--client-factory", help="module:function building variant.client for custom extractors"
    )
    run.add_argument(
        "--root", default=None, help="project root (default: found from the current folder)"
    )
    run.add_argument("--reports-dir", default=None)
    run.add_argument("--cassette-dir", default=None)
    run.add_argument("--shard", help="I/N: run the I-th of N shares of the cases, saved for merge")
    run.add_argument(
        "--no-write", action="store_true", help="print the summary only, write no report"
    )
    run.set_defaults(func=_cmd_run)
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
        "--max-case-rows",
        type=int,
        default=DEFAULT_MAX_CASE_ROWS,
        help="runs the cases tables carry, whole cases with an error or a wrong field first "
        f"(default {DEFAULT_MAX_CASE_ROWS:,}; every run stays in the CSV and Parquet files)",
    )
    report.add_argument(
        "--root", help="project root the clips' paths are relative to (default: the run's)"
    )
    report.set_defaults(func=_cmd_report)
    from .dataset_commands import add_dataset_commands

    add_dataset_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `audio-evals` console script."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
