"""README's "From a folder of recordings and a CSV to a first report", run step by step.

The files and commands are read from README.md, so the walk a user follows is the one tested:
real spoken digits from ../shared, import, validate, record against the local server, replay
offline, and the report the README quotes.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import REPO, shared_path

SECTION = "## From a folder of recordings and a CSV to a first report"
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```$", re.M | re.S)


def walk() -> list[tuple[str, str, str]]:
    """The walk's fenced blocks: (language, file name or '', text), in README order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    section = text[start : text.index("\n## ", start + len(SECTION))]
    blocks = []
    for lang, info, body in FENCE.findall(section):
        target = re.search(r"file=(\S+)", info)
        blocks.append((lang, target.group(1) if target else "", body))
    return blocks


def run(cmd: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTEST_"))}
    env.pop("GITHUB_STEP_SUMMARY", None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return subprocess.run(
        shlex.split(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_the_readme_walk_from_recordings_and_a_csv_to_a_report(tmp_path: Path) -> None:
    digits = shared_path("real-speech", "free-spoken-digit-dataset")
    project = tmp_path / "project"
    shutil.copytree(digits / "recordings", project / "recordings")
    labels = json.loads((digits / "labels.json").read_text())
    rows = [[item["file"], str(item["digit"]), item["speaker"]] for item in labels]
    with (project / "labels.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(
            [["file_name", "digit", "tags.speaker"], *rows]
        )
    blocks = walk()
    commands, outputs = [], []
    for lang, target, body in blocks:
        if lang == "csv":  # an excerpt of the CSV this test writes
            written = (project / target).read_text().splitlines()
            assert set(body.splitlines()) <= set(written), body
        elif target:
            (project / target).parent.mkdir(parents=True, exist_ok=True)
            (project / target).write_text(body, encoding="utf-8")
        elif lang == "bash":
            commands += [line for line in body.splitlines() if line.strip()]
        elif lang == "":
            outputs.append(body)
    assert [c.split()[:2] for c in commands] == [
        ["audio-evals", "import"],
        ["audio-evals", "validate"],
        ["pytest", "evals"],
        ["pytest", "evals"],
    ]
    results = [run(cmd, project) for cmd in commands]
    for cmd, result in zip(commands, results, strict=True):
        assert result.returncode == 0, f"{cmd}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    imported, validated, recorded, replayed = results
    shown_import, shown_report = outputs
    assert imported.stdout + validated.stdout == shown_import
    assert "started the local server" in recorded.stdout
    assert (project / "cassettes" / "digits" / "local-baseline.yaml").is_file()
    assert "started the local server" not in replayed.stdout  # replay is offline
    assert "60 passed" in replayed.stdout
    # the report the README quotes is the replay's (latency aside: it is the recording machine's)
    without_latency = [re.sub(r", p95 \d+ ms", "", line) for line in shown_report.splitlines()]
    for line in without_latency:
        assert line in re.sub(r", p95 \d+ ms", "", replayed.stdout), line
    fields = (project / "reports" / "latest" / "fields.csv").read_text()
    assert "digits,local-baseline,digit,60," in fields.replace('"', "")
