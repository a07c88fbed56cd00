"""Shared helpers of the audio-evals benchmarks: audio, scratch projects, timed runs, PASS/MISS rows."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import wave
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK_ROOT = BENCH_DIR / ".work"
SAMPLE_RATE = 16_000
SEED = 20_270_303
KEY_ENV = "AUDIO_EVALS_BENCH_KEY"
MODEL = "local-baseline-mini"
SUITE = "bench"
PROMPTS = (
    "Extract the following information from the audio",
    "Extract the speaker's first name and age from the audio",
)
TINY_SECONDS = 0.04  # under the local server's 50 ms "nothing to hear" threshold: no decoding
PROJECT_FORMAT = 2  # bump when the generated projects change shape

MODELS_PY = '''\
"""The response model of the generated benchmark suites (the same schema as the demo Person)."""

from pydantic import BaseModel, Field


class Person(BaseModel):
    """A person who introduces themselves."""

    name: str = Field(description="The speaker's first name, as they say it, e.g. 'Jason'.")
    age: int = Field(description="The speaker's own age in whole years, e.g. 20.")
'''

# The naive way: one test per case, one pytest-recording cassette per test (full request bodies,
# vcrpy's default matching), the same instructor call as the harness's Extractor (direct pipeline).
NAIVE_TEST = '''\
"""Generated naive baseline: pytest-recording, one test and one full-body cassette per case."""

import asyncio
import json
from pathlib import Path

import instructor
import pytest
from instructor.processing.multimodal import Audio
from openai import AsyncOpenAI

from evals.models import Person

HERE = Path(__file__).resolve().parent
SPEC = json.loads((HERE / "cases.json").read_text(encoding="utf-8"))
LOOP = asyncio.new_event_loop()
CLIENT = instructor.from_openai(AsyncOpenAI(base_url=SPEC["base_url"], api_key="sk-local"))


async def extract(case):
    return await CLIENT.chat.completions.create_with_completion(
        model=case["model"],
        response_model=Person,
        messages=[{"role": "user", "content": [case["prompt"], Audio.from_path(HERE.parent / case["audio"])]}],
        max_retries=1,
        modalities=["text"],
    )


@pytest.mark.vcr
@pytest.mark.parametrize("case", SPEC["cases"], ids=[c["id"] for c in SPEC["cases"]])
def test_extract(case):
    predicted, completion = LOOP.run_until_complete(extract(case))
    assert isinstance(predicted, Person)
'''


# ---------------------------------------------------------------- figures and output
@dataclass
class Figure:
    """One printed figure: its value, the target and PASS/MISS (INFO when it has no target)."""

    bench: str
    name: str
    value: str
    target: str = ""
    status: str = "INFO"
    note: str = ""


def judged(bench: str, name: str, value: str, target: str, ok: bool, note: str = "") -> Figure:
    """A figure with a target: PASS when ok, else MISS."""
    return Figure(bench, name, value, target, "PASS" if ok else "MISS", note)


def print_figures(title: str, figures: Sequence[Figure]) -> None:
    """Print a figure table: name, value, target, status."""
    print(f"\n== {title} ==")
    if not figures:
        return
    w_name = max(len(f.name) for f in figures)
    w_value = max(len(f.value) for f in figures)
    w_target = max(len(f.target) for f in figures)
    for f in figures:
        line = f"  {f.name:<{w_name}}  {f.value:>{w_value}}  {f.target:<{w_target}}  {f.status}"
        print(line.rstrip() + (f"  ({f.note})" if f.note else ""))


def machine() -> dict[str, Any]:
    """What the figures were measured on (cores, CPU, Python, load)."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg": load(),
    }


def load() -> str:
    """The 1/5/15-minute load averages as text (other jobs on the machine skew timings)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def base_parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark script takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--short", action="store_true", help="CI sizes (a few minutes in all)")
    parser.add_argument(
        "--work", default=None, help="work directory (default: a temp dir in benchmarks/.work/)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory and recorded projects"
    )
    parser.add_argument("--json", default=None, help="also write the figures as JSON here")
    return parser


@contextlib.contextmanager
def work_dir(given: str | None, keep: bool) -> Iterator[Path]:
    """The work directory: the given one (kept), or a fresh one under benchmarks/.work/."""
    if given:
        path = Path(given).resolve()
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="run-", dir=WORK_ROOT))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)
        else:
            print(f"kept work directory {path}")


def finish(
    bench: str,
    figures: Sequence[Figure],
    json_path: str | None,
    started: float,
    details: dict[str, Any] | None = None,
) -> None:
    """Print the figure table and the run time; write the JSON file when asked."""
    elapsed = time.perf_counter() - started
    print_figures(f"{bench}: figures", figures)
    print(f"\n{bench}: done in {elapsed:.1f} s (load average now {load()})")
    if json_path:
        Path(json_path).write_text(
            json.dumps(
                {
                    "bench": bench,
                    "seconds": round(elapsed, 1),
                    "figures": [asdict(f) for f in figures],
                    "details": details or {},
                    "machine": machine(),
                },
                indent=2,
            ),
            encoding="utf-8",
        )


# ---------------------------------------------------------------- audio
def speechlike(seconds: float, seed: int) -> np.ndarray:
    """Seeded 16 kHz int16 'speech-like' audio: a gliding harmonic voice in syllables, with a noise floor."""
    rng = np.random.default_rng([SEED, seed])
    n = int(round(seconds * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    f0 = rng.uniform(95, 230) * (1 + 0.12 * np.sin(2 * np.pi * rng.uniform(0.2, 0.8) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    formants = rng.uniform([450, 1100, 2300], [850, 1900, 3100])
    voice = np.zeros(n)
    for k in range(1, 16):
        freq = k * float(np.mean(f0))
        gain = sum(np.exp(-(((freq - fm) / 180.0) ** 2)) for fm in formants) + 0.15 / k
        voice += gain * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    rate = rng.uniform(3.0, 5.0)
    syllables = np.clip(np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)), 0, None) ** 0.6
    hiss = rng.standard_normal(n) * (syllables < 0.05) * 0.05
    signal = voice * syllables + hiss + rng.standard_normal(n) * 0.003
    peak = float(np.max(np.abs(signal))) or 1.0
    return (signal / peak * 0.7 * 32767).astype(np.int16)


def tiny(seed: int) -> np.ndarray:
    """A distinct 40 ms clip (seeded noise): the local server answers it without decoding."""
    rng = np.random.default_rng([SEED, 7, seed])
    n = int(TINY_SECONDS * SAMPLE_RATE)
    return (rng.standard_normal(n) * 3000).clip(-32768, 32767).astype(np.int16)


def write_wav(path: Path, pcm: np.ndarray) -> Path:
    """Write 16 kHz mono 16-bit PCM as a WAV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.astype("<i2").tobytes())
    return path


# ---------------------------------------------------------------- scratch projects
@dataclass(frozen=True)
class ProjectSpec:
    """A generated project: N cases (kind of audio, seconds each) x V variants, with or without the naive module."""

    n_cases: int
    variants: int = 1
    kind: str = (
        "speech"  # "speech" (seconds each), "tiny" (40 ms) or "durations" (one case per entry)
    )
    seconds: float = 3.0
    durations: tuple[float, ...] = ()
    naive: bool = False
    same_audio: bool = False  # every case reads one clip (the live benchmark)
    seed_offset: int = 0

    @property
    def key(self) -> str:
        """A directory name that identifies the project's content."""
        parts = [f"f{PROJECT_FORMAT}", self.kind, f"n{self.n_cases}", f"v{self.variants}"]
        if self.kind == "speech":
            parts.append(f"s{self.seconds:g}")
        if self.durations:
            parts.append("d" + "-".join(f"{d:g}" for d in self.durations))
        if self.naive:
            parts.append("naive")
        if self.same_audio:
            parts.append("same")
        if self.seed_offset:
            parts.append(f"o{self.seed_offset}")
        return "_".join(parts)

    @property
    def items(self) -> int:
        """Eval items (= interactions) of the project: cases x variants."""
        return self.n_cases * self.variants


def variant_names(count: int) -> list[str]:
    """The generated variant names."""
    return [f"mini-{chr(ord('a') + i)}" for i in range(count)]


def case_ids(spec: ProjectSpec) -> list[str]:
    """The generated case ids."""
    return [f"case-{i + 1:05d}" for i in range(spec.n_cases)]


def write_project(root: Path, spec: ProjectSpec, base_url: str) -> Path:
    """Write pyproject, the response model, the dataset (audio + metadata), the suite and the naive module."""
    (root / "evals").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        "[project]\nname = 'bench-scratch'\nversion = '0'\n\n[tool.pytest.ini_options]\n"
        'pythonpath = ["."]\naddopts = "-p no:cacheprovider"\n',
        encoding="utf-8",
    )
    (root / "evals" / "__init__.py").write_text("", encoding="utf-8")
    (root / "evals" / "models.py").write_text(MODELS_PY, encoding="utf-8")
    data = root / "datasets" / SUITE
    rows = []
    ids = case_ids(spec)
    for i, case_id in enumerate(ids):
        if spec.same_audio:
            name = "audio/shared.wav"
            if i == 0:
                write_wav(data / name, speechlike(spec.seconds, spec.seed_offset))
        else:
            name = f"audio/{case_id}.wav"
            seed = spec.seed_offset + i
            if spec.kind == "tiny":
                pcm = tiny(seed)
            elif spec.kind == "durations":
                pcm = speechlike(spec.durations[i], seed)
            else:
                pcm = speechlike(spec.seconds, seed)
            write_wav(data / name, pcm)
        rows.append(
            json.dumps({"file_name": name, "id": case_id, "expected": {"name": "Jason", "age": 20}})
        )
    (data / "metadata.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    lines = [
        f'dataset = "datasets/{SUITE}"',
        'response_model = "evals.models:Person"',
        f'prompt = "{PROMPTS[0]}"',
    ]
    for i, name in enumerate(variant_names(spec.variants)):
        lines += [
            "",
            "[[variants]]",
            f'name = "{name}"',
            f'model = "{MODEL}"',
            f'base_url = "{base_url}"',
            f'api_key_env = "{KEY_ENV}"',
        ]
        if i:
            lines.append(f'prompt = "{PROMPTS[i % len(PROMPTS)]}"')
    (root / "evals" / f"{SUITE}.eval.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if spec.naive:
        naive = root / "naive"
        naive.mkdir(exist_ok=True)
        (naive / "test_naive.py").write_text(NAIVE_TEST, encoding="utf-8")
        cases = []
        for (
            case_id
        ) in ids:  # case-major, so a clip's second variant is an ASR cache hit when recording
            audio = f"datasets/{SUITE}/" + (
                "audio/shared.wav" if spec.same_audio else f"audio/{case_id}.wav"
            )
            for i, name in enumerate(variant_names(spec.variants)):
                cases.append(
                    {
                        "id": f"{name}-{case_id}",
                        "model": MODEL,
                        "prompt": PROMPTS[i % len(PROMPTS)],
                        "audio": audio,
                    }
                )
        (naive / "cases.json").write_text(
            json.dumps({"base_url": base_url, "cases": cases}, indent=0), encoding="utf-8"
        )
    return root


# ---------------------------------------------------------------- subprocess runs
@dataclass
class Run:
    """A finished subprocess: wall time, exit code, output and (with /usr/bin/time -v) peak RSS."""

    wall: float
    returncode: int
    stdout: str
    stderr: str
    max_rss_kb: int | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def tail(self, chars: int = 3000) -> str:
        """The end of the output, for error messages."""
        return (self.stdout + "\n" + self.stderr)[-chars:]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for child runs: no OpenAI/pytest variables, the bench key set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTEST_"))}
    env[KEY_ENV] = "sk-local"
    env.update(extra or {})
    return env


def _counts(text: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for number, word in re.findall(
        r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed)", text
    ):
        found[word.rstrip("s") if word.startswith("error") else word] = int(number)
    return found


def run(
    cmd: Sequence[str],
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    time_v: bool = False,
    timeout: float = 3600,
) -> Run:
    """Run a command to completion, timing its wall clock (and its peak RSS with /usr/bin/time -v)."""
    full = list(cmd)
    if time_v:
        full = ["/usr/bin/time", "-v", *full]
    started = time.perf_counter()
    proc = subprocess.run(
        full, cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=timeout
    )
    wall = time.perf_counter() - started
    rss = None
    if time_v:
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
        rss = int(match.group(1)) if match else None
    return Run(wall, proc.returncode, proc.stdout, proc.stderr, rss, _counts(proc.stdout))


def pytest_cmd(*args: str) -> list[str]:
    """`python -m pytest -q -p no:cacheprovider ARGS` with this interpreter."""
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]


OURS = ("evals",)
NAIVE = ("naive", "-p", "no:audio_evals", "-p", "recording")


def ours_cmd(*extra: str) -> list[str]:
    """The harness's command: `pytest evals` (replay by default)."""
    return pytest_cmd(*OURS, *extra)


def naive_cmd(*extra: str) -> list[str]:
    """The naive command: pytest-recording on the generated module, with the audio-evals plugin off."""
    return pytest_cmd(*NAIVE, *extra)


def expect_passed(result: Run, items: int, what: str) -> None:
    """Raise with the output when a run did not pass exactly `items` tests."""
    if result.returncode != 0 or result.counts.get("passed") != items:
        raise RuntimeError(
            f"{what}: expected {items} passed, got rc={result.returncode} {result.counts}\n{result.tail()}"
        )


# ---------------------------------------------------------------- recording
class Recorder:
    """Records generated projects against one local server (started on first use), reusing recorded ones."""

    def __init__(self, work: Path) -> None:
        """Projects live under `work/projects/<key>`."""
        self.work = work
        self._server: Any = None
        self._stack = contextlib.ExitStack()
        self.record_seconds: dict[str, float] = {}

    def server(self) -> Any:
        """The local server (started now if needed)."""
        if self._server is None:
            from audio_evals.local.runner import LocalServer

            self._server = self._stack.enter_context(LocalServer(seed=0))
        return self._server

    def close(self) -> None:
        """Stop the server."""
        self._stack.close()
        self._server = None

    def __enter__(self) -> Recorder:
        """Use as a context manager (stops the server at the end)."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the server."""
        self.close()

    def project(
        self, spec: ProjectSpec, log: Callable[[str], None] = print, ours: bool = True
    ) -> Path:
        """A recorded project for `spec`: reused when already recorded in this work directory."""
        root = self.work / "projects" / spec.key
        marker = root / ".recorded"
        if marker.is_file():
            return root
        if root.exists():
            shutil.rmtree(root)
        server = self.server()
        started = time.perf_counter()
        write_project(root, spec, server.base_url)
        made = time.perf_counter() - started
        if ours:
            result = run(ours_cmd("--record-mode=once"), root)
            expect_passed(result, spec.items, f"recording {spec.key}")
        if spec.naive:
            result = run(naive_cmd("--record-mode=once"), root)
            expect_passed(result, spec.items, f"recording the naive module of {spec.key}")
        elapsed = time.perf_counter() - started
        self.record_seconds[spec.key] = elapsed
        log(
            f"  recorded {spec.key}: {spec.items} interactions in {elapsed:.1f} s "
            f"(data {made:.1f} s; load {load()})"
        )
        marker.write_text(json.dumps(asdict(spec)), encoding="utf-8")
        return root

    def subset(self, source: ProjectSpec, keep: int, log: Callable[[str], None] = print) -> Path:
        """The first `keep` cases of a recorded project, with exactly their recorded interactions.

        Cutting the recorded cassettes gives the cassettes a recording of the smaller suite would
        write (same requests, same answers) without another recording run.
        """
        import yaml
        from vcr.serializers import yamlserializer

        from audio_evals.traffic import CASE_HEADER, case_key

        src = self.project(source, log)
        root = self.work / "projects" / f"{source.key}_first{keep}"
        marker = root / ".recorded"
        if marker.is_file():
            return root
        if root.exists():
            shutil.rmtree(root)
        ids = case_ids(source)[:keep]
        shutil.copytree(
            src,
            root,
            ignore=shutil.ignore_patterns("cassettes", "audio", "reports", ".recorded", "*.jsonl"),
        )
        data_src = src / "datasets" / SUITE
        data_dst = root / "datasets" / SUITE
        rows = (data_src / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
        kept_rows = [r for r in rows if json.loads(r)["id"] in ids]
        (data_dst / "audio").mkdir(parents=True, exist_ok=True)
        keys = {case_key(case_id, 0) for case_id in ids}
        for row in kept_rows:
            name = json.loads(row)["file_name"]
            shutil.copy(data_src / name, data_dst / name)
        (data_dst / "metadata.jsonl").write_text("\n".join(kept_rows) + "\n", encoding="utf-8")
        for cassette in (src / "cassettes").rglob("*.yaml"):
            doc = yaml.load(cassette.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
            doc["interactions"] = [
                i
                for i in doc["interactions"]
                if i["request"]["headers"].get(CASE_HEADER, [""])[0] in keys
            ]
            dest = root / cassette.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(yamlserializer.serialize(doc), encoding="utf-8")
        naive_cases = root / "naive" / "cases.json"
        if naive_cases.exists():
            spec = json.loads(naive_cases.read_text(encoding="utf-8"))
            spec["cases"] = [c for c in spec["cases"] if c["id"].split("-", 2)[-1] in ids]
            naive_cases.write_text(json.dumps(spec, indent=0), encoding="utf-8")
            for case in spec["cases"]:
                name = f"test_extract[{case['id']}].yaml"
                folder = Path("naive") / "cassettes" / "test_naive"
                (root / folder).mkdir(parents=True, exist_ok=True)
                shutil.copy(src / folder / name, root / folder / name)
        marker.write_text(json.dumps({"source": source.key, "keep": keep}), encoding="utf-8")
        log(
            f"  derived {root.name} (first {keep} case(s) of {source.key}, its recorded interactions)"
        )
        return root


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def dedent(text: str) -> str:
    """textwrap.dedent, stripped."""
    return textwrap.dedent(text).strip()


# ---------------------------------------------------------------- profiles (pyinstrument)
# Deepest matching ancestor wins: json.loads called by the openai SDK counts as "openai SDK".
PROFILE_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("openai SDK", ("/openai/",)),
    ("httpx2 (in-memory, patched by vcrpy)", ("/httpx2/", "/httpcore2/", "/anyio/", "/h11/")),
    ("instructor (incl. Audio.from_path)", ("/instructor/",)),
    ("pydantic", ("/pydantic/", "/pydantic_core/")),
    ("vcrpy", ("/vcr/",)),
    ("yaml (cassette load)", ("/yaml/",)),
    ("audio-evals cassettes (normalise, match)", ("audio_evals/cassettes.py",)),
    ("audio-evals scoring", ("audio_evals/scoring.py", "/rapidfuzz/", "/jiwer/")),
    (
        "audio-evals reports (pandas, stats, gates)",
        (
            "audio_evals/report.py",
            "audio_evals/finish.py",
            "audio_evals/stats.py",
            "audio_evals/gates.py",
            "/pandas/",
            "/numpy/",
            "/scipy/",
            "/statsmodels/",
        ),
    ),
    ("audio-evals plugin, runner, extraction", ("audio_evals/",)),
    ("pytest (items, reports, terminal)", ("/_pytest/", "/pluggy/", "/xdist/", "/execnet/")),
    ("asyncio event loop", ("/asyncio/",)),
)


def _category(path: str) -> str | None:
    for name, needles in PROFILE_CATEGORIES:
        if any(n in path for n in needles):
            return name
    return None


def profile_breakdown(
    session_file: Path,
) -> tuple[float, list[tuple[str, float]], list[tuple[str, float]]]:
    """Total seconds, self time per library (imports apart) and the top self-time functions of a pyisession."""
    from pyinstrument.session import Session

    session = Session.load(str(session_file))
    root = session.root_frame(trim_stem=False)
    by_category: dict[str, float] = {}
    by_function: dict[str, float] = {}
    if root is None:
        return 0.0, [], []
    stack: list[tuple[Any, str, bool]] = [(root, "other (stdlib, interpreter)", False)]
    while stack:
        frame, category, importing = stack.pop()
        named = frame.parent if frame.is_synthetic and frame.parent is not None else frame
        path = named.file_path or ""
        importing = importing or "importlib" in path and "_bootstrap" in path
        found = _category(path)
        if found:
            category = found
        self_time = frame.time - sum(child.time for child in frame.children)
        if self_time > 0:
            key = "start-up: imports" if importing else category
            by_category[key] = by_category.get(key, 0.0) + self_time
            if not importing:
                where = named.file_path_short or path
                name = f"{named.function} ({where}:{named.line_no})"
                by_function[name] = by_function.get(name, 0.0) + self_time
        for child in frame.children:
            stack.append((child, category, importing))
    cats = sorted(by_category.items(), key=lambda kv: -kv[1])
    funcs = sorted(by_function.items(), key=lambda kv: -kv[1])
    return root.time, cats, funcs


# Phases of a `pytest evals` run, by the inclusive time of one function (outermost call only).
PHASES: tuple[tuple[str, str, str], ...] = (
    ("start-up: imports", "_find_and_load", "importlib"),
    ("collection (suite, dataset, items)", "pytest_collection", "_pytest/main.py"),
    (
        "batches: _run_batch_of (cassette, SDK, vcrpy, scoring)",
        "_run_batch_of",
        "audio_evals/plugin.py",
    ),
    ("  of which the cassette load + index", "_load", "audio_evals/cassettes.py"),
    ("pytest run loop (all items, incl. the batch)", "pytest_runtestloop", "_pytest/main.py"),
    ("reports + gates (finish_session)", "finish_session", "audio_evals/finish.py"),
)


def phase_times(session_file: Path) -> list[tuple[str, float]]:
    """Inclusive seconds of each phase function (outermost calls), imports inside it excluded."""
    from pyinstrument.session import Session

    root = Session.load(str(session_file)).root_frame(trim_stem=False)
    out: list[tuple[str, float]] = []
    if root is None:
        return out

    def is_import(frame: Any) -> bool:
        return frame.function == "_find_and_load" and "importlib" in (frame.file_path or "")

    def importing(frame: Any) -> float:
        total, stack = 0.0, [frame]
        while stack:
            node = stack.pop()
            if is_import(node):
                total += node.time
                continue
            stack.extend(node.children)
        return total

    for name, function, where in PHASES:
        total = 0.0
        stack = [root]
        while stack:
            frame = stack.pop()
            if frame.function == function and where in (frame.file_path or ""):
                total += frame.time if is_import(frame) else frame.time - importing(frame)
                continue
            stack.extend(frame.children)
        out.append((name, total))
    return out


def print_profile(title: str, session_file: Path, top: int = 12) -> dict[str, Any]:
    """Print the phases, the library breakdown and the hottest functions of a profile; return them."""
    total, cats, funcs = profile_breakdown(session_file)
    phases = phase_times(session_file)
    print(f"\n-- {title}: where the time goes (pyinstrument, {total:.2f} s sampled) --")
    print("  phases (inclusive, imports apart):")
    for name, seconds in phases:
        print(f"  {seconds:7.2f} s {100 * seconds / max(total, 1e-9):5.1f}%  {name}")
    print("  by library (self time; imports apart):")
    for name, seconds in cats:
        if seconds / max(total, 1e-9) >= 0.005:
            print(f"  {seconds:7.2f} s {100 * seconds / total:5.1f}%  {name}")
    print("  hottest functions (self time):")
    for name, seconds in funcs[:top]:
        print(f"  {seconds:7.2f} s {100 * seconds / total:5.1f}%  {name}")
    return {
        "total_s": round(total, 3),
        "phases": [(n, round(t, 3)) for n, t in phases],
        "categories": [(n, round(s, 3)) for n, s in cats],
        "top_functions": [(n, round(s, 3)) for n, s in funcs[:top]],
    }
