"""Property-based tests: the dataset loader and the scorer fail only with their documented errors.

The loader gets arbitrary bytes and arbitrary JSON rows and must return a Dataset or raise a
DatasetError (never another exception); the scorer gets arbitrary scoring configs and any
labelled and predicted records of a model (nested models, lists, optional fields) and must return
rows or raise the documented ValueError for a config mistake.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from audio_evals.datasets import DatasetError, load_dataset
from audio_evals.scoring import score_fields

from .conftest import write_tone

PROPS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class Item(BaseModel):
    sku: str
    qty: int = 1


class Order(BaseModel):
    name: str
    age: int | None = None
    when: date | None = None
    tags: list[str] = []
    items: list[Item] = []
    address: Item | None = None


_AUDIO = Path(tempfile.mkdtemp(prefix="audio-evals-props-")) / "a.wav"
write_tone(_AUDIO, seconds=0.1)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
keys = st.sampled_from(
    ["file_name", "id", "expected", "tags", "transcript", "must_pass", "$schema", "extra"]
)
file_names = st.sampled_from(
    ["audio/a.wav", "audio/missing.wav", "../a.wav", "/etc/passwd", "audio/a.flac", "", "audio"]
) | st.text(max_size=20)
labels = st.fixed_dictionaries(
    {"name": st.text(max_size=8)},
    optional={
        "age": json_values,
        "when": st.sampled_from(["2024-01-02", "yesterday", 3]),
        "tags": json_values,
        "items": st.lists(
            st.dictionaries(st.sampled_from(["sku", "qty", "sk"]), json_values), max_size=2
        ),
        "nam": st.text(max_size=3),
    },
)
rows = st.one_of(
    st.fixed_dictionaries(
        {"file_name": file_names, "id": st.text(max_size=4) | json_values, "expected": labels},
        optional={"tags": json_values, "transcript": json_values, "must_pass": json_values},
    ),
    st.dictionaries(keys, json_values, max_size=6),
    json_values,
)
lines = st.one_of(
    rows.map(lambda r: json.dumps(r).encode()),
    st.binary(max_size=40),
    st.sampled_from(
        [b"\xef\xbb\xbf{}", b"[" * 5000, b'{"id": 1' + b"0" * 5000 + b"}", b"\x00", b"{"]
    ),
)


@PROPS
@given(st.lists(lines, min_size=0, max_size=6))
def test_the_loader_returns_a_dataset_or_raises_a_dataset_error(content: list[bytes]) -> None:
    root = Path(tempfile.mkdtemp(prefix="audio-evals-ds-"))
    try:
        (root / "audio").mkdir()
        shutil.copy(_AUDIO, root / "audio" / "a.wav")
        (root / "metadata.jsonl").write_bytes(b"\n".join(content))
        try:
            dataset = load_dataset(root, Order)
        except DatasetError as err:
            assert err.problems, "a DatasetError always lists its problems"
            assert all(p.path.name in ("metadata.jsonl", "dataset.toml") for p in err.problems)
            assert all(p.line is None or p.line >= 1 for p in err.problems)
        else:
            assert len(dataset) >= 1
            assert all(c.audio_path.resolve().is_relative_to(root.resolve()) for c in dataset)
    finally:
        shutil.rmtree(root)


rule_values = st.one_of(
    st.sampled_from(
        ["text", "fuzzy", "exact", "number", "date", "multiset", "list_count", "ignore", "nope"]
    ),
    st.dictionaries(
        st.sampled_from(["comparator", "threshold", "abs", "rel", "element", "bogus"]),
        st.sampled_from(["text", "exact", "number", "x"]) | st.floats() | st.integers() | st.none(),
        max_size=3,
    ),
    json_values,
)
configs = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "fields": st.dictionaries(
                st.sampled_from(
                    [
                        "name",
                        "age",
                        "when",
                        "tags",
                        "items",
                        "items[].sku",
                        "*",
                        "address",
                        "zzz",
                        "",
                    ]
                ),
                rule_values,
                max_size=3,
            )
        }
    ),
    st.dictionaries(st.text(max_size=6), json_values, max_size=2),
    json_values,
)
items = st.builds(Item, sku=st.text(max_size=6), qty=st.integers(-5, 5))
orders = st.builds(
    Order,
    name=st.text(max_size=8),
    age=st.none() | st.integers(),
    when=st.none() | st.dates(),
    tags=st.lists(st.text(max_size=4), max_size=3),
    items=st.lists(items, max_size=3),
    address=st.none() | items,
)


@PROPS
@given(configs, orders, st.none() | orders)
def test_the_scorer_returns_rows_or_raises_the_documented_value_error(
    config: object, expected: Order, predicted: Order | None
) -> None:
    """Any labelled and predicted records (None: the extraction failed), any config."""
    try:
        rows = score_fields(expected, predicted, config=config)  # type: ignore[arg-type]
    except ValueError:
        return
    assert rows and all(0.0 <= r.score <= 1.0 for r in rows)
    same = score_fields(expected, expected, config=config)  # type: ignore[arg-type]
    assert [r.field for r in rows] == [r.field for r in same]
