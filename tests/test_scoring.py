"""Unit tests for audio_evals.scoring (one or more tests per rule)."""

import json
import random
import tomllib
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from audio_evals.scoring import (
    Compare,
    Exact,
    FieldScore,
    Fuzzy,
    Ignore,
    ListCount,
    Multiset,
    Outcome,
    ScoringConfig,
    Temporal,
    Text,
    Tolerance,
    field_paths,
    normalize_text,
    presence_counts,
    register_comparator,
    render_value,
    score_fields,
    summarize_fields,
    text_similarity,
    unregister_comparator,
)

# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


class Status(Enum):
    OPEN = "open"
    CLOSED = "closed"


class Level(IntEnum):
    LOW = 1
    HIGH = 2


class Person(BaseModel):
    first_name: str
    last_name: str | None = None
    phone: str | None = None


class Item(BaseModel):
    name: str
    quantity: int
    price: float | None = None


class Call(BaseModel):
    caller: Person
    callback: Person | None = None
    day: date
    at: time | None = None
    status: Status
    priority: Literal["low", "high"]
    tags: list[str] = []
    items: list[Item] = []
    notes: str | None = None


def make_call(**overrides: object) -> Call:
    data: dict[str, object] = {
        "caller": Person(first_name="Jason", last_name="Miller", phone="555-0100"),
        "day": date(2024, 3, 1),
        "at": time(9, 30),
        "status": Status.OPEN,
        "priority": "high",
        "tags": ["billing", "urgent"],
        "items": [Item(name="apple", quantity=2, price=1.5), Item(name="pear", quantity=1)],
        "notes": "call back tomorrow",
    }
    data.update(overrides)
    return Call(**data)


def by_field(rows: list[FieldScore]) -> dict[str, FieldScore]:
    return {r.field: r for r in rows}


def one(model_cls: type[BaseModel], expected: object, predicted: object, **kw: object):
    """Score a single-field model ``M(v=...)`` and return its only row."""
    e = model_cls(v=expected)
    p = None if predicted is _NONE else model_cls(v=predicted)
    rows = score_fields(e, p, **kw)
    assert len(rows) == 1
    return rows[0]


_NONE = object()


@pytest.fixture
def registry():
    names: list[str] = []

    def register(name: str, fn):
        names.append(name)
        return register_comparator(name, fn)

    yield register
    for name in names:
        unregister_comparator(name)


# --------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------


class S(BaseModel):
    v: str


class OptS(BaseModel):
    v: str | None = None


def test_normalize_text_nfkc_casefold_whitespace_punctuation():
    assert normalize_text("  ＪＡＳＯＮ\t  Miller. ") == "jason miller"
    assert normalize_text("Straße") == "strasse"
    assert normalize_text('"St. Louis,"') == "st louis"
    assert normalize_text("O'Brien, e-mail 3.5!") == "o'brien e-mail 3.5"
    assert normalize_text("$100") == "$100"  # symbols are not punctuation


def test_text_equal_after_normalisation_is_correct():
    row = one(S, "Jason Miller", "  jason   MILLER. ")
    assert (row.correct, row.score, row.kind, row.outcome) == (True, 1.0, "text", "match")


def test_text_near_miss_gets_partial_credit_but_is_not_correct():
    row = one(S, "Jason Miller", "Jason Millar")
    assert row.outcome == Outcome.MISMATCH
    assert not row.correct
    assert 0.8 < row.score < 1.0


def test_text_similarity_is_graded():
    assert text_similarity("Jason Miller", "jason miller") == 1.0
    assert text_similarity("Jason Miller", "Miller Jason") > text_similarity("Jason Miller", "Bob")
    assert text_similarity("abc", "xyz") == 0.0
    assert text_similarity("abc", "...") == 0.0


# --------------------------------------------------------------------------------------
# Exact: int, bool, Enum, Literal, dict
# --------------------------------------------------------------------------------------


class I(BaseModel):  # noqa: E742
    v: int


class B(BaseModel):
    v: bool


class E(BaseModel):
    v: Status


class IE(BaseModel):
    v: Level


class L(BaseModel):
    v: Literal["a", "b"]


class D(BaseModel):
    v: dict[str, int]


@pytest.mark.parametrize(
    ("model_cls", "expected", "predicted", "correct"),
    [
        (I, 3, 3, True),
        (I, 3, 4, False),
        (B, True, True, True),
        (B, True, False, False),
        (E, Status.OPEN, Status.OPEN, True),
        (E, Status.OPEN, Status.CLOSED, False),
        (IE, Level.HIGH, Level.HIGH, True),
        (L, "a", "a", True),
        (L, "a", "b", False),
        (D, {"x": 1}, {"x": 1}, True),
        (D, {"x": 1}, {"x": 2}, False),
    ],
)
def test_exact_types(model_cls, expected, predicted, correct):
    row = one(model_cls, expected, predicted)
    assert row.kind == "exact"
    assert row.correct is correct
    assert row.score == float(correct)
    assert row.outcome == (Outcome.MATCH if correct else Outcome.MISMATCH)


def test_enum_compares_with_raw_value_by_value():
    e = E(v=Status.OPEN)
    raw = E.model_construct(v="open")
    assert score_fields(e, raw)[0].correct
    assert score_fields(raw, e, model=E)[0].correct
    assert not score_fields(e, E.model_construct(v="closed"))[0].correct


def test_exact_is_not_normalised():
    class M(BaseModel):
        v: Annotated[str, Exact()]

    assert one(M, "ABC", "ABC").correct
    row = one(M, "ABC", "abc")
    assert (row.correct, row.score, row.kind) == (False, 0.0, "exact")


# --------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------


class F(BaseModel):
    v: float


class Dec(BaseModel):
    v: Decimal


def test_float_default_relative_tolerance():
    assert one(F, 1000.0, 1000.0005).correct  # rel 5e-7
    row = one(F, 1000.0, 1000.01)
    assert (row.correct, row.score, row.kind) == (False, 0.0, "number")


def test_float_nan_and_infinity():
    assert one(F, float("nan"), float("nan")).correct
    assert not one(F, float("nan"), 1.0).correct
    assert one(F, float("inf"), float("inf")).correct
    assert not one(F, float("inf"), 1e308).correct


def test_decimal_exact_arithmetic():
    assert one(Dec, Decimal("10.00"), Decimal("10")).correct
    assert not one(Dec, Decimal("10.00"), Decimal("10.01")).correct


def test_tolerance_annotation_abs():
    class M(BaseModel):
        v: Annotated[float, Tolerance(abs=0.5)]

    assert one(M, 10.0, 10.4).correct
    assert not one(M, 10.0, 10.6).correct


def test_tolerance_rejects_negative():
    with pytest.raises(ValueError, match="abs"):
        Tolerance(abs=-1)


# --------------------------------------------------------------------------------------
# Dates and times
# --------------------------------------------------------------------------------------


class Dt(BaseModel):
    d: date
    t: time
    ts: datetime


def test_temporal_objects_and_iso_strings():
    e = Dt(d=date(2024, 3, 1), t=time(9, 30), ts=datetime(2024, 3, 1, 9, 30, tzinfo=UTC))
    p = Dt.model_construct(d="2024-03-01", t="09:30:00", ts="2024-03-01T09:30:00Z")
    rows = by_field(score_fields(e, p))
    assert [rows[k].kind for k in ("d", "t", "ts")] == ["date", "time", "datetime"]
    assert all(r.correct for r in rows.values())


def test_temporal_same_instant_other_timezone_is_equal():
    cet = timezone(timedelta(hours=1))
    e = Dt(d=date(2024, 3, 1), t=time(9, 30), ts=datetime(2024, 3, 1, 9, 30, tzinfo=UTC))
    p = e.model_copy(update={"ts": datetime(2024, 3, 1, 10, 30, tzinfo=cet)})
    assert by_field(score_fields(e, p))["ts"].correct


def test_temporal_is_not_string_comparison():
    e = Dt(d=date(2024, 3, 1), t=time(9, 30), ts=datetime(2024, 3, 1, 9, 30))
    p = Dt.model_construct(d="2024-03-02", t="9:30", ts="not a date")
    rows = by_field(score_fields(e, p))
    assert not rows["d"].correct
    assert rows["t"].outcome == Outcome.MISMATCH  # unparseable, not an exception
    assert rows["ts"].score == 0.0


def test_date_comparator_on_str_field_parses_both_sides():
    row = one(S, "2024-03-01", "2024-03-01T00:00:00", config={"fields": {"v": "date"}})
    assert (row.kind, row.correct) == ("date", True)


# --------------------------------------------------------------------------------------
# Optional / presence outcomes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "predicted", "outcome", "correct", "score"),
    [
        (None, None, Outcome.BOTH_EMPTY, True, 1.0),
        (None, "x", Outcome.SPURIOUS, False, 0.0),
        ("x", None, Outcome.MISSED, False, 0.0),
        ("x", "X", Outcome.MATCH, True, 1.0),
        ("x", "y", Outcome.MISMATCH, False, 0.0),
        ("", None, Outcome.BOTH_EMPTY, True, 1.0),
        ("x", "   ", Outcome.MISSED, False, 0.0),
        ("", "x", Outcome.SPURIOUS, False, 0.0),
    ],
)
def test_optional_outcomes(expected, predicted, outcome, correct, score):
    row = one(OptS, expected, predicted)
    assert (row.outcome, row.correct, row.score) == (outcome, correct, score)
    assert row.optional is True


def test_empty_list_counts_as_empty():
    class M(BaseModel):
        v: list[str] = []

    assert score_fields(M(v=[]), M.model_construct(v=None))[0].outcome == Outcome.BOTH_EMPTY
    assert one(M, [], ["a"]).outcome == Outcome.SPURIOUS
    assert one(M, ["a"], []).outcome == Outcome.MISSED


def test_optional_flag():
    class M(BaseModel):
        required: str
        nullable: str | None
        defaulted: str = ""
        tags: list[str]
        nonempty: list[str] = Field(min_length=1)

    row = by_field(score_fields(M(required="a", nullable=None, tags=[], nonempty=["x"]), None))
    assert {k: r.optional for k, r in row.items()} == {
        "required": False,
        "nullable": True,
        "defaulted": True,
        "tags": True,
        "nonempty": False,
    }


# --------------------------------------------------------------------------------------
# list[scalar] as multiset
# --------------------------------------------------------------------------------------


class Tags(BaseModel):
    v: list[str]


def test_multiset_is_order_free_and_normalised():
    row = one(Tags, ["Billing", "urgent"], ["URGENT", "billing."])
    assert (row.kind, row.correct, row.score, row.outcome) == ("multiset", True, 1.0, "match")


def test_multiset_f1_and_duplicates():
    row = one(Tags, ["a", "b"], ["b", "c", "d"])
    assert not row.correct
    assert row.score == pytest.approx(2 * 1 / 5)
    dup = one(Tags, ["a", "a"], ["a"])
    assert not dup.correct
    assert dup.score == pytest.approx(2 / 3)


def test_multiset_of_enums_sets_and_tuples():
    class M(BaseModel):
        enums: list[Status]
        ints: set[int]
        floats: tuple[float, ...]

    e = M(enums=[Status.OPEN, Status.CLOSED], ints={1, 2}, floats=(1.0, 2.0))
    p = M.model_construct(enums=["closed", Status.OPEN], ints={2, 1}, floats=(2.0000001, 1.0))
    rows = score_fields(e, p)
    assert [(r.kind, r.correct) for r in rows] == [("multiset", True)] * 3


def test_multiset_element_annotation():
    class M(BaseModel):
        v: list[Annotated[str, Fuzzy(threshold=0.8)]]

    row = one(M, ["Jason Miller", "Anna"], ["anna", "Jason Millar"])
    assert row.correct


def test_multiset_config_element_rule_and_scalar_shortcut():
    cfg = {"fields": {"v": {"comparator": "multiset", "element": "exact"}}}
    assert not one(Tags, ["A"], ["a"], config=cfg).correct
    fuzzy = {"fields": {"v": {"comparator": "fuzzy", "threshold": 0.8}}}
    row = one(Tags, ["Jason Miller"], ["Jason Millar"], config=fuzzy)
    assert (row.kind, row.correct) == ("multiset", True)


def test_exact_on_list_is_whole_value_and_order_sensitive():
    row = one(Tags, ["a", "b"], ["b", "a"], config={"fields": {"v": "exact"}})
    assert (row.kind, row.correct) == ("exact", False)


def test_list_count_comparator():
    row = one(Tags, ["a", "b"], ["x", "y"], config={"fields": {"v": "list_count"}})
    assert (row.kind, row.correct, row.score) == ("list_count", True, 1.0)
    row = one(Tags, ["a", "b", "c"], ["x"], config={"fields": {"v": "list_count"}})
    assert (row.correct, row.score) == (False, 0.5)


# --------------------------------------------------------------------------------------
# list[Model]
# --------------------------------------------------------------------------------------


class Row6(BaseModel):
    a: int
    b: int
    c: int
    d: int
    e: int
    f: int


class Table(BaseModel):
    rows: list[Row6]


def _r(*values: int) -> Row6:
    return Row6(**dict(zip("abcdef", values, strict=True)))


def test_list_of_models_uses_optimal_not_greedy_assignment():
    e1, e2 = _r(1, 1, 1, 1, 1, 1), _r(3, 3, 3, 1, 0, 0)
    p1, p2 = _r(1, 1, 1, 1, 0, 0), _r(1, 1, 1, 2, 2, 2)
    # similarities: e1-p1 4/6, e1-p2 3/6, e2-p1 3/6, e2-p2 0.
    # Greedy takes e1-p1 first (total 4/6); the optimum pairs e1-p2 and e2-p1 (total 1).
    rows = by_field(score_fields(Table(rows=[e1, e2]), Table(rows=[p1, p2])))
    assert rows["rows[].d"].expected == [1, 1]
    assert rows["rows[].d"].predicted == [2, 1]  # e1 <- p2, e2 <- p1
    mean_sim = sum(rows[f"rows[].{k}"].score for k in "abcdef") / 6
    assert mean_sim == pytest.approx(0.5)


def test_list_of_models_rows_count_and_aggregation():
    e = make_call()
    p = make_call(
        items=[
            Item(name="Pear", quantity=1),
            Item(name="apples", quantity=2, price=1.5),
            Item(name="plum", quantity=9),
        ]
    )
    rows = by_field(score_fields(e, p))
    count = rows["items"]
    assert (count.kind, count.correct, count.outcome) == ("list[model]", False, "mismatch")
    assert count.score == pytest.approx(2 * 2 / 5)
    name = rows["items[].name"]
    assert name.kind == "text"
    assert name.expected == ["apple", "pear", None]
    assert name.predicted == ["apples", "Pear", "plum"]
    assert not name.correct
    assert name.outcome == Outcome.MISMATCH
    # mean over slots: apple~apples (partial), pear (1.0), unmatched plum (spurious, 0)
    assert name.score == pytest.approx((text_similarity("apple", "apples") + 1.0 + 0.0) / 3)
    price = rows["items[].price"]
    assert price.expected == [1.5, None, None]
    assert price.predicted == [1.5, None, None]
    # the spurious item has no price either: that slot is both_empty, so price is correct
    assert (price.correct, price.score, price.outcome) == (True, 1.0, Outcome.MATCH)


def test_list_of_models_missed_and_spurious_items():
    e = make_call()
    rows = by_field(score_fields(e, make_call(items=[])))
    assert rows["items"].outcome == Outcome.MISSED
    assert rows["items[].name"].outcome == Outcome.MISSED
    assert rows["items[].name"].predicted == [None, None]
    assert rows["items[].price"].outcome == Outcome.MISSED  # one missed, one both empty
    assert rows["items[].price"].score == pytest.approx(0.5)

    rows = by_field(score_fields(make_call(items=[]), e))
    assert rows["items"].outcome == Outcome.SPURIOUS
    assert rows["items[].quantity"].outcome == Outcome.SPURIOUS
    assert not rows["items[].quantity"].correct


def test_list_of_models_both_empty():
    rows = by_field(score_fields(make_call(items=[]), make_call(items=[])))
    for key in ("items", "items[].name", "items[].quantity", "items[].price"):
        assert (rows[key].outcome, rows[key].correct, rows[key].score) == ("both_empty", True, 1.0)


def test_list_of_models_is_order_independent():
    items = [Item(name=n, quantity=i, price=None) for i, n in enumerate(["a", "b", "a", "c"])]
    e = make_call(items=items)
    p = make_call(items=[Item(name="A", quantity=0), Item(name="b", quantity=9)])
    base = [(r.field, r.correct, r.score, r.outcome) for r in score_fields(e, p)]
    rng = random.Random(0)
    for _ in range(10):
        shuffled_e = make_call(items=rng.sample(items, len(items)))
        shuffled_p = make_call(items=rng.sample(p.items, len(p.items)))
        got = [
            (r.field, r.correct, r.score, r.outcome) for r in score_fields(shuffled_e, shuffled_p)
        ]
        assert got == base


def test_nested_lists_of_models():
    class Part(BaseModel):
        sku: str

    class Line(BaseModel):
        label: str
        parts: list[Part] = []

    class Order(BaseModel):
        lines: list[Line]

    e = Order(lines=[Line(label="x", parts=[Part(sku="1"), Part(sku="2")])])
    p = Order(lines=[Line(label="x", parts=[Part(sku="2")])])
    rows = by_field(score_fields(e, p))
    assert list(rows) == ["lines", "lines[].label", "lines[].parts", "lines[].parts[].sku"]
    assert rows["lines[].parts"].score == pytest.approx(2 / 3)
    assert rows["lines[].parts[].sku"].expected == [["1", "2"]]


# --------------------------------------------------------------------------------------
# Nested models, predicted=None, order
# --------------------------------------------------------------------------------------


def test_nested_models_are_flattened_in_schema_order():
    rows = score_fields(make_call(), make_call())
    assert [r.field for r in rows] == [
        "caller.first_name",
        "caller.last_name",
        "caller.phone",
        "callback.first_name",
        "callback.last_name",
        "callback.phone",
        "day",
        "at",
        "status",
        "priority",
        "tags",
        "items",
        "items[].name",
        "items[].quantity",
        "items[].price",
        "notes",
    ]
    assert [r.field for r in rows] == field_paths(Call)
    assert all(r.correct and r.score == 1.0 for r in rows)


def test_same_rows_for_every_case():
    a = score_fields(make_call(), make_call(callback=Person(first_name="x"), items=[]))
    b = score_fields(make_call(items=[]), None)
    assert [r.field for r in a] == [r.field for r in b]


def test_nested_optional_model_none_on_one_side():
    e = make_call(callback=Person(first_name="Ann", phone="1"))
    rows = by_field(score_fields(e, make_call(callback=None)))
    assert rows["callback.first_name"].outcome == Outcome.MISSED
    assert rows["callback.phone"].outcome == Outcome.MISSED
    assert rows["callback.last_name"].outcome == Outcome.BOTH_EMPTY
    assert rows["callback.first_name"].optional  # under an optional model

    rows = by_field(score_fields(make_call(callback=None), e))
    assert rows["callback.first_name"].outcome == Outcome.SPURIOUS
    assert not rows["caller.first_name"].optional


def test_predicted_none_counts_every_expected_field_as_missed():
    e = make_call(notes=None, at=None)
    rows = score_fields(e, None)
    outcomes = {r.field: r.outcome for r in rows}
    assert outcomes["notes"] == outcomes["at"] == Outcome.BOTH_EMPTY
    assert outcomes["callback.first_name"] == Outcome.BOTH_EMPTY
    assert outcomes["caller.first_name"] == outcomes["items"] == Outcome.MISSED
    assert outcomes["items[].name"] == Outcome.MISSED
    assert not any(o == Outcome.SPURIOUS for o in outcomes.values())
    assert sum(r.correct for r in rows) == sum(o == Outcome.BOTH_EMPTY for o in outcomes.values())


def test_model_argument_and_expected_none():
    rows = score_fields(None, make_call(), model=Call)
    assert {r.outcome for r in rows} <= {Outcome.SPURIOUS, Outcome.BOTH_EMPTY}
    with pytest.raises(TypeError, match="model"):
        score_fields(None, None)


class Node(BaseModel):
    name: str
    child: "Node | None" = None
    children: "list[Node]" = []


def test_recursive_model_does_not_recurse_forever():
    n = Node(name="a", child=Node(name="b"), children=[Node(name="c")])
    rows = by_field(score_fields(n, n))
    # a model that refers to itself is compared as a unit where it recurs
    assert {k: r.kind for k, r in rows.items()} == {
        "name": "text",
        "child": "exact",
        "children": "multiset",
    }
    assert all(r.correct for r in rows.values())


# --------------------------------------------------------------------------------------
# Annotated overrides
# --------------------------------------------------------------------------------------


class Annotated_(BaseModel):
    name: Annotated[str, Fuzzy(threshold=0.9)]
    loose: Annotated[str, Fuzzy(threshold=0.5)] | None = None
    price: Annotated[float, Tolerance(abs=0.5)]
    notes: Annotated[str, Ignore()] = ""
    code: Annotated[str, Exact()]
    even: Annotated[int, Compare(lambda e, p: e % 2 == p % 2)]


def test_annotated_overrides():
    e = Annotated_(name="Jason Miller", loose="abc", price=10.0, notes="x", code="AB", even=2)
    p = Annotated_(name="Jason Millar", loose="abd", price=10.4, notes="y", code="ab", even=4)
    rows = by_field(score_fields(e, p))
    assert "notes" not in rows  # Ignore: no row
    assert (rows["name"].kind, rows["name"].correct) == ("fuzzy", True)
    assert rows["name"].score < 1.0
    assert (rows["loose"].kind, rows["loose"].correct) == ("fuzzy", True)
    assert (rows["price"].kind, rows["price"].correct) == ("number", True)
    assert (rows["code"].kind, rows["code"].correct) == ("exact", False)
    assert (rows["even"].kind, rows["even"].correct, rows["even"].score) == ("custom", True, 1.0)


def test_fuzzy_threshold_boundary():
    score = text_similarity("Jason Miller", "Jason Millar")
    assert Fuzzy(threshold=score).compare("Jason Miller", "Jason Millar") == (True, score)
    assert not Fuzzy(threshold=min(1.0, score + 1e-9)).compare("Jason Miller", "Jason Millar")[0]
    with pytest.raises(ValueError, match="threshold"):
        Fuzzy(threshold=1.5)


@pytest.mark.parametrize(
    ("result", "correct", "score"),
    [
        (True, True, 1.0),
        (False, False, 0.0),
        (1.0, True, 1.0),
        (0.7, False, 0.7),
        ((True, 0.6), True, 0.6),
        ((False, 0.9), False, 0.9),
    ],
)
def test_custom_comparator_results(result, correct, score):
    class M(BaseModel):
        v: Annotated[str, Compare(lambda e, p: result)]

    row = one(M, "a", "b")
    assert (row.correct, row.score, row.outcome == Outcome.MATCH) == (correct, score, correct)


def test_custom_comparator_threshold_for_float_results():
    class M(BaseModel):
        v: Annotated[str, Compare(lambda e, p: 0.7, threshold=0.6)]

    assert one(M, "a", "b").correct


def test_custom_comparator_bad_score_names_the_field():
    class M(BaseModel):
        v: Annotated[str, Compare(lambda e, p: 1.3)]

    with pytest.raises(ValueError, match=r"returned score 1\.3") as info:
        one(M, "a", "b")
    assert any("'v'" in note for note in info.value.__notes__)


def test_custom_comparator_only_sees_non_empty_values():
    seen = []

    class M(BaseModel):
        v: Annotated[str | None, Compare(lambda e, p: seen.append((e, p)) or True)] = None

    assert one(M, None, "x").outcome == Outcome.SPURIOUS
    assert one(M, "x", "y").correct
    assert seen == [("x", "y")]


# --------------------------------------------------------------------------------------
# Config overrides
# --------------------------------------------------------------------------------------


class Priced(BaseModel):
    caller: Person
    price: float
    notes: str | None = None
    items: list[Item] = []


def _priced(**kw: object) -> Priced:
    data: dict[str, object] = {
        "caller": Person(first_name="Jason", last_name="Miller", phone="555 0100"),
        "price": 10.0,
        "notes": "hello",
        "items": [Item(name="apple", quantity=1)],
    }
    return Priced(**(data | kw))


def test_config_from_spec_mapping():
    cfg = {
        "fields": {
            "caller.first_name": {"comparator": "fuzzy", "threshold": 0.85},
            "notes": "ignore",
            "price": {"comparator": "number", "abs": 0.01},
        }
    }
    e = _priced()
    p = _priced(caller=Person(first_name="Jasonn", last_name="Miller"), price=10.009, notes="x")
    rows = by_field(score_fields(e, p, config=cfg))
    assert "notes" not in rows
    assert (rows["caller.first_name"].kind, rows["caller.first_name"].correct) == ("fuzzy", True)
    assert (rows["price"].kind, rows["price"].correct) == ("number", True)
    assert not by_field(score_fields(e, _priced(price=10.02), config=cfg))["price"].correct


def test_config_from_toml_with_dotted_keys():
    text = """
    [fields]
    caller.first_name = { comparator = "fuzzy", threshold = 0.85 }
    notes = "ignore"
    "items[].name" = "exact"
    """
    cfg = ScoringConfig.from_mapping(tomllib.loads(text))
    assert dict(cfg.fields) == {
        "caller.first_name": Fuzzy(0.85),
        "notes": Ignore(),
        "items[].name": Exact(),
    }
    rows = by_field(
        score_fields(_priced(), _priced(items=[Item(name="Apple", quantity=1)]), config=cfg)
    )
    assert (rows["items[].name"].kind, rows["items[].name"].correct) == ("exact", False)


def test_config_globs():
    cfg = ScoringConfig({"caller.*": "exact", "items[].*": "ignore"})
    rows = by_field(score_fields(_priced(), _priced(), config=cfg))
    assert {rows[k].kind for k in ("caller.first_name", "caller.last_name", "caller.phone")} == {
        "exact"
    }
    assert "items" in rows
    assert not any(k.startswith("items[]") for k in rows)


def test_config_precedence_exact_key_over_glob_and_specific_glob_over_generic():
    cfg = ScoringConfig(
        {"*": "exact", "caller.*": "fuzzy", "caller.phone": "text", "items": "list_count"}
    )
    rows = by_field(score_fields(_priced(), _priced(), config=cfg))
    assert rows["price"].kind == "exact"
    assert rows["caller.first_name"].kind == "fuzzy"
    assert rows["caller.phone"].kind == "text"
    assert rows["items"].kind == "list_count"


def test_config_wins_over_annotation():
    e = Annotated_(name="Jason Miller", price=10.0, code="AB", even=2)
    p = Annotated_(name="Jason Millar", price=10.4, code="ab", even=3)
    rows = by_field(
        score_fields(e, p, config={"fields": {"name": "text", "code": "text", "price": "number"}})
    )
    assert (rows["name"].kind, rows["name"].correct) == ("text", False)
    assert (rows["code"].kind, rows["code"].correct) == ("text", True)
    assert not rows["price"].correct  # default relative tolerance, not abs=0.5


def test_config_can_treat_nested_model_as_unit_or_ignore_it():
    rows = by_field(score_fields(_priced(), _priced(), config={"fields": {"caller": "exact"}}))
    assert rows["caller"].kind == "exact"
    assert "caller.first_name" not in rows
    rows = by_field(score_fields(_priced(), _priced(), config={"fields": {"caller": "ignore"}}))
    assert not any(k.startswith("caller") for k in rows)


def test_config_custom_callable_in_python():
    def digits(e: str, p: str) -> bool:
        return [c for c in e if c.isdigit()] == [c for c in p if c.isdigit()]

    cfg = ScoringConfig({"caller.phone": digits})
    p = _priced(caller=Person(first_name="Jason", last_name="Miller", phone="(555) 01-00"))
    row = by_field(score_fields(_priced(), p, config=cfg))["caller.phone"]
    assert (row.kind, row.correct) == ("custom", True)


def test_registered_comparator_by_name(registry):
    registry("phone", lambda e, p: e.replace(" ", "") == p.replace("-", ""))
    cfg = {"fields": {"caller.phone": "phone"}}
    p = _priced(caller=Person(first_name="Jason", last_name="Miller", phone="555-0100"))
    row = by_field(score_fields(_priced(), p, config=cfg))["caller.phone"]
    assert (row.kind, row.correct) == ("phone", True)

    registry("half", lambda e, p: 0.5)
    cfg = {"fields": {"caller.phone": {"comparator": "half", "threshold": 0.5}}}
    row = by_field(score_fields(_priced(), p, config=cfg))["caller.phone"]
    assert (row.kind, row.correct, row.score) == ("half", True, 0.5)


def test_register_comparator_errors(registry):
    with pytest.raises(ValueError, match="built-in"):
        register_comparator("exact", lambda e, p: True)
    registry("dup", lambda e, p: True)
    with pytest.raises(ValueError, match="already registered"):
        register_comparator("dup", lambda e, p: False)
    with pytest.raises(ValueError, match="callable"):
        register_comparator("nope", 3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "pattern"),
    [
        ({"caller.first_name": "fuzy"}, r"key 'caller\.first_name'.*unknown comparator 'fuzy'"),
        ({"caller.nickname": "exact"}, r"key 'caller\.nickname' matches no field"),
        ({"zz*": "exact"}, r"key 'zz\*' matches no field"),
        ({"price": {"comparator": "number", "tol": 1}}, r"key 'price'.*does not take \['tol'\]"),
        ({"price": {"abs": 1}}, r"key 'price'.*'comparator'"),
        ({"price": {"comparator": "number", "abs": -1}}, r"key 'price'.*abs"),
        ({"items": "fuzzy"}, r"key 'items'.*cannot be applied to field 'items'"),
        ({"price": "multiset"}, r"key 'price'.*cannot be applied to field 'price'"),
        ({"price": 3}, r"key 'price'"),
    ],
)
def test_config_errors_name_the_key(fields, pattern):
    with pytest.raises(ValueError, match=pattern):
        score_fields(_priced(), _priced(), config={"fields": fields})


def test_config_unknown_top_level_key():
    with pytest.raises(ValueError, match="unknown top-level"):
        ScoringConfig.from_mapping({"feilds": {}})


def test_incompatible_annotation_is_reported():
    class M(BaseModel):
        v: Annotated[int, ListCount()]

    with pytest.raises(ValueError, match="Annotated rule on 'v'"):
        field_paths(M)


def test_config_objects_are_hashable_and_equal():
    a = ScoringConfig({"price": Tolerance(abs=1), "notes": "ignore"})
    b = ScoringConfig.from_mapping(
        {"fields": {"price": {"comparator": "number", "abs": 1}, "notes": "ignore"}}
    )
    assert a == b and hash(a) == hash(b)
    assert ScoringConfig({"v": "text"}).fields == (("v", Text()),)
    assert ScoringConfig({"v": "date"}).fields == (("v", Temporal("date")),)
    assert ScoringConfig({"v": {"comparator": "multiset", "element": "fuzzy"}}).fields == (
        ("v", Multiset(Fuzzy())),
    )


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def test_as_row_renders_stable_strings():
    rows = by_field(score_fields(make_call(), None))
    row = rows["day"].as_row()
    assert row == {
        "field": "day",
        "correct": False,
        "score": 0.0,
        "kind": "date",
        "expected": "2024-03-01",
        "predicted": "",
        "outcome": "missed",
        "optional": False,
    }
    assert rows["at"].as_row()["expected"] == "09:30:00"
    assert rows["status"].as_row()["expected"] == "open"
    assert json.loads(rows["tags"].as_row()["expected"]) == ["billing", "urgent"]
    assert json.loads(rows["items"].as_row()["expected"])[0] == {
        "name": "apple",
        "price": 1.5,
        "quantity": 2,
    }
    assert json.loads(rows["items[].name"].as_row()["predicted"]) == [None, None]
    assert json.dumps(rows["items"].as_row())  # JSON-serialisable


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("x", "x"),
        (True, "true"),
        (3, "3"),
        (1.5, "1.5"),
        (Decimal("1.50"), "1.50"),
        (Status.CLOSED, "closed"),
        (Level.HIGH, "2"),
        (date(2024, 1, 2), "2024-01-02"),
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        ([Status.OPEN, date(2024, 1, 2), None], '["open", "2024-01-02", null]'),
        ({"b", "a"}, '["a", "b"]'),
        ({"k": float("nan")}, '{"k": "nan"}'),
    ],
)
def test_render_value(value, text):
    assert render_value(value) == text


# --------------------------------------------------------------------------------------
# Aggregates
# --------------------------------------------------------------------------------------


class Opt3(BaseModel):
    a: str | None = None
    b: str | None = None
    c: str | None = None
    required: str = "r"


def test_presence_counts_tells_inventor_from_omitter():
    gold = [Opt3(a="x"), Opt3(b="y"), Opt3()]
    inventor = [Opt3(a="x", c="made up"), Opt3(b="y", a="made up"), Opt3(c="made up")]
    omitter = [Opt3(), Opt3(b="y"), Opt3()]
    inv = presence_counts(
        [r for g, p in zip(gold, inventor, strict=True) for r in score_fields(g, p)]
    )
    omi = presence_counts(
        [r for g, p in zip(gold, omitter, strict=True) for r in score_fields(g, p)]
    )
    assert inv["overall"]["recall"] == 1.0 and inv["overall"]["precision"] == pytest.approx(2 / 5)
    assert omi["overall"]["precision"] == 1.0 and omi["overall"]["recall"] == pytest.approx(1 / 2)
    assert "required" not in inv["by_field"]  # only optional fields by default
    assert inv["by_field"]["c"] == {
        "tp": 0,
        "fp": 2,
        "fn": 0,
        "tn": 1,
        "n": 3,
        "precision": 0.0,
        "recall": 1.0,
        "f1": 0.0,
    }
    assert (
        "required" in presence_counts(score_fields(gold[0], None), optional_only=False)["by_field"]
    )


def test_aggregates_accept_dicts_and_dataframes():
    pd = pytest.importorskip("pandas")
    rows = score_fields(make_call(), make_call(notes=None, tags=["billing"]))
    as_dicts = [r.as_row() for r in rows]
    frame = pd.DataFrame(as_dicts)
    assert presence_counts(rows) == presence_counts(as_dicts) == presence_counts(frame)
    assert summarize_fields(rows) == summarize_fields(frame)
    summary = summarize_fields(rows)
    assert list(summary) == field_paths(Call)
    assert summary["notes"]["missed"] == 1
    assert summary["tags"]["accuracy"] == 0.0
    assert summary["tags"]["mean_score"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="lacks column"):
        presence_counts(frame.drop(columns=["outcome"]))


def test_unhashable_custom_callable_works_without_cache():
    class AlwaysEqual:
        def __eq__(self, other):
            return True

        __hash__ = None  # type: ignore[assignment]

        def __call__(self, e, p):
            return True

    row = one(S, "a", "b", config=ScoringConfig({"v": AlwaysEqual()}))
    assert (row.kind, row.correct) == ("custom", True)


def test_very_long_texts_use_exact_word_bag(monkeypatch):
    import audio_evals.scoring as scoring

    monkeypatch.setattr(scoring, "_MAX_WORD_PAIRS", 1)
    # "millar" no longer earns partial word credit, only the exact word "jason" does
    assert text_similarity("Jason Miller", "Jason Millar") == pytest.approx((11 / 12 + 0.5) / 2)
    assert text_similarity("a b c", "c b a") < 1.0


def test_docs_toml_example():
    class Doc(BaseModel):
        caller: Person
        notes: str | None = None
        price: float
        items: list[Item] = []
        tags: list[str] = []

    text = """
    [fields]
    caller.first_name = { comparator = "fuzzy", threshold = 0.85 }
    notes = "ignore"
    price = { comparator = "number", abs = 0.01 }
    "items[].name" = "exact"
    "caller.*" = "text"
    tags = { comparator = "multiset", element = "exact" }
    """
    config = ScoringConfig.from_mapping(tomllib.loads(text))
    kinds = {
        r.field: r.kind
        for r in score_fields(Doc(caller=Person(first_name="a"), price=1), None, config=config)
    }
    assert kinds == {
        "caller.first_name": "fuzzy",
        "caller.last_name": "text",
        "caller.phone": "text",
        "price": "number",
        "items": "list[model]",
        "items[].name": "exact",
        "items[].quantity": "exact",
        "items[].price": "number",
        "tags": "multiset",
    }


def test_user_defined_field_rule_subclass():
    from dataclasses import dataclass

    from audio_evals.scoring import FieldRule

    @dataclass(frozen=True)
    class SameLength(FieldRule):
        kind = "same_length"

        def compare(self, expected, predicted):
            ok = len(expected) == len(predicted)
            return ok, float(ok)

    class M(BaseModel):
        v: Annotated[str, SameLength()]
        tags: Annotated[list[str], SameLength()] = []

    rows = by_field(score_fields(M(v="abc", tags=["a"]), M(v="xyz", tags=["b"])))
    assert (rows["v"].kind, rows["v"].correct) == ("same_length", True)
    assert (rows["tags"].kind, rows["tags"].correct) == ("same_length", True)
