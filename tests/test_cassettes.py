"""Cassette layer: audio digests in bodies, canonical matching, secrets never written, atomic saves."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from vcr.request import Request

from audio_evals import cassettes as cas
from audio_evals.bodies import digest, normalise_body
from audio_evals.traffic import case_traffic

WAV = b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 400
AUDIO = base64.b64encode(WAV).decode()


def chat_body(audio: str = AUDIO, prompt: str = "Extract the person") -> bytes:
    body = {
        "model": "gpt-audio-1.5",
        "modalities": ["text"],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": prompt},
                    {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
                ],
            }
        ],
        "tools": [
            {"type": "function", "function": {"name": "Person", "parameters": {"type": "object"}}}
        ],
    }
    return json.dumps(body).encode()


def test_audio_payload_becomes_its_digest_and_normalisation_is_idempotent() -> None:
    once = normalise_body(chat_body(), "application/json")
    assert once is not None
    assert AUDIO not in once.decode()
    assert digest(WAV).encode() in once  # the sha256 of the audio bytes, as `sha256sum` prints it
    assert len(once) < 600
    assert normalise_body(once, "application/json") == once


def test_key_order_and_whitespace_do_not_change_the_normalised_body() -> None:
    a = json.loads(chat_body())
    reordered = json.dumps(dict(reversed(list(a.items()))), indent=2).encode()
    assert normalise_body(reordered, "application/json") == normalise_body(
        chat_body(), "application/json"
    )


def test_data_uri_audio_is_digested_too() -> None:
    body = json.dumps({"audio_url": f"data:audio/wav;base64,{AUDIO}"}).encode()
    out = normalise_body(body, "application/json")
    assert out is not None and AUDIO not in out.decode() and b"data:audio/wav;base64,sha256:" in out


def multipart(boundary: str, payload: bytes) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n',
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n",
    ]
    return "".join(parts).encode() + payload + f"\r\n--{boundary}--\r\n".encode()


def test_multipart_upload_is_canonical_whatever_the_boundary() -> None:
    raw = WAV[:5000]
    one = normalise_body(multipart("aaa", raw), "multipart/form-data; boundary=aaa")
    two = normalise_body(multipart("zzz", raw), "multipart/form-data; boundary=zzz")
    assert one == two
    parsed = json.loads(one or b"")
    assert parsed["multipart/form-data"]["model"] == "whisper-1"
    assert parsed["multipart/form-data"]["file"]["data"] == digest(raw)
    assert normalise_body(one, "multipart/form-data") == one


def live_request(body: bytes, url: str = "http://127.0.0.1:43123/v1/chat/completions") -> Request:
    headers = {
        "Authorization": "Bearer sk-canary-0123456789abcdef",
        "OpenAI-Organization": "org-canary",
        "OpenAI-Project": "proj_canary",
        "api-key": "azure-canary",
        "Cookie": "session=canary",
        "Content-Type": "application/json",
        "X-Stainless-Retry-Count": "0",
    }
    return Request("POST", url, body, headers)


def test_filter_request_keeps_no_secret_header_and_canonical_uri() -> None:
    req = cas.filter_request(live_request(chat_body()))
    assert dict(req.headers) == {"Content-Type": "application/json"}
    assert req.uri == "http://localhost/v1/chat/completions"
    assert AUDIO.encode() not in req.body
    keyed = cas.filter_request(
        live_request(
            chat_body(),
            "https://generativelanguage.googleapis.com/v1beta/m:gen?key=AIzaSecret&alt=json",
        )
    )
    assert "AIzaSecret" not in keyed.uri and "key=REDACTED" in keyed.uri


def test_match_key_ignores_headers_and_port_but_not_prompt_or_audio() -> None:
    base = cas.match_key(live_request(chat_body()))
    other_port = live_request(chat_body(), "http://localhost:9/v1/chat/completions")
    other_port.headers = {"Content-Type": "application/json", "X-Stainless-Retry-Count": "2"}
    assert cas.match_key(other_port) == base
    assert cas.match_key(live_request(chat_body(prompt="Other prompt"))) != base
    assert cas.match_key(live_request(chat_body(audio=AUDIO[:-8] + "AAAAAAAA"))) != base
    with case_traffic("person-0001", 0):  # an interaction belongs to its case and repeat
        assert cas.match_key(live_request(chat_body())) != base
        tagged = cas.filter_request(live_request(chat_body()))
    assert tagged.headers[cas.CASE_HEADER] == "person-0001/0"
    assert cas.match_key(tagged, stored=True)[0] == "person-0001/0"
    assert cas.match_key(cas.filter_request(live_request(chat_body()))) == base


def test_filter_response_keeps_answers_only() -> None:
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {
            "set-cookie": ["a=b"],
            "openai-organization": ["org-x"],
            "openai-project": ["p"],
            "x-request-id": ["r"],
        },
        "body": {"string": "{}"},
    }
    kept = cas.filter_response(response)
    assert kept is not None and set(kept["headers"]) == {"x-request-id"}
    for code in (400, 401, 403, 404, 422, 429, 500, 503):  # a wrong request or key is no answer
        assert (
            cas.filter_response({"status": {"code": code}, "headers": {}, "body": {"string": ""}})
            is None
        )


def test_atomic_save_leaves_the_old_file_when_serialising_fails(tmp_path: Path) -> None:
    from vcr.serializers import yamlserializer

    path = tmp_path / "suite" / "v.yaml"
    path.parent.mkdir()
    path.write_text("old", encoding="utf-8")

    class Boom:
        @staticmethod
        def serialize(data: object) -> str:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        cas.AtomicPersister.save_cassette(path, {"requests": [], "responses": []}, Boom)
    assert path.read_text(encoding="utf-8") == "old"
    assert list(path.parent.iterdir()) == [path]
    cas.AtomicPersister.save_cassette(path, {"requests": [], "responses": []}, yamlserializer)
    assert "interactions" in path.read_text(encoding="utf-8")


def test_unreadable_and_foreign_cassettes_get_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("interactions: [\n  - {", encoding="utf-8")
    with pytest.raises(cas.CassetteFormatError, match=r"bad.yaml:2: not a readable cassette"):
        with cas.open_cassette(bad, "none"):
            pass
    foreign = tmp_path / "foreign.yaml"
    foreign.write_text(
        "interactions:\n- request: {body: '{}', headers: {}, method: POST, uri: 'http://x/v1/chat/completions'}\n"
        "  response: {body: {string: '{}'}, headers: {}, status: {code: 200, message: OK}}\nversion: 1\n",
        encoding="utf-8",
    )
    with pytest.raises(cas.CassetteFormatError, match="has no audio-evals metadata block"):
        with cas.open_cassette(foreign, "none"):
            pass


def test_unknown_record_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'sometimes' is not a valid RecordMode"):
        cas.open_cassette(tmp_path / "x.yaml", "sometimes")


def _tricky_cassette() -> dict[str, object]:
    """Interactions whose bodies hold newlines, YAML-looking lines and unicode."""
    requests, responses = [], []
    for i, text in enumerate(
        [
            "plain",
            "line one\n- request:\n  response: not a key\ninteractions:",
            "  leading spaces and 'quotes' and \"double\" and: colons",
            "unicode: Zoë, 東京, emoji \U0001f3a4\n\n- ",
        ]
    ):
        requests.append(
            Request("POST", f"http://x/v1/chat/completions?i={i}", text.encode(), {"a": "b"})
        )
        responses.append(
            {
                "status": {"code": 200, "message": "OK"},
                "headers": {"content-type": ["application/json"]},
                "body": {"string": json.dumps({"content": text}).encode()},
            }
        )
    return {
        "requests": requests,
        "responses": responses,
        "metadata": {"audio_evals": {"format": cas.CASSETTE_FORMAT}},
    }


def test_cassettes_are_read_one_interaction_at_a_time_with_vcrpys_result() -> None:
    from vcr.serialize import deserialize, serialize
    from vcr.serializers import yamlserializer

    samples = [serialize(_tricky_cassette(), yamlserializer)]
    samples += [p.read_text(encoding="utf-8") for p in sorted(Path("cassettes").rglob("*.yaml"))]
    for text in samples:
        ours = cas._deserialize_by_interaction(text, yamlserializer)
        theirs = deserialize(text, yamlserializer)
        assert len(ours) == len(theirs)
        assert [r._to_dict() for r in ours[0]] == [r._to_dict() for r in theirs[0]]
        assert ours[1:] == theirs[1:]


def test_a_cassette_in_another_yaml_layout_is_still_read_by_vcrpy(tmp_path: Path) -> None:
    import yaml
    from vcr.serialize import serialize
    from vcr.serializers import yamlserializer

    data = yaml.safe_load(serialize(_tricky_cassette(), yamlserializer))
    flow = yaml.safe_dump(data, default_flow_style=True, width=60)  # not vcrpy's layout
    path = tmp_path / "flow.yaml"
    path.write_text(flow, encoding="utf-8")
    with pytest.raises(ValueError):
        cas._deserialize_by_interaction(flow, yamlserializer)
    requests, responses, metadata = cas.AtomicPersister.load_cassette(path, yamlserializer)
    assert [r.body for r in requests] == [r.body for r in _tricky_cassette()["requests"]]  # type: ignore[union-attr]
    assert metadata == {"audio_evals": {"format": cas.CASSETTE_FORMAT}}


def _write_chat_cassette(
    path: Path, audios: list[str], cases: list[tuple[str, int]]
) -> list[Request]:
    """A cassette as the harness writes it: one chat interaction per (audio, case), answer `{"i": k}`."""
    from vcr.serialize import serialize
    from vcr.serializers import yamlserializer

    live = [
        Request(
            "POST",
            "http://localhost/v1/chat/completions",
            chat_body(audio),
            {"content-type": "application/json", "authorization": "Bearer sk-x"},
        )
        for audio in audios
    ]
    stored = []
    for request, (case_id, repeat) in zip(live, cases, strict=True):
        with case_traffic(case_id, repeat):
            stored.append(cas.filter_request(Request._from_dict(request._to_dict())))
    responses = [
        {
            "status": {"code": 200, "message": "OK"},
            "headers": {"content-type": ["application/json"]},
            "body": {"string": json.dumps({"i": k}).encode()},
        }
        for k in range(len(audios))
    ]
    doc = {
        "requests": stored,
        "responses": responses,
        "metadata": {"audio_evals": {"format": cas.CASSETTE_FORMAT}},
    }
    path.write_text(serialize(doc, yamlserializer), encoding="utf-8")
    return live


def _answer(response: dict[str, object]) -> object:
    return json.loads(response["body"]["string"])["i"]  # type: ignore[index]


def _play(cassette: cas.IndexedCassette, request: Request, case: tuple[str, int]) -> object:
    with case_traffic(*case):
        assert cassette.can_play_response_for(request)
        return _answer(cassette.play_response(request))


def test_replay_parses_only_the_interactions_of_the_case_that_asks(tmp_path: Path) -> None:
    audios = [base64.b64encode(WAV[:12] + bytes([k]) * 3000).decode() for k in range(6)]
    audios.append(audios[2])  # a repeat: the same request recorded twice, for repeats 0 and 1
    cases = [(f"case {k}", 0) for k in range(6)] + [("case 2", 1)]
    path = tmp_path / "c.yaml"
    live = _write_chat_cassette(path, audios, cases)
    with cas.open_cassette(path, "none") as cassette:
        assert len(cassette) == 7 and cassette._unparsed == 7
        assert _play(cassette, live[4], cases[4]) == 4
        assert cassette._unparsed == 6
        assert _play(cassette, live[6], cases[6]) == 6  # repeat 1 gets repeat 1's answer
        assert _play(cassette, live[2], cases[2]) == 2
        assert cassette._unparsed == 4
        with case_traffic("case 2", 0):  # played already: a miss, decided on everything
            assert not cassette.can_play_response_for(live[2])
            assert "already played" in cassette.explain_miss(live[2])
        with case_traffic("case 1", 0):  # another case's audio: the nearest miss is explained
            assert not cassette.can_play_response_for(live[3])
            assert "audio differs" in cassette.explain_miss(live[3])
        assert cassette._unparsed == 0
        assert cassette.unused_indices() == [0, 1, 3, 5]
        assert [r.uri for r in cassette.requests] == ["http://localhost/v1/chat/completions"] * 7
        assert all("authorization" not in r.headers for r in cassette.requests)


def test_an_unreadable_interaction_names_the_file_and_line_when_it_is_needed(
    tmp_path: Path,
) -> None:
    audios = [base64.b64encode(WAV[:12] + bytes([k]) * 3000).decode() for k in range(3)]
    cases = [(f"c{k}", 0) for k in range(3)]
    path = tmp_path / "c.yaml"
    live = _write_chat_cassette(path, audios, cases)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("- request:")]
    status = next(i for i in range(starts[1], starts[2]) if "code: 200" in lines[i])
    lines[status] = lines[status].replace("code: 200", "code: [200")
    path.write_text("".join(lines), encoding="utf-8")
    with cas.open_cassette(path, "none") as cassette:
        assert _play(cassette, live[0], cases[0]) == 0
        with (
            case_traffic(*cases[1]),
            pytest.raises(
                cas.CassetteFormatError,
                match=rf"c\.yaml:{starts[1] + 1}: interaction 2 is not readable",
            ),
        ):
            cassette.can_play_response_for(live[1])


def test_a_pruned_lazy_cassette_keeps_exactly_the_played_interactions(tmp_path: Path) -> None:
    audios = [base64.b64encode(WAV[:12] + bytes([k]) * 3000).decode() for k in range(5)]
    cases = [(f"c{k}", 0) for k in range(5)]
    path = tmp_path / "c.yaml"
    live = _write_chat_cassette(path, audios, cases)
    with cas.open_cassette(path, "none") as cassette:
        assert _play(cassette, live[3], cases[3]) == 3
        cassette.merge_plays({1: 1})  # played by a forked replay process, unparsed here
        cassette.drop_unused_requests = True
    with cas.open_cassette(path, "none") as cassette:
        assert sorted(_play(cassette, live[k], cases[k]) for k in (1, 3)) == [1, 3]
        assert len(cassette) == 2
