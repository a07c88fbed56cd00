"""Specs of labelled utterances for `synth`: a JSONL file, or templates with slots expanded to N rows."""

from __future__ import annotations

import hashlib
import json
import string
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .problems import ProblemList
from .project import find_root
from .suites import import_object
from .tts import DEFAULT_OPENAI_TTS_MODEL, OPENAI_MAX_INPUT_CHARS, TtsEngine, Voice

DEFAULT_VOICES: tuple[str, ...] = ("flite:slt", "flite:rms", "flite:awb", "espeak-ng:en-us")
SPEC_KEYS = frozenset(
    {"name", "seed", "response_model", "voices", "renderings", "tts_model"}
    | {"utterances", "rows", "templates", "slots"}
)
UTTERANCE_KEYS = frozenset({"text", "expected", "tags", "id", "must_pass"})
TEMPLATE_KEYS = frozenset({"text", "expected", "tags"})
SAY_MODES = ("words", "digits")


@dataclass(frozen=True)
class Utterance:
    """One sentence to speak and the label that is its truth."""

    text: str
    expected: Any
    source: Path
    """The file the utterance comes from (a JSONL file, or the template spec)."""
    line: int | None
    """Its line in `source` (None for a template row)."""
    origin: str
    """Where it comes from in words: `line 3`, `row 17 (from templates[2])`."""
    tags: Mapping[str, str] = field(default_factory=dict)
    id: str | None = None
    must_pass: bool | None = None


@dataclass(frozen=True)
class SynthSpec:
    """What `synth` renders: the utterances, the voices and how ids are made."""

    path: Path
    utterances: tuple[Utterance, ...]
    voices: tuple[Voice, ...]
    renderings: int = 1
    name: str | None = None
    """The id prefix (default: the spec file's name up to its first dot)."""
    tts_model: str = DEFAULT_OPENAI_TTS_MODEL


# --------------------------------------------------------------------------- numbers

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    " fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """An integer as spoken English words: 41 -> "forty one", 1205 -> "one thousand two hundred five"."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    for size, word in (
        (10**9, "billion"),
        (10**6, "million"),
        (1000, "thousand"),
        (100, "hundred"),
    ):
        if n >= size:
            head, rest = divmod(n, size)
            return f"{number_words(head)} {word}" + ("" if rest == 0 else " " + number_words(rest))
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- slots


@dataclass(frozen=True)
class SlotValue:
    """A slot's choice: how it is said in the text and what it is in the label."""

    say: str
    value: Any


@dataclass(frozen=True)
class Slot:
    """A template slot: a list of choices, or an integer range spoken as words or digits."""

    choices: tuple[SlotValue, ...] = ()
    low: int = 0
    high: int = -1
    say_digits: bool = False

    @property
    def size(self) -> int:
        """How many values the slot can take."""
        return len(self.choices) if self.choices else self.high - self.low + 1

    def value(self, index: int) -> SlotValue:
        """The index-th value."""
        if self.choices:
            return self.choices[index]
        n = self.low + index
        return SlotValue(str(n) if self.say_digits else number_words(n), n)


def _pick(seed: int, row: int, key: str, size: int) -> int:
    """A seeded choice in range(size) for one row and key, stable across platforms and versions."""
    digest = hashlib.sha256(f"{seed}\x1f{row}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % size


def _parse_slot(name: str, raw: Any, path: Path, problems: ProblemList) -> Slot | None:
    where = f"slots.{name}"
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - {"range", "say"})
        if unknown:
            problems.add(
                path, None, where, f"unknown key {unknown[0]!r} (a range slot has range, say)"
            )
        bounds = raw.get("range")
        say = raw.get("say", "words")
        if (
            not isinstance(bounds, list)
            or len(bounds) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
            or bounds[0] > bounds[1]
        ):
            problems.add(path, None, where, "range must be [low, high], integers with low <= high")
            return None
        if say not in SAY_MODES:
            problems.add(path, None, f"{where}.say", f"must be one of {', '.join(SAY_MODES)}")
            return None
        return Slot(low=bounds[0], high=bounds[1], say_digits=say == "digits")
    if not isinstance(raw, list) or not raw:
        problems.add(
            path, None, where, "must be a non-empty list of values or {range = [low, high]}"
        )
        return None
    choices = []
    for i, item in enumerate(raw):
        if isinstance(item, dict):
            if set(item) != {"say", "value"} or not isinstance(item["say"], str):
                problems.add(
                    path, None, f"{where}[{i}]", 'a table must be {say = "...", value = ...}'
                )
                continue
            choices.append(SlotValue(item["say"], item["value"]))
        elif isinstance(item, str | int | float | bool):
            choices.append(SlotValue(str(item), item))
        else:
            problems.add(path, None, f"{where}[{i}]", "must be a string, number, boolean or table")
    return Slot(tuple(choices)) if choices else None


def _placeholders(text: str) -> list[tuple[str, bool]]:
    """The `{slot}` names in a template string, each with whether it carries a format spec or conversion."""
    found = []
    for _literal, name, spec, conversion in string.Formatter().parse(text):
        if name is not None:
            found.append((name, bool(spec) or conversion is not None))
    return found


def _strings(node: Any, where: str) -> list[tuple[str, str]]:
    """Every string leaf of a JSON-like value, with its path."""
    if isinstance(node, str):
        return [(where, node)]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(v, f"{where}.{k}")]
    if isinstance(node, list):
        return [s for i, v in enumerate(node) for s in _strings(v, f"{where}[{i}]")]
    return []


def _fill(node: Any, values: Mapping[str, SlotValue]) -> Any:
    """A label template with slot values put in: a lone `{slot}` takes the value itself."""
    if isinstance(node, str):
        names = _placeholders(node)
        if len(names) == 1 and node == "{" + names[0][0] + "}":
            return values[names[0][0]].value
        if not names:
            return node.replace("{{", "{").replace("}}", "}")
        return node.format(
            **{
                k: v.value if isinstance(v.value, str) else json.dumps(v.value)
                for k, v in values.items()
            }
        )
    if isinstance(node, dict):
        return {k: _fill(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, values) for v in node]
    return node


def _expand_templates(
    raw: Mapping[str, Any], path: Path, seed: int, rows: Any, problems: ProblemList
) -> list[Utterance]:
    templates = raw.get("templates")
    if (
        not isinstance(templates, list)
        or not templates
        or not all(isinstance(t, dict) for t in templates)
    ):
        problems.add(path, None, "templates", "must be a non-empty array of tables ([[templates]])")
        return []
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        problems.add(path, None, "rows", "a template spec needs rows = N (a positive integer)")
        return []
    raw_slots = raw.get("slots", {})
    if not isinstance(raw_slots, dict):
        problems.add(path, None, "slots", "must be a table of slot name -> values")
        raw_slots = {}
    slots = {}
    for name, value in raw_slots.items():
        slot = _parse_slot(name, value, path, problems)
        if slot is not None:
            slots[name] = slot
    for t, template in enumerate(templates):
        where = f"templates[{t + 1}]"
        for key in sorted(set(template) - TEMPLATE_KEYS):
            problems.add(path, None, f"{where}.{key}", "unknown key (known: text, expected, tags)")
        if not isinstance(template.get("text"), str) or not template["text"].strip():
            problems.add(path, None, f"{where}.text", "must be a non-empty string")
        if "expected" not in template:
            problems.add(path, None, f"{where}.expected", "missing: the label of the sentence")
        tags = template.get("tags", {})
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            problems.add(path, None, f"{where}.tags", "must be a table of strings")
        leaves = _strings(template.get("text", ""), f"{where}.text")
        leaves += _strings(template.get("expected"), f"{where}.expected")
        leaves += _strings(tags, f"{where}.tags") if isinstance(tags, dict) else []
        for leaf_where, text in leaves:
            try:
                names = _placeholders(text)
            except ValueError as exc:
                problems.add(path, None, leaf_where, f"bad placeholder in {text!r}: {exc}")
                continue
            for name, formatted in names:
                if name not in raw_slots:
                    problems.add(
                        path,
                        None,
                        leaf_where,
                        f"{{{name}}} names no slot (slots: {', '.join(raw_slots) or 'none'})",
                    )
                elif formatted:
                    problems.add(
                        path,
                        None,
                        leaf_where,
                        f"{{{name}}}: format specs and conversions are not supported",
                    )
    if problems:
        return []
    utterances = []
    for row in range(rows):
        t = _pick(seed, row, "\x00template", len(templates))
        template = templates[t]
        values = {
            name: slot.value(_pick(seed, row, name, slot.size)) for name, slot in slots.items()
        }
        said = {k: v.say for k, v in values.items()}
        utterances.append(
            Utterance(
                text=template["text"].format(**said),
                expected=_fill(template["expected"], values),
                tags={k: _fill(v, values) for k, v in template.get("tags", {}).items()},
                source=path,
                line=None,
                origin=f"row {row + 1} (from templates[{t + 1}])",
            )
        )
    return utterances


# --------------------------------------------------------------------------- JSONL utterances


def _read_utterances(path: Path, problems: ProblemList) -> list[Utterance]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.add(path, None, None, "utterances file not found")
        return []
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(path, None, None, f"cannot read the utterances file ({exc})")
        return []
    found = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.add(path, lineno, None, f"unreadable JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(row, dict):
            problems.add(path, lineno, None, f"expected a JSON object, got {type(row).__name__}")
            continue
        for key in sorted(set(row) - UTTERANCE_KEYS):
            problems.add(
                path, lineno, key, f"unknown key (known: {', '.join(sorted(UTTERANCE_KEYS))})"
            )
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            problems.add(path, lineno, "text", "must be a non-empty string (what is spoken)")
            text = ""
        if "expected" not in row:
            problems.add(path, lineno, "expected", "missing: the label of the sentence")
        tags = row.get("tags", {})
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            problems.add(path, lineno, "tags", "must be an object of strings")
            tags = {}
        row_id = row.get("id")
        if "id" in row and (not isinstance(row_id, str) or not row_id.strip()):
            problems.add(path, lineno, "id", "must be a non-empty string")
            row_id = None
        must_pass = row.get("must_pass")
        if "must_pass" in row and not isinstance(must_pass, bool):
            problems.add(path, lineno, "must_pass", "must be true or false")
            must_pass = None
        if "expected" in row:  # kept even with other problems, so its label is checked too
            found.append(
                Utterance(
                    text=text,
                    expected=row["expected"],
                    tags=dict(tags),
                    id=row_id,
                    must_pass=must_pass,
                    source=path,
                    line=lineno,
                    origin=f"line {lineno}",
                )
            )
    if not found and not problems:
        problems.add(path, None, None, "no utterances (one JSON object per line)")
    return found


# --------------------------------------------------------------------------- spec


def _int_setting(
    raw: Mapping[str, Any], key: str, default: int, path: Path, problems: ProblemList, minimum: int
) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        problems.add(path, None, key, f"must be an integer >= {minimum}")
        return default
    return value


def load_spec(
    path: str | Path,
    *,
    seed: int | None = None,
    rows: int | None = None,
    voices: Sequence[str] | None = None,
    renderings: int | None = None,
) -> SynthSpec:
    """Read a synth spec (`.toml`, or a `.jsonl` of utterances), checking everything; ProblemsError lists all problems."""
    path = Path(path)
    problems = ProblemList()
    raw: dict[str, Any] = {}
    if path.suffix.lower() == ".toml":
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            problems.add(path, None, None, "spec file not found")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            problems.add(path, None, None, f"not a readable TOML file ({exc})")
        problems.raise_if_any()
        for key in sorted(set(raw) - SPEC_KEYS):
            problems.add(path, None, key, f"unknown key (known: {', '.join(sorted(SPEC_KEYS))})")
    elif path.suffix.lower() != ".jsonl":
        problems.add(path, None, None, "a spec is a .toml file or a .jsonl file of utterances")
        problems.raise_if_any()
    given_seed = _int_setting(raw, "seed", 0, path, problems, minimum=0) if seed is None else seed
    n_renderings = _int_setting(
        {"renderings": renderings} if renderings is not None else raw,
        "renderings",
        1,
        path,
        problems,
        minimum=1,
    )
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        problems.add(path, None, "name", "must be a non-empty string (the id prefix)")
        name = None
    model = raw.get("response_model")
    if model is not None and (not isinstance(model, str) or ":" not in model):
        problems.add(path, None, "response_model", "must be 'module:Class'")
        model = None
    tts_model = raw.get("tts_model", DEFAULT_OPENAI_TTS_MODEL)
    if not isinstance(tts_model, str) or not tts_model:
        problems.add(path, None, "tts_model", "must be a model name")
        tts_model = DEFAULT_OPENAI_TTS_MODEL
    voice_texts = list(voices) if voices else raw.get("voices", list(DEFAULT_VOICES))
    parsed_voices: list[Voice] = []
    if not isinstance(voice_texts, list) or not voice_texts:
        problems.add(path, None, "voices", "must be a non-empty list of engine:name")
    else:
        for i, text in enumerate(voice_texts):
            try:
                parsed_voices.append(Voice.parse(str(text)))
            except ValueError as exc:
                problems.add(path, None, f"voices[{i}]", str(exc))
        if len(set(parsed_voices)) != len(parsed_voices):
            problems.add(path, None, "voices", "lists a voice twice")

    utterances: list[Utterance] = []
    if path.suffix.lower() == ".jsonl":
        utterances = _read_utterances(path, problems)
    elif "utterances" in raw and "templates" in raw:
        problems.add(path, None, "utterances", "give utterances or templates, not both")
    elif "utterances" in raw:
        if not isinstance(raw["utterances"], str):
            problems.add(path, None, "utterances", "must be the path of a JSONL file")
        else:
            for key in ("rows", "slots"):
                if key in raw:
                    problems.add(path, None, key, "only for a template spec")
            utterances = _read_utterances(path.parent / raw["utterances"], problems)
    elif "templates" in raw:
        utterances = _expand_templates(
            raw, path, given_seed, rows if rows is not None else raw.get("rows"), problems
        )
    else:
        problems.add(path, None, None, 'a spec needs utterances = "file.jsonl" or [[templates]]')

    if n_renderings > 1 and any(u.id is not None for u in utterances):
        problems.add(
            path, None, "renderings", "utterances with their own id can be rendered once only"
        )
    if any(v.engine == TtsEngine.OPENAI for v in parsed_voices):
        for u in utterances:
            if len(u.text) > OPENAI_MAX_INPUT_CHARS:
                problems.add(
                    u.source,
                    u.line,
                    "text",
                    f"{u.origin}: longer than the speech endpoint's {OPENAI_MAX_INPUT_CHARS} characters",
                )
    if model is not None and utterances:
        _validate_labels(path, model, utterances, problems)
    problems.raise_if_any()
    return SynthSpec(
        path=path,
        utterances=tuple(utterances),
        voices=tuple(parsed_voices),
        renderings=n_renderings,
        name=name,
        tts_model=tts_model,
    )


def _validate_labels(
    path: Path, model_path: str, utterances: Sequence[Utterance], problems: ProblemList
) -> None:
    root = find_root(path.parent)  # the spec's project, else the current directory
    if not (root / "pyproject.toml").is_file():
        root = Path.cwd()
    try:
        model = import_object(model_path, root)
    except (ImportError, AttributeError, ValueError) as exc:
        problems.add(path, None, "response_model", f"cannot import {model_path!r}: {exc}")
        return
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        problems.add(path, None, "response_model", f"{model_path!r} is not a pydantic model")
        return
    reported: set[str] = set()
    for u in utterances:
        try:
            model.model_validate(u.expected)
        except ValidationError as exc:
            for error in exc.errors():
                loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
                message = f"label does not validate against {model.__name__}: {error['msg']}"
                if u.line is None:  # template rows: one report per template and problem
                    key = u.origin.partition("(from ")[2] + loc + message
                    if key in reported:
                        continue
                    reported.add(key)
                where = "" if u.line is not None else f"{u.origin}: "
                problems.add(u.source, u.line, "expected" + loc, where + message)
