"""OpenAI-shaped errors for bad requests: status, body keys, codes."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx2
import pytest
from openai import AuthenticationError, OpenAI

from audio_evals.local import LocalServer
from conftest import audio_part

ERROR_KEYS = {"message", "type", "param", "code"}


def post(server: LocalServer, path: str, **kwargs) -> httpx2.Response:
    return httpx2.post(server.base_url + path, timeout=30, **kwargs)


def assert_error(
    resp: httpx2.Response, status: int, code: str | None = None, param: str | None = None
) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert set(error) == ERROR_KEYS
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error


def chat(model: str = "local-baseline", content: object = "hi") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}]}


def test_malformed_json_body(server: LocalServer) -> None:
    resp = post(
        server,
        "/chat/completions",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert assert_error(resp, 400, code="invalid_json")["type"] == "invalid_request_error"


def test_body_not_an_object(server: LocalServer) -> None:
    assert_error(post(server, "/chat/completions", json=[1, 2]), 400)


def test_missing_messages(server: LocalServer) -> None:
    assert_error(
        post(server, "/chat/completions", json={"model": "local-baseline"}), 400, param="messages"
    )


def test_missing_model(server: LocalServer) -> None:
    assert_error(post(server, "/chat/completions", json={"messages": []}), 400, param="model")


def test_unknown_model(server: LocalServer) -> None:
    error = assert_error(post(server, "/chat/completions", json=chat("gpt-4o-audio-preview")), 404)
    assert error["code"] == "model_not_found" and error["param"] == "model"


def test_unsupported_audio_format(server: LocalServer) -> None:
    part = {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode(b"x").decode(), "format": "flac"},
    }
    error = assert_error(
        post(server, "/chat/completions", json=chat(content=[part])), 400, code="invalid_value"
    )
    assert error["param"] == "messages[0].content[0].input_audio.format"


def test_undecodable_audio(server: LocalServer) -> None:
    part = {
        "type": "input_audio",
        "input_audio": {"data": base64.b64encode(b"garbage" * 50).decode(), "format": "wav"},
    }
    error = assert_error(
        post(server, "/chat/completions", json=chat(content=[part])), 400, code="invalid_value"
    )
    assert error["param"] == "messages[0].content[0].input_audio.data"
    assert "decode" in error["message"]


def test_audio_that_is_not_base64(server: LocalServer) -> None:
    part = {"type": "input_audio", "input_audio": {"data": "%%% not base64 %%%", "format": "mp3"}}
    assert_error(
        post(server, "/chat/completions", json=chat(content=[part])), 400, code="invalid_value"
    )


def test_unsupported_content_part(server: LocalServer) -> None:
    part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert_error(
        post(server, "/chat/completions", json=chat(content=[part])),
        400,
        param="messages[0].content[0].type",
    )


def test_unknown_tool_choice(server: LocalServer) -> None:
    body = chat() | {
        "tools": [
            {"type": "function", "function": {"name": "A", "parameters": {"type": "object"}}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "B"}},
    }
    assert_error(post(server, "/chat/completions", json=body), 400, param="tool_choice")


def test_unknown_url(server: LocalServer) -> None:
    assert_error(post(server, "/embeddings", json={}), 404)


def test_transcription_not_multipart(server: LocalServer) -> None:
    assert_error(post(server, "/audio/transcriptions", json={"model": "local-baseline"}), 400)


def test_bad_fault_header(server: LocalServer) -> None:
    resp = post(
        server, "/chat/completions", json=chat(), headers={"X-Audio-Evals-Fault": "explode"}
    )
    assert_error(resp, 400, param="X-Audio-Evals-Fault")


def test_no_bare_500_for_odd_bodies(server: LocalServer, person_wav) -> None:
    odd = [
        {"model": "local-baseline", "messages": [{"role": "user"}]},
        {"model": "local-baseline", "messages": [{"role": "wizard", "content": "x"}]},
        {"model": "local-baseline", "messages": ["hello"]},
        {"model": "local-baseline", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
        {
            "model": "local-baseline",
            "messages": [{"role": "user", "content": "x"}],
            "tools": "nope",
        },
        {
            "model": "local-baseline",
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "yaml"},
        },
        {"model": "local-baseline", "messages": [{"role": "user", "content": "x"}], "n": 0},
        {"model": 5, "messages": [{"role": "user", "content": "x"}]},
        {
            "model": "local-baseline",
            "messages": [
                {"role": "user", "content": [audio_part(person_wav) | {"input_audio": "x"}]}
            ],
        },
    ]
    for body in odd:
        assert_error(post(server, "/chat/completions", json=body), 400)


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[LocalServer]:
    with LocalServer(api_key="sk-required-key", preload=False) as s:
        yield s


def test_api_key_required(keyed_server: LocalServer) -> None:
    resp = httpx2.post(keyed_server.base_url + "/chat/completions", json=chat())
    assert_error(resp, 401, code="invalid_api_key")
    resp = httpx2.get(
        keyed_server.base_url + "/models", headers={"Authorization": "Bearer wrong-key-123"}
    )
    error = assert_error(resp, 401, code="invalid_api_key")
    assert "wrong-key-123" not in error["message"]  # the key is masked, as OpenAI does
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=keyed_server.base_url, api_key="sk-wrong", max_retries=0).models.list()
    good = OpenAI(base_url=keyed_server.base_url, api_key="sk-required-key", max_retries=0)
    assert good.chat.completions.create(**chat()).choices[0].message.content == "hi"
    assert keyed_server.stats()["by_status"] == {"200": 2, "401": 3}
