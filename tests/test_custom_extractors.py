"""The team's own extraction code under test: recorded against the local server, replayed offline.

Each extractor is a different shape of user code (instructor with a system message, the raw
openai SDK with `response_format`, a plain httpx POST, two calls per case through `requests` and
the SDK). They run through `run_suite` exactly as they would from `pytest evals`.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import instructor
import numpy as np
import openai
import pytest
import requests
import soundfile
import yaml
from instructor.processing.multimodal import Audio
from pydantic import BaseModel

from audio_evals import (
    CaseInput,
    Project,
    Suite,
    Variant,
    VariantConfig,
    build_report,
    load_dataset,
    run_suite,
)
from audio_evals.local import LocalServer
from audio_evals.results import ErrorKind, LatencySource

REPO = Path(__file__).resolve().parents[1]
PROMPT = "Extract the speaker's name and age."


class Person(BaseModel):
    """A person who introduces themselves."""

    name: str
    age: int


# ---- four shapes of user code ------------------------------------------------------------------


async def with_instructor(case: CaseInput, variant: VariantConfig) -> Person:
    """instructor over AsyncOpenAI, with a system message of its own."""
    client = instructor.from_openai(
        openai.AsyncOpenAI(base_url=variant.base_url, api_key=variant.api_key, max_retries=0),
        mode=instructor.Mode.TOOLS,
    )
    return await client.chat.completions.create(
        model=variant.model,
        response_model=Person,
        messages=[
            {"role": "system", "content": "You fill in forms from voicemails."},
            {"role": "user", "content": [variant.prompt, Audio.from_path(case.audio_path)]},
        ],
        max_retries=0,
    )


def _audio_part(path: Path) -> dict[str, object]:
    data = base64.b64encode(path.read_bytes()).decode()
    return {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}


def with_response_format(case: CaseInput, variant: VariantConfig) -> dict[str, object]:
    """The raw (sync) openai SDK asking for `response_format: json_schema`; returns a dict."""
    client = openai.OpenAI(base_url=variant.base_url, api_key=variant.api_key, max_retries=0)
    completion = client.chat.completions.create(
        model=variant.model,
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": variant.prompt}, _audio_part(case.audio_path)],
            }
        ],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "Person", "schema": Person.model_json_schema(), "strict": True},
        },
    )
    return json.loads(completion.choices[0].message.content or "{}")


def with_plain_httpx(case: CaseInput, variant: VariantConfig) -> str:
    """A plain httpx POST to /v1/chat/completions with a tool; returns the tool's JSON arguments."""
    tool = {
        "type": "function",
        "function": {"name": "Person", "parameters": Person.model_json_schema()},
    }
    response = httpx.post(
        f"{variant.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {variant.api_key}"},
        json={
            "model": variant.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": variant.prompt},
                        _audio_part(case.audio_path),
                    ],
                }
            ],
            "tools": [tool],
            "tool_choice": {"type": "function", "function": {"name": "Person"}},
        },
        timeout=60,
    )
    response.raise_for_status()
    return response.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]


def transcribe_then_extract(case: CaseInput, variant: VariantConfig) -> Person:
    """Two calls per case: a multipart upload through `requests`, then a text call through the SDK."""
    with case.audio_path.open("rb") as fh:
        heard = requests.post(
            f"{variant.base_url}/audio/transcriptions",
            headers={"Authorization": f"Bearer {variant.api_key}"},
            data={"model": variant.model},
            files={"file": (case.audio_path.name, fh, "audio/wav")},
            timeout=60,
        )
    heard.raise_for_status()
    client = instructor.from_openai(
        openai.OpenAI(base_url=variant.base_url, api_key=variant.api_key, max_retries=0)
    )
    return client.chat.completions.create(
        model=variant.model,
        response_model=Person,
        messages=[
            {"role": "system", "content": variant.prompt},
            {"role": "user", "content": heard.json()["text"]},
        ],
        max_retries=0,
    )


EXTRACTORS: dict[str, tuple[Callable[..., object], int]] = {
    "instructor": (with_instructor, 1),
    "response_format": (with_response_format, 1),
    "httpx": (with_plain_httpx, 1),
    "two_calls": (transcribe_then_extract, 2),
}


# ---- a scratch project -------------------------------------------------------------------------


def _dataset(root: Path) -> Path:
    """Four clean demo clips plus one ~10 s clip made of three of them, labelled."""
    folder = root / "datasets" / "people"
    (folder / "audio").mkdir(parents=True)
    source = REPO / "datasets" / "person"
    rows = [json.loads(line) for line in (source / "metadata.jsonl").read_text().splitlines()]
    wavs = [
        r for r in rows if r["file_name"].endswith(".wav") and r["tags"]["condition"] == "clean"
    ][:4]
    lines = []
    for row in wavs:
        target = folder / "audio" / Path(row["file_name"]).name
        target.write_bytes((source / row["file_name"]).read_bytes())
        lines.append(
            {"file_name": f"audio/{target.name}", "id": row["id"], "expected": row["expected"]}
        )
    clips = [soundfile.read(str(source / r["file_name"]), dtype="int16") for r in wavs[:3]]
    rate = clips[0][1]
    long = np.concatenate([c for c, _ in clips] * 2)
    soundfile.write(str(folder / "audio" / "long.wav"), long, rate, subtype="PCM_16")
    lines.append({"file_name": "audio/long.wav", "id": "long", "expected": wavs[0]["expected"]})
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project in a temp folder (cassettes and reports of its own)."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    return Project.at(tmp_path)


def _suite(root: Path, base_url: str, fn: Callable[..., object], **variant: object) -> Suite:
    folder = root / "datasets" / "people"
    return Suite(
        name="people",
        dataset=load_dataset(folder if folder.exists() else _dataset(root), Person),
        response_model=Person,
        variants=(
            Variant(
                name="mine",
                model="local-baseline",
                prompt=PROMPT,
                base_url=base_url,
                extract=fn,
                **variant,
            ),
        ),
        pricing={"local-baseline": {"text_input": 1.0, "audio_input": 40.0, "text_output": 4.0}},
    )


class CountingListener:
    """A TCP listener on a port that counts the connections it accepts (proof that none came)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()
        self.sock.settimeout(0.1)
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def listener_on() -> Iterator[Callable[[int], CountingListener]]:
    """Start counting listeners; closed at the end of the test."""
    made: list[CountingListener] = []

    def start(port: int) -> CountingListener:
        made.append(CountingListener(port))
        return made[-1]

    yield start
    for listener in made:
        listener.close()


@pytest.mark.parametrize("kind", sorted(EXTRACTORS))
def test_custom_extractor_records_then_replays_offline(
    kind: str, project: Project, listener_on: Callable[[int], CountingListener]
) -> None:
    fn, calls_per_case = EXTRACTORS[kind]
    with LocalServer() as server:
        suite = _suite(project.root, server.base_url, fn)
        port = int(server.base_url.split(":")[2].split("/")[0])
        recorded = run_suite(suite, record_mode="once", project=project)
    assert [r.error for r in recorded.results] == [None] * 5
    assert [len(r.calls) for r in recorded.results] == [calls_per_case] * 5, [
        [(c.path, c.status) for c in r.calls] for r in recorded.results
    ]
    assert all(
        not c.replayed and c.latency_ms and c.latency_ms > 0
        for r in recorded.results
        for c in r.calls
    )

    cassette = project.cassette_dir / "people" / "mine.yaml"
    text = cassette.read_text()
    assert "UklGR" not in text  # base64 of "RIFF": no audio in the cassette
    interactions = yaml.safe_load(text)["interactions"]
    assert len(interactions) == 5 * calls_per_case
    sizes = [len(str(i["request"]["body"])) for i in interactions]
    assert max(sizes) < 4000, sizes  # small whatever the clip length (long.wav is ~10 s)
    assert all(
        {k.lower() for k in i["request"]["headers"]} <= {"content-type", "x-audio-evals-case"}
        for i in interactions
    )

    listener = listener_on(port)  # the server is gone; anything that connects is counted
    replayed = run_suite(suite, record_mode="none", project=project)
    assert listener.accepted == 0
    assert [r.error for r in replayed.results] == [None] * 5
    assert [r.predicted for r in replayed.results] == [r.predicted for r in recorded.results]
    assert all(r.latency_source is LatencySource.RECORDED for r in replayed.results)
    assert [r.latency_ms for r in replayed.results] == [r.latency_ms for r in recorded.results]

    report = build_report(replayed)
    variants = report.variants.iloc[0]
    assert variants["input_tokens_per_case"] > 0
    assert variants["cost_per_case_usd"] > 0  # priced from the recorded usage
    assert report.cases["latency_ms"].min() > 0


def test_replay_blocks_a_connection_and_explains_a_miss_naming_the_function(
    project: Project, listener_on: Callable[[int], CountingListener]
) -> None:
    prompts = {"value": PROMPT}

    def extract(case: CaseInput, variant: VariantConfig) -> Person:
        if case.id == "long":  # raw socket use that vcrpy cannot answer
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        client = instructor.from_openai(
            openai.OpenAI(base_url=variant.base_url, api_key=variant.api_key, max_retries=0)
        )
        return client.chat.completions.create(
            model=variant.model,
            response_model=Person,
            messages=[
                {"role": "user", "content": [prompts["value"], Audio.from_path(case.audio_path)]}
            ],
            max_retries=0,
        )

    with LocalServer() as server:
        port = int(server.base_url.split(":")[2].split("/")[0])
        suite = _suite(project.root, server.base_url, extract)
        first = {c.id for c in suite.dataset if c.id != "long"}
        run_suite(suite, record_mode="once", project=project, cases=first)
    listener = listener_on(port)
    prompts["value"] = "A changed prompt"
    replayed = {r.case_id: r for r in run_suite(suite, record_mode="none", project=project).results}
    assert listener.accepted == 0
    name = f"{__name__}:test_replay_blocks_a_connection_and_explains_a_miss_naming_the_function.<locals>.extract"
    blocked = replayed["long"]
    assert blocked.error_kind is ErrorKind.NETWORK_BLOCKED and name in (blocked.error or "")
    missed = [r for cid, r in replayed.items() if cid != "long"]
    assert all(r.error_kind is ErrorKind.CASSETTE_MISS for r in missed)
    assert all(
        name in (r.error or "") and "messages[0].content[0].text" in (r.error or "") for r in missed
    )
    assert all(
        not f["correct"] for r in replayed.values() for f in r.fields
    )  # errored: wrong on every field


def test_a_failing_extractor_fails_only_its_own_case(project: Project) -> None:
    ids: list[str] = []

    def extract(case: CaseInput, variant: VariantConfig) -> object:
        if case.id == "long":
            time.sleep(5)  # past the variant's 1 s timeout
        if case.id == ids[0]:
            raise ValueError("no luck with this one")
        if case.id == ids[1]:
            return "not json at all"
        if case.id == ids[2]:
            return {"name": "Ann", "age": "old"}
        return Person(name="Jason", age=20)

    suite = _suite(project.root, "http://127.0.0.1:9/v1", extract, timeout=1.0)
    ids += sorted(c.id for c in suite.dataset if c.id != "long")
    start = time.perf_counter()
    results = {r.case_id: r for r in run_suite(suite, record_mode="all", project=project).results}
    assert time.perf_counter() - start < 4  # the hung case did not hold the run
    # nothing was requested, but cases errored: no empty cassette claims the batch was recorded
    assert not (project.cassette_dir / "people" / "mine.yaml").exists()
    fn = "test_a_failing_extractor_fails_only_its_own_case.<locals>.extract"
    assert all(fn in (r.error or "") for r in results.values() if r.error_kind)
    assert results["long"].error_kind is ErrorKind.TIMEOUT
    assert "did not return within 1 s" in (results["long"].error or "")
    raised = results[ids[0]]
    assert raised.error_kind is ErrorKind.EXTRACTOR
    assert "raised ValueError: no luck with this one (at " in (raised.error or "")
    assert "test_custom_extractors.py:" in (raised.error or "")
    assert results[ids[1]].error_kind is ErrorKind.WRONG_OUTPUT
    assert "does not validate as Person" in (results[ids[1]].error or "")
    assert results[ids[2]].error_kind is ErrorKind.WRONG_OUTPUT
    assert "age:" in (results[ids[2]].error or "")
    assert results[ids[3]].error_kind is None and results[ids[3]].predicted
    assert all(
        not f["correct"] for cid in (ids[0], ids[1], ids[2], "long") for f in results[cid].fields
    )


def test_the_extractor_sees_the_case_and_the_resolved_endpoint_live_and_in_replay(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`base_url = "local"` resolves to the started local server when recording and a placeholder
    in replay; a hosted variant gets the real key live and a placeholder key in replay; the case
    carries its reference transcript and tags, the variant its params and prompt. The hosted
    variant's code makes no request: its batch is kept as an empty cassette and replays."""
    monkeypatch.setenv("MY_KEY", "sk-real-key-for-this-test")
    folder = project.root / "datasets" / "people"
    (folder / "audio").mkdir(parents=True)
    source = REPO / "datasets" / "person" / "audio" / "person-0001.wav"
    (folder / "audio" / "a.wav").write_bytes(source.read_bytes())
    row = {
        "file_name": "audio/a.wav",
        "id": "a",
        "transcript": "Hi, I'm Jason and I'm 20.",
        "tags": {"speaker": "slt", "condition": "clean"},
        "expected": {"name": "Jason", "age": 20},
    }
    (folder / "metadata.jsonl").write_text(json.dumps(row) + "\n")
    seen: list[dict[str, object]] = []
    calling = {"local"}  # the variants whose code makes a request

    def extract(case: CaseInput, variant: VariantConfig) -> Person:
        seen.append(
            {
                "variant": variant.name,
                "case": (case.id, case.transcript, dict(case.tags), case.audio_path.name),
                "model": (variant.model, variant.prompt, dict(variant.params)),
                "endpoint": (variant.base_url, str(variant.api_key), repr(variant.api_key)),
            }
        )
        # one real call, so each batch has a cassette to replay from
        return (
            variant.instructor.chat.completions.create(
                model=variant.model,
                response_model=Person,
                messages=[
                    {"role": "user", "content": [variant.prompt, Audio.from_path(case.audio_path)]}
                ],
                max_retries=0,
            )
            if variant.name in calling
            else Person(name="Jason", age=20)
        )

    suite = Suite(
        name="people",
        dataset=load_dataset(folder, Person),
        response_model=Person,
        variants=(
            Variant(
                name="local",
                model="local-baseline",
                prompt=PROMPT,
                base_url="local",
                extract=extract,
                params={"temperature": 0},
            ),
            Variant(
                name="hosted",
                model="gpt-audio-mini",
                prompt=PROMPT,
                api_key_env="MY_KEY",
                extract=extract,
                params={"temperature": 0.2},
            ),
        ),
    )
    run_suite(suite, record_mode="once", project=project, variants=["local"])
    run_suite(suite, record_mode="all", project=project, variants=["hosted"])
    live = {s["variant"]: s for s in seen}
    seen.clear()
    replayed = run_suite(suite, record_mode="none", project=project)
    replay = {s["variant"]: s for s in seen}
    assert sorted(replay) == ["hosted", "local"], replayed.batches

    case = ("a", "Hi, I'm Jason and I'm 20.", {"speaker": "slt", "condition": "clean"}, "a.wav")
    assert live["local"]["case"] == replay["local"]["case"] == live["hosted"]["case"] == case
    assert live["local"]["model"] == ("local-baseline", PROMPT, {"temperature": 0})
    assert live["hosted"]["model"] == ("gpt-audio-mini", PROMPT, {"temperature": 0.2})
    local_url, local_key, local_repr = live["local"]["endpoint"]
    assert local_url.startswith("http://127.0.0.1:") and local_url.endswith("/v1")
    assert (
        replay["local"]["endpoint"][0] == "http://localhost/v1"
    )  # nothing listens; replay answers
    assert live["hosted"]["endpoint"] == (
        "https://api.openai.com/v1",
        "sk-real-key-for-this-test",
        "'***'",
    )
    assert replay["hosted"]["endpoint"][1:] == ("sk-replay-no-key-needed", "'***'")
    assert local_repr == "'***'" and local_key

    calling.clear()  # the code changes and no longer calls: a rewrite leaves an empty cassette
    local = project.cassette_dir / "people" / "local.yaml"
    assert len(yaml.safe_load(local.read_text())["interactions"]) == 1
    run_suite(suite, record_mode="rewrite", project=project, variants=["local"])
    assert yaml.safe_load(local.read_text())["interactions"] == []
