"""The clinic intake application as the evals call it: `extract(case, variant)`.

The application (`demo_app/clinic_intake.py`) takes a file and a client; this adapter hands it
the case's audio and the client the harness built for the variant (`intake_client`, through the
`pytest_audio_evals_client` hook in `conftest.py`, or `run_suite(client_factory=intake_client)`).
"""

from __future__ import annotations

import instructor

from audio_evals import CaseInput, VariantConfig
from demo_app.clinic_intake import extract_intake, make_client
from demo_app.schema import AppointmentRequest


def intake_client(variant: VariantConfig) -> instructor.Instructor:
    """The application's own client, pointed where the harness says (local server, OpenAI, replay)."""
    return make_client(
        base_url=variant.base_url,
        api_key=variant.api_key,
        timeout=variant.timeout,
        max_retries=variant.max_retries,
    )


def extract(case: CaseInput, variant: VariantConfig) -> AppointmentRequest:
    """The application's booking form for one voicemail."""
    return extract_intake(case.audio_path, client=variant.client, model=variant.model)
