"""Concurrent requests overlap: the event loop keeps serving while requests wait or decode."""

from __future__ import annotations

import asyncio
import time

from openai import AsyncOpenAI

from audio_evals.local import LocalServer
from conftest import audio_part


def test_latency_overlaps_under_concurrency(server: LocalServer) -> None:
    n, latency_s = 8, 0.5

    async def run() -> list[str]:
        client = AsyncOpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0)
        calls = [
            client.chat.completions.create(
                model="local-baseline",
                messages=[{"role": "user", "content": f"request {i}"}],
                extra_headers={"X-Audio-Evals-Fault": f"latency={int(latency_s * 1000)}"},
            )
            for i in range(n)
        ]
        outs = await asyncio.gather(*calls)
        return [o.choices[0].message.content or "" for o in outs]

    started = time.monotonic()
    answers = asyncio.run(run())
    wall = time.monotonic() - started
    stats = server.stats()
    print(
        f"\n{n} requests x {latency_s}s latency: wall {wall:.2f}s, max_in_flight {stats['max_in_flight']}"
    )
    assert answers == [f"request {i}" for i in range(n)]
    assert stats["max_in_flight"] > 1
    assert stats["requests"] == n and stats["in_flight"] == 0
    assert wall < n * latency_s * 0.6  # serial would take n * latency


def test_audio_requests_run_concurrently_with_latency(server: LocalServer, person_wav) -> None:
    async def run() -> list[str]:
        client = AsyncOpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0)
        calls = [
            client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": [audio_part(person_wav)]}],
                extra_headers={"X-Audio-Evals-Fault": "latency=300"},
            )
            for model in ("local-baseline", "local-baseline-mini") * 3
        ]
        outs = await asyncio.gather(*calls)
        return [o.choices[0].message.content or "" for o in outs]

    answers = asyncio.run(run())
    assert len(set(answers[0::2])) == 1 and len(set(answers[1::2])) == 1  # deterministic per model
    assert server.stats()["max_in_flight"] > 1
