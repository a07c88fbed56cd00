"""audio-evals: an evaluation and testing harness for structured extraction from audio."""

__version__ = "0.1.0"

from .datasets import Case, Dataset, DatasetError, load_dataset  # noqa: E402
from .suites import Suite, SuiteError, Variant, load_suite  # noqa: E402

__all__ = [
    "Case",
    "Dataset",
    "DatasetError",
    "Suite",
    "SuiteError",
    "Variant",
    "__version__",
    "load_dataset",
    "load_suite",
]
