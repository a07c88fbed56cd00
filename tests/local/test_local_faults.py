"""Faults on demand (X-Audio-Evals-Fault header and server flags) and how the SDK sees them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import instructor
import openai
import pytest
from instructor.core.exceptions import InstructorRetryException
from openai import OpenAI
from pydantic import BaseModel

from audio_evals.local import LocalServer

FAULT = "X-Audio-Evals-Fault"


class Person(BaseModel):
    name: str
    age: int


def body(text: str = "my name is ana and i am thirty") -> dict:
    return {
        "model": "local-baseline",
        "messages": [{"role": "user", "content": text}],
        "tools": [
            {
                "type": "function",
                "function": {"name": "Person", "parameters": Person.model_json_schema()},
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "Person"}},
    }


def post(server: LocalServer, fault: str, **extra) -> httpx2.Response:
    return httpx2.post(
        server.base_url + "/chat/completions",
        json=body(),
        headers={FAULT: fault},
        timeout=30,
        **extra,
    )


@pytest.mark.parametrize(
    ("fault", "status", "error_type", "code"),
    [
        ("429", 429, "requests", "rate_limit_exceeded"),
        ("500", 500, "server_error", "server_error"),
        ("503", 503, "server_error", "overloaded"),
    ],
)
def test_status_faults(
    server: LocalServer, fault: str, status: int, error_type: str, code: str
) -> None:
    resp = post(server, fault)
    assert resp.status_code == status
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == (error_type, code)
    if status == 429:
        assert float(resp.headers["retry-after"]) == 0.1
        assert resp.headers["retry-after-ms"] == "100"
    stats = server.stats()
    assert stats["faults"] == {fault: 1} and stats["by_status"] == {str(status): 1}


def test_429_retry_after_value(server: LocalServer) -> None:
    resp = post(server, "429=250")
    assert resp.headers["retry-after-ms"] == "250" and resp.headers["retry-after"] == "0.25"


def test_sdk_retries_a_429_once(server: LocalServer) -> None:
    client = OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=2)
    started = time.monotonic()
    out = client.chat.completions.create(**body(), extra_headers={FAULT: "429-once"})
    elapsed = time.monotonic() - started
    assert json.loads(out.choices[0].message.tool_calls[0].function.arguments) == {
        "name": "Ana",
        "age": 30,
    }
    stats = server.stats()
    assert stats["requests"] == 2
    assert stats["by_status"] == {"200": 1, "429": 1}
    assert stats["faults"] == {"429": 1}
    assert elapsed < 10  # the SDK waited ~retry-after (0.1 s), not its multi-second backoff


def test_sdk_gives_up_on_persistent_503(server: LocalServer) -> None:
    client = OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=1)
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(**body(), extra_headers={FAULT: "503"})
    assert err.value.status_code == 503
    assert server.stats()["by_status"] == {"503": 2}


def test_drop_closes_the_connection_mid_response(server: LocalServer) -> None:
    with pytest.raises(httpx2.RemoteProtocolError):
        post(server, "drop")
    client = OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(**body(), extra_headers={FAULT: "drop"})
    # the SDK's retry recovers from a drop that happens once
    retrying = OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=2)
    assert retrying.chat.completions.create(**body(), extra_headers={FAULT: "drop-once"}).choices
    stats = server.stats()
    assert stats["by_status"]["dropped"] == 3 and stats["by_status"]["200"] == 1


def test_slow_response_times_out(server: LocalServer) -> None:
    client = OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(**body(), extra_headers={FAULT: "slow=3000"})
    assert time.monotonic() - started < 2.5


def test_latency_header(server: LocalServer) -> None:
    started = time.monotonic()
    assert post(server, "latency=300").status_code == 200
    assert time.monotonic() - started >= 0.3
    assert server.stats()["faults"] == {"latency": 1}


def test_bad_json_arguments(server: LocalServer) -> None:
    resp = post(server, "bad_json")
    assert resp.status_code == 200
    args = resp.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(args)
    client = instructor.from_openai(
        OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0)
    )
    with pytest.raises(InstructorRetryException):
        client.chat.completions.create(
            model="local-baseline",
            response_model=Person,
            max_retries=1,
            messages=body()["messages"],
            extra_headers={FAULT: "bad_json"},
        )


def test_schema_mismatch(server: LocalServer) -> None:
    resp = post(server, "schema_mismatch")
    args = json.loads(
        resp.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    )
    with pytest.raises(ValueError):
        Person.model_validate(args)
    # once: instructor's re-ask gets a good answer the second time
    client = instructor.from_openai(
        OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0)
    )
    server.reset_stats()
    person = client.chat.completions.create(
        model="local-baseline",
        response_model=Person,
        max_retries=2,
        messages=body()["messages"],
        extra_headers={FAULT: "schema_mismatch-once", "X-Audio-Evals-Request-Id": "mismatch-1"},
    )
    assert person.model_dump() == {"name": "Ana", "age": 30}
    assert server.stats()["requests"] == 2


def test_json_schema_mode_faults(server: LocalServer) -> None:
    rf = {
        "type": "json_schema",
        "json_schema": {"name": "Person", "schema": Person.model_json_schema(), "strict": True},
    }
    base = body()
    del base["tools"], base["tool_choice"]
    resp = httpx2.post(
        server.base_url + "/chat/completions",
        json=base | {"response_format": rf},
        headers={FAULT: "bad_json"},
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.json()["choices"][0]["message"]["content"])


@pytest.fixture(scope="module")
def flaky_server() -> Iterator[LocalServer]:
    with LocalServer(fail_first=1, rate_500=0.3, rate_bad_json=0.2, seed=3, preload=False) as s:
        yield s


def test_server_flag_rates(flaky_server: LocalServer) -> None:
    flaky_server.reset_stats()
    statuses = []
    bad = 0
    for _ in range(30):
        resp = httpx2.post(flaky_server.base_url + "/chat/completions", json=body(), timeout=30)
        statuses.append(resp.status_code)
        if resp.status_code == 200:
            args = resp.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
            try:
                json.loads(args)
            except ValueError:
                bad += 1
    assert statuses[0] == 429  # --fail-first 1
    assert 0 < statuses.count(500) < 25
    assert bad > 0
    stats = flaky_server.stats()
    assert stats["requests"] == 30
    assert stats["faults"]["fail_first_429"] == 1
    assert stats["faults"]["500"] == statuses.count(500)
    # GET /v1/models is never faulted by server rates
    assert all(httpx2.get(flaky_server.base_url + "/models").status_code == 200 for _ in range(5))


@pytest.mark.parametrize("fault", ["schema_mismatch-once", "bad_json-once"])
@pytest.mark.parametrize("mode", [instructor.Mode.TOOLS, instructor.Mode.JSON_SCHEMA])
def test_once_means_once_per_case_through_instructors_validation_retry(
    server: LocalServer, person_wav: Path, fault: str, mode: instructor.Mode
) -> None:
    """No request id: the re-ask (the same messages + the answer + the error) is the same case."""
    # before: the retry's body differed, so the fault fired again and the case failed
    client = instructor.from_openai(
        OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0), mode=mode
    )
    person = client.chat.completions.create(
        model="local-baseline",
        response_model=Person,
        max_retries=2,
        messages=[
            {
                "role": "user",
                "content": [
                    f"Extract the person ({fault}, {mode.value})",
                    instructor.processing.multimodal.Audio.from_path(person_wav),
                ],
            }
        ],
        extra_headers={FAULT: fault},
    )
    assert person.model_dump() == {"name": "Jason", "age": 20}
    stats = server.stats()
    assert stats["requests"] == 2 and stats["faults"] == {fault.removesuffix("-once"): 1}
