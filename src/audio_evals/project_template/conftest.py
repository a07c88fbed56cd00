"""pytest configuration of the evals: the client your own extractor gets as `variant.client`."""

from __future__ import annotations

from typing import Any

import instructor
from openai import OpenAI

from audio_evals import VariantConfig


def pytest_audio_evals_client(variant: VariantConfig) -> Any:
    """Your application's client, pointed where the harness says (local server, OpenAI, or replay)."""
    raw = OpenAI(base_url=variant.base_url, api_key=variant.api_key, timeout=variant.timeout)
    return instructor.from_openai(raw, mode=instructor.Mode.TOOLS)
