"""Every label of the demo specs is the truth of its sentence (what the TTS voices actually say)."""

from __future__ import annotations

import json
import re
from datetime import time

import pytest
from pydantic import BaseModel

from audio_evals.synth_spec import number_words
from evals.models import SYMPTOMS, AppointmentRequest, Person

from .conftest import REPO

SPECS = REPO / "datasets" / "specs"
_ORDINALS = {
    1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 7: "seventh",
    8: "eighth", 9: "ninth", 10: "tenth", 11: "eleventh", 12: "twelfth", 13: "thirteenth",
    14: "fourteenth", 15: "fifteenth", 16: "sixteenth", 17: "seventeenth", 18: "eighteenth",
    19: "nineteenth", 20: "twentieth", 30: "thirtieth",
}  # fmt: skip
_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_DIGITS = "zero one two three four five six seven eight nine".split()


def ordinal_words(n: int) -> str:
    if n in _ORDINALS:
        return _ORDINALS[n]
    tens, ones = divmod(n, 10)
    return number_words(tens * 10) + " " + _ORDINALS[ones]


def time_phrase(t: time) -> str:
    """How the demo sentences say a time: with a m / p m, or "noon"."""
    if t == time(12, 0):
        return "noon"
    hour = t.hour % 12 or 12
    minute = "" if t.minute == 0 else " " + number_words(t.minute)
    return f"{number_words(hour)}{minute} {'a m' if t.hour < 12 else 'p m'}"


def normalise(text: str) -> str:
    """Lowercase, no punctuation (apostrophes kept), "a m"/"p m" joined into am/pm."""
    text = re.sub(r"[^a-z' ]+", " ", text.lower())
    return " ".join(re.sub(r"\b([ap]) m\b", r"\1m", text).split())


def label_problems(text: str, label: BaseModel) -> list[str]:
    """The ways a label does not follow from its sentence (empty if none)."""
    spoken = " " + normalise(text) + " "
    problems: list[str] = []

    def said(phrase: str) -> bool:
        return f" {normalise(phrase)} " in spoken

    if isinstance(label, Person):
        if not said(label.name):
            problems.append(f"name {label.name!r} not spoken")
        if not said(number_words(label.age)):
            problems.append(f"age {label.age} not spoken as {number_words(label.age)!r}")
        return problems
    assert isinstance(label, AppointmentRequest)
    for part in (label.caller.first_name, label.caller.last_name):
        if part is not None and not said(part):
            problems.append(f"caller name {part!r} not spoken")
    if not said(label.service.value):
        problems.append(f"service {label.service.value!r} not spoken")
    month, day = _MONTHS[label.date.month - 1], ordinal_words(label.date.day)
    if not (said(f"{month} {day}") or said(f"the {day} of {month}")):
        problems.append(f"date {label.date} not spoken as month and ordinal day")
    if label.date.year != 2027 or not said("twenty twenty seven"):
        problems.append("year must be 2027 and spoken")
    if label.time is not None and not said(time_phrase(label.time)):
        problems.append(f"time {label.time} not spoken")
    if label.urgent != (said("urgent") and not said("not urgent")):
        problems.append(f"urgent={label.urgent} but the sentence says otherwise")
    if label.callback_number is not None:
        digits = " ".join(_DIGITS[int(d)] for d in label.callback_number)
        heard = " ".join(w for w in spoken.replace(" oh ", " zero ").split() if w in _DIGITS)
        if digits not in heard:
            problems.append(f"callback number {label.callback_number} not spoken")
    elif said("number") or said("call me"):
        problems.append("a number is spoken but callback_number is null")
    for symptom in SYMPTOMS:
        if said(symptom) != (symptom in label.symptoms):
            problems.append(f"symptom {symptom!r}: spoken and labelled disagree")
    return problems


@pytest.mark.parametrize(
    ("dataset", "model"), [("person", Person), ("appointment", AppointmentRequest)]
)
def test_every_demo_label_follows_from_its_sentence(dataset: str, model: type[BaseModel]) -> None:
    lines = (SPECS / f"{dataset}.utterances.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines
    problems = []
    for n, line in enumerate(lines, start=1):
        row = json.loads(line)
        found = label_problems(row["text"], model.model_validate(row["expected"]))
        problems += [f"line {n}: {p}" for p in found]
    assert problems == []


def test_the_label_check_catches_a_wrong_label() -> None:
    wrong = Person(name="Jason", age=21)
    assert label_problems("Hi, my name is Jason and I am twenty years old.", wrong) == [
        "age 21 not spoken as 'twenty one'"
    ]
    urgent = AppointmentRequest.model_validate(
        {
            "caller": {"first_name": "Tom"},
            "service": "checkup",
            "date": "2027-04-05",
            "urgent": True,
        }
    )
    text = "Hi, I'm Tom. I need a checkup on April fifth, twenty twenty seven. It's not urgent."
    assert label_problems(text, urgent) == ["urgent=True but the sentence says otherwise"]
