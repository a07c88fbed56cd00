"""The dataset subcommands of `audio-evals`: import, validate, schema, synth, augment, stats."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .audio_tools import ToolError
from .cassettes import RecordMode
from .conditions import CONDITION_SYNTAX, AudioFormat
from .datasets import DatasetError
from .model_import import ModelImportError, import_model
from .problems import ProblemsError


def add_dataset_commands(sub: argparse._SubParsersAction) -> None:
    """Register the dataset subcommands on the `audio-evals` parser."""
    imp = sub.add_parser(
        "import",
        help="labels (CSV, TSV, JSONL, .xlsx, a Hugging Face dataset) + audio -> a dataset folder",
    )
    imp.add_argument("source", help="label file, or a folder saved by datasets' save_to_disk")
    imp.add_argument("-o", "--out", required=True, help="the dataset folder to write")
    imp.add_argument("--model", required=True, help="response model, module:Class")
    imp.add_argument("--link", action="store_true", help="hard-link audio instead of copying")
    imp.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    imp.add_argument("--split", help="the split of a Hugging Face DatasetDict")
    imp.set_defaults(func=run_import)
    val = sub.add_parser(
        "validate", help="check every row and decode every clip of a dataset (or check a suite)"
    )
    val.add_argument("path", help="a dataset folder (or metadata.jsonl), or a .eval.toml suite")
    val.add_argument("--model", help="response model module:Class (for a dataset)")
    val.set_defaults(func=run_validate)
    sch = sub.add_parser(
        "schema", help="write metadata.schema.json (a row's JSON schema) and reference it"
    )
    sch.add_argument("dataset", nargs="?", default=".", help="the dataset folder (default: .)")
    sch.add_argument("--model", required=True, help="response model, module:Class")
    sch.add_argument("--stdout", action="store_true", help="print the schema, write nothing")
    sch.set_defaults(func=run_schema)
    fetch = sub.add_parser(
        "fetch",
        help="warm the local audio cache with the remote audio of datasets (or suites)",
        description="Fetch every remote clip (URLs in file_name, or under [remote] root in "
        "dataset.toml) that the cache lacks, verify each against its sha256, and check its "
        "header; a warm cache makes no request. Exit status 1 when any row failed.",
    )
    fetch.add_argument(
        "paths", nargs="+", help="dataset folders (or metadata.jsonl files) or .eval.toml suites"
    )
    fetch.add_argument("--jobs", type=int, help="files fetched at once (default: [remote] jobs, 8)")
    fetch.add_argument("--model", help="response model module:Class, to check labels too")
    fetch.add_argument(
        "--refresh",
        action="store_true",
        help="fetch again what is cached (a URL's content is otherwise taken not to change)",
    )
    fetch.add_argument(
        "--pin",
        action="store_true",
        help="write each remote file's sha256 into its row (rows without one): a changed object "
        "is then an error, not a silent change of the data",
    )
    fetch.set_defaults(func=run_fetch)
    register(sub)


def run_import(args: argparse.Namespace) -> int:
    """`audio-evals import SOURCE -o DIR --model module:Class`."""
    from .importing import import_dataset
    from .validation import problems_table

    try:
        model = import_model(args.model)
        result = import_dataset(
            args.source,
            Path(args.out),
            model,
            link=args.link,
            overwrite=args.overwrite,
            split=args.split,
        )
    except ModelImportError as exc:
        print(f"audio-evals import: {exc}", file=sys.stderr)
        return 2
    except DatasetError as exc:
        print(
            f"audio-evals import: {len(exc.problems)} problem(s); nothing was written",
            file=sys.stderr,
        )
        print(problems_table(exc.problems), file=sys.stderr)
        return 1
    how = f"{result.copied} audio files copied" + (
        f", {result.linked} hard-linked" if result.linked else ""
    )
    print(
        f"imported {result.rows} rows from {args.source} ({result.source_kind}) into "
        f"{result.out}: {how}"
        + ("; ids derived from the audio file names" if result.ids_derived else "")
    )
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """`audio-evals validate DATASET --model module:Class` (or a `.eval.toml` suite)."""
    from .suites import SuiteError, load_suite
    from .validation import problems_table, validate_dataset

    if args.path.endswith(".eval.toml"):
        try:
            suite = load_suite(args.path)
        except (SuiteError, DatasetError, ImportError, ValueError) as exc:
            print(f"audio-evals validate: {exc}", file=sys.stderr)
            return 1
        print(
            f"ok: suite {suite.name}: {len(suite.dataset)} cases, "
            f"variants {[v.name for v in suite.variants]}"
        )
        return 0
    if not args.model:
        print("audio-evals validate: a dataset needs --model module:Class", file=sys.stderr)
        return 2
    try:
        model = import_model(args.model)
    except ModelImportError as exc:
        print(f"audio-evals validate: {exc}", file=sys.stderr)
        return 2
    report = validate_dataset(args.path, model)
    if not report.ok:
        print(
            f"audio-evals validate: {len(report.problems)} problem(s) in {report.metadata}",
            file=sys.stderr,
        )
        print(problems_table(report.problems), file=sys.stderr)
        return 1
    print(f"ok: dataset {report.metadata.parent.name}: {report.summary()}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    """`audio-evals fetch PATH... [--jobs N] [--model module:Class] [--refresh]`."""
    from .remote_audio import FetchResult, fetch_audio, fetch_dataset, pin_digests
    from .suites import SuiteError, load_suite
    from .validation import problems_table

    if args.jobs is not None and args.jobs < 1:
        print("audio-evals fetch: --jobs must be 1 or more", file=sys.stderr)
        return 2
    try:
        model = import_model(args.model) if args.model else None
    except ModelImportError as exc:
        print(f"audio-evals fetch: {exc}", file=sys.stderr)
        return 2
    failed = False
    for target in args.paths:
        if target.endswith(".eval.toml"):
            try:
                dataset = load_suite(target).dataset
            except DatasetError as exc:
                print(
                    f"audio-evals fetch: {target}: {len(exc.problems)} problem(s)", file=sys.stderr
                )
                print(problems_table(exc.problems), file=sys.stderr)
                failed = True
                continue
            except (SuiteError, ImportError, ValueError) as exc:
                print(f"audio-evals fetch: {exc}", file=sys.stderr)
                failed = True
                continue
            result = FetchResult([], fetch_audio(dataset, jobs=args.jobs, refresh=args.refresh))
        else:
            result = fetch_dataset(target, model, jobs=args.jobs, refresh=args.refresh)
        cache = f"; cache {result.report.cache}" if result.report.cache else ""
        print(f"{target}: {result.report.summary()}{cache}")
        if args.pin:
            try:
                pinned = pin_digests(result.report)
            except (OSError, ValueError) as exc:
                print(f"audio-evals fetch: --pin: {exc}", file=sys.stderr)
                failed = True
            else:
                print(f"{target}: sha256 written to {pinned} row(s) of {result.report.metadata}")
        if result.problems:
            failed = True
            print(
                f"audio-evals fetch: {len(result.problems)} problem(s) in {result.report.metadata}",
                file=sys.stderr,
            )
            print(problems_table(result.problems), file=sys.stderr)
    return 1 if failed else 0


def run_schema(args: argparse.Namespace) -> int:
    """`audio-evals schema [DATASET] --model module:Class`."""
    from .schema import row_schema, write_schema

    try:
        model = import_model(args.model)
    except ModelImportError as exc:
        print(f"audio-evals schema: {exc}", file=sys.stderr)
        return 2
    if args.stdout:
        print(json.dumps(row_schema(model), indent=2, ensure_ascii=False))
        return 0
    written = write_schema(Path(args.dataset), model)
    print(f"written: {written.schema}; {written.rows_referenced} rows reference it")
    if written.rows_left:
        print(
            f"lines {written.rows_left} are not JSON objects and were left as they are "
            "(audio-evals validate names the problem)",
            file=sys.stderr,
        )
    return 0


def _run(command: str, action: Callable[[], int]) -> int:
    """Run a command; bad input or a missing tool is one clear message and exit status 1."""
    try:
        return action()
    except (ProblemsError, ToolError, ValueError, FileExistsError) as exc:
        print(f"audio-evals {command}: {exc}", file=sys.stderr)
        return 1


def _cmd_synth(args: argparse.Namespace) -> int:
    from .synth import synth
    from .synth_spec import load_spec

    def action() -> int:
        spec = load_spec(
            args.spec, seed=args.seed, rows=args.rows, voices=args.voice, renderings=args.renderings
        )
        result = synth(
            spec,
            args.out,
            force=args.force,
            jobs=args.jobs,
            base_url=args.base_url,
            api_key_env=args.api_key_env,
            cassette=args.cassette,
            record_mode=args.record_mode,
            tts_model=args.tts_model,
        )
        print(f"wrote {result.out}: {result.rows} rows, voices {', '.join(result.voices)}")
        if result.cassette is not None:
            print(f"speech calls: {result.cassette} (record mode {args.record_mode})")
        return 0

    return _run("synth", action)


def _cmd_augment(args: argparse.Namespace) -> int:
    from .augment import augment

    def action() -> int:
        result = augment(
            args.dataset,
            args.out,
            conditions=args.condition or (),
            plan=args.plan,
            audio_format=args.format,
            seed=args.seed,
            force=args.force,
            jobs=args.jobs,
        )
        counts = ", ".join(f"{c} {n}" for c, n in result.conditions.items())
        print(f"wrote {result.out}: {result.rows} rows ({counts})")
        return 0

    return _run("augment", action)


def _cmd_stats(args: argparse.Namespace) -> int:
    from .dataset_stats import dataset_stats, stats_json, stats_text

    def action() -> int:
        stats = dataset_stats(args.dataset)
        if args.json:
            print(json.dumps(stats_json(stats), indent=2, ensure_ascii=False))
        else:
            print(stats_text(stats, top=args.top))
        return 0

    return _run("stats", action)


def register(sub: Any) -> None:
    """Add the dataset-making subcommands to the `audio-evals` parser's subparsers."""
    synth = sub.add_parser(
        "synth",
        help="render a spec of labelled utterances with text-to-speech into a dataset folder",
        description="Render a spec (.toml with utterances or templates, or a .jsonl of utterances) "
        "with flite, espeak-ng or OpenAI's speech endpoint into DATASET/metadata.jsonl + audio/.",
    )
    synth.add_argument(
        "spec", help="spec file: .toml (utterances or templates) or .jsonl (utterances)"
    )
    synth.add_argument("-o", "--out", required=True, help="dataset folder to write")
    synth.add_argument(
        "--voice", action="append", help="engine:name, repeatable (replaces the spec's voices)"
    )
    synth.add_argument(
        "--seed", type=int, help="seed of the template expansion (replaces the spec's)"
    )
    synth.add_argument(
        "--rows", type=int, help="rows a template spec expands to (replaces the spec's)"
    )
    synth.add_argument(
        "--renderings", type=int, help="times each utterance is read, by successive voices"
    )
    synth.add_argument(
        "--force", action="store_true", help="replace OUT's metadata.jsonl and audio/"
    )
    synth.add_argument("--jobs", type=int, help="clips rendered at once (default: one per CPU)")
    openai = synth.add_argument_group("OpenAI voices (openai:NAME)")
    openai.add_argument(
        "--tts-model", help="speech model (default: the spec's tts_model, gpt-4o-mini-tts)"
    )
    openai.add_argument("--base-url", help="an OpenAI-compatible server (default: OpenAI)")
    openai.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="variable holding the API key"
    )
    openai.add_argument(
        "--cassette",
        help="vcrpy cassette of the speech calls (default: beside SPEC, its suffix -> .tts.yaml)",
    )
    openai.add_argument(
        "--record-mode",
        default="once",
        choices=[m.value for m in RecordMode],
        help="as pytest evals (default: once)",
    )
    synth.set_defaults(func=_cmd_synth)

    augment = sub.add_parser(
        "augment",
        help="derive a dataset with the same labels under acoustic conditions",
        description=f"Conditions: {CONDITION_SYNTAX}. With one --condition every row keeps its id; "
        "with several, each row appears once per condition (ids suffixed). A --plan file assigns "
        "conditions to rows by id or tag.",
    )
    augment.add_argument("dataset", help="source dataset folder")
    augment.add_argument("-o", "--out", required=True, help="dataset folder to write")
    how = augment.add_mutually_exclusive_group(required=True)
    how.add_argument("--condition", action="append", help="condition for every row (repeatable)")
    how.add_argument("--plan", help="plan file (.toml) assigning conditions to rows")
    augment.add_argument(
        "--format",
        choices=[f.value for f in AudioFormat],
        help="output format (default: the source's)",
    )
    augment.add_argument("--seed", help="integer or integers a,b (default: the plan's, else 0)")
    augment.add_argument(
        "--force", action="store_true", help="replace OUT's metadata.jsonl and audio/"
    )
    augment.add_argument("--jobs", type=int, help="clips processed at once (default: one per CPU)")
    augment.set_defaults(func=_cmd_augment)

    stats = sub.add_parser(
        "stats", help="rows, durations, tag counts and label distributions of a dataset"
    )
    stats.add_argument("dataset", help="dataset folder")
    stats.add_argument(
        "--top", type=int, default=10, help="values shown per tag and field (default: 10)"
    )
    stats.add_argument("--json", action="store_true", help="print every figure as JSON")
    stats.set_defaults(func=_cmd_stats)
