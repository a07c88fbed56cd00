"""Local OpenAI-compatible server: offline baseline models and fault injection, reached via base_url."""

from audio_evals.local.runner import LocalServer, LocalServerError

__all__ = ["LocalServer", "LocalServerError"]
