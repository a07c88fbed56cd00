"""Your own extraction code, as the evals call it: `extract(case, variant)` returns the record.

Replace the body with a call into your application (its prompt, pre- and post-processing, its
client). Whatever HTTP it makes is recorded once into cassettes/ and replayed offline after that.
"""

from __future__ import annotations

from instructor.processing.multimodal import Audio

from audio_evals import CaseInput, VariantConfig

from .models import Intro

SYSTEM = "You fill in a visitor card from a voice message. Leave out what is not said."


def extract(case: CaseInput, variant: VariantConfig) -> Intro:
    """The visitor card for one recording."""
    return variant.client.chat.completions.create(
        model=variant.model,
        response_model=Intro,
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": [variant.prompt, Audio.from_path(case.audio_path)]},
        ],
        max_retries=1,
    )
