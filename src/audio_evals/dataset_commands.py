"""The dataset subcommands of `audio-evals` (import, validate, schema): arguments and output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .datasets import DatasetError
from .model_import import ModelImportError, import_model


def add_dataset_commands(sub: argparse._SubParsersAction) -> None:
    """Register `import`, `validate` and `schema` on the `audio-evals` parser."""
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


def run_schema(args: argparse.Namespace) -> int:
    """`audio-evals schema [DATASET] --model module:Class`."""
    import json

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
