"""Bad input that escapes the error types: every suite and matrix key with a wrong value.

Each one must be a `SuiteError` naming the file, the TOML line and the key (never a raw
traceback from inside a library), and under `pytest evals` one failed item per broken suite
while the other suites run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audio_evals.suites import SuiteError, load_suite

from ..conftest import both, run_pytest
from .conftest import MODELS, suite_text, variant, write_dataset, write_project

# The models live in a module of their own name: these suites are also loaded in this process.
HEAD = suite_text("people", model="bad_input_models:Person")
V = variant("v")
# name -> (suite text, the key named, a text on the line named, what the message says)
CASES: dict[str, tuple[str, str, str, str]] = {
    "max_retries": (
        HEAD + V + 'max_retries = "three"\n',
        "variants[0].max_retries",
        'max_retries = "three"',
        "must be a whole number >= 0, got 'three'",
    ),
    "timeout": (
        HEAD + V + 'timeout = "fast"\n',
        "variants[0].timeout",
        "timeout =",
        "must be a number of seconds > 0",
    ),
    "temperature": (
        HEAD + V + 'temperature = "hot"\n',
        "variants[0].temperature",
        "temperature =",
        "must be a number, got 'hot'",
    ),
    "seed-a-date": (
        HEAD + V + "seed = 2024-01-01\n",
        "variants[0].seed",
        "seed =",
        "must be a whole number",
    ),
    "base_url": (
        HEAD + variant("v", base_url="http://[::1"),
        "variants[0].base_url",
        "base_url =",
        "must be 'local' or an http(s) URL",
    ),
    "second-variant": (
        HEAD + V + variant("w", max_retries=-1),
        "variants[1].max_retries",
        "max_retries = -1",
        "must be a whole number >= 0, got -1",
    ),
    "variants-a-string": (
        HEAD + 'variants = "v"\n',
        "variants",
        'variants = "v"',
        "must be [[variants]] tables",
    ),
    "variants-of-strings": (
        HEAD + 'variants = ["v"]\n',
        "variants[0]",
        'variants = ["v"]',
        "must be a table, got 'v'",
    ),
    "defaults-a-number": (
        HEAD + "defaults = 3\n" + V,
        "defaults",
        "defaults = 3",
        "must be a table",
    ),
    "defaults-timeout": (
        HEAD + '[defaults]\ntimeout = "slow"\n\n' + V,
        "variants[0].timeout",
        'timeout = "slow"',
        "must be a number of seconds > 0",
    ),
    "matrix-a-number": (HEAD + "matrix = 3\n", "matrix", "matrix = 3", "must be a table"),
    "matrix-models": (
        HEAD + "[matrix]\nmodels = 3\n",
        "matrix.models",
        "models = 3",
        "a non-empty list of model names",
    ),
    "matrix-pipelines": (
        HEAD + '[matrix]\nmodels = ["m"]\npipelines = ["direct", "sideways"]\n',
        "matrix[m-sideways].pipeline",
        "pipelines =",
        "'sideways' is not one of direct",
    ),
    "matrix-max_retries": (
        HEAD + '[matrix]\nmodels = ["m"]\nbase_url = "local"\nmax_retries = "three"\n',
        "matrix[m].max_retries",
        "max_retries =",
        "must be a whole number >= 0",
    ),
    "matrix-prompts": (
        HEAD + '[matrix]\nmodels = ["m"]\nprompts = ["p.txt"]\n',
        "matrix.prompts",
        "prompts =",
        "must be a table of name = prompt file",
    ),
    "prompt_file-a-number": (
        HEAD.replace('prompt = "Extract', 'prompt_file = 3\n# "') + V,
        "prompt_file",
        "prompt_file = 3",
        "must be the path of a text file, got 3",
    ),
    "prompt_file-not-utf8": (
        HEAD.replace('prompt = "Extract', 'prompt_file = "evals/latin1.txt"\n# "') + V,
        "prompt_file",
        "prompt_file =",
        "cannot read",
    ),
    "repeats": ('repeats = "2"\n' + HEAD + V, "repeats", "repeats =", "must be a positive integer"),
    "scoring-field": (
        HEAD + V + '[scoring.fields]\nnmae = { comparator = "fuzzy" }\n',
        "scoring.fields.nmae",
        "nmae =",
        "matches no field of Person",
    ),
    "scoring-comparator": (
        HEAD + V + '[scoring.fields]\nname = { comparator = "closeish" }\n',
        "scoring.fields.name",
        "name = {",
        "unknown comparator 'closeish'",
    ),
    "gates-key": (
        HEAD + V + "[gates]\nmin_acuracy = { name = 0.5 }\n",
        "gates.min_acuracy",
        "min_acuracy =",
        "unknown gate key 'min_acuracy'",
    ),
    "gates-value": (
        HEAD + V + '[gates]\nmin_accuracy = { name = "high" }\n',
        "gates.min_accuracy",
        "min_accuracy =",
        "must be a number, got 'high'",
    ),
    "pricing": (
        HEAD + V + '[pricing]\nlocal-baseline = { text_input = "cheap" }\n',
        "pricing",
        "[pricing]",
        "must be a number",
    ),
    "cluster_by": (
        'cluster_by = "speakr"\n' + HEAD + V,
        "cluster_by",
        "cluster_by =",
        "'speakr' is not a tag of 2 of the 2 rows",
    ),
    "baseline": (
        'baseline = "baseline"\n' + HEAD + V,
        "baseline",
        "baseline =",
        "no variant named 'baseline' (known: ",
    ),
    "response_model-raises": (
        HEAD.replace("bad_input_models:", "bad_input_raising:") + V,
        "response_model",
        "response_model =",
        "cannot import 'bad_input_raising:Person': RuntimeError: the module is broken",
    ),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with the two-clip `people` dataset, a module that fails to import, a Latin-1 file."""
    root = write_project(
        tmp_path_factory.mktemp("bad-input"),
        {},
        files={
            "bad_input_raising.py": "raise RuntimeError('the module is broken')\n",
            "bad_input_models.py": MODELS,
        },
    )
    (root / "evals" / "latin1.txt").write_bytes("Extrayez l'\xe2ge".encode("latin-1"))
    write_dataset(root, "people", [("c1", "jason"), ("c2", "maria")])
    return root


def line_of(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if marker in line)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_wrong_suite_value_is_a_suite_error_naming_file_line_and_key(
    root: Path, name: str
) -> None:
    text, key, marker, message = CASES[name]
    path = root / "evals" / f"{name}.eval.toml"
    path.write_text(text, encoding="utf-8")
    try:
        with pytest.raises(SuiteError) as caught:
            load_suite(path, root=root)
    finally:
        path.unlink()
    error = caught.value
    assert (error.path, error.key, error.line) == (path, key, line_of(text, marker))
    assert str(error).startswith(f"{path}:{error.line}: key {key!r}: "), str(error)
    assert message in str(error)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('dataset = "datasets/people"\nresponse_model = = 1\n', ":2: invalid TOML"),
        (b"dataset = '\xff'\n", ": cannot be read as UTF-8 text"),
    ],
    ids=["invalid-toml", "not-utf8"],
)
def test_an_unreadable_suite_file_is_a_suite_error_naming_the_file(
    root: Path, content: str | bytes, message: str
) -> None:
    path = root / "evals" / "unreadable.eval.toml"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    try:
        with pytest.raises(SuiteError, match=re.escape(f"{path}{message}")):
            load_suite(path, root=root)
    finally:
        path.unlink()


def test_under_pytest_every_broken_suite_fails_alone_with_its_message(
    root: Path, tmp_path: Path
) -> None:
    """All of them in one `pytest evals`: one failed item each, no traceback, the good suite runs."""
    import shutil

    project = tmp_path / "project"
    shutil.copytree(root, project)
    for name, (text, *_rest) in CASES.items():
        (project / "evals" / f"{name}.eval.toml").write_text(text, encoding="utf-8")
    (project / "evals" / "fine.eval.toml").write_text(
        HEAD + variant("v", base_url="http://127.0.0.1:9/v1", max_retries=0), encoding="utf-8"
    )
    proc = run_pytest(project, "evals", "--record-mode=all")
    out = both(proc)
    assert proc.returncode == 1, out
    assert "Traceback" not in out and "error during collection" not in out
    for name, (text, key, marker, message) in CASES.items():
        path = project / "evals" / f"{name}.eval.toml"
        said = f"audio-evals: {path}:{line_of(text, marker)}: key {key!r}: "
        assert any(line.startswith(said) and message in line for line in out.splitlines()), name
    assert f"{len(CASES) + 2} failed" in out  # each broken suite, and the good suite's 2 cases
    assert "[connection]" in out  # ...which ran (nothing listens on port 9)
