"""Which fields of a response model take one of a fixed set of values (enum, Literal, bool)."""

from __future__ import annotations

import types
from enum import Enum, StrEnum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from .scoring import field_paths


class FieldType(StrEnum):
    """The kind of values a categorical field takes (a confusion table is drawn for each)."""

    ENUM = "enum"
    LITERAL = "literal"
    BOOL = "bool"


def _unwrap(annotation: Any) -> Any:
    """The annotation without Annotated, Optional and NewType wrappers (a union of several kept as is)."""
    ann = annotation
    while True:
        if type(ann).__name__ == "TypeAliasType":
            ann = ann.__value__
            continue
        origin = get_origin(ann)
        if origin is Annotated:
            ann = get_args(ann)[0]
            continue
        if origin is Union or origin is types.UnionType:
            members = [a for a in get_args(ann) if a is not type(None)]
            if len(members) != 1:
                return ann
            ann = members[0]
            continue
        if hasattr(ann, "__supertype__"):
            ann = ann.__supertype__
            continue
        return ann


def _classify(annotation: Any) -> FieldType | None:
    core = _unwrap(annotation)
    if get_origin(core) is Literal:
        return FieldType.LITERAL
    if core is bool:
        return FieldType.BOOL
    if isinstance(core, type) and issubclass(core, Enum):
        return FieldType.ENUM
    return None


def _annotation_at(model: type[BaseModel], path: str) -> Any | None:
    """The annotation of a dotted path through nested models (None for list items and unknown paths)."""
    if "[]" in path:
        return None
    current: Any = model
    annotation: Any = None
    for part in path.split("."):
        core = _unwrap(current) if annotation is not None else current
        if not (isinstance(core, type) and issubclass(core, BaseModel)):
            return None
        info = core.model_fields.get(part)
        if info is None:
            return None
        annotation = info.annotation
        current = annotation
    return annotation


def categorical_fields(model: type[BaseModel]) -> dict[str, FieldType]:
    """Scored field paths of a response model whose values come from a fixed set, with their kind."""
    out: dict[str, FieldType] = {}
    for path in field_paths(model):
        annotation = _annotation_at(model, path)
        kind = _classify(annotation) if annotation is not None else None
        if kind is not None:
            out[path] = kind
    return out
