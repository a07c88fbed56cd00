"""Schema-driven filler: turn a transcript into JSON that follows a JSON schema, with generic rules.

The rules only look at the schema (field names, descriptions, types, formats, enums, defaults)
and at the text. They are deliberately simple: this is the weak, honest baseline.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from audio_evals.local.textnum import (
    DateSpan,
    NumberSpan,
    TimeSpan,
    digit_runs,
    find_dates,
    find_numbers,
    find_times,
    is_number_word,
    negated,
    tokenize,
)

# Words that never start or make up a name, and that end a captured phrase.
STOPWORDS = set(
    """
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has
have having he her here hers herself him himself his how i if in into is it its itself just let me
more most my myself no nor not now of off on once only or other our ours ourselves out over own
please same she should so some such than that the their theirs them themselves then there these
they this those through to too under until up very was we were what when where which while who whom
why will with would you your yours yourself yourselves yes yeah okay ok hi hello hey well um uh oh
calling call speaking here just really sure thanks thank like want wanted need needs going get got
new old good great fine sorry today tomorrow tonight yesterday morning afternoon evening night
urgent important about regarding re years year old age aged i'm it's that's there's he's she's
we're they're you're i'd i'll i've am pm oclock dear sir madam mister mr mrs ms miss doctor dr
one's order appointment number phone send bring give take make buy add book put
""".split()
)
# Words of a field name that carry no meaning of their own.
NAME_FILLER = {
    "is",
    "has",
    "have",
    "was",
    "are",
    "needs",
    "need",
    "wants",
    "want",
    "should",
    "will",
    "did",
    "does",
    "do",
    "the",
    "a",
    "an",
    "of",
    "flag",
    "any",
    "bool",
    "boolean",
    "value",
    "field",
    "in",
    "to",
    "for",
    "by",
    "with",
    "if",
}
# A tiny generic lexicon: words that tell a value of a common concept is near.
CONCEPT_CUES: dict[str, tuple[str, ...]] = {
    "age": ("old", "aged", "age", "years"),
    "price": (
        "dollars",
        "dollar",
        "bucks",
        "cost",
        "costs",
        "price",
        "pay",
        "paid",
        "euros",
        "pounds",
    ),
    "cost": ("dollars", "dollar", "bucks", "cost", "costs", "price", "pay", "paid"),
    "amount": ("dollars", "dollar", "bucks", "euros", "pounds", "amount", "pay", "paid"),
    "total": ("dollars", "dollar", "bucks", "total"),
    "phone": ("phone", "number", "call", "reach", "cell", "mobile"),
    "quantity": ("quantity", "many", "count"),
    "count": ("many", "count"),
    "people": ("people", "persons", "guests", "party"),
    "guests": ("people", "persons", "guests", "party"),
    "party": ("people", "persons", "guests", "party"),
    "duration": ("minutes", "hours", "days", "weeks", "long"),
    "minutes": ("minutes",),
    "hours": ("hours",),
    "days": ("days",),
    "weight": ("pounds", "kilos", "kilograms", "kg", "lbs"),
    "height": ("feet", "inches", "centimeters", "cm", "meters", "tall"),
    "temperature": ("degrees", "fever"),
    "year": ("year", "in"),
    "birth": ("born", "birthday", "birth"),
    "dob": ("born", "birthday", "birth"),
    "birthday": ("born", "birthday", "birth"),
    "appointment": ("appointment", "visit", "booking", "book", "booked", "scheduled", "see"),
    "delivery": ("deliver", "delivery", "delivered", "arrive", "send"),
    "deadline": ("due", "deadline", "by"),
}
DIGIT_FIELD_WORDS = {
    "phone",
    "telephone",
    "mobile",
    "cell",
    "number",
    "zip",
    "zipcode",
    "postcode",
    "postal",
    "pin",
    "account",
    "digits",
    "extension",
    "ssn",
    "code",
    "fax",
}
DATE_FIELD_WORDS = {"date", "birthday", "dob", "birthdate"}
TIME_FIELD_WORDS = {"time", "hour"}
WHOLE_TEXT_FIELDS = {
    "transcript",
    "transcription",
    "text",
    "summary",
    "content",
    "message",
    "notes",
    "note",
    "comment",
    "comments",
    "details",
    "utterance",
    "query",
    "body",
    "raw",
}
NAME_STRONG_CUES = (
    ("my", "name", "is"),
    ("my", "name's"),
    ("name", "is"),
    ("name's",),
    ("call", "me"),
    ("my", "names"),
    ("names",),
)
NAME_WEAK_CUES = (("this", "is"), ("i'm",), ("i", "am"), ("it's",), ("im",), ("speaking", "with"))
NAME_AFTER_CUES = ("is", "here", "speaking", "calling")
CLAUSE_BREAKS = {"and", "but", "so", "because", "then", "also", "please", "or", "plus", "with"}
LINKING = {"is", "was", "are", "were", "be", "'s", "of", "to", "for", "as", "at", "in", "on"}


def split_words(name: str) -> list[str]:
    """Split a field name like 'callbackNumber' or 'is_urgent' into lower-case words."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", name.lower()) if w]


def _stem_match(cue: str, token: str) -> bool:
    if cue == token:
        return True
    if len(cue) < 5 or len(token) < 4:
        return token in (cue + "s", cue + "es") or cue in (token + "s", token + "es")
    stem = cue[: max(4, len(cue) - 2)]
    return token.startswith(stem)


def resolve(node: Any, root: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """Follow $ref/allOf in a schema node and merge sibling keys (description, default)."""
    if not isinstance(node, dict):
        return {}
    if depth > 32:
        return {}
    node = dict(node)
    ref = node.pop("$ref", None)
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part, {}) if isinstance(target, dict) else {}
        merged = dict(resolve(target, root, depth + 1))
        merged.update(node)
        node = merged
    all_of = node.pop("allOf", None)
    if isinstance(all_of, list):
        merged = {}
        for part in all_of:
            merged.update(resolve(part, root, depth + 1))
        merged.update(node)
        node = merged
    return node


def unwrap_optional(node: dict[str, Any], root: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Return the non-null alternative of a node and whether null is allowed."""
    node = resolve(node, root)
    nullable = False
    for key in ("anyOf", "oneOf"):
        alts = node.get(key)
        if isinstance(alts, list) and alts:
            resolved = [resolve(a, root) for a in alts]
            non_null = [a for a in resolved if a.get("type") != "null"]
            nullable = len(non_null) < len(resolved)
            base = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
            if non_null:
                chosen = dict(non_null[0])
                if len(non_null) > 1 and not chosen.get("enum"):
                    # prefer an object, then the first
                    chosen = dict(next((a for a in non_null if a.get("type") == "object"), chosen))
                for k, v in base.items():
                    chosen.setdefault(k, v)
                node = chosen
            else:
                node = base
                node["type"] = "null"
            break
    typ = node.get("type")
    if isinstance(typ, list):
        nullable = nullable or "null" in typ
        rest = [t for t in typ if t != "null"]
        node = dict(node)
        node["type"] = rest[0] if rest else "null"
    if node.get("enum") is not None and None in node["enum"]:
        nullable = True
        node = dict(node)
        node["enum"] = [v for v in node["enum"] if v is not None]
    return node, nullable


@dataclass
class Slot:
    """One leaf of the schema to fill: where it goes, what it is, and which words point to it."""

    path: tuple[Any, ...]
    name: str
    schema: dict[str, Any]
    optional: bool
    kind: str
    cues: list[str]
    name_words: list[str]
    description: str = ""
    value: Any = None
    filled: bool = False


@dataclass
class Candidate:
    """A value found in the text, with its token span."""

    value: Any
    start: int
    end: int
    extra: dict[str, Any] = field(default_factory=dict)


def _description_cues(description: str) -> list[str]:
    quoted = re.findall(r"[\"'“‘]([^\"'”’]+)[\"'”’]", description)
    words = []
    for q in quoted:
        words.extend(tokenize(q))
    return words


_PLACEHOLDER_BY_FORMAT = {
    "date": "1970-01-01",
    "time": "00:00:00",
    "date-time": "1970-01-01T00:00:00",
}


def _empty_value(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    typ = schema.get("type")
    if typ == "string":
        # A required date or time the baseline did not hear still has to be a valid one: like a model
        # that must answer, it guesses, and the guess scores as wrong.
        return _PLACEHOLDER_BY_FORMAT.get(str(schema.get("format", "")), "")
    if typ == "integer":
        return 0
    if typ == "number":
        return 0
    if typ == "boolean":
        return False
    if typ == "array":
        return []
    if typ == "object":
        return {}
    return None


class SchemaFiller:
    """Fills a JSON schema from one text with generic, schema-driven rules."""

    def __init__(
        self,
        schema: dict[str, Any],
        text: str,
        *,
        default_year: int | None = None,
        root: dict[str, Any] | None = None,
    ) -> None:
        """Prepare the text (tokens, numbers, dates, times) for filling the schema."""
        self.schema = schema if isinstance(schema, dict) else {}
        self.root = root if root is not None else self.schema
        self.text = text or ""
        self.tokens = tokenize(self.text)
        self.numbers = find_numbers(self.tokens)
        self.dates = find_dates(self.tokens, self.numbers)
        self.times = find_times(self.tokens, self.numbers)
        self.loose_times = find_times(self.tokens, self.numbers, loose=True)
        self.default_year = default_year or dt.date.today().year
        self.consumed: set[int] = set()
        self.slots: list[Slot] = []

    # ------------------------------------------------------------------ schema walk
    def fill(self) -> Any:
        """Return a JSON value for the whole schema."""
        node, _ = unwrap_optional(self.schema, self.root)
        if node.get("type") == "object" or "properties" in node:
            self._collect(node, (), depth=0)
            self._assign()
            return self._build(node, (), optional=False)
        slot = self._make_slot((), "value", node, optional=False, description="")
        self.slots.append(slot)
        self._assign()
        return slot.value if slot.filled else _empty_value(node, self.root)

    def _collect(self, node: dict[str, Any], path: tuple[Any, ...], depth: int) -> None:
        props = node.get("properties") or {}
        if depth > 8 or not isinstance(props, dict):
            return
        required = set(node.get("required") or [])
        for name, sub in props.items():
            sub_node, nullable = unwrap_optional(sub, self.root)
            optional = nullable or name not in required
            desc = str(sub_node.get("description") or sub_node.get("title") or "")
            if sub_node.get("type") == "object" and sub_node.get("properties"):
                self._collect(sub_node, path + (name,), depth + 1)
                continue
            self.slots.append(self._make_slot(path + (name,), name, sub_node, optional, desc))

    def _make_slot(
        self,
        path: tuple[Any, ...],
        name: str,
        node: dict[str, Any],
        optional: bool,
        description: str,
    ) -> Slot:
        words = split_words(name)
        content = [w for w in words if w not in NAME_FILLER]
        cues = list(content)
        for w in content:
            cues.extend(CONCEPT_CUES.get(w, ()))
        cues.extend(_description_cues(description))
        return Slot(
            path=path,
            name=name,
            schema=node,
            optional=optional,
            kind=self._kind(node, words, description),
            cues=cues,
            name_words=content or words,
            description=description,
        )

    def _kind(self, node: dict[str, Any], words: list[str], description: str) -> str:
        typ = node.get("type")
        if "const" in node:
            return "const"
        if isinstance(node.get("enum"), list) and node["enum"]:
            return "enum"
        fmt = node.get("format")
        wordset = set(words)
        desc_words = set(tokenize(description))
        if typ == "boolean":
            return "bool"
        if typ in ("integer", "number"):
            return "number"
        if typ == "array":
            return "array"
        if typ == "object":
            return "object"
        if typ == "string" or typ is None:
            if fmt == "date-time":
                return "datetime"
            if fmt == "date" or wordset & DATE_FIELD_WORDS:
                return "date"
            if fmt == "time" or wordset & TIME_FIELD_WORDS:
                return "time"
            if wordset & DIGIT_FIELD_WORDS and "name" not in wordset:
                return "digits"
            if (
                "name" in wordset
                or "surname" in wordset
                or ("name" in desc_words and not wordset & WHOLE_TEXT_FIELDS)
            ):
                return "name"
            if wordset & WHOLE_TEXT_FIELDS:
                return "text"
            return "string"
        return "other"

    def _build(self, node: dict[str, Any], path: tuple[Any, ...], optional: bool) -> Any:
        props = node.get("properties") or {}
        required = set(node.get("required") or [])
        by_path = {s.path: s for s in self.slots}
        out: dict[str, Any] = {}
        for name, sub in props.items():
            sub_node, nullable = unwrap_optional(sub, self.root)
            in_required = name in required
            if sub_node.get("type") == "object" and sub_node.get("properties"):
                value = self._build(sub_node, path + (name,), optional=nullable or not in_required)
                if value is None and not nullable:
                    if "default" in sub_node:
                        out[name] = sub_node["default"]
                    continue
                out[name] = value
                continue
            slot = by_path.get(path + (name,))
            if slot is not None and slot.filled:
                out[name] = slot.value
            elif nullable:
                out[name] = None
            elif not in_required:
                if "default" in sub_node:
                    out[name] = sub_node["default"]
            else:
                out[name] = _empty_value(sub_node, self.root)
        if optional and not self._found_under(path):
            return None
        return out

    def _found_under(self, path: tuple[Any, ...]) -> bool:
        return any(
            s.filled and s.kind != "const" and s.path[: len(path)] == path for s in self.slots
        )

    # ------------------------------------------------------------------ assignment
    def _assign(self) -> None:
        order = ["const", "datetime", "date", "time", "digits", "enum", "bool", "number", "name"]
        order += ["string", "text", "array", "object", "other"]
        for kind in order:
            slots = [s for s in self.slots if s.kind == kind]
            if not slots:
                continue
            getattr(self, f"_assign_{kind}")(slots)

    def _cue_positions(self, slot: Slot) -> list[int]:
        pos = []
        for i, tok in enumerate(self.tokens):
            if any(_stem_match(c, tok) for c in slot.cues):
                pos.append(i)
        return pos

    def _distance(self, slot: Slot, cand: Candidate) -> int | None:
        best: int | None = None
        for p in self._cue_positions(slot):
            if cand.start <= p < cand.end:
                d = 0
            elif p >= cand.end:
                d = p - cand.end + 1
            else:
                d = cand.start - p
            if best is None or d < best:
                best = d
        return best

    def _free(self, cand: Candidate) -> bool:
        return not any(i in self.consumed for i in range(cand.start, cand.end))

    def _pick(
        self,
        slots: list[Slot],
        candidates_for: Any,
        window: int = 6,
        leftovers_to_optional: bool = False,
        uncued_ok: Any = None,
    ) -> None:
        """Assign candidates to slots: by cue proximity first, then in text order.

        Without a cue, a required slot takes the first free candidate; an optional one does so
        when it is the only slot of its kind left (or always, with leftovers_to_optional).
        uncued_ok filters the candidates a slot may take without a cue.
        """
        pairs = []
        cands: dict[int, list[Candidate]] = {}
        for si, slot in enumerate(slots):
            cands[si] = candidates_for(slot)
            for cand in cands[si]:
                d = self._distance(slot, cand)
                if d is not None and d <= window:
                    pairs.append((d, cand.start, si, cand))
        pairs.sort(key=lambda p: (p[0], p[1], p[2]))
        for _, _, si, cand in pairs:
            slot = slots[si]
            if slot.filled or not self._free(cand):
                continue
            self._set(slot, cand)
        pending = [s for s in slots if not s.filled]
        only_one = len(slots) == 1
        for si, slot in enumerate(slots):
            if slot.filled:
                continue
            if slot.optional and not (leftovers_to_optional or only_one or len(pending) == 1):
                continue
            for cand in sorted(cands[si], key=lambda c: c.start):
                if self._free(cand) and (uncued_ok is None or uncued_ok(cand)):
                    self._set(slot, cand)
                    break

    def _set(self, slot: Slot, cand: Candidate) -> None:
        slot.value = cand.value
        slot.filled = True
        self.consumed.update(range(cand.start, cand.end))

    def _assign_const(self, slots: list[Slot]) -> None:
        for slot in slots:
            slot.value = slot.schema["const"]
            slot.filled = True

    def _date_iso(self, d: DateSpan) -> str:
        return dt.date(d.year or self.default_year, d.month, d.day).isoformat()

    def _assign_date(self, slots: list[Slot]) -> None:
        def cands(slot: Slot) -> list[Candidate]:
            return [Candidate(self._date_iso(d), d.start, d.end) for d in self.dates]

        self._pick(slots, cands, window=8, leftovers_to_optional=True)

    def _assign_datetime(self, slots: list[Slot]) -> None:
        def cands(slot: Slot) -> list[Candidate]:
            out = []
            for d in self.dates:
                tm = min(
                    (t for t in self.loose_times if t.start >= d.end - 12),
                    key=lambda t: abs(t.start - d.end),
                    default=None,
                )
                clock = f"{tm.hour:02d}:{tm.minute:02d}:00" if tm else "00:00:00"
                start = min(d.start, tm.start) if tm else d.start
                end = max(d.end, tm.end) if tm else d.end
                out.append(Candidate(f"{self._date_iso(d)}T{clock}", start, end))
            return out

        self._pick(slots, cands, window=8, leftovers_to_optional=True)

    def _time_value(self, t: TimeSpan) -> str:
        return f"{t.hour:02d}:{t.minute:02d}:00"

    def _assign_time(self, slots: list[Slot]) -> None:
        def cands(slot: Slot) -> list[Candidate]:
            return [Candidate(self._time_value(t), t.start, t.end) for t in self.loose_times]

        self._pick(slots, cands, window=8, leftovers_to_optional=True)

    def _assign_digits(self, slots: list[Slot]) -> None:
        runs = digit_runs(self.tokens, self.numbers)

        def cands(slot: Slot) -> list[Candidate]:
            found = [Candidate(r, s, e) for r, s, e in runs if len(r) >= 3]
            found.sort(key=lambda c: -len(c.value))
            return found

        # without a cue word nearby, only a long digit string looks like a phone/account number
        self._pick(
            slots,
            cands,
            window=8,
            leftovers_to_optional=True,
            uncued_ok=lambda c: len(c.value) >= 7,
        )

    def _enum_mentions(self, values: list[Any]) -> list[Candidate]:
        out = []
        for value in values:
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, int | float):
                for n in self.numbers:
                    if n.value == value:
                        out.append(Candidate(value, n.start, n.end))
                continue
            words = tokenize(" ".join(split_words(str(value))))
            if not words:
                continue
            k = len(words)
            for i in range(len(self.tokens) - k + 1):
                window = self.tokens[i : i + k]
                if all(_enum_word_match(w, t) for w, t in zip(words, window, strict=True)):
                    if not negated(self.tokens, i, window=2):
                        out.append(Candidate(value, i, i + k))
        # longer mentions win over shorter ones that overlap them
        out.sort(key=lambda c: (c.start, -(c.end - c.start)))
        kept: list[Candidate] = []
        for c in out:
            if kept and c.start < kept[-1].end:
                continue
            kept.append(c)
        return kept

    def _assign_enum(self, slots: list[Slot]) -> None:
        def cands(slot: Slot) -> list[Candidate]:
            return self._enum_mentions(list(slot.schema.get("enum") or []))

        self._pick(slots, cands, window=6, leftovers_to_optional=True)

    def _assign_bool(self, slots: list[Slot]) -> None:
        for slot in slots:
            cues = [w for w in slot.name_words if w not in STOPWORDS or len(w) > 3]
            cues += _description_cues(slot.description)
            cues = [c for c in cues if c not in NAME_FILLER]
            if not cues:
                continue
            found = 0
            negative = 0
            joined = [a + b for a, b in zip(self.tokens, self.tokens[1:], strict=False)]
            for cue in dict.fromkeys(cues):
                hits = [i for i, t in enumerate(self.tokens) if _stem_match(cue, t)]
                hits += [i for i, t in enumerate(joined) if t == cue]
                if not hits:
                    continue
                if all(negated(self.tokens, i) for i in hits):
                    negative += 1
                else:
                    found += 1
            distinct = len(dict.fromkeys(cues))
            if found and found * 2 >= distinct:
                slot.value, slot.filled = True, True
            elif negative:
                slot.value, slot.filled = False, True

    def _number_ok(self, slot: Slot, n: NumberSpan) -> bool:
        s = slot.schema
        if s.get("type") == "integer" and not n.is_int:
            return False
        v = n.value
        if "minimum" in s and v < s["minimum"]:
            return False
        if "maximum" in s and v > s["maximum"]:
            return False
        if "exclusiveMinimum" in s and v <= s["exclusiveMinimum"]:
            return False
        if "exclusiveMaximum" in s and v >= s["exclusiveMaximum"]:
            return False
        return True

    def _assign_number(self, slots: list[Slot]) -> None:
        def cands(slot: Slot) -> list[Candidate]:
            out = []
            for n in self.numbers:
                if not self._number_ok(slot, n):
                    continue
                value: Any = int(n.value) if n.is_int else n.value
                out.append(Candidate(value, n.start, n.end))
            return out

        self._pick(slots, cands, window=5)

    def _name_candidates(self) -> list[Candidate]:
        out: list[Candidate] = []
        toks = self.tokens

        def take(i: int, strict: bool) -> Candidate | None:
            words: list[str] = []
            j = i
            while j < len(toks) and len(words) < 3:
                t = toks[j]
                if t in STOPWORDS or is_number_word(t) or not t.isalpha() and "'" not in t:
                    break
                if strict and t.endswith(("ing", "ed", "ly")):
                    break
                words.append(t)
                j += 1
            if not words:
                return None
            return Candidate(" ".join(w.capitalize() for w in words), i, j)

        for cues, strict in ((NAME_STRONG_CUES, False), (NAME_WEAK_CUES, True)):
            for cue in cues:
                k = len(cue)
                for i in range(len(toks) - k + 1):
                    if tuple(toks[i : i + k]) == cue:
                        c = take(i + k, strict)
                        if c is not None:
                            out.append(Candidate(c.value, i, c.end, {"strong": not strict}))
        # "jason is twenty years old", "david here", "sarah speaking"
        for i in range(min(len(toks) - 1, 3)):
            t = toks[i]
            if toks[i + 1] in NAME_AFTER_CUES and t.isalpha() and t not in STOPWORDS:
                if i == 0 or toks[i - 1] in ("hi", "hello", "hey", "yes", "yeah", "oh", "um"):
                    out.append(Candidate(t.capitalize(), i, i + 1, {"strong": False}))
        out.sort(key=lambda c: (not c.extra.get("strong"), c.start))
        return out

    def _assign_name(self, slots: list[Slot]) -> None:
        names = self._name_candidates()

        def cands(slot: Slot) -> list[Candidate]:
            words = set(slot.name_words)
            out = []
            for c in names:
                parts = str(c.value).split()
                if words & {"first", "given", "forename"}:
                    out.append(Candidate(parts[0], c.start, c.end))
                elif words & {"last", "family", "surname"}:
                    if len(parts) > 1:
                        out.append(Candidate(parts[-1], c.start, c.end))
                else:
                    out.append(c)
            return out

        # several name fields may share one full name (first/last): do not consume
        if any(set(s.name_words) & {"first", "last", "given", "family", "surname"} for s in slots):
            for slot in slots:
                found = cands(slot)
                if found:
                    slot.value, slot.filled = found[0].value, True
            return
        self._pick(slots, cands, window=10)

    def _phrase_after_cue(
        self, slot: Slot, max_words: int = 8, breaks: bool = True
    ) -> Candidate | None:
        toks = self.tokens
        for p in self._cue_positions(slot):
            if p in self.consumed:
                continue
            j = p + 1
            for k in range(j, min(j + 4, len(toks))):
                if toks[k] in ("is", "was", "are", "were", "'s"):
                    j = k + 1
                    break
            while j < len(toks) and toks[j] in LINKING:
                j += 1
            words = []
            e = j
            stop = CLAUSE_BREAKS if breaks else {"but", "so", "because", "then", "please"}
            while e < len(toks) and len(words) < max_words and toks[e] not in stop:
                words.append(toks[e])
                e += 1
            if words:
                return Candidate(" ".join(words), p, e)
        return None

    def _assign_string(self, slots: list[Slot]) -> None:
        for slot in slots:
            cand = self._phrase_after_cue(slot)
            if cand is not None:
                self._set(slot, cand)

    def _assign_text(self, slots: list[Slot]) -> None:
        for slot in slots:
            if self.text.strip():
                slot.value, slot.filled = self.text.strip(), True

    def _assign_object(self, slots: list[Slot]) -> None:
        for slot in slots:
            if not slot.optional:
                slot.value, slot.filled = {}, True

    def _assign_other(self, slots: list[Slot]) -> None:
        return None

    def _assign_array(self, slots: list[Slot]) -> None:
        for slot in slots:
            items, _ = unwrap_optional(slot.schema.get("items") or {}, self.root)
            values: list[Any] = []
            if isinstance(items.get("enum"), list):
                seen: list[Any] = []
                for c in self._enum_mentions(items["enum"]):
                    if c.value not in seen:
                        seen.append(c.value)
                values = seen
            elif items.get("type") in ("integer", "number"):
                positions = self._cue_positions(slot)
                for n in self.numbers:
                    near = any(abs(n.start - p) <= 8 for p in positions)
                    if near and (items.get("type") == "number" or n.is_int):
                        if not any(i in self.consumed for i in range(n.start, n.end)):
                            values.append(int(n.value) if n.is_int else n.value)
            elif items.get("type") == "object" or items.get("properties"):
                values = self._object_items(items)
            elif items.get("type") in ("string", None):
                cand = self._phrase_after_cue(slot, max_words=16, breaks=False)
                if cand is not None:
                    values = _split_list(str(cand.value))
            max_items = slot.schema.get("maxItems")
            if isinstance(max_items, int):
                values = values[:max_items]
            if values:
                slot.value, slot.filled = values, True
            elif not slot.optional:
                slot.value, slot.filled = [], True

    def _object_items(self, items: dict[str, Any]) -> list[Any]:
        clauses: list[list[str]] = [[]]
        for i, t in enumerate(self.tokens):
            if i in self.consumed:
                continue  # already a value of another field
            if t in ("and", "then", "also", "plus") and clauses[-1]:
                clauses.append([])
            else:
                clauses[-1].append(t)
        out = []
        for clause in clauses:
            if not clause:
                continue
            sub = SchemaFiller(
                items, " ".join(clause), default_year=self.default_year, root=self.root
            )
            value = sub.fill()
            if any(s.filled and s.kind != "const" for s in sub.slots):
                _fill_leftover_strings(sub, value, clause)
                out.append(value)
        return out


def _fill_leftover_strings(sub: SchemaFiller, value: Any, clause: list[str]) -> None:
    """In a list item, an unfilled required plain string gets the clause's remaining words."""
    if not isinstance(value, dict):
        return
    used = set(sub.consumed)
    words = [
        t
        for i, t in enumerate(clause)
        if i not in used and t not in STOPWORDS and not is_number_word(t)
    ]
    for slot in sub.slots:
        if len(slot.path) == 1 and not slot.filled and slot.kind in ("string", "name") and words:
            if not slot.optional:
                value[slot.path[0]] = " ".join(words)


def _enum_word_match(word: str, token: str) -> bool:
    return (
        word == token or token in (word + "s", word + "es") or word in (token + "s", token + "es")
    )


def _split_list(phrase: str) -> list[str]:
    parts = re.split(r",|\band\b|\bor\b", phrase)
    return [p.strip() for p in parts if p.strip()]


def fill_schema(schema: dict[str, Any], text: str, *, default_year: int | None = None) -> Any:
    """Fill a JSON schema from text with the baseline's generic rules."""
    return SchemaFiller(schema, text, default_year=default_year).fill()
