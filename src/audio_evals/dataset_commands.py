"""The `synth`, `augment` and `stats` subcommands: arguments, printed results and exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from .audio_tools import ToolError
from .cassettes import RecordMode
from .conditions import CONDITION_SYNTAX, AudioFormat
from .problems import ProblemsError


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
