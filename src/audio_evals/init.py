"""`audio-evals init`: a working eval project, green at once, from the template shipped in the package."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .files import atomic_write

TEMPLATE = "project_template"
DOT = "dot-"  # package data keeps no dot-files: `dot-gitignore` becomes `.gitignore`

NEXT_STEPS = (
    "Bring your recordings and labels: audio-evals import labels.csv -o datasets/mine "
    "--model evals.models:Intro (describe your record in evals/models.py first), then "
    "audio-evals validate datasets/mine --model evals.models:Intro",
    'Copy evals/example.eval.toml to evals/mine.eval.toml with dataset = "datasets/mine", put '
    "your application's call in evals/extract.py, and record once: pytest evals --record-mode=once",
    "Replay with pytest, then pytest evals --update-baseline; commit datasets/, evals/, cassettes/ "
    "and reports/baseline.json: .github/workflows/evals.yml gates every pull request",
)


class InitError(ValueError):
    """A folder init will not write into (it would overwrite files)."""


@dataclass(frozen=True)
class InitResult:
    """What init wrote."""

    root: Path
    files: tuple[Path, ...]


def _files(
    node: resources.abc.Traversable, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], bytes]]:
    out = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__":
            continue
        name = "." + child.name[len(DOT) :] if child.name.startswith(DOT) else child.name
        if child.is_dir():
            out += _files(child, (*prefix, name))
        else:
            out.append(((*prefix, name), child.read_bytes()))
    return out


def init_project(target: Path | str) -> InitResult:
    """Write the project template into `target` (created if needed); InitError if any file exists."""
    root = Path(target)
    files = _files(resources.files("audio_evals").joinpath(TEMPLATE))
    clashes = [root.joinpath(*parts) for parts, _ in files if root.joinpath(*parts).exists()]
    if clashes:
        shown = ", ".join(str(p) for p in clashes[:5]) + (" ..." if len(clashes) > 5 else "")
        raise InitError(f"{len(clashes)} file(s) already exist, nothing was written: {shown}")
    written = []
    for parts, data in files:
        path = root.joinpath(*parts)
        atomic_write(path, data)
        written.append(path)
    return InitResult(root, tuple(written))
