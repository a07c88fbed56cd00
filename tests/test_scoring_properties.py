"""Property-based tests for audio_evals.scoring on generated pydantic instances."""

import math
import random
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Annotated, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from audio_evals.scoring import Fuzzy, Outcome, field_paths, score_fields

PROPS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class Color(Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    city: str | None = None


class LineItem(BaseModel):
    sku: str
    qty: int
    unit_price: float | None = None
    tags: list[str] = []


class Order(BaseModel):
    customer: str
    nickname: Annotated[str | None, Fuzzy(threshold=0.8)] = None
    address: Address | None = None
    placed_on: date
    placed_at: time | None = None
    created: datetime | None = None
    color: Color
    kind: Literal["a", "b"]
    amount: Decimal | None = None
    ratio: float
    paid: bool
    codes: set[int] = set()
    colors: list[Color] = []
    items: list[LineItem] = []
    meta: dict[str, int] = {}


class Shipment(BaseModel):
    order: Order
    orders: list[Order] = []
    note: str | None = None


short_text = st.text(max_size=12)
words = st.lists(st.sampled_from(["apple", "Pear", "plum", "kiwi", "fig"]), max_size=3).map(
    " ".join
)
texts = st.one_of(short_text, words)

addresses = st.builds(Address, street=texts, city=st.none() | texts)
line_items = st.builds(
    LineItem,
    sku=texts,
    qty=st.integers(-5, 5),
    unit_price=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    tags=st.lists(texts, max_size=3),
)
orders = st.builds(
    Order,
    customer=texts,
    nickname=st.none() | texts,
    address=st.none() | addresses,
    placed_on=st.dates(),
    placed_at=st.none() | st.times(),
    created=st.none() | st.datetimes(),
    color=st.from_type(Color),
    kind=st.sampled_from(["a", "b"]),
    amount=st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=2),
    ratio=st.floats(),
    paid=st.booleans(),
    codes=st.sets(st.integers(0, 5), max_size=3),
    colors=st.lists(st.from_type(Color), max_size=3),
    items=st.lists(line_items, max_size=4),
    meta=st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
shipments = st.builds(
    Shipment,
    order=orders,
    orders=st.lists(orders, max_size=2),
    note=st.none() | texts,
)


def _key(rows):
    return [(r.field, r.kind, r.correct, r.score, r.outcome) for r in rows]


def _shuffled(model: BaseModel, rng: random.Random) -> BaseModel:
    """A copy with every list (recursively) shuffled."""

    def walk(value):
        if isinstance(value, BaseModel):
            return value.model_copy(
                update={k: walk(getattr(value, k)) for k in type(value).model_fields}
            )
        if isinstance(value, list):
            items = [walk(v) for v in value]
            rng.shuffle(items)
            return items
        return value

    return walk(model)


def _check_rows(rows, model) -> None:
    assert [r.field for r in rows] == field_paths(model)
    for r in rows:
        assert isinstance(r.correct, bool)
        assert 0.0 <= r.score <= 1.0 and not math.isnan(r.score)
        assert r.outcome in set(Outcome)
        if r.outcome in (Outcome.MISSED, Outcome.SPURIOUS):
            assert not r.correct
        if r.kind != "fuzzy":  # for every other built-in rule, correct <=> full score
            assert r.correct == (r.score == 1.0), r
        r.as_row()


@PROPS
@given(orders)
def test_self_comparison_is_perfect(order):
    rows = score_fields(order, order)
    _check_rows(rows, Order)
    assert all(r.correct and r.score == 1.0 for r in rows), [r for r in rows if not r.correct]
    assert {r.outcome for r in rows} <= {Outcome.MATCH, Outcome.BOTH_EMPTY}


@PROPS
@given(shipments)
def test_self_comparison_nested(shipment):
    rows = score_fields(shipment, shipment)
    _check_rows(rows, Shipment)
    assert all(r.correct and r.score == 1.0 for r in rows)


@PROPS
@given(orders, orders)
def test_any_pair_scores_are_bounded_and_rows_stable(expected, predicted):
    _check_rows(score_fields(expected, predicted), Order)
    _check_rows(score_fields(expected, None), Order)
    missed = score_fields(expected, None)
    assert Outcome.SPURIOUS not in {r.outcome for r in missed}


@PROPS
@given(shipments, shipments)
def test_nested_pairs_never_raise(expected, predicted):
    _check_rows(score_fields(expected, predicted), Shipment)


@st.composite
def order_and_variant(draw):
    """An order and a prediction made from it by dropping, adding and editing items."""
    order = draw(orders)
    kept = [it for it in order.items if draw(st.booleans())]
    edited = [
        it.model_copy(update={"qty": it.qty + 1}) if draw(st.booleans()) else it for it in kept
    ]
    extra = draw(st.lists(line_items, max_size=2))
    return order, order.model_copy(update={"items": edited + extra})


@PROPS
@given(order_and_variant(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_list_order(pair, rnd):
    expected, predicted = pair
    base = _key(score_fields(expected, predicted))
    rng = random.Random(rnd.random())
    for _ in range(3):
        got = _key(score_fields(_shuffled(expected, rng), _shuffled(predicted, rng)))
        assert got == base


@PROPS
@given(shipments, st.randoms(use_true_random=False))
def test_nested_result_does_not_depend_on_list_order(shipment, rnd):
    other = _shuffled(shipment, random.Random(rnd.random()))
    assert _key(score_fields(shipment, other)) == _key(score_fields(shipment, shipment))
