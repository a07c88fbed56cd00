#!/usr/bin/env python3
"""Run the demo's suites without pytest: the library calls `pytest evals` makes, in a plain script.

    python scripts/run_without_pytest.py [--reports-dir reports] [--record-mode none]

Writes the same report (results.csv, ...) as `pytest evals` and exits 1 when a gate fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audio_evals import (  # noqa: E402
    Project,
    build_report,
    evaluate_gates,
    gate_rules,
    load_suite,
    run_suite,
    write_report,
)
from evals.intake import intake_client  # noqa: E402
from evals.test_person_api import CLEAN_STUDIO  # noqa: E402


def main() -> int:
    """Replay (or record) every demo suite, write the report, print the gate verdicts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports-dir", default=str(ROOT / "reports"))
    parser.add_argument("--record-mode", default="none")
    args = parser.parse_args()
    project = Project.at(ROOT, reports_dir=args.reports_dir)
    suites = [load_suite(path) for path in sorted((ROOT / "evals").glob("*.eval.toml"))]
    run = run_suite(
        [*suites, CLEAN_STUDIO],
        record_mode=args.record_mode,
        project=project,
        client_factory=intake_client,  # what conftest.py's pytest_audio_evals_client hook builds
    )
    report = build_report(run)
    gates = evaluate_gates(report, gate_rules(run))
    for path in write_report(report, project.reports_dir, gates=gates):
        print(f"report written: {path}")
    failed = [g for g in gates if g.failed]
    print(f"{len(run.results)} results, {len(failed)} of {len(gates)} gates failed")
    for gate in failed:
        print(f"FAIL {gate.name}: {gate.detail}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
