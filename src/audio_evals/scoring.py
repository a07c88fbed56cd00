"""Field-level scoring of predicted pydantic instances against labelled ones.

``score_fields(expected, predicted)`` walks the response model's schema and returns one
:class:`FieldScore` per leaf field (dotted paths, schema order), comparing each field with a
comparator chosen from its type annotation, overridable per field with ``Annotated`` metadata
or a suite :class:`ScoringConfig`. See ``docs/scoring.md`` for the rules.
"""

from __future__ import annotations

import collections.abc as cabc
import decimal
import json
import math
import numbers
import re
import types
import unicodedata
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum, StrEnum
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import numpy as np
from pydantic import BaseModel
from rapidfuzz.distance import Indel
from rapidfuzz.process import cdist

__all__ = [
    "Compare",
    "Exact",
    "FieldRule",
    "FieldScore",
    "Fuzzy",
    "Ignore",
    "ListCount",
    "Multiset",
    "Outcome",
    "ScoringConfig",
    "Temporal",
    "Text",
    "Tolerance",
    "field_paths",
    "normalize_text",
    "presence_counts",
    "register_comparator",
    "render_value",
    "score_fields",
    "summarize_fields",
    "text_similarity",
    "unregister_comparator",
]

CustomResult = bool | float | tuple[bool, float]
CustomComparator = Callable[[Any, Any], CustomResult]


class Outcome(StrEnum):
    """How a field's expected and predicted values relate (presence first, then value)."""

    MATCH = "match"
    MISMATCH = "mismatch"
    MISSED = "missed"
    SPURIOUS = "spurious"
    BOTH_EMPTY = "both_empty"
    ERROR = "error"  # the extraction failed: wrong, whatever the label holds


@dataclass(frozen=True, slots=True)
class FieldScore:
    """The score of one field (dotted path) of one case."""

    field: str
    correct: bool
    score: float
    kind: str
    expected: Any
    predicted: Any
    outcome: Outcome
    optional: bool

    def as_row(self) -> dict[str, Any]:
        """This score as a flat JSON/CSV-friendly dict (values rendered by ``render_value``)."""
        return {
            "field": self.field,
            "correct": self.correct,
            "score": self.score,
            "kind": self.kind,
            "expected": render_value(self.expected),
            "predicted": render_value(self.predicted),
            "outcome": str(self.outcome),
            "optional": self.optional,
        }


# --------------------------------------------------------------------------------------
# Value helpers
# --------------------------------------------------------------------------------------


def _is_empty(value: Any) -> bool:
    """None, blank strings and empty collections are 'empty' for presence."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | set | frozenset | dict):
        return len(value) == 0
    return False


def _plain(value: Any) -> Any:
    """Enums to values, models to dicts, tuples to lists, sets to frozensets (recursively)."""
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name, None)) for name in type(value).model_fields}
    if isinstance(value, Mapping):
        return {_freeze(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return frozenset(_freeze(_plain(v)) for v in value)
    return value


def _freeze(value: Any) -> Any:
    """A hashable image of a plain value (lists to tuples, dicts to frozensets of items)."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return frozenset((k, _freeze(v)) for k, v in value.items())
    return value


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _deep_equal(a: Any, b: Any) -> bool:
    """Equality of plain values where NaN equals NaN."""
    if _is_nan(a) or _is_nan(b):
        return _is_nan(a) and _is_nan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:  # e.g. array-likes with ambiguous truth values
        return False


def _canonical(value: Any) -> str:
    """An order-free, content-derived sort key (lists/sets sorted) used to break ties."""

    def walk(v: Any) -> str:
        if isinstance(v, dict):
            return "{" + ",".join(sorted(f"{walk(k)}:{walk(x)}" for k, x in v.items())) + "}"
        if isinstance(v, list | tuple | set | frozenset):
            return "[" + ",".join(sorted(walk(x) for x in v)) + "]"
        return f"{type(v).__name__}:{v!r}"

    return walk(_plain(value))


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Enum):
        return _jsonable(value.value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return {name: _jsonable(getattr(value, name, None)) for name in type(value).model_fields}
    if isinstance(value, Mapping):
        return {render_value(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True, default=str))
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def render_value(value: Any) -> str:
    """A stable string for a raw field value (ISO dates, enum values, JSON lists, '' for None)."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        return render_value(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int | Decimal):
        return str(value)
    return json.dumps(_jsonable(value), ensure_ascii=False, sort_keys=True)


# --------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------


def _strip_punctuation(token: str) -> str:
    start, end = 0, len(token)
    while start < end and unicodedata.category(token[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(token[end - 1]).startswith("P"):
        end -= 1
    return token[start:end]


def normalize_text(text: str) -> str:
    """Text as compared by the default rule: NFKC, casefolded, single-spaced, edge punctuation off."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    tokens = (_strip_punctuation(token) for token in folded.split())
    return " ".join(token for token in tokens if token)


def _assign(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row/column indices of a maximum-total one-to-one assignment."""
    if matrix.size == 0:
        empty = np.zeros(0, dtype=int)
        return empty, empty
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(matrix, maximize=True)


_MAX_WORD_PAIRS = 1_000_000


def _similarity_of_normalized(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    char = Indel.normalized_similarity(a, b)
    words_a, words_b = a.split(" "), b.split(" ")
    if len(words_a) * len(words_b) > _MAX_WORD_PAIRS:  # very long texts: exact-word bag F1
        matched = float(sum((Counter(words_a) & Counter(words_b)).values()))
    else:  # soft word F1: words aligned one to one, each pair credited its char similarity
        sims = cdist(words_a, words_b, scorer=Indel.normalized_similarity, dtype=np.float64)
        rows, cols = _assign(sims)
        matched = math.fsum(sims[rows, cols].tolist())
    word = 2.0 * matched / (len(words_a) + len(words_b))
    return min(1.0, max(0.0, (char + word) / 2.0))


def text_similarity(expected: str, predicted: str) -> float:
    """Partial-credit similarity in [0, 1] of two strings after ``normalize_text``."""
    return _similarity_of_normalized(normalize_text(expected), normalize_text(predicted))


def _as_text(value: Any) -> str:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        return value
    if isinstance(value, date | time):
        return value.isoformat()
    return "" if value is None else str(value)


# --------------------------------------------------------------------------------------
# Comparison rules (usable as Annotated metadata and as config values)
# --------------------------------------------------------------------------------------


class FieldRule:
    """Base class of the per-field comparison rules (Annotated metadata or config values)."""

    kind: ClassVar[str] = "rule"

    def compare(self, expected: Any, predicted: Any) -> tuple[bool, float]:
        """Compare two non-empty values: (correct, score in [0, 1])."""
        raise NotImplementedError

    def key(self, value: Any) -> Hashable:
        """A hashable key such that keys are equal iff values compare correct (TypeError if none)."""
        raise TypeError(f"{type(self).__name__} has no equality key")


def _check_unit_interval(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


@dataclass(frozen=True)
class Text(FieldRule):
    """Normalised text: correct when ``normalize_text`` forms are equal; partial-credit score."""

    kind: ClassVar[str] = "text"

    def compare(self, expected: Any, predicted: Any) -> tuple[bool, float]:
        """Compare two texts."""
        a, b = normalize_text(_as_text(expected)), normalize_text(_as_text(predicted))
        if a == b:
            return True, 1.0
        return False, _similarity_of_normalized(a, b)

    def key(self, value: Any) -> Hashable:
        """The normalised text."""
        return normalize_text(_as_text(value))


@dataclass(frozen=True)
class Fuzzy(FieldRule):
    """Normalised text, correct when ``text_similarity`` is at least ``threshold``."""

    threshold: float = 0.9
    kind: ClassVar[str] = "fuzzy"

    def __post_init__(self) -> None:
        _check_unit_interval("Fuzzy threshold", self.threshold)

    def compare(self, expected: Any, predicted: Any) -> tuple[bool, float]:
        """Compare two texts against the threshold."""
        score = text_similarity(_as_text(expected), _as_text(predicted))
        return score >= self.threshold, score


@dataclass(frozen=True)
class Exact(FieldRule):
    """Plain equality, no normalisation (enums compare by value); score 1 or 0."""

    kind: ClassVar[str] = "exact"

    def compare(self, expected: Any, predicted: Any) -> tuple[bool, float]:
        """Compare two values for equality."""
        ok = _deep_equal(_plain(expected), _plain(predicted))
        return ok, float(ok)

    def key(self, value: Any) -> Hashable:
        """The frozen plain value."""
        frozen = _freeze(_plain(value))
        hash(frozen)
        if _is_nan(frozen):
            raise TypeError("NaN has no equality key")
        return frozen


def _to_decimal(value: Any) -> Decimal | None:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool | int):
        return Decimal(int(value))
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, numbers.Real):
        return Decimal(repr(float(value)))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except decimal.InvalidOperation:
            return None
    return None


@dataclass(frozen=True)
class Tolerance(FieldRule):
    """Numbers equal within ``max(rel * max(|e|, |p|), abs)`` (like ``math.isclose``)."""

    abs: float = 0.0
    rel: float = 1e-6
    kind: ClassVar[str] = "number"

    def __post_init__(self) -> None:
        for name in ("abs", "rel"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
                raise ValueError(f"Tolerance {name} must be a number >= 0, got {value!r}")

    def compare(self, expected: Any, predicted: Any) -> tuple[bool, float]:
        """Compare two numbers within the tolerance."""
        a, b = _to_decimal(expected), _to_decimal(predicted)
        if a is None or b is None:
            return False, 0.0
        if a.is_nan() or b.is_nan():
            ok = a.is_nan() and b.is_nan()
        elif a.is_infinite() or b.is_infinite():
            ok = a == b
        else:
            with decimal.localcontext() as ctx:
                ctx.prec = 60
                tol = max(
                    Decimal(repr(float(self.rel))) * max(a.copy_abs(), b.copy_abs()),
                    Decimal(repr(float(self.abs))),
                )
                ok = (a - b).copy_abs() <= tol
        return ok, float(ok)


def _parse_temporal(value: Any, unit: str) -> date | time | datetime | None:
    try:
        if unit == "datetime":
            if isinstance(value, datetime):
                return value
            if isinstance(value, date):
                return datetime.combine(value, time())
            if isinstance(value, str):
                return datetime.fromisoformat(value.strip())
        elif unit == "date":
            if isinstance(value, datetime):
                return value.date()
            if isinstance(value, date):
                return value
            if isinstance(value, str):
                try:
                    return date.fromisoformat(value.strip())
                except ValueError:
                    return datetime.fromisoformat(value.strip()).date()
        else:
            if isinstance(value, datetime):
                return value.timetz()
            if isinstance(value, time):
                return value
            if isinstance(value, str):
                return time.fromisoformat(value.strip())
    except ValueError:
        return None
    return None


@dataclass(frozen=True)
class Temporal(FieldRule):
    """Dates, times or datetimes equal after parsing (objects or ISO strings); score 1 or 0."""

    unit: Literal["date", "time", "datetime"] = "date"

    def __post_init__(self) -> None:
        if self.unit not in ("date", "time", "datetime"):
            raise ValueError(f"Temporal unit must be date, time or datetime, got {self.unit!r}")

    @property
    def kind(self) -> str:  # type: ignore[override]
        """The unit: 'date', 'time' or 'datetime'."""
        return self.unit

    def compare(self, expected: Any, predicted: Any) -> tuple[bool, float]:
        """Compare two temporal values."""
        a, b = _parse_temporal(expected, self.unit), _parse_temporal(predicted, self.unit)
        ok = a is not None and b is not None and a == b
        return ok, float(ok)


def _element_key(rule: FieldRule, value: Any) -> Hashable:
    return ("empty",) if _is_empty(value) else ("value", rule.key(value))


def _element_correct(rule: FieldRule, a: Any, b: Any) -> bool:
    if _is_empty(a) or _is_empty(b):
        return _is_empty(a) and _is_empty(b)
    return rule.compare(a, b)[0]


@dataclass(frozen=True)
class Multiset(FieldRule):
    """Order-free collection: correct when equal as multisets; score is the element F1."""

    element: FieldRule | None = None
    kind: ClassVar[str] = "multiset"

    def compare(self, expected: Any, predicted: Any) -> tuple[bool, float]:
        """Compare two collections element by element (maximum one-to-one matching)."""
        rule = self.element or Exact()
        es, ps = list(expected), list(predicted)
        if not es and not ps:
            return True, 1.0
        try:
            common = Counter(_element_key(rule, e) for e in es) & Counter(
                _element_key(rule, p) for p in ps
            )
            tp = sum(common.values())
        except TypeError:
            matrix = np.array(
                [[float(_element_correct(rule, e, p)) for p in ps] for e in es], dtype=float
            ).reshape(len(es), len(ps))
            rows, cols = _assign(matrix)
            tp = int(round(matrix[rows, cols].sum()))
        f1 = 2.0 * tp / (len(es) + len(ps))
        return tp == len(es) == len(ps), f1


@dataclass(frozen=True)
class ListCount(FieldRule):
    """Only the number of items: correct when equal; score ``2*min/(n_e+n_p)``."""

    kind: ClassVar[str] = "list_count"

    def compare(self, expected: Any, predicted: Any) -> tuple[bool, float]:
        """Compare two collection lengths."""
        return _count_score(len(expected), len(predicted))


def _count_score(n_e: int, n_p: int) -> tuple[bool, float]:
    if n_e + n_p == 0:
        return True, 1.0
    return n_e == n_p, 2.0 * min(n_e, n_p) / (n_e + n_p)


@dataclass(frozen=True)
class Ignore(FieldRule):
    """Do not score the field (it produces no row)."""

    kind: ClassVar[str] = "ignore"


@dataclass(frozen=True)
class Compare(FieldRule):
    """A custom comparator ``fn(expected, predicted) -> bool | float | (bool, float)``."""

    fn: CustomComparator
    threshold: float = 1.0
    name: str | None = None

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ValueError(f"Compare needs a callable, got {self.fn!r}")
        _check_unit_interval("Compare threshold", self.threshold)

    @property
    def kind(self) -> str:  # type: ignore[override]
        """The registered name, or 'custom'."""
        return self.name or "custom"

    def compare(self, expected: Any, predicted: Any) -> tuple[bool, float]:
        """Call the comparator and normalise its result."""
        result = self.fn(expected, predicted)
        if isinstance(result, tuple):
            if len(result) != 2:
                raise ValueError(
                    f"comparator {self.kind!r} returned a {len(result)}-tuple; "
                    "expected (correct, score)"
                )
            correct, score = bool(result[0]), self._score(result[1])
        elif isinstance(result, bool | np.bool_):
            correct, score = bool(result), float(bool(result))
        else:
            score = self._score(result)
            correct = score >= self.threshold
        return correct, score

    def _score(self, value: Any) -> float:
        if isinstance(value, bool | np.bool_):
            return float(bool(value))
        if not isinstance(value, numbers.Real):
            raise TypeError(
                f"comparator {self.kind!r} returned {value!r}; expected bool, float "
                "or (bool, float)"
            )
        score = float(value)
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"comparator {self.kind!r} returned score {score!r}, not in [0, 1]")
        return score


# --------------------------------------------------------------------------------------
# Registry and config
# --------------------------------------------------------------------------------------

_BUILTIN_NAMES = (
    "text",
    "fuzzy",
    "exact",
    "number",
    "date",
    "time",
    "datetime",
    "multiset",
    "list_count",
    "ignore",
)
_RESERVED_NAMES = frozenset((*_BUILTIN_NAMES, "custom", "list[model]"))
_REGISTRY: dict[str, CustomComparator] = {}


def register_comparator(
    name: str, fn: CustomComparator, *, replace: bool = False
) -> CustomComparator:
    """Register a custom comparator under ``name`` so configs (TOML) can refer to it."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"comparator name must be a non-empty string, got {name!r}")
    if name in _RESERVED_NAMES:
        raise ValueError(f"comparator name {name!r} is a built-in comparator")
    if not callable(fn):
        raise ValueError(f"comparator {name!r} must be callable, got {fn!r}")
    if name in _REGISTRY and not replace and _REGISTRY[name] is not fn:
        raise ValueError(f"comparator {name!r} is already registered (pass replace=True)")
    _REGISTRY[name] = fn
    return fn


def unregister_comparator(name: str) -> None:
    """Remove a registered custom comparator (no error if absent)."""
    _REGISTRY.pop(name, None)


_PARAMS: dict[str, frozenset[str]] = {
    "text": frozenset({"threshold"}),
    "fuzzy": frozenset({"threshold"}),
    "number": frozenset({"abs", "rel"}),
    "multiset": frozenset({"element"}),
}


def _rule_from_name(key: str, name: Any, params: Mapping[str, Any]) -> FieldRule:
    if not isinstance(name, str):
        raise ValueError(f"scoring config key {key!r}: comparator must be a name, got {name!r}")
    if name in _BUILTIN_NAMES:
        allowed = _PARAMS.get(name, frozenset())
    elif name in _REGISTRY:
        allowed = frozenset({"threshold"})
    else:
        known = ", ".join([*_BUILTIN_NAMES, *sorted(_REGISTRY)])
        raise ValueError(
            f"scoring config key {key!r}: unknown comparator {name!r} (known: {known}; "
            "register custom ones with register_comparator)"
        )
    extra = sorted(set(params) - allowed)
    if extra:
        raise ValueError(
            f"scoring config key {key!r}: comparator {name!r} does not take {extra} "
            f"(allowed: {sorted(allowed) or 'none'})"
        )
    try:
        if name == "text":
            return Text() if "threshold" not in params else Fuzzy(params["threshold"])
        if name == "fuzzy":
            return Fuzzy(**params)
        if name == "exact":
            return Exact()
        if name == "number":
            return Tolerance(**params)
        if name in ("date", "time", "datetime"):
            return Temporal(name)
        if name == "multiset":
            element = params.get("element")
            return Multiset(None if element is None else _coerce_rule(f"{key} (element)", element))
        if name == "list_count":
            return ListCount()
        if name == "ignore":
            return Ignore()
        return Compare(_REGISTRY[name], threshold=params.get("threshold", 1.0), name=name)
    except ValueError as exc:
        if str(exc).startswith("scoring config key"):
            raise
        raise ValueError(f"scoring config key {key!r}: {exc}") from exc


def _coerce_rule(key: str, value: Any) -> FieldRule:
    if isinstance(value, FieldRule):
        return value
    if isinstance(value, str):
        return _rule_from_name(key, value, {})
    if isinstance(value, Mapping):
        if "comparator" not in value:
            raise ValueError(f"scoring config key {key!r}: a rule table needs a 'comparator' key")
        params = {k: v for k, v in value.items() if k != "comparator"}
        return _rule_from_name(key, value["comparator"], params)
    if callable(value):
        return Compare(value)
    raise ValueError(
        f"scoring config key {key!r}: expected a comparator name, a table, a FieldRule "
        f"or a callable, got {value!r}"
    )


def _is_namespace(value: Any) -> bool:
    """A nested table of field rules (TOML dotted keys), not a rule table."""
    return (
        isinstance(value, Mapping)
        and "comparator" not in value
        and bool(value)
        and all(isinstance(v, str | Mapping | FieldRule) or callable(v) for v in value.values())
    )


def _flatten_keys(fields: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in fields.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"scoring config keys must be non-empty strings, got {key!r}")
        path = f"{prefix}{key}"
        if _is_namespace(value):
            yield from _flatten_keys(value, f"{path}.")
        else:
            yield path, value


def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


@dataclass(frozen=True, init=False)
class ScoringConfig:
    """Per-field comparator overrides for a suite; config rules win over Annotated metadata."""

    fields: tuple[tuple[str, FieldRule], ...]

    def __init__(self, fields: Mapping[str, Any] | None = None) -> None:
        rules: dict[str, FieldRule] = {}
        for key, value in _flatten_keys(fields or {}):
            rules[key] = _coerce_rule(key, value)
        object.__setattr__(self, "fields", tuple(rules.items()))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ScoringConfig:
        """Build a config from a plain mapping such as a parsed TOML ``{"fields": {...}}``."""
        if not isinstance(data, Mapping):
            raise ValueError(f"scoring config must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - {"fields"})
        if unknown:
            raise ValueError(f"scoring config: unknown top-level key(s) {unknown}; use 'fields'")
        fields = data.get("fields") or {}
        if not isinstance(fields, Mapping):
            raise ValueError("scoring config: 'fields' must be a table of field rules")
        return cls(fields)

    def rule_for(self, path: str, *, globs: bool = True) -> tuple[str, FieldRule] | None:
        """The (key, rule) that applies to ``path``: exact key, else most specific glob."""
        try:
            index = _config_index(self)
        except TypeError:  # a rule holds an unhashable callable: index without caching
            index = _config_index.__wrapped__(self)
        return index.lookup(path, globs=globs)


@dataclass(frozen=True)
class _ConfigIndex:
    exact: dict[str, FieldRule]
    globs: tuple[tuple[re.Pattern[str], str, FieldRule], ...]

    def lookup(self, path: str, *, globs: bool) -> tuple[str, FieldRule] | None:
        if path in self.exact:
            return path, self.exact[path]
        if globs:
            for regex, key, rule in self.globs:
                if regex.fullmatch(path):
                    return key, rule
        return None


@lru_cache(maxsize=256)
def _config_index(config: ScoringConfig) -> _ConfigIndex:
    exact = {k: r for k, r in config.fields if "*" not in k}
    ranked = sorted(
        ((i, k, r) for i, (k, r) in enumerate(config.fields) if "*" in k),
        key=lambda t: (-len(t[1].replace("*", "")), -t[0]),
    )
    return _ConfigIndex(exact, tuple((_glob_regex(k), k, r) for _, k, r in ranked))


def _coerce_config(config: ScoringConfig | Mapping[str, Any] | None) -> ScoringConfig:
    if config is None:
        return _EMPTY_CONFIG
    if isinstance(config, ScoringConfig):
        return config
    return ScoringConfig.from_mapping(config)


_EMPTY_CONFIG = ScoringConfig()


# --------------------------------------------------------------------------------------
# Schema analysis
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TypeInfo:
    core: Any
    nullable: bool
    rules: tuple[FieldRule, ...]
    min_length: int | None


def _analyze(annotation: Any, metadata: Iterable[Any] = ()) -> _TypeInfo:
    rules: list[FieldRule] = []
    min_length: list[int] = []

    def absorb(items: Iterable[Any]) -> None:
        for item in items:
            if isinstance(item, FieldRule):
                rules.append(item)
            elif isinstance(getattr(item, "min_length", None), int):
                min_length.append(item.min_length)

    absorb(metadata)
    ann, nullable = annotation, False
    while True:
        if type(ann).__name__ == "TypeAliasType":  # `type X = ...` (typing or typing_extensions)
            ann = ann.__value__
            continue
        origin = get_origin(ann)
        if origin is Annotated:
            base, *meta = get_args(ann)
            absorb(meta)
            ann = base
            continue
        if origin is Union or origin is types.UnionType:
            args = get_args(ann)
            members = tuple(a for a in args if a is not type(None))
            nullable = nullable or len(members) < len(args)
            if len(members) == 1:
                ann = members[0]
                continue
            ann = Union[members]  # noqa: UP007 - rebuilding a runtime union
            break
        if hasattr(ann, "__supertype__"):  # typing.NewType
            ann = ann.__supertype__
            continue
        break
    return _TypeInfo(ann, nullable, tuple(rules), max(min_length) if min_length else None)


_SEQUENCE_ORIGINS = (
    list,
    set,
    frozenset,
    cabc.Sequence,
    cabc.MutableSequence,
    cabc.Set,
    cabc.MutableSet,
    cabc.Collection,
    cabc.Iterable,
)


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _collection_element(core: Any) -> tuple[bool, Any]:
    """Whether ``core`` is a homogeneous collection, and its element annotation."""
    origin = get_origin(core) or core
    args = get_args(core)
    if origin is tuple:
        if not args:
            return True, Any
        if len(args) == 2 and args[1] is Ellipsis:
            return True, args[0]
        return False, None
    if isinstance(origin, type) and origin in _SEQUENCE_ORIGINS:
        return True, args[0] if args else Any
    return False, None


_NUMERIC = (int, float, Decimal)


def _default_rule(core: Any) -> FieldRule:
    origin = get_origin(core)
    if origin is Union or origin is types.UnionType:
        members = get_args(core)
        if all(isinstance(m, type) and issubclass(m, _NUMERIC) for m in members) and not any(
            issubclass(m, bool | Enum) for m in members
        ):
            if any(issubclass(m, float | Decimal) for m in members):
                return Tolerance()
        return Exact()
    if not isinstance(core, type):
        return Exact()  # Literal, Any, TypeVar, parametrised generics...
    if issubclass(core, Enum | bool):
        return Exact()
    if issubclass(core, float | Decimal):
        return Tolerance()
    if issubclass(core, int):
        return Exact()
    if issubclass(core, str):
        return Text()
    if issubclass(core, datetime):
        return Temporal("datetime")
    if issubclass(core, date):
        return Temporal("date")
    if issubclass(core, time):
        return Temporal("time")
    return Exact()


_ELEMENT_RULES = (Text, Fuzzy, Tolerance, Temporal)
_COLLECTION_RULES = (Multiset, ListCount, Ignore)
_BUILTIN_RULES = (Text, Fuzzy, Exact, Tolerance, Temporal, Multiset, ListCount, Ignore)


def _is_custom(rule: FieldRule) -> bool:
    """Compare, or a user-defined FieldRule subclass: applied to the whole value."""
    return not isinstance(rule, _BUILTIN_RULES)


def _is_scalar_rule(rule: FieldRule) -> bool:
    return not isinstance(rule, _COLLECTION_RULES)


@dataclass(frozen=True)
class _Leaf:
    path: str
    getter: tuple[str, ...]
    rule: FieldRule
    optional: bool


@dataclass(frozen=True)
class _ModelList:
    path: str
    getter: tuple[str, ...]
    optional: bool
    item_nodes: tuple[_Leaf | _ModelList, ...]


_Node = _Leaf | _ModelList


def _has_empty_default(info: Any) -> bool:
    factory = info.default_factory
    if factory is not None:
        return factory in (list, dict, set, tuple, frozenset, str)
    return info.default is None or (
        isinstance(info.default, str | list | tuple | set | frozenset | dict)
        and _is_empty(info.default)
    )


def _incompatible(source: str, rule: FieldRule, path: str, what: str, allowed: str) -> ValueError:
    return ValueError(
        f"{source}: comparator {rule.kind!r} cannot be applied to field {path!r} ({what}); "
        f"use {allowed}"
    )


class _Builder:
    def __init__(self, config: ScoringConfig) -> None:
        self.config = config

    def model(
        self,
        model: type[BaseModel],
        prefix: str,
        getter: tuple[str, ...],
        optional: bool,
        stack: tuple[type, ...],
    ) -> list[_Node]:
        nodes: list[_Node] = []
        for name, info in model.model_fields.items():
            ti = _analyze(info.annotation, info.metadata)
            nodes.extend(
                self.field(
                    f"{prefix}{name}",
                    (*getter, name),
                    ti,
                    optional or ti.nullable or _has_empty_default(info),
                    stack,
                )
            )
        return nodes

    def field(
        self,
        path: str,
        getter: tuple[str, ...],
        ti: _TypeInfo,
        optional: bool,
        stack: tuple[type, ...],
    ) -> list[_Node]:
        core = ti.core
        is_model = _is_model(core)
        hit = self.config.rule_for(path, globs=not is_model)
        if hit is not None:
            source, rule = f"scoring config key {hit[0]!r}", hit[1]
        elif ti.rules:
            source, rule = f"Annotated rule on {path!r}", ti.rules[-1]
        else:
            source, rule = "", None
        if isinstance(rule, Ignore):
            return []

        if is_model:
            if rule is None:
                if core in stack:
                    return [_Leaf(path, getter, Exact(), optional)]  # recursive model
                return self.model(core, f"{path}.", getter, optional, (*stack, core))
            if not (isinstance(rule, Exact) or _is_custom(rule)):
                raise _incompatible(source, rule, path, "a nested model", "exact, ignore or custom")
            return [_Leaf(path, getter, rule, optional)]

        is_collection, element = _collection_element(core)
        if not is_collection:
            if rule is None:
                rule = _default_rule(core)
            if not _is_scalar_rule(rule):
                raise _incompatible(
                    source,
                    rule,
                    path,
                    "a scalar",
                    "text, fuzzy, exact, number, date, time, datetime, ignore or custom",
                )
            return [_Leaf(path, getter, rule, optional)]

        optional = optional or not (ti.min_length and ti.min_length >= 1)
        eti = _analyze(element)
        if _is_model(eti.core):
            if rule is None:
                if eti.core in stack:
                    return [_Leaf(path, getter, Multiset(Exact()), optional)]
                items = self.model(eti.core, f"{path}[].", (), optional, (*stack, eti.core))
                return [_ModelList(path, getter, optional, tuple(items))]
            if isinstance(rule, Multiset) and rule.element is None:
                rule = Multiset(Exact())
            if isinstance(rule, Multiset) and not (
                isinstance(rule.element, Exact) or _is_custom(rule.element)
            ):
                raise _incompatible(
                    source,
                    rule.element,
                    path,
                    "a list element that is a model",
                    "exact or custom",
                )
            if not (isinstance(rule, ListCount | Exact | Multiset) or _is_custom(rule)):
                raise _incompatible(
                    source,
                    rule,
                    path,
                    "a list of models",
                    "list_count, multiset, exact, ignore or custom",
                )
            return [_Leaf(path, getter, rule, optional)]

        element_rule = eti.rules[-1] if eti.rules else None
        if element_rule is None:
            element_rule = (
                _default_rule(eti.core) if not _collection_element(eti.core)[0] else Exact()
            )
        if not _is_scalar_rule(element_rule):
            raise _incompatible(
                f"Annotated element rule on {path!r}",
                element_rule,
                path,
                "a list element",
                "a scalar comparator",
            )
        if rule is None:
            rule = Multiset(element_rule)
        elif isinstance(rule, Multiset):
            if rule.element is None:
                rule = Multiset(element_rule)
            elif not _is_scalar_rule(rule.element):
                raise _incompatible(
                    source, rule.element, path, "a list element", "a scalar comparator"
                )
        elif isinstance(rule, _ELEMENT_RULES):
            rule = Multiset(rule)
        elif not (isinstance(rule, ListCount | Exact) or _is_custom(rule)):
            raise _incompatible(source, rule, path, "a list", "multiset or a scalar comparator")
        return [_Leaf(path, getter, rule, optional)]


def _schema_paths(
    model: type[BaseModel], prefix: str, stack: tuple[type, ...], out: list[str]
) -> None:
    """Every path of the schema (nested models, lists and leaves), ignoring all rules."""
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        out.append(path)
        core = _analyze(info.annotation, info.metadata).core
        if _is_model(core) and core not in stack:
            _schema_paths(core, f"{path}.", (*stack, core), out)
            continue
        is_collection, element = _collection_element(core)
        if is_collection:
            element_core = _analyze(element).core
            if _is_model(element_core) and element_core not in stack:
                _schema_paths(element_core, f"{path}[].", (*stack, element_core), out)


def _validate_keys(model: type[BaseModel], config: ScoringConfig) -> None:
    paths: list[str] = []
    _schema_paths(model, "", (model,), paths)
    known = set(paths)
    for key, _ in config.fields:
        if "*" in key:
            regex = _glob_regex(key)
            if any(regex.fullmatch(p) for p in paths):
                continue
        elif key in known:
            continue
        raise ValueError(
            f"scoring config key {key!r} matches no field of {model.__name__} "
            f"(fields: {', '.join(paths)})"
        )


def _build_plan(model: type[BaseModel], config: ScoringConfig) -> tuple[_Node, ...]:
    if not _is_model(model):
        raise TypeError(f"model must be a pydantic BaseModel subclass, got {model!r}")
    _validate_keys(model, config)
    return tuple(_Builder(config).model(model, "", (), False, (model,)))


@lru_cache(maxsize=256)
def _cached_plan(model: type[BaseModel], config: ScoringConfig) -> tuple[_Node, ...]:
    return _build_plan(model, config)


def _plan(model: type[BaseModel], config: ScoringConfig) -> tuple[_Node, ...]:
    try:
        return _cached_plan(model, config)
    except TypeError:  # unhashable custom comparator: build without caching
        return _build_plan(model, config)


# --------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------


def _get(root: Any, getter: tuple[str, ...]) -> Any:
    value = root
    for name in getter:
        if value is None:
            return None
        if isinstance(value, Mapping):
            value = value.get(name)
        else:
            value = getattr(value, name, None)
    return value


def _score_leaf(node: _Leaf, expected: Any, predicted: Any) -> FieldScore:
    e_empty, p_empty = _is_empty(expected), _is_empty(predicted)
    if e_empty and p_empty:
        correct, score, outcome = True, 1.0, Outcome.BOTH_EMPTY
    elif e_empty:
        correct, score, outcome = False, 0.0, Outcome.SPURIOUS
    elif p_empty:
        correct, score, outcome = False, 0.0, Outcome.MISSED
    else:
        try:
            correct, score = node.rule.compare(expected, predicted)
        except Exception as exc:
            exc.add_note(f"while scoring field {node.path!r} with comparator {node.rule.kind!r}")
            raise
        outcome = Outcome.MATCH if correct else Outcome.MISMATCH
    return FieldScore(
        node.path, correct, score, node.rule.kind, expected, predicted, outcome, node.optional
    )


def _merge_outcomes(outcomes: Iterable[Outcome]) -> Outcome:
    present = {o for o in outcomes if o is not Outcome.BOTH_EMPTY}
    if not present:
        return Outcome.BOTH_EMPTY
    if len(present) == 1:
        return next(iter(present))
    return Outcome.MISMATCH


def _as_items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Sequence | cabc.Set) and not isinstance(value, str | bytes):
        return list(value)
    return [value]


def _score_model_list(node: _ModelList, expected: Any, predicted: Any) -> list[FieldScore]:
    es, ps = _as_items(expected), _as_items(predicted)
    if not es and not ps:
        ok, score, outcome = True, 1.0, Outcome.BOTH_EMPTY
    elif not es:
        ok, score, outcome = False, 0.0, Outcome.SPURIOUS
    elif not ps:
        ok, score, outcome = False, 0.0, Outcome.MISSED
    else:
        ok, score = _count_score(len(es), len(ps))
        outcome = Outcome.MATCH if ok else Outcome.MISMATCH
    count = FieldScore(
        node.path, ok, score, "list[model]", expected, predicted, outcome, node.optional
    )

    # Match items one to one by maximum total mean sub-field score. Items are put in a
    # content-derived order first so that ties resolve the same way whatever the input order.
    e_order = sorted(range(len(es)), key=lambda i: _canonical(es[i]))
    p_order = sorted(range(len(ps)), key=lambda j: _canonical(ps[j]))
    pair_rows: dict[tuple[int, int], list[FieldScore]] = {}
    sims = np.zeros((len(es), len(ps)))
    for a, i in enumerate(e_order):
        for b, j in enumerate(p_order):
            rows = _score_nodes(node.item_nodes, es[i], ps[j])
            pair_rows[i, j] = rows
            sims[a, b] = math.fsum(r.score for r in rows) / len(rows) if rows else 0.0
    rows_idx, cols_idx = _assign(sims)
    matched = {e_order[a]: p_order[b] for a, b in zip(rows_idx, cols_idx, strict=True)}
    matched_p = set(matched.values())

    slots = [
        pair_rows[i, matched[i]] if i in matched else _score_nodes(node.item_nodes, es[i], None)
        for i in range(len(es))
    ]
    slots += [
        _score_nodes(node.item_nodes, None, ps[j]) for j in range(len(ps)) if j not in matched_p
    ]
    template = _score_nodes(node.item_nodes, None, None)
    out = [count]
    for k, proto in enumerate(template):
        column = [slot[k] for slot in slots]
        if not column:
            out.append(
                FieldScore(
                    proto.field, True, 1.0, proto.kind, [], [], Outcome.BOTH_EMPTY, proto.optional
                )
            )
            continue
        out.append(
            FieldScore(
                field=proto.field,
                correct=all(r.correct for r in column),
                score=math.fsum(r.score for r in column) / len(column),
                kind=proto.kind,
                expected=[r.expected for r in column],
                predicted=[r.predicted for r in column],
                outcome=_merge_outcomes(r.outcome for r in column),
                optional=proto.optional,
            )
        )
    return out


def _score_nodes(nodes: Sequence[_Node], expected: Any, predicted: Any) -> list[FieldScore]:
    out: list[FieldScore] = []
    for node in nodes:
        e, p = _get(expected, node.getter), _get(predicted, node.getter)
        if isinstance(node, _Leaf):
            out.append(_score_leaf(node, e, p))
        else:
            out.extend(_score_model_list(node, e, p))
    return out


def score_fields(
    expected: BaseModel,
    predicted: BaseModel | None,
    model: type[BaseModel] | None = None,
    config: ScoringConfig | Mapping[str, Any] | None = None,
) -> list[FieldScore]:
    """Score every field of ``predicted`` against ``expected`` (one row per field, schema order)."""
    if model is None:
        if expected is None:
            raise TypeError("score_fields needs `model` when `expected` is None")
        model = type(expected)
    return _score_nodes(_plan(model, _coerce_config(config)), expected, predicted)


def field_paths(
    model: type[BaseModel], config: ScoringConfig | Mapping[str, Any] | None = None
) -> list[str]:
    """The row paths ``score_fields`` yields for ``model`` (validates the config)."""
    return [row.field for row in _score_nodes(_plan(model, _coerce_config(config)), None, None)]


# --------------------------------------------------------------------------------------
# Aggregates over rows (FieldScore objects, as_row() dicts or a pandas DataFrame)
# --------------------------------------------------------------------------------------

_ROW_KEYS = ("field", "kind", "outcome", "correct", "score", "optional")


def _iter_rows(rows: Any) -> Iterator[dict[str, Any]]:
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # pandas DataFrame
        missing = [k for k in _ROW_KEYS if k not in rows.columns]
        if missing:
            raise ValueError(f"rows frame lacks column(s) {missing}")
        rows = rows.to_dict("records")
    for row in rows:
        if isinstance(row, FieldScore):
            yield {k: getattr(row, k) for k in _ROW_KEYS}
        elif isinstance(row, Mapping):
            yield {k: row.get(k) for k in _ROW_KEYS}
        else:
            raise TypeError(f"expected FieldScore or mapping rows, got {type(row).__name__}")


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    if value is None or _is_nan(value):
        return False
    try:
        return bool(value)
    except TypeError:  # pandas.NA
        return False


def _prf(tp: int, fp: int, fn: int, tn: int) -> dict[str, float | int]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "n": tp + fp + fn + tn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


_PRESENCE = {
    Outcome.MATCH: "tp",
    Outcome.MISMATCH: "tp",
    Outcome.SPURIOUS: "fp",
    Outcome.MISSED: "fn",
    Outcome.BOTH_EMPTY: "tn",
}


def presence_counts(rows: Any, *, optional_only: bool = True) -> dict[str, Any]:
    """Presence precision/recall/F1 (positive = non-empty value), overall and per field."""
    per_field: dict[str, Counter[str]] = {}
    for row in _iter_rows(rows):
        if row["kind"] == "ignore" or (optional_only and not _truthy(row["optional"])):
            continue
        bucket = _PRESENCE[Outcome(str(row["outcome"]))]
        per_field.setdefault(str(row["field"]), Counter())[bucket] += 1
    total: Counter[str] = Counter()
    for counts in per_field.values():
        total.update(counts)

    def stats(c: Counter[str]) -> dict[str, float | int]:
        return _prf(c["tp"], c["fp"], c["fn"], c["tn"])

    return {
        "overall": stats(total),
        "by_field": {name: stats(counts) for name, counts in per_field.items()},
    }


def summarize_fields(rows: Any) -> dict[str, dict[str, Any]]:
    """Per-field accuracy, mean score and outcome counts, in first-seen (schema) order."""
    out: dict[str, dict[str, Any]] = {}
    scores: dict[str, list[float]] = {}
    for row in _iter_rows(rows):
        if row["kind"] == "ignore":
            continue
        name = str(row["field"])
        entry = out.setdefault(
            name,
            {"kind": row["kind"], "n": 0, "correct": 0} | {str(o): 0 for o in Outcome},
        )
        entry["n"] += 1
        entry["correct"] += int(_truthy(row["correct"]))
        entry[str(Outcome(str(row["outcome"])))] += 1
        scores.setdefault(name, []).append(float(row["score"]))
    for name, entry in out.items():
        entry["accuracy"] = entry["correct"] / entry["n"]
        entry["mean_score"] = math.fsum(scores[name]) / entry["n"]
    return out
