"""Chat completions through the real openai SDK and instructor, against the local server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import instructor
import pytest
from instructor.processing.multimodal import Audio
from openai import AsyncOpenAI, OpenAI
from pydantic import BaseModel

from audio_evals.local import LocalServer
from conftest import audio_part, shared_file

MODES = [instructor.Mode.TOOLS, instructor.Mode.JSON_SCHEMA]


class Person(BaseModel):
    name: str
    age: int


def seed_kwargs(path: Path, model: str = "local-baseline") -> dict[str, object]:
    """The seed's exact call arguments."""
    return dict(
        model=model,
        response_model=Person,
        modalities=["text"],
        audio={"voice": "alloy", "format": "wav"},
        messages=[
            {
                "role": "user",
                "content": [
                    "Extract the following information from the audio",
                    Audio.from_path(path),
                ],
            }
        ],
    )


def seed_call(client: instructor.Instructor, path: Path, model: str = "local-baseline") -> Person:
    """The seed's exact call."""
    return client.chat.completions.create(**seed_kwargs(path, model))


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_seed_call_sync(server: LocalServer, person_wav: Path, mode: instructor.Mode) -> None:
    client = instructor.from_openai(OpenAI(base_url=server.base_url, api_key="sk-local"), mode=mode)
    person = seed_call(client, person_wav)
    print(f"\n[{mode.name}] local-baseline heard: {person!r}")
    assert isinstance(person, Person)
    assert server.stats()["by_status"] == {"200": 1}


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
def test_seed_call_async(server: LocalServer, person_wav: Path, mode: instructor.Mode) -> None:
    async def run() -> Person:
        aclient = instructor.from_openai(
            AsyncOpenAI(base_url=server.base_url, api_key="sk-local"), mode=mode
        )
        return await aclient.chat.completions.create(**seed_kwargs(person_wav))

    person = asyncio.run(run())
    print(f"\n[async {mode.name}] local-baseline heard: {person!r}")
    assert isinstance(person, Person)


def test_mini_model_answers_with_a_person(server: LocalServer, person_wav: Path) -> None:
    client = instructor.from_openai(OpenAI(base_url=server.base_url, api_key="sk-local"))
    person = seed_call(client, person_wav, model="local-baseline-mini")
    print(f"\nlocal-baseline-mini heard: {person!r}")
    assert isinstance(person, Person)


def test_raw_tool_call_response_shape(client: OpenAI, person_wav: Path) -> None:
    kwargs = dict(
        model="local-baseline",
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "Extract"}, audio_part(person_wav)],
            }
        ],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "Person",
                    "description": "A person",
                    "parameters": Person.model_json_schema(),
                },
            }
        ],
        tool_choice={"type": "function", "function": {"name": "Person"}},
        temperature=0,
        seed=7,
        max_tokens=100,
    )
    raw = client.chat.completions.with_raw_response.create(**kwargs)
    body = json.loads(raw.http_response.text)
    assert body["object"] == "chat.completion"
    assert body["model"] == "local-baseline"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "Person"
    Person.model_validate_json(call["function"]["arguments"])
    usage = body["usage"]
    # 2.2 s of audio at ~10 tokens per second
    assert 20 <= usage["prompt_tokens_details"]["audio_tokens"] <= 25
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["audio_tokens"] == 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] == (
        usage["prompt_tokens_details"]["audio_tokens"]
        + usage["prompt_tokens_details"]["text_tokens"]
    )
    # deterministic apart from id and created
    again = json.loads(
        client.chat.completions.with_raw_response.create(**kwargs).http_response.text
    )
    for key in ("id", "created"):
        body.pop(key), again.pop(key)
    assert body == again


def test_plain_text_answer_is_the_transcript(client: OpenAI) -> None:
    wav = shared_file("real-speech", "speech_recognition", "english.wav")
    out = client.chat.completions.create(
        model="local-baseline",
        modalities=["text"],
        messages=[
            {"role": "system", "content": "Transcribe the audio."},
            {"role": "user", "content": [audio_part(wav)]},
        ],
    )
    print(f"\nenglish.wav transcript: {out.choices[0].message.content!r}")
    assert out.choices[0].finish_reason == "stop"
    assert out.choices[0].message.content == "one two three"


def test_mp3_input(client: OpenAI) -> None:
    mp3 = shared_file("real-traffic", "assets", "pydantic-ai__marcelo.mp3")

    class Speaker(BaseModel):
        name: str

    client_i = instructor.from_openai(client, mode=instructor.Mode.TOOLS)
    out = client_i.chat.completions.create(
        model="local-baseline",
        response_model=Speaker,
        max_retries=0,
        messages=[{"role": "user", "content": ["Who is speaking?", audio_part(mp3, "mp3")]}],
    )
    print(f"\nmarcelo.mp3 ('Hello, my name is Marcelo.') -> {out!r}")
    assert isinstance(out, Speaker)


def test_text_only_extraction_uses_last_user_message(client: OpenAI) -> None:
    client_i = instructor.from_openai(client, mode=instructor.Mode.TOOLS)
    person = client_i.chat.completions.create(
        model="local-baseline",
        response_model=Person,
        messages=[
            {
                "role": "system",
                "content": "Extract the person from the transcript. My name is Nobody, 99.",
            },
            {"role": "user", "content": "hello my name is maria and i am forty two years old"},
        ],
    )
    assert person.model_dump() == {"name": "Maria", "age": 42}


def test_json_object_mode_reads_schema_from_prompt(client: OpenAI) -> None:
    client_i = instructor.from_openai(client, mode=instructor.Mode.JSON)
    person = client_i.chat.completions.create(
        model="local-baseline",
        response_model=Person,
        messages=[{"role": "user", "content": "my name is tom and i am fifty"}],
    )
    assert person.model_dump() == {"name": "Tom", "age": 50}


def test_streaming(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="local-baseline",
        messages=[{"role": "user", "content": "just some words"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "just some words"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_models_endpoint(client: OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == ["local-baseline", "local-baseline-mini"]
    assert client.models.retrieve("local-baseline-mini").owned_by == "audio-evals"
