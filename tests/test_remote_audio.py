"""Audio that lives elsewhere: URLs and remote roots read through fsspec, the local cache, `audio-evals fetch`.

Real recordings (../shared's spoken digits) are served by a real HTTP server on loopback
(`file_server.py`: http.server, counting every GET, faults on demand) and by moto's S3-compatible
server; the harness reads them with fsspec's HTTP filesystem and s3fs, as it reads a team's bucket.
Runs go through the engine (`run_suite`) or `pytest evals` in a subprocess, with a cache folder of
the test's own (AUDIO_EVALS_AUDIO_CACHE).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import shutil
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
from pydantic import BaseModel, Field

from audio_evals import Project, Suite, Variant, build_report, load_dataset, run_suite, write_report
from audio_evals.audio_cache import CACHE_ENV, AudioCache, cache_root
from audio_evals.cli import main
from audio_evals.datasets import DatasetError, read_dataset
from audio_evals.problems import ProblemKind
from audio_evals.remote_audio import AudioOutcome, ensure_audio, fetch_audio, fetch_dataset
from audio_evals.results import ErrorKind
from audio_evals.schema import row_schema
from audio_evals.validation import validate_dataset

from .conftest import run_pytest, shared_path
from .file_server import FileServer

PROMPT = "Which digit does the speaker say?"
CLIPS = ("1_jackson_0.wav", "4_theo_0.wav", "7_nicolas_0.wav", "9_george_0.wav")


class SpokenDigit(BaseModel):
    """The digit a speaker says."""

    digit: int = Field(ge=0, le=9, description="The digit the speaker says, 0 to 9.")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_dataset(folder: Path, rows: list[dict[str, object]], settings: str = "") -> Path:
    """A dataset folder: metadata.jsonl with these rows, and dataset.toml when settings are given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if settings:
        (folder / "dataset.toml").write_text(textwrap.dedent(settings))
    return folder


def rows_for(file_name: dict[str, str], **extra: dict[str, object]) -> list[dict[str, object]]:
    """One row per clip (id = its stem, the label from its name), file_name as given per clip."""
    return [
        {
            "file_name": file_name[clip],
            "id": clip.removesuffix(".wav"),
            "expected": {"digit": int(clip[0])},
            **extra.get(clip, {}),
        }
        for clip in CLIPS
    ]


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The remote store's content: four real recordings of spoken digits (8 kHz WAV)."""
    recordings = shared_path("real-speech", "free-spoken-digit-dataset", "recordings")
    folder = tmp_path_factory.mktemp("bucket")
    for clip in CLIPS:
        shutil.copy(recordings / clip, folder / clip)
    return folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cold audio cache of this test's own."""
    folder = tmp_path / "audio-cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


@dataclass(frozen=True)
class Recorded:
    """A project whose cassettes were recorded from the local files of the dataset."""

    project: Project
    suite: Suite


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, bucket: Path) -> Recorded:
    """The digits suite recorded against the local server from local files, with two pipelines
    (a chat completion with the audio, and a transcription upload that carries the file name)."""
    root = tmp_path_factory.mktemp("recorded")
    (root / "pyproject.toml").write_text("[project]\nname = 'scratch'\n")
    local = root / "datasets" / "local"
    (local / "audio").mkdir(parents=True)
    for clip in CLIPS:
        shutil.copy(bucket / clip, local / "audio" / clip)
    write_dataset(local, rows_for({c: f"audio/{c}" for c in CLIPS}))
    suite = Suite(
        name="digits",
        dataset=load_dataset(local, SpokenDigit),
        response_model=SpokenDigit,
        prompt=PROMPT,
        variants=(
            Variant(name="direct", model="local-baseline", base_url="local"),
            Variant(
                name="pipeline",
                model="local-baseline",
                base_url="local",
                pipeline="transcribe_then_extract",
                transcription_model="local-baseline",
            ),
        ),
    )
    project = Project.at(root)
    run = run_suite(suite, record_mode="once", project=project)
    assert len(run.results) == 2 * len(CLIPS)
    assert [r.error for r in run.results] == [None] * len(run.results)
    return Recorded(project, suite)


def predictions(run: object) -> dict[tuple[str, str], str]:
    return {(r.variant, r.case_id): r.predicted for r in run.results}  # type: ignore[attr-defined]


# ---- HTTP: fsspec's HTTP filesystem against a real server on loopback ---------------------------


def test_a_cassette_recorded_from_local_files_replays_with_the_same_audio_remote(
    recorded: Recorded, bucket: Path, cache: Path, tmp_path: Path
) -> None:
    local_run = run_suite(recorded.suite, project=recorded.project)
    with FileServer(bucket) as server:
        remote = write_dataset(tmp_path / "remote", rows_for({c: server.url(c) for c in CLIPS}))
        suite = dataclasses.replace(recorded.suite, dataset=load_dataset(remote, SpokenDigit))
        assert server.total == 0, "loading a remote dataset fetches nothing"
        threads = threading.active_count()
        run = run_suite(suite, project=recorded.project)
        assert threading.active_count() == threads, "fetching leaves no thread (a replay may fork)"
        # each clip fetched once, before the first batch; the second batch found them cached
        assert server.requests == {clip: 1 for clip in CLIPS}
        assert len(run.results) == 2 * len(CLIPS)
        assert [r.error for r in run.results] == [None] * len(run.results)
        # the same interactions answered: the cassette keys are the digests of the bytes sent
        assert predictions(run) == predictions(local_run)
        assert all(r.audio_path.startswith(str(cache)) for r in run.results)
        again = run_suite(suite, project=recorded.project)
        assert server.total == len(CLIPS), "a warm cache makes no request"
        assert predictions(again) == predictions(local_run)


def test_a_corrupted_cache_entry_is_fetched_again_and_a_sha256_mismatch_fails_its_case(
    recorded: Recorded, bucket: Path, cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected = predictions(run_suite(recorded.suite, project=recorded.project))
    wrong = "0" * 64
    with FileServer(bucket) as server:
        remote = write_dataset(
            tmp_path / "remote",
            rows_for(
                {c: server.url(c) for c in CLIPS},
                **{CLIPS[0]: {"sha256": sha(bucket / CLIPS[0])}, CLIPS[2]: {"sha256": wrong}},
            ),
        )
        suite = dataclasses.replace(recorded.suite, dataset=load_dataset(remote, SpokenDigit))
        first = run_suite(suite, project=recorded.project)
        bad_id = CLIPS[2].removesuffix(".wav")
        failed = [r for r in first.results if r.error_kind is not None]
        assert {(r.variant, r.case_id) for r in failed} == {
            ("direct", bad_id),
            ("pipeline", bad_id),
        }
        for r in failed:
            assert r.error_kind is ErrorKind.AUDIO_INVALID
            assert f"{remote / 'metadata.jsonl'}:3: id {bad_id!r}: sha256 mismatch" in r.error
            assert wrong in r.error and sha(bucket / CLIPS[2]) in r.error
            assert [f["correct"] for f in r.fields] == [False]  # never correct by being empty
        assert len(first.results) == 2 * len(CLIPS), "the failed case is counted, not dropped"
        good = {k: v for k, v in predictions(first).items() if k[1] != bad_id}
        assert good == {k: v for k, v in expected.items() if k[1] != bad_id}

        # corrupt one cached clip: it is noticed, dropped and fetched again; the answers are the same
        entry = suite.dataset.case(CLIPS[1].removesuffix(".wav")).audio_path
        data = bytearray(entry.read_bytes())
        data[-100:] = bytes(100)
        entry.write_bytes(bytes(data))
        before = dict(server.requests)
        caplog.set_level(logging.WARNING, "audio_evals")
        second = run_suite(suite, project=recorded.project)
        assert server.requests[CLIPS[1]] == before[CLIPS[1]] + 1
        assert {c: n for c, n in server.requests.items() if c != CLIPS[1]} == {
            c: n for c, n in before.items() if c != CLIPS[1]
        }
        assert sha(entry) == sha(bucket / CLIPS[1])
        assert "1 corrupted cache entries fetched again" in caplog.text
        assert predictions(second) == predictions(first)


def test_a_clip_that_cannot_be_fetched_fails_its_own_case_without_credentials_in_messages(
    recorded: Recorded, bucket: Path, cache: Path, tmp_path: Path
) -> None:
    secret = "X-Amz-Signature=c0ffee5ecret"
    with FileServer(bucket) as server:
        urls = {c: server.url(c) for c in CLIPS}
        urls[CLIPS[3]] = server.url(f"gone/{CLIPS[3]}?{secret}")
        remote = write_dataset(tmp_path / "remote", rows_for(urls))
        suite = dataclasses.replace(recorded.suite, dataset=load_dataset(remote, SpokenDigit))
        run = run_suite(suite, project=recorded.project, variants=["direct"])
        assert server.requests[f"gone/{CLIPS[3]}"] == 1, "a 404 is not retried"
    by_case = {r.case_id: r for r in run.results}
    assert len(by_case) == len(CLIPS)
    gone = by_case[CLIPS[3].removesuffix(".wav")]
    assert gone.error_kind is ErrorKind.AUDIO_FETCH
    assert gone.error == f"could not fetch {server.url('gone/' + CLIPS[3])}?…: not found"
    assert [r.error for r in run.results if r is not gone] == [None] * (len(CLIPS) - 1)
    report = build_report(run)
    assert report.variants.iloc[0]["errors"] == 1
    write_report(report, recorded.project.root / "reports-secret")
    written = [p for p in (recorded.project.root / "reports-secret").rglob("*") if p.is_file()]
    cached = [p for p in cache.rglob("*") if p.is_file()]
    assert written and cached
    for path in written + cached:
        assert b"c0ffee5ecret" not in path.read_bytes(), path


def test_transient_errors_are_retried_with_backoff_and_every_failure_is_listed_at_once(
    bucket: Path, cache: Path, tmp_path: Path
) -> None:
    with FileServer(bucket) as server:
        server.faults = {CLIPS[0]: [503, 503], CLIPS[1]: [429], CLIPS[2]: [500] * 10}
        urls = {c: server.url(c) for c in CLIPS}
        rows = rows_for(urls)
        rows.append(
            {"file_name": server.url("missing.wav"), "id": "missing", "expected": {"digit": 1}}
        )
        folder = write_dataset(tmp_path / "flaky", rows, "[remote]\nretries = 3\n")
        loaded = read_dataset(folder, SpokenDigit)
        report = ensure_audio(loaded.cases, loaded.settings, loaded.meta, backoff=0.01)
        outcome = {s.case.id: (s.outcome, s.error) for s in report.statuses}
        assert outcome[CLIPS[0][:-4]] == (AudioOutcome.FETCHED, None)
        assert outcome[CLIPS[1][:-4]] == (AudioOutcome.FETCHED, None)
        assert outcome[CLIPS[3][:-4]] == (AudioOutcome.FETCHED, None)
        assert outcome[CLIPS[2][:-4]] == (
            AudioOutcome.FAILED,
            (
                ErrorKind.AUDIO_FETCH,
                f"could not fetch {urls[CLIPS[2]]}: HTTP 500 Internal Server Error (after 4 attempts)",
            ),
        )
        assert server.requests[CLIPS[0]] == 3 and server.requests[CLIPS[1]] == 2
        assert server.requests[CLIPS[2]] == 4 and server.requests["missing.wav"] == 1
        assert report.retries == 2 + 1 + 3
        problems = report.problems()
        assert [(p.line, p.field, p.kind) for p in problems] == [
            (3, "file_name", ProblemKind.REMOTE),
            (5, "file_name", ProblemKind.REMOTE),
        ]


def test_audio_evals_fetch_warms_the_cache_then_finds_everything_there(
    bucket: Path, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FileServer(bucket) as server:
        folder = write_dataset(
            tmp_path / "digits",
            [{"file_name": c, "id": c[:-4], "expected": {"digit": int(c[0])}} for c in CLIPS],
            f'[remote]\nroot = "{server.base_url}"\njobs = 2\n',
        )
        assert main(["fetch", str(folder)]) == 0
        out = capsys.readouterr().out
        assert f"{folder}: 4 fetched (" in out and f"0 from the cache; cache {cache}" in out
        assert server.total == 4
        assert main(["fetch", str(folder), "--jobs", "3"]) == 0
        out = capsys.readouterr().out
        assert "0 fetched (0.0 MiB" in out and "; 4 from the cache" in out
        assert server.total == 4, "a warm cache makes no request"
        assert main(["fetch", str(folder), "--refresh"]) == 0
        assert server.total == 8
        # validate fetches (from the warm cache here) and decodes every clip
        report = validate_dataset(folder, SpokenDigit)
        assert report.ok, report.problems
        assert report.cases == 4 and report.formats == {"wav": 4}
        assert server.total == 8


def test_audio_evals_fetch_lists_every_failure_and_exits_non_zero(
    bucket: Path, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    shutil.copytree(bucket, store)
    (store / "text.wav").write_text("this is not audio")
    with FileServer(store) as server:
        folder = write_dataset(
            tmp_path / "digits",
            [
                {"file_name": CLIPS[0], "id": "ok", "expected": {"digit": 1}},
                {"file_name": "nope.wav", "id": "absent", "expected": {"digit": 1}},
                {
                    "file_name": CLIPS[1],
                    "id": "pinned",
                    "expected": {"digit": 4},
                    "sha256": "ab" * 32,
                },
                {"file_name": "text.wav", "id": "text", "expected": {"digit": 4}},
                {"file_name": CLIPS[2], "id": 7, "expected": {"digit": 7}},
            ],
            f'[remote]\nroot = "{server.base_url}"\nretries = 0\n',
        )
        assert main(["fetch", str(folder)]) == 1
        captured = capsys.readouterr()
    meta = folder / "metadata.jsonl"
    assert f"{folder}: 1 fetched (" in captured.out and "; 3 failed" in captured.out
    assert f"4 problem(s) in {meta}" in captured.err
    table = captured.err
    for line, fld, words in (
        (2, "file_name", f"could not fetch {server.url('nope.wav')}: not found"),
        (3, "sha256", f"{meta}:3: id 'pinned': sha256 mismatch: the row says {'ab' * 32}"),
        (
            4,
            "file_name",
            f"{server.url('text.wav')}: the file is named '.wav' but its header says no",
        ),
        (5, "id", "must be a non-empty string"),
    ):
        assert any(
            f" {line} " in row and fld in row and words in row for row in table.splitlines()
        ), (line, table)
    assert server.requests[CLIPS[0]] == 1


def test_the_same_audio_under_another_url_is_taken_from_the_cache_by_its_sha256(
    bucket: Path, cache: Path, tmp_path: Path
) -> None:
    moved = tmp_path / "moved"
    (moved / "2027").mkdir(parents=True)
    for clip in CLIPS:
        shutil.copy(bucket / clip, moved / "2027" / clip)
    pins = {c: {"sha256": f"sha256:{sha(bucket / c)}"} for c in CLIPS}
    with FileServer(bucket) as old, FileServer(moved) as new:
        first = fetch_dataset(
            write_dataset(tmp_path / "a", rows_for({c: old.url(c) for c in CLIPS}, **pins))
        )
        assert first.report.fetched == len(CLIPS) and not first.problems
        second = fetch_dataset(
            write_dataset(
                tmp_path / "b", rows_for({c: new.url(f"2027/{c}") for c in CLIPS}, **pins)
            )
        )
        assert not second.problems
        assert second.report.count(AudioOutcome.CACHED) == len(CLIPS)
        assert new.total == 0, "content already in the cache is not fetched again"
    blobs = list((cache / "blobs").rglob("*.wav"))
    assert len(blobs) == len(CLIPS)


def test_pytest_evals_records_from_a_remote_dataset_then_replays_with_no_fetch(
    bucket: Path, cache: Path, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    (root / "evals").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'scratch'\nversion = '0'\n")
    (root / "evals" / "__init__.py").write_text("")
    (root / "evals" / "models.py").write_text(
        "from pydantic import BaseModel, Field\n\n\nclass SpokenDigit(BaseModel):\n"
        '    digit: int = Field(ge=0, le=9, description="The digit the speaker says, 0 to 9.")\n'
    )
    (root / "evals" / "digits.eval.toml").write_text(
        'dataset = "datasets/digits"\nresponse_model = "evals.models:SpokenDigit"\n'
        f'prompt = "{PROMPT}"\n\n[[variants]]\nname = "local-baseline"\n'
        'model = "local-baseline"\nbase_url = "local"\n'
    )
    env = {CACHE_ENV: str(cache)}
    with FileServer(bucket) as server:
        write_dataset(
            root / "datasets" / "digits",
            [{"file_name": c, "id": c[:-4], "expected": {"digit": int(c[0])}} for c in CLIPS],
            f'[remote]\nroot = "{server.base_url}"\n',
        )
        first = run_pytest(root, "evals", "--record-mode=once", env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"{len(CLIPS)} passed" in first.stdout
        assert f"audio of dataset digits: {len(CLIPS)} fetched" in first.stdout
        assert server.requests == {c: 1 for c in CLIPS}
        cases = (root / "reports" / "latest" / "results.csv").read_text()

        second = run_pytest(root, "evals", env=env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "audio of dataset" not in second.stdout  # nothing fetched, nothing to say
        assert server.total == len(CLIPS), "a warm cache makes no request"
        assert (root / "reports" / "latest" / "results.csv").read_text() == cases

        entry = next((cache / "urls").rglob(CLIPS[0]))
        entry.write_bytes(entry.read_bytes()[:-10] + b"corrupted!")
        third = run_pytest(root, "evals", env=env)
        assert third.returncode == 0, third.stdout + third.stderr
        assert (
            "1 fetched" in third.stdout
            and "1 corrupted cache entries fetched again" in third.stdout
        )
        assert server.requests[CLIPS[0]] == 2 and server.total == len(CLIPS) + 1
        assert (root / "reports" / "latest" / "results.csv").read_text() == cases


# ---- S3: s3fs against moto's S3-compatible server started here --------------------------------


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3-compatible server on a free loopback port, with test credentials in the environment."""
    moto_server = pytest.importorskip(
        "moto.server", reason="moto[server] is not installed (pip install -e '.[dev]')"
    )
    pytest.importorskip("s3fs", reason="s3fs is not installed (pip install -e '.[dev]')")
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_an_s3_dataset_is_read_through_s3fs_and_replays_the_local_recording(
    recorded: Recorded, bucket: Path, cache: Path, tmp_path: Path, s3_endpoint: str
) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="calls")
    for clip in CLIPS:
        s3.upload_file(str(bucket / clip), "calls", f"2026/audio/{clip}")
    folder = write_dataset(
        tmp_path / "s3-digits",
        rows_for({c: f"audio/{c}" for c in CLIPS}),
        f"""
        [remote]
        root = "s3://calls/2026/"

        [remote.options.s3]
        endpoint_url = "{s3_endpoint}"
        """,
    )
    fetched = fetch_dataset(folder, SpokenDigit)
    assert not fetched.problems
    assert fetched.report.fetched == len(CLIPS)
    for case in load_dataset(folder, SpokenDigit):
        assert case.remote is not None and case.remote.url == f"s3://calls/2026/audio/{case.id}.wav"
        assert sha(case.audio_path) == sha(bucket / f"{case.id}.wav")
    suite = dataclasses.replace(recorded.suite, dataset=load_dataset(folder, SpokenDigit))
    local = run_suite(recorded.suite, project=recorded.project)
    for clip in CLIPS:  # the objects are gone: the run is served by the cache alone
        s3.delete_object(Bucket="calls", Key=f"2026/audio/{clip}")
    run = run_suite(suite, project=recorded.project)
    assert [r.error for r in run.results] == [None] * (2 * len(CLIPS))
    assert predictions(run) == predictions(local)
    cold = fetch_dataset(folder, SpokenDigit, refresh=True)  # and a fetch that must go out fails
    assert [(p.line, p.kind) for p in cold.problems] == [
        (i, ProblemKind.REMOTE) for i in range(1, 5)
    ]
    assert all("could not fetch s3://calls/2026/audio/" in p.message for p in cold.problems)


# ---- loading and settings: no network, every problem at once ----------------------------------


def test_remote_rows_load_without_network_and_every_problem_is_named(
    tmp_path: Path, cache: Path
) -> None:
    import fsspec

    fsspec.register_implementation(
        "nosuchstore", "no_such_backend.FileSystem", clobber=True, errtxt="Install no_such_backend"
    )
    folder = write_dataset(
        tmp_path / "mixed",
        [
            {"file_name": "https://example.invalid/a.wav", "id": "url", "expected": {"digit": 1}},
            {
                "file_name": "https://example.invalid/notes.txt",
                "id": "txt",
                "expected": {"digit": 1},
            },
            {"file_name": "foo://bucket/a.wav", "id": "foo", "expected": {"digit": 1}},
            {"file_name": "nosuchstore://b/a.wav", "id": "nb", "expected": {"digit": 1}},
            {
                "file_name": "https://example.invalid/b.wav",
                "id": "sha",
                "expected": {"digit": 1},
                "sha256": "xyz",
            },
            {"file_name": "https://example.invalid/dir/", "id": "dir", "expected": {"digit": 1}},
        ],
    )
    with pytest.raises(DatasetError) as caught:
        load_dataset(folder, SpokenDigit)
    problems = [(p.line, p.field, p.kind) for p in caught.value.problems]
    assert problems == [
        (2, "file_name", ProblemKind.AUDIO),
        (3, "file_name", ProblemKind.REMOTE),
        (4, "file_name", ProblemKind.REMOTE),
        (5, "sha256", ProblemKind.TYPE),
        (6, "file_name", ProblemKind.PATH),
    ]
    text = str(caught.value)
    assert "no fsspec backend knows the protocol 'foo'" in text
    assert "Install no_such_backend" in text and "install its fsspec backend" in text
    loaded = read_dataset(folder, SpokenDigit)
    (url,) = [c for c in loaded.cases if c.id == "url"]
    assert url.remote is not None and url.remote.url == "https://example.invalid/a.wav"
    assert url.audio_path.parent.parent.parent.parent == cache and url.audio_path.name == "a.wav"
    assert not cache.exists(), "loading writes nothing and fetches nothing"


def test_a_remote_root_keeps_rows_inside_it(tmp_path: Path, cache: Path) -> None:
    folder = write_dataset(
        tmp_path / "rooted",
        [
            {"file_name": "calls/a.wav", "id": "a", "expected": {"digit": 1}},
            {"file_name": "../other/b.wav", "id": "b", "expected": {"digit": 1}},
            {"file_name": "/etc/c.wav", "id": "c", "expected": {"digit": 1}},
            {"file_name": "calls/../d.wav", "id": "d", "expected": {"digit": 1}},
        ],
        '[remote]\nroot = "https://example.invalid/data/"\n',
    )
    loaded = read_dataset(folder, SpokenDigit)
    assert [(p.line, p.kind) for p in loaded.problems] == [
        (2, ProblemKind.PATH),
        (3, ProblemKind.PATH),
    ]
    assert (
        "leads outside the remote root https://example.invalid/data/" in loaded.problems[0].message
    )
    assert [c.remote.url for c in loaded.cases if c.remote] == [
        "https://example.invalid/data/calls/a.wav",
        "https://example.invalid/data/d.wav",
    ]


def test_remote_settings_are_checked_and_credentials_refused(tmp_path: Path) -> None:
    folder = write_dataset(
        tmp_path / "settings",
        [{"file_name": "a.wav", "id": "a", "expected": {"digit": 1}}],
        """
        [remote]
        root = "bucket/folder"
        jobs = 0
        retries = -1
        timeout = "soon"
        mirror = true

        [remote.options.s3]
        endpoint_url = "https://storage.example.com"
        secret = "AKIA-NOT-IN-GIT"
        config_kwargs = { signature_version = "s3v4" }

        [remote.options.https]
        headers = { Authorization = "Bearer abc" }

        [remote.options.gs]
        token = "anon"

        [remote.options.az]
        account_name = "acme"
        client_kwargs = { account_key = "k" }
        """,
    )
    loaded = read_dataset(folder, SpokenDigit)
    problems = [p for p in loaded.problems if p.path.name == "dataset.toml"]
    assert [p.field for p in problems] == [
        "remote.mirror",
        "remote.root",
        "remote.jobs",
        "remote.retries",
        "remote.timeout",
        "remote.options.s3.secret",
        "remote.options.https.headers.Authorization",
        "remote.options.az.client_kwargs.account_key",
    ]
    assert "credentials never go in a file" in problems[-1].message
    assert loaded.settings.remote.options == {"gs": {"token": "anon"}}
    fine = write_dataset(
        tmp_path / "fine",
        [{"file_name": "a.wav", "id": "a", "expected": {"digit": 1}}],
        """
        [remote]
        root = "s3://bucket/"
        [remote.options.s3]
        endpoint_url = "https://minio.internal:9000"
        config_kwargs = { signature_version = "s3v4" }
        client_kwargs = { region_name = "eu-west-1" }
        """,
    )
    settings = read_dataset(fine, SpokenDigit).settings.remote
    assert settings.options["s3"]["config_kwargs"] == {"signature_version": "s3v4"}


def test_the_cache_folder_is_the_environment_s_then_the_dataset_s_then_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root(None, tmp_path) == tmp_path / "xdg" / "audio-evals" / "audio"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root(None, tmp_path) == Path.home() / ".cache" / "audio-evals" / "audio"
    assert cache_root(".audio-cache", tmp_path / "ds") == tmp_path / "ds" / ".audio-cache"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "ci-cache"))
    assert cache_root(".audio-cache", tmp_path / "ds") == tmp_path / "ci-cache"
    entry = AudioCache(tmp_path / "c").url_entry("ab" * 32, "x.wav")
    assert AudioCache.holding(entry).root == tmp_path / "c"


def test_a_local_row_s_sha256_is_checked_when_its_audio_is_used(
    tmp_path: Path, bucket: Path
) -> None:
    folder = tmp_path / "local"
    (folder / "audio").mkdir(parents=True)
    for clip in CLIPS[:2]:
        shutil.copy(bucket / clip, folder / "audio" / clip)
    write_dataset(
        folder,
        [
            {
                "file_name": f"audio/{CLIPS[0]}",
                "id": "good",
                "expected": {"digit": 1},
                "sha256": sha(bucket / CLIPS[0]).upper(),
            },
            {
                "file_name": f"audio/{CLIPS[1]}",
                "id": "bad",
                "expected": {"digit": 4},
                "sha256": sha(bucket / CLIPS[0]),
            },
        ],
    )
    report = validate_dataset(folder, SpokenDigit)
    assert [(p.line, p.field, p.kind) for p in report.problems] == [
        (2, "sha256", ProblemKind.AUDIO)
    ]
    assert f"{folder / 'metadata.jsonl'}:2: id 'bad': sha256 mismatch" in report.problems[0].message
    assert report.rows_with_audio == 1


def test_fetch_pin_writes_each_file_s_sha256_into_its_row_and_a_changed_object_is_then_caught(
    bucket: Path, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    shutil.copytree(bucket, store)
    with FileServer(store) as server:
        folder = write_dataset(
            tmp_path / "digits",
            rows_for({c: c for c in CLIPS}, **{CLIPS[0]: {"sha256": sha(bucket / CLIPS[0])}}),
            f'[remote]\nroot = "{server.base_url}"\n',
        )
        meta = folder / "metadata.jsonl"
        before = meta.read_text().splitlines()
        assert main(["fetch", str(folder), "--pin"]) == 0
        assert f"sha256 written to 3 row(s) of {meta}" in capsys.readouterr().out
        after = meta.read_text().splitlines()
        assert after[0] == before[0], "a row that has its sha256 is left as it is"
        for line, clip in zip(after[1:], CLIPS[1:], strict=True):
            assert json.loads(line)["sha256"] == sha(bucket / clip)
        assert all(c.sha256 for c in load_dataset(folder, SpokenDigit))
        for line in after:  # a pinned row is one the row schema (audio-evals schema) accepts
            jsonschema.validate(json.loads(line), row_schema(SpokenDigit))
        # the object changes in the store: a fresh fetch is caught by the pinned digest
        shutil.copy(bucket / CLIPS[0], store / CLIPS[3])
        result = fetch_dataset(folder, refresh=True)
        assert [(p.line, p.field) for p in result.problems] == [(4, "sha256")]
        assert f"{meta}:4: id '{CLIPS[3][:-4]}': sha256 mismatch" in result.problems[0].message


def test_stats_and_augment_name_remote_audio_they_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_dataset(
        tmp_path / "remote",
        [
            {
                "file_name": "https://example.invalid/a.wav?sig=abc",
                "id": "a",
                "expected": {"digit": 1},
            },
        ],
    )
    assert main(["stats", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "remote audio (https://example.invalid/a.wav?…): this command reads audio in the " in err
    assert "sig=abc" not in err


def test_rows_that_share_a_url_fetch_it_once_also_from_inside_an_event_loop(
    bucket: Path, cache: Path, tmp_path: Path
) -> None:
    import asyncio

    from audio_evals.remote_audio import fetch_audio

    with FileServer(bucket) as server:
        rows = [
            {"file_name": server.url(CLIPS[0]), "id": f"take-{i}", "expected": {"digit": 1}}
            for i in range(6)
        ]
        dataset = load_dataset(write_dataset(tmp_path / "shared", rows), SpokenDigit)

        async def in_a_notebook() -> object:  # a running loop, as in Jupyter or an async app
            return fetch_audio(dataset, jobs=6)

        report = asyncio.run(in_a_notebook())
        assert server.requests == {CLIPS[0]: 1}
    assert report.count(AudioOutcome.FETCHED) == 1  # type: ignore[attr-defined]
    assert report.count(AudioOutcome.CACHED) == 5  # type: ignore[attr-defined]
    assert {sha(c.audio_path) for c in dataset} == {sha(bucket / CLIPS[0])}


def test_fetching_runs_at_most_jobs_at_once_and_shows_a_progress_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """9 files that each take 0.4 s to serve, 3 jobs: 3 at once (never more), with a bar."""
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    clip = shared_path(
        "real-speech", "free-spoken-digit-dataset", "recordings", CLIPS[0]
    ).read_bytes()
    for i in range(9):
        (bucket / f"take-{i}.wav").write_bytes(clip)
    with FileServer(bucket, delay=0.4) as server:
        rows = [
            {"file_name": server.url(f"take-{i}.wav"), "id": f"take-{i}", "expected": {"digit": 1}}
            for i in range(9)
        ]
        dataset = load_dataset(write_dataset(tmp_path / "shared", rows), SpokenDigit)
        report = fetch_audio(dataset, jobs=3, progress=True)
        assert server.total == 9
        assert 1 < server.peak <= 3, server.peak  # concurrent, and never more than the jobs
    assert report.count(AudioOutcome.FETCHED) == 9  # type: ignore[attr-defined]
    bar = capsys.readouterr().err
    assert re.search(r"audio: +\d+%.*\| [1-9]/9 \[", bar), (
        bar
    )  # drawn after 1 s, cleared at the end
