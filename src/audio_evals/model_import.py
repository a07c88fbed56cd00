"""Import a response model (`module:Class`) from the command line exactly as `pytest evals` would.

pytest decides its rootdir from the invocation directory and the config files above it (with
its own `determine_setup`), puts the ini's `pythonpath` entries on `sys.path`, and the plugin
imports suite models with the rootdir first on `sys.path`. The CLI commands do the same, so a
model that imports in a test run imports in `audio-evals validate`, and one that does not fails
the same way, with a message instead of a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .suites import import_object


class ModelImportError(ValueError):
    """A `module:Class` that does not import or is not a pydantic model, with the reason."""


def pytest_roots(invocation_dir: Path) -> tuple[Path, list[Path]]:
    """pytest's rootdir for a run started in `invocation_dir`, and its ini `pythonpath` entries."""
    from _pytest.config.findpaths import determine_setup

    rootdir, inipath, inicfg, _ = determine_setup(
        inifile=None,
        override_ini=None,
        args=[],
        rootdir_cmd_arg=None,
        invocation_dir=invocation_dir,
    )
    entry: Any = inicfg.get("pythonpath")
    value = getattr(entry, "value", entry)
    if isinstance(value, str):
        value = value.split()
    base = inipath.parent if inipath is not None else rootdir
    return Path(rootdir), [base / str(p) for p in (value or [])]


def import_model(spec: str, invocation_dir: Path | None = None) -> type[BaseModel]:
    """The pydantic model `module:Class`, imported as a pytest run in `invocation_dir` would."""
    where = (invocation_dir or Path.cwd()).resolve()
    rootdir, pythonpath = pytest_roots(where)
    for path in reversed(pythonpath):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    try:
        obj = import_object(spec, rootdir)
    except ValueError as exc:
        raise ModelImportError(str(exc)) from None
    except ImportError as exc:
        raise ModelImportError(
            f"cannot import {spec!r}: {exc} (imported as pytest would from {rootdir}: "
            "the rootdir and the ini's pythonpath are on sys.path)"
        ) from None
    except AttributeError as exc:
        raise ModelImportError(f"cannot import {spec!r}: {exc}") from None
    except Exception as exc:  # the user's module raised while importing
        raise ModelImportError(f"importing {spec!r} raised {type(exc).__name__}: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
        raise ModelImportError(f"{spec!r} is {obj!r}, not a pydantic model class")
    return obj
