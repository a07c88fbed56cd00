"""The JSON schema of a dataset row (`expected` typed by the response model), for editors.

`write_schema` writes `metadata.schema.json` beside `metadata.jsonl` and references it from every
row (`"$schema": "metadata.schema.json"`), as pydantic-evals does for its YAML datasets, so an
editor validates and completes rows while they are written. Label objects get
`additionalProperties: false` (unless the model allows extra keys): the loader refuses unknown
label keys, and the editor flags them the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .datasets import METADATA_FILE, SCHEMA_KEY
from .files import atomic_write

SCHEMA_FILE = "metadata.schema.json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def row_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of one `metadata.jsonl` row whose `expected` is a `model`."""
    label = model.model_json_schema(mode="validation", ref_template="#/$defs/{model}")
    defs: dict[str, Any] = label.pop("$defs", {})
    defs[model.__name__] = label
    for definition in defs.values():
        _close_objects(definition)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": f"audio-evals dataset row ({model.__name__})",
        "description": f"One line of {METADATA_FILE}: an audio file and its labelled record.",
        "type": "object",
        "required": ["file_name", "id", "expected"],
        "additionalProperties": False,
        "properties": {
            SCHEMA_KEY: {"type": "string", "description": "this schema file, for editors"},
            "file_name": {
                "type": "string",
                "minLength": 1,
                "description": "the audio file, relative to the dataset folder (or to its "
                "[remote] root), or a URL such as s3://, gs://, az://, hf://, https:// "
                "(wav, mp3, flac, ogg, opus, m4a, aiff)",
            },
            "id": {"type": "string", "minLength": 1, "description": "unique in the dataset"},
            "expected": {"$ref": f"#/$defs/{model.__name__}"},
            "tags": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "strings to slice the report by (speaker, condition, ...)",
            },
            "transcript": {
                "type": ["string", "null"],
                "description": "the reference transcript (word error rate, oracle ablation)",
            },
            "must_pass": {
                "type": "boolean",
                "description": "fail this case's test when any field is wrong",
            },
            "sha256": {
                "type": "string",
                "pattern": "^(sha256:)?[0-9a-fA-F]{64}$",
                "description": "the audio's sha256 (what sha256sum prints), checked when it is used",
            },
        },
        "$defs": defs,
    }


def _close_objects(schema: Any) -> None:
    """Set `additionalProperties: false` on every object with properties, recursively."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            _close_objects(value)
    elif isinstance(schema, list):
        for value in schema:
            _close_objects(value)


@dataclass(frozen=True)
class SchemaWritten:
    """What `write_schema` did: the schema file, and how many rows now reference it."""

    schema: Path
    rows_referenced: int
    rows_left: list[int]  # lines that are not JSON objects, left as they are


def write_schema(dataset: Path, model: type[BaseModel]) -> SchemaWritten:
    """Write `metadata.schema.json` into the dataset folder and reference it from each row."""
    root = dataset if dataset.is_dir() or not dataset.suffix else dataset.parent
    root.mkdir(parents=True, exist_ok=True)
    schema_path = root / SCHEMA_FILE
    atomic_write(schema_path, json.dumps(row_schema(model), indent=2, ensure_ascii=False) + "\n")
    meta = root / METADATA_FILE
    if not meta.is_file():
        return SchemaWritten(schema_path, 0, [])
    text = meta.read_bytes().decode("utf-8-sig")
    lines = text.split("\n")
    out, referenced, left = [], 0, []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            out.append(line)
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            row = None
        if not isinstance(row, dict):
            out.append(line)
            left.append(lineno)
            continue
        referenced += 1
        if row.get(SCHEMA_KEY) == SCHEMA_FILE:
            out.append(line)
        elif SCHEMA_KEY in row:
            row[SCHEMA_KEY] = SCHEMA_FILE
            out.append(json.dumps(row, ensure_ascii=False))
        else:
            start = line.index("{") + 1
            ref = f'"{SCHEMA_KEY}": "{SCHEMA_FILE}"' + ("" if not row else ", ")
            out.append(line[:start] + ref + line[start:])
    new = "\n".join(out)
    if new != text:
        atomic_write(meta, new)
    return SchemaWritten(schema_path, referenced, left)
