"""Suites: a dataset, a response model, a prompt and the variants to run, from TOML or Python."""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import re
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from .datasets import Dataset, load_dataset
from .extractors import BUILTINS, Mode, Pipeline, function_name
from .project import find_root
from .toml_lines import key_line

SUITE_SUFFIX = ".eval.toml"
LOCAL = "local"
# Call parameters a variant may set at its top level (anything else goes under `params`).
CALL_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "seed",
        "max_tokens",
        "max_completion_tokens",
        "audio",
        "modalities",
        "frequency_penalty",
        "presence_penalty",
        "reasoning_effort",
        "service_tier",
        "stop",
        "user",
    }
)
_VARIANT_KEYS = frozenset(
    {
        "name",
        "model",
        "base_url",
        "api_key_env",
        "prompt",
        "prompt_file",
        "pipeline",
        "transcription_model",
        "mode",
        "params",
        "max_retries",
        "validation_retries",
        "timeout",
        "prompt_name",
        "extract",
    }
)
_SUITE_KEYS = frozenset(
    {
        "name",
        "description",
        "dataset",
        "response_model",
        "prompt",
        "prompt_file",
        "variants",
        "matrix",
        "defaults",
        "repeats",
        "scoring",
        "gates",
        "pricing",
        "cluster_by",
        "baseline",
    }
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# What each common call parameter must hold (the API would refuse anything else, case by case).
_NUMBER = ((int, float), "a number")
_WHOLE = ((int,), "a whole number")
_TEXT = ((str,), "a string")
_CALL_PARAM_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "temperature": _NUMBER,
    "top_p": _NUMBER,
    "frequency_penalty": _NUMBER,
    "presence_penalty": _NUMBER,
    "seed": _WHOLE,
    "max_tokens": _WHOLE,
    "max_completion_tokens": _WHOLE,
    "reasoning_effort": _TEXT,
    "service_tier": _TEXT,
    "user": _TEXT,
    "audio": ((Mapping,), "a table"),
    "modalities": ((list,), "a list of strings"),
    "stop": ((str, list), "a string or a list of strings"),
}


class SuiteError(ValueError):
    """A suite file that cannot be used, naming the file, the line (when it can be found) and the key."""

    def __init__(
        self, path: Path | str, key: str | None, message: str, line: int | None = None
    ) -> None:
        self.path = Path(path)
        self.key = key
        self.line = line if line is not None or key is None else _line_of(self.path, key)
        where = f"{path}:{self.line}:" if self.line else f"{path}:"
        super().__init__(where + (f" key {key!r}:" if key else "") + f" {message}")


def _line_of(path: Path, key: str) -> int | None:
    """The line of `key` in the suite file (a variant's key may come from [defaults])."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    generated = re.match(r"^matrix\[[^\]]*\]\.(\w+)$", key)
    if generated and generated.group(1) in _MATRIX_SOURCES:  # a key the matrix made up
        key = f"matrix.{_MATRIX_SOURCES[generated.group(1)]}"
    fallbacks = ("defaults",) if key.startswith(("variants[", "matrix[")) else ()
    return key_line(text, key, fallbacks)


# The [matrix] key each generated variant key comes from.
_MATRIX_SOURCES = {
    "name": "models",
    "model": "models",
    "pipeline": "pipelines",
    "prompt_file": "prompts",
    "prompt_name": "prompts",
}


@dataclass(frozen=True)
class Variant:
    """One way of running a suite: model, endpoint, prompt, extractor and call parameters.

    The extractor is a built-in `pipeline`, or `extract`: the team's own function (a callable or
    a `module:function` string), called as `fn(case, variant)` (see `extractors.py`).
    """

    name: str
    model: str
    prompt: str = ""
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    pipeline: Pipeline = Pipeline.DIRECT
    transcription_model: str | None = None
    mode: Mode = Mode.TOOLS
    params: Mapping[str, Any] = field(default_factory=dict)
    max_retries: int = 3
    validation_retries: int = 1
    timeout: float = 120.0
    prompt_name: str | None = None
    extract: Callable[..., Any] | str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "pipeline", Pipeline(self.pipeline))
        object.__setattr__(self, "mode", Mode(self.mode))

    @property
    def is_local(self) -> bool:
        """Whether this variant talks to the harness's own local server."""
        return self.base_url == LOCAL

    @property
    def extractor(self) -> Callable[..., Any]:
        """The function that extracts a record for a case (the built-in pipeline's, or `extract`)."""
        if self.extract is None:
            return BUILTINS[self.pipeline]
        if isinstance(self.extract, str):
            return import_object(self.extract)
        return self.extract

    @property
    def extractor_name(self) -> str:
        """How reports name the extractor: the pipeline, or `module:function`."""
        if self.extract is None:
            return str(self.pipeline)
        return self.extract if isinstance(self.extract, str) else function_name(self.extract)

    @property
    def models(self) -> tuple[str, ...]:
        """Every model this variant names (transcription first when it has one)."""
        if (
            self.extract is None
            and self.pipeline is Pipeline.TRANSCRIBE_THEN_EXTRACT
            and self.transcription_model
        ):
            return (self.transcription_model, self.model)
        return (self.model,)


@dataclass(frozen=True)
class Suite:
    """A dataset bound to a response model, a prompt and variants."""

    name: str
    dataset: Dataset
    response_model: type[BaseModel]
    variants: tuple[Variant, ...]
    prompt: str = ""
    description: str = ""
    repeats: int = 1
    scoring: Mapping[str, Any] = field(default_factory=dict)
    gates: Mapping[str, Any] = field(default_factory=dict)
    pricing: Mapping[str, Any] = field(default_factory=dict)
    cluster_by: str | None = None
    baseline: str | None = None
    source: Path | None = None

    @property
    def baseline_variant(self) -> str:
        """The variant every other one is compared with (`baseline`, else the first)."""
        return self.baseline or self.variants[0].name

    def derive(self, name: str, **changes: Any) -> Suite:
        """A new suite (its own name, items and cassettes) from this one with some parts changed."""
        if not _NAME.match(name):
            raise ValueError(f"suite name {name!r} may hold only letters, digits, '.', '_' and '-'")
        if "variants" in changes:
            changes["variants"] = tuple(changes["variants"])
        return dataclasses.replace(self, name=name, source=None, **changes)

    def variant(self, name: str) -> Variant:
        """The variant with this name."""
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"suite {self.name!r} has no variant {name!r}")


def import_object(spec: str, root: Path | None = None) -> Any:
    """Import `module:attribute` (the repo root is put on sys.path first)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{spec!r} is not of the form 'module:Name'")
    if root is not None and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _read_prompt(table: Mapping[str, Any], base: Path, where: Path, key_prefix: str) -> str | None:
    if "prompt" in table and "prompt_file" in table:
        raise SuiteError(
            where, f"{key_prefix}prompt", "give either prompt or prompt_file, not both"
        )
    if "prompt" in table:
        if not isinstance(table["prompt"], str):
            raise SuiteError(where, f"{key_prefix}prompt", "must be a string")
        return table["prompt"]
    if "prompt_file" in table:
        if not isinstance(table["prompt_file"], str) or not table["prompt_file"]:
            raise SuiteError(
                where,
                f"{key_prefix}prompt_file",
                f"must be the path of a text file, got {table['prompt_file']!r}",
            )
        path = base / table["prompt_file"]
        if not path.is_file():
            raise SuiteError(where, f"{key_prefix}prompt_file", f"file not found: {path}")
        try:
            return path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise SuiteError(
                where, f"{key_prefix}prompt_file", f"cannot read {path} as UTF-8 text: {exc}"
            ) from None
    return None


def _typed(merged: Mapping[str, Any], where: Path, key: str) -> None:
    """Every known variant key holds a value of its type (a SuiteError names the first that does not)."""

    def fail(name: str, what: str) -> SuiteError:
        return SuiteError(where, f"{key}.{name}", f"must be {what}, got {merged[name]!r}")

    for name in ("base_url", "api_key_env", "transcription_model", "prompt_name", "extract"):
        if name in merged and (not isinstance(merged[name], str) or not merged[name]):
            raise fail(name, "a non-empty string")
    for name in ("max_retries", "validation_retries"):
        value = merged.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise fail(name, "a whole number >= 0")
    timeout = merged.get("timeout", 1.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise fail("timeout", "a number of seconds > 0")
    if "params" in merged and not isinstance(merged["params"], Mapping):
        raise fail("params", "a table")
    for name, (kinds, what) in _CALL_PARAM_TYPES.items():
        value = merged.get(name)
        if value is None:
            continue
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            raise fail(name, what)
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise fail(name, what)
    base_url = merged.get("base_url")
    if base_url is not None and base_url != LOCAL:
        try:
            parts = urlsplit(base_url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != -1
        except ValueError:
            ok = False
        if not ok:
            raise fail("base_url", f"{LOCAL!r} or an http(s) URL such as https://api.openai.com/v1")


def _enum(value: Any, enum: type[Pipeline] | type[Mode], where: Path, key: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        known = ", ".join(m.value for m in enum)
        raise SuiteError(where, key, f"{value!r} is not one of {known}") from None


def _extract(spec: str, root: Path, where: Path, key: str) -> str:
    """Check that `module:function` imports and is callable (the name is kept; reports show it)."""
    try:
        fn = import_object(spec, root)
    except Exception as exc:  # the user's module failed to import: say why, here
        raise SuiteError(
            where, key, f"cannot import {spec!r}: {type(exc).__name__}: {exc}"
        ) from None
    if not callable(fn):
        raise SuiteError(where, key, f"{spec!r} is not callable")
    return spec


def _variant(
    table: Mapping[str, Any],
    defaults: Mapping[str, Any],
    suite_prompt: str,
    root: Path,
    where: Path,
    key: str,
) -> Variant:
    merged = {**defaults, **table}
    unknown = sorted(set(merged) - _VARIANT_KEYS - CALL_PARAMS)
    if unknown:
        raise SuiteError(
            where,
            f"{key}.{unknown[0]}",
            "unknown key (call parameters other than the common ones go under `params`)",
        )
    for required in ("name", "model"):
        if not isinstance(merged.get(required), str) or not merged[required]:
            raise SuiteError(where, f"{key}.{required}", "required, a non-empty string")
    name = merged["name"]
    if not _NAME.match(name):
        raise SuiteError(
            where, f"{key}.name", f"{name!r} may hold only letters, digits, '.', '_' and '-'"
        )
    _typed(merged, where, key)
    pipeline = _enum(merged.get("pipeline", "direct"), Pipeline, where, f"{key}.pipeline")
    mode = _enum(merged.get("mode", "tools"), Mode, where, f"{key}.mode")
    extract = merged.get("extract")
    if extract is not None:
        if "pipeline" in merged:
            raise SuiteError(where, f"{key}.extract", "give either extract or pipeline, not both")
        extract = _extract(extract, root, where, f"{key}.extract")
    elif pipeline is Pipeline.TRANSCRIBE_THEN_EXTRACT and not merged.get("transcription_model"):
        raise SuiteError(
            where, f"{key}.transcription_model", "required for pipeline transcribe_then_extract"
        )
    prompt = _read_prompt(table, root, where, f"{key}.") or _read_prompt(
        defaults, root, where, "defaults."
    )
    params = dict(merged.get("params", {}))
    params.update({k: v for k, v in merged.items() if k in CALL_PARAMS})
    return Variant(
        name=name,
        model=merged["model"],
        prompt=prompt if prompt is not None else suite_prompt,
        base_url=merged.get("base_url"),
        api_key_env=merged.get("api_key_env", "OPENAI_API_KEY"),
        pipeline=pipeline,
        transcription_model=merged.get("transcription_model"),
        mode=mode,
        params=params,
        max_retries=merged.get("max_retries", 3),
        validation_retries=merged.get("validation_retries", 1),
        timeout=float(merged.get("timeout", 120.0)),
        prompt_name=merged.get("prompt_name"),
        extract=extract,
    )


def _matrix(
    matrix: Mapping[str, Any],
    defaults: Mapping[str, Any],
    suite_prompt: str,
    root: Path,
    where: Path,
) -> list[Variant]:
    models = matrix.get("models")
    if (
        not isinstance(models, list)
        or not models
        or not all(isinstance(m, str) and m for m in models)
    ):
        raise SuiteError(where, "matrix.models", "required, a non-empty list of model names")
    prompts: Mapping[str, str] = matrix.get("prompts", {})
    if not isinstance(prompts, Mapping) or not all(isinstance(v, str) for v in prompts.values()):
        raise SuiteError(where, "matrix.prompts", "must be a table of name = prompt file")
    pipelines: Sequence[str] = matrix.get("pipelines", ["direct"])
    if not isinstance(pipelines, list) or not pipelines:
        raise SuiteError(where, "matrix.pipelines", "must be a non-empty list of pipelines")
    extra = {k: v for k, v in matrix.items() if k not in {"models", "prompts", "pipelines", "name"}}
    prompt_items = list(prompts.items()) or [(None, None)]
    out: list[Variant] = []
    for model, (prompt_name, prompt_file), pipeline in itertools.product(
        models, prompt_items, pipelines
    ):
        name = str(model)
        if prompt_name:
            name += f"-{prompt_name}"
        if len(pipelines) > 1:
            name += f"-{pipeline}"
        table: dict[str, Any] = {**extra, "name": name, "model": model}
        if "extract" not in extra or "pipelines" in matrix:
            table["pipeline"] = pipeline
        if prompt_file is not None:
            table["prompt_file"] = prompt_file
            table["prompt_name"] = prompt_name
        out.append(_variant(table, defaults, suite_prompt, root, where, f"matrix[{name}]"))
    return out


def suite_from_mapping(
    data: Mapping[str, Any], *, root: Path, source: Path, default_name: str
) -> Suite:
    """Build a Suite from the tables of a `.eval.toml` file."""
    unknown = sorted(set(data) - _SUITE_KEYS)
    if unknown:
        raise SuiteError(
            source, unknown[0], f"unknown key (known: {', '.join(sorted(_SUITE_KEYS))})"
        )
    for required in ("dataset", "response_model"):
        if not isinstance(data.get(required), str):
            raise SuiteError(source, required, "required, a string")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not _NAME.match(name):
        raise SuiteError(
            source, "name", f"{name!r} may hold only letters, digits, '.', '_' and '-'"
        )
    try:
        model = import_object(data["response_model"], root)
    except Exception as exc:  # the user's module failed to import: say why, here
        raise SuiteError(
            source,
            "response_model",
            f"cannot import {data['response_model']!r}: {type(exc).__name__}: {exc}",
        ) from None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise SuiteError(
            source, "response_model", f"{data['response_model']!r} is not a pydantic model class"
        )
    prompt = _read_prompt(data, root, source, "") or ""
    for key in ("defaults", "matrix", "scoring", "gates", "pricing"):
        if key in data and not isinstance(data[key], Mapping):
            raise SuiteError(source, key, f"must be a table, got {data[key]!r}")
    defaults = data.get("defaults", {})
    tables = data.get("variants", [])
    if not isinstance(tables, list):
        raise SuiteError(source, "variants", f"must be [[variants]] tables, got {tables!r}")
    variants: list[Variant] = []
    for i, table in enumerate(tables):
        if not isinstance(table, Mapping):
            raise SuiteError(source, f"variants[{i}]", f"must be a table, got {table!r}")
        variants.append(_variant(table, defaults, prompt, root, source, f"variants[{i}]"))
    if "matrix" in data:
        variants.extend(_matrix(data["matrix"], defaults, prompt, root, source))
    if not variants:
        raise SuiteError(
            source, "variants", "a suite needs at least one [[variants]] table or a [matrix]"
        )
    names = [v.name for v in variants]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SuiteError(source, "variants", f"duplicate variant name {dupes[0]!r}")
    repeats = data.get("repeats", 1)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise SuiteError(source, "repeats", "must be a positive integer")
    for key, kind in (("description", str), ("cluster_by", str), ("baseline", str)):
        if key in data and not isinstance(data[key], kind):
            raise SuiteError(source, key, f"must be a string, got {data[key]!r}")
    if data.get("scoring"):
        _check_scoring(data["scoring"], model, source)
    if data.get("gates"):
        from .gates import GateConfigError, parse_rules

        try:
            parse_rules(data["gates"], "[gates]", suite=name)
        except GateConfigError as exc:
            named = re.search(r"unknown gate key '([^']+)'", str(exc)) or re.search(
                r"\[gates\]: (\w+)", str(exc)
            )
            key = f"gates.{named.group(1)}" if named else "gates"
            raise SuiteError(source, key, str(exc)) from None
    if data.get("pricing"):
        from .pricing import load_price_table

        try:
            load_price_table(data["pricing"])
        except ValueError as exc:
            raise SuiteError(source, "pricing", str(exc)) from None
    if "baseline" in data and data["baseline"] not in names:
        raise SuiteError(
            source, "baseline", f"no variant named {data['baseline']!r} (known: {', '.join(names)})"
        )
    dataset = load_dataset(root / data["dataset"], model, name=Path(data["dataset"]).name)
    cluster_by = data.get("cluster_by")
    if cluster_by is not None:
        missing = [c.id for c in dataset if cluster_by not in c.tags]
        if missing:
            raise SuiteError(
                source,
                "cluster_by",
                f"{cluster_by!r} is not a tag of {len(missing)} of the {len(dataset)} rows of "
                f"{data['dataset']} (first: {missing[0]}); intervals would silently not cluster",
            )
    return Suite(
        name=name,
        dataset=dataset,
        response_model=model,
        variants=tuple(variants),
        prompt=prompt,
        description=str(data.get("description", "")),
        repeats=repeats,
        scoring=dict(data.get("scoring", {})),
        gates=dict(data.get("gates", {})),
        pricing=dict(data.get("pricing", {})),
        cluster_by=cluster_by,
        baseline=data.get("baseline"),
        source=source,
    )


def _check_scoring(scoring: Mapping[str, Any], model: type[BaseModel], source: Path) -> None:
    """The [scoring] table holds rules the scorer accepts for fields the model has."""
    from .scoring import field_paths

    try:
        field_paths(model, scoring)
    except (ValueError, TypeError) as exc:
        named = re.match(r"scoring config key '([^']+)'", str(exc))
        key = f"scoring.fields.{named.group(1)}" if named else "scoring"
        raise SuiteError(source, key, str(exc)) from None


def load_suite(path: str | Path, root: Path | None = None) -> Suite:
    """Load a `.eval.toml` suite file (paths in it are relative to the repo root)."""
    source = Path(path).resolve()
    root = root or find_root(source.parent)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(source, None, f"cannot be read as UTF-8 text: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = int(at.group(1)) if at else None
        raise SuiteError(source, None, f"invalid TOML: {exc}", line=line) from None
    default_name = (
        source.name[: -len(SUITE_SUFFIX)] if source.name.endswith(SUITE_SUFFIX) else source.stem
    )
    return suite_from_mapping(data, root=root, source=source, default_name=default_name)
