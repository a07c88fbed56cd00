#!/usr/bin/env python3
"""Build the data of `audio-evals init`'s project template (src/audio_evals/project_template/).

The template's text files are written by hand; this fills in what is made: three clean clips of
the demo's person dataset as `datasets/example/`, the JSON schema of a row in both dataset
folders, the example suite's cassettes recorded against the local server, and the regression
baseline. Run it after changing the template's suite, model or extractor:

    python scripts/build_project_template.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "src" / "audio_evals" / "project_template"
CLIPS = {"person-0001": "jason", "person-0010": "michael", "person-0025": "karen"}


def main() -> int:
    """Fill the template's dataset, schemas, cassettes and baseline."""
    from audio_evals.init import init_project
    from audio_evals.schema import write_schema

    example = TEMPLATE / "datasets" / "example"
    shutil.rmtree(example / "audio", ignore_errors=True)
    (example / "audio").mkdir(parents=True)
    rows = {}
    for line in (ROOT / "datasets" / "person" / "metadata.jsonl").read_text().splitlines():
        row = json.loads(line)
        rows[row["id"]] = row
    lines = []
    for source_id, new_id in CLIPS.items():
        row = rows[source_id]
        shutil.copy(
            ROOT / "datasets" / "person" / row["file_name"], example / "audio" / f"{new_id}.wav"
        )
        lines.append(
            json.dumps(
                {
                    "file_name": f"audio/{new_id}.wav",
                    "id": new_id,
                    "expected": row["expected"],
                    "tags": {"speaker": row["tags"]["speaker"]},
                    "transcript": row["transcript"],
                }
            )
        )
    (example / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    sys.path.insert(0, str(TEMPLATE))
    from evals.models import Intro  # the template's own model

    write_schema(example, Intro)
    write_schema(TEMPLATE / "datasets" / "mine", Intro)
    sys.path.remove(str(TEMPLATE))
    for made in ("cassettes", "reports"):
        shutil.rmtree(TEMPLATE / made, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        init_project(project)
        record = ["--variant", "local-baseline", "--variant", "my-extractor"]
        for args in (["--record-mode=once", *record], ["--update-baseline"]):
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "evals", *args],
                cwd=project,
                capture_output=True,
                text=True,
            )
            print(proc.stdout[-2000:])
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
        shutil.copytree(project / "cassettes", TEMPLATE / "cassettes")
        (TEMPLATE / "reports").mkdir()
        shutil.copy(project / "reports" / "baseline.json", TEMPLATE / "reports" / "baseline.json")
    print(f"template filled: {TEMPLATE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
