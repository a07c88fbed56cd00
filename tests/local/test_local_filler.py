"""Unit tests of the baseline's schema-driven filler, on text (no audio, no server)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from audio_evals.local.filler import fill_schema
from audio_evals.local.textnum import find_dates, find_numbers, find_times, tokenize


def fill(model: type[BaseModel], text: str) -> BaseModel:
    """Fill a pydantic model's schema from text and validate the result with the model."""
    return model.model_validate(fill_schema(model.model_json_schema(), text, default_year=2030))


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("twenty", [20]),
        ("thirty five", [35]),
        ("a hundred and two", [102]),
        ("two thousand twenty seven", [2027]),
        ("one two three", [1, 2, 3]),
        ("three point five", [3.5]),
        ("i am 34", [34]),
        ("nineteen ninety", [19, 90]),
        ("the twenty first", [21]),
    ],
)
def test_numbers(text: str, values: list[float]) -> None:
    assert [n.value for n in find_numbers(tokenize(text))] == values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("march third twenty twenty seven", (2027, 3, 3)),
        ("on the third of march", (None, 3, 3)),
        ("june fifth nineteen ninety", (1990, 6, 5)),
        ("the fifth of june two thousand and six", (2006, 6, 5)),
        ("due 2026-07-14", (2026, 7, 14)),
        ("december the twenty first", (None, 12, 21)),
    ],
)
def test_dates(text: str, expected: tuple) -> None:
    tokens = tokenize(text)
    (d,) = find_dates(tokens, find_numbers(tokens))
    assert (d.year, d.month, d.day) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("three thirty p m", (15, 30)),
        ("at ten o'clock", (10, 0)),
        ("noon", (12, 0)),
        ("half past two in the afternoon", (14, 30)),
        ("quarter to nine", (8, 45)),
        ("at 7:45 pm", (19, 45)),
        ("seven a.m.", (7, 0)),
        ("midnight", (0, 0)),
    ],
)
def test_times(text: str, expected: tuple) -> None:
    tokens = tokenize(text)
    (t,) = find_times(tokens, find_numbers(tokens))
    assert (t.hour, t.minute) == expected


class Person(BaseModel):
    name: str
    age: int


def test_person_from_cue_phrase() -> None:
    assert fill(Person, "my name is david and i am thirty four years old") == Person(
        name="David", age=34
    )


def test_person_from_sentence_subject() -> None:
    assert fill(Person, "jason is twenty years old") == Person(name="Jason", age=20)


def test_required_fields_get_empty_values() -> None:
    assert fill(Person, "good morning") == Person(name="", age=0)


class Priority(enum.StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class Ticket(BaseModel):
    caller_name: str | None = None
    phone_number: str | None = Field(None, description="Callback phone number, digits only")
    priority: Priority
    urgent: bool
    callback_requested: bool | None = None
    channel: Literal["phone", "email", "in_person"] | None = None


def test_enums_booleans_phone() -> None:
    t = fill(
        Ticket,
        "hi this is sarah my phone number is five five five one two three four "
        "it is urgent and the priority is high please call back in person",
    )
    assert t.caller_name == "Sarah"
    assert t.phone_number == "5551234"
    assert t.priority is Priority.high
    assert t.urgent is True
    assert t.callback_requested is True
    assert t.channel == "phone" or t.channel == "in_person"


def test_negated_boolean_and_optional_nulls() -> None:
    t = fill(Ticket, "this is not urgent")
    assert t.urgent is False
    assert t.caller_name is None
    assert t.phone_number is None
    assert t.callback_requested is None
    assert t.channel is None
    assert t.priority is Priority.low  # required enum with no mention: its first value


class Booking(BaseModel):
    date: dt.date
    start_time: dt.time | None = None
    party_size: int | None = Field(None, description="number of people")


def test_date_time_and_number_together() -> None:
    b = fill(
        Booking, "a table for four people on march third twenty twenty seven at three thirty p m"
    )
    assert b == Booking(date=dt.date(2027, 3, 3), start_time=dt.time(15, 30), party_size=4)


def test_date_without_year_uses_default_year() -> None:
    assert fill(Booking, "the third of march at noon").date == dt.date(2030, 3, 3)


class Meeting(BaseModel):
    when: dt.datetime


def test_datetime() -> None:
    assert fill(
        Meeting, "the meeting is at ten o'clock on the fifth of june twenty twenty six"
    ).when == (dt.datetime(2026, 6, 5, 10, 0))


class Address(BaseModel):
    street: str | None = None
    zip_code: str | None = None


class Customer(BaseModel):
    name: str
    address: Address | None = None
    billing: Address


def test_nested_objects() -> None:
    c = fill(Customer, "my name is ann lee my zip code is nine oh two one oh")
    assert c.name == "Ann Lee"
    assert c.address is not None and c.address.zip_code == "90210"
    # both nested objects share the schema; the second finds nothing left
    assert c.billing.zip_code is None


def test_optional_nested_object_is_null_when_nothing_matches() -> None:
    assert fill(Customer, "my name is bob").address is None


class Symptoms(BaseModel):
    symptoms: list[Literal["fever", "cough", "headache", "sore_throat"]]
    allergies: list[str] | None = None


def test_arrays_of_enums_and_words() -> None:
    s = fill(
        Symptoms,
        "i have a fever and a sore throat but no cough my allergies are peanuts and penicillin",
    )
    assert s.symptoms == ["fever", "sore_throat"]
    assert s.allergies == ["peanuts", "penicillin"]


class Item(BaseModel):
    name: str
    quantity: int


class Order(BaseModel):
    items: list[Item]
    delivery_time: dt.time | None = None


def test_array_of_objects() -> None:
    o = fill(Order, "please send two large pizzas and three salads at seven pm")
    assert [i.quantity for i in o.items] == [2, 3]
    assert "pizzas" in o.items[0].name and "salads" in o.items[1].name
    assert o.delivery_time == dt.time(19, 0)


def test_number_constraints_from_schema() -> None:
    class Rating(BaseModel):
        score: int = Field(ge=1, le=5)

    assert fill(Rating, "call me at ten and i give it a four").score == 4


def test_whole_text_field_and_default() -> None:
    class Note(BaseModel):
        summary: str
        language: str = "en"

    n = fill(Note, "the printer on floor two is broken")
    assert n.summary == "the printer on floor two is broken"
    assert n.language == "en"


def test_refs_and_strict_schema_shape() -> None:
    schema = {
        "type": "object",
        "properties": {
            "who": {"$ref": "#/$defs/P"},
            "when": {"anyOf": [{"type": "string", "format": "time"}, {"type": "null"}]},
        },
        "required": ["who", "when"],
        "additionalProperties": False,
        "$defs": {
            "P": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": ["integer", "null"]}},
                "required": ["name", "age"],
            }
        },
    }
    out = fill_schema(schema, "my name is eve")
    assert out == {"who": {"name": "Eve", "age": None}, "when": None}


class Visit(BaseModel):
    appointment_date: dt.date | None = None
    date_of_birth: dt.date | None = None
    phone: str | None = None


def test_uncued_date_goes_to_the_first_optional_date_field() -> None:
    v = fill(Visit, "see you on march third twenty twenty seven")
    assert v.appointment_date == dt.date(2027, 3, 3) and v.date_of_birth is None
    assert v.phone is None  # '2027' is too short to be a phone number without a cue


def test_cue_words_route_values() -> None:
    v = fill(Visit, "born on july fourth nineteen eighty two and the visit is on may second")
    assert v.date_of_birth == dt.date(1982, 7, 4)
    assert v.appointment_date == dt.date(2030, 5, 2)
