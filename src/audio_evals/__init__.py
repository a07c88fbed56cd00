"""audio-evals: an evaluation and testing harness for structured extraction from audio.

The library runs a suite without pytest (`run_suite`, `build_report`, `evaluate_gates`,
`write_report`); the pytest plugin (`pytest evals`) is a thin layer over the same calls.
Names are imported on first use, so `import audio_evals` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Case": "datasets",
    "Dataset": "datasets",
    "DatasetError": "datasets",
    "load_dataset": "datasets",
    "Suite": "suites",
    "SuiteError": "suites",
    "Variant": "suites",
    "load_suite": "suites",
    "CaseInput": "extractors",
    "VariantConfig": "extractors",
    "Pipeline": "extractors",
    "Mode": "extractors",
    "RecordMode": "cassettes",
    "Project": "project",
    "Run": "engine",
    "BatchInfo": "engine",
    "BatchStatus": "engine",
    "EngineError": "engine",
    "UsageError": "engine",
    "BatchSkipped": "engine",
    "BatchFailed": "engine",
    "RunInterrupted": "engine",
    "RunRecord": "run_record",
    "run_suite": "engine",
    "arun_suite": "engine",
    "CaseResult": "results",
    "Call": "results",
    "ErrorKind": "results",
    "build_report": "finish",
    "gate_rules": "finish",
    "evaluate_gates": "finish",
    "write_report": "finish",
    "finish_run": "finish",
    "Outcome": "finish",
    "register_comparator": "scoring",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'audio_evals' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
