"""A suite written in Python, for checks a TOML suite cannot express.

Clean speech from flite's studio voices (slt, rms) is the easy part of the person dataset: the
reference model must get every field of it right. The suite is derived from `person.eval.toml`
(same dataset, model and prompt), restricted to those cases and to the local baseline, under its
own name, so it has its own items, cassette (`cassettes/person-clean/`) and report rows.
"""

from pathlib import Path

import pytest

from audio_evals import load_suite
from audio_evals.runner import CaseResult

PERSON = load_suite(Path(__file__).with_name("person.eval.toml"))
STUDIO_VOICES = {"flite-slt", "flite-rms"}

CLEAN_STUDIO = PERSON.derive(
    "person-clean",
    dataset=PERSON.dataset.filter(
        lambda case: case.tags["condition"] == "clean" and case.tags["speaker"] in STUDIO_VOICES
    ),
    variants=[PERSON.variant("local-baseline")],
    gates={},
)


@pytest.mark.audio_eval(CLEAN_STUDIO)
def test_clean_studio_speech_is_extracted_exactly(audio_eval_result: CaseResult) -> None:
    """Every field right on clean studio-voice speech (errors already fail before this body runs)."""
    wrong = {
        f["field"]: (f["expected"], f["predicted"])
        for f in audio_eval_result.fields
        if not f["correct"]
    }
    assert not wrong, f"{audio_eval_result.case_id}: wrong fields (expected, predicted): {wrong}"
