"""Scratch projects for the reliability suite: real demo clips, real suites, the real local server.

Each module builds its scratch project(s) once; tests copy them before changing anything.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ..conftest import REPO

DEMO = REPO / "datasets" / "person"
# Two clean demo clips (flite): what the local reference model hears of them is beside the point.
CLIPS = {
    "jason": ("audio/person-0001.wav", {"name": "Jason", "age": 20}),
    "maria": ("audio/person-0004.wav", {"name": "Maria", "age": 34}),
}
MODELS = '''
from pydantic import BaseModel, Field


class Person(BaseModel):
    """A person who introduces themselves."""

    name: str = Field(description="The speaker's first name")
    age: int | None = Field(default=None, description="The speaker's age in years, if said")
'''
PYPROJECT = "[project]\nname = 'scratch'\nversion = '0'\n"


def variant(name: str, base_url: str = "local", **keys: Any) -> str:
    """A `[[variants]]` table (model local-baseline) with extra keys."""
    lines = ["[[variants]]", f'name = "{name}"', 'model = "local-baseline"']
    lines.append(f'base_url = "{base_url}"')
    lines += [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def suite_text(
    dataset: str, *variants: str, extra: str = "", model: str = "evals.models:Person"
) -> str:
    """A suite file: the dataset, the Person model, a prompt, the variants, and extra TOML."""
    head = (
        f'dataset = "datasets/{dataset}"\n'
        f'response_model = "{model}"\n'
        'prompt = "Extract the following information from the audio"\n'
    )
    return head + extra + "\n" + "\n".join(variants)


def write_dataset(
    root: Path,
    name: str,
    rows: Iterable[tuple[str, str]],
    expected: Mapping[str, Any] | None = None,
) -> Path:
    """A dataset of (case id, clip name) rows labelled as the clip (or with `expected`); each clip
    is copied once from the demo dataset."""
    folder = root / "datasets" / name
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    lines = []
    for case_id, clip in rows:
        file_name, label = CLIPS[clip]
        label = dict(expected) if expected is not None else label
        target = folder / file_name
        if not target.exists():
            shutil.copy(DEMO / file_name, target)
        lines.append(json.dumps({"file_name": file_name, "id": case_id, "expected": label}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def write_project(
    root: Path,
    suites: Mapping[str, str],
    *,
    pyproject: str = "",
    files: Mapping[str, str] | None = None,
) -> Path:
    """A project: pyproject (plus extra TOML), evals/models.py, the suite files, extra files."""
    (root / "evals").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT + pyproject, encoding="utf-8")
    (root / "evals" / "__init__.py").write_text("", encoding="utf-8")
    (root / "evals" / "models.py").write_text(MODELS, encoding="utf-8")
    for name, text in suites.items():
        (root / "evals" / f"{name}.eval.toml").write_text(text, encoding="utf-8")
    for rel, text in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def copy_project(source: Path, dest: Path) -> Path:
    """A fresh copy of a recorded project, without its reports."""
    shutil.copytree(source, dest)
    shutil.rmtree(dest / "reports", ignore_errors=True)
    return dest


def interactions(path: Path) -> list[dict[str, Any]]:
    """The interactions of a cassette file."""
    return list((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("interactions") or [])


def case_of(interaction: Mapping[str, Any]) -> str:
    """The case key (`<case id>/<repeat>`) an interaction was recorded for."""
    value = interaction["request"]["headers"]["x-audio-evals-case"]
    return value[0] if isinstance(value, list) else value


def latency_of(interaction: Mapping[str, Any]) -> float:
    """The latency stored with an interaction, in ms."""
    return float(interaction["response"]["headers"]["x-audio-evals-latency-ms"][0])
