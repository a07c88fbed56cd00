"""`audio-evals synth`: specs (JSONL and templates) rendered by real flite/espeak-ng voices into datasets."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import soundfile as sf
from pydantic import BaseModel

from audio_evals.audio_tools import ToolError
from audio_evals.cli import main
from audio_evals.dataset_files import writing_dataset
from audio_evals.datasets import load_dataset
from audio_evals.problems import ProblemsError
from audio_evals.synth import synth
from audio_evals.synth_spec import load_spec, number_words
from evals.models import Person

from .conftest import REPO, require_tool


class Booking(BaseModel):
    """A table booking (the README's template example)."""

    name: str
    guests: int
    outdoor: bool


@pytest.fixture(autouse=True)
def _tools() -> None:
    for tool in ("flite", "espeak-ng", "sox"):
        require_tool(tool)


def write_lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


PEOPLE = [
    {"text": "Hi, my name is Jason and I am twenty years old.", "expected": {"name": "Jason", "age": 20}},
    {"text": "This is Maria, I'm thirty four.", "expected": {"name": "Maria", "age": 34}, "tags": {"set": "b"}},
    {"text": "Robert here, fifty five years old.", "expected": {"name": "Robert", "age": 55}, "must_pass": True},
]  # fmt: skip


def readme_template_spec(rows: int) -> str:
    """The template spec of the README, with the test's model and a smaller row count."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text[text.index("# bookings.synth.toml") :]
    block = block[: block.index("```")]
    assert '"models:Booking"' in block and "rows = 200" in block
    return block.replace('"models:Booking"', '"tests.test_synth:Booking"').replace(
        "rows = 200", f"rows = {rows}"
    )


def test_a_jsonl_spec_becomes_a_dataset_the_loader_accepts(tmp_path: Path) -> None:
    spec = write_lines(tmp_path / "people.jsonl", PEOPLE)
    out = tmp_path / "people"
    code = main(
        ["synth", str(spec), "-o", str(out), "--voice", "flite:slt", "--voice", "espeak-ng:en-us"]
    )
    assert code == 0
    dataset = load_dataset(out, Person)
    assert [c.id for c in dataset] == ["people-0001", "people-0002", "people-0003"]
    assert [c.expected for c in dataset] == [Person(**p["expected"]) for p in PEOPLE]
    assert [c.transcript for c in dataset] == [p["text"] for p in PEOPLE]
    assert [c.tags["speaker"] for c in dataset] == ["flite-slt", "espeak-ng-en-us", "flite-slt"]
    assert dataset.cases[1].tags == {
        "speaker": "espeak-ng-en-us",
        "condition": "clean",
        "voice_engine": "espeak-ng",
        "format": "wav",
        "set": "b",
    }
    assert [c.must_pass for c in dataset] == [False, False, True]
    for case in dataset:
        info = sf.info(case.audio_path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 1.0 < info.duration < 6.0
    # the labels are written exactly as the spec gives them
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["expected"] for r in rows] == [p["expected"] for p in PEOPLE]
    assert "must_pass" not in rows[0] and rows[2]["must_pass"] is True


def test_the_same_spec_renders_the_same_bytes_and_renderings_alternate_voices(
    tmp_path: Path,
) -> None:
    spec_file = write_lines(tmp_path / "people.jsonl", PEOPLE[:2])
    spec = load_spec(spec_file, voices=["flite:rms", "flite:kal16"], renderings=2)
    first = synth(spec, tmp_path / "a", jobs=2)
    second = synth(spec, tmp_path / "b", jobs=1)
    assert first.rows == second.rows == 4
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    rows = [json.loads(x) for x in (tmp_path / "a" / "metadata.jsonl").read_text().splitlines()]
    assert [(r["transcript"], r["tags"]["speaker"]) for r in rows] == [
        (PEOPLE[0]["text"], "flite-rms"),
        (PEOPLE[0]["text"], "flite-kal16"),
        (PEOPLE[1]["text"], "flite-rms"),
        (PEOPLE[1]["text"], "flite-kal16"),
    ]
    audio = digests(tmp_path / "a")
    assert audio["audio/people-0001.wav"] != audio["audio/people-0002.wav"]  # two voices


def test_a_template_spec_expands_seeded_with_typed_labels(tmp_path: Path) -> None:
    spec_file = tmp_path / "bookings.synth.toml"
    spec_file.write_text(readme_template_spec(rows=12), encoding="utf-8")
    spec = load_spec(spec_file)
    assert len(spec.utterances) == 12
    assert load_spec(spec_file).utterances == spec.utterances  # same seed, same rows
    other = load_spec(spec_file, seed=8)
    assert [u.text for u in other.utterances] != [u.text for u in spec.utterances]
    assert len(load_spec(spec_file, rows=30).utterances) == 30
    for u in spec.utterances:
        label = Booking.model_validate(u.expected)
        assert isinstance(u.expected["guests"], int) and isinstance(u.expected["outdoor"], bool)
        assert number_words(label.guests) in u.text  # spoken as words, labelled as a number
        assert label.name in u.text
        assert ("outside please" in u.text) == label.outdoor
        assert u.tags["template"] == ("greeting" if u.text.startswith("Hi") else "terse")
    assert {u.tags["template"] for u in spec.utterances} == {"greeting", "terse"}
    assert len({u.expected["guests"] for u in spec.utterances}) > 3

    out = tmp_path / "bookings"
    synth(spec, out)
    dataset = load_dataset(out, Booking)
    assert [c.id for c in dataset] == [f"bookings-{i:04d}" for i in range(1, 13)]
    assert [c.transcript for c in dataset] == [u.text for u in spec.utterances]


def test_spec_problems_are_reported_together_with_file_line_and_field(tmp_path: Path) -> None:
    spec = tmp_path / "bad.synth.toml"
    spec.write_text(
        'response_model = "evals.models:Person"\nvoices = ["flite:slt", "festival:kal"]\n'
        'utterances = "bad.jsonl"\ncolour = "red"\n',
        encoding="utf-8",
    )
    (tmp_path / "bad.jsonl").write_text(
        '{"text": "Hi, I am Jason, twenty.", "expected": {"name": "Jason", "age": 20}}\n'
        '{"text": "", "expected": {"name": "Maria", "age": 34}}\n'
        "{not json\n"
        '{"text": "I am Anna.", "expected": {"name": "Anna", "age": "old"}, "tag": {}}\n',
        encoding="utf-8",
    )
    with pytest.raises(ProblemsError) as caught:
        load_spec(spec)
    text = str(caught.value)
    found = [(p.path.name, p.line, p.field) for p in caught.value.problems]
    assert ("bad.synth.toml", None, "colour") in found
    assert ("bad.synth.toml", None, "voices[1]") in found
    assert ("bad.jsonl", 2, "text") in found
    assert ("bad.jsonl", 3, None) in found
    assert ("bad.jsonl", 4, "tag") in found
    assert "unknown engine 'festival'" in text and "unreadable JSON" in text
    # the CLI prints them all and exits 1, no traceback
    code = main(["synth", str(spec), "-o", str(tmp_path / "out")])
    assert code == 1
    assert not (tmp_path / "out").exists()


def test_a_label_that_does_not_validate_is_named_before_anything_is_rendered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "people.synth.toml"
    spec.write_text(
        'response_model = "evals.models:Person"\nutterances = "people.jsonl"\n', encoding="utf-8"
    )
    write_lines(
        tmp_path / "people.jsonl",
        [PEOPLE[0], {"text": "I am Anna.", "expected": {"name": "Anna", "age": "old"}}],
    )
    assert main(["synth", str(spec), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "people.jsonl:2: field 'expected.age': label does not validate against Person" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_slot_values_in_text_labels_and_tags(tmp_path: Path) -> None:
    spec = tmp_path / "codes.synth.toml"
    spec.write_text(
        'rows = 6\nseed = 3\n[[templates]]\ntext = "Code {code}, {{literally}} for {who}."\n'
        'expected = { code = "{code}", note = "{who} has {code}", flag = "{flag}", fixed = 1 }\n'
        'tags = { who = "{who}" }\n'
        '[slots]\ncode = { range = [100, 999], say = "digits" }\nwho = ["Ann", "Bo"]\n'
        "flag = [true, 2.5]\n",
        encoding="utf-8",
    )
    for u in load_spec(spec).utterances:
        code, who = u.expected["code"], u.tags["who"]
        assert u.text == f"Code {code}, {{literally}} for {who}."
        assert isinstance(code, int) and 100 <= code <= 999
        assert u.expected["note"] == f"{who} has {code}"
        assert u.expected["flag"] in (True, 2.5) and u.expected["fixed"] == 1


def test_template_mistakes_are_reported(tmp_path: Path) -> None:
    spec = tmp_path / "t.synth.toml"
    spec.write_text(
        'rows = 3\n[[templates]]\ntext = "I am {nam}, {age:02d}."\nexpected = { name = "{name}" }\n'
        "[slots]\nname = []\nage = { range = [9, 1] }\n",
        encoding="utf-8",
    )
    with pytest.raises(ProblemsError) as caught:
        load_spec(spec)
    fields = {p.field for p in caught.value.problems}
    assert {"slots.name", "slots.age", "templates[1].text"} <= fields
    assert "{nam} names no slot" in str(caught.value)
    assert "format specs and conversions are not supported" in str(caught.value)


def test_a_missing_voice_or_an_existing_folder_is_a_clear_error(tmp_path: Path) -> None:
    spec = write_lines(tmp_path / "people.jsonl", PEOPLE[:1])
    with pytest.raises(ToolError, match="flite has no voice 'nosuch'"):
        synth(load_spec(spec, voices=["flite:nosuch"]), tmp_path / "x")
    with pytest.raises(ToolError, match="espeak-ng has no voice 'xx-nope'"):
        synth(load_spec(spec, voices=["espeak-ng:xx-nope"]), tmp_path / "x")
    out = tmp_path / "people"
    synth(load_spec(spec, voices=["flite:slt"]), out)
    (out / "README.md").write_text("mine", encoding="utf-8")
    before = digests(out)
    with pytest.raises(FileExistsError, match="pass --force"):
        synth(load_spec(spec, voices=["flite:awb"]), out)
    assert digests(out) == before
    synth(load_spec(spec, voices=["flite:awb"]), out, force=True)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    after = digests(out)
    assert after["README.md"] == before["README.md"]  # other files are kept
    assert after["audio/people-0001.wav"] != before["audio/people-0001.wav"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people", "people.jsonl"]  # no leftovers


def test_a_failure_while_writing_leaves_the_old_dataset_untouched(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    synth(load_spec(write_lines(tmp_path / "ds.jsonl", PEOPLE[:1]), voices=["flite:slt"]), out)
    before = digests(out)
    with pytest.raises(RuntimeError, match="boom"), writing_dataset(out, force=True) as writer:
        writer.path_for("audio/x.wav", "x").write_bytes(b"RIFF")
        writer.add_row({"file_name": "audio/x.wav", "id": "x", "expected": {}})
        raise RuntimeError("boom")
    assert digests(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "ds.jsonl"]


def test_number_words() -> None:
    spoken = {0: "zero", 13: "thirteen", 40: "forty", 99: "ninety nine", 100: "one hundred"}
    spoken |= {1205: "one thousand two hundred five", 2027: "two thousand twenty seven"}
    spoken |= {-3: "minus three", 3_000_001: "three million one"}
    assert {n: number_words(n) for n in spoken} == spoken


def test_the_demo_specs_load_and_validate() -> None:
    for name in ("person", "appointment"):
        spec = load_spec(REPO / "datasets" / "specs" / f"{name}.synth.toml")
        assert len(spec.utterances) * spec.renderings == 32
