"""Spoken-English text helpers: tokens, numbers, ordinals, dates, times and digit strings."""

from __future__ import annotations

import re
from dataclasses import dataclass

UNITS: dict[str, int] = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
TEENS: dict[str, int] = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS: dict[str, int] = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
SCALES: dict[str, int] = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 10**9}
ORDINAL_UNITS: dict[str, int] = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
}
ORDINAL_TEENS: dict[str, int] = {
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
}
ORDINAL_TENS: dict[str, int] = {
    "twentieth": 20,
    "thirtieth": 30,
    "fortieth": 40,
    "fiftieth": 50,
    "sixtieth": 60,
    "seventieth": 70,
    "eightieth": 80,
    "ninetieth": 90,
}
MONTHS: dict[str, int] = {
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
# Month names that are also common words: only a month when a day or year is next to them.
AMBIGUOUS_MONTHS = {"may", "march", "mar", "jan", "dec", "sep", "oct", "nov", "aug", "jun", "jul"}
NEGATIONS = {
    "not",
    "no",
    "never",
    "without",
    "don't",
    "doesn't",
    "isn't",
    "aren't",
    "wasn't",
    "weren't",
    "won't",
    "can't",
    "cannot",
    "didn't",
    "nothing",
    "nor",
    "neither",
    "non",
}

_TOKEN_RE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{4}"
    r"|\d+(?:[.:,]\d+)*(?:st|nd|rd|th|am|pm)?|[a-z]+(?:'[a-z]+)?"
)


def tokenize(text: str) -> list[str]:
    """Split text into lower-case word and number tokens."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"\b([ap])\.\s?m\.?", r"\1m", text)
    text = re.sub(r"\b([ap]) m\b", r"\1m", text)
    text = text.replace("o'clock", "oclock").replace("o clock", "oclock")
    return _TOKEN_RE.findall(text)


def is_number_word(token: str) -> bool:
    """Tell whether a token is a spoken or written number (cardinal or ordinal)."""
    return (
        token in UNITS
        or token in TEENS
        or token in TENS
        or token in SCALES
        or token in ORDINAL_UNITS
        or token in ORDINAL_TEENS
        or token in ORDINAL_TENS
        or token == "oh"
        or bool(re.fullmatch(r"\d+(?:[.,]\d+)*(?:st|nd|rd|th)?", token))
    )


@dataclass(frozen=True)
class NumberSpan:
    """A number found in a token list: its value, token span and how it was said."""

    value: float
    start: int
    end: int  # exclusive
    ordinal: bool = False
    digits: str = ""  # the digits as spoken, e.g. "oh five" -> "05"
    simple: bool = False  # a single unit, teen or tens word (a building block of years and times)

    @property
    def is_int(self) -> bool:
        """Whether the value is a whole number."""
        return float(self.value).is_integer()


def _digit_token(token: str) -> NumberSpan | None:
    m = re.fullmatch(r"(\d+(?:,\d{3})*(?:\.\d+)?)(st|nd|rd|th)?", token)
    if not m:
        return None
    raw = m.group(1).replace(",", "")
    value = float(raw)
    return NumberSpan(value, 0, 1, ordinal=bool(m.group(2)), digits=raw.split(".")[0])


def find_numbers(tokens: list[str]) -> list[NumberSpan]:
    """Group tokens into numbers: 'thirty five', 'a hundred and two', '3rd', 'three point five'."""
    spans: list[NumberSpan] = []
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        dig = _digit_token(tok)
        if dig is not None:
            spans.append(NumberSpan(dig.value, i, i + 1, dig.ordinal, dig.digits))
            i += 1
            continue
        starts_with_a = tok == "a" and i + 1 < n and tokens[i + 1] in ("hundred", "thousand")
        if not (
            starts_with_a
            or tok in UNITS
            or tok in TEENS
            or tok in TENS
            or tok in ORDINAL_UNITS
            or tok in ORDINAL_TEENS
            or tok in ORDINAL_TENS
        ):
            i += 1
            continue
        start = i
        total = 0
        current = 0
        last = ""  # kind of the last consumed token: unit, teen, tens, scale, ordinal
        ordinal = False
        j = i
        if starts_with_a:
            current = 1
            last = "unit"
            j += 1
        while j < n:
            t = tokens[j]
            if t in UNITS or t in ORDINAL_UNITS:
                if last in ("", "scale") or (last == "tens" and current % 10 == 0):
                    current += UNITS.get(t, ORDINAL_UNITS.get(t, 0))
                    ordinal = t in ORDINAL_UNITS
                    last = "unit"
                    j += 1
                    if ordinal:
                        break
                    continue
                break
            if t in TEENS or t in ORDINAL_TEENS:
                if last in ("", "scale"):
                    current += TEENS.get(t, ORDINAL_TEENS.get(t, 0))
                    ordinal = t in ORDINAL_TEENS
                    last = "teen"
                    j += 1
                    if ordinal:
                        break
                    continue
                break
            if t in TENS or t in ORDINAL_TENS:
                if last in ("", "scale"):
                    current += TENS.get(t, ORDINAL_TENS.get(t, 0))
                    ordinal = t in ORDINAL_TENS
                    last = "tens"
                    j += 1
                    if ordinal:
                        break
                    continue
                break
            if t in SCALES and last in ("unit", "teen", "tens"):
                scale = SCALES[t]
                if scale == 100:
                    current = (current or 1) * 100
                else:
                    total += (current or 1) * scale
                    current = 0
                last = "scale"
                j += 1
                # "a hundred and two": swallow "and" when a number follows
                if (
                    j + 1 < n
                    and tokens[j] == "and"
                    and (tokens[j + 1] in UNITS or tokens[j + 1] in TEENS or tokens[j + 1] in TENS)
                ):
                    j += 1
                continue
            break
        if j == start or last == "":
            i += 1
            continue
        value = float(total + current)
        # "three point five"
        if not ordinal and j + 1 < n and tokens[j] == "point" and tokens[j + 1] in UNITS:
            k = j + 1
            frac = ""
            while k < n and tokens[k] in UNITS:
                frac += str(UNITS[tokens[k]])
                k += 1
            value = float(f"{int(value)}.{frac}")
            j = k
        simple = j - start == 1 and tokens[start] != "a"
        spans.append(
            NumberSpan(
                value, start, j, ordinal, str(int(value)) if value.is_integer() else "", simple
            )
        )
        i = j
    return _merge_oh(tokens, spans)


def _merge_oh(tokens: list[str], spans: list[NumberSpan]) -> list[NumberSpan]:
    """Turn 'oh' between or before digits into zero spans ('five oh two' -> 5, 0, 2)."""
    by_start = {s.start for s in spans}
    by_end = {s.end for s in spans}
    extra = []
    for idx, tok in enumerate(tokens):
        if tok in ("oh", "o") and (idx + 1 in by_start or idx in by_end):
            extra.append(NumberSpan(0, idx, idx + 1, digits="0", simple=True))
    return sorted(spans + extra, key=lambda s: s.start)


def digit_runs(tokens: list[str], numbers: list[NumberSpan]) -> list[tuple[str, int, int]]:
    """Join adjacent numbers into digit strings ('five five five one two' -> '55512')."""
    runs: list[tuple[str, int, int]] = []
    cur = ""
    start = end = -1
    for span in numbers:
        if not span.digits or span.ordinal:
            if cur:
                runs.append((cur, start, end))
            cur = ""
            continue
        gap = tokens[end : span.start] if cur else []
        if cur and all(t in ("dash", "hyphen") for t in gap):
            cur += span.digits
            end = span.end
        else:
            if cur:
                runs.append((cur, start, end))
            cur, start, end = span.digits, span.start, span.end
    if cur:
        runs.append((cur, start, end))
    return runs


@dataclass(frozen=True)
class DateSpan:
    """A calendar date found in tokens (year may be missing)."""

    year: int | None
    month: int
    day: int
    start: int
    end: int


@dataclass(frozen=True)
class TimeSpan:
    """A time of day found in tokens."""

    hour: int
    minute: int
    start: int
    end: int


def _number_at(numbers: list[NumberSpan], index: int) -> NumberSpan | None:
    for s in numbers:
        if s.start == index:
            return s
    return None


def _year_at(tokens: list[str], numbers: list[NumberSpan], index: int) -> tuple[int, int] | None:
    """Read a year starting at token index: '2027', 'two thousand twenty seven', 'twenty twenty seven'."""
    first = _number_at(numbers, index)
    if first is None or first.ordinal or not first.is_int:
        return None
    v = int(first.value)
    if 1000 <= v <= 2999:
        return v, first.end
    if 10 <= v <= 99 and first.end - first.start <= 1:
        second = _number_at(numbers, first.end)
        if second is not None and not second.ordinal and second.is_int:
            w = int(second.value)
            if second.digits == "0":  # "twenty oh five"
                third = _number_at(numbers, second.end)
                if third is not None and third.is_int and int(third.value) < 10:
                    return v * 100 + int(third.value), third.end
            if 10 <= w <= 99:
                return v * 100 + w, second.end
    return None


def find_dates(tokens: list[str], numbers: list[NumberSpan]) -> list[DateSpan]:
    """Find dates: 'march third twenty twenty seven', 'the third of march', '2027-03-03'."""
    dates: list[DateSpan] = []
    for idx, tok in enumerate(tokens):
        m = re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", tok)
        if m:
            dates.append(DateSpan(int(m.group(1)), int(m.group(2)), int(m.group(3)), idx, idx + 1))
            continue
        m = re.fullmatch(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})", tok)
        if m:
            dates.append(DateSpan(int(m.group(3)), int(m.group(1)), int(m.group(2)), idx, idx + 1))
            continue
        if tok not in MONTHS:
            continue
        month = MONTHS[tok]
        # day first: "[the] third [of] march [twenty twenty seven]"
        k = idx - 1
        if k >= 0 and tokens[k] == "of":
            k -= 1
        before = next((s for s in numbers if s.end == k + 1), None)
        if (
            before is not None
            and before.is_int
            and 1 <= before.value <= 31
            and (before.ordinal or tokens[idx - 1] == "of" or tok not in AMBIGUOUS_MONTHS)
        ):
            year = _year_at(tokens, numbers, idx + 1)
            start = (
                before.start - 1
                if before.start > 0 and tokens[before.start - 1] == "the"
                else before.start
            )
            if year:
                dates.append(DateSpan(year[0], month, int(before.value), start, year[1]))
            else:
                dates.append(DateSpan(None, month, int(before.value), start, idx + 1))
            continue
        # month first: "march [the] third [, twenty twenty seven]"
        j = idx + 1
        if j < len(tokens) and tokens[j] == "the":
            j += 1
        day_span = _number_at(numbers, j)
        if day_span is not None and day_span.is_int and 1 <= day_span.value <= 31:
            # "march twenty twenty seven": a year, not a day, when no ordinal follows
            year_only = _year_at(tokens, numbers, j)
            if year_only and not day_span.ordinal and day_span.value >= 10:
                after = _year_at(tokens, numbers, day_span.end)
                if after is None:
                    dates.append(DateSpan(year_only[0], month, 1, idx, year_only[1]))
                    continue
            k = day_span.end
            if k < len(tokens) and tokens[k] in ("of", "in"):
                k += 1
            year = _year_at(tokens, numbers, k)
            if year:
                dates.append(DateSpan(year[0], month, int(day_span.value), idx, year[1]))
            else:
                dates.append(DateSpan(None, month, int(day_span.value), idx, day_span.end))
            continue
        # month and year only: "june twenty twenty six", "in june 2026"
        year = _year_at(tokens, numbers, idx + 1)
        if year:
            dates.append(DateSpan(year[0], month, 1, idx, year[1]))
    return [d for d in dates if _valid_date(d)]


def _valid_date(d: DateSpan) -> bool:
    import datetime as _dt

    try:
        _dt.date(d.year or 2000, d.month, d.day)
    except ValueError:
        return False
    return True


_DAYPART_PM = {"afternoon", "evening", "tonight", "night"}


def find_times(tokens: list[str], numbers: list[NumberSpan], loose: bool = False) -> list[TimeSpan]:
    """Find times of day: 'three thirty pm', 'ten oclock', 'half past two', 'noon', '15:30'.

    With loose=True a bare 'at three' or 'at three thirty' also counts as a time.
    """
    times: list[TimeSpan] = []
    n = len(tokens)
    used: set[int] = set()

    def ampm_at(k: int) -> tuple[str | None, int]:
        if k < n and tokens[k] in ("am", "pm"):
            return tokens[k], k + 1
        if (
            k + 2 < n
            and tokens[k] == "in"
            and tokens[k + 1] == "the"
            and tokens[k + 2]
            in (
                "morning",
                "afternoon",
                "evening",
            )
        ):
            return ("am" if tokens[k + 2] == "morning" else "pm"), k + 3
        if k < n and tokens[k] in ("tonight",):
            return "pm", k + 1
        return None, k

    def add(hour: int, minute: int, start: int, end: int, ampm: str | None) -> None:
        if ampm == "pm" and hour < 12:
            hour += 12
        if ampm == "am" and hour == 12:
            hour = 0
        if 0 <= hour <= 23 and 0 <= minute <= 59:
            times.append(TimeSpan(hour, minute, start, end))
            used.update(range(start, end))

    for idx, tok in enumerate(tokens):
        if idx in used:
            continue
        m = re.fullmatch(r"(\d{1,2}):(\d{2})(am|pm)?", tok)
        if m:
            ampm = m.group(3)
            if ampm is None:
                ampm, end = ampm_at(idx + 1)
            else:
                end = idx + 1
            add(int(m.group(1)), int(m.group(2)), idx, end, ampm)
            continue
        m = re.fullmatch(r"(\d{1,2})(am|pm)", tok)
        if m:
            add(int(m.group(1)), 0, idx, idx + 1, m.group(2))
            continue
        if tok in ("noon", "midday"):
            add(12, 0, idx, idx + 1, None)
            continue
        if tok == "midnight":
            add(0, 0, idx, idx + 1, None)
            continue
        # "half past three", "quarter to four", "ten past six"
        if tok in ("past", "to", "after", "before") and idx > 0 and idx + 1 < n:
            hour_span = _number_at(numbers, idx + 1)
            prev = tokens[idx - 1]
            minutes = {"half": 30, "quarter": 15}.get(prev)
            mstart = idx - 1
            if prev == "quarter" and idx > 1 and tokens[idx - 2] == "a":
                mstart = idx - 2
            if minutes is None:
                prev_span = next((s for s in numbers if s.end == idx), None)
                if prev_span is None and prev == "minutes":
                    prev_span = next((s for s in numbers if s.end == idx - 1), None)
                if prev_span is not None and prev_span.is_int and 0 < prev_span.value < 60:
                    minutes = int(prev_span.value)
                    mstart = prev_span.start
            if (
                minutes is not None
                and hour_span is not None
                and hour_span.is_int
                and 1 <= hour_span.value <= 12
                and (
                    prev in ("half", "quarter", "minutes")
                    or tok == "past"
                    or (tok == "to" and minutes in (5, 10, 20, 25))
                )
            ):
                hour = int(hour_span.value)
                if tok in ("to", "before"):
                    hour, minutes = (hour - 1) % 12 or 12, 60 - minutes
                ampm, end = ampm_at(hour_span.end)
                add(hour, minutes, mstart, end, ampm)
                continue
        span = _number_at(numbers, idx)
        if span is None or span.ordinal or not span.is_int or not 0 <= span.value <= 23:
            continue
        if span.end - span.start > 1 and span.value > 12:
            continue  # "twenty five" is no hour
        hour = int(span.value)
        k = span.end
        minute = 0
        if k < n and tokens[k] == "oclock":
            ampm, end = ampm_at(k + 1)
            add(hour, 0, idx, end, ampm)
            continue
        minute_span = _number_at(numbers, k)
        if minute_span is not None and minute_span.is_int and not minute_span.ordinal:
            if minute_span.digits == "0":  # "five oh five"
                nxt = _number_at(numbers, minute_span.end)
                if nxt is not None and nxt.is_int and nxt.value < 10:
                    minute, k = int(nxt.value), nxt.end
            elif 10 <= minute_span.value <= 59:
                minute, k = int(minute_span.value), minute_span.end
        ampm, end = ampm_at(k)
        if ampm is not None and hour <= 12:
            add(hour, minute, idx, end, ampm)
            continue
        if (
            loose
            and idx > 0
            and tokens[idx - 1] in ("at", "around", "by", "from", "until")
            and hour <= 23
        ):
            add(hour, minute, idx - 1, k, None)
    return times


def negated(tokens: list[str], index: int, window: int = 3) -> bool:
    """Whether the token at index is preceded by a negation within a few tokens."""
    for k in range(max(0, index - window), index):
        if tokens[k] in NEGATIONS or tokens[k].endswith("n't"):
            return True
    return False
