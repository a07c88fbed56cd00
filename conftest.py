"""pytest configuration of this project's evals (the audio-evals plugin registers itself).

Custom extractors get `variant.client`: the client this hook builds for their variant, once per
batch, pointed at the endpoint the harness resolved (the local server when recording, a
placeholder in replay, OpenAI with the real key when live).
"""

from __future__ import annotations

from typing import Any

from audio_evals import VariantConfig
from evals.intake import intake_client


def pytest_audio_evals_client(variant: VariantConfig) -> Any:
    """The clinic intake application's own client for the intake suite; the harness's default elsewhere."""
    if variant.suite == "intake":
        return intake_client(variant)
    return None
