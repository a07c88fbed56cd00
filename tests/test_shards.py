"""Sharded runs: the demo in 3 shards plus `audio-evals merge` is the unsharded run; bad shard sets are refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from audio_evals import Project, load_suite, run_suite
from audio_evals.engine import in_shard
from audio_evals.results import EvalRef
from audio_evals.shards import ShardError, merge_shards, parse_shard, write_shard

from .conftest import REPO, run_pytest

REPORTS = ("results.csv", "cases.csv", "fields.csv", "variants.csv", "comparison.csv")


def demo_copy(root: Path) -> Path:
    """The demo project (suites, data, cassettes, baseline, the intake app) in a scratch folder."""
    for name in ("evals", "datasets", "cassettes", "demo_app"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "conftest.py"):
        shutil.copy(REPO / name, root / name)
    (root / "reports").mkdir()
    shutil.copy(REPO / "reports" / "baseline.json", root / "reports" / "baseline.json")
    return root


def merge(root: Path, *shards: Path, out: str = "merged") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "audio_evals.cli",
            "merge",
            *map(str, shards),
            "-o",
            str(root / out),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def gate_lines(text: str) -> list[str]:
    return sorted(line for line in text.splitlines() if line.startswith(("PASS ", "FAIL ", "N/E ")))


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demo replayed whole and in 3 shards (pytest evals --shard I/3)."""
    root = demo_copy(tmp_path_factory.mktemp("sharded"))
    whole = run_pytest(root, "evals", "-v", "--reports-dir", str(root / "whole"))
    assert whole.returncode == 0, whole.stdout
    (root / "whole.out").write_text(whole.stdout, encoding="utf-8")
    for i in (1, 2, 3):
        proc = run_pytest(root, "evals", f"--shard={i}/3", "--reports-dir", str(root / "parts"))
        assert proc.returncode == 0, proc.stdout
        assert f"audio-evals shard {i}/3:" in proc.stdout and "audio-evals gates" not in proc.stdout
    yield root


def test_three_shards_merged_are_the_unsharded_run(sharded: Path) -> None:
    shards = sorted((sharded / "parts" / "shards").iterdir())
    assert [s.name for s in shards] == ["1-of-3", "2-of-3", "3-of-3"]
    counts = [len((s / "results.jsonl").read_text().splitlines()) for s in shards]
    assert all(counts) and sum(counts) == 357  # every replayed unit, each in exactly one shard
    proc = merge(sharded, *shards)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in REPORTS:
        merged = (sharded / "merged" / name).read_bytes()
        assert merged == (sharded / "whole" / "latest" / name).read_bytes(), name
    whole = (sharded / "whole.out").read_text(encoding="utf-8")
    assert gate_lines(proc.stdout) == gate_lines(whole) and len(gate_lines(whole)) == 53
    assert (sharded / "merged" / "report.html").is_file()


def test_a_missing_a_duplicated_or_a_foreign_shard_is_refused(
    sharded: Path, tmp_path: Path
) -> None:
    one, two, three = sorted((sharded / "parts" / "shards").iterdir())
    missing = merge(sharded, one, three, out="m1")
    assert missing.returncode == 2 and "shard(s) 2/3 missing" in missing.stderr
    twice = merge(sharded, one, two, two, three, out="m2")
    assert twice.returncode == 2 and "shard 2/3 given twice" in twice.stderr
    foreign = tmp_path / "2-of-3"
    shutil.copytree(two, foreign)
    doc = json.loads((foreign / "shard.json").read_text())
    doc["commit"] = "0123456789ab"  # made on another commit
    (foreign / "shard.json").write_text(json.dumps(doc))
    other = merge(sharded, one, foreign, three, out="m3")
    assert other.returncode == 2 and "their commit differ" in other.stderr
    assert not any((sharded / m).exists() for m in ("m1", "m2", "m3"))  # nothing half-written


def test_shards_are_stable_and_hold_a_case_whole() -> None:
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/3", "4/3", "3", "a/b"):
        with pytest.raises(ShardError):
            parse_shard(bad)
    refs = [EvalRef("s", v, f"c{i}", r) for i in range(400) for v in ("a", "b") for r in (0, 1)]
    owners = {}
    for ref in refs:
        mine = [i for i in (1, 2, 3, 4) if in_shard(ref, (i, 4))]
        assert len(mine) == 1
        owners.setdefault(ref.case_id, set()).add(mine[0])
    assert all(len(s) == 1 for s in owners.values())  # variants and repeats of a case together
    sizes = [sum(1 for o in owners.values() if i in o) for i in (1, 2, 3, 4)]
    assert min(sizes) > 70  # 400 cases over 4 shards, none starved
    bigger = [EvalRef("s", "a", f"c{k}") for k in range(800)]  # twice the cases, same suite
    for ref in bigger[:400]:  # the first 400 keep their shards
        assert {i for i in (1, 2, 3, 4) if in_shard(ref, (i, 4))} == owners[ref.case_id]


def test_unused_interactions_are_counted_over_every_shard(tmp_path: Path) -> None:
    root = demo_copy(tmp_path / "project")
    meta = root / "datasets" / "person" / "metadata.jsonl"
    meta.write_text("".join(meta.read_text().splitlines(keepends=True)[1:]))  # drop person-0001
    suite = load_suite(root / "evals" / "person.eval.toml", root=root)
    project = Project.at(root)
    folders = []
    for i in (1, 2):
        run = run_suite(suite, project=project, shard=(i, 2), variants=["local-baseline"])
        folders.append(write_shard(run, tmp_path / f"{i}-of-2"))
    merged = merge_shards(folders, project)
    info = merged.batches[("person", "local-baseline")]
    assert info.selected == info.collected == 31
    assert info.unused_interactions == 1  # person-0001's interaction, played by no shard
    alone = run_suite(suite, project=project, variants=["local-baseline"])
    assert alone.batches[("person", "local-baseline")].unused_interactions == 1
    assert sorted(r.to_json() for r in merged.results) == sorted(r.to_json() for r in alone.results)
