"""`audio-evals augment`: the same labels under telephone, noise, speed, reverb and clipping, per row or for all."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_evals.augment import augment, load_plan
from audio_evals.cli import main
from audio_evals.conditions import Condition, active_power
from audio_evals.datasets import load_dataset
from audio_evals.problems import ProblemsError
from audio_evals.synth import synth
from audio_evals.synth_spec import load_spec
from evals.models import Person

from .conftest import require_tool

PEOPLE = [
    {"text": "Hi, my name is Jason and I am twenty years old.", "expected": {"name": "Jason", "age": 20}, "tags": {"team": "a"}},
    {"text": "This is Maria, I'm thirty four.", "expected": {"name": "Maria", "age": 34}, "tags": {"team": "b"}},
    {"text": "Robert here, fifty five years old.", "expected": {"name": "Robert", "age": 55}, "tags": {"team": "a"}},
]  # fmt: skip


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-row dataset of real TTS speech (flite slt, rms, awb), clean 16 kHz WAV."""
    for tool in ("flite", "sox"):
        require_tool(tool)
    folder = tmp_path_factory.mktemp("source")
    spec = folder / "people.jsonl"
    spec.write_text("".join(json.dumps(p) + "\n" for p in PEOPLE), encoding="utf-8")
    out = folder / "people"
    synth(load_spec(spec, voices=["flite:slt", "flite:rms", "flite:awb"]), out)
    return out


def rows(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "metadata.jsonl").read_text().splitlines()]


def read(folder: Path, row: dict) -> tuple[np.ndarray, int]:
    return sf.read(folder / row["file_name"])


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def band_share(x: np.ndarray, rate: int, low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(power[(freqs >= low) & (freqs < high)].sum() / power.sum())


def same_labels(a: Path, b: Path) -> bool:
    keep = ("id", "expected", "transcript")
    return [{k: r[k] for k in keep} for r in rows(a)] == [{k: r[k] for k in keep} for r in rows(b)]


def test_telephone_band_limits_to_8_khz_with_the_same_labels(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "phone"
    assert main(["augment", str(source), "--condition", "telephone", "-o", str(out)]) == 0
    assert same_labels(source, out)
    load_dataset(out, Person)  # the loader accepts it
    for src_row, row in zip(rows(source), rows(out), strict=True):
        assert row["tags"] == src_row["tags"] | {"condition": "telephone"}
        clean, rate = read(source, src_row)
        phone, phone_rate = read(out, row)
        assert (rate, phone_rate) == (16000, 8000)
        assert abs(len(phone) / phone_rate - len(clean) / rate) < 0.01
        assert band_share(phone, phone_rate, 0, 250) < band_share(clean, rate, 0, 250) / 10
        assert band_share(phone, phone_rate, 3600, 4000) < 1e-4


def test_noise_is_mixed_at_the_requested_snr(source: Path, tmp_path: Path) -> None:
    for snr in (10.0, 0.0):
        out = tmp_path / f"noise{snr:g}"
        augment(source, out, conditions=[f"noise:{snr:g}"])
        for src_row, row in zip(rows(source), rows(out), strict=True):
            assert row["tags"]["condition"] == "noisy" and row["tags"]["snr_db"] == f"{snr:.1f}"
            clean, rate = read(source, src_row)
            noisy, _ = read(out, row)
            gain = np.dot(noisy, clean) / np.dot(clean, clean)  # the mix is scaled down to -3 dBFS
            residual = noisy - gain * clean
            measured = 10 * np.log10(active_power(gain * clean, rate) / np.mean(residual**2))
            assert abs(measured - snr) < 0.5, (row["id"], measured)
            assert np.abs(noisy).max() <= 10 ** (-3 / 20) + 1e-4


def test_a_snr_range_is_drawn_per_row_and_seeds_reproduce(source: Path, tmp_path: Path) -> None:
    first = augment(source, tmp_path / "a", conditions=["noise:5-10"], seed=[7, 1])
    again = augment(source, tmp_path / "b", conditions=["noise:5-10"], seed="7,1")
    other = augment(source, tmp_path / "c", conditions=["noise:5-10"], seed=8)
    assert first.rows == again.rows == other.rows == 3
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert (
        digests(tmp_path / "a")["audio/people-0001.wav"]
        != digests(tmp_path / "c")["audio/people-0001.wav"]
    )
    snrs = [float(r["tags"]["snr_db"]) for r in rows(tmp_path / "a")]
    assert all(5.0 <= s <= 10.0 for s in snrs) and len(set(snrs)) > 1
    expected = np.random.default_rng([7, 1, 2]).uniform(5.0, 10.0)  # row 2's own generator
    assert snrs[2] == round(float(expected), 1)


def test_speed_reverb_and_clip(source: Path, tmp_path: Path) -> None:
    augment(source, tmp_path / "fast", conditions=["speed:1.25"])
    augment(source, tmp_path / "room", conditions=["reverb"])
    augment(source, tmp_path / "clip", conditions=["clip:12"])
    for i, src_row in enumerate(rows(source)):
        clean, rate = read(source, src_row)
        fast, fast_rate = read(tmp_path / "fast", rows(tmp_path / "fast")[i])
        assert fast_rate == rate and abs(len(fast) / len(clean) - 0.8) < 0.02
        assert rows(tmp_path / "fast")[i]["tags"] | {} == src_row["tags"] | {
            "condition": "speed",
            "speed": "1.25",
        }
        room, _ = read(tmp_path / "room", rows(tmp_path / "room")[i])
        assert abs((len(room) - len(clean)) / rate - 0.3) < 0.01  # the tail is kept
        assert rows(tmp_path / "room")[i]["tags"]["reverberance"] == "50"
        assert np.mean(np.abs(room[len(clean) :]) > 0.001) > 0.1  # it rings on after the speech
        clipped, _ = read(tmp_path / "clip", rows(tmp_path / "clip")[i])
        flat = np.mean(np.abs(clipped) > 0.99 * np.abs(clipped).max())
        assert flat > 0.05 > np.mean(np.abs(clean) > 0.99 * np.abs(clean).max())
        assert rows(tmp_path / "clip")[i]["tags"]["condition"] == "clipped"


def test_several_conditions_give_each_row_once_per_condition(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "mixed"
    code = main(
        ["augment", str(source), "--condition", "clean", "--condition", "telephone", "--format", "mp3", "-o", str(out)]
    )  # fmt: skip
    assert code == 0
    out_rows = rows(out)
    assert [r["id"] for r in out_rows] == [
        f"people-000{i}-{c}" for i in (1, 2, 3) for c in ("clean", "telephone")
    ]
    assert [r["expected"] for r in out_rows] == [p["expected"] for p in PEOPLE for _ in range(2)]
    assert {r["tags"]["condition"] for r in out_rows} == {"clean", "telephone"}
    for row in out_rows:
        assert row["file_name"] == f"audio/{row['id']}.mp3" and row["tags"]["format"] == "mp3"
        assert sf.info(out / row["file_name"]).format == "MP3"
    assert len(load_dataset(out, Person)) == 6


def test_a_plan_assigns_conditions_by_id_and_tag_and_keeps_the_rest(
    source: Path, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'seed = [3, 4]\n[[apply]]\ncondition = "telephone"\nformat = "mp3"\nids = ["people-0002"]\n'
        '[[apply]]\ncondition = "noise:20"\nwhere = { team = "a", speaker = ["flite-awb"] }\n',
        encoding="utf-8",
    )
    out = tmp_path / "planned"
    assert main(["augment", str(source), "--plan", str(plan), "-o", str(out)]) == 0
    first, second, third = rows(out)
    assert (
        first["tags"]["condition"],
        second["tags"]["condition"],
        third["tags"]["condition"],
    ) == (
        "clean",
        "telephone",
        "noisy",
    )
    assert second["file_name"] == "audio/people-0002.mp3"
    # a row no block selects is copied as it is
    src = rows(source)
    assert first == src[0]
    assert digests(out)["audio/people-0001.wav"] == digests(source)["audio/people-0001.wav"]
    assert third["tags"]["snr_db"] == "20.0"
    assert load_plan(plan).seed == (3, 4)


def test_conditions_chain_in_the_condition_tag(source: Path, tmp_path: Path) -> None:
    augment(source, tmp_path / "noisy", conditions=["noise:15"])
    augment(tmp_path / "noisy", tmp_path / "both", conditions=["telephone"])
    assert {r["tags"]["condition"] for r in rows(tmp_path / "both")} == {"noisy+telephone"}
    assert all(r["tags"]["snr_db"] == "15.0" for r in rows(tmp_path / "both"))


def test_augment_in_place_replaces_the_dataset(source: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    assert main(["augment", str(copy), "--condition", "telephone", "-o", str(copy)]) == 1
    assert main(["augment", str(copy), "--condition", "telephone", "-o", str(copy), "--force"]) == 0
    assert {r["tags"]["condition"] for r in rows(copy)} == {"telephone"}
    assert sorted(p.name for p in copy.iterdir()) == ["audio", "metadata.jsonl"]
    assert len(list((copy / "audio").iterdir())) == 3


def test_plan_problems_are_reported_together(source: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'seed = -1\nmode = "x"\n[[apply]]\ncondition = "warp"\n'
        '[[apply]]\ncondition = "noise"\n[[apply]]\ncondition = "speed:9"\n'
        '[[apply]]\ncondition = "telephone"\nformat = "ogg"\nids = ["people-0009"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ProblemsError) as caught:
        load_plan(plan)
    fields = sorted(str(p.field) for p in caught.value.problems)
    assert fields == ["apply[1].condition", "apply[2].condition", "apply[3].condition", "apply[4].format", "mode", "seed"]  # fmt: skip
    text = str(caught.value)
    assert "unknown condition 'warp'" in text and "needs a signal-to-noise ratio" in text
    assert "within 0.25 to 4" in text
    plan.write_text(
        '[[apply]]\ncondition = "telephone"\nids = ["people-0009"]\n'
        '[[apply]]\ncondition = "clip"\nwhere = { team = "z" }\n',
        encoding="utf-8",
    )
    with pytest.raises(ProblemsError) as caught:
        augment(source, tmp_path / "out", plan=plan)
    assert "no row has id 'people-0009'" in str(caught.value)
    assert "selects no row" in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_bad_input_datasets_list_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "broken"
    (folder / "audio").mkdir(parents=True)
    (folder / "audio" / "a.wav").write_bytes(b"")
    lines = [
        '{"file_name": "audio/a.wav", "id": "a", "expected": {}}',
        '{"file_name": "audio/missing.wav", "id": "a", "expected": {}}',
        "not json",
        '{"file_name": "../outside.wav", "id": "c", "expected": {}, "tags": {"x": 1}}',
    ]
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert (
        main(["augment", str(folder), "--condition", "telephone", "-o", str(tmp_path / "o")]) == 1
    )
    err = capsys.readouterr().err
    assert "6 problems" in err
    for expected in (
        "metadata.jsonl:1: field 'file_name': audio file is empty",
        "metadata.jsonl:2: field 'id': duplicate id 'a' (first on line 1)",
        "metadata.jsonl:2: field 'file_name': audio file not found",
        "metadata.jsonl:3: unreadable JSON",
        "metadata.jsonl:4: field 'file_name': '../outside.wav' leaves the dataset folder",
        "metadata.jsonl:4: field 'tags': must be an object of strings",
    ):
        assert expected in err
    assert "Traceback" not in err


def test_condition_syntax() -> None:
    assert str(Condition.parse("noise:5-10")) == "noise:5-10"
    assert str(Condition.parse("NOISE: 5 to 10")) == "noise:5-10"
    assert Condition.parse("reverb").slug == "reverb50"
    assert Condition.parse("speed:1.1").slug == "speed1.1"
    assert Condition.parse("noise:-5").low == -5.0
    for bad in ("telephone:2", "noise:ten", "noise:10-5", "clip:99", "reverb:x"):
        with pytest.raises(ValueError):
            Condition.parse(bad)
